//! `reimage apply-live` (see the module doc of src/live/ and docs/live.md).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::deploy::firstboot::StepResult;
use crate::deploy::live::{self as record, Live};
use crate::deploy::state::{Deployment, State};
use crate::deploy::system::view_path;
use crate::live::{mounts, procs, steps};
use crate::store::pool::Pool;
use crate::util::failpoint;
use crate::util::report::Reporter;

pub struct ApplyOptions {
    pub sysroot: Option<PathBuf>,
    /// The running root whose `/usr` is switched (default `/`).
    pub root: Option<PathBuf>,
    /// The deployment to apply (default: the default one).
    pub deployment: Option<u64>,
    pub allow_replacement: bool,
    pub wait: bool,
}

/// What `/etc` got.
#[derive(Debug, Clone, Serialize)]
pub struct EtcLive {
    #[serde(flatten)]
    pub applied: etc_merge::Applied,
    /// Files kept locally with the new default beside them as `.rpmnew`.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub booted: u64,
    pub deployment: u64,
    /// The view that was `/usr`.
    pub from: String,
    pub view: String,
    pub diff: sysimage::diff::PackageDiff,
    /// Whether the deployment was made the default for the next boot.
    pub default_changed: bool,
    /// Whether `/usr` was this view already (a repeated apply: `/etc` and
    /// the steps only).
    pub again: bool,
    /// Mounts that were on the old `/usr` and are on the new one now.
    pub carried: Vec<PathBuf>,
    pub etc: EtcLive,
    pub steps: Vec<StepResult>,
    /// Processes that still use files of an old `/usr`.
    pub processes: Vec<procs::Process>,
    pub live: Live,
}

impl ApplyReport {
    pub fn failed_steps(&self) -> Vec<&StepResult> {
        self.steps
            .iter()
            .filter(|s| s.outcome.starts_with("failed"))
            .collect()
    }
}

/// The running root: `/`, or `--root` (absolute, a mount point).
fn running_root(root: Option<&Path>) -> Result<PathBuf> {
    let r = root.unwrap_or(Path::new("/"));
    r.canonicalize()
        .with_context(|| format!("cannot find the running root {}", r.display()))
}

/// What is being applied over what.
struct Target {
    booted: u64,
    deployment: Deployment,
    /// The view that is `/usr` now, and the views beneath it.
    from: String,
    previous: Vec<String>,
    again: bool,
}

fn target(
    pool: &Pool,
    state: &State,
    root: &Path,
    o: &ApplyOptions,
    sr_uuid: &str,
) -> Result<Target> {
    let booted = crate::deploy::sysroot::deployment_at(sr_uuid, root).with_context(|| {
        format!(
            "{} is not a booted deployment of this system: apply-live switches the /usr of a \
             running reimage deployment (`reimage deploy` stages one for the next boot)",
            root.display()
        )
    })?;
    let booted_view = state.require(booted)?.view.clone();
    let live = record::current(pool, state, root, booted);
    let from = match &live {
        Some(l) => l.view.clone(),
        None => {
            record::usr_view(pool, root, std::slice::from_ref(&booted_view)).with_context(|| {
                format!(
                    "{}/usr is not the view of deployment {booted} ({booted_view}), and no live \
                 apply is recorded in {}: it is not a view reimage can switch",
                    root.display(),
                    record::path(root).display()
                )
            })?
        }
    };
    let id = o
        .deployment
        .or(state.default)
        .context("there is no default deployment to apply")?;
    let deployment = state.require(id)?.clone();
    let mut previous = live
        .as_ref()
        .map(|l| l.previous.clone())
        .unwrap_or_default();
    let again = deployment.view == from;
    if again {
        if live.as_ref().map(|l| l.deployment) != Some(id) {
            bail!(
                "deployment {id}'s view {from} is /usr already: there is nothing to apply \
                 (`reimage deploy VIEW` stages a new one)"
            );
        }
    } else {
        previous.push(from.clone());
    }
    Ok(Target {
        booted,
        deployment,
        from,
        previous,
        again,
    })
}

/// Refuses a diff that replaces packages unless allowed.
fn check_diff(d: &sysimage::diff::PackageDiff, allow: bool, id: u64) -> Result<()> {
    let mut replaced: Vec<String> = Vec::new();
    replaced.extend(d.upgraded.iter().map(|c| format!("{} (upgraded)", c.name)));
    replaced.extend(
        d.downgraded
            .iter()
            .map(|c| format!("{} (downgraded)", c.name)),
    );
    replaced.extend(d.rebuilt.iter().map(|n| format!("{n} (rebuilt)")));
    replaced.extend(d.removed.iter().map(|n| format!("{n} (removed)")));
    if replaced.is_empty() || allow {
        return Ok(());
    }
    let shown: Vec<&str> = replaced.iter().take(8).map(String::as_str).collect();
    bail!(
        "apply-live adds packages only by default, and deployment {id} replaces {} package(s) \
         of the running /usr: {}{}. Programs that run keep using the old files; give \
         --allow-replacement to switch anyway (the processes still using the old /usr are \
         listed), or reboot into deployment {id}",
        replaced.len(),
        shown.join(", "),
        if replaced.len() > shown.len() {
            ", ..."
        } else {
            ""
        }
    )
}

