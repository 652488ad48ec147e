//! Deployments: bootable roots around views (docs/deploy.md). One file per
//! operation; the layout is drawn here.
//!
//! ```text
//! SYSROOT/                       top level of the system's btrfs (subvolid 5)
//!   pool/                        the pool (any path on this filesystem; the state names it)
//!     views/NAME                 read-only views: a deployment's /usr (subvol=)
//!     roots/system-UUID.json     the views deployments use (gc and rm-view keep them)
//!   reimage/
//!     state.json                 deployments, the default, retention: one atomic rename
//!     deployments/ID/            writable subvolume: the root of deployment ID
//!       etc/                     its own subvolume (etc commit = one snapshot)
//!       usr/                     empty: the view is mounted here
//!       bin -> usr/bin, ...      the view's root skeleton (reimage-root.conf)
//!     records/ID.json            how ID was made: merge decisions, first-boot steps
//!     etc-history/ID/N           read-only snapshots of ID's etc (etc commit), N.json beside
//!     tmp/                       staging: garbage after a crash
//!   shared/var, home, root, srv, opt, usr-local
//!                                subvolumes no deployment owns and no rollback touches
//! ```
pub mod cleanup;
pub mod deploy;
pub mod etc;
pub mod finalize;
pub mod firstboot;
pub mod fstab;
pub mod merge;
pub mod pin;
pub mod record;
pub mod rollback;
pub mod skeleton;
pub mod state;
pub mod status;
pub mod sysroot;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::store::pool::Pool;
use state::State;
use sysroot::Sysroot;

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
    pool.root.join("roots").join(format!("system-{}.json", sr.uuid))
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
    let mut removed = Vec::new();
    std::fs::create_dir_all(sr.tmp_dir())?;
    let listed = |name: &str| {
        name.parse::<u64>()
            .ok()
            .is_some_and(|id| state.get(id).is_some())
    };
    let mut victims: Vec<PathBuf> = std::fs::read_dir(sr.tmp_dir())?
        .flatten()
        .map(|e| e.path())
        .collect();
    for (dir, keep_listed) in [
        (sr.deployments_dir(), true),
        (sr.history_dir(), true),
        (sr.records_dir(), true),
    ] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            if keep_listed && !listed(stem) {
                victims.push(e.path());
            }
        }
    }
    for d in &state.deployments {
        for e in std::fs::read_dir(sr.deployment(d.id)).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(".etc-") {
                victims.push(e.path());
            }
        }
    }
    for v in victims {
        crate::sys::rmtree::remove_path(&v)
            .with_context(|| format!("cannot remove {}", v.display()))?;
        removed.push(v);
    }
    Ok(removed)
}

/// Whether `path` exists (for messages).
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
