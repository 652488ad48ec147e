//! What every deployment operation shares: opening a system with its
//! pool's writer lock held, committing a state record with the pool's
//! roots, removing an interrupted writer's garbage, the views.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::deploy::fstab;
use crate::deploy::state::State;
use crate::deploy::sysroot::{self, Sysroot};
use crate::store::pool::Pool;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Moves reimage into its own mount namespace, once per process.
pub fn private_namespace() -> Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| crate::sys::private_mount_namespace().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// A view of the pool, which must exist.
pub fn view_path(pool: &Pool, name: &str) -> Result<PathBuf> {
    let p = pool.views_dir().join(name);
    if !p.is_dir() {
        bail!(
            "there is no view {name} in the pool {} (`reimage views` lists them)",
            pool.root.display()
        );
    }
    Ok(p)
}

/// The package diff from view `a` to view `b`.
pub fn view_diff(pool: &Pool, a: &str, b: &str) -> Result<sysimage::diff::PackageDiff> {
    let da = sysimage::Tree::open(&view_path(pool, a)?)?.packages()?;
    let db = sysimage::Tree::open(&view_path(pool, b)?)?.packages()?;
    Ok(sysimage::diff::diff(&da, &db))
}

/// The pool's root file for this system: the views its deployments use.
pub fn roots_file(pool: &Pool, sr: &Sysroot) -> PathBuf {
    pool.root
        .join("roots")
        .join(format!("system-{}.json", sr.uuid))
}

fn write_roots(pool: &Pool, sr: &Sysroot, views: &[String]) -> Result<()> {
    let dir = pool.root.join("roots");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::json!({
        "what": "views that deployments of a reimage system use: gc and rm-view keep them",
        "sysroot": sr.root,
        "views": views,
    });
    crate::util::atomic::write_atomic(
        &roots_file(pool, sr),
        (serde_json::to_string_pretty(&json)? + "\n").as_bytes(),
    )
}

/// Writes a new state record: the pool's roots first hold the views of both
/// the old and the new record (a view is never unprotected while a record
/// names it), then the state is renamed into place, then the roots shrink
/// to the new record's views.
pub fn commit_state(sr: &Sysroot, pool: &Pool, state: &State) -> Result<()> {
    let old = if sr.has_layout() {
        State::read(&sr.state_dir()).ok()
    } else {
        None
    };
    let mut both = state.views();
    if let Some(o) = &old {
        both.extend(o.views());
        both.sort();
        both.dedup();
    }
    write_roots(pool, sr, &both)?;
    state.write(&sr.state_dir())?;
    write_roots(pool, sr, &state.views())
}

/// Removes what an interrupted writer left: everything in `reimage/tmp/`,
/// deployment subvolumes the state record does not list, half-made `etc`
/// exchanges inside deployments, records and histories of deployments that
/// are gone. Call with the pool's writer lock held.
pub fn clean_garbage(sr: &Sysroot, state: &State) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(sr.tmp_dir())?;
    let victims = garbage(sr, state);
    for v in &victims {
        crate::sys::rmtree::remove_path(v)
            .with_context(|| format!("cannot remove {}", v.display()))?;
    }
    Ok(victims)
}

/// What [`clean_garbage`] removes: everything in `reimage/tmp/`,
/// deployments, histories and records the record does not list, and
/// half-made `etc` exchanges inside deployments.
pub fn garbage(sr: &Sysroot, state: &State) -> Vec<PathBuf> {
    let listed = |name: &str| {
        name.parse::<u64>()
            .ok()
            .is_some_and(|id| state.get(id).is_some())
    };
    let mut victims: Vec<PathBuf> = std::fs::read_dir(sr.tmp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    for dir in [sr.deployments_dir(), sr.history_dir(), sr.records_dir()] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            if !listed(stem) {
                victims.push(e.path());
            }
        }
    }
    for d in &state.deployments {
        for e in std::fs::read_dir(sr.deployment(d.id))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(".etc-") {
                victims.push(e.path());
            }
        }
    }
    victims
}

