//! The pool: everything reimage owns, in one directory on a reflink-capable
//! filesystem.
//!
//! ```text
//! POOL/
//!   reimage.toml  config: format version, block size, allow-copy (no file: not a pool)
//!   lock          flock(2): one writer at a time; readers never take it
//!   packages/     extent packages, NAME-VERSION-RELEASE.ARCH (docs/FORMAT.md), immutable
//!   index/        derived state only (e.g. dedupe progress): the content index is
//!                 read from the packages' own indexes, rebuildable from packages/
//!     plans/NAME  a view's stored plan (views/planstore.rs): checked before use
//!     sources/IMAGE.json  where IMAGE was last synced from (`upgrade` follows it)
//!   views/NAME    read-only subvolumes, one /usr tree each
//!   images/       manifests of images synced or published (kept by gc)
//!   tmp/          staging; garbage after a crash, cleaned when a writer starts
//! ```
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The version of the pool layout and extent-package format this build writes.
pub const POOL_FORMAT: u32 = 1;
/// The block size the extent-package format aligns file data to.
pub const BLOCK_SIZE: u64 = 4096;
/// The default pool path when neither `--pool` nor `$REIMAGE_POOL` is given.
pub const DEFAULT_POOL: &str = "/var/lib/reimage";

/// `POOL/reimage.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    /// Pool format version ([`POOL_FORMAT`]).
    pub format: u32,
    /// Filesystem block size; data in extent packages is aligned to it.
    pub block_size: u64,
    /// Copy file data where the filesystem cannot reflink, instead of refusing.
    #[serde(default)]
    pub allow_copy: bool,
    /// Filesystem the pool was created on ("btrfs", "xfs", ...), informational.
    #[serde(default)]
    pub filesystem: String,
    /// The loop image backing this pool, when made with `init --image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<PathBuf>,
}

impl Config {
    pub const FILE: &'static str = "reimage.toml";

    pub fn read(pool: &Path) -> Result<Config> {
        let path = pool.join(Self::FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if pool.symlink_metadata().is_err() {
                    bail!(
                        "there is no pool at {}: the directory does not exist (create a pool with `reimage --pool {} init`, or give --pool / REIMAGE_POOL)",
                        pool.display(),
                        pool.display()
                    );
                }
                if let Some(image) = unmounted_image(pool) {
                    bail!(
                        "{} is not mounted: its pool lives in {}; mount it with `reimage --pool {} init --image {}`",
                        pool.display(),
                        image.display(),
                        pool.display(),
                        image.display()
                    );
                }
                bail!(
                    "{} is not a reimage pool (no {}); create one with `reimage --pool {} init`{}",
                    pool.display(),
                    Self::FILE,
                    pool.display(),
                    " (or, for a pool in an image file, re-mount it with `reimage init --image FILE`)"
                )
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let cfg: Config =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        if cfg.format != POOL_FORMAT {
            bail!(
                "{}: pool format {} is not supported by this reimage (it reads format {})",
                path.display(),
                cfg.format,
                POOL_FORMAT
            );
        }
        if cfg.block_size != BLOCK_SIZE {
            bail!(
                "{}: block size {} is not supported (extent packages are aligned to {})",
                path.display(),
                cfg.block_size,
                BLOCK_SIZE
            );
        }
        Ok(cfg)
    }

    /// Writes the config atomically (temp file, fsync, rename).
    pub fn write(&self, pool: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)?;
        crate::util::atomic::write_atomic(&pool.join(Self::FILE), text.as_bytes())
    }
}

/// Written into the (empty) mount point of an image pool before the image is
/// mounted over it; holds the image path. Visible only while unmounted.
pub const IMAGE_MARKER: &str = ".reimage-image";

/// If `pool` is the mount point of an image pool that is not mounted, the
/// image path recorded by `init --image` (for "not a pool" hints).
pub fn unmounted_image(pool: &Path) -> Option<PathBuf> {
    if pool.join(Config::FILE).exists() {
        return None;
    }
    let text = std::fs::read_to_string(pool.join(IMAGE_MARKER)).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| PathBuf::from(line))
}

/// An open pool.
#[derive(Debug, Clone)]
pub struct Pool {
    pub root: PathBuf,
    pub config: Config,
}

/// An exclusive writer lock on a pool, released on drop.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

impl Pool {
    /// Opens an existing pool; a directory without `reimage.toml` is not a pool.
    pub fn open(root: &Path) -> Result<Pool> {
        let config = Config::read(root)?;
        Ok(Pool {
            root: root.to_path_buf(),
            config,
        })
    }

