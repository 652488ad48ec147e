//! `cargo xtask demo`: a loop-image pool under `target/demo`, the generated test
//! packages imported into it, and each step printed with what it did.
//!
//! Steps after `init` are a table ([`steps`]), in the order a user meets the
//! commands: adding a command to the demo is one line. Every step must
//! succeed (`.ci/run` runs the demo on every landing). Running the demo twice
//! is fine (`init` on an existing image re-mounts it). The pools stay mounted
//! so they can be looked at; the demo ends saying how to remove them.
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
    /// Runs in the second machine's pool.
    client: bool,
}

fn step(what: &'static str, command: &'static str, args: &[&str]) -> Step {
    let mut v = vec![command.to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    Step {
        what,
        command,
        args: v,
        client: false,
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

/// Where the demo puts things, under `target/demo`.
struct Places {
    demo: PathBuf,
    pool: PathBuf,
    client: PathBuf,
    repo: PathBuf,
}

/// The demo after `init`, in the order a user meets the commands. Add a
/// line here when a command lands. Steps run in the server pool unless
/// marked `client`.
fn steps(testdata: &Path, at: &Places, realistic: bool) -> Vec<Step> {
    let d = |p: &Path| p.display().to_string();
    let edge_dir = d(&testdata.join("edge"));
    // edge-unmapped needs --relocate; edge-update-1.1 replaces 1.0.
    let edge_list = list_file(
        &at.demo,
        "edge",
        &names(
            &testdata.join("edge"),
            &["edge-unmapped", "edge-update-1.1"],
        ),
    );
    let edge_upd_list = list_file(
        &at.demo,
        "edge-upd",
        &names(
            &testdata.join("edge"),
            &["edge-unmapped", "edge-update-1.0"],
        ),
    );
    let repo = d(&at.repo);
    let mut v = vec![
        step(
            "import the edge-case packages: each is read as rpm reads it and verified against every digest",
            "import",
            &[&edge_dir],
        ),
        step("what the pool holds", "packages", &[]),
        step(
            "compose a read-only /usr view of reflinks from them",
            "compose",
            &["edge", "--list", &edge_list],
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
            &["edge"],
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
    let (image_dirs, image): (Vec<String>, &str) = if realistic {
        let v1 = d(&testdata.join("realistic/v1"));
        let v2 = d(&testdata.join("realistic/v2"));
        let l1 = list_file(&at.demo, "v1", &names(&testdata.join("realistic/v1"), &[]));
        let l2 = list_file(&at.demo, "v2", &names(&testdata.join("realistic/v2"), &[]));
        v.push(step(
            "import real Debian packages converted to RPM (v1)",
            "import",
            &[&v1],
        ));
        v.push(step(
            "compose a minimal OS /usr from them",
            "compose",
            &["v1", "--list", &l1],
        ));
        v.push(step(
            "import the security update (v2): unchanged content is cloned, not written",
            "import",
            &[&v2],
        ));
        v.push(step(
            "compose the update from v1",
            "compose",
            &["v2", "--from", "v1", "--list", &l2],
        ));
        v.push(step("what the update changes", "diff", &["v1", "v2"]));
        v.push(step("verify the updated view", "verify", &["v2"]));
        (vec![v1, v2], "demo-os")
    } else {
        (vec![edge_dir.clone(), edge_dir], "demo-edge")
    };
    v.push(step("the views in the pool", "views", &[]));
    v.push(step(
        "share identical data that lost its sharing (none here: import shares as it writes)",
        "dedupe",
        &[],
    ));
    v.push(step(
        "where the bytes go: views share the pool's data",
        "usage",
        &["--views-only"],
    ));
    v.push(step(
        "delete a view; then collect packages nothing references",
        "rm-view",
        &["edge-upd"],
    ));
    v.push(step("collect unreferenced packages", "gc", &[]));
    v.push(step(
        "publish image version 1 into a repository any rsync daemon or web server can serve",
        "publish",
        &[&repo, image, "1", &image_dirs[0]],
    ));
    v.push(step(
        "publish version 2 with static deltas from version 1",
        "publish",
        &[&repo, image, "2", &image_dirs[1], "--deltas-from", "1"],
    ));
    v.push(Step {
        client: true,
        ..step(
            "a second machine (its own pool) syncs version 1 and composes it",
            "sync",
            &[&repo, image, "1", "--compose", "os-1"],
        )
    });
    v.push(Step {
        client: true,
        ..step(
            "and updates to version 2 by static delta: only the changed bytes travel",
            "sync",
            &[&repo, image, "2", "--compose", "os-2"],
        )
    });
    v.push(Step {
        client: true,
        ..step("what the update brought", "diff", &["os-1", "os-2"])
    });
    v.push(step("check the whole pool", "fsck", &[]));
    v.push(Step {
        client: true,
        ..step("and the second machine's", "fsck", &["--full"])
    });
    v
}

pub fn run() -> Result<()> {
    let root = cmd::repo_root();
    if !cmd::is_root() {
        bail!("the demo loop-mounts btrfs images and needs root: run `sudo cargo xtask demo`");
    }
    crate::prereq::ensure("demo", crate::prereq::DEMO)?;
    eprintln!("==> demo: building the release binary");
    let bin = cmd::build_release_reimage(&root)?;
    let demo = root.join("target/demo");
    std::fs::create_dir_all(&demo)?;
    let at = Places {
        pool: demo.join("pool"),
        client: demo.join("client"),
        repo: demo.join("repo"),
        demo: demo.clone(),
    };
    let run_in = |pool: &Path, args: &[String]| -> Result<()> {
        let mut c = Command::new(&bin);
        c.arg("--pool").arg(pool).args(args).current_dir(&root);
        cmd::run_visible(&mut c)
    };
    eprintln!("\n==> demo: make (or re-mount) a 4G btrfs pool in a sparse image");
    for (pool, img, size) in [
        (&at.pool, "pool.img", "4G"),
        (&at.client, "client.img", "2G"),
    ] {
        run_in(
            pool,
            &[
                "init".into(),
                "--image".into(),
                demo.join(img).display().to_string(),
                "--size".into(),
                size.into(),
            ],
        )?;
    }
    eprintln!(
        "    pool: {} (image target/demo/pool.img); a second machine's pool: {}",
        at.pool.display(),
        at.client.display()
    );

    eprintln!("\n==> demo: build the test packages");
    let out: PathBuf = root.join("target/testdata");
    // The realistic set downloads ~45 MB of Debian packages once (then cached).
    let mut with_realistic = true;
    if let Err(e) = testdata::run(&testdata::Options {
        out: out.clone(),
        realistic: true,
        boot: false,
    }) {
        eprintln!(
            "    (realistic packages unavailable: {e:#}; the demo goes on with the edge cases)"
        );
        with_realistic = false;
        testdata::run(&testdata::Options {
            out: out.clone(),
            realistic: false,
            boot: false,
        })?;
    }

    // What an earlier demo run left, so it can run again.
    for (pool, view) in VIEWS
        .iter()
        .map(|v| (&at.pool, *v))
        .chain(["os-1", "os-2"].iter().map(|v| (&at.client, *v)))
    {
        let _ = Command::new(&bin)
            .arg("--pool")
            .arg(pool)
            .args(["-q", "rm-view", view])
            .output();
    }
    let _ = std::fs::remove_dir_all(&at.repo);
    for s in steps(&out, &at, with_realistic) {
        if !known_command(&bin, s.command) {
            bail!(
                "the demo runs `reimage {}`, which this binary does not know",
                s.command
            );
        }
        let pool = if s.client { &at.client } else { &at.pool };
        eprintln!("\n==> demo: {}", s.what);
        run_in(pool, &s.args)?;
    }
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let last = if with_realistic { "v2" } else { "edge" };
    eprintln!("\n==> demo done. What it made:");
    eprintln!(
        "    {}  a pool (btrfs in {}): packages/, views/{{{}}}",
        rel(&at.pool),
        rel(&demo.join("pool.img")),
        VIEWS
            .iter()
            .filter(|v| **v != "edge-upd")
            .copied()
            .collect::<Vec<_>>()
            .join(",")
    );
    eprintln!(
        "    {}  a repository with two image versions and static deltas",
        rel(&at.repo)
    );
    eprintln!(
        "    {}  a second pool that synced both versions (views os-1, os-2)",
        rel(&at.client)
    );
    eprintln!("Where to look:");
    eprintln!("    ls {}/views/{last}/bin", rel(&at.pool));
    eprintln!(
        "    rpm -qip {}/views/{last}/lib/sysimage/packages/*.rpm | head",
        rel(&at.pool)
    );
    eprintln!("    target/release/reimage --pool {} usage", rel(&at.pool));
    eprintln!("Remove it all:");
    eprintln!(
        "    umount {} {} && rm -rf {}",
        rel(&at.pool),
        rel(&at.client),
        rel(&demo)
    );
    Ok(())
}

fn known_command(bin: &Path, command: &str) -> bool {
    Command::new(bin)
        .args([command, "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}
