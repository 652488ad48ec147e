//! Removing whatever a failed or killed writer left in `tmp/`: a file, a
//! plain directory tree (pools on XFS have no subvolumes), a writable or
//! read-only btrfs subvolume, subvolumes nested anywhere in them, whatever
//! the length or depth of the paths inside.
//!
//! How, and why this way:
//! - A subvolume goes by [`sys::subvolume_delete_at`]: one
//!   BTRFS_IOC_SNAP_DESTROY removes it with all its files without a walk;
//!   nested subvolumes are found by id, not by path.
//! - A plain tree is removed by an iterative, descriptor-relative walk: every
//!   call takes a directory descriptor and one name (`openat`, `unlinkat`,
//!   `statx`), never a path, so no path is ever longer than one component
//!   (a 5000-byte path or 2100 levels cannot hit PATH_MAX or ENAMETOOLONG).
//!   Only the current directory is open (plus, briefly, its parent or a
//!   child): going back up is `openat(cur, "..")`, checked to be the
//!   directory we came down from (device and inode), so the descriptors in
//!   use stay O(1) however deep the tree. The walk keeps, per level, the
//!   directory's name and the names of its subdirectories still to remove:
//!   memory is bounded by the entries of the tree, the Rust stack by nothing
//!   (no recursion). A subvolume met inside a plain tree (inode 256 on
//!   btrfs) is deleted as a subvolume, from the directory holding it.
//! - Nothing crosses into another mount: every directory entered is checked
//!   to be on the mount the removal started on (statx `STATX_MNT_ID`), and a
//!   mount point refuses the removal ([`SysError::MountPoint`]).
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Statx, StatxFlags};
use rustix::io::Errno;

use crate::{self as sys, SysError};

/// `BTRFS_FIRST_FREE_OBJECTID`: the inode number of a subvolume's root.
const SUBVOLUME_ROOT_INO: u64 = 256;

/// How often a directory that is still not empty after its entries were
/// removed (something appeared meanwhile) is read again before giving up.
const RESCANS: u32 = 3;

/// Removes `path`, whatever it is (see the module doc), refusing when
/// anything is mounted on it or below it (by `/proc/self/mountinfo`: a
/// subvolume is deleted whole, without a walk that would meet the mount,
/// and the kernel would detach such mounts silently). Nothing at `path` is
/// not an error.
pub fn remove_path(path: &Path) -> Result<()> {
    let Some(name) = path.file_name() else {
        bail!("not a name in a directory");
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let real_parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot resolve {}", parent.display())),
    };
    let real = real_parent.join(name);
    if let Some(m) = sys::mounts()?
        .into_iter()
        .find(|m| m.mount_point.starts_with(&real))
    {
        bail!(
            "{} is mounted on {} (reimage does not delete across mounts; unmount it first)",
            m.source,
            m.mount_point.display()
        );
    }
    let dir = std::fs::File::open(&real_parent)
        .with_context(|| format!("cannot open {}", real_parent.display()))?;
    remove_at(dir.as_fd(), name)
}

/// Removes the entry `name` of the directory `parent`, whatever it is (see
/// the module doc). Nothing there is not an error. Mounts are checked for
/// on the way of a walk only (statx), not below a subvolume: see
/// [`remove_path`].
pub fn remove_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<()> {
    let st = match stat_at(parent, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(sys_err("statx", e).into()),
    };
    if FileType::from_raw_mode(st.stx_mode.into()) != FileType::Directory {
        return unlink(parent, name, false).map_err(Into::into);
    }
    let mnt = statx_fd(&parent)?.stx_mnt_id;
    if st.stx_mnt_id != mnt {
        return Err(SysError::MountPoint.into());
    }
    let btrfs = sys::fs_info_fd(&parent)?.kind == sys::FsKind::Btrfs;
    if btrfs && st.stx_ino == SUBVOLUME_ROOT_INO {
        return sys::subvolume_delete_at(parent, name).map_err(Into::into);
    }
    remove_tree(parent, name, mnt, btrfs)
}

