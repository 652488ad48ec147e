//! Finding and creating a system's layout on its btrfs filesystem.
//!
//! With `--sysroot DIR`, DIR is the mounted top level of the filesystem
//! (subvolume id 5). Without it, reimage is on a running reimage system: it
//! reads which deployment `/` is from `/proc/self/mountinfo`, moves into a
//! private mount namespace and mounts the filesystem's top level there
//! (`/run/reimage/sysroot`, seen by no other process, gone when reimage
//! exits, even killed).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::deploy::state::State;
use crate::sys;

/// reimage's own directory in the sysroot.
pub const DIR: &str = "reimage";
/// Where the shared subvolumes live in the sysroot.
pub const SHARED_DIR: &str = "shared";
/// The shared subvolumes: name under `shared/`, mount point. No deployment
/// owns them and no rollback touches them; `/root`, `/srv`, `/opt` and
/// `/usr/local` are here because they would otherwise sit in a deployment
/// (lost on update) or in a read-only view.
pub const SHARED: &[(&str, &str)] = &[
    ("var", "/var"),
    ("home", "/home"),
    ("root", "/root"),
    ("srv", "/srv"),
    ("opt", "/opt"),
    ("usr-local", "/usr/local"),
];
/// Where a running system mounts its top level (in its private namespace).
pub const RUN_SYSROOT: &str = "/run/reimage/sysroot";

/// An open system layout.
#[derive(Debug)]
pub struct Sysroot {
    /// The mounted top level of the filesystem.
    pub root: PathBuf,
    /// The filesystem's UUID (fstab and kernel command lines name it).
    pub uuid: String,
    /// The deployment `/` is, when reimage runs on the system itself.
    pub booted: Option<u64>,
    /// Whether reimage found the layout itself (a running system) rather
    /// than being given `--sysroot`.
    pub running: bool,
    /// A running system booted diskless (`reimage.toram`): `/` is a tmpfs,
    /// the disk is mounted only in reimage's namespace, while it runs.
    pub diskless: bool,
}

impl Sysroot {
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(DIR)
    }
    pub fn deployments_dir(&self) -> PathBuf {
        self.root.join(DIR).join("deployments")
    }
    /// Each deployment's record of how it was made (merge decisions, steps).
    pub fn records_dir(&self) -> PathBuf {
        self.root.join(DIR).join("records")
    }
    pub fn history_dir(&self) -> PathBuf {
        self.root.join(DIR).join("etc-history")
    }
    /// Staging; garbage after a crash, emptied when a writer starts.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(DIR).join("tmp")
    }
    pub fn shared_dir(&self) -> PathBuf {
        self.root.join(SHARED_DIR)
    }
    /// The root subvolume of deployment `id`.
    pub fn deployment(&self, id: u64) -> PathBuf {
        self.deployments_dir().join(id.to_string())
    }
    pub fn has_layout(&self) -> bool {
        self.state_dir().join(State::FILE).is_file()
    }

    pub fn read_state(&self) -> Result<State> {
        if !self.has_layout() {
            bail!(
                "{} is not a reimage system (no {DIR}/{}); `reimage deploy VIEW --sysroot {}` makes one",
                self.root.display(),
                State::FILE,
                self.root.display()
            );
        }
        State::read(&self.state_dir())
    }

    /// The pool of this system, from the state record.
    pub fn pool_path(&self, state: &State) -> PathBuf {
        self.root.join(&state.pool)
    }
}

/// Opens the system at `sysroot`, or the running system's own layout.
pub fn open(sysroot: Option<&Path>) -> Result<Sysroot> {
    match sysroot {
        Some(dir) => open_dir(dir, false),
        None => discover(),
    }
}

fn open_dir(dir: &Path, running: bool) -> Result<Sysroot> {
    let root = std::path::absolute(dir).with_context(|| format!("bad path {}", dir.display()))?;
    let f = std::fs::File::open(&root)
        .with_context(|| format!("cannot open the sysroot {}", root.display()))?;
    let fs = sys::fs_info_fd(&f)?;
    if fs.kind != sys::FsKind::Btrfs {
        bail!(
            "{} is on {}, not btrfs: a reimage system lives on one btrfs filesystem",
            root.display(),
            fs.kind
        );
    }
    let id = sys::subvolume_id(&f)?;
    if id != 5 || !sys::is_subvolume(&root)? {
        bail!(
            "{} is not the top level of its btrfs filesystem (it is in subvolume {id}); \
             mount the filesystem with -o subvolid=5 and give that directory",
            root.display()
        );
    }
    let uuid = sys::btrfs_uuid(&f)?;
    let booted = booted_deployment(&uuid);
    Ok(Sysroot {
        root,
        uuid,
        booted,
        running,
        diskless: false,
    })
}

/// The deployment mounted at `/`, if `/` is one of this filesystem's.
fn booted_deployment(uuid: &str) -> Option<u64> {
    deployment_at(uuid, Path::new("/"))
}

