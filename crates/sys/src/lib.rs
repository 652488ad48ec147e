//! The one crate of reimage that owns unsafe code: thin, safe wrappers around the
//! ioctls reimage needs (FICLONERANGE, FICLONE, FIDEDUPERANGE, btrfs
//! subvolumes, FIEMAP), syncfs and statfs, with errno mapped to [`SysError`].
//!
//! Rules kept here:
//! - every `unsafe` block carries a `// SAFETY:` comment;
//! - every `repr(C)` struct names the kernel header it mirrors, and its size
//!   is checked at compile time;
//! - opcodes are built with [`rustix::ioctl::opcode`] from the header's
//!   `_IOW`/`_IOWR` definition, never written as numbers;
//! - where rustix or reflink-copy already wrap a call (FICLONE, FICLONERANGE,
//!   syncfs, statfs), they are used instead.
//!
//! Errors carry no path: the caller knows which file or directory it asked
//! about and adds it as context.

pub mod rmtree;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::ioctl::{self, opcode, Opcode};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::num::NonZeroU64;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Errors of the system layer, in words a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysError {
    /// The filesystem does not implement the operation (EOPNOTSUPP, ENOTTY,
    /// ENOSYS); the string is what it cannot do, e.g. "reflink".
    #[error("filesystem cannot {0}")]
    NotSupported(&'static str),
    /// EXDEV.
    #[error("source and destination are on different filesystems")]
    CrossDevice,
    /// EINVAL where an offset or length is not a multiple of the block size.
    #[error(
        "range not aligned to the filesystem block size {block_size} \
         (source offset {src_off}, destination offset {dst_off}, length {len})"
    )]
    Unaligned {
        src_off: u64,
        dst_off: u64,
        len: u64,
        block_size: u64,
    },
    /// EINVAL for any other reason (past the end of the source, overlapping
    /// ranges in one file, not regular files).
    #[error("invalid range: {0}")]
    InvalidRange(String),
    /// EROFS.
    #[error("read-only filesystem or subvolume")]
    ReadOnly,
    /// EEXIST.
    #[error("already exists")]
    Exists,
    /// ENOENT.
    #[error("no such file or directory")]
    NotFound,
    /// The directory is not the root of a btrfs subvolume.
    #[error("not a btrfs subvolume")]
    NotSubvolume,
    /// ENOTEMPTY, e.g. deleting a subvolume that still holds other subvolumes.
    #[error("not empty (a subvolume holding other subvolumes cannot be deleted before them)")]
    NotEmpty,
    /// EPERM, EACCES.
    #[error("permission denied (btrfs subvolume operations and loop mounts need root)")]
    PermissionDenied,
    /// ENOSPC.
    #[error("no space left on the filesystem")]
    NoSpace,
    /// A directory on the way is on another mount: reimage never deletes
    /// across mounts.
    #[error(
        "a mount point is in the way (reimage does not delete across mounts; unmount it first)"
    )]
    MountPoint,
    /// A directory or subvolume was not where the filesystem's own records
    /// (or the walk so far) put it: the tree changed while being deleted.
    #[error("the tree changed while it was being deleted")]
    TreeChanged,
    /// A subvolume name that btrfs cannot take.
    #[error("invalid subvolume name {0:?} (needs a final component of 1..=4039 bytes, no NUL)")]
    InvalidName(PathBuf),
    /// Anything else: the operation and the kernel's errno.
    #[error("{0} failed: {1}")]
    Other(&'static str, Errno),
}

impl SysError {
    /// Maps an errno from operation `op` ("reflink", "create subvolumes", ...).
    pub(crate) fn from_errno(op: &'static str, e: Errno) -> SysError {
        match e {
            Errno::OPNOTSUPP | Errno::NOTTY | Errno::NOSYS => SysError::NotSupported(op),
            Errno::XDEV => SysError::CrossDevice,
            Errno::ROFS => SysError::ReadOnly,
            Errno::EXIST => SysError::Exists,
            Errno::NOENT => SysError::NotFound,
            Errno::NOTEMPTY => SysError::NotEmpty,
            Errno::PERM | Errno::ACCESS => SysError::PermissionDenied,
            Errno::NOSPC => SysError::NoSpace,
            e => SysError::Other(op, e),
        }
    }

    fn from_io(op: &'static str, e: &std::io::Error) -> SysError {
        match Errno::from_io_error(e) {
            Some(errno) => SysError::from_errno(op, errno),
            None => SysError::Other(op, Errno::IO),
        }
    }

    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        Some(match self {
            SysError::NotSupported(_) => Errno::OPNOTSUPP,
            SysError::CrossDevice => Errno::XDEV,
            SysError::Unaligned { .. } | SysError::InvalidRange(_) | SysError::InvalidName(_) => {
                Errno::INVAL
            }
            SysError::ReadOnly => Errno::ROFS,
            SysError::Exists => Errno::EXIST,
            SysError::NotFound => Errno::NOENT,
            SysError::NotEmpty => Errno::NOTEMPTY,
            SysError::PermissionDenied => Errno::PERM,
            SysError::NoSpace => Errno::NOSPC,
            SysError::MountPoint => Errno::BUSY,
            SysError::TreeChanged => Errno::STALE,
            SysError::NotSubvolume => return None,
            SysError::Other(_, e) => *e,
        })
    }
}

impl From<SysError> for std::io::Error {
    fn from(e: SysError) -> std::io::Error {
        let kind = e.errno().map_or(std::io::ErrorKind::Other, |e| e.kind());
        std::io::Error::new(kind, e)
    }
}

// ---------------------------------------------------------------------------
// Filesystem identity

/// `f_type` values from `linux/magic.h`.
const BTRFS_SUPER_MAGIC: u64 = 0x9123_683e;
const XFS_SUPER_MAGIC: u64 = 0x5846_5342;
const EXT4_SUPER_MAGIC: u64 = 0xef53;
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `BTRFS_FIRST_FREE_OBJECTID` (linux/btrfs_tree.h): the inode number of
/// every subvolume's root directory.
const BTRFS_FIRST_FREE_OBJECTID: u64 = 256;

/// The kind of filesystem a path lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FsKind {
    Btrfs,
    Xfs,
    /// ext2/3/4 share one magic number.
    Ext4,
    Tmpfs,
    /// Anything else, by its statfs magic number.
    Other(u64),
}

impl FsKind {
    fn from_magic(magic: u64) -> FsKind {
        match magic {
            BTRFS_SUPER_MAGIC => FsKind::Btrfs,
            XFS_SUPER_MAGIC => FsKind::Xfs,
            EXT4_SUPER_MAGIC => FsKind::Ext4,
            TMPFS_MAGIC => FsKind::Tmpfs,
            m => FsKind::Other(m),
        }
    }

    /// A short lower-case name ("btrfs", "xfs", "ext4", "tmpfs", "0x1234abcd").
    pub fn name(&self) -> String {
        match self {
            FsKind::Btrfs => "btrfs".into(),
            FsKind::Xfs => "xfs".into(),
            FsKind::Ext4 => "ext4".into(),
            FsKind::Tmpfs => "tmpfs".into(),
            FsKind::Other(m) => format!("{m:#x}"),
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// What statfs says about the filesystem holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FsInfo {
    pub kind: FsKind,
    /// `f_bsize`: the block size reflinks and dedupe must be aligned to.
    pub block_size: u64,
}

fn fs_info_from(st: &rustix::fs::StatFs) -> FsInfo {
    // f_type is a signed word; magics are 32-bit values (BTRFS_SUPER_MAGIC
    // has its top bit set, so on 32-bit targets it arrives negative).
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u32 as u64;
    #[allow(clippy::unnecessary_cast)]
    let block_size = st.f_bsize as u64;
    FsInfo {
        kind: FsKind::from_magic(magic),
        block_size,
    }
}

/// The filesystem kind and block size of the filesystem holding `path`.
pub fn fs_info(path: &Path) -> Result<FsInfo, SysError> {
    let st = rustix::fs::statfs(path).map_err(|e| SysError::from_errno("statfs", e))?;
    Ok(fs_info_from(&st))
}

/// [`fs_info`] for an open file or directory.
pub fn fs_info_fd(file: &impl AsFd) -> Result<FsInfo, SysError> {
    let st = rustix::fs::fstatfs(file).map_err(|e| SysError::from_errno("statfs", e))?;
    Ok(fs_info_from(&st))
}

/// Flushes every dirty page and inode of the filesystem holding `file` (one
/// `syncfs(2)`: how reimage makes a whole compose durable at once).
pub fn syncfs(file_or_dir: &File) -> Result<(), SysError> {
    rustix::fs::syncfs(file_or_dir).map_err(|e| SysError::from_errno("syncfs", e))
}

// ---------------------------------------------------------------------------
// Mounts

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mount's id, and the id of the mount it is mounted on.
    pub id: u64,
    pub parent: u64,
    /// The path inside the filesystem mounted here (`/deploy/3` for a btrfs
    /// subvolume mounted with `subvol=`; `/` for a whole filesystem).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// The device or other source ("/dev/loop3", "tmpfs", ...).
    pub source: String,
}

/// The mounts of this process's mount namespace, in kernel order (a mount
/// comes after the one it is mounted over).
pub fn mounts() -> Result<Vec<MountEntry>, SysError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| SysError::from_io("read /proc/self/mountinfo", &e))?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

