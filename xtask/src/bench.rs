//! `cargo xtask bench [--quick] [--reps N]`: the side-by-side benchmark suite
//! (`benches/compare.rs`, issue 8).
//!
//! Makes sure the test data exists (the realistic
//! set is converted once and cached; the large set is generated and cached by
//! the bench itself under `target/bench/data/`), then runs
//! `cargo bench --bench compare -- ...`, which writes `target/bench/report.md`,
//! `report.json` and `commands.log`. Needs root (loop-mounted btrfs).
use crate::cmd::repo_root;
use anyhow::{bail, Result};
use std::process::Command;
use std::time::Instant;

pub struct Options {
    pub quick: bool,
    pub reps: Option<usize>,
}

pub fn run(opts: &Options) -> Result<()> {
    let t0 = Instant::now();
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::prereq::ensure("bench", crate::prereq::BENCH)?;
    let data = root.join("target/testdata");
    if !data.join("realistic/v1").is_dir() || !data.join("edge").is_dir() {
        eprintln!("bench: building test data (cargo xtask testdata --realistic)");
        crate::testdata::run(&crate::testdata::Options {
            out: data,
            realistic: true,
            boot: false,
        })?;
    }
    // `cargo bench` builds the release binary the bench runs (bench profile
    // = release; CARGO_BIN_EXE_reimage), so there is no separate build step.
    let mut c = Command::new(&cargo);
    c.args(["bench", "--bench", "compare", "--"])
        .current_dir(&root);
    if opts.quick {
        c.arg("--quick");
    }
    if let Some(n) = opts.reps {
        c.arg("--reps").arg(n.to_string());
    }
    eprintln!("bench: {c:?}");
    let st = c.status()?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "bench: {} in {secs:.0} s ({:.1} min); report: {}",
        if st.success() { "done" } else { "FAILED" },
        secs / 60.0,
        root.join("target/bench/report.md").display()
    );
    if !st.success() {
        bail!("the benchmark failed or could not measure every figure ({st}); see target/bench/report.md");
    }
    Ok(())
}
