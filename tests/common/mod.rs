//! Helpers shared by the integration tests: run the real binary, find the test
//! packages, make pools in per-test btrfs subvolumes.
#![allow(dead_code)]
pub mod system;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reimage_testkit::TestDir;

/// Runs `reimage --pool POOL ARGS...`, logging the command and its output.
pub fn reimage(pool: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(pool)
        .args(args)
        .env_remove("REIMAGE_POOL")
        .output()
        .expect("cannot run reimage");
    eprintln!(
        "$ reimage --pool {} {}\n{}{}(exit {:?})",
        pool.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    out
}

/// Runs reimage, expects success, returns stdout.
pub fn ok(pool: &Path, args: &[&str]) -> String {
    let out = reimage(pool, args);
    assert!(
        out.status.success(),
        "reimage {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs reimage with `--json`, expects success, parses stdout.
pub fn json(pool: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(pool, &all)).expect("--json prints JSON")
}

/// Runs reimage, expects exit status 1, returns stderr.
pub fn fails(pool: &Path, args: &[&str]) -> String {
    let out = reimage(pool, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "reimage {} should have failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The generated test packages (`cargo xtask testdata`): `$REIMAGE_TESTDATA`,
/// else `target/testdata`. A missing set fails the test, naming the fix.
pub fn testdata(sub: &str) -> PathBuf {
    let base = std::env::var_os("REIMAGE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/testdata"));
    let dir = base.join(sub);
    assert!(
        dir.is_dir(),
        "test packages {} are missing: run `cargo xtask testdata --realistic` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// The committed real-world RPMs.
/// The edge set as two versions: v1 (links, sizes, update 1.0) and v2
/// (the same with update 1.1), for publish and sync tests.
pub fn edge_versions() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let e = testdata("edge");
    let common = [
        e.join("edge-links-1.0-1.x86_64.rpm"),
        e.join("edge-sizes-1.0-1.x86_64.rpm"),
    ];
    let mut v1 = common.to_vec();
    v1.push(e.join("edge-update-1.0-1.x86_64.rpm"));
    let mut v2 = common.to_vec();
    v2.push(e.join("edge-update-1.1-1.x86_64.rpm"));
    (v1, v2)
}

pub fn realworld() -> PathBuf {
    repo().join("testdata/realworld")
}

/// All `.rpm` files under `dir`, recursively, sorted.
pub fn rpms(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rpm") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// A fresh pool in its own btrfs subvolume.
pub fn btrfs_pool(name: &str) -> (TestDir, PathBuf) {
    let dir = reimage_testkit::btrfs_dir(name);
    let pool = dir.join("pool");
    ok(&pool, &["init"]);
    (dir, pool)
}

/// Every path under `root` with its type, size and content digest: a
/// listing to compare a tree before and after an operation.
pub fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if m.is_dir() {
                out.push(format!("d {rel}"));
                stack.push(p);
            } else if m.file_type().is_symlink() {
                out.push(format!(
                    "l {rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else {
                let data = std::fs::read(&p).unwrap();
                out.push(format!(
                    "f {rel} {} {}",
                    m.len(),
                    blake3::hash(&data).to_hex()
                ));
            }
        }
    }
    out.sort();
    out
}

/// SHA256 of a file, hex.
pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// How [`walk`] treats a view's `lib/reimage/view.json`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ViewJson {
    /// Left out (it records when and from what a view was composed).
    Skip,
    /// Kept, without its creation time and the base it was composed from
    /// (`compose` picks a base by itself, so two equal views may differ
    /// there).
    WithoutProvenance,
}

/// Every entry of a tree: mode, owner, size, mtime, links, content hash or
/// link target, capabilities.
pub fn walk(root: &Path, view_json: ViewJson) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if rel == "lib/reimage/view.json" {
                if view_json == ViewJson::Skip {
                    continue;
                }
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                let o = v.as_object_mut().unwrap();
                o.remove("created");
                o.remove("from");
                out.insert(rel, v.to_string());
                continue;
            }
            let mut buf = [0u8; 64];
            let caps = rustix::fs::lgetxattr(&p, "security.capability", &mut buf)
                .map(|n| hex::encode(&buf[..n]))
                .unwrap_or_default();
            let content = if m.is_file() {
                sha256_file(&p)
            } else if m.is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            out.insert(
                rel,
                format!(
                    "{:o} {} {} {} {} {} {} {}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    if m.is_dir() { 0 } else { m.len() },
                    m.mtime(),
                    m.nlink(),
                    content,
                    caps
                ),
            );
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// Stops the gpg-agent that gpg starts for a home directory. Without it the
/// agent outlives the test and, with its home on the scratch filesystem,
/// keeps that filesystem and its loop device alive after the unmount.
struct GpgHome(tempfile::TempDir);

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "all"])
            .output();
    }
}

/// An armored key pair made by gpg for the signing tests: (secret, public).
pub fn gpg_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    gpg_key_with_passphrase(dir, name, "")
}

/// An armored key pair whose secret key is protected by `passphrase` (none
/// when empty): (secret, public).
pub fn gpg_key_with_passphrase(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, PathBuf) {
    // The gpg home is off the scratch filesystem, and its agent is stopped
    // when this function returns (also on a panic).
    let home_guard = GpgHome(
        tempfile::Builder::new()
            .prefix("reimage-gnupg-")
            .tempdir()
            .unwrap(),
    );
    let home = home_guard.0.path().to_path_buf();
    let gpg = |args: &[&str]| -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
            ])
            .args(args)
            .output()
            .expect("gpg must be installed");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let uid = format!("reimage test {name} <{name}@example.invalid>");
    gpg(&["--quick-gen-key", &uid, "rsa2048", "sign", "never"]);
    let sec = dir.join(format!("{name}.sec.asc"));
    let public = dir.join(format!("{name}.pub.asc"));
    std::fs::write(&sec, gpg(&["--armor", "--export-secret-keys", &uid])).unwrap();
    std::fs::write(&public, gpg(&["--armor", "--export", &uid])).unwrap();
    (sec, public)
}