    pub fn packages_dir(&self) -> PathBuf {
        self.root.join("packages")
    }
    pub fn views_dir(&self) -> PathBuf {
        self.root.join("views")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// One `syncfs` of the pool's filesystem: everything written so far is
    /// durable, and a write error on the way is reported.
    pub fn syncfs(&self) -> Result<()> {
        let root = std::fs::File::open(&self.root)
            .with_context(|| format!("cannot open {}", self.root.display()))?;
        crate::sys::syncfs(&root).with_context(|| format!("syncfs {}", self.root.display()))
    }

    /// Creates the pool's subdirectories (idempotent).
    pub fn create_dirs(root: &Path) -> Result<()> {
        for d in ["packages", "views", "images", "index", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p)
                .with_context(|| format!("cannot create {}", p.display()))?;
        }
        Ok(())
    }

    /// Takes the writer lock. With `wait`, blocks until the other writer is
    /// done (saying so once); without, fails at once naming the lock file.
    pub fn lock(&self, wait: bool) -> Result<WriteLock> {
        use rustix::fs::{flock, FlockOperation};
        let path = self.root.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) if wait => {
                crate::util::runner::log::info(&format!(
                    "waiting for another reimage writer to finish ({} is locked)",
                    path.display()
                ));
                flock(&file, FlockOperation::LockExclusive)
                    .with_context(|| format!("cannot lock {}", path.display()))?;
            }
            Err(rustix::io::Errno::WOULDBLOCK) => bail!(
                "another reimage writer holds {} (retry later, or drop --no-wait to wait for it)",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
        Ok(WriteLock { _file: file })
    }

    /// Removes everything in `tmp/` (call with the write lock held): after a
    /// crash it is garbage. Whatever is there goes, however long or deep its
    /// paths ([`crate::sys::rmtree`]): files, directory trees, subvolumes (read-only
    /// ones and nested ones too).
    pub fn clean_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        // The names first: removing while reading a directory may skip entries.
        let names = std::fs::read_dir(&tmp)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .with_context(|| format!("cannot read {}", tmp.display()))?;
        for name in names {
            remove_any(&tmp.join(name))?;
        }
        Ok(())
    }
}

/// Removes a file, directory tree, or (possibly read-only, possibly nested)
/// subvolume, whatever the length or depth of the paths inside; never
/// across a mount ([`crate::sys::rmtree`]). Nothing at `path` is not an error.
pub fn remove_any(path: &Path) -> Result<()> {
    crate::sys::rmtree::remove_path(path)
        .with_context(|| format!("cannot remove {}", path.display()))
}

/// An entry a writer stages in `tmp/` (a compose's work subvolume or
/// directory): if the writer fails, it is removed before the error goes up
/// ([`TmpGuard::settle`]), or when a panic unwinds past the guard. Only a
/// killed writer leaves it behind, for the next writer's [`Pool::clean_tmp`].
#[derive(Debug)]
pub struct TmpGuard {
    path: Option<PathBuf>,
    what: &'static str,
}

impl TmpGuard {
    /// Guards `path` for the operation `what` ("compose"), which is about to
    /// create it (nothing there yet is fine).
    pub fn new(path: PathBuf, what: &'static str) -> TmpGuard {
        TmpGuard {
            path: Some(path),
            what,
        }
    }

    /// Passes `result` on. On an error the staged entry is removed first; the
    /// error returned is the original one, with a failure to remove the entry
    /// added as context.
    pub fn settle<T>(mut self, result: Result<T>) -> Result<T> {
        let path = self.path.take().expect("a guard is settled once");
        match result {
            Ok(v) => Ok(v),
            Err(e) => match remove_any(&path) {
                Ok(()) => Err(e),
                Err(c) => Err(e.context(format!(
                    "{} is left for the next writer to remove ({c:#}); {} failed",
                    path.display(),
                    self.what
                ))),
            },
        }
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            if let Err(e) = remove_any(&path) {
                crate::util::runner::log::warn(&format!(
                    "{} left {} behind for the next writer: {e:#}",
                    self.what,
                    path.display()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_guard_removes_on_error_only_and_keeps_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = tmp.path().join("compose-v");
        std::fs::create_dir_all(staged.join("a/b")).unwrap();
        std::fs::write(staged.join("a/b/f"), b"x").unwrap();
        let kept = TmpGuard::new(staged.clone(), "compose").settle(Ok(7));
        assert_eq!(kept.unwrap(), 7);
        assert!(staged.exists(), "success keeps it");

        let e = TmpGuard::new(staged.clone(), "compose")
            .settle::<()>(Err(anyhow::anyhow!("file conflict")))
            .unwrap_err();
        assert_eq!(format!("{e:#}"), "file conflict");
        assert!(!staged.exists(), "an error removes it");

        // A failed removal is context; the original error stays the cause.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = TmpGuard::new(file.join("x"), "compose")
            .settle::<()>(Err(anyhow::anyhow!("file conflict")))
            .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("is left for the next writer to remove"),
            "{text}"
        );
        assert!(text.ends_with("compose failed: file conflict"), "{text}");
        assert_eq!(e.root_cause().to_string(), "file conflict");

        // Dropped unsettled (a panic unwinding): removed.
        std::fs::create_dir(&staged).unwrap();
        drop(TmpGuard::new(staged.clone(), "compose"));
        assert!(!staged.exists());
    }
}
