//! Whatever a failed or killed writer leaves in `tmp/` is removed by the next
//! one, whatever the length or depth of its paths; and a refused compose
//! leaves nothing there to remove.
//!
//! The bug this is for (an acceptance run): a package with a 5000-byte path
//! imported, its compose was refused, and the work subvolume it left in
//! `tmp/` could not be deleted (`statx failed: File name too long`): every
//! writer failed when it cleaned `tmp/` from then on, `fsck --repair` too.
//!
//! Every writer here runs under a limit of [`NOFILE`] descriptors, far below
//! the depth of the trees: a removal holding one descriptor per level fails.
mod common;

use common::*;
use reimage::sys;
use reimage_testkit::require_root;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, CWD};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Levels of the deep chains: 2100 × "d/" is past PATH_MAX (4096 bytes).
const DEPTH: usize = 2100;
/// Components of the long path, 250 bytes each: a path of 5000 bytes and more.
const LONG: usize = 20;
/// Descriptors each writer may hold.
const NOFILE: u32 = 64;

fn open_dir(at: BorrowedFd<'_>, name: &OsStr) -> OwnedFd {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("cannot open {name:?}: {e}"))
}

fn mkdir_in(at: &OwnedFd, name: &str) -> OwnedFd {
    rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o755)).unwrap();
    open_dir(at.as_fd(), OsStr::new(name))
}

fn write_in(at: &OwnedFd, name: &str, data: &[u8]) {
    let f = rustix::fs::openat(
        at,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    assert_eq!(rustix::io::write(&f, data).unwrap(), data.len());
}

fn subvolume_in(at: &OwnedFd, name: &str) -> OwnedFd {
    sys::subvolume_create_at(at.as_fd(), OsStr::new(name)).unwrap();
    open_dir(at.as_fd(), OsStr::new(name))
}

/// Fills the directory `top`, descriptor-relative (no path could reach the
/// bottom): a chain of [`LONG`] 250-byte components, and a chain [`DEPTH`]
/// directories deep, with files and symlinks on the way. With
/// `subvolumes`: a subvolume at the bottom of each chain, the deep one
/// holding another at the end of a chain of its own, and one near the top
/// holding another.
fn fill(top: &OwnedFd, subvolumes: bool) {
    write_in(top, "file", b"top");
    let mut cur = mkdir_in(top, "long");
    for i in 0..LONG {
        cur = mkdir_in(&cur, &format!("{i:02}{}", "x".repeat(248)));
    }
    write_in(&cur, "end", b"5000 bytes down");
    if subvolumes {
        let sv = subvolume_in(&cur, "long-sv");
        write_in(&sv, "f", b"a subvolume 5000 bytes down");
    }
    let mut cur = mkdir_in(top, "deep");
    for i in 0..DEPTH {
        if i % 700 == 0 {
            write_in(&cur, "f", format!("level {i}").as_bytes());
            rustix::fs::symlinkat("../..", &cur, "up").unwrap();
        }
        cur = mkdir_in(&cur, "d");
    }
    write_in(&cur, "end", b"2100 levels down");
    if subvolumes {
        let sv = subvolume_in(&cur, "deep-sv");
        let mut c = mkdir_in(&sv, "d");
        for _ in 0..100 {
            c = mkdir_in(&c, "d");
        }
        let inner = subvolume_in(&c, "inner");
        write_in(&inner, "f", b"a subvolume in a subvolume 2100 levels down");
        let shallow = subvolume_in(top, "shallow");
        subvolume_in(&shallow, "inner");
    }
}

/// The names of the garbage [`make_garbage`] leaves in `tmp/`.
fn garbage_names(btrfs: bool) -> Vec<&'static str> {
    let mut v = vec!["compose-plain", "import-stale"];
    if btrfs {
        v.extend(["compose-readonly", "compose-writable"]);
    }
    v.sort();
    v
}

/// What failed and killed writers could leave in `tmp/`, at its worst: a
/// plain file; a plain tree (with subvolumes in it on btrfs); on btrfs a
/// writable subvolume and a read-only one, both holding nested subvolumes
/// (in the read-only one, a read-only one holding another).
fn make_garbage(tmp: &Path, btrfs: bool) {
    let dir = open_dir(CWD, tmp.as_os_str());
    write_in(&dir, "import-stale", b"half a package");
    let plain = mkdir_in(&dir, "compose-plain");
    fill(&plain, btrfs);
    if btrfs {
        let w = subvolume_in(&dir, "compose-writable");
        fill(&w, true);
        let r = subvolume_in(&dir, "compose-readonly");
        fill(&r, true);
        sys::set_readonly(&tmp.join("compose-readonly/shallow"), true).unwrap();
        sys::set_readonly(&tmp.join("compose-readonly"), true).unwrap();
        assert!(sys::is_readonly(&tmp.join("compose-readonly")).unwrap());
    }
    assert_eq!(tmp_entries(tmp), garbage_names(btrfs));
}

