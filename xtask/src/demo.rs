//! `cargo xtask demo`: a loop-image pool under `target/demo`, the generated test
//! packages imported into it, and each step printed with what it did.
//!
//! Steps after `init` are a table ([`steps`]): adding a command to the demo is one line.
//! A step whose command the binary does not know yet stops the demo successfully,
//! listing what is not built yet. Running the demo twice is fine (`init` on an
//! existing image re-mounts it). The pool stays mounted so it can be looked at.
use crate::{cmd, testdata};
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

/// Package names (file names without `.rpm`) of a directory, minus some.
fn names(dir: &Path, skip: &[&str]) -> Vec<String> {
    rpms(dir)
        .iter()
        .filter_map(|p| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .filter(|n| !skip.iter().any(|s| n.starts_with(s)))
        .map(|n| n.trim_end_matches(".rpm").to_string())
        .collect()
}

/// Writes a package list file for `compose --list`.
fn list_file(demo: &Path, name: &str, pkgs: &[String]) -> String {
    let path = demo.join(format!("{name}.list"));
    let mut text = format!("# package list of the demo view {name}\n");
    for p in pkgs {
        text.push_str(p);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write a list file under target/demo");
    path.display().to_string()
}

/// The views the demo makes (removed first, so the demo can run again).
const VIEWS: [&str; 4] = ["edge", "edge-upd", "v1", "v2"];

/// The demo after `init`, in order. Add a line here when a command lands.
fn steps(testdata: &Path, demo: &Path, realistic: bool) -> Vec<Step> {
    let edge: Vec<String> = rpms(&testdata.join("edge"));
    let edge: Vec<&str> = edge.iter().map(|s| s.as_str()).collect();
    // edge-unmapped needs --relocate; edge-update-1.1 replaces 1.0.
    let edge_list = list_file(
        demo,
        "edge",
        &names(
            &testdata.join("edge"),
            &["edge-unmapped", "edge-update-1.1"],
        ),
    );
    let edge_upd_list = list_file(
        demo,
        "edge-upd",
        &names(
            &testdata.join("edge"),
            &["edge-unmapped", "edge-update-1.0"],
        ),
    );
    let mut v = vec![
        step(
            "import the edge-case packages (verified against their header digests)",
            "import",
            &edge,
        ),
        step("what the pool holds", "packages", &[]),
        step(
            "compose a read-only /usr view of reflinks from them",
            "compose",
            &["edge", "--list", &edge_list, "-v"],
        ),
        step(
            "its package database is a directory of RPM headers",
            "list",
            &["edge"],
        ),
        step(
            "which package owns a relocated file",
            "query",
            &["edge", "-f", "/boot/vmlinuz-6.1.0-test"],
        ),
        step(
            "verify every file against its header, like rpm -V",
            "verify",
            &["edge", "-v"],
        ),
        step(
            "a one-package update, applied to a snapshot of the view (only its files change)",
            "compose",
            &["edge-upd", "--from", "edge", "--list", &edge_upd_list],
        ),
        step(
            "what the update changed",
            "diff",
            &["edge", "edge-upd", "--files"],
        ),
    ];
    if realistic {
        let v1 = rpms(&testdata.join("realistic/v1"));
        let v1: Vec<&str> = v1.iter().map(|s| s.as_str()).collect();
        let v2 = rpms(&testdata.join("realistic/v2"));
        let v2: Vec<&str> = v2.iter().map(|s| s.as_str()).collect();
        let l1 = list_file(demo, "v1", &names(&testdata.join("realistic/v1"), &[]));
        let l2 = list_file(demo, "v2", &names(&testdata.join("realistic/v2"), &[]));
        v.push(step(
            "import real Debian packages converted to RPM (v1)",
            "import",
            &v1,
        ));
        v.push(step(
            "compose a minimal OS /usr from them",
            "compose",
            &["v1", "--list", &l1],
        ));
        v.push(step(
            "import the security update (v2): unchanged content is cloned, not written",
            "import",
            &v2,
        ));
        v.push(step(
            "compose the update: 29 of 43 packages change, so reimage composes it whole",
            "compose",
            &["v2", "--from", "v1", "--list", &l2],
        ));
        v.push(step("what the update changes", "diff", &["v1", "v2"]));
        v.push(step("verify the updated view", "verify", &["v2"]));
    }
    v.push(step("the views in the pool", "views", &[]));
    v.push(step(
        "where the bytes go: views share the pool's data",
        "usage",
        &["--views-only"],
    ));
    v.push(step("check the whole pool", "fsck", &[]));
    v
}

/// Commands the demo will show once they exist, for the "not built yet" line.
const PLANNED: [&str; 6] = ["dedupe", "usage", "gc", "publish", "sync", "fsck"];

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
    // The realistic set downloads ~45 MB of Debian packages once (then cached).
    let mut with_realistic = true;
    if let Err(e) = testdata::run(&testdata::Options {
        out: out.clone(),
        realistic: true,
    }) {
        eprintln!(
            "    (realistic packages unavailable: {e:#}; the demo goes on with the edge cases)"
        );
        with_realistic = false;
        testdata::run(&testdata::Options {
            out: out.clone(),
            realistic: false,
        })?;
    }

    for view in VIEWS {
        // Views of an earlier demo run, so it can run again.
        let _ = Command::new(&bin)
            .arg("--pool")
            .arg(&pool)
            .args(["-q", "rm-view", view])
            .output();
    }
    for s in steps(&out, &demo, with_realistic) {
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
