//! `reimage init`, through the real binary, on real filesystems.
mod common;

use common::reimage;
use reimage::pool::{Config, Pool};
use reimage_testkit::require_root;
use reimage_testkit::{btrfs_dir, ext4_dir, xfs_dir, UnmountOnDrop};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `reimage --json ... init ...`, expects success, returns the report.
fn init_ok(pool: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "init"];
    all.extend_from_slice(args);
    let out = reimage(pool, &all);
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("init --json prints JSON")
}

/// Runs `reimage init ...`, expects failure (exit 1), returns stderr.
fn init_err(pool: &Path, args: &[&str]) -> String {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    let out = reimage(pool, &all);
    assert_eq!(out.status.code(), Some(1), "init should have failed");
    stderr(&out)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An image pool's files in this process's scratch dir; on drop, unmounts
/// the pool (which frees the loop device) and removes the image.
struct ImagePool {
    image: PathBuf,
    pool: PathBuf,
    _unmount: UnmountOnDrop,
}

impl ImagePool {
    fn new(name: &str) -> ImagePool {
        let base = reimage_testkit::process_dir();
        let n = reimage_testkit::unique();
        let pool = base.join(format!("{name}-pool-{n}"));
        ImagePool {
            image: base.join(format!("{name}-{n}.img")),
            _unmount: UnmountOnDrop(pool.clone()),
            pool,
        }
    }
    fn image_arg(&self) -> &str {
        self.image.to_str().unwrap()
    }
}

impl Drop for ImagePool {
    fn drop(&mut self) {
        // Field drop order would unmount after this: unmount first.
        while reimage_testkit::mounted_at(&self.pool).is_some() {
            if reimage_testkit::unmount(&self.pool).is_err() {
                return;
            }
        }
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_file(self.pool.join(reimage::init::IMAGE_MARKER));
        let _ = std::fs::remove_dir(&self.pool);
    }
}

fn loop_devices_of(image: &Path) -> String {
    let out = Command::new("losetup")
        .arg("-j")
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn image_pool_lifecycle() {
    require_root!();
    let ip = ImagePool::new("lifecycle");
    let pool = &ip.pool;

    let r = init_ok(pool, &["--image", ip.image_arg(), "--size", "1G"]);
    assert_eq!(r["action"], "created");
    assert_eq!(r["image_action"], "created");
    assert_eq!(r["filesystem"], "btrfs");
    assert_eq!(r["block_size"], 4096);
    assert_eq!(r["reflink"], true);
    assert_eq!(r["image"], ip.image_arg());
    let src = reimage_testkit::mounted_at(pool).expect("the pool is mounted");
    let backing = reimage::sys::loop_backing_file(Path::new(&src)).unwrap();
    assert_eq!(backing, std::fs::canonicalize(&ip.image).unwrap());
    assert_eq!(std::fs::metadata(&ip.image).unwrap().len(), 1 << 30);
    let p = Pool::open(pool).unwrap();
    assert_eq!(p.config.image.as_deref(), Some(ip.image.as_path()));
    assert!(!p.config.allow_copy);
    for d in ["packages", "views", "images", "index", "tmp"] {
        assert!(pool.join(d).is_dir(), "{d}");
    }
    let config = std::fs::read(pool.join(Config::FILE)).unwrap();

    // Again: harmless, nothing changes.
    let r = init_ok(pool, &["--image", ip.image_arg()]);
    assert_eq!(r["action"], "existing");
    assert_eq!(r["image_action"], "already mounted");
    let r = init_ok(pool, &[]);
    assert_eq!(r["action"], "existing");
    assert_eq!(r["image"], ip.image_arg());
    // A conflicting flag is reported, the config left alone.
    let out = reimage(pool, &["init", "--allow-copy"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("without --allow-copy"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(pool.join(Config::FILE)).unwrap(), config);

    // "Reboot": the image is no longer mounted, and the directory is not
    // mistaken for an empty pool.
    reimage_testkit::unmount(pool).unwrap();
    assert!(
        loop_devices_of(&ip.image).is_empty(),
        "autoclear frees the loop device"
    );
    let err = format!("{:#}", Pool::open(pool).unwrap_err());
    assert!(
        err.contains("is not mounted") && err.contains(ip.image.to_str().unwrap()),
        "the error names the image to mount: {err}"
    );
    assert_eq!(
        reimage::init::unmounted_image(pool).as_deref(),
        Some(ip.image.as_path())
    );
    let err = init_err(pool, &[]);
    assert!(
        err.contains("which is not mounted") && err.contains(ip.image_arg()),
        "{err}"
    );
    assert!(
        !pool.join(Config::FILE).exists(),
        "nothing written under the mount point"
    );
    // A typo in --image does not make a new pool over this one's mount point.
    let typo = ImagePool::new("typo");
    let err = init_err(pool, &["--image", typo.image_arg(), "--size", "1G"]);
    assert!(
        err.contains("is the mount point of the pool image") && err.contains(ip.image_arg()),
        "{err}"
    );
    assert!(!typo.image.exists(), "no image made");
    assert!(reimage_testkit::mounted_at(pool).is_none());
    assert_eq!(
        reimage::init::unmounted_image(pool).as_deref(),
        Some(ip.image.as_path()),
        "the marker still names the pool's image"
    );

    // Mount it again.
    let r = init_ok(pool, &["--image", ip.image_arg()]);
    assert_eq!(r["action"], "mounted");
    assert_eq!(r["image_action"], "mounted");
    assert_eq!(std::fs::read(pool.join(Config::FILE)).unwrap(), config);
    Pool::open(pool).unwrap();

    // Someone else's image is not mounted over it.
    let other = ImagePool::new("other");
    let err = init_err(pool, &["--image", other.image_arg(), "--size", "1G"]);
    assert!(err.contains("already has"), "{err}");
    assert!(!other.image.exists());

    let image = std::fs::canonicalize(&ip.image).unwrap();
    drop(ip);
    let all = Command::new("losetup").arg("-a").output().unwrap();
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(!all.contains(image.to_str().unwrap()), "{all}");
}

#[test]
fn image_mode_refusals() {
    require_root!();
    let ip = ImagePool::new("refusals");
    // No size for a new image.
    let err = init_err(&ip.pool, &["--image", ip.image_arg()]);
    assert!(
        err.contains("does not exist") && err.contains("--size"),
        "{err}"
    );
    // Too small.
    let err = init_err(&ip.pool, &["--image", ip.image_arg(), "--size", "16M"]);
    assert!(err.contains("too small"), "{err}");
    // Never over a non-empty directory.
    std::fs::create_dir_all(&ip.pool).unwrap();
    std::fs::write(ip.pool.join("precious"), b"data").unwrap();
    let err = init_err(&ip.pool, &["--image", ip.image_arg(), "--size", "1G"]);
    assert!(
        err.contains("not empty") && err.contains("precious"),
        "{err}"
    );
    assert!(!ip.image.exists(), "no image made");
    assert!(reimage_testkit::mounted_at(&ip.pool).is_none());
    std::fs::remove_file(ip.pool.join("precious")).unwrap();
    // --size without --image.
    let err = init_err(&ip.pool, &["--size", "1G"]);
    assert!(
        err.contains("--size is only meaningful with --image"),
        "{err}"
    );
}

#[test]
fn ext4_is_refused_without_allow_copy() {
    require_root!();
    let dir = ext4_dir("init_ext4");
    let pool = dir.join("pool");
    let err = init_err(&pool, &[]);
    assert!(err.contains("cannot reflink"), "{err}");
    assert!(err.contains("ext4"), "{err}");
    assert!(err.contains("--allow-copy"), "{err}");
    assert!(err.contains("--image FILE --size"), "{err}");
    // The refused init leaves nothing behind: no pool directory.
    assert!(!pool.exists(), "a refused init left {}", pool.display());
    let err = format!("{:#}", Pool::open(&pool).unwrap_err());
    assert!(err.contains("the directory does not exist"), "{err}");
    // An existing directory that is not a pool stays (and is not one).
    std::fs::create_dir(&pool).unwrap();
    init_err(&pool, &[]);
    assert!(pool.is_dir());
    let err = format!("{:#}", Pool::open(&pool).unwrap_err());
    assert!(err.contains("is not a reimage pool"), "{err}");

    let r = init_ok(&pool, &["--allow-copy"]);
    assert_eq!(r["action"], "created");
    assert_eq!(r["filesystem"], "ext4");
    assert_eq!(r["reflink"], false);
    assert_eq!(r["allow_copy"], true);
    let p = Pool::open(&pool).unwrap();
    assert!(p.config.allow_copy);
    assert_eq!(p.config.filesystem, "ext4");
    // Human output says data will be copied.
    let out = reimage(&pool, &["init"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("existing") && text.contains("data will be copied"),
        "{text}"
    );
}

#[test]
fn plain_directories_on_btrfs_and_xfs() {
    require_root!();
    let b = btrfs_dir("init_btrfs");
    let x = xfs_dir("init_xfs");
    for (dir, fs) in [(&b, "btrfs"), (&x, "xfs")] {
        let pool = dir.join("a/b/pool");
        let r = init_ok(&pool, &[]);
        assert_eq!(r["action"], "created");
        assert_eq!(r["filesystem"], fs);
        assert_eq!(r["reflink"], true);
        assert_eq!(r["allow_copy"], false);
        assert!(r["image"].is_null());
        let p = Pool::open(&pool).unwrap();
        assert_eq!(p.config.filesystem, fs);
        assert_eq!(p.config.block_size, 4096);
        let out = reimage(&pool, &["init"]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("existing") && text.contains("reflink yes"),
            "{text}"
        );
    }
}

#[test]
fn a_directory_without_config_is_not_a_pool() {
    require_root!();
    let dir = btrfs_dir("notapool");
    std::fs::create_dir_all(dir.join("packages")).unwrap();
    let err = format!("{:#}", Pool::open(dir.path()).unwrap_err());
    assert!(err.contains("is not a reimage pool"), "{err}");
    assert!(err.contains("init"), "{err}");
}
