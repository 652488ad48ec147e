//! `reimage init`: prepare a pool on a reflink-capable filesystem, optionally in
//! a loop-mounted btrfs image made by reimage itself.
//!
//! Checks, in order:
//! 1. With `--image FILE`: a new image needs `--size`; it is made sparse,
//!    formatted with `mkfs.btrfs` and loop-mounted at the pool path (never
//!    over a non-empty directory). An existing image is mounted there unless
//!    it already is (the after-reboot case). Before mounting, the file
//!    [`IMAGE_MARKER`] is written into the empty mount point: hidden while the
//!    image is mounted, it tells later commands (and `init` without
//!    `--image`) that the directory is an unmounted image pool, not an empty
//!    one.
//! 2. The filesystem's block size must be [`BLOCK_SIZE`](crate::store::pool::BLOCK_SIZE):
//!    extent packages align file data to it.
//! 3. A real reflink is tried; a filesystem that cannot reflink is refused
//!    unless `--allow-copy`.
//! 4. `reimage.toml` is written atomically and the pool directories made. An
//!    existing pool is left as it is: init is harmless to repeat.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::store::pool::{Config, Pool, BLOCK_SIZE, POOL_FORMAT};
use crate::sys;
use crate::util::runner::{log, run};

pub use crate::store::pool::{unmounted_image, IMAGE_MARKER};

/// The smallest image `init --image` makes (mkfs.btrfs needs about 114 MiB).
pub const MIN_IMAGE_SIZE: u64 = 128 << 20;

/// Options of `reimage init`.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The pool directory.
    pub pool: PathBuf,
    /// Make (or re-mount) a btrfs filesystem in this image file at the pool path.
    pub image: Option<PathBuf>,
    /// Size of a new image (bytes).
    pub size: Option<u64>,
    /// Allow a pool on a filesystem without reflinks (data is copied).
    pub allow_copy: bool,
}

/// What `init` did, for people and for `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub pool: PathBuf,
    pub filesystem: String,
    pub block_size: u64,
    pub reflink: bool,
    pub allow_copy: bool,
    /// "created", "existing" (already a pool: nothing changed), or "mounted"
    /// (an existing image pool was mounted).
    pub action: String,
    pub image: Option<PathBuf>,
    /// With `--image`: "created" (new image), "mounted", or "already mounted".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_action: Option<String>,
    /// Things the user asked for that were not done (flags that conflict
    /// with an existing pool's config); also printed as warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl InitReport {
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let (Some(image), Some(action)) = (&self.image, &self.image_action) {
            lines.push(format!("image {} {}", image.display(), action));
        }
        lines.push(format!(
            "pool {} {} ({}, block size {}, reflink {})",
            self.pool.display(),
            self.action,
            self.filesystem,
            self.block_size,
            if self.reflink {
                "yes"
            } else {
                "no: data will be copied"
            }
        ));
        lines
    }
}

