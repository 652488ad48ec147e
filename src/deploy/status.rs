//! `reimage status`: every deployment of a system, which one is booted and
//! which is the default, each one's package diff to the booted one (offline:
//! to the default), in the spirit of `bootc status --json` and `rpm-ostree
//! status`. Read-only: takes no lock.
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::deploy::state::Origin;
use crate::store::pool::Pool;

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    pub id: u64,
    pub view: String,
    /// The absolute path of its root subvolume.
    pub root: PathBuf,
    pub default: bool,
    pub booted: bool,
    pub pinned: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub packages: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Kept by retention (cleanup removes the others).
    pub kept: bool,
    /// The package diff from the booted deployment (offline: the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<sysimage::diff::PackageDiff>,
    /// Its boot entry on the ESP (when the system has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::deploy::boot::EntryState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub sysroot: PathBuf,
    /// Found on the running system itself (no --sysroot).
    pub running: bool,
    pub pool: PathBuf,
    pub booted: Option<u64>,
    pub default: Option<u64>,
    pub retain: usize,
    pub deployments: Vec<DeploymentStatus>,
    /// The ESP, when the system has boot entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esp: Option<String>,
    /// What `apply-live` made `/usr` now, over the booted deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::deploy::live::Live>,
    /// Why the ESP could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esp_error: Option<String>,
}

/// The status; `root` is the running root whose live `/usr` is reported
/// (for `apply-live --root`; default `/` on a running system).
pub fn status(sysroot: Option<&std::path::Path>, root: Option<&std::path::Path>) -> Result<Status> {
    let sr = crate::deploy::sysroot::open(sysroot)?;
    let root = root.or(sr.running.then_some(std::path::Path::new("/")));
    let booted = match root {
        Some(r) if r != std::path::Path::new("/") => {
            crate::deploy::sysroot::deployment_at(&sr.uuid, r)
        }
        _ => sr.booted,
    };
    let sr = crate::deploy::sysroot::Sysroot { booted, ..sr };
    let state = sr.read_state()?;
    let pool = Pool::open(&sr.pool_path(&state))?;
    let reference = sr.booted.or(state.default).and_then(|id| state.get(id));
    let kept = state.kept(sr.booted);
    let (entries, esp_error) = match crate::deploy::boot::entry_states(&state) {
        Ok(e) => (e.unwrap_or_default(), None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let mut out = Vec::new();
    for d in state.deployments.iter().rev() {
        let diff = match reference {
            Some(r) if r.id != d.id => {
                crate::deploy::system::view_diff(&pool, &r.view, &d.view).ok()
            }
            _ => None,
        };
        out.push(DeploymentStatus {
            id: d.id,
            view: d.view.clone(),
            root: sr.deployment(d.id),
            default: state.default == Some(d.id),
            booted: sr.booted == Some(d.id),
            pinned: d.pinned,
            created: d.created,
            packages: d.packages,
            failed: d.failed.clone(),
            origin: d.origin.clone(),
            kept: kept.contains(&d.id),
            diff,
            entry: entries.iter().find(|e| e.id == d.id).cloned(),
        });
    }
    Ok(Status {
        sysroot: sr.root.clone(),
        running: sr.running,
        pool: pool.root.clone(),
        booted: sr.booted,
        default: state.default,
        retain: state.retain,
        deployments: out,
        live: root
            .zip(booted)
            .and_then(|(r, b)| crate::deploy::live::current(&pool, &state, r, b)),
        esp: crate::deploy::boot::esp_of(&state)?.map(|e| e.to_string()),
        esp_error,
    })
}