/// `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut ids = left.split(' ').map(|w| w.parse::<u64>().ok());
    let (id, parent) = (ids.next()??, ids.next()??);
    let root = unescape_mountinfo(left.split(' ').nth(3)?);
    let mount_point = unescape_mountinfo(left.split(' ').nth(4)?);
    let mut r = right.split(' ');
    let fs_type = unescape_mountinfo(r.next()?);
    let source = unescape_mountinfo(r.next().unwrap_or(""));
    Some(MountEntry {
        id,
        parent,
        root: PathBuf::from(root),
        mount_point: PathBuf::from(mount_point),
        fs_type,
        source,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount visible at exactly `path` (the topmost, when several are
/// stacked), if `path` is a mount point. `path` should be absolute and
/// free of symlinks, as mountinfo's are.
pub fn mounted_at(path: &Path) -> Result<Option<MountEntry>, SysError> {
    Ok(mounts()?.into_iter().rev().find(|m| m.mount_point == path))
}

/// The file behind loop device `dev` (`/dev/loopN`), from sysfs.
pub fn loop_backing_file(dev: &Path) -> Option<PathBuf> {
    let name = dev.file_name()?.to_str()?;
    if !name.starts_with("loop") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

// ---------------------------------------------------------------------------
// Reflinks

/// Shares `len` bytes of `src` at `src_off` into `dst` at `dst_off`
/// (FICLONERANGE, via reflink-copy). `dst` must be open for writing.
///
/// `len == 0` means "to the end of the source" (the kernel's convention for
/// FICLONERANGE): never pass 0 meaning "nothing". Offsets and `len` must be
/// multiples of the filesystem block size, except that a range ending at the
/// end of the source may have an unaligned length; anything else is
/// [`SysError::Unaligned`]. A filesystem without reflinks gives
/// [`SysError::NotSupported`]; two filesystems [`SysError::CrossDevice`].
pub fn clone_range(
    src: &File,
    src_off: u64,
    len: u64,
    dst: &File,
    dst_off: u64,
) -> Result<(), SysError> {
    let len = match NonZeroU64::new(len) {
        Some(l) => l,
        None => {
            let size = src
                .metadata()
                .map_err(|e| SysError::from_io("reflink", &e))?
                .len();
            match size.checked_sub(src_off).and_then(NonZeroU64::new) {
                Some(l) => l,
                // Nothing from src_off to the end: nothing to share.
                None if size == src_off => return Ok(()),
                None => {
                    return Err(SysError::InvalidRange(format!(
                        "source offset {src_off} is past the end of the source ({size} bytes)"
                    )))
                }
            }
        }
    };
    reflink_copy::ReflinkBlockBuilder::new(src, dst, len)
        .from_offset(src_off)
        .to_offset(dst_off)
        .reflink_block()
        .map_err(|e| range_error("reflink", &e, src, src_off, len.get(), dst, dst_off))
}

/// Maps the error of a clone or dedupe of a range: EINVAL becomes
/// [`SysError::Unaligned`] when some number is off the block size.
fn range_error(
    op: &'static str,
    e: &std::io::Error,
    src: &File,
    src_off: u64,
    len: u64,
    dst: &File,
    dst_off: u64,
) -> SysError {
    if Errno::from_io_error(e) != Some(Errno::INVAL) {
        return SysError::from_io(op, e);
    }
    let src_size = src.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let block_size = fs_info_fd(dst).map(|i| i.block_size).unwrap_or(4096).max(1);
    let len_ok = len % block_size == 0 || src_off.saturating_add(len) == src_size;
    if src_off % block_size != 0 || dst_off % block_size != 0 || !len_ok {
        return SysError::Unaligned {
            src_off,
            dst_off,
            len,
            block_size,
        };
    }
    SysError::InvalidRange(format!(
        "cannot {op} {len} bytes at {src_off} (source size {src_size}) to offset {dst_off}: \
         past the end of the source, overlapping ranges in one file, or not regular files"
    ))
}

/// Asks the kernel to start reading `[off, off + len)` of `file` into the
/// page cache (`posix_fadvise(POSIX_FADV_WILLNEED)`), without waiting: a
/// later read or FIDEDUPERANGE of the range then finds it there. Only a hint;
/// a filesystem that ignores it is no error.
pub fn prefetch(file: &File, off: u64, len: u64) -> Result<(), SysError> {
    let Some(len) = NonZeroU64::new(len) else {
        return Ok(());
    };
    rustix::fs::fadvise(file, off, Some(len), rustix::fs::Advice::WillNeed)
        .map_err(|e| SysError::from_errno("fadvise", e))
}

/// Starts writing `[off, off + len)` of `file` back to disk without waiting
/// (`posix_fadvise(POSIX_FADV_DONTNEED)`, which also drops the range's clean
/// pages from the page cache). Data staged in many ranges and cloned
/// elsewhere afterwards is then written in one pass instead of one
/// synchronous write per clone (FICLONERANGE waits for its source range to
/// be on disk). Only a hint: durability still needs an fsync.
pub fn start_writeback(file: &File, off: u64, len: u64) -> Result<(), SysError> {
    let Some(len) = NonZeroU64::new(len) else {
        return Ok(());
    };
    rustix::fs::fadvise(file, off, Some(len), rustix::fs::Advice::DontNeed)
        .map_err(|e| SysError::from_errno("fadvise", e))
}

/// Makes `dst` share all of `src`'s data (FICLONE). `dst` must be open for
/// writing; its old content is replaced up to the size of `src`, and a `dst`
/// longer than `src` keeps its tail, so clone into an empty file.
pub fn clone_file(src: &File, dst: &File) -> Result<(), SysError> {
    rustix::fs::ioctl_ficlone(dst, src).map_err(|e| SysError::from_errno("reflink", e))
}

/// Creates a small file in `dir` and tries to reflink it. `Ok(false)` means
/// the filesystem cannot reflink; errors are anything else (cannot write
/// there, ...). The probe files are unnamed (O_TMPFILE) where the filesystem
/// allows, else removed at once.
pub fn probe_reflink(dir: &Path) -> Result<bool, SysError> {
    use std::io::Write;
    let mut a = tempfile::tempfile_in(dir).map_err(|e| SysError::from_io("write a file", &e))?;
    let b = tempfile::tempfile_in(dir).map_err(|e| SysError::from_io("write a file", &e))?;
    a.write_all(&[0x5a; 4096])
        .map_err(|e| SysError::from_io("write a file", &e))?;
    match clone_file(&a, &b) {
        Ok(()) => Ok(true),
        Err(SysError::NotSupported(_)) => Ok(false),
        // Some filesystems say EINVAL for an unsupported clone (e.g. FUSE, NFS).
        Err(SysError::Other(_, Errno::INVAL)) => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// Dedupe

/// `struct file_dedupe_range_info` from `linux/fs.h`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FileDedupeRangeInfo {
    dest_fd: i64,
    dest_offset: u64,
    bytes_deduped: u64,
    status: i32,
    reserved: u32,
}

/// `struct file_dedupe_range` from `linux/fs.h` (header only; `info[]`
/// follows it in [`DedupeOne`]).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FileDedupeRange {
    src_offset: u64,
    src_length: u64,
    dest_count: u16,
    reserved1: u16,
    reserved2: u32,
}

/// A `struct file_dedupe_range` with exactly one `info[]` element.
#[repr(C)]
#[derive(Debug, Default)]
struct DedupeOne {
    range: FileDedupeRange,
    info: [FileDedupeRangeInfo; 1],
}

const _: () = assert!(std::mem::size_of::<FileDedupeRange>() == 24);
const _: () = assert!(std::mem::size_of::<FileDedupeRangeInfo>() == 32);
const _: () = assert!(std::mem::size_of::<DedupeOne>() == 56);

/// `FIDEDUPERANGE = _IOWR(0x94, 54, struct file_dedupe_range)` (linux/fs.h).
const FIDEDUPERANGE: Opcode = opcode::read_write::<FileDedupeRange>(0x94, 54);
/// `FILE_DEDUPE_RANGE_SAME`, `FILE_DEDUPE_RANGE_DIFFERS` (linux/fs.h).
const FILE_DEDUPE_RANGE_SAME: i32 = 0;
const FILE_DEDUPE_RANGE_DIFFERS: i32 = 1;

/// The most [`dedupe_range`] asks the kernel for in one call
/// (`BTRFS_MAX_DEDUPE_LEN`, 16 MiB).
pub const DEDUPE_CHUNK: u64 = 16 << 20;

/// The outcome of [`dedupe_range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupeOutcome {
    /// All bytes asked for now share storage.
    Deduped(u64),
    /// The contents differ; the kernel changed nothing from that point on.
    /// `deduped` bytes before it (in earlier steps) were shared.
    Differs { deduped: u64 },
}

/// Makes `len` bytes of `dst` at `dst_off` share storage with `src` at
/// `src_off`, only if the bytes are identical (FIDEDUPERANGE with one
/// destination; the kernel compares under lock). `dst` must be open for
/// writing (or owned by the caller). `len == 0` means "to the end of the
/// source". Alignment rules are those of [`clone_range`].
///
/// The kernel compares the whole range of one call and shares nothing of it
/// if any byte differs. This asks for at most [`DEDUPE_CHUNK`] bytes per call
/// (the most btrfs handles at once), and loops, also when the kernel did less
/// than asked, until all is done or a chunk differs: so
/// [`DedupeOutcome::Differs`] reports how much before it was shared.
pub fn dedupe_range(
    src: &File,
    src_off: u64,
    len: u64,
    dst: &File,
    dst_off: u64,
) -> Result<DedupeOutcome, SysError> {
    let len = if len == 0 {
        let size = src
            .metadata()
            .map_err(|e| SysError::from_io("deduplicate", &e))?
            .len();
        size.checked_sub(src_off).ok_or_else(|| {
            SysError::InvalidRange(format!(
                "source offset {src_off} is past the end of the source ({size} bytes)"
            ))
        })?
    } else {
        len
    };
    let dest_fd = i64::from(std::os::fd::AsRawFd::as_raw_fd(dst));
    let mut done = 0u64;
    while done < len {
        let mut arg = DedupeOne {
            range: FileDedupeRange {
                src_offset: src_off + done,
                src_length: (len - done).min(DEDUPE_CHUNK),
                dest_count: 1,
                ..Default::default()
            },
            info: [FileDedupeRangeInfo {
                dest_fd,
                dest_offset: dst_off + done,
                ..Default::default()
            }],
        };
        // SAFETY: FIDEDUPERANGE reads a `struct file_dedupe_range` followed
        // by `dest_count` (= 1) `file_dedupe_range_info` entries and writes
        // `bytes_deduped` and `status` back into them; `DedupeOne` is exactly
        // that layout (repr(C), sizes asserted above) and lives across the
        // call. `dest_fd` is a descriptor borrowed from `dst`, open for the
        // whole call.
        let res = unsafe {
            ioctl::ioctl(
                src,
                ioctl::Updater::<FIDEDUPERANGE, DedupeOne>::new(&mut arg),
            )
        };
        let io = |e: Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
        if let Err(e) = res {
            return Err(range_error(
                "deduplicate",
                &io(e),
                src,
                src_off + done,
                len - done,
                dst,
                dst_off + done,
            ));
        }
        let info = arg.info[0];
        match info.status {
            FILE_DEDUPE_RANGE_SAME => {
                if info.bytes_deduped == 0 {
                    return Err(SysError::Other("deduplicate (no progress)", Errno::IO));
                }
                done += info.bytes_deduped;
            }
            FILE_DEDUPE_RANGE_DIFFERS => return Ok(DedupeOutcome::Differs { deduped: done }),
            s if s < 0 => {
                let e = Errno::from_raw_os_error(-s);
                return Err(range_error(
                    "deduplicate",
                    &io(e),
                    src,
                    src_off + done,
                    len - done,
                    dst,
                    dst_off + done,
                ));
            }
            s => {
                return Err(SysError::Other(
                    "deduplicate (unknown status)",
                    Errno::from_raw_os_error(s),
                ))
            }
        }
    }
    Ok(DedupeOutcome::Deduped(done))
}

// ---------------------------------------------------------------------------
// FIEMAP

/// `struct fiemap_extent` from `linux/fiemap.h`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FiemapExtent {
    fe_logical: u64,
    fe_physical: u64,
    fe_length: u64,
    fe_reserved64: [u64; 2],
    fe_flags: u32,
    fe_reserved: [u32; 3],
}

/// `struct fiemap` from `linux/fiemap.h` (header only; `fm_extents[]`
/// follows it in [`FiemapBuf`]).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct Fiemap {
    fm_start: u64,
    fm_length: u64,
    fm_flags: u32,
    fm_mapped_extents: u32,
    fm_extent_count: u32,
    fm_reserved: u32,
}

const FIEMAP_BATCH: usize = 128;

/// A `struct fiemap` with room for [`FIEMAP_BATCH`] extents.
#[repr(C)]
struct FiemapBuf {
    map: Fiemap,
    extents: [FiemapExtent; FIEMAP_BATCH],
}

const _: () = assert!(std::mem::size_of::<FiemapExtent>() == 56);
const _: () = assert!(std::mem::size_of::<Fiemap>() == 32);

/// `FS_IOC_FIEMAP = _IOWR('f', 11, struct fiemap)` (linux/fs.h).
const FS_IOC_FIEMAP: Opcode = opcode::read_write::<Fiemap>(b'f', 11);
/// `FIEMAP_FLAG_SYNC` (linux/fiemap.h): flush delayed allocation first.
const FIEMAP_FLAG_SYNC: u32 = 0x1;

/// One extent of a file as FIEMAP reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Extent {
    /// Offset in the file.
    pub logical: u64,
    /// Offset on the device (0 for inline or unknown extents).
    pub physical: u64,
    pub length: u64,
    /// `FIEMAP_EXTENT_*` flags.
    pub flags: u32,
}

