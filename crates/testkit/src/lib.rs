//! Test support: scratch filesystems in loop images (RAII), shared by unit
//! tests in `src/` and integration tests in `tests/`. Not part of the stable
//! API.
//!
//! Design
//! - Everything a test process creates lives under
//!   `$TMPDIR/reimage-test-<pid>/` (images, mount points). The first use in a
//!   process runs a [sweeper](sweep_leftovers) that removes such directories
//!   of dead processes (a test killed by a signal, a crashed run): it unmounts
//!   what is mounted under them, detaches their loop devices and deletes them.
//! - [`ScratchFs`] is one loop-mounted filesystem; dropping it unmounts it
//!   (retrying, `umount -l` as a last resort), detaches exactly its own loop
//!   device and deletes the image, also while a test panics.
//! - Per test binary, one filesystem of each type is shared by all tests that
//!   run at the same time: a `static Mutex<Weak<ScratchFs>>` per type. Each
//!   [`TestDir`] holds an `Arc` to it; when the last one is dropped, so is
//!   the filesystem. Statics are never dropped, and the static holds only a
//!   `Weak`, so nothing is left mounted when the process exits normally.
//!   (With `--test-threads=1` that means one filesystem per test: slower,
//!   never leaky.)
//! - On btrfs each [`TestDir`] is its own subvolume, deleted on drop together
//!   with any (read-only) subvolumes a test created in it; on XFS and ext4 it
//!   is a plain directory.
//! - Root tests start with [`require_root!`](crate::require_root): it panics
//!   loudly when the test cannot run (not root, no loop devices, no btrfs),
//!   so a test never passes without testing. Only with
//!   `REIMAGE_SKIP_ROOT_TESTS=1`, and never when `CI=true`, it prints
//!   `SKIPPED (REIMAGE_SKIP_ROOT_TESTS)` and returns from the test.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Runs `cmd`, returns its stdout; on failure the error names the command
/// and the tail of its stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {line} (is it installed?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{line} failed ({}): {}", out.status, tail.join("\n"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Filesystems tests can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    Btrfs,
    /// XFS with reflink=1.
    Xfs,
    /// ext4: no reflinks, for the copy fallback.
    Ext4,
}

impl FsType {
    pub fn name(self) -> &'static str {
        match self {
            FsType::Btrfs => "btrfs",
            FsType::Xfs => "xfs",
            FsType::Ext4 => "ext4",
        }
    }
    fn mkfs(self, dev: &Path) -> Command {
        let mut c = match self {
            FsType::Btrfs => {
                let mut c = Command::new("mkfs.btrfs");
                c.arg("-q");
                c
            }
            FsType::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                c.args(["-q", "-m", "reflink=1"]);
                c
            }
            FsType::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F"]);
                c
            }
        };
        c.arg(dev);
        c
    }
    /// The size of the shared filesystem of this type (sparse: costs only
    /// what is written).
    fn shared_size(self) -> u64 {
        match self {
            FsType::Btrfs => 2 << 30,
            FsType::Xfs => 1 << 30,
            FsType::Ext4 => 512 << 20,
        }
    }
}

const DIR_PREFIX: &str = "reimage-test-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A number unique in this process, for file names.
pub fn unique() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `$TMPDIR/reimage-test-<pid>/`: where this process keeps images and mount
/// points (created on first use, after sweeping leftovers of dead processes).
pub fn process_dir() -> PathBuf {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        if let Err(e) = sweep_leftovers() {
            eprintln!("warning: cleaning leftovers of earlier test runs: {e:#}");
        }
    });
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cannot create the test scratch directory");
    dir
}

/// Mount points and their sources, in kernel order (innermost last).
fn mount_points() -> Vec<(PathBuf, String)> {
    reimage_sys::mounts()
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.mount_point, m.source))
        .collect()
}

/// The source device or image mounted at exactly `path`, if any.
pub fn mounted_at(path: &Path) -> Option<String> {
    reimage_sys::mounted_at(path)
        .ok()
        .flatten()
        .map(|m| m.source)
}

/// Unmounts `path`: a few tries (a just-closed file can keep it busy for a
/// moment), then a lazy unmount as the last resort.
pub fn unmount(path: &Path) -> Result<()> {
    let mut last = None;
    for attempt in 0..5 {
        match run(Command::new("umount").arg(path)) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
    }
    eprintln!(
        "warning: {} stays busy ({:#}); unmounting lazily",
        path.display(),
        last.expect("set in the loop")
    );
    run(Command::new("umount").arg("-l").arg(path))?;
    Ok(())
}

/// Loop devices backed by `image` (`losetup -j`).
fn loop_devices_of(image: &Path) -> Vec<PathBuf> {
    let out = run(Command::new("losetup").arg("-j").arg(image)).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(':').next())
        .filter(|d| d.starts_with("/dev/loop"))
        .map(PathBuf::from)
        .collect()
}

