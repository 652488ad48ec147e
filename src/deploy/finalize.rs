//! `reimage finalize`: redoes the `/etc` merge of a staged deployment (the
//! default, when it is not the booted one) from the current `/etc`, so edits
//! made between `deploy` and the reboot are kept (ostree issue 545). The
//! shipped unit `reimage-finalize.service` runs it at shutdown, as
//! `ostree-finalize-staged.service` does.
//!
//! The new `etc` is built beside the staged one (`.etc-new`), the first-boot
//! steps run on it, and one `renameat2(RENAME_EXCHANGE)` swaps it in: a kill
//! at any point leaves the staged deployment whole, with the old or the new
//! `/etc`.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::deploy::merge::MergeSummary;
use crate::deploy::sysroot::Sysroot;
use crate::util::failpoint;
use crate::util::report::Reporter;

#[derive(Debug, Clone, Serialize)]
pub struct FinalizeReport {
    /// The staged deployment whose /etc was merged again (none: nothing staged).
    pub staged: Option<u64>,
    /// Where its local side came from.
    pub from: Option<u64>,
    pub merge: Option<MergeSummary>,
}

/// Swaps `a` and `b` (two entries of one filesystem) in one rename.
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .with_context(|| format!("cannot exchange {} and {}", a.display(), b.display()))?;
    if let Some(p) = b.parent() {
        crate::util::atomic::fsync_dir(p)?;
    }
    Ok(())
}

/// Builds a new `/etc` for deployment `target` beside its own (as
/// `.etc-new`): `merge(old, local, new)` written into a fresh subvolume,
/// then `steps(root_with_new_etc)` run with the new etc bind-mounted over
/// the target's in reimage's private namespace; then exchanges it in and
/// removes the old one.
pub fn rebuild_etc(
    sr: &Sysroot,
    target: u64,
    old: &Path,
    local: &Path,
    new: &Path,
    view: Option<(&Path, Vec<crate::deploy::fstab::Line>)>,
    reporter: &dyn Reporter,
) -> Result<MergeSummary> {
    let root = sr.deployment(target);
    let next: PathBuf = root.join(".etc-new");
    crate::sys::subvolume_create(&next)
        .with_context(|| format!("cannot create {}", next.display()))?;
    let summary = crate::deploy::merge::merge_into(old, local, new, &next)?;
    failpoint::hit("finalize.merged");
    if let Some((view, fstab)) = view {
        crate::deploy::system::private_namespace()?;
        let etc = root.join("etc");
        rustix::mount::mount_bind(&next, &etc).with_context(|| {
            format!("cannot bind-mount {} on {}", next.display(), etc.display())
        })?;
        // The first-boot steps again, on the new etc: sysusers, accounts,
        // ldconfig, fstab (no presets: local enablement is carried over).
        let r = crate::deploy::system::with_usr(&root, view, || {
            crate::deploy::firstboot::run(
                &crate::deploy::firstboot::Steps {
                    root: &root,
                    view,
                    new_units: Some(Vec::new()),
                    first: false,
                    fstab,
                },
                reporter,
            )
        });
        rustix::mount::unmount(&etc, rustix::mount::UnmountFlags::DETACH)
            .with_context(|| format!("cannot unmount {}", etc.display()))?;
        r?;
    }
    crate::sys::syncfs(&std::fs::File::open(&next)?)?;
    exchange(&next, &root.join("etc"))?;
    failpoint::hit("finalize.exchanged");
    crate::sys::rmtree::remove_path(&next)
        .with_context(|| format!("cannot remove the old {}", next.display()))?;
    Ok(summary)
}

pub fn finalize(
    sysroot: Option<&Path>,
    wait: bool,
    reporter: &dyn Reporter,
) -> Result<FinalizeReport> {
    let (sr, pool, _lock, state, _) =
        crate::deploy::system::open_locked(sysroot, None, false, wait)?;
    let Some(staged) = state.default.and_then(|id| state.get(id)).cloned() else {
        return Ok(FinalizeReport {
            staged: None,
            from: None,
            merge: None,
        });
    };
    // The local side: the booted deployment; offline, the one the staged
    // deployment was merged from.
    let from = match sr.booted {
        Some(b) if b == staged.id => {
            return Ok(FinalizeReport {
                staged: None,
                from: Some(b),
                merge: None,
            })
        }
        Some(b) => b,
        None => match staged.base {
            Some(b) => b,
            None => {
                return Ok(FinalizeReport {
                    staged: None,
                    from: None,
                    merge: None,
                })
            }
        },
    };
    let src = state.require(from)?.clone();
    if !crate::deploy::system::exists(&sr.deployment(from)) {
        bail!(
            "deployment {from} has no root at {}",
            sr.deployment(from).display()
        );
    }
    let view = crate::deploy::system::view_path(&pool, &staged.view)?;
    // After `apply-live`, the running /etc was merged against the live
    // view's defaults: those are the old defaults now.
    let live = sr
        .running
        .then(|| crate::deploy::live::current(&pool, &state, Path::new("/"), from))
        .flatten();
    let old_base = live.map_or(src.merge_base.clone(), |l| l.view);
    let summary = rebuild_etc(
        &sr,
        staged.id,
        &crate::deploy::system::view_path(&pool, &old_base)?.join("etc"),
        &sr.deployment(from).join("etc"),
        &view.join("etc"),
        Some((
            &view,
            crate::deploy::system::fstab_lines(&sr, &state, &staged.view),
        )),
        reporter,
    )?;
    crate::deploy::record::append(&sr, staged.id, &format!("finalize from {from}"), &summary)?;
    Ok(FinalizeReport {
        staged: Some(staged.id),
        from: Some(from),
        merge: Some(summary),
    })
}