impl Extent {
    /// `FIEMAP_EXTENT_*` values from `linux/fiemap.h`.
    pub const LAST: u32 = 0x1;
    pub const UNKNOWN: u32 = 0x2;
    pub const DELALLOC: u32 = 0x4;
    pub const ENCODED: u32 = 0x8;
    pub const NOT_ALIGNED: u32 = 0x100;
    pub const DATA_INLINE: u32 = 0x200;
    pub const UNWRITTEN: u32 = 0x800;
    pub const SHARED: u32 = 0x2000;

    /// The data is referenced by more than one file or offset (reflinked,
    /// deduped or in a snapshot).
    pub fn is_shared(&self) -> bool {
        self.flags & Self::SHARED != 0
    }
    /// The last extent of the file.
    pub fn is_last(&self) -> bool {
        self.flags & Self::LAST != 0
    }
    /// Allocated but never written (preallocation; XFS speculatively
    /// preallocates around written data): reads as zeros.
    pub fn is_unwritten(&self) -> bool {
        self.flags & Self::UNWRITTEN != 0
    }
    /// Stored inline in metadata (small files on btrfs): cannot be reflinked.
    pub fn is_inline(&self) -> bool {
        self.flags & Self::DATA_INLINE != 0
    }
}

/// Every extent of `file`, in file order (FS_IOC_FIEMAP with
/// FIEMAP_FLAG_SYNC, asked in batches until the kernel marks the last one).
/// Holes are simply absent. Note btrfs may report adjacent extents merged
/// or split differently from its extent tree; for disk usage, count the
/// extent tree (as compsize does), not this.
pub fn fiemap(file: &File) -> Result<Vec<Extent>, SysError> {
    let mut out = Vec::new();
    let mut start = 0u64;
    let mut buf = Box::new(FiemapBuf {
        map: Fiemap::default(),
        extents: [FiemapExtent::default(); FIEMAP_BATCH],
    });
    loop {
        buf.map = Fiemap {
            fm_start: start,
            fm_length: u64::MAX - start,
            fm_flags: FIEMAP_FLAG_SYNC,
            fm_extent_count: FIEMAP_BATCH as u32,
            ..Default::default()
        };
        // SAFETY: FS_IOC_FIEMAP reads a `struct fiemap` and writes at most
        // `fm_extent_count` `struct fiemap_extent` entries right after it;
        // `FiemapBuf` is that layout (repr(C), sizes asserted above) with
        // exactly `FIEMAP_BATCH` entries, and it outlives the call.
        unsafe {
            ioctl::ioctl(
                file,
                ioctl::Updater::<FS_IOC_FIEMAP, FiemapBuf>::new(&mut buf),
            )
        }
        .map_err(|e| SysError::from_errno("map extents (FIEMAP)", e))?;
        let n = (buf.map.fm_mapped_extents as usize).min(FIEMAP_BATCH);
        if n == 0 {
            break;
        }
        for fe in &buf.extents[..n] {
            out.push(Extent {
                logical: fe.fe_logical,
                physical: fe.fe_physical,
                length: fe.fe_length,
                flags: fe.fe_flags,
            });
        }
        let last = out[out.len() - 1];
        if last.is_last() || last.length == 0 {
            break;
        }
        let next = last.logical.saturating_add(last.length);
        if next <= start {
            break;
        }
        start = next;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// btrfs subvolumes

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
/// `BTRFS_PATH_NAME_MAX` (linux/btrfs.h).
const BTRFS_PATH_NAME_MAX: usize = 4087;
/// `BTRFS_SUBVOL_NAME_MAX` (linux/btrfs.h).
const BTRFS_SUBVOL_NAME_MAX: usize = 4039;
/// `BTRFS_SUBVOL_RDONLY` (linux/btrfs.h).
const BTRFS_SUBVOL_RDONLY: u64 = 1 << 1;

/// `struct btrfs_ioctl_vol_args` from `linux/btrfs.h`.
#[repr(C)]
struct BtrfsVolArgs {
    fd: i64,
    name: [u8; BTRFS_PATH_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_vol_args_v2` from `linux/btrfs.h`. The first union
/// (`size` + `qgroup_inherit`, or `unused[4]`) is kept as `unused`, the
/// second (`name`, or `devid`/`subvolid`) as `name`: reimage sets only names.
#[repr(C)]
struct BtrfsVolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; BTRFS_SUBVOL_NAME_MAX + 1],
}

const _: () = assert!(std::mem::size_of::<BtrfsVolArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<BtrfsVolArgsV2>() == 4096);

/// `BTRFS_IOC_SUBVOL_CREATE = _IOW(BTRFS_IOCTL_MAGIC, 14, struct btrfs_ioctl_vol_args)`.
const BTRFS_IOC_SUBVOL_CREATE: Opcode = opcode::write::<BtrfsVolArgs>(BTRFS_IOCTL_MAGIC, 14);
/// `BTRFS_IOC_SNAP_DESTROY = _IOW(BTRFS_IOCTL_MAGIC, 15, struct btrfs_ioctl_vol_args)`.
const BTRFS_IOC_SNAP_DESTROY: Opcode = opcode::write::<BtrfsVolArgs>(BTRFS_IOCTL_MAGIC, 15);
/// `BTRFS_IOC_SNAP_CREATE_V2 = _IOW(BTRFS_IOCTL_MAGIC, 23, struct btrfs_ioctl_vol_args_v2)`.
const BTRFS_IOC_SNAP_CREATE_V2: Opcode = opcode::write::<BtrfsVolArgsV2>(BTRFS_IOCTL_MAGIC, 23);
/// `BTRFS_IOC_SUBVOL_GETFLAGS = _IOR(BTRFS_IOCTL_MAGIC, 25, __u64)`.
const BTRFS_IOC_SUBVOL_GETFLAGS: Opcode = opcode::read::<u64>(BTRFS_IOCTL_MAGIC, 25);
/// `BTRFS_IOC_SUBVOL_SETFLAGS = _IOW(BTRFS_IOCTL_MAGIC, 26, __u64)`.
const BTRFS_IOC_SUBVOL_SETFLAGS: Opcode = opcode::write::<u64>(BTRFS_IOCTL_MAGIC, 26);

/// `struct btrfs_ioctl_ino_lookup_args` from `linux/btrfs.h`.
#[repr(C)]
struct BtrfsInoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; BTRFS_INO_LOOKUP_PATH_MAX],
}

/// `BTRFS_INO_LOOKUP_PATH_MAX` (linux/btrfs.h).
const BTRFS_INO_LOOKUP_PATH_MAX: usize = 4080;

const _: () = assert!(std::mem::size_of::<BtrfsInoLookupArgs>() == 4096);

/// `BTRFS_IOC_INO_LOOKUP = _IOWR(BTRFS_IOCTL_MAGIC, 18, struct btrfs_ioctl_ino_lookup_args)`.
const BTRFS_IOC_INO_LOOKUP: Opcode =
    opcode::read_write::<BtrfsInoLookupArgs>(BTRFS_IOCTL_MAGIC, 18);

/// Opens a directory for ioctls (read-only, no following of a final symlink).
fn open_dir(path: &Path, op: &'static str) -> Result<OwnedFd, SysError> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOTDIR | Errno::LOOP => SysError::NotSubvolume,
        e => SysError::from_errno(op, e),
    })
}

/// [`open_dir`] for the one component `name` of the directory `parent`.
fn open_dir_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    op: &'static str,
) -> Result<OwnedFd, SysError> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOTDIR | Errno::LOOP => SysError::NotSubvolume,
        e => SysError::from_errno(op, e),
    })
}

/// Copies the single path component `name` NUL-terminated into `buf` (which
/// is zeroed), refusing what no subvolume can be named.
fn copy_name(name: &OsStr, buf: &mut [u8]) -> Result<(), SysError> {
    let b = name.as_bytes();
    if b.is_empty()
        || b.len() >= buf.len()
        || b.contains(&0)
        || b.contains(&b'/')
        || b == b"."
        || b == b".."
    {
        return Err(SysError::InvalidName(PathBuf::from(name)));
    }
    buf[..b.len()].copy_from_slice(b);
    Ok(())
}

/// Splits `path` into its parent directory (opened) and final name, copied
/// NUL-terminated into `buf`.
fn parent_and_name(path: &Path, buf: &mut [u8], op: &'static str) -> Result<OwnedFd, SysError> {
    let bad = || SysError::InvalidName(path.to_path_buf());
    let name = path.file_name().ok_or_else(bad)?;
    copy_name(name, buf).map_err(|_| bad())?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    open_dir(parent, op)
}

/// Creates an empty subvolume at `path` (whose parent must be on btrfs).
pub fn subvolume_create(path: &Path) -> Result<(), SysError> {
    const OP: &str = "create subvolumes";
    let mut args = Box::new(BtrfsVolArgs {
        fd: 0,
        name: [0; BTRFS_PATH_NAME_MAX + 1],
    });
    let parent = parent_and_name(path, &mut args.name, OP)?;
    subvol_create_ioctl(parent.as_fd(), args)
}

/// Creates an empty subvolume `name` in the directory `parent` (one path
/// component, so it works at any depth).
pub fn subvolume_create_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), SysError> {
    let mut args = Box::new(BtrfsVolArgs {
        fd: 0,
        name: [0; BTRFS_PATH_NAME_MAX + 1],
    });
    copy_name(name, &mut args.name)?;
    subvol_create_ioctl(parent, args)
}

fn subvol_create_ioctl(parent: BorrowedFd<'_>, args: Box<BtrfsVolArgs>) -> Result<(), SysError> {
    // SAFETY: BTRFS_IOC_SUBVOL_CREATE reads one `struct btrfs_ioctl_vol_args`
    // (mirrored by `BtrfsVolArgs`, size asserted) whose `name` is
    // NUL-terminated (the buffer was zeroed and the name is shorter than it);
    // `fd` is unused by this ioctl.
    unsafe {
        ioctl::ioctl(
            parent,
            ioctl::Setter::<BTRFS_IOC_SUBVOL_CREATE, BtrfsVolArgs>::new(*args),
        )
    }
    .map_err(|e| SysError::from_errno("create subvolumes", e))
}

/// Snapshots the subvolume `src` as a new subvolume `dst` (one
/// BTRFS_IOC_SNAP_CREATE_V2 call; with `readonly`, the snapshot is created
/// read-only by the same call, so it is never visible writable). Fails with
/// [`SysError::Exists`] if `dst` exists. Nested subvolumes of `src` are not
/// included (they appear as empty directories).
pub fn snapshot(src: &Path, dst: &Path, readonly: bool) -> Result<(), SysError> {
    const OP: &str = "snapshot subvolumes";
    let source = open_dir(src, OP)?;
    let mut args = Box::new(BtrfsVolArgsV2 {
        fd: i64::from(std::os::fd::AsRawFd::as_raw_fd(&source)),
        transid: 0,
        flags: if readonly { BTRFS_SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; BTRFS_SUBVOL_NAME_MAX + 1],
    });
    let parent = parent_and_name(dst, &mut args.name, OP)?;
    // SAFETY: BTRFS_IOC_SNAP_CREATE_V2 reads one `struct
    // btrfs_ioctl_vol_args_v2` (mirrored by `BtrfsVolArgsV2`, size asserted):
    // `fd` is the open source subvolume (alive until the end of this
    // function), `flags` only BTRFS_SUBVOL_RDONLY (no qgroup pointer is
    // read), `name` NUL-terminated within the buffer.
    unsafe {
        ioctl::ioctl(
            &parent,
            ioctl::Setter::<BTRFS_IOC_SNAP_CREATE_V2, BtrfsVolArgsV2>::new(*args),
        )
    }
    .map_err(|e| match e {
        // The source is not a subvolume root.
        Errno::INVAL if !is_subvolume(src).unwrap_or(false) => SysError::NotSubvolume,
        e => SysError::from_errno(OP, e),
    })
}

/// One BTRFS_IOC_SNAP_DESTROY of the subvolume `name` in `parent`: the
/// subvolume goes with all its files, however many and however deep, in one
/// call ([`SysError::NotEmpty`] if it holds other subvolumes).
fn snap_destroy(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), SysError> {
    let mut args = Box::new(BtrfsVolArgs {
        fd: 0,
        name: [0; BTRFS_PATH_NAME_MAX + 1],
    });
    copy_name(name, &mut args.name)?;
    // SAFETY: BTRFS_IOC_SNAP_DESTROY reads one `struct btrfs_ioctl_vol_args`
    // (mirrored by `BtrfsVolArgs`, size asserted) whose `name` is
    // NUL-terminated (zeroed buffer, shorter name); `fd` is unused by this ioctl.
    unsafe {
        ioctl::ioctl(
            parent,
            ioctl::Setter::<BTRFS_IOC_SNAP_DESTROY, BtrfsVolArgs>::new(*args),
        )
    }
    .map_err(|e| SysError::from_errno("delete subvolumes", e))
}

/// Deletes the subvolume at `path` (BTRFS_IOC_SNAP_DESTROY on its parent),
/// read-only or not, with all its files. Limits: needs root (or the
/// `user_subvol_rm_allowed` mount option for writable subvolumes); fails
/// with [`SysError::NotEmpty`] if it holds other subvolumes (see
/// [`subvolume_delete_recursive`]), and with [`SysError::ReadOnly`] if its
/// parent directory is in a read-only subvolume. Deletion is quick; the
/// space is freed in the background by the btrfs cleaner.
pub fn subvolume_delete(path: &Path) -> Result<(), SysError> {
    if !is_subvolume(path)? {
        return Err(SysError::NotSubvolume);
    }
    let mut name = [0; BTRFS_PATH_NAME_MAX + 1];
    let parent = parent_and_name(path, &mut name, "delete subvolumes")?;
    snap_destroy(parent.as_fd(), path.file_name().expect("checked"))
}

/// Deletes the subvolume at `path` and every subvolume nested in it, deepest
/// first ([`subvolume_delete_at`] on its parent directory).
pub fn subvolume_delete_recursive(path: &Path) -> Result<(), SysError> {
    if !is_subvolume(path)? {
        return Err(SysError::NotSubvolume);
    }
    let mut name = [0; BTRFS_PATH_NAME_MAX + 1];
    let parent = parent_and_name(path, &mut name, "delete subvolumes")?;
    subvolume_delete_at(parent.as_fd(), path.file_name().expect("checked"))
}

/// Deletes the subvolume `name` in the directory `parent` with everything in
/// it, nested subvolumes included, whatever the length or depth of the paths
/// inside: nothing here builds a path or walks the tree.
///
/// One BTRFS_IOC_SNAP_DESTROY deletes a subvolume and all its files. Only
/// when the kernel says it holds other subvolumes (ENOTEMPTY) are they
/// looked up, by id: the root tree's `ROOT_REF` items (TREE_SEARCH_V2,
/// needs root) give every subvolume below it, each with the inode of the
/// directory holding it and its name; that directory is reached from its
/// subvolume's root one component at a time, following the directory's
/// `INODE_REF` items up to the root (holding one or two descriptors at a
/// time, whatever the depth). They are then deleted deepest first, each
/// with SNAP_DESTROY on the directory holding it, a read-only subvolume
/// holding one being made writable first (its directory loses an entry).
///
/// Why not BTRFS_IOC_SNAP_DESTROY_V2 with BTRFS_SUBVOL_SPEC_BY_ID: to delete
/// by id the kernel rebuilds the subvolume's path from the top of the
/// filesystem into a PATH_MAX buffer (`btrfs_get_subvol_name_from_objectid`),
/// so on 6.18 it fails with ENAMETOOLONG for a subvolume nested 2100
/// directories deep: exactly the case this is for. It also needs the parent
/// writable, which takes a descriptor of the parent subvolume anyway.
///
/// Never crosses into another mount: a directory on the way to a nested
/// subvolume that is on another mount is refused ([`SysError::MountPoint`]).
pub fn subvolume_delete_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), SysError> {
    match snap_destroy(parent, name) {
        Err(SysError::NotEmpty) => {}
        other => return other,
    }
    let top = open_dir_at(parent, name, "delete subvolumes")?;
    delete_nested(&top)?;
    snap_destroy(parent, name)
}

/// A subvolume below another, from its `ROOT_REF` item.
#[derive(Debug, Clone)]
struct RootRef {
    id: u64,
    parent: u64,
    /// The inode (in `parent`'s tree) of the directory holding it.
    dirid: u64,
    name: OsString,
}

/// Deletes every subvolume below the subvolume whose root is `top` (see
/// [`subvolume_delete_at`]).
fn delete_nested(top: &OwnedFd) -> Result<(), SysError> {
    let mnt = mount_id_fd(top)?;
    let top_id = subvolume_id(top)?;
    let mut search = TreeSearch::new();
    // Breadth first: every subvolume comes after the one holding it.
    let mut below = root_refs(&mut search, top, top_id)?;
    let mut i = 0;
    while i < below.len() {
        let more = root_refs(&mut search, top, below[i].id)?;
        below.extend(more);
        i += 1;
    }
    let by_id: std::collections::HashMap<u64, usize> =
        below.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for r in below.iter().rev() {
        let holder = open_subvolume(&mut search, top, top_id, r.parent, &below, &by_id, mnt)?;
        if subvol_flags(&holder)? & BTRFS_SUBVOL_RDONLY != 0 {
            set_flags(&holder, false)?;
        }
        let dir = open_inode_dir(&mut search, &holder, r.parent, r.dirid, mnt)?;
        match snap_destroy(dir.as_fd(), &r.name) {
            Ok(()) | Err(SysError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The subvolumes directly below subvolume `parent` (its `ROOT_REF` items in
/// the root tree).
fn root_refs(search: &mut TreeSearch, fd: &OwnedFd, parent: u64) -> Result<Vec<RootRef>, SysError> {
    let mut out = Vec::new();
    let mut bad = false;
    search.run(
        fd,
        BTRFS_ROOT_TREE_OBJECTID,
        (parent, BTRFS_ROOT_REF_KEY, 0),
        (parent, BTRFS_ROOT_REF_KEY, u64::MAX),
        &mut |(obj, ty, off), data| {
            if obj != parent || ty != BTRFS_ROOT_REF_KEY {
                return;
            }
            match parse_root_ref(data) {
                Some((dirid, name)) => out.push(RootRef {
                    id: off,
                    parent,
                    dirid,
                    name: OsStr::from_bytes(name).to_os_string(),
                }),
                None => bad = true,
            }
        },
    )?;
    if bad {
        return Err(SysError::Other("read a ROOT_REF item", Errno::UCLEAN));
    }
    Ok(out)
}

/// `struct btrfs_root_ref` (linux/btrfs_tree.h, packed, little-endian):
/// dirid u64, sequence u64, name_len u16, then the name.
fn parse_root_ref(item: &[u8]) -> Option<(u64, &[u8])> {
    let dirid = u64::from_le_bytes(item.get(0..8)?.try_into().ok()?);
    let len = u16::from_le_bytes(item.get(16..18)?.try_into().ok()?) as usize;
    Some((dirid, item.get(18..18 + len)?))
}

/// `struct btrfs_inode_ref` (linux/btrfs_tree.h, packed, little-endian):
/// index u64, name_len u16, then the name (the first one, for a directory
/// the only one).
fn parse_inode_ref(item: &[u8]) -> Option<&[u8]> {
    let len = u16::from_le_bytes(item.get(8..10)?.try_into().ok()?) as usize;
    item.get(10..10 + len)
}

/// The root of subvolume `id` (`top_id` itself, or one below it listed in
/// `below`), reached from `top` one subvolume at a time.
fn open_subvolume(
    search: &mut TreeSearch,
    top: &OwnedFd,
    top_id: u64,
    id: u64,
    below: &[RootRef],
    by_id: &std::collections::HashMap<u64, usize>,
    mnt: u64,
) -> Result<OwnedFd, SysError> {
    const OP: &str = "open a nested subvolume";
    // The chain of subvolumes from `id` up to (not including) `top_id`.
    let mut chain = Vec::new();
    let mut at = id;
    while at != top_id {
        let &i = by_id.get(&at).ok_or(SysError::TreeChanged)?;
        chain.push(i);
        at = below[i].parent;
    }
    let mut cur = open_dir_at(top.as_fd(), OsStr::new("."), OP)?;
    for &i in chain.iter().rev() {
        let r = &below[i];
        let dir = open_inode_dir(search, &cur, r.parent, r.dirid, mnt)?;
        let next = open_dir_at(dir.as_fd(), &r.name, OP)?;
        let st = statx_fd(&next)?;
        if st.stx_mnt_id != mnt {
            return Err(SysError::MountPoint);
        }
        if st.stx_ino != BTRFS_FIRST_FREE_OBJECTID || subvolume_id(&next)? != r.id {
            return Err(SysError::TreeChanged);
        }
        cur = next;
    }
    Ok(cur)
}

/// The directory with inode `dirid` in subvolume `tree`, whose root is
/// `root`: its `INODE_REF` items give each directory's name and parent up to
/// the root; it is then opened from the root one component at a time, each
/// checked to be the inode expected, on the same mount.
fn open_inode_dir(
    search: &mut TreeSearch,
    root: &OwnedFd,
    tree: u64,
    dirid: u64,
    mnt: u64,
) -> Result<OwnedFd, SysError> {
    const OP: &str = "find a directory by inode (INODE_REF)";
    // (name, inode) from `dirid` up to the root's child.
    let mut up: Vec<(OsString, u64)> = Vec::new();
    let mut ino = dirid;
    while ino != BTRFS_FIRST_FREE_OBJECTID {
        // A directory has one INODE_REF; more than a million levels is a loop.
        if up.len() > 1 << 20 {
            return Err(SysError::Other(OP, Errno::LOOP));
        }
        let mut found: Option<(u64, OsString)> = None;
        let mut bad = false;
        search.run(
            root,
            tree,
            (ino, BTRFS_INODE_REF_KEY, 0),
            (ino, BTRFS_INODE_REF_KEY, u64::MAX),
            &mut |(obj, ty, off), data| {
                if obj != ino || ty != BTRFS_INODE_REF_KEY || found.is_some() {
                    return;
                }
                match parse_inode_ref(data) {
                    Some(n) => found = Some((off, OsStr::from_bytes(n).to_os_string())),
                    None => bad = true,
                }
            },
        )?;
        if bad {
            return Err(SysError::Other(OP, Errno::UCLEAN));
        }
        let (parent, name) = found.ok_or(SysError::TreeChanged)?;
        up.push((name, ino));
        ino = parent;
    }
    let mut cur = open_dir_at(root.as_fd(), OsStr::new("."), OP)?;
    for (name, ino) in up.iter().rev() {
        let next = open_dir_at(cur.as_fd(), name, OP)?;
        let st = statx_fd(&next)?;
        if st.stx_mnt_id != mnt {
            return Err(SysError::MountPoint);
        }
        if st.stx_ino != *ino {
            return Err(SysError::TreeChanged);
        }
        cur = next;
    }
    Ok(cur)
}

/// The id of the subvolume holding `fd` (BTRFS_IOC_INO_LOOKUP of inode 256
/// with tree id 0, as `btrfs inspect-internal rootid` does; no root needed).
pub fn subvolume_id(fd: &impl AsFd) -> Result<u64, SysError> {
    let mut args = Box::new(BtrfsInoLookupArgs {
        treeid: 0,
        objectid: BTRFS_FIRST_FREE_OBJECTID,
        name: [0; BTRFS_INO_LOOKUP_PATH_MAX],
    });
    // SAFETY: BTRFS_IOC_INO_LOOKUP reads and writes back one `struct
    // btrfs_ioctl_ino_lookup_args` (mirrored by `BtrfsInoLookupArgs`, size
    // asserted), which lives across the call; for objectid 256 it writes
    // the tree id and an empty name.
    unsafe {
        ioctl::ioctl(
            fd,
            ioctl::Updater::<BTRFS_IOC_INO_LOOKUP, BtrfsInoLookupArgs>::new(&mut args),
        )
    }
    .map_err(|e| SysError::from_errno("look up the subvolume id (INO_LOOKUP)", e))?;
    Ok(args.treeid)
}

/// `struct btrfs_ioctl_fs_info_args` (linux/btrfs.h).
#[repr(C)]
struct BtrfsFsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    nodesize: u32,
    sectorsize: u32,
    clone_alignment: u32,
    csum_type: u16,
    csum_size: u16,
    flags: u64,
    generation: u64,
    metadata_uuid: [u8; 16],
    reserved: [u8; 944],
}
const _: () = assert!(std::mem::size_of::<BtrfsFsInfoArgs>() == 1024);
/// `BTRFS_IOC_FS_INFO = _IOR(BTRFS_IOCTL_MAGIC, 31, struct btrfs_ioctl_fs_info_args)`.
const BTRFS_IOC_FS_INFO: Opcode = opcode::read::<BtrfsFsInfoArgs>(BTRFS_IOCTL_MAGIC, 31);
// (_IOR: the kernel also reads `flags` in, hence `Updater` below.)

/// `BTRFS_FS_INFO_FLAG_METADATA_UUID` (linux/btrfs.h): fill `metadata_uuid`.
const BTRFS_FS_INFO_FLAG_METADATA_UUID: u64 = 1 << 2;

/// The UUID of the btrfs filesystem holding `fd` (its fsid: what `blkid`
/// and `UUID=` in fstab or on the kernel command line name), as text.
pub fn btrfs_uuid(fd: &impl AsFd) -> Result<String, SysError> {
    let mut args = Box::new(BtrfsFsInfoArgs {
        max_id: 0,
        num_devices: 0,
        fsid: [0; 16],
        nodesize: 0,
        sectorsize: 0,
        clone_alignment: 0,
        csum_type: 0,
        csum_size: 0,
        flags: BTRFS_FS_INFO_FLAG_METADATA_UUID,
        generation: 0,
        metadata_uuid: [0; 16],
        reserved: [0; 944],
    });
    // SAFETY: BTRFS_IOC_FS_INFO reads the `flags` field (asking for the
    // metadata UUID; kernels before 5.0 ignore the flag) and writes back one
    // `struct btrfs_ioctl_fs_info_args` (mirrored by `BtrfsFsInfoArgs`, size
    // asserted), which lives across the call.
    unsafe {
        ioctl::ioctl(
            fd,
            ioctl::Updater::<BTRFS_IOC_FS_INFO, BtrfsFsInfoArgs>::new(&mut args),
        )
    }
    .map_err(|e| SysError::from_errno("read the filesystem's UUID (FS_INFO)", e))?;
    let text = |u: [u8; 16]| {
        format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
        )
    };
    let fsid = text(args.fsid);
    // A copy of a mounted filesystem (same fsid on another device) is
    // mounted by Linux 6.7+ under a random in-memory "temp-fsid"; the fsid
    // on disk, which blkid and UUID= name, is then the metadata UUID.
    let temp = std::fs::read_to_string(format!("/sys/fs/btrfs/{fsid}/temp_fsid"))
        .is_ok_and(|t| t.trim() == "1");
    if temp && args.flags & BTRFS_FS_INFO_FLAG_METADATA_UUID != 0 {
        return Ok(text(args.metadata_uuid));
    }
    Ok(fsid)
}

/// The subvolumes directly nested in the tree at `root` (not descending into
/// them): from the `ROOT_REF` items of the subvolume holding `root`, those
/// whose directory is `root` or below it (by its `INODE_REF` items), so
/// nothing is walked and no path is looked up. Needs root (TREE_SEARCH); an
/// empty list where there are no subvolumes (not btrfs). A returned path may
/// be longer than the kernel takes (PATH_MAX): delete such ones with
/// [`subvolume_delete_recursive`] on an ancestor or [`subvolume_delete_at`].
pub fn nested_subvolumes(root: &Path) -> Result<Vec<PathBuf>, SysError> {
    const OP: &str = "list nested subvolumes";
    let fd = open_dir(root, OP)?;
    if fs_info_fd(&fd)?.kind != FsKind::Btrfs {
        return Ok(Vec::new());
    }
    let root_ino = statx_fd(&fd)?.stx_ino;
    let tree = subvolume_id(&fd)?;
    let mut search = TreeSearch::new();
    let mut found = Vec::new();
    for r in root_refs(&mut search, &fd, tree)? {
        // The components from `root` down to the directory holding it.
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut ino = r.dirid;
        let mut under = ino == root_ino;
        while !under && ino != BTRFS_FIRST_FREE_OBJECTID {
            let mut step = None;
            search.run(
                &fd,
                tree,
                (ino, BTRFS_INODE_REF_KEY, 0),
                (ino, BTRFS_INODE_REF_KEY, u64::MAX),
                &mut |(obj, ty, off), data| {
                    if obj == ino && ty == BTRFS_INODE_REF_KEY && step.is_none() {
                        step = parse_inode_ref(data).map(|n| (off, n.to_vec()));
                    }
                },
            )?;
            let (parent, name) = step.ok_or(SysError::TreeChanged)?;
            names.push(name);
            ino = parent;
            under = ino == root_ino;
        }
        if !under {
            continue;
        }
        let mut p = root.to_path_buf();
        for n in names.iter().rev() {
            p.push(OsStr::from_bytes(n));
        }
        p.push(&r.name);
        found.push(p);
    }
    Ok(found)
}

fn statx_fd(fd: &impl AsFd) -> Result<rustix::fs::Statx, SysError> {
    use rustix::fs::{AtFlags, StatxFlags};
    rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID,
    )
    .map_err(|e| SysError::from_errno("statx", e))
}

/// The id of the mount holding `fd` (statx `STATX_MNT_ID`).
pub fn mount_id_fd(fd: &impl AsFd) -> Result<u64, SysError> {
    Ok(statx_fd(fd)?.stx_mnt_id)
}

/// Whether `path` is the root directory of a btrfs subvolume (a directory on
/// btrfs with inode number 256). `Ok(false)` for anything else that exists.
pub fn is_subvolume(path: &Path) -> Result<bool, SysError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| SysError::from_io("stat", &e))?;
    if !meta.is_dir() || meta.ino() != BTRFS_FIRST_FREE_OBJECTID {
        return Ok(false);
    }
    Ok(fs_info(path)?.kind == FsKind::Btrfs)
}

fn subvol_flags(dir: &OwnedFd) -> Result<u64, SysError> {
    // SAFETY: BTRFS_IOC_SUBVOL_GETFLAGS writes one `__u64` into the buffer
    // `Getter` provides for `u64`.
    unsafe { ioctl::ioctl(dir, ioctl::Getter::<BTRFS_IOC_SUBVOL_GETFLAGS, u64>::new()) }
        .map_err(|e| SysError::from_errno("read subvolume flags", e))
}

/// Sets or clears BTRFS_SUBVOL_RDONLY on the subvolume whose root is `dir`
/// (BTRFS_IOC_SUBVOL_SETFLAGS; other flags are kept).
fn set_flags(dir: &OwnedFd, readonly: bool) -> Result<(), SysError> {
    const OP: &str = "set subvolume flags";
    let old = subvol_flags(dir)?;
    let new = if readonly {
        old | BTRFS_SUBVOL_RDONLY
    } else {
        old & !BTRFS_SUBVOL_RDONLY
    };
    if new == old {
        return Ok(());
    }
    // SAFETY: BTRFS_IOC_SUBVOL_SETFLAGS reads one `__u64` from the pointer
    // `Setter` passes for `u64`.
    unsafe {
        ioctl::ioctl(
            dir,
            ioctl::Setter::<BTRFS_IOC_SUBVOL_SETFLAGS, u64>::new(new),
        )
    }
    .map_err(|e| SysError::from_errno(OP, e))
}

/// Whether the subvolume at `path` is read-only (BTRFS_IOC_SUBVOL_GETFLAGS).
pub fn is_readonly(path: &Path) -> Result<bool, SysError> {
    if !is_subvolume(path)? {
        return Err(SysError::NotSubvolume);
    }
    let dir = open_dir(path, "read subvolume flags")?;
    Ok(subvol_flags(&dir)? & BTRFS_SUBVOL_RDONLY != 0)
}

/// Makes the subvolume at `path` read-only or writable
/// (BTRFS_IOC_SUBVOL_SETFLAGS; other flags are kept).
pub fn set_readonly(path: &Path, readonly: bool) -> Result<(), SysError> {
    if !is_subvolume(path)? {
        return Err(SysError::NotSubvolume);
    }
    let dir = open_dir(path, "set subvolume flags")?;
    set_flags(&dir, readonly)
}

// ---------------------------------------------------------------------------
// btrfs tree search: the file extent items behind a file's data, and the
// subvolume and directory references that find nested subvolumes by id

/// `struct btrfs_ioctl_search_key` from `linux/btrfs.h`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct BtrfsSearchKey {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: u64,
    unused2: u64,
    unused3: u64,
    unused4: u64,
}

/// `struct btrfs_ioctl_search_args_v2` from `linux/btrfs.h` (header only:
/// `key` and `buf_size`; `buf[]` follows it in [`SearchBuf`]).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct BtrfsSearchArgsV2 {
    key: BtrfsSearchKey,
    buf_size: u64,
}