/// The device numbers of the views that were `/usr`.
fn old_devs(pool: &Pool, previous: &[String]) -> Vec<u64> {
    let mut devs: Vec<u64> = previous
        .iter()
        .filter_map(|v| record::view_dev(pool, v))
        .collect();
    devs.sort_unstable();
    devs.dedup();
    devs
}

/// Merges the new defaults into the running `/etc` in place.
fn merge_etc(old: &Path, etc: &Path, new: &Path) -> Result<EtcLive> {
    let read = |p: &Path, what: &str| {
        etc_merge::read_tree(p).with_context(|| format!("cannot read the {what} {}", p.display()))
    };
    let (o, l, n) = (
        read(old, "old defaults")?,
        read(etc, "running /etc")?,
        read(new, "new defaults")?,
    );
    let plan = etc_merge::merge(&o, &l, &n);
    let applied = etc_merge::apply_in_place(&plan, &l, &n)
        .with_context(|| format!("cannot bring the new defaults into {}", etc.display()))?;
    let conflicts = plan
        .decisions
        .iter()
        .filter(|d| d.rule == etc_merge::Rule::Conflict)
        .map(|d| format!("/etc/{}", d.path.display()))
        .collect();
    Ok(EtcLive { applied, conflicts })
}

pub fn apply_live(o: &ApplyOptions, reporter: &dyn Reporter) -> Result<ApplyReport> {
    // The namespace the running system's mounts are in, before reimage
    // moves into its own to reach the top level of the filesystem.
    let host = crate::sys::current_mount_namespace()?;
    // reimage's own namespace for everything else, with --sysroot too: the
    // mount is made by going back (the same path on every system).
    crate::deploy::system::private_namespace()?;
    let root = running_root(o.root.as_deref())?;
    let (sr, pool, _lock, mut state, _) =
        crate::deploy::system::open_locked(o.sysroot.as_deref(), None, false, o.wait)?;
    let t = target(&pool, &state, &root, o, &sr.uuid)?;
    let id = t.deployment.id;
    let (from_view, new_view) = (
        view_path(&pool, &t.from)?,
        view_path(&pool, &t.deployment.view)?,
    );
    let diff = crate::deploy::system::view_diff(&pool, &t.from, &t.deployment.view)?;
    check_diff(&diff, o.allow_replacement, id)?;
    let devs = old_devs(&pool, &t.previous);
    let default_changed = state.default != Some(id);
    if default_changed {
        state.default = Some(id);
        crate::deploy::system::commit_state(&sr, &pool, &state)?;
        crate::deploy::boot::sync(&sr, &pool, &state, reporter)?;
    }
    let carried = if t.again {
        Vec::new()
    } else {
        reporter.message(&format!(
            "mounting view {} over {}/usr",
            t.deployment.view,
            root.display()
        ));
        let tree = mounts::detached(&new_view)?;
        mounts::in_namespace(&host, || mounts::mount_over(tree, &root.join("usr"))).with_context(
            || format!("/usr was not switched (deployment {id} is the default for the next boot)"),
        )?
    };
    failpoint::hit("live.mounted");
    let live = Live::new(t.booted, id, t.deployment.view.clone(), t.previous.clone());
    record::write(&root, &live)?;
    // A repeated apply merges from the view beneath, which the first one
    // may not have finished merging from.
    let old_etc = match (t.again, t.previous.last()) {
        (true, Some(p)) => view_path(&pool, p)?,
        _ => from_view.clone(),
    };
    reporter.message("merging /etc");
    let etc = merge_etc(
        &old_etc.join("etc"),
        &root.join("etc"),
        &new_view.join("etc"),
    )?;
    failpoint::hit("live.etc");
    let plan = steps::plan(&old_etc, &new_view);
    let steps = mounts::in_namespace(&host, || Ok(steps::run(&root, &plan, reporter)))?;
    let processes = procs::using(&devs);
    Ok(ApplyReport {
        booted: t.booted,
        deployment: id,
        from: t.from,
        view: t.deployment.view,
        diff,
        default_changed,
        again: t.again,
        carried,
        etc,
        steps,
        processes,
        live,
    })
}
