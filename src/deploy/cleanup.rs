//! `reimage cleanup`: removes the deployments the retention rule does not
//! keep (the booted, the default, the pinned and the `retain` newest others
//! stay). The state record drops them first (one atomic rename), then their
//! subvolumes, records and `/etc` histories go: a kill in between leaves
//! only garbage that the next writer removes.
use anyhow::{Context, Result};
use serde::Serialize;

use crate::deploy::state::State;
use crate::deploy::sysroot::Sysroot;
use crate::store::pool::Pool;
use crate::util::failpoint;
use crate::util::report::Reporter;

#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    pub sysroot: Option<std::path::PathBuf>,
    /// Change the number of other deployments kept (remembered).
    pub keep: Option<usize>,
    pub wait: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    pub removed: Vec<u64>,
    pub kept: Vec<u64>,
    pub retain: usize,
}

pub fn cleanup(opts: &CleanupOptions, reporter: &dyn Reporter) -> Result<CleanupReport> {
    let (sr, pool, _lock, mut state, _) =
        crate::deploy::system::open_locked(opts.sysroot.as_deref(), None, false, opts.wait)?;
    if let Some(k) = opts.keep {
        state.retain = k;
        crate::deploy::system::commit_state(&sr, &pool, &state)?;
    }
    let removed = apply(&sr, &pool, &mut state, reporter)?;
    Ok(CleanupReport {
        removed,
        kept: state.deployments.iter().map(|d| d.id).collect(),
        retain: state.retain,
    })
}

/// `reimage undeploy ID`: removes one deployment now. The booted one and
/// the default are refused (make another the default first: rollback, or
/// deploy); a pinned one too, until it is unpinned.
pub fn undeploy(
    sysroot: Option<&std::path::Path>,
    id: u64,
    wait: bool,
    reporter: &dyn Reporter,
) -> Result<()> {
    let (sr, pool, _lock, mut state, _) =
        crate::deploy::system::open_locked(sysroot, None, false, wait)?;
    let d = state.require(id)?.clone();
    if sr.booted == Some(id) {
        anyhow::bail!("deployment {id} is the booted one: it cannot be removed while it runs");
    }
    if state.default == Some(id) {
        anyhow::bail!(
            "deployment {id} is the default for the next boot: make another the default first (reimage rollback, or deploy another view)"
        );
    }
    if d.pinned {
        anyhow::bail!("deployment {id} is pinned: `reimage unpin {id}` first");
    }
    state.deployments.retain(|x| x.id != id);
    remove(&sr, &pool, &state, &[id], reporter)
}

fn remove(
    sr: &Sysroot,
    pool: &Pool,
    state: &State,
    gone: &[u64],
    reporter: &dyn Reporter,
) -> Result<()> {
    crate::deploy::system::commit_state(sr, pool, state)?;
    failpoint::hit("cleanup.state");
    // Their boot entries go before they do.
    crate::deploy::boot::sync(sr, pool, state, reporter)?;
    for id in gone {
        for p in [
            sr.deployment(*id),
            sr.history_dir().join(id.to_string()),
            sr.records_dir().join(format!("{id}.json")),
        ] {
            if crate::deploy::system::exists(&p) {
                crate::sys::rmtree::remove_path(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        failpoint::hit("cleanup.removed");
        reporter.note(&format!("removed deployment {id}"));
    }
    Ok(())
}

/// Removes what retention does not keep; returns the removed ids.
pub fn apply(
    sr: &Sysroot,
    pool: &Pool,
    state: &mut State,
    reporter: &dyn Reporter,
) -> Result<Vec<u64>> {
    let kept = state.kept(sr.booted);
    let gone: Vec<u64> = state
        .deployments
        .iter()
        .map(|d| d.id)
        .filter(|id| !kept.contains(id))
        .collect();
    if gone.is_empty() {
        return Ok(gone);
    }
    state.deployments.retain(|d| kept.contains(&d.id));
    remove(sr, pool, state, &gone, reporter)?;
    Ok(gone)
}