/// Removes `reimage-test-<pid>` directories in the temp dir whose process is
/// gone: unmounts everything mounted below them, detaches the loop devices of
/// their images, deletes them. A directory that cannot be unmounted is left
/// alone (with a warning), never deleted through a mount.
pub fn sweep_leftovers() -> Result<()> {
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        if let Err(e) = sweep_one(&dir) {
            eprintln!(
                "warning: cannot clean up {} left by process {pid}: {e:#}",
                dir.display()
            );
        }
    }
    Ok(())
}

fn sweep_one(dir: &Path) -> Result<()> {
    eprintln!("cleaning up {} (its test process is gone)", dir.display());
    // Innermost mounts first.
    let mut mounts: Vec<PathBuf> = mount_points()
        .into_iter()
        .map(|(mp, _)| mp)
        .filter(|mp| mp.starts_with(dir))
        .collect();
    mounts.reverse();
    mounts.dedup();
    for mp in &mounts {
        while mounted_at(mp).is_some() {
            unmount(mp)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_file() {
            for dev in loop_devices_of(&p) {
                run(Command::new("losetup").arg("-d").arg(&dev))?;
            }
        }
    }
    if mount_points().iter().any(|(mp, _)| mp.starts_with(dir)) {
        bail!("something is still mounted below {}", dir.display());
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// A filesystem in a sparse loop image, mounted under [`process_dir`];
/// unmounted, detached and deleted on drop.
#[derive(Debug)]
pub struct ScratchFs {
    fs: FsType,
    image: PathBuf,
    mount: PathBuf,
    device: Option<PathBuf>,
    mounted: bool,
}

impl ScratchFs {
    /// Makes a `size`-byte filesystem of type `fs` and mounts it.
    pub fn new(fs: FsType, size: u64) -> Result<ScratchFs> {
        let base = process_dir();
        let n = unique();
        let mut me = ScratchFs {
            fs,
            image: base.join(format!("{}-{n}.img", fs.name())),
            mount: base.join(format!("{}-{n}", fs.name())),
            device: None,
            mounted: false,
        };
        let img = std::fs::File::create_new(&me.image)
            .with_context(|| format!("cannot create {}", me.image.display()))?;
        img.set_len(size)?;
        drop(img);
        let dev = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&me.image))?;
        let dev = PathBuf::from(dev.trim());
        if !dev.starts_with("/dev/") {
            bail!("losetup printed {dev:?}, not a device");
        }
        me.device = Some(dev.clone());
        run(&mut fs.mkfs(&dev))?;
        std::fs::create_dir(&me.mount)?;
        run(Command::new("mount").arg(&dev).arg(&me.mount))?;
        me.mounted = true;
        Ok(me)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    pub fn fs_type(&self) -> FsType {
        self.fs
    }

    /// The loop device.
    pub fn device(&self) -> &Path {
        self.device.as_deref().expect("set in new()")
    }
}

impl Drop for ScratchFs {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = unmount(&self.mount) {
                eprintln!("warning: cannot unmount {}: {e:#}", self.mount.display());
                return; // never delete through a mount
            }
        }
        if let Some(dev) = &self.device {
            if let Err(e) = run(Command::new("losetup").arg("-d").arg(dev)) {
                eprintln!("warning: cannot detach {}: {e:#}", dev.display());
            }
        }
        let _ = std::fs::remove_dir(&self.mount);
        let _ = std::fs::remove_file(&self.image);
        if let Some(parent) = self.image.parent() {
            let _ = std::fs::remove_dir(parent); // only once empty
        }
    }
}

/// Checks that root tests can run here: root, loop devices, btrfs. `Ok`
/// with the reason when they cannot.
fn root_problem() -> Option<String> {
    static PROBLEM: OnceLock<Option<String>> = OnceLock::new();
    PROBLEM
        .get_or_init(|| {
            if !rustix::process::geteuid().is_root() {
                return Some("not running as root (loop mounts and btrfs ioctls need root)".into());
            }
            if !Path::new("/dev/loop-control").exists() {
                return Some("no /dev/loop-control: loop devices are unavailable".into());
            }
            let has_btrfs = || {
                std::fs::read_to_string("/proc/filesystems")
                    .is_ok_and(|t| t.lines().any(|l| l.trim_end().ends_with("btrfs")))
            };
            if !has_btrfs() {
                let _ = Command::new("modprobe").arg("btrfs").output();
                if !has_btrfs() {
                    return Some("the kernel has no btrfs (not in /proc/filesystems)".into());
                }
            }
            for tool in ["mkfs.btrfs", "losetup", "mount", "umount"] {
                if Command::new(tool).arg("--version").output().is_err() {
                    return Some(format!("{tool} is not installed"));
                }
            }
            None
        })
        .clone()
}