/// Prepares a pool (see the module doc).
pub fn init(opts: &InitOptions) -> Result<InitReport> {
    let pool = std::path::absolute(&opts.pool)
        .with_context(|| format!("bad pool path {}", opts.pool.display()))?;
    let mut warnings = Vec::new();
    let mut image = None;
    let mut image_action = None;
    let mut guard = None;
    // A pool directory made here is removed again if init fails.
    let mut made_dir: Option<RemoveEmptyDir> = None;
    match &opts.image {
        Some(img) => {
            let img = std::path::absolute(img)
                .with_context(|| format!("bad image path {}", img.display()))?;
            let (action, g) = prepare_image(&img, &pool, opts.size, &mut warnings)?;
            image_action = Some(action.to_string());
            image = Some(img);
            guard = g;
        }
        None => {
            if let Some(img) = unmounted_image(&pool) {
                bail!(
                    "{} is the mount point of the pool image {}, which is not mounted: \
                     mount it with `reimage --pool {} init --image {}`",
                    pool.display(),
                    img.display(),
                    pool.display(),
                    img.display()
                );
            }
            if opts.size.is_some() {
                bail!("--size is only meaningful with --image FILE");
            }
            if pool.symlink_metadata().is_err() {
                std::fs::create_dir_all(&pool)
                    .with_context(|| format!("cannot create {}", pool.display()))?;
                made_dir = Some(RemoveEmptyDir(Some(pool.clone())));
            }
        }
    }

    let info = sys::fs_info(&pool).with_context(|| format!("cannot inspect {}", pool.display()))?;
    if info.block_size != BLOCK_SIZE {
        bail!(
            "{} is on {} with block size {}; reimage needs block size {} \
             (extent packages align file data to it): use another filesystem, or \
             `--image FILE --size 2G` for a pool in a btrfs image",
            pool.display(),
            info.kind,
            info.block_size,
            BLOCK_SIZE
        );
    }
    let reflink = sys::probe_reflink(&pool)
        .with_context(|| format!("cannot try a reflink in {}", pool.display()))?;

    let (action, config) = if pool.join(Config::FILE).exists() {
        let cfg = Config::read(&pool)?;
        if opts.allow_copy && !cfg.allow_copy {
            warnings.push(format!(
                "{} was created without --allow-copy and is left unchanged \
                 (set allow_copy = true in {} to allow copies)",
                pool.display(),
                pool.join(Config::FILE).display()
            ));
        }
        if let Some(img) = &image {
            if cfg.image.as_deref() != Some(img.as_path()) {
                warnings.push(match &cfg.image {
                    Some(recorded) => format!(
                        "the pool records image {}, not {}; the config is left unchanged",
                        recorded.display(),
                        img.display()
                    ),
                    None => format!(
                        "the pool was not created with --image; {} is not recorded in it",
                        img.display()
                    ),
                });
            }
        }
        if !reflink && !cfg.allow_copy {
            warnings.push(format!(
                "{} cannot reflink now, but the pool was created where it could and \
                 does not allow copies: commands that place data will fail",
                pool.display()
            ));
        }
        Pool::create_dirs(&pool)?;
        let action = if image_action.as_deref() == Some("mounted") {
            "mounted"
        } else {
            "existing"
        };
        (action, cfg)
    } else {
        if !reflink && !opts.allow_copy {
            bail!(
                "{} is on {}, which cannot reflink: reimage shares file data between \
                 packages and views with reflinks. Use a btrfs or XFS (reflink=1) \
                 filesystem; or keep the pool in a loop-mounted btrfs image with \
                 `reimage --pool {} init --image FILE --size 2G`; or pass --allow-copy \
                 to copy data instead (slower, and every view costs its full size)",
                pool.display(),
                info.kind,
                pool.display()
            );
        }
        let cfg = Config {
            format: POOL_FORMAT,
            block_size: info.block_size,
            allow_copy: opts.allow_copy,
            filesystem: info.kind.name(),
            image: image.clone(),
        };
        Pool::create_dirs(&pool)?;
        cfg.write(&pool)?;
        ("created", cfg)
    };
    for w in &warnings {
        log::warn(w);
    }
    if let Some(g) = guard {
        g.keep();
    }
    if let Some(d) = made_dir.take() {
        d.keep();
    }
    Ok(InitReport {
        pool,
        filesystem: info.kind.name(),
        block_size: info.block_size,
        reflink,
        allow_copy: config.allow_copy,
        action: action.to_string(),
        image: image.or(config.image),
        image_action,
        warnings,
    })
}

/// Removes (if still empty) a pool directory `init` made, unless kept.
struct RemoveEmptyDir(Option<PathBuf>);

