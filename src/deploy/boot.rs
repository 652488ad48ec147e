//! The boot entries of a system's deployments: the state record is the
//! commit point, and [`sync`] brings the ESP in line with it after every
//! change (deploy, rollback, cleanup, undeploy, a fallback found at boot).
//! A crash between the two leaves the ESP booting the previous default,
//! which the record still keeps; the next writer (or `reimage boot sync`)
//! finishes the job.
//!
//! `bootcheck.rs` runs at boot (`reimage-boot-check.service`).
use std::sync::OnceLock;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::boot::esp::Esp;
use crate::boot::{self, entries};
use crate::deploy::state::State;
use crate::deploy::sysroot::Sysroot;
use crate::store::pool::Pool;
use crate::util::report::Reporter;

static ESP_OVERRIDE: OnceLock<Esp> = OnceLock::new();

/// For offline use (`--esp`): the ESP this process writes instead of the
/// one the state record names (which is the running system's mount point).
pub fn use_esp(esp: Esp) {
    let _ = ESP_OVERRIDE.set(esp);
}

/// The ESP to write, if the system has boot entries.
pub fn esp_of(state: &State) -> Result<Option<Esp>> {
    if let Some(e) = ESP_OVERRIDE.get() {
        return Ok(Some(e.clone()));
    }
    match &state.boot {
        Some(b) => Esp::parse(&b.esp)
            .with_context(|| format!("the ESP the state record names ({})", b.esp))
            .map(Some),
        None => Ok(None),
    }
}

/// The kernel command line of deployment `id`.
pub fn options_of(sr: &Sysroot, state: &State, id: u64) -> Result<String> {
    let d = state.require(id)?;
    Ok(entries::options(
        &sr.uuid,
        &format!("/{}/deployments/{id}", crate::deploy::sysroot::DIR),
        &format!("/{}/views/{}", state.pool.display(), d.view),
        &d.kernel_args,
    ))
}

/// The plan of entries the record wants: one per deployment.
pub fn plan(sr: &Sysroot, pool: &Pool, state: &State, retry: Option<u64>) -> Result<boot::Plan> {
    let mut entries = Vec::new();
    for d in &state.deployments {
        let version = d
            .origin
            .as_ref()
            .and_then(|o| o.version.as_ref())
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        entries.push(boot::Want {
            id: d.id,
            title: format!("reimage {} ({}{version})", d.id, d.view),
            view: pool.views_dir().join(&d.view),
            options: options_of(sr, state, d.id)?,
        });
    }
    Ok(boot::Plan {
        entries,
        default: state.default,
        tries: state.boot.as_ref().map_or(entries::TRIES, |b| b.tries),
        retry,
    })
}

/// Brings the ESP in line with the record (nothing when it has no ESP).
pub fn sync(
    sr: &Sysroot,
    pool: &Pool,
    state: &State,
    reporter: &dyn Reporter,
) -> Result<Option<boot::Applied>> {
    sync_retrying(sr, pool, state, None, reporter)
}

/// [`sync`], giving `retry` a fresh count of tries when it has none left
/// (`rollback` to it).
pub fn sync_retrying(
    sr: &Sysroot,
    pool: &Pool,
    state: &State,
    retry: Option<u64>,
    reporter: &dyn Reporter,
) -> Result<Option<boot::Applied>> {
    let Some(esp) = esp_of(state)? else {
        return Ok(None);
    };
    let plan = plan(sr, pool, state, retry)?;
    let applied = boot::apply(&esp, &plan, reporter)
        .with_context(|| format!("cannot write the boot entries on the ESP ({esp})"))?;
    Ok(Some(applied))
}

/// The boot state of each deployment, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryState {
    pub id: u64,
    pub file: String,
    pub counter: entries::Counter,
    pub rank: u64,
    /// systemd-boot's choice for the next boot.
    pub first: bool,
}

/// The entries on the ESP, if the system has one and it can be read.
pub fn entry_states(state: &State) -> Result<Option<Vec<EntryState>>> {
    let Some(esp) = esp_of(state)? else {
        return Ok(None);
    };
    let found = boot::read_entries(&esp)?;
    let first = boot::first_entry(&found);
    Ok(Some(
        found
            .values()
            .map(|f| EntryState {
                id: f.id,
                file: f.file.clone(),
                counter: f.counter,
                rank: f.rank,
                first: Some(f.id) == first,
            })
            .collect(),
    ))
}