/// `true` when the root tests can run. When they cannot: panics with the
/// reason, unless `REIMAGE_SKIP_ROOT_TESTS=1` and `CI` is not `true`, in
/// which case it prints a loud SKIPPED line and returns `false`. Use
/// [`require_root!`](crate::require_root), which returns from the test.
pub fn require_root(test: &str) -> bool {
    let Some(problem) = root_problem() else {
        return true;
    };
    // The harness names each test's thread after the test.
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => format!("{test}::{name}"),
        _ => test.to_string(),
    };
    let skip = std::env::var("REIMAGE_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if skip && !ci {
        eprintln!("SKIPPED (REIMAGE_SKIP_ROOT_TESTS): {test}: {problem}");
        return false;
    }
    panic!(
        "{test} needs root, loop devices and btrfs: {problem}. Run the tests as root \
         (e.g. in a VM or `sudo -E cargo test`); set REIMAGE_SKIP_ROOT_TESTS=1 to skip \
         them loudly outside CI"
    );
}

/// Returns from the current test unless root tests can run here (see
/// [`require_root`](crate::require_root())).
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::require_root(module_path!()) {
            return;
        }
    };
}

/// The filesystem of type `fs` shared by the tests of this process that run
/// at the same time; made on first use, unmounted when the last user drops
/// its `Arc`.
pub fn shared_fs(fs: FsType) -> Arc<ScratchFs> {
    static SHARED: [Mutex<Weak<ScratchFs>>; 3] = [const { Mutex::new(Weak::new()) }; 3];
    let slot = &SHARED[fs as usize];
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(fs) = guard.upgrade() {
        return fs;
    }
    if let Some(problem) = root_problem() {
        panic!("cannot make a scratch {} filesystem: {problem}", fs.name());
    }
    let new = Arc::new(
        ScratchFs::new(fs, fs.shared_size())
            .unwrap_or_else(|e| panic!("cannot make a scratch {} filesystem: {e:#}", fs.name())),
    );
    *guard = Arc::downgrade(&new);
    new
}

/// A directory of its own for one test, on a shared scratch filesystem
/// (a subvolume on btrfs), deleted on drop.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
    fs: Arc<ScratchFs>,
}

impl TestDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
    /// The filesystem this directory lives on.
    pub fn fs(&self) -> &ScratchFs {
        &self.fs
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // The subvolume with nested (even read-only) ones, or the plain
        // directory, whatever depth a test left in it.
        if let Err(e) = reimage_sys::rmtree::remove_path(&self.path) {
            eprintln!(
                "warning: cannot remove test dir {}: {e:#}",
                self.path.display()
            );
        }
    }
}

/// A fresh directory named after `name` on the shared filesystem of type `fs`.
pub fn fs_dir(fs: FsType, name: &str) -> TestDir {
    let shared = shared_fs(fs);
    let path = shared.path().join(format!("{name}-{}", unique()));
    if fs == FsType::Btrfs {
        reimage_sys::subvolume_create(&path)
            .unwrap_or_else(|e| panic!("cannot create subvolume {}: {e}", path.display()));
    } else {
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    }
    TestDir { path, fs: shared }
}

/// A fresh subvolume for one test on this process's shared btrfs.
pub fn btrfs_dir(name: &str) -> TestDir {
    fs_dir(FsType::Btrfs, name)
}

/// A fresh directory for one test on this process's shared XFS (reflink=1).
pub fn xfs_dir(name: &str) -> TestDir {
    fs_dir(FsType::Xfs, name)
}

/// A fresh directory for one test on this process's shared ext4 (no reflinks).
pub fn ext4_dir(name: &str) -> TestDir {
    fs_dir(FsType::Ext4, name)
}

/// Unmounts a path on drop (for tests that mount things themselves, e.g.
/// through `reimage init --image`). Loop devices set up by `mount -o loop`
/// are freed by the kernel on unmount (autoclear).
#[derive(Debug)]
pub struct UnmountOnDrop(pub PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        while mounted_at(&self.0).is_some() {
            if let Err(e) = unmount(&self.0) {
                eprintln!("warning: cannot unmount {}: {e:#}", self.0.display());
                break;
            }
        }
    }
}

/// Makes sure the program `bin` (from the Debian package `package`) is
/// installed, installing it with apt-get when running as root (the way
/// `cargo xtask test` does, xtask/src/prereq.rs). Panics naming the package
/// when it is missing and cannot be installed: a test never passes without
/// the peer it tests against.
pub fn require_tool(bin: &str, package: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let have = || {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(bin).is_file())
            || Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .output()
                .is_ok_and(|o| o.status.success())
    };
    if have() {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        panic!("{bin} is not installed: `sudo apt-get install -y {package}` (or run the tests as root, which installs it)");
    }
    eprintln!("testkit: installing {package} for {bin}");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if let Err(e) = apt(&["install", "-y", "--no-install-recommends", package]) {
        eprintln!("testkit: {e:#}; running apt-get update first");
        apt(&["update"]).unwrap_or_else(|e| panic!("cannot install {package}: {e:#}"));
        apt(&["install", "-y", "--no-install-recommends", package])
            .unwrap_or_else(|e| panic!("cannot install {package}: {e:#}"));
    }
    assert!(have(), "{bin} is still missing after installing {package}");
}
