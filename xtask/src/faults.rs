//! `cargo xtask faults [--quick]`: the fault-injection suite of
//! `tests/faults.rs` through cargo. Full: every hit of every failpoint of
//! import, compose, compose --from, dedupe and gc, plus random-time kills
//! (test `kill_points_full`); `--quick`: the CI form (`kill_points_quick`),
//! then ENOSPC, two writers and fsck. The tests print how many kill points
//! ran and where. Needs root (loop-mounted btrfs) and the test packages.
use crate::cmd::{repo_root, run_visible};
use anyhow::Result;
use std::process::Command;

pub struct Options {
    pub quick: bool,
    /// At most this many hits per failpoint (spread evenly), full run only.
    pub max_per_name: Option<u64>,
    /// Random-time kills per operation, full run only.
    pub random: Option<u64>,
    pub seed: Option<u64>,
}

pub fn run(o: &Options) -> Result<()> {
    let root = repo_root();
    // The suite is an integration test: it needs what the tests need.
    crate::prereq::ensure("faults", crate::prereq::TEST)?;
    let testdata = root.join("target/testdata");
    if !testdata.join("edge").is_dir() || !testdata.join("realistic/v1").is_dir() {
        run_visible(
            Command::new("cargo")
                .args(["xtask", "testdata", "--realistic"])
                .current_dir(&root),
        )?;
    }
    let mut c = Command::new("cargo");
    c.current_dir(&root)
        .args(["test", "-p", "reimage", "--test", "faults", "--"])
        .arg("--nocapture")
        .arg("--test-threads=1")
        .env("REIMAGE_TESTDATA", &testdata);
    if o.quick {
        c.arg("--skip").arg("kill_points_full");
    } else {
        c.args(["--ignored", "--exact", "kill_points_full"]);
    }
    if let Some(m) = o.max_per_name {
        c.env("REIMAGE_FAULTS_MAX_PER_NAME", m.to_string());
    }
    if let Some(r) = o.random {
        c.env("REIMAGE_FAULTS_RANDOM", r.to_string());
    }
    if let Some(s) = o.seed {
        c.env("REIMAGE_FAULTS_SEED", s.to_string());
    }
    run_visible(&mut c)
}