impl RemoveEmptyDir {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveEmptyDir {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Undoes what `prepare_image` did if `init` fails later: unmounts, and
/// removes an image it created.
struct ImageGuard {
    mount: PathBuf,
    created_image: Option<PathBuf>,
    armed: bool,
}

impl ImageGuard {
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(e) = run(Command::new("umount").arg(&self.mount)) {
            log::warn(&format!("cannot unmount {}: {e:#}", self.mount.display()));
            return;
        }
        if let Some(img) = &self.created_image {
            let _ = std::fs::remove_file(img);
        }
    }
}

/// Makes or mounts the image at `pool`. Returns what was done and a guard
/// that undoes it unless kept.
fn prepare_image(
    image: &Path,
    pool: &Path,
    size: Option<u64>,
    warnings: &mut Vec<String>,
) -> Result<(&'static str, Option<ImageGuard>)> {
    // mountinfo has canonical paths.
    let pool_real = std::fs::canonicalize(pool).unwrap_or_else(|_| pool.to_path_buf());
    let mounted = sys::mounted_at(&pool_real)?;
    let exists = image.exists();

    if exists {
        let image_real = std::fs::canonicalize(image)?;
        if let Some(m) = &mounted {
            let backing = sys::loop_backing_file(Path::new(&m.source));
            if backing.as_deref() == Some(image_real.as_path()) {
                if size.is_some() {
                    warnings.push(format!(
                        "--size is ignored: {} exists (it is not resized)",
                        image.display()
                    ));
                }
                return Ok(("already mounted", None));
            }
            bail!(
                "{} already has {} ({}) mounted on it, not {}: unmount it first or \
                 choose another --pool",
                pool.display(),
                m.source,
                m.fs_type,
                image.display()
            );
        }
        if let Some(dev) = attached_loop_device(&image_real)? {
            let at = sys::mounts()?
                .into_iter()
                .find(|m| Path::new(&m.source) == dev)
                .map(|m| format!(", mounted at {}", m.mount_point.display()))
                .unwrap_or_default();
            bail!(
                "{} is already in use by loop device {}{at}: unmount it (and detach \
                 it with `losetup -d {}`) before mounting it at {}",
                image.display(),
                dev.display(),
                dev.display(),
                pool.display()
            );
        }
        if size.is_some() {
            warnings.push(format!(
                "--size is ignored: {} exists (it is not resized)",
                image.display()
            ));
        }
        prepare_mount_point(pool, image)?;
        mount_image(image, pool)?;
        return Ok((
            "mounted",
            Some(ImageGuard {
                mount: pool.to_path_buf(),
                created_image: None,
                armed: true,
            }),
        ));
    }

    let Some(size) = size else {
        bail!(
            "{} does not exist: give its size to create it, e.g. `--size 2G`",
            image.display()
        );
    };
    if size < MIN_IMAGE_SIZE {
        bail!(
            "--size {size} is too small for a btrfs image (at least {} MiB; a real pool \
             wants several GiB)",
            MIN_IMAGE_SIZE >> 20
        );
    }
    if let Some(m) = &mounted {
        bail!(
            "{} already has {} ({}) mounted on it: unmount it first or choose another --pool",
            pool.display(),
            m.source,
            m.fs_type
        );
    }
    prepare_mount_point(pool, image)?;
    let file = std::fs::File::create_new(image)
        .with_context(|| format!("cannot create {}", image.display()))?;
    let made = (|| -> Result<()> {
        file.set_len(size)
            .with_context(|| format!("cannot size {} to {size} bytes", image.display()))?;
        drop(file);
        run(Command::new("mkfs.btrfs")
            .args(["-q", "-L", "reimage"])
            .arg(image))?;
        mount_image(image, pool)
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_file(image);
        return Err(e);
    }
    Ok((
        "created",
        Some(ImageGuard {
            mount: pool.to_path_buf(),
            created_image: Some(image.to_path_buf()),
            armed: true,
        }),
    ))
}

/// Makes sure `pool` is an empty directory (but for our own marker) and
/// writes the marker naming `image` into it.
fn prepare_mount_point(pool: &Path, image: &Path) -> Result<()> {
    std::fs::create_dir_all(pool).with_context(|| format!("cannot create {}", pool.display()))?;
    let others: Vec<String> = std::fs::read_dir(pool)
        .with_context(|| format!("cannot read {}", pool.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != IMAGE_MARKER)
        .collect();
    if !others.is_empty() {
        bail!(
            "{} is not empty (it holds {}{}): refusing to mount {} over it, which would \
             hide its content; choose an empty or new directory as --pool",
            pool.display(),
            others[..others.len().min(3)].join(", "),
            if others.len() > 3 { ", ..." } else { "" },
            image.display()
        );
    }
    // The mount point of another pool image: mounting this one there would
    // hide that pool (a typo in --image must not replace a pool).
    if let Ok(text) = std::fs::read_to_string(pool.join(IMAGE_MARKER)) {
        if let Some(marked) = text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
            let marked = Path::new(marked);
            let same = std::fs::canonicalize(marked).ok() == std::fs::canonicalize(image).ok()
                || marked == image;
            if !same && marked.exists() {
                bail!(
                    "{} is the mount point of the pool image {}, not {}: mount that pool with                      `reimage --pool {} init --image {}`, or choose another --pool for a new one",
                    pool.display(),
                    marked.display(),
                    image.display(),
                    pool.display(),
                    marked.display()
                );
            }
        }
    }
    crate::util::atomic::write_atomic(
        &pool.join(IMAGE_MARKER),
        format!(
            "{}\n# {} is the mount point of this btrfs image; mount it with\n\
             # reimage --pool {} init --image {}\n",
            image.display(),
            pool.display(),
            pool.display(),
            image.display()
        )
        .as_bytes(),
    )
}

/// `mount -t btrfs -o loop IMAGE POOL`; util-linux sets up the loop device
/// with autoclear, so unmounting frees it.
fn mount_image(image: &Path, pool: &Path) -> Result<()> {
    run(Command::new("mount")
        .args(["-t", "btrfs", "-o", "loop"])
        .arg(image)
        .arg(pool))
    .with_context(|| format!("cannot mount {} at {}", image.display(), pool.display()))?;
    Ok(())
}

/// The loop device `image` is attached to, if any (`losetup -j`).
fn attached_loop_device(image: &Path) -> Result<Option<PathBuf>> {
    let out = run(Command::new("losetup").arg("-j").arg(image))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split(':').next())
        .find(|d| d.starts_with("/dev/"))
        .map(PathBuf::from))
}
