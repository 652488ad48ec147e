//! `cargo xtask demo`: a loop-image pool under `target/demo`, the generated test
//! packages imported into it, and each step printed with what it did.
//!
//! Steps after `init` are a table ([`steps`]): adding a command to the demo is one line.
//! A step whose command the binary does not know yet stops the demo successfully,
//! listing what is not built yet. Running the demo twice is fine (`init` on an
//! existing image re-mounts it). The pool stays mounted so it can be looked at.
use crate::{cmd, realistic, testdata};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One demo step: what it shows and the `reimage` arguments (after `--pool`).
struct Step {
    what: &'static str,
    /// The subcommand, checked with `reimage SUBCOMMAND --help` before running.
    command: &'static str,
    args: Vec<String>,
}

fn step(what: &'static str, command: &'static str, args: &[&str]) -> Step {
    let mut v = vec![command.to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    Step {
        what,
        command,
        args: v,
    }
}

fn rpms(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The demo after `init`, in order. Add a line here when a command lands.
fn steps(testdata: &Path, realistic: bool) -> Vec<Step> {
    let edge: Vec<String> = rpms(&testdata.join("edge"));
    let edge: Vec<&str> = edge.iter().map(|s| s.as_str()).collect();
    let mut v = vec![step("import the edge-case packages", "import", &edge)];
    if realistic {
        let real = rpms(&testdata.join("realistic/v1"));
        let real: Vec<&str> = real.iter().map(|s| s.as_str()).collect();
        v.push(step("import the realistic packages (v1)", "import", &real));
    }
    // Next, once they exist (one line each):
    // v.push(step("compose a view from the edge packages", "compose", &["edge", "--list", LIST]));
    // v.push(step("list the views", "views", &[]));
    // v.push(step("list the packages of the view", "list", &["edge"]));
    v
}

/// Commands the demo will show once they exist, for the "not built yet" line.
const PLANNED: [&str; 4] = ["import", "compose", "views", "list"];

pub fn run() -> Result<()> {
    let root = cmd::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("==> demo: building the release binary");
    cmd::run_visible(
        Command::new(&cargo)
            .args(["build", "--release", "--bin", "reimage"])
            .current_dir(&root),
    )?;
    let bin = root.join("target/release/reimage");
    let demo = root.join("target/demo");
    std::fs::create_dir_all(&demo)?;
    let pool = demo.join("pool");
    let image = demo.join("pool.img");

    if !cmd::is_root() {
        bail!("the demo loop-mounts a btrfs image and needs root: run `sudo cargo xtask demo`");
    }
    eprintln!("\n==> demo: make (or re-mount) a 4G btrfs pool in a sparse image");
    let reimage = |args: &[String]| -> Result<()> {
        let mut c = Command::new(&bin);
        c.arg("--pool").arg(&pool).args(args).current_dir(&root);
        cmd::run_visible(&mut c)
    };
    reimage(&[
        "init".into(),
        "--image".into(),
        image.display().to_string(),
        "--size".into(),
        "4G".into(),
    ])?;
    eprintln!("    pool: {} (image {})", pool.display(), image.display());

    eprintln!("\n==> demo: build the test packages");
    let out: PathBuf = root.join("target/testdata");
    let with_realistic = realistic::is_cached();
    testdata::run(&testdata::Options {
        out: out.clone(),
        realistic: with_realistic,
    })?;
    if !with_realistic {
        eprintln!("    (realistic packages skipped: not cached yet; `cargo xtask testdata --realistic` downloads them)");
    }

    for s in steps(&out, with_realistic) {
        if !known_command(&bin, s.command) {
            eprintln!(
                "\n==> demo: {}: stopped here, `reimage {}` does not exist yet",
                s.what, s.command
            );
            break;
        }
        eprintln!("\n==> demo: {}", s.what);
        reimage(&s.args)?;
    }
    eprintln!();
    let not_built: Vec<&str> = PLANNED
        .iter()
        .copied()
        .filter(|c| !known_command(&bin, c))
        .collect();
    if !not_built.is_empty() {
        eprintln!("not built yet: {}", not_built.join(", "));
    }
    eprintln!(
        "demo done. The pool stays mounted at {} so you can look around;",
        pool.display()
    );
    eprintln!(
        "unmount it with: umount {}",
        pool.strip_prefix(&root).unwrap_or(&pool).display()
    );
    Ok(())
}

fn known_command(bin: &Path, command: &str) -> bool {
    Command::new(bin)
        .args([command, "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}
