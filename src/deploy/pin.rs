//! `reimage pin ID` / `unpin ID`: a pinned deployment is kept by cleanup
//! whatever the retention setting.
use anyhow::Result;

pub fn set_pinned(
    sysroot: Option<&std::path::Path>,
    id: u64,
    pinned: bool,
    wait: bool,
) -> Result<()> {
    let (sr, pool, _lock, mut state, _) =
        crate::deploy::system::open_locked(sysroot, None, false, wait)?;
    state.require(id)?;
    state.get_mut(id).expect("required").pinned = pinned;
    crate::deploy::system::commit_state(&sr, &pool, &state)
}