/// Bytes of result buffer per TREE_SEARCH_V2 call (compsize uses the same).
const SEARCH_BUF: usize = 64 * 1024;

/// A `struct btrfs_ioctl_search_args_v2` with a [`SEARCH_BUF`]-byte `buf[]`.
#[repr(C)]
struct SearchBuf {
    args: BtrfsSearchArgsV2,
    buf: [u8; SEARCH_BUF],
}

/// `sizeof(struct btrfs_ioctl_search_header)` (linux/btrfs.h): transid,
/// objectid, offset (u64 each), type, len (u32 each), in native byte order.
const SEARCH_HEADER_LEN: usize = 32;

const _: () = assert!(std::mem::size_of::<BtrfsSearchKey>() == 104);
const _: () = assert!(std::mem::size_of::<BtrfsSearchArgsV2>() == 112);

/// `BTRFS_IOC_TREE_SEARCH_V2 = _IOWR(BTRFS_IOCTL_MAGIC, 17, struct btrfs_ioctl_search_args_v2)`.
const BTRFS_IOC_TREE_SEARCH_V2: Opcode =
    opcode::read_write::<BtrfsSearchArgsV2>(BTRFS_IOCTL_MAGIC, 17);
/// `BTRFS_EXTENT_DATA_KEY`, `BTRFS_INODE_ITEM_KEY`, `BTRFS_INODE_REF_KEY`,
/// `BTRFS_ROOT_REF_KEY` (linux/btrfs_tree.h).
const BTRFS_EXTENT_DATA_KEY: u32 = 108;
const BTRFS_INODE_ITEM_KEY: u32 = 1;
const BTRFS_INODE_REF_KEY: u32 = 12;
const BTRFS_ROOT_REF_KEY: u32 = 156;
/// `BTRFS_ROOT_TREE_OBJECTID` (linux/btrfs_tree.h): the tree of all
/// subvolumes (their `ROOT_ITEM`s and the `ROOT_REF`s linking them).
const BTRFS_ROOT_TREE_OBJECTID: u64 = 1;
/// Offset of `mode` in `struct btrfs_inode_item` (packed: generation,
/// transid, size, nbytes, block_group u64; nlink, uid, gid, mode u32).
const INODE_ITEM_MODE: usize = 52;
/// `BTRFS_FILE_EXTENT_INLINE`, `_REG`, `_PREALLOC` (linux/btrfs_tree.h).
const BTRFS_FILE_EXTENT_INLINE: u8 = 0;
const BTRFS_FILE_EXTENT_REG: u8 = 1;
const BTRFS_FILE_EXTENT_PREALLOC: u8 = 2;
/// Offset of `disk_bytenr` in `struct btrfs_file_extent_item` (packed:
/// generation u64, ram_bytes u64, compression u8, encryption u8,
/// other_encoding u16, type u8), where inline data starts.
const FILE_EXTENT_INLINE_DATA: usize = 21;
/// `sizeof(struct btrfs_file_extent_item)` (packed) for non-inline extents.
const FILE_EXTENT_ITEM_LEN: usize = 53;

