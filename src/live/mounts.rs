//! Mounting a view over a running `/usr`.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::mount::{MountFlags, MoveMountFlags, OpenTreeFlags};

/// Runs `f` in the mount namespace `ns`, then comes back to this one
/// (also when `f` fails).
pub fn in_namespace<T>(ns: &std::fs::File, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let here = crate::sys::current_mount_namespace()?;
    crate::sys::enter_mount_namespace(ns)
        .context("cannot enter the running system's mount namespace")?;
    let r = f();
    crate::sys::enter_mount_namespace(&here).context("cannot return to reimage's namespace")?;
    r
}

/// A detached mount of `view` (a clone of the mount it is reached
/// through), to attach in another mount namespace with [`mount_over`].
/// A new `subvol=` mount cannot go there: the kernel refuses to mount a
/// filesystem right on top of a mount of its own root (EBUSY), which is
/// what a view over a view is; an attached clone is a bind mount.
pub fn detached(view: &Path) -> Result<rustix::fd::OwnedFd> {
    rustix::mount::open_tree(
        rustix::fs::CWD,
        view,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .with_context(|| format!("cannot make a mount of {}", view.display()))
}

/// Attaches the detached mount `view` read-only over `usr` and moves
/// copies of the mounts that were on the old `usr` (e.g. `/usr/local`)
/// onto the new one. Returns where those are.
pub fn mount_over(view: rustix::fd::OwnedFd, usr: &Path) -> Result<Vec<PathBuf>> {
    let mounts = crate::sys::mounts()?;
    let top = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == usr)
        .map(|m| m.id);
    let mut carried = Vec::new();
    for m in mounts
        .iter()
        .filter(|m| Some(m.parent) == top && m.mount_point != usr)
    {
        let tree = rustix::mount::open_tree(
            rustix::fs::CWD,
            &m.mount_point,
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::AT_RECURSIVE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .with_context(|| format!("cannot clone the mount {}", m.mount_point.display()))?;
        carried.push((m.mount_point.clone(), tree));
    }
    let attach = |tree: &rustix::fd::OwnedFd, at: &Path| {
        rustix::mount::move_mount(
            tree,
            "",
            rustix::fs::CWD,
            at,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .with_context(|| format!("cannot attach a mount on {}", at.display()))
    };
    attach(&view, usr)?;
    rustix::mount::mount_remount(usr, MountFlags::BIND | MountFlags::RDONLY, "")
        .with_context(|| format!("cannot make {} read-only", usr.display()))?;
    let mut at = Vec::new();
    for (path, tree) in carried {
        if !path.is_dir() {
            crate::util::runner::log::warn(&format!(
                "{} is not a directory of the new view: the mount that was there stays on the old /usr only",
                path.display()
            ));
            continue;
        }
        attach(&tree, &path)?;
        at.push(path);
    }
    Ok(at)
}