fn tmp_entries(tmp: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs the reimage writer under a limit of [`NOFILE`] descriptors; expects
/// success; returns stdout.
fn writer(pool: &Path, args: &[&str]) -> String {
    let out = Command::new("prlimit")
        .arg(format!("--nofile={NOFILE}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(pool)
        .args(args)
        .env_remove("REIMAGE_POOL")
        .output()
        .expect("cannot run prlimit (util-linux)");
    eprintln!(
        "$ prlimit --nofile={NOFILE} reimage --pool {} {}\n{}{}(exit {:?})",
        pool.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    assert!(
        out.status.success(),
        "reimage {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Garbage before each writer: import, compose, gc and fsck --repair each
/// succeed and leave `tmp/` empty; plain fsck reports it as garbage.
fn every_writer_cleans(pool: &Path, btrfs: bool) {
    let tmp = pool.join("tmp");
    let pkg = testdata("edge").join("edge-sizes-1.0-1.x86_64.rpm");

    make_garbage(&tmp, btrfs);
    let r: serde_json::Value = serde_json::from_str(&writer(pool, &["--json", "fsck"])).unwrap();
    let mut garbage: Vec<String> = r["garbage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = PathBuf::from(p.as_str().unwrap());
            assert_eq!(p.parent(), Some(tmp.as_path()), "{r}");
            p.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    garbage.sort();
    assert_eq!(garbage, garbage_names(btrfs), "{r}");
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(tmp_entries(&tmp), garbage_names(btrfs), "fsck changed tmp/");

    let r: serde_json::Value =
        serde_json::from_str(&writer(pool, &["--json", "fsck", "--repair"])).unwrap();
    assert_eq!(
        r["repaired"].as_array().unwrap().len(),
        garbage_names(btrfs).len()
    );
    assert_eq!(
        tmp_entries(&tmp),
        Vec::<String>::new(),
        "after fsck --repair"
    );

    make_garbage(&tmp, btrfs);
    writer(pool, &["import", pkg.to_str().unwrap()]);
    assert_eq!(tmp_entries(&tmp), Vec::<String>::new(), "after import");

    make_garbage(&tmp, btrfs);
    writer(pool, &["compose", "v", "edge-sizes"]);
    assert_eq!(tmp_entries(&tmp), Vec::<String>::new(), "after compose");
    assert!(pool.join("views/v/lib/reimage/view.json").is_file());

    make_garbage(&tmp, btrfs);
    writer(pool, &["gc"]);
    assert_eq!(tmp_entries(&tmp), Vec::<String>::new(), "after gc");

    // The pool is whole, and the view still there.
    let r: serde_json::Value = serde_json::from_str(&writer(pool, &["--json", "fsck"])).unwrap();
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["views"], 1, "{r}");
}

#[test]
fn btrfs_leftovers_of_any_depth_are_removed_by_every_writer() {
    require_root!();
    let (_d, pool) = btrfs_pool("tmp-cleanup-btrfs");
    every_writer_cleans(&pool, true);
}

/// Pools on XFS have no subvolumes: compose stages a plain directory there,
/// and that is what a failed one leaves.
#[test]
fn xfs_leftovers_of_any_depth_are_removed_by_every_writer() {
    require_root!();
    let d = reimage_testkit::xfs_dir("tmp-cleanup-xfs");
    let pool = d.join("pool");
    ok(&pool, &["init"]);
    every_writer_cleans(&pool, false);
}

/// `sys::nested_subvolumes` lists subvolumes below a 5000-byte path and
/// 2100 levels without walking to them; `subvolume_delete_recursive`
/// deletes a read-only subvolume holding them; and a test dir's own removal
/// copes too (a test failing half-way leaves such garbage).
#[test]
fn nested_subvolumes_are_listed_and_deleted_at_any_depth() {
    require_root!();
    let d = reimage_testkit::btrfs_dir("tmp-cleanup-nested");
    let top = d.join("top");
    sys::subvolume_create(&top).unwrap();
    fill(&open_dir(CWD, top.as_os_str()), true);
    let mut nested: Vec<String> = sys::nested_subvolumes(&top)
        .unwrap()
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&top).unwrap().to_string_lossy();
            rel.replace(&"x".repeat(248), "X")
                .replace(&"d/".repeat(DEPTH), "d*/")
        })
        .collect();
    nested.sort();
    let long: String = (0..LONG).map(|i| format!("{i:02}X/")).collect();
    assert_eq!(
        nested,
        vec![
            "deep/d*/deep-sv".to_string(),
            format!("long/{long}long-sv"),
            "shallow".to_string()
        ]
    );
    assert_eq!(
        sys::nested_subvolumes(&top.join("long")).unwrap().len(),
        1,
        "only those under the directory"
    );
    let err = sys::subvolume_delete(&top).unwrap_err();
    assert!(matches!(err, sys::SysError::NotEmpty), "{err:?}");
    sys::set_readonly(&top, true).unwrap();
    sys::subvolume_delete_recursive(&top).unwrap();
    assert!(!top.exists());
    // The test dir's drop: the same, in a plain directory of it. (Another
    // test dir keeps the scratch filesystem mounted to look afterwards.)
    let _keep = reimage_testkit::btrfs_dir("tmp-cleanup-keep");
    fill(
        &mkdir_in(&open_dir(CWD, d.path().as_os_str()), "left"),
        true,
    );
    let path = d.path().to_path_buf();
    drop(d);
    assert!(!path.exists(), "the test dir was not removed");
}

/// A package compose refuses after it made its work subvolume (or
/// directory): a path that relocation makes longer than PATH_MAX.
fn refused_package(dir: &Path, name: &str, path: &str) -> PathBuf {
    let pkg = rpm::PackageBuilder::new(name, "1.0", "MIT", "x86_64", "tmp cleanup test")
        .using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
        .release("1")
        .with_file_contents(
            b"deep down\n".to_vec(),
            rpm::FileOptions::new(path).permissions(0o644),
        )
        .unwrap()
        .build()
        .unwrap();
    let p = dir.join(format!("{name}-1.0-1.x86_64.rpm"));
    pkg.write_file(&p).unwrap();
    p
}

/// Runs a compose that must be refused; returns stderr and the failpoints
/// it passed.
fn refused_compose(pool: &Path, args: &[&str], log: &Path) -> (String, String) {
    let _ = std::fs::remove_file(log);
    let out = Command::new(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(pool)
        .args(args)
        .env_remove("REIMAGE_POOL")
        .env_remove("REIMAGE_FAILPOINT")
        .env("REIMAGE_FAILPOINT_LOG", log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("$ reimage {}\n{stderr}", args.join(" "));
    assert_eq!(out.status.code(), Some(1), "must be refused: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stderr, std::fs::read_to_string(log).unwrap_or_default())
}

fn refused_composes_leave_nothing(d: &Path, pool: &Path, btrfs: bool) {
    let tmp = pool.join("tmp");
    // Header paths just under PATH_MAX, which import accepts; under /var
    // they are relocated to share/factory/var/..., which is longer than
    // PATH_MAX: compose is refused while creating them, after staging.
    let long: String = (0..16)
        .map(|i| format!("/{i:02}{}", "y".repeat(248)))
        .collect();
    let long = refused_package(
        d,
        "long-path",
        &format!("/var/lib/long{long}/{}/file", "z".repeat(58)),
    );
    let deep = refused_package(
        d,
        "deep-tree",
        &format!("/var/lib/deep/{}file", "d/".repeat(2035)),
    );
    let edge = testdata("edge");
    let hostile = testdata("hostile");
    let base: Vec<PathBuf> = ["edge-sizes", "edge-names", "edge-links", "edge-modes"]
        .iter()
        .map(|n| edge.join(format!("{n}-1.0-1.x86_64.rpm")))
        .collect();
    let mut all: Vec<&str> = vec!["import"];
    for p in base.iter().chain([&long, &deep]) {
        all.push(p.to_str().unwrap());
    }
    let conflicts = ["conflict-a-1.0-1.x86_64.rpm", "conflict-b-1.0-1.x86_64.rpm"];
    let conflicts: Vec<PathBuf> = conflicts.iter().map(|c| hostile.join(c)).collect();
    all.extend(conflicts.iter().map(|c| c.to_str().unwrap()));
    // Both import: their paths are valid, only too long to create in a view.
    writer(pool, &all);
    writer(
        pool,
        &[
            "compose",
            "base",
            "edge-sizes",
            "edge-names",
            "edge-links",
            "edge-modes",
        ],
    );
    let log = d.join("failpoints.log");

    for (what, args, stage) in [
        (
            "a 4081-byte path relocated past PATH_MAX",
            vec!["compose", "v", "edge-sizes", "long-path"],
            "compose.created",
        ),
        (
            "2036 levels relocated past PATH_MAX",
            vec!["compose", "v", "edge-sizes", "deep-tree"],
            "compose.created",
        ),
        (
            "a long path relocated past PATH_MAX, --from",
            vec![
                "compose",
                "v",
                "--from",
                "base",
                "edge-sizes",
                "edge-names",
                "edge-links",
                "edge-modes",
                "long-path",
            ],
            if btrfs {
                "compose.snapshot-base"
            } else {
                "compose.created"
            },
        ),
    ] {
        let (stderr, passed) = refused_compose(pool, &args, &log);
        assert!(
            passed.lines().any(|l| l == stage),
            "{what}: refused before it staged anything ({stage} not passed): {passed}"
        );
        if btrfs && stage == "compose.created" {
            assert!(passed.lines().any(|l| l == "compose.subvolume"), "{passed}");
        }
        assert!(
            !stderr.contains("left for the next writer"),
            "{what}: {stderr}"
        );
        assert_eq!(tmp_entries(&tmp), Vec::<String>::new(), "{what}: {stderr}");
        assert!(!pool.join("views/v").exists(), "{what}");
    }

    // A file conflict is refused by the plan, before anything is staged.
    let (stderr, passed) =
        refused_compose(pool, &["compose", "v", "conflict-a", "conflict-b"], &log);
    assert!(stderr.contains("file conflict"), "{stderr}");
    assert!(!passed.contains("compose.subvolume"), "{passed}");
    assert_eq!(tmp_entries(&tmp), Vec::<String>::new(), "{stderr}");

    // And the pool works on.
    writer(pool, &["compose", "v", "edge-sizes"]);
    let r: serde_json::Value = serde_json::from_str(&writer(pool, &["--json", "fsck"])).unwrap();
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["garbage"].as_array().unwrap().len(), 0, "{r}");
}

#[test]
fn btrfs_refused_compose_leaves_tmp_empty() {
    require_root!();
    let (d, pool) = btrfs_pool("tmp-cleanup-refused");
    refused_composes_leave_nothing(d.path(), &pool, true);
}

#[test]
fn xfs_refused_compose_leaves_tmp_empty() {
    require_root!();
    let d = reimage_testkit::xfs_dir("tmp-cleanup-refused-xfs");
    let pool = d.join("pool");
    ok(&pool, &["init"]);
    refused_composes_leave_nothing(d.path(), &pool, false);
}

/// A mount inside `tmp/` (someone's, mounted by hand) is never removed
/// through, in a plain tree or in a subvolume: the writer refuses with a
/// clear error and the mounted filesystem keeps its files; once it is
/// unmounted the next writer cleans. The walk checks each directory's mount
/// too, for mounts it meets on the way.
#[test]
fn a_mount_in_tmp_is_never_crossed() {
    require_root!();
    let (_d, pool) = btrfs_pool("tmp-cleanup-mount");
    let tmp = pool.join("tmp");
    let tmpfs = |m: &Path| {
        std::fs::create_dir_all(m).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "reimage-tmpclean"])
            .arg(m)
            .status()
            .unwrap();
        assert!(status.success(), "cannot mount a tmpfs at {}", m.display());
        std::fs::write(m.join("keep"), b"another filesystem").unwrap();
        reimage_testkit::UnmountOnDrop(m.to_path_buf())
    };
    for (top, mnt) in [
        ("compose-plain", "compose-plain/a/b/m"),
        ("compose-sub", "compose-sub/a/m"),
        ("mounted", "mounted"),
    ] {
        if top == "compose-sub" {
            sys::subvolume_create(&tmp.join(top)).unwrap();
        }
        let m = tmp.join(mnt);
        let unmount = tmpfs(&m);
        let err = fails(&pool, &["gc"]);
        assert!(err.contains("does not delete across mounts"), "{err}");
        assert!(err.contains(&tmp.join(top).display().to_string()), "{err}");
        assert_eq!(
            std::fs::read(m.join("keep")).unwrap(),
            b"another filesystem"
        );
        drop(unmount);
        ok(&pool, &["gc"]);
        assert_eq!(tmp_entries(&tmp), Vec::<String>::new());
    }
    // The walk itself, without the mount table: stops at the mount.
    let m = tmp.join("plain/a/m");
    let unmount = tmpfs(&m);
    let err = reimage::sys::rmtree::remove_at(
        open_dir(CWD, tmp.as_os_str()).as_fd(),
        OsStr::new("plain"),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("does not delete across mounts"),
        "{err:#}"
    );
    assert_eq!(
        std::fs::read(m.join("keep")).unwrap(),
        b"another filesystem"
    );
    drop(unmount);
    ok(&pool, &["gc"]);
    assert_eq!(tmp_entries(&tmp), Vec::<String>::new());
}
