//! `reimage rollback`: the previous deployment (the newest one older than
//! the default that has not failed) becomes the default: one rename of the
//! state record.
use anyhow::{bail, Result};
use serde::Serialize;

use crate::util::failpoint;

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub from: u64,
    pub to: u64,
    pub view: String,
}

pub fn rollback(sysroot: Option<&std::path::Path>, wait: bool) -> Result<RollbackReport> {
    let (sr, pool, _lock, mut state, _) =
        crate::deploy::system::open_locked(sysroot, None, false, wait)?;
    let Some(from) = state.default else {
        bail!("there is no default deployment to roll back from");
    };
    let Some(to) = state.previous().cloned() else {
        bail!(
            "deployment {from} is the oldest that has not failed: there is nothing to roll back to"
        );
    };
    state.default = Some(to.id);
    crate::deploy::system::commit_state(&sr, &pool, &state)?;
    failpoint::hit("rollback.state");
    crate::deploy::boot::sync_retrying(
        &sr,
        &pool,
        &state,
        Some(to.id),
        &crate::util::report::Silent,
    )?;
    Ok(RollbackReport {
        from,
        to: to.id,
        view: to.view,
    })
}
