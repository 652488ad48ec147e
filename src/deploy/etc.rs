//! `reimage etc commit [-m MSG] | log | diff [REV] | revert REV | sync ID`:
//! a history of a deployment's `/etc` as read-only snapshots (the way
//! Alpine's `lbu commit` / `lbu revert` keep a diskless system's
//! configuration), and carrying `/etc` changes into another deployment.
//!
//! ```text
//! reimage/etc-history/ID/N        read-only snapshot of deployments/ID/etc
//! reimage/etc-history/ID/N.json   {time, message}
//! ```
//! `commit` is one snapshot; `revert` a writable snapshot of N beside the
//! live etc and one exchange-rename; only the newest `limit` commits stay.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::deploy::state::State;
use crate::deploy::sysroot::Sysroot;
use crate::util::failpoint;
use crate::util::report::Reporter;

/// Commits kept per deployment unless `--limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub rev: u64,
    pub time: u64,
    pub message: String,
}

/// The deployment an `etc` command works on: `explicit`, else the booted
/// one, else (offline) the default.
fn current(sr: &Sysroot, state: &State, explicit: Option<u64>) -> Result<u64> {
    if let Some(id) = explicit {
        return state.require(id).map(|d| d.id);
    }
    sr.booted
        .or(state.default)
        .ok_or_else(|| anyhow::anyhow!("the system has no deployment"))
}

fn history(sr: &Sysroot, id: u64) -> PathBuf {
    sr.history_dir().join(id.to_string())
}

/// The commits of deployment `id`, oldest first.
pub fn commits(sr: &Sysroot, id: u64) -> Result<Vec<Commit>> {
    let dir = history(sr, id);
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rev) = name
            .strip_suffix(".json")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if !dir.join(rev.to_string()).is_dir() {
            continue; // a commit whose snapshot is gone (interrupted): not a commit
        }
        let text = std::fs::read_to_string(e.path())?;
        v.push(
            serde_json::from_str::<Commit>(&text)
                .with_context(|| format!("{} is not a commit record", e.path().display()))?,
        );
    }
    v.sort_by_key(|c| c.rev);
    Ok(v)
}

#[derive(Debug, Clone, Default)]
pub struct EtcOptions {
    pub sysroot: Option<PathBuf>,
    pub deployment: Option<u64>,
    pub wait: bool,
}

/// `etc commit`: a read-only snapshot of the deployment's etc.
pub fn commit(o: &EtcOptions, message: &str, limit: usize) -> Result<(u64, Commit, Vec<u64>)> {
    let (sr, _pool, _lock, state, _) =
        crate::deploy::system::open_locked(o.sysroot.as_deref(), None, false, o.wait)?;
    let id = current(&sr, &state, o.deployment)?;
    let dir = history(&sr, id);
    std::fs::create_dir_all(&dir)?;
    let existing = commits(&sr, id)?;
    let rev = existing.last().map_or(1, |c| c.rev + 1);
    // A snapshot left by an interrupted commit (no .json): garbage.
    let snap = dir.join(rev.to_string());
    if crate::deploy::system::exists(&snap) {
        crate::sys::rmtree::remove_path(&snap)?;
    }
    if sr.diskless && sr.booted == Some(id) {
        // Diskless: the running /etc lives in RAM; the commit is a copy of
        // it, which the initrd restores at the next diskless boot.
        save_running_etc(&snap)?;
    } else {
        crate::sys::snapshot(&sr.deployment(id).join("etc"), &snap, true)
            .with_context(|| format!("cannot snapshot the etc of deployment {id}"))?;
    }
    failpoint::hit("etc.snapshot");
    let c = Commit {
        rev,
        time: crate::deploy::system::now(),
        message: message.to_string(),
    };
    crate::util::atomic::write_atomic(
        &dir.join(format!("{rev}.json")),
        (serde_json::to_string_pretty(&c)? + "\n").as_bytes(),
    )?;
    // The backup limit: the oldest go.
    let mut all = existing;
    all.push(c.clone());
    let mut pruned = Vec::new();
    while all.len() > limit.max(1) {
        let old = all.remove(0);
        std::fs::remove_file(dir.join(format!("{}.json", old.rev)))?;
        crate::sys::rmtree::remove_path(&dir.join(old.rev.to_string()))?;
        pruned.push(old.rev);
    }
    Ok((id, c, pruned))
}

/// A read-only subvolume `snap` holding a copy of the running `/etc`.
fn save_running_etc(snap: &Path) -> Result<()> {
    crate::sys::subvolume_create(snap)
        .with_context(|| format!("cannot create {}", snap.display()))?;
    crate::util::runner::run(
        std::process::Command::new("cp")
            .args(["-a", "--no-target-directory", "/etc"])
            .arg(snap),
    )
    .context("cannot copy the running /etc to the disk")?;
    crate::sys::syncfs(&std::fs::File::open(snap)?)?;
    crate::sys::set_readonly(snap, true)
        .with_context(|| format!("cannot make {} read-only", snap.display()))?;
    Ok(())
}

