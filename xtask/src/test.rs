//! `cargo xtask test`: everything CI runs, in order, failing fast with the step's name.
//!
//! 1. prerequisites: installs missing tools with apt-get when root;
//! 2. test data: `cargo xtask testdata --realistic`;
//! 3. records loop devices and mounts;
//! 4. `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test --workspace`
//!    (with `REIMAGE_TESTDATA` pointing at the test data; `CI` is passed through);
//! 5. fails if a loop device or mount was left behind, naming it.
use crate::{cmd, testdata};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

/// Installs what the tests need (see [`crate::prereq::TEST`]).
pub fn prerequisites() -> Result<()> {
    crate::prereq::ensure("test", crate::prereq::TEST)
}

/// Loop devices (`losetup -a` lines) and mount points, to compare before and after.
fn system_state() -> (BTreeSet<String>, BTreeSet<String>) {
    let loops = cmd::run_capture(Command::new("losetup").arg("-a"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    let mounts = cmd::run_capture(Command::new("findmnt").args(["-rn", "-o", "TARGET"]))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    (loops, mounts)
}

struct Summary(Vec<(String, String)>);

impl Summary {
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("\n==> xtask test: {name}");
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        let status = if r.is_ok() { "ok" } else { "FAILED" };
        self.0
            .push((name.to_string(), format!("{status} ({secs:.1}s)")));
        r.with_context(|| format!("step `{name}` failed"))
    }
    fn print(&self) {
        eprintln!("\nxtask test summary:");
        for (name, status) in &self.0 {
            eprintln!("  {status:>14}  {name}");
        }
    }
}

pub fn run() -> Result<()> {
    let root = cmd::repo_root();
    let cargo = crate::cmd::cargo();
    let testdata_dir = root.join("target/testdata");
    let mut s = Summary(Vec::new());
    let result = (|| -> Result<()> {
        s.step("prerequisites", prerequisites)?;
        s.step("test data (edge, hostile, realistic)", || {
            testdata::run(&testdata::Options {
                out: testdata_dir.clone(),
                realistic: true,
                boot: false,
            })
        })?;
        let before = system_state();
        let cargo_step = |args: &[&str]| -> Result<()> {
            let mut c = Command::new(&cargo);
            c.args(args)
                .current_dir(&root)
                .env("REIMAGE_TESTDATA", &testdata_dir);
            cmd::run_visible(&mut c)
        };
        let checks = (|| -> Result<()> {
            s.step("cargo fmt --check", || {
                cargo_step(&["fmt", "--all", "--", "--check"])
            })?;
            s.step("cargo clippy -D warnings", || {
                cargo_step(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
            })?;
            s.step("cargo test --workspace", || {
                cargo_step(&["test", "--workspace"])
            })
        })();
        // Leaks are checked even when a test failed: a failed test must clean up too.
        let leaks = s.step("no loop device or mount left behind", || {
            let after = system_state();
            let loops: Vec<&String> = after.0.difference(&before.0).collect();
            let mounts: Vec<&String> = after.1.difference(&before.1).collect();
            if loops.is_empty() && mounts.is_empty() {
                return Ok(());
            }
            let mut msg = String::from("left behind by the tests:");
            for l in loops {
                msg.push_str(&format!("\n  loop device: {l}"));
            }
            for m in mounts {
                msg.push_str(&format!("\n  mount: {m}"));
            }
            // Said here too: the summary shows only the first failed step's error.
            eprintln!("{msg}");
            bail!(msg)
        });
        checks.and(leaks)
    })();
    s.print();
    match &result {
        Ok(()) => eprintln!(
            "xtask test: all steps passed (CI={})",
            std::env::var("CI").unwrap_or_default()
        ),
        Err(_) => eprintln!("xtask test: FAILED"),
    }
    result
}