/// What kind of data a file extent item points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileExtentKind {
    /// Data stored in the item itself (small files); never shared.
    Inline,
    /// A (part of a) data extent on disk.
    Regular,
    /// Preallocated, unwritten space (reads as zeros), still on disk.
    Prealloc,
}

/// One `EXTENT_DATA` item of a btrfs file tree: a range of a file and the
/// part of a physical extent behind it (`struct btrfs_file_extent_item`).
/// A physical extent (`disk_bytenr`, `disk_num_bytes`) stays allocated while
/// any item anywhere references any part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FileExtent {
    /// Inode number of the file.
    pub ino: u64,
    /// Offset in the file where this range starts.
    pub file_offset: u64,
    pub kind: FileExtentKind,
    /// Compression type (0 none, 1 zlib, 2 lzo, 3 zstd).
    pub compression: u8,
    /// Start of the physical extent (0: a hole; inline: 0).
    pub disk_bytenr: u64,
    /// Allocated size of the physical extent (inline: bytes of the item's data).
    pub disk_num_bytes: u64,
    /// Offset of this range inside the (uncompressed) extent.
    pub extent_offset: u64,
    /// Length of this range of the file.
    pub num_bytes: u64,
    /// Uncompressed size of the whole extent.
    pub ram_bytes: u64,
}