/// `etc log`: the commits of the deployment.
pub fn log(o: &EtcOptions) -> Result<(u64, Vec<Commit>)> {
    let sr = crate::deploy::sysroot::open(o.sysroot.as_deref())?;
    let state = sr.read_state()?;
    let id = current(&sr, &state, o.deployment)?;
    Ok((id, commits(&sr, id)?))
}

/// One difference between a commit and the current etc.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EtcChange {
    pub path: String,
    /// `added`, `removed`, `changed` (since the commit).
    pub change: &'static str,
}

fn compare(from: &Path, to: &Path) -> Result<Vec<EtcChange>> {
    let a = etc_merge::read_tree(from)?;
    let b = etc_merge::read_tree(to)?;
    let mut v = Vec::new();
    let paths: std::collections::BTreeSet<&PathBuf> =
        a.entries.keys().chain(b.entries.keys()).collect();
    for p in paths {
        let change = match (a.entries.get(p), b.entries.get(p)) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(x), Some(y)) if x != y => "changed",
            _ => continue,
        };
        v.push(EtcChange {
            path: format!("/etc/{}", p.display()),
            change,
        });
    }
    Ok(v)
}

fn resolve_rev(sr: &Sysroot, id: u64, rev: Option<u64>) -> Result<u64> {
    let all = commits(sr, id)?;
    match rev {
        Some(r) if all.iter().any(|c| c.rev == r) => Ok(r),
        Some(r) => bail!(
            "deployment {id} has no etc commit {r} (`reimage etc log` lists them: {})",
            if all.is_empty() {
                "there are none".to_string()
            } else {
                all.iter()
                    .map(|c| c.rev.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        None => all.last().map(|c| c.rev).ok_or_else(|| {
            anyhow::anyhow!("deployment {id} has no etc commit yet (`reimage etc commit`)")
        }),
    }
}

/// `etc diff [REV]`: what changed in `/etc` since commit REV (default: the newest).
pub fn diff(o: &EtcOptions, rev: Option<u64>) -> Result<(u64, u64, Vec<EtcChange>)> {
    let sr = crate::deploy::sysroot::open(o.sysroot.as_deref())?;
    let state = sr.read_state()?;
    let id = current(&sr, &state, o.deployment)?;
    let rev = resolve_rev(&sr, id, rev)?;
    let changes = compare(
        &history(&sr, id).join(rev.to_string()),
        &sr.deployment(id).join("etc"),
    )?;
    Ok((id, rev, changes))
}

/// `etc revert REV`: the deployment's etc becomes commit REV again (one
/// exchange-rename; the replaced etc is removed).
pub fn revert(o: &EtcOptions, rev: u64) -> Result<(u64, Vec<EtcChange>)> {
    let (sr, _pool, _lock, state, _) =
        crate::deploy::system::open_locked(o.sysroot.as_deref(), None, false, o.wait)?;
    let id = current(&sr, &state, o.deployment)?;
    let rev = resolve_rev(&sr, id, Some(rev))?;
    let snap = history(&sr, id).join(rev.to_string());
    let etc = sr.deployment(id).join("etc");
    let changes = compare(&etc, &snap)?;
    let next = sr.deployment(id).join(".etc-revert");
    crate::sys::snapshot(&snap, &next, false)
        .with_context(|| format!("cannot snapshot {}", snap.display()))?;
    failpoint::hit("etc.revert-staged");
    crate::deploy::finalize::exchange(&next, &etc)?;
    failpoint::hit("etc.revert-exchanged");
    crate::sys::rmtree::remove_path(&next)?;
    Ok((id, changes))
}

/// `etc sync ID`: carries the current deployment's `/etc` changes (against
/// its view's defaults) into deployment `target`, whose own `/etc` plays the
/// new defaults: a change made here wins; where the target's file differs
/// too, the target's is kept beside it as `.rpmnew`.
pub fn sync(
    o: &EtcOptions,
    target: u64,
    reporter: &dyn Reporter,
) -> Result<(u64, u64, crate::deploy::merge::MergeSummary)> {
    let (sr, pool, _lock, state, _) =
        crate::deploy::system::open_locked(o.sysroot.as_deref(), None, false, o.wait)?;
    let from = current(&sr, &state, o.deployment)?;
    state.require(target)?;
    if from == target {
        bail!("deployment {target} is the one whose /etc would be carried: name another");
    }
    let src = state.require(from)?;
    let summary = crate::deploy::finalize::rebuild_etc(
        &sr,
        target,
        &crate::deploy::system::view_path(&pool, &src.merge_base)?.join("etc"),
        &sr.deployment(from).join("etc"),
        &sr.deployment(target).join("etc"),
        None,
        reporter,
    )?;
    crate::deploy::record::append(&sr, target, &format!("etc sync from {from}"), &summary)?;
    Ok((from, target, summary))
}