/// One directory on the way down.
struct Level {
    /// Its name in the directory above.
    name: OsString,
    /// Its identity, to check `..` on the way back up.
    dev: (u32, u32),
    ino: u64,
    /// Its subdirectories still to remove.
    pending: Vec<OsString>,
    rescans: u32,
}

/// What a subdirectory turned out to be when opened.
enum Entered {
    /// A plain directory: its descriptor and what it holds, files removed.
    Dir(OwnedFd, Level),
    /// The root of a btrfs subvolume.
    Subvolume,
    /// Gone already.
    Gone,
}

/// Removes the plain directory `name` of `parent` and everything below it.
fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr, mnt: u64, btrfs: bool) -> Result<()> {
    let (mut cur, first) = match enter(parent, name, mnt, btrfs, 0)? {
        Entered::Dir(fd, level) => (fd, level),
        Entered::Subvolume => return sys::subvolume_delete_at(parent, name).map_err(Into::into),
        Entered::Gone => return Ok(()),
    };
    let mut levels = vec![first];
    loop {
        let depth = levels.len();
        let next = levels.last_mut().expect("not empty").pending.pop();
        if let Some(child) = next {
            let here = || format!("{depth} levels down, at {:?}", Lossy(&child));
            match enter(cur.as_fd(), &child, mnt, btrfs, 0).with_context(here)? {
                Entered::Dir(fd, level) => {
                    levels.push(level);
                    cur = fd;
                }
                Entered::Subvolume => {
                    sys::subvolume_delete_at(cur.as_fd(), &child).with_context(here)?
                }
                Entered::Gone => {}
            }
            continue;
        }
        // Everything below `cur` is gone: go up and remove it.
        let done = levels.pop().expect("not empty");
        let up = match levels.last() {
            None => None,
            Some(above) => {
                let up = open_dir(cur.as_fd(), OsStr::new(".."))
                    .map_err(|e| sys_err("open ..", e))
                    .with_context(|| format!("{depth} levels down"))?;
                let st = statx_fd(&up)?;
                if (st.stx_dev_major, st.stx_dev_minor) != above.dev || st.stx_ino != above.ino {
                    return Err(SysError::TreeChanged)
                        .with_context(|| format!("{depth} levels down"));
                }
                Some(up)
            }
        };
        drop(cur);
        let holder = up.as_ref().map_or(parent, |u| u.as_fd());
        match unlink(holder, &done.name, true) {
            Ok(()) => {}
            // Something appeared meanwhile: read it again.
            Err(SysError::NotEmpty) if done.rescans < RESCANS => {
                match enter(holder, &done.name, mnt, btrfs, done.rescans + 1)? {
                    Entered::Dir(fd, level) => {
                        levels.push(level);
                        cur = fd;
                        continue;
                    }
                    Entered::Subvolume => sys::subvolume_delete_at(holder, &done.name)?,
                    Entered::Gone => {}
                }
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{} levels down, at {:?}", depth - 1, Lossy(&done.name))
                })
            }
        }
        match up {
            Some(u) => cur = u,
            None => return Ok(()),
        }
    }
}

/// Opens the subdirectory `name` of `dir`, checks it, and if it is a plain
/// directory removes its non-directory entries and lists its subdirectories.
fn enter(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mnt: u64,
    btrfs: bool,
    rescans: u32,
) -> Result<Entered> {
    let fd = match open_dir(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Entered::Gone),
        // Not a directory (any more): remove it as a file.
        Err(Errno::NOTDIR | Errno::LOOP) => {
            unlink(dir, name, false)?;
            return Ok(Entered::Gone);
        }
        Err(e) => return Err(sys_err("open a directory", e).into()),
    };
    let st = statx_fd(&fd)?;
    if st.stx_mnt_id != mnt {
        return Err(SysError::MountPoint.into());
    }
    if btrfs && st.stx_ino == SUBVOLUME_ROOT_INO {
        return Ok(Entered::Subvolume);
    }
    let pending = clear_files(&fd)?;
    Ok(Entered::Dir(
        fd,
        Level {
            name: name.to_os_string(),
            dev: (st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            pending,
            rescans,
        },
    ))
}