impl FileExtent {
    /// A hole (a regular item with no disk extent): references nothing.
    pub fn is_hole(&self) -> bool {
        self.kind != FileExtentKind::Inline && self.disk_bytenr == 0
    }
}

/// Parses the body of an `EXTENT_DATA` item (little-endian on disk).
fn parse_file_extent(ino: u64, file_offset: u64, item: &[u8]) -> Option<FileExtent> {
    if item.len() < FILE_EXTENT_INLINE_DATA {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(item[i..i + 8].try_into().unwrap());
    let ram_bytes = u64_at(8);
    let compression = item[16];
    let kind = match item[20] {
        BTRFS_FILE_EXTENT_INLINE => FileExtentKind::Inline,
        BTRFS_FILE_EXTENT_REG => FileExtentKind::Regular,
        BTRFS_FILE_EXTENT_PREALLOC => FileExtentKind::Prealloc,
        _ => return None,
    };
    if kind == FileExtentKind::Inline {
        return Some(FileExtent {
            ino,
            file_offset,
            kind,
            compression,
            disk_bytenr: 0,
            disk_num_bytes: (item.len() - FILE_EXTENT_INLINE_DATA) as u64,
            extent_offset: 0,
            num_bytes: ram_bytes,
            ram_bytes,
        });
    }
    if item.len() < FILE_EXTENT_ITEM_LEN {
        return None;
    }
    Some(FileExtent {
        ino,
        file_offset,
        kind,
        compression,
        disk_bytenr: u64_at(21),
        disk_num_bytes: u64_at(29),
        extent_offset: u64_at(37),
        num_bytes: u64_at(45),
        ram_bytes,
    })
}

/// Runs BTRFS_IOC_TREE_SEARCH_V2 over the file tree of the subvolume holding
/// `fd` for keys `(min_ino, EXTENT_DATA, 0) ..= (max_ino, EXTENT_DATA, MAX)`
/// (compound key order), calling `each` for every `EXTENT_DATA` item found.
/// With `regular_only`, the search starts at the INODE_ITEM of `min_ino`
/// and reports only the items of regular files (a symlink's target is an
/// inline extent too).
fn search_file_extents(
    fd: &impl AsFd,
    min_ino: u64,
    max_ino: u64,
    regular_only: bool,
    each: &mut dyn FnMut(FileExtent),
) -> Result<(), SysError> {
    let first_type = if regular_only {
        BTRFS_INODE_ITEM_KEY
    } else {
        BTRFS_EXTENT_DATA_KEY
    };
    // The inode whose INODE_ITEM was seen last, and whether it is a regular file.
    let mut regular = (u64::MAX, false);
    // Tree 0: the subvolume of the file the ioctl is called on.
    TreeSearch::new().run(
        fd,
        0,
        (min_ino, first_type, 0),
        (max_ino, BTRFS_EXTENT_DATA_KEY, u64::MAX),
        &mut |(obj, ty, off), item| {
            if ty == BTRFS_INODE_ITEM_KEY && item.len() >= INODE_ITEM_MODE + 4 {
                let m = &item[INODE_ITEM_MODE..INODE_ITEM_MODE + 4];
                let mode = u32::from_le_bytes(m.try_into().unwrap());
                regular = (obj, mode & 0o170000 == 0o100000);
            }
            if ty == BTRFS_EXTENT_DATA_KEY && (!regular_only || regular == (obj, true)) {
                if let Some(fe) = parse_file_extent(obj, off, item) {
                    each(fe);
                }
            }
        },
    )
}

/// A btrfs key: (objectid, type, offset), compared in that order.
type Key = (u64, u32, u64);

/// A reusable BTRFS_IOC_TREE_SEARCH_V2 buffer.
struct TreeSearch {
    buf: Box<SearchBuf>,
}

impl TreeSearch {
    fn new() -> TreeSearch {
        TreeSearch {
            buf: Box::new(SearchBuf {
                args: BtrfsSearchArgsV2::default(),
                buf: [0; SEARCH_BUF],
            }),
        }
    }

    /// Calls `each(key, item)` for every item of tree
    /// `tree_id` (0: the subvolume holding `fd`) with a key in `min ..= max`
    /// (compound key order, as the kernel compares them), in key order,
    /// asking again after the last key returned until none is left. Needs
    /// CAP_SYS_ADMIN.
    fn run(
        &mut self,
        fd: &impl AsFd,
        tree_id: u64,
        min: Key,
        max: Key,
        each: &mut dyn FnMut(Key, &[u8]),
    ) -> Result<(), SysError> {
        const OP: &str = "search a btrfs tree (TREE_SEARCH_V2)";
        let buf = &mut self.buf;
        let mut from = min;
        loop {
            buf.args = BtrfsSearchArgsV2 {
                key: BtrfsSearchKey {
                    tree_id,
                    min_objectid: from.0,
                    max_objectid: max.0,
                    min_type: from.1,
                    max_type: max.1,
                    min_offset: from.2,
                    max_offset: max.2,
                    min_transid: 0,
                    max_transid: u64::MAX,
                    nr_items: u32::MAX,
                    ..Default::default()
                },
                buf_size: SEARCH_BUF as u64,
            };
            // SAFETY: BTRFS_IOC_TREE_SEARCH_V2 reads a `struct
            // btrfs_ioctl_search_args_v2` and writes at most `buf_size` bytes
            // of results into `buf[]` right after it (and `nr_items`/`buf_size`
            // back into the header); `SearchBuf` is that layout (repr(C),
            // header size asserted) with `buf_size` = the length of its `buf`,
            // and it outlives the call.
            unsafe {
                ioctl::ioctl(
                    fd,
                    ioctl::Updater::<BTRFS_IOC_TREE_SEARCH_V2, SearchBuf>::new(buf),
                )
            }
            .map_err(|e| SysError::from_errno(OP, e))?;
            let n = buf.args.key.nr_items;
            if n == 0 {
                return Ok(());
            }
            let mut pos = 0usize;
            let mut last = from;
            for _ in 0..n {
                if pos + SEARCH_HEADER_LEN > SEARCH_BUF {
                    return Err(SysError::Other(OP, Errno::OVERFLOW));
                }
                let h = &buf.buf[pos..pos + SEARCH_HEADER_LEN];
                let ne64 = |i: usize| u64::from_ne_bytes(h[i..i + 8].try_into().unwrap());
                let ne32 = |i: usize| u32::from_ne_bytes(h[i..i + 4].try_into().unwrap());
                let (obj, off, ty, len) = (ne64(8), ne64(16), ne32(24), ne32(28) as usize);
                let start = pos + SEARCH_HEADER_LEN;
                if start + len > SEARCH_BUF {
                    return Err(SysError::Other(OP, Errno::OVERFLOW));
                }
                each((obj, ty, off), &buf.buf[start..start + len]);
                last = (obj, ty, off);
                pos = start + len;
            }
            // Continue right after the last key returned.
            match next_key(last) {
                Some(k) if k <= max => from = k,
                _ => return Ok(()),
            }
        }
    }
}

/// The smallest btrfs key after `k` (types are 8 bits on disk).
fn next_key(k: Key) -> Option<Key> {
    match k {
        (o, t, off) if off < u64::MAX => Some((o, t, off + 1)),
        (o, t, _) if t < u32::from(u8::MAX) => Some((o, t + 1, 0)),
        (o, _, _) if o < u64::MAX => Some((o + 1, 0, 0)),
        _ => None,
    }
}

/// The `EXTENT_DATA` items of one file on btrfs, in file order: which part
/// of which physical extent backs each range (holes have `disk_bytenr` 0).
/// This reads the file tree (BTRFS_IOC_TREE_SEARCH_V2, as `compsize` does),
/// so unlike FIEMAP it gives each extent's real allocated size and the
/// offset into it. Needs CAP_SYS_ADMIN ([`SysError::PermissionDenied`]);
/// other filesystems give [`SysError::NotSupported`].
pub fn file_extents(file: &File) -> Result<Vec<FileExtent>, SysError> {
    let ino = file
        .metadata()
        .map_err(|e| SysError::from_io("stat", &e))?
        .ino();
    let mut out = Vec::new();
    search_file_extents(file, ino, ino, false, &mut |fe| out.push(fe))?;
    Ok(out)
}

/// Every `EXTENT_DATA` item of every regular file in the subvolume holding
/// `dir` (usually its root directory), in inode then file-offset order: one
/// scan of the subvolume's file tree, each inode once however many
/// hardlinks it has. Symlinks (whose targets btrfs keeps as inline extents)
/// are left out, as `compsize` leaves them out; so are files of nested
/// subvolumes. Same requirements as [`file_extents`].
pub fn subvolume_file_extents(
    dir: &File,
    each: &mut dyn FnMut(FileExtent),
) -> Result<(), SysError> {
    search_file_extents(dir, BTRFS_FIRST_FREE_OBJECTID, u64::MAX, true, each)
}

/// Moves the calling process into a new, private mount namespace
/// (`unshare(CLONE_NEWNS)`, then every mount made private recursively):
/// mounts it makes from here on are its own, seen by no other process, and
/// go away with it, even when it is killed. Must be called before the
/// process starts threads (the kernel refuses to unshare a shared `fs`).
pub fn private_mount_namespace() -> Result<(), SysError> {
    // SAFETY: only CLONE_NEWNS is unshared, not CLONE_FILES: no thread's
    // file descriptor table changes, so no fd is invalidated for anyone.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .map_err(|e| SysError::from_errno("make a private mount namespace (unshare)", e))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| SysError::from_errno("make the mounts private", e))
}

/// The mount namespace this thread is in now (`/proc/thread-self/ns/mnt`),
/// to come back to with [`enter_mount_namespace`].
pub fn current_mount_namespace() -> Result<File, SysError> {
    File::open("/proc/thread-self/ns/mnt")
        .map_err(|e| SysError::from_io("open /proc/thread-self/ns/mnt", &e))
}

/// Moves this thread into the mount namespace `ns` (from
/// [`current_mount_namespace`]); a no-op when it is there already. The
/// thread's root and working directory become that namespace's root.
pub fn enter_mount_namespace(ns: &File) -> Result<(), SysError> {
    let here = current_mount_namespace()?;
    let (a, b) = (
        here.metadata()
            .map_err(|e| SysError::from_io("stat a mount namespace", &e))?,
        ns.metadata()
            .map_err(|e| SysError::from_io("stat a mount namespace", &e))?,
    );
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        return Ok(());
    }
    // setns(CLONE_NEWNS) refuses a thread whose filesystem context (root,
    // cwd, umask) other threads share, as every thread made after
    // `private_mount_namespace` does: this thread takes its own copy first.
    // SAFETY: only CLONE_FS is unshared: this thread's root, cwd and umask
    // stop being shared; no file descriptor table changes, so no fd is
    // invalidated for anyone.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
        .map_err(|e| SysError::from_errno("unshare the filesystem context", e))?;
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Mount),
    )
    .map_err(|e| SysError::from_errno("enter a mount namespace (setns)", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_plainly() {
        assert_eq!(
            SysError::NotSupported("reflink").to_string(),
            "filesystem cannot reflink"
        );
        assert_eq!(
            SysError::from_errno("reflink", Errno::XDEV).to_string(),
            "source and destination are on different filesystems"
        );
        let e = SysError::Unaligned {
            src_off: 1,
            dst_off: 0,
            len: 4096,
            block_size: 4096,
        };
        assert!(e.to_string().starts_with("range not aligned"), "{e}");
        assert!(matches!(
            SysError::from_errno("x", Errno::ROFS),
            SysError::ReadOnly
        ));
        let io: std::io::Error = SysError::Exists.into();
        assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
    }

    /// The opcodes above are built from the header definitions; these values
    /// were printed by a C program including linux/fs.h and linux/btrfs.h on
    /// x86_64, to catch a wrong struct or direction.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn opcodes_match_the_kernel_headers() {
        let ops: [(Opcode, u32); 9] = [
            (FIDEDUPERANGE, 0xc018_9436),
            (FS_IOC_FIEMAP, 0xc020_660b),
            (BTRFS_IOC_SUBVOL_CREATE, 0x5000_940e),
            (BTRFS_IOC_SNAP_DESTROY, 0x5000_940f),
            (BTRFS_IOC_SNAP_CREATE_V2, 0x5000_9417),
            (BTRFS_IOC_SUBVOL_GETFLAGS, 0x8008_9419),
            (BTRFS_IOC_SUBVOL_SETFLAGS, 0x4008_941a),
            (BTRFS_IOC_TREE_SEARCH_V2, 0xc070_9411),
            (BTRFS_IOC_INO_LOOKUP, 0xd000_9412),
        ];
        for (i, (got, want)) in ops.into_iter().enumerate() {
            #[allow(clippy::unnecessary_cast)]
            let got = got as u32;
            assert_eq!(got, want, "opcode #{i}: {got:#x} != {want:#x}");
        }
    }

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo_line(
            "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - btrfs /dev/loop3 rw,ssd",
        )
        .unwrap();
        assert_eq!(m.mount_point, Path::new("/mnt/a b"));
        assert_eq!(
            (m.fs_type.as_str(), m.source.as_str()),
            ("btrfs", "/dev/loop3")
        );
        assert_eq!(unescape_mountinfo(r"/end\"), "/end\\");
        assert!(parse_mountinfo_line("garbage").is_none());
    }

    #[test]
    fn file_extent_items() {
        // A regular item: generation 7, ram_bytes 8192, no compression,
        // type REG, disk_bytenr 1 MiB, disk_num_bytes 8192, offset 4096,
        // num_bytes 4096.
        let mut item = Vec::new();
        for v in [7u64, 8192] {
            item.extend_from_slice(&v.to_le_bytes());
        }
        item.extend_from_slice(&[0, 0, 0, 0, BTRFS_FILE_EXTENT_REG]);
        for v in [1u64 << 20, 8192, 4096, 4096] {
            item.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(item.len(), FILE_EXTENT_ITEM_LEN);
        let fe = parse_file_extent(300, 12288, &item).unwrap();
        assert_eq!(
            (
                fe.kind,
                fe.disk_bytenr,
                fe.disk_num_bytes,
                fe.extent_offset,
                fe.num_bytes
            ),
            (FileExtentKind::Regular, 1 << 20, 8192, 4096, 4096)
        );
        assert!(!fe.is_hole());
        // Inline: 5 bytes of data after the 21-byte head.
        let mut inline = item[..FILE_EXTENT_INLINE_DATA].to_vec();
        inline[20] = BTRFS_FILE_EXTENT_INLINE;
        inline[8..16].copy_from_slice(&5u64.to_le_bytes());
        inline.extend_from_slice(b"hello");
        let fe = parse_file_extent(300, 0, &inline).unwrap();
        assert_eq!(
            (fe.kind, fe.disk_num_bytes, fe.num_bytes),
            (FileExtentKind::Inline, 5, 5)
        );
        // Truncated or unknown type: ignored.
        assert!(parse_file_extent(1, 0, &item[..30]).is_none());
        item[20] = 9;
        assert!(parse_file_extent(1, 0, &item).is_none());
    }

    /// The references that find nested subvolumes by id, as btrfs stores
    /// them (packed, little-endian), and the search's key order.
    #[test]
    fn root_and_inode_refs() {
        let mut root_ref = Vec::new();
        root_ref.extend_from_slice(&300u64.to_le_bytes()); // dirid
        root_ref.extend_from_slice(&9u64.to_le_bytes()); // sequence
        root_ref.extend_from_slice(&5u16.to_le_bytes());
        root_ref.extend_from_slice(b"inner");
        assert_eq!(parse_root_ref(&root_ref), Some((300, &b"inner"[..])));
        assert_eq!(parse_root_ref(&root_ref[..20]), None, "name cut short");
        let mut inode_ref = Vec::new();
        inode_ref.extend_from_slice(&2u64.to_le_bytes()); // index
        inode_ref.extend_from_slice(&3u16.to_le_bytes());
        inode_ref.extend_from_slice(b"usr");
        // A second ref (another hardlink) may follow; the first is taken.
        inode_ref.extend_from_slice(&3u64.to_le_bytes());
        inode_ref.extend_from_slice(&1u16.to_le_bytes());
        inode_ref.push(b'x');
        assert_eq!(parse_inode_ref(&inode_ref), Some(&b"usr"[..]));
        assert_eq!(parse_inode_ref(&inode_ref[..9]), None);

        assert_eq!(next_key((5, 156, 7)), Some((5, 156, 8)));
        assert_eq!(next_key((5, 156, u64::MAX)), Some((5, 157, 0)));
        assert_eq!(next_key((5, 255, u64::MAX)), Some((6, 0, 0)));
        assert_eq!(next_key((u64::MAX, 255, u64::MAX)), None);
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(FsKind::from_magic(0x9123_683e), FsKind::Btrfs);
        assert_eq!(FsKind::from_magic(0xef53).name(), "ext4");
        assert_eq!(FsKind::from_magic(0x1234).name(), "0x1234");
    }
}
