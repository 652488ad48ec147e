//! `reimage::sys` on real filesystems: btrfs, XFS (reflink=1) and ext4, each a
//! loop image shared by the tests of this binary (see `reimage_testkit`).
use reimage::sys::{self, DedupeOutcome, FsKind, SysError};
use reimage_testkit::require_root;
use reimage_testkit::{btrfs_dir, ext4_dir, xfs_dir, FsType, TestDir};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

const B: u64 = 4096;

/// Deterministic bytes that differ per `seed` (no block repeats inside).
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_file(path: &Path, bytes: &[u8]) -> File {
    let mut f = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    f
}

fn new_file(path: &Path) -> File {
    write_file(path, &[])
}

fn read_all(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(path).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn all_shared(f: &File) -> bool {
    let ext = sys::fiemap(f).unwrap();
    !ext.is_empty() && ext.iter().all(|e| e.is_shared())
}

fn any_shared(f: &File) -> bool {
    sys::fiemap(f).unwrap().iter().any(|e| e.is_shared())
}

fn clone_range_aligned_on(dir: &TestDir) {
    let src_bytes = data(1, 3 * B as usize);
    let src = write_file(&dir.join("src"), &src_bytes);
    let dst = new_file(&dir.join("dst"));
    assert!(!any_shared(&src));
    sys::clone_range(&src, B, 2 * B, &dst, 0).unwrap();
    assert_eq!(read_all(&dir.join("dst")), &src_bytes[B as usize..]);
    assert!(all_shared(&dst), "{:?}", sys::fiemap(&dst).unwrap());
    // Into the middle of an existing file, at an aligned offset.
    sys::clone_range(&src, 0, B, &dst, B).unwrap();
    let got = read_all(&dir.join("dst"));
    assert_eq!(&got[..B as usize], &src_bytes[B as usize..2 * B as usize]);
    assert_eq!(&got[B as usize..2 * B as usize], &src_bytes[..B as usize]);
}

#[test]
fn clone_range_aligned_btrfs() {
    require_root!();
    clone_range_aligned_on(&btrfs_dir("clone_aligned"));
}

#[test]
fn clone_range_aligned_xfs() {
    require_root!();
    clone_range_aligned_on(&xfs_dir("clone_aligned"));
}

#[test]
fn clone_range_len_zero_means_to_end_of_source() {
    require_root!();
    let dir = btrfs_dir("clone_len0");
    // An unaligned tail is fine when the range runs to the end of the source.
    let src_bytes = data(2, 3 * B as usize + 1000);
    let src = write_file(&dir.join("src"), &src_bytes);
    let dst = new_file(&dir.join("dst"));
    sys::clone_range(&src, B, 0, &dst, 0).unwrap();
    assert_eq!(read_all(&dir.join("dst")), &src_bytes[B as usize..]);
    // From exactly the end: nothing to do, not an error.
    let dst2 = new_file(&dir.join("dst2"));
    sys::clone_range(&src, src_bytes.len() as u64, 0, &dst2, 0).unwrap();
    assert_eq!(dst2.metadata().unwrap().len(), 0);
    // Past the end: a typed error.
    let err = sys::clone_range(&src, 100 * B, 0, &dst2, 0).unwrap_err();
    assert!(matches!(err, SysError::InvalidRange(_)), "{err:?}");
}

#[test]
fn clone_range_unaligned_is_a_typed_error() {
    require_root!();
    for dir in [btrfs_dir("clone_unaligned"), xfs_dir("clone_unaligned")] {
        let src = write_file(&dir.join("src"), &data(3, 4 * B as usize));
        let dst = new_file(&dir.join("dst"));
        for (s, l, d) in [(100, B, 0), (0, B, 512), (0, B + 1, 0)] {
            let err = sys::clone_range(&src, s, l, &dst, d).unwrap_err();
            match err {
                SysError::Unaligned { block_size, .. } => assert_eq!(block_size, B),
                e => panic!(
                    "{} ({s}, {l}, {d}): expected Unaligned, got {e:?}",
                    dir.path().display()
                ),
            }
            assert!(err_text(s, l, d, &src, &dst).starts_with("range not aligned"));
        }
    }
}

fn err_text(s: u64, l: u64, d: u64, src: &File, dst: &File) -> String {
    sys::clone_range(src, s, l, dst, d).unwrap_err().to_string()
}

#[test]
fn clone_across_filesystems_is_cross_device() {
    require_root!();
    let a = btrfs_dir("xdev");
    let b = xfs_dir("xdev");
    let src = write_file(&a.join("src"), &data(4, B as usize));
    let dst = new_file(&b.join("dst"));
    let err = sys::clone_range(&src, 0, B, &dst, 0).unwrap_err();
    assert!(matches!(err, SysError::CrossDevice), "{err:?}");
    let err = sys::clone_file(&src, &dst).unwrap_err();
    assert!(matches!(err, SysError::CrossDevice), "{err:?}");
}

#[test]
fn ext4_cannot_reflink() {
    require_root!();
    let dir = ext4_dir("noreflink");
    let src = write_file(&dir.join("src"), &data(5, B as usize));
    let dst = new_file(&dir.join("dst"));
    let err = sys::clone_range(&src, 0, B, &dst, 0).unwrap_err();
    assert!(matches!(err, SysError::NotSupported(_)), "{err:?}");
    assert_eq!(err.to_string(), "filesystem cannot reflink");
    let err = sys::clone_file(&src, &dst).unwrap_err();
    assert!(matches!(err, SysError::NotSupported(_)), "{err:?}");
    assert!(!sys::probe_reflink(dir.path()).unwrap());
    assert_eq!(sys::fs_info(dir.path()).unwrap().kind, FsKind::Ext4);
}

#[test]
fn probe_reflink_and_fs_info() {
    require_root!();
    let b = btrfs_dir("probe");
    let x = xfs_dir("probe");
    for (dir, kind) in [(&b, FsKind::Btrfs), (&x, FsKind::Xfs)] {
        assert!(sys::probe_reflink(dir.path()).unwrap(), "{kind:?}");
        let info = sys::fs_info(dir.path()).unwrap();
        assert_eq!(info.kind, kind);
        assert_eq!(info.block_size, 4096);
        // The probe leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn clone_file_shares_everything() {
    require_root!();
    let dir = btrfs_dir("clone_file");
    let bytes = data(6, 5 * B as usize + 17);
    let src = write_file(&dir.join("src"), &bytes);
    let dst = new_file(&dir.join("dst"));
    sys::clone_file(&src, &dst).unwrap();
    assert_eq!(read_all(&dir.join("dst")), bytes);
    assert!(all_shared(&dst));
}

fn dedupe_on(dir: &TestDir) {
    let bytes = data(7, 64 * B as usize);
    let a = write_file(&dir.join("a"), &bytes);
    let b = write_file(&dir.join("b"), &bytes);
    assert!(!any_shared(&a) && !any_shared(&b));
    let out = sys::dedupe_range(&a, 0, 0, &b, 0).unwrap();
    assert_eq!(out, DedupeOutcome::Deduped(bytes.len() as u64));
    assert!(all_shared(&a), "{:?}", sys::fiemap(&a).unwrap());
    assert!(all_shared(&b), "{:?}", sys::fiemap(&b).unwrap());
    assert_eq!(read_all(&dir.join("b")), bytes);

    // Different data: nothing changes.
    let c = write_file(&dir.join("c"), &data(8, 64 * B as usize));
    let d = write_file(&dir.join("d"), &data(9, 64 * B as usize));
    let out = sys::dedupe_range(&c, 0, 64 * B, &d, 0).unwrap();
    assert_eq!(out, DedupeOutcome::Differs { deduped: 0 });
    assert!(!any_shared(&c) && !any_shared(&d));
}

#[test]
fn dedupe_btrfs() {
    require_root!();
    dedupe_on(&btrfs_dir("dedupe"));
}

#[test]
fn dedupe_xfs() {
    require_root!();
    dedupe_on(&xfs_dir("dedupe"));
}

#[test]
fn dedupe_more_than_one_kernel_call() {
    require_root!();
    // btrfs dedupes at most 16 MiB per call: 40 MiB needs the loop.
    let dir = btrfs_dir("dedupe_big");
    let bytes = data(10, 40 << 20);
    let a = write_file(&dir.join("a"), &bytes);
    let b = write_file(&dir.join("b"), &bytes);
    let out = sys::dedupe_range(&a, 0, 40 << 20, &b, 0).unwrap();
    assert_eq!(out, DedupeOutcome::Deduped(40 << 20));
    assert!(all_shared(&b));
    // The same first 30 MiB, then different: the kernel shares nothing of a
    // call that differs anywhere, so the first 16 MiB chunk is shared and
    // the second differs.
    let mut other = bytes.clone();
    other[(30 << 20)..].copy_from_slice(&data(11, 10 << 20));
    let c = write_file(&dir.join("c"), &other);
    assert_eq!(
        sys::dedupe_range(&a, 0, 40 << 20, &c, 0).unwrap(),
        DedupeOutcome::Differs {
            deduped: sys::DEDUPE_CHUNK
        }
    );
    let ext = sys::fiemap(&c).unwrap();
    let shared: u64 = ext.iter().filter(|e| e.is_shared()).map(|e| e.length).sum();
    assert_eq!(shared, sys::DEDUPE_CHUNK, "{ext:?}");
}

#[test]
fn fiemap_of_a_file_with_many_extents() {
    require_root!();
    for dir in [btrfs_dir("fiemap"), xfs_dir("fiemap")] {
        let f = new_file(&dir.join("holes"));
        // 300 separate blocks with holes between them: more than one batch.
        let n = 300u64;
        for i in 0..n {
            f.write_all_at(&data(i + 100, B as usize), i * 2 * B)
                .unwrap();
        }
        f.sync_all().unwrap();
        // XFS may report speculative preallocation in the holes as
        // unwritten extents; the written ones are what matters.
        let ext: Vec<_> = sys::fiemap(&f)
            .unwrap()
            .into_iter()
            .filter(|e| !e.is_unwritten())
            .collect();
        assert_eq!(ext.len() as u64, n, "{}", dir.path().display());
        for (i, e) in ext.iter().enumerate() {
            assert_eq!(e.logical, i as u64 * 2 * B);
            assert_eq!(e.length, B);
            assert!(!e.is_shared());
            if i as u64 == n - 1 {
                assert!(e.is_last() || dir.fs().fs_type() == FsType::Xfs);
            } else {
                assert!(!e.is_last());
            }
        }
        // An empty file has none.
        assert!(sys::fiemap(&new_file(&dir.join("empty")))
            .unwrap()
            .is_empty());
    }
}

#[test]
fn syncfs_works() {
    require_root!();
    let dir = btrfs_dir("syncfs");
    write_file(&dir.join("f"), b"x");
    sys::syncfs(&File::open(dir.path()).unwrap()).unwrap();
    sys::syncfs(&File::open(dir.join("f")).unwrap()).unwrap();
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[test]
fn subvolumes() {
    require_root!();
    let dir = btrfs_dir("subvol");
    assert!(sys::is_subvolume(dir.path()).unwrap());
    let sv = dir.join("sv");
    sys::subvolume_create(&sv).unwrap();
    assert!(sys::is_subvolume(&sv).unwrap());
    assert!(!sys::is_readonly(&sv).unwrap());
    std::fs::write(sv.join("file"), data(12, 10_000)).unwrap();
    std::fs::create_dir(dir.join("plain")).unwrap();
    assert!(!sys::is_subvolume(&dir.join("plain")).unwrap());
    assert!(!sys::is_subvolume(&sv.join("file")).unwrap());

    // A read-only snapshot in one call.
    let snap = dir.join("snap");
    sys::snapshot(&sv, &snap, true).unwrap();
    assert!(sys::is_subvolume(&snap).unwrap());
    assert!(sys::is_readonly(&snap).unwrap());
    assert_eq!(std::fs::read(snap.join("file")).unwrap(), data(12, 10_000));
    let e = std::fs::write(snap.join("new"), b"x").unwrap_err();
    assert_eq!(errno_of(&e), rustix::io::Errno::ROFS.raw_os_error(), "{e}");
    let e = OpenOptions::new()
        .write(true)
        .open(snap.join("file"))
        .unwrap_err();
    assert_eq!(errno_of(&e), rustix::io::Errno::ROFS.raw_os_error(), "{e}");

    // Snapshot onto an existing name fails, whatever is there.
    for existing in [&snap, &sv, &dir.join("plain")] {
        let err = sys::snapshot(&sv, existing, true).unwrap_err();
        assert!(matches!(err, SysError::Exists), "{err:?}");
    }
    // Snapshot of something that is not a subvolume.
    let err = sys::snapshot(&dir.join("plain"), &dir.join("snap2"), false).unwrap_err();
    assert!(matches!(err, SysError::NotSubvolume), "{err:?}");

    // Writable snapshot, then read-only flag on and off.
    let w = dir.join("w");
    sys::snapshot(&sv, &w, false).unwrap();
    assert!(!sys::is_readonly(&w).unwrap());
    std::fs::write(w.join("new"), b"x").unwrap();
    sys::set_readonly(&w, true).unwrap();
    assert!(sys::is_readonly(&w).unwrap());
    assert!(std::fs::write(w.join("new2"), b"x").is_err());
    sys::set_readonly(&w, false).unwrap();
    std::fs::write(w.join("new2"), b"x").unwrap();
    assert!(matches!(
        sys::set_readonly(&dir.join("plain"), true),
        Err(SysError::NotSubvolume)
    ));

    // Deleting a read-only subvolume.
    sys::subvolume_delete(&snap).unwrap();
    assert!(!snap.exists());
    assert!(matches!(
        sys::subvolume_delete(&dir.join("plain")),
        Err(SysError::NotSubvolume)
    ));
    assert!(matches!(
        sys::subvolume_delete(&snap),
        Err(SysError::NotFound)
    ));
}

#[test]
fn nested_read_only_subvolumes_are_deleted_recursively() {
    require_root!();
    let dir = btrfs_dir("nested");
    let outer = dir.join("outer");
    sys::subvolume_create(&outer).unwrap();
    std::fs::create_dir_all(outer.join("a/b")).unwrap();
    sys::subvolume_create(&outer.join("a/b/inner")).unwrap();
    sys::snapshot(&outer.join("a/b/inner"), &outer.join("ro"), true).unwrap();
    sys::set_readonly(&outer, true).unwrap();
    let mut nested = sys::nested_subvolumes(&outer).unwrap();
    nested.sort();
    assert_eq!(nested, vec![outer.join("a/b/inner"), outer.join("ro")]);
    let err = sys::subvolume_delete(&outer).unwrap_err();
    assert!(matches!(err, SysError::NotEmpty), "{err:?}");
    sys::subvolume_delete_recursive(&outer).unwrap();
    assert!(!outer.exists());
    // The test dir itself (a subvolume) is removed on drop, with whatever a
    // test leaves in it: leave a read-only one.
    sys::subvolume_create(&dir.join("left")).unwrap();
    sys::set_readonly(&dir.join("left"), true).unwrap();
}

#[test]
fn subvolumes_are_btrfs_only() {
    require_root!();
    let dir = xfs_dir("nosubvol");
    let err = sys::subvolume_create(&dir.join("sv")).unwrap_err();
    assert!(matches!(err, SysError::NotSupported(_)), "{err:?}");
    assert!(!sys::is_subvolume(dir.path()).unwrap());
    let info = sys::fs_info(dir.path()).unwrap();
    assert_eq!((info.kind, info.block_size), (FsKind::Xfs, 4096));
}