/// The deployment mounted at `at` (a running root), if it is one of the
/// filesystem `uuid`'s.
pub fn deployment_at(uuid: &str, at: &Path) -> Option<u64> {
    let root = sys::mounts()
        .ok()?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == at)?;
    if root.fs_type != "btrfs" {
        return None;
    }
    let id: u64 = root
        .root
        .strip_prefix(format!("/{DIR}/deployments"))
        .ok()?
        .to_str()?
        .parse()
        .ok()?;
    let f = std::fs::File::open(at).ok()?;
    (sys::btrfs_uuid(&f).ok()? == uuid).then_some(id)
}

/// On a running system: mounts the top level of `/`'s filesystem privately.
fn discover() -> Result<Sysroot> {
    let mounts = sys::mounts()?;
    let root = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == Path::new("/"))
        .context("cannot find the root mount in /proc/self/mountinfo")?;
    let deployed = root.fs_type == "btrfs" && root.root.starts_with(format!("/{DIR}/deployments"));
    if !deployed && root.fs_type == "tmpfs" {
        if let Some((device, id)) = diskless_boot() {
            sys::private_mount_namespace()?;
            let sr = mount_top(&device)?;
            return Ok(Sysroot {
                booted: Some(id),
                diskless: true,
                ..sr
            });
        }
    }
    if !deployed {
        bail!(
            "this system was not booted from a reimage deployment (/ is {} {}); \
             give --sysroot DIR (the mounted top level of a reimage system's btrfs)",
            root.fs_type,
            root.root.display()
        );
    }
    let device = root.source.clone();
    sys::private_mount_namespace()?;
    mount_top(&device)
}

/// On a diskless boot (`reimage.toram`): the disk, by the `root=UUID=` of
/// the kernel command line, and the deployment from `rootflags=subvol=`.
fn diskless_boot() -> Option<(String, u64)> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").ok()?;
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    if !words
        .iter()
        .any(|w| *w == "reimage.toram" || w.starts_with("reimage.toram="))
    {
        return None;
    }
    let uuid = words.iter().find_map(|w| w.strip_prefix("root=UUID="))?;
    let id = words
        .iter()
        .find_map(|w| w.strip_prefix("rootflags="))?
        .split(',')
        .find_map(|o| o.strip_prefix(&format!("subvol=/{DIR}/deployments/")))?
        .parse()
        .ok()?;
    let dev = Path::new("/dev/disk/by-uuid").join(uuid.to_ascii_lowercase());
    let dev = std::fs::canonicalize(&dev).ok()?;
    Some((dev.display().to_string(), id))
}

/// Mounts the top level of the btrfs on `device` at [`RUN_SYSROOT`] (in
/// reimage's private namespace) and opens it.
fn mount_top(device: &str) -> Result<Sysroot> {
    std::fs::create_dir_all(RUN_SYSROOT).with_context(|| format!("cannot create {RUN_SYSROOT}"))?;
    let data = std::ffi::CString::new("subvolid=5").unwrap();
    rustix::mount::mount(
        device,
        RUN_SYSROOT,
        "btrfs",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .with_context(|| format!("cannot mount the top level of {device} at {RUN_SYSROOT}"))?;
    open_dir(Path::new(RUN_SYSROOT), true)
}

/// Creates the layout on a top level that holds no system yet: reimage's
/// directories, the shared subvolumes, and a state record naming the pool,
/// which must be on this filesystem (its views are mounted as `/usr` by
/// `subvol=`, which names a path of this filesystem).
pub fn create_layout(sr: &Sysroot, pool: &Path) -> Result<State> {
    let pool = std::path::absolute(pool)?;
    let pf = std::fs::File::open(&pool)
        .with_context(|| format!("cannot open the pool {}", pool.display()))?;
    let pool_uuid = sys::btrfs_uuid(&pf).map_err(|e| {
        anyhow::anyhow!(
            "the pool {} is not on btrfs ({e}); it must be on the system's filesystem {}",
            pool.display(),
            sr.root.display()
        )
    })?;
    if pool_uuid != sr.uuid {
        bail!(
            "the pool {} is on another filesystem (UUID {pool_uuid}) than the sysroot {} \
             (UUID {}): views are mounted as /usr by subvol=, so the pool must be on the \
             system's own filesystem",
            pool.display(),
            sr.root.display(),
            sr.uuid
        );
    }
    let rel = pool
        .canonicalize()?
        .strip_prefix(sr.root.canonicalize()?)
        .map(Path::to_path_buf)
        .map_err(|_| {
            anyhow::anyhow!(
                "the pool {} is not under the sysroot {}: give a pool inside it (e.g. {}/pool)",
                pool.display(),
                sr.root.display(),
                sr.root.display()
            )
        })?;
    for d in [
        sr.state_dir(),
        sr.deployments_dir(),
        sr.records_dir(),
        sr.history_dir(),
        sr.tmp_dir(),
        sr.shared_dir(),
    ] {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    for (name, _) in SHARED {
        let p = sr.shared_dir().join(name);
        if !p.exists() {
            sys::subvolume_create(&p)
                .with_context(|| format!("cannot create the shared subvolume {}", p.display()))?;
        }
    }
    let perms = [("root", 0o700), ("var", 0o755), ("home", 0o755)];
    for (name, mode) in perms {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            sr.shared_dir().join(name),
            std::fs::Permissions::from_mode(mode),
        )?;
    }
    let state = State::new(rel);
    state.write(&sr.state_dir())?;
    Ok(state)
}