/// Whether `path` exists (for messages).
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Opens a system (creating its layout when `create` and there is none) and
/// its pool, with the pool's writer lock held.
pub fn open_locked(
    sysroot: Option<&Path>,
    pool: Option<&Path>,
    create: bool,
    wait: bool,
) -> Result<(Sysroot, Pool, crate::store::pool::WriteLock, State, bool)> {
    open_locked_for(sysroot, pool, create, wait, None)
}

/// [`open_locked`], checking that `view` exists before a layout is made
/// (a refused deploy leaves nothing behind).
pub fn open_locked_for(
    sysroot: Option<&Path>,
    pool: Option<&Path>,
    create: bool,
    wait: bool,
    view: Option<&str>,
) -> Result<(Sysroot, Pool, crate::store::pool::WriteLock, State, bool)> {
    let sr = sysroot::open(sysroot)?;
    let (pool_path, state, created) = if sr.has_layout() {
        let state = sr.read_state()?;
        (sr.pool_path(&state), Some(state), false)
    } else if create {
        let p = pool.context("no pool to create the system's layout with")?;
        (p.to_path_buf(), None, true)
    } else {
        let state = sr.read_state()?; // the "not a reimage system" error
        (sr.pool_path(&state), Some(state), false)
    };
    let pool = Pool::open(&pool_path)?;
    let lock = pool.lock(wait)?;
    if let Some(v) = view {
        view_path(&pool, v)?;
    }
    let state = match state {
        Some(s) => s,
        None => sysroot::create_layout(&sr, &pool.root)?,
    };
    // An interrupted writer's record is brought onto the ESP before the
    // deployments it no longer names are removed.
    // Best effort: an ESP that cannot be written now (not mounted, say, at
    // shutdown) must not stop finalize or cleanup; the commands that change
    // the default write it and fail when they cannot.
    if sr.has_layout() {
        if let Err(e) = crate::deploy::boot::sync(&sr, &pool, &state, &crate::util::report::Silent)
        {
            crate::util::runner::log::warn(&format!(
                "the boot entries are not brought in line now: {e:#}"
            ));
        }
    }
    clean_garbage(&sr, &state)?;
    Ok((sr, pool, lock, state, created))
}

/// The fstab lines of a deployment of `view` on this system.
pub fn fstab_lines(sr: &Sysroot, state: &State, view: &str) -> Vec<fstab::Line> {
    let view_subvol = format!("/{}/views/{view}", state.pool.display());
    let view_dir = sr.root.join(&state.pool).join("views").join(view);
    let shared: Vec<(String, String)> = sysroot::SHARED
        .iter()
        // A mount point inside the read-only view (`/usr/local`) exists only
        // if a package made it (Fedora's `filesystem`, Debian's `base-files`);
        // without it the mount would fail the boot's local-fs.target.
        .filter(|(_, mp)| match mp.strip_prefix("/usr/") {
            Some(rel) => {
                let there = view_dir.join(rel).is_dir();
                if !there {
                    crate::util::runner::log::warn(&format!(
                        "view {view} has no /usr/{rel} directory: the shared {mp} is not mounted"
                    ));
                }
                there
            }
            None => true,
        })
        .map(|(name, mp)| (format!("/{}/{name}", sysroot::SHARED_DIR), mp.to_string()))
        .collect();
    let esp = state
        .boot
        .as_ref()
        .filter(|b| b.esp.starts_with('/'))
        .map(|b| (b.esp_uuid.as_str(), b.esp.as_str()));
    fstab::lines(&sr.uuid, &view_subvol, &shared, esp)
}

/// Runs `f` with `view` bind-mounted on `root/usr` (in reimage's private
/// mount namespace, so the mount is nobody else's and cannot outlive
/// reimage), unmounting it afterwards.
pub fn with_usr<T>(root: &Path, view: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    private_namespace()?;
    let usr = root.join("usr");
    rustix::mount::mount_bind(view, &usr)
        .with_context(|| format!("cannot bind-mount {} on {}", view.display(), usr.display()))?;
    let r = f();
    let u = rustix::mount::unmount(&usr, rustix::mount::UnmountFlags::DETACH)
        .with_context(|| format!("cannot unmount {}", usr.display()));
    let v = r?;
    u?;
    if std::fs::read_dir(&usr)?.next().is_some() {
        bail!("{} is not empty after the first-boot steps", usr.display());
    }
    Ok(v)
}