/// Removes every entry of `dir` that is not a directory; returns the names
/// of its subdirectories. The names are read first and the directory
/// stream closed before anything is removed (removing while reading may
/// skip entries on some filesystems).
fn clear_files(dir: &OwnedFd) -> Result<Vec<OsString>> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in Dir::read_from(dir).map_err(|e| sys_err("read a directory", e))? {
        let entry = entry.map_err(|e| sys_err("read a directory", e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => match stat_at(dir.as_fd(), name) {
                Ok(st) => FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(sys_err("statx", e).into()),
            },
            _ => false,
        };
        if is_dir {
            dirs.push(name.to_os_string());
        } else {
            files.push(name.to_os_string());
        }
    }
    for f in files {
        match unlink(dir.as_fd(), &f, false) {
            Ok(()) => {}
            // It became a directory meanwhile.
            Err(SysError::Other(_, Errno::ISDIR)) => dirs.push(f),
            Err(e) => return Err(e).with_context(|| format!("at {:?}", Lossy(&f))),
        }
    }
    Ok(dirs)
}

fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `unlinkat`, a missing entry counting as removed.
fn unlink(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> Result<(), SysError> {
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    match rustix::fs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::NOTEMPTY) => Err(SysError::NotEmpty),
        Err(e) => Err(sys_err("remove", e)),
    }
}

fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Statx, Errno> {
    rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID,
    )
}

fn statx_fd(fd: &impl AsFd) -> Result<Statx, SysError> {
    rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID,
    )
    .map_err(|e| sys_err("statx", e))
}

fn sys_err(op: &'static str, e: Errno) -> SysError {
    SysError::from_errno(op, e)
}

/// A name shown in an error: long ones are cut (a 250-byte component is
/// noise in a message).
struct Lossy<'a>(&'a OsStr);

impl std::fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.to_string_lossy();
        if s.chars().count() > 40 {
            let head: String = s.chars().take(32).collect();
            write!(f, "\"{head}...\" ({} bytes)", self.0.len())
        } else {
            write!(f, "{s:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_in_messages() {
        assert_eq!(format!("{:?}", Lossy(OsStr::new("usr"))), "\"usr\"");
        let long = "x".repeat(250);
        assert_eq!(
            format!("{:?}", Lossy(OsStr::new(&long))),
            format!("\"{}...\" (250 bytes)", "x".repeat(32))
        );
    }

    /// A deep tree of plain directories on whatever filesystem `TMPDIR` is:
    /// the walk needs no root and no btrfs for that part. (That it holds
    /// O(1) descriptors is checked by tests/tmp_cleanup.rs, which runs the
    /// binary under a small descriptor limit.)
    #[test]
    fn removes_a_tree_deeper_than_path_max() {
        let tmp = tempfile::tempdir().unwrap();
        let base = open_dir(rustix::fs::CWD, tmp.path().as_os_str()).unwrap();
        rustix::fs::mkdirat(&base, "top", Mode::from_raw_mode(0o755)).unwrap();
        let mut cur = open_dir(base.as_fd(), OsStr::new("top")).unwrap();
        let long = "n".repeat(250);
        for i in 0..2100 {
            let name = if i % 100 == 0 { long.as_str() } else { "d" };
            // A file, a symlink and an empty read-only directory on the way.
            if i % 500 == 0 {
                let f = rustix::fs::openat(
                    &cur,
                    "f",
                    OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )
                .unwrap();
                drop(f);
                rustix::fs::symlinkat("/nonexistent", &cur, "l").unwrap();
                rustix::fs::mkdirat(&cur, "empty", Mode::from_raw_mode(0o555)).unwrap();
            }
            rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)).unwrap();
            cur = open_dir(cur.as_fd(), OsStr::new(name)).unwrap();
        }
        drop(cur);
        remove_at(base.as_fd(), OsStr::new("top")).unwrap();
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
        // Nothing there: fine.
        remove_at(base.as_fd(), OsStr::new("top")).unwrap();
    }
}
