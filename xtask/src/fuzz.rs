//! `cargo xtask fuzz [--seconds N] [--target T]`: runs each fuzz target
//! (`fuzz/`, bodies in `fuzz/bodies.rs`) for a bounded time.
//!
//! With `cargo fuzz` installed it runs libFuzzer (`cargo fuzz run`, with
//! `RUSTC_BOOTSTRAP=1` so the stable toolchain accepts the sanitizer
//! flags), seeded with `fuzz/regressions/T/`; a crash stops the run and
//! libFuzzer's reproducer under `fuzz/artifacts/T/` names the input: copy
//! it into `fuzz/regressions/T/`, where `tests/hostile_fuzz.rs` replays it
//! on every test run. Without `cargo fuzz` (or with `--stable`) it runs
//! the same bodies as deterministic property tests for the same time.
use crate::cmd::{have, repo_root, run_visible};
use anyhow::{bail, Result};
use std::process::Command;

pub const TARGETS: &[&str] = &["index_read", "rpm_stream", "cpio"];

pub struct Options {
    pub seconds: u64,
    pub target: Option<String>,
    /// Property tests instead of libFuzzer.
    pub stable: bool,
}

pub fn run(o: &Options) -> Result<()> {
    let root = repo_root();
    let targets: Vec<&str> = match &o.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("unknown fuzz target {t} (targets: {})", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let libfuzzer = !o.stable && have("cargo-fuzz");
    if !libfuzzer {
        eprintln!(
            "xtask fuzz: {}: running the targets as property tests (tests/hostile_fuzz.rs), {}s each",
            if o.stable { "--stable" } else { "cargo-fuzz is not installed (cargo install cargo-fuzz)" },
            o.seconds
        );
        let mut c = Command::new("cargo");
        c.current_dir(&root)
            .args([
                "test",
                "--release",
                "-p",
                "reimage",
                "--test",
                "hostile_fuzz",
                "--",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env("REIMAGE_FUZZ_SECONDS", o.seconds.to_string());
        for t in &targets {
            c.arg(format!("fuzz_{t}"));
        }
        return run_visible(&mut c);
    }
    let fuzz = root.join("fuzz");
    for t in targets {
        let corpus = fuzz.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let regressions = fuzz.join("regressions").join(t);
        run_visible(
            Command::new("cargo")
                .current_dir(&fuzz)
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", "-O", t])
                .arg(&corpus)
                .arg(&regressions)
                .arg("--")
                .arg(format!("-max_total_time={}", o.seconds))
                .arg("-rss_limit_mb=1024")
                .arg("-print_final_stats=1"),
        )?;
    }
    Ok(())
}
