//! `reimage deploy VIEW`: a new deployment of a view, made the default for
//! the next boot (or only staged, `--no-default`).
//!
//! ```text
//! reimage/tmp/ID            writable subvolume: skeleton, usr/ (mount point), etc/ (subvolume)
//!   etc/                    <- the /etc merge (old: base's view etc/, local: base's etc, new: VIEW etc/)
//!   usr/                    <- VIEW bind-mounted (private namespace) for the first-boot steps
//! rename -> reimage/deployments/ID        (one rename: the deployment exists)
//! POOL/roots/...            the views in use (gc and rm-view keep them)
//! state.json                renamed over the old one: the new default
//! ```
//! A kill at any point leaves the previous default as it was: `tmp/` is
//! garbage; a deployment directory the state record does not list is
//! garbage too (removed when the next writer starts, reported by fsck).
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::deploy::state::{Deployment, Origin};
use crate::deploy::system::{fstab_lines, open_locked_for, with_usr};
use crate::deploy::{firstboot, merge, record};
use crate::util::failpoint;
use crate::util::report::Reporter;

/// Options of `reimage deploy`.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    pub view: String,
    pub sysroot: Option<PathBuf>,
    /// The pool (used when the system has no layout yet; afterwards the
    /// state record names it).
    pub pool: PathBuf,
    /// Stage only: the default stays as it is.
    pub no_default: bool,
    /// Extra kernel arguments (default: the base deployment's).
    pub kernel_args: Vec<String>,
    /// Add `reimage.toram`: boot it diskless (the base's arguments are
    /// inherited, so a diskless system's updates stay diskless).
    pub diskless: bool,
    pub origin: Option<Origin>,
    /// Do not remove deployments the retention rule no longer keeps.
    pub no_cleanup: bool,
    pub wait: bool,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// What was written on the ESP (when the system has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<crate::boot::Applied>,
    pub id: u64,
    pub view: String,
    pub root: PathBuf,
    pub default: bool,
    /// The deployment compared against (booted, else the previous default).
    pub against: Option<u64>,
    pub diff: Option<sysimage::diff::PackageDiff>,
    pub merge: merge::MergeSummary,
    pub steps: Vec<firstboot::StepResult>,
    /// Deployments removed by retention afterwards.
    pub removed: Vec<u64>,
    pub created_layout: bool,
    pub seconds: f64,
}

/// The kernel arguments, with `reimage.toram` (diskless mode) added when
/// asked for.
pub fn with_diskless(mut args: Vec<String>, diskless: bool) -> Vec<String> {
    if diskless
        && !args
            .iter()
            .any(|a| a.split('=').next() == Some("reimage.toram"))
    {
        args.push("reimage.toram".into());
    }
    args
}

pub fn deploy(opts: &DeployOptions, reporter: &dyn Reporter) -> Result<DeployReport> {
    let started = std::time::Instant::now();
    let (sr, pool, _lock, mut state, created_layout) = open_locked_for(
        opts.sysroot.as_deref(),
        Some(&opts.pool),
        true,
        opts.wait,
        Some(&opts.view),
    )?;
    let view = crate::deploy::system::view_path(&pool, &opts.view)?;
    let base = sr
        .booted
        .or(state.default)
        .and_then(|id| state.get(id).cloned());
    let id = state.next_id;
    let stage = sr.tmp_dir().join(id.to_string());
    crate::sys::subvolume_create(&stage)
        .with_context(|| format!("cannot create {}", stage.display()))?;
    crate::deploy::skeleton::create(&stage, &view)?;
    crate::sys::subvolume_create(&stage.join("etc"))
        .with_context(|| format!("cannot create {}/etc", stage.display()))?;
    failpoint::hit("deploy.staged");

    // /etc: the base's, merged with the new defaults.
    let (old_defaults, local) = match &base {
        Some(b) => (
            crate::deploy::system::view_path(&pool, &b.merge_base)?.join("etc"),
            sr.deployment(b.id).join("etc"),
        ),
        None => (PathBuf::from("/nonexistent"), PathBuf::from("/nonexistent")),
    };
    let summary = merge::merge_into(&old_defaults, &local, &view.join("etc"), &stage.join("etc"))?;
    for d in summary
        .decisions
        .iter()
        .filter(|d| d.rule == merge::Rule::Conflict)
    {
        reporter.note(&format!(
            "/etc/{}: changed locally and in the new defaults: local kept, the new default is /etc/{}.rpmnew",
            d.path.display(),
            d.path.display()
        ));
    }
    failpoint::hit("deploy.merged");

    let new_units = match &base {
        Some(b) => Some(firstboot::new_units(
            &crate::deploy::system::view_path(&pool, &b.view)?,
            &view,
        )?),
        None => None,
    };
    let steps = with_usr(&stage, &view, || {
        firstboot::run(
            &firstboot::Steps {
                root: &stage,
                view: &view,
                new_units: new_units.clone(),
                first: base.is_none(),
                fstab: fstab_lines(&sr, &state, &opts.view),
            },
            reporter,
        )
    })?;
    failpoint::hit("deploy.firstboot");

    let packages = sysimage::ViewMeta::read(&view)?.map_or(0, |m| m.packages.len());
    let dep = Deployment {
        id,
        view: opts.view.clone(),
        created: crate::deploy::system::now(),
        merge_base: opts.view.clone(),
        base: base.as_ref().map(|b| b.id),
        pinned: false,
        failed: None,
        origin: opts
            .origin
            .clone()
            .or_else(|| base.as_ref().and_then(|b| b.origin.clone())),
        packages,
        kernel_args: with_diskless(
            if opts.kernel_args.is_empty() {
                base.as_ref()
                    .map(|b| b.kernel_args.clone())
                    .unwrap_or_default()
            } else {
                opts.kernel_args.clone()
            },
            opts.diskless,
        ),
    };
    record::write(&sr, id, &record::Record::new(&dep, &summary, &steps))?;
    // Durable, then visible.
    crate::sys::syncfs(&std::fs::File::open(&stage)?)?;
    let dest = sr.deployment(id);
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &stage,
        rustix::fs::CWD,
        &dest,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .with_context(|| format!("cannot move the deployment into {}", dest.display()))?;
    crate::util::atomic::fsync_dir(&sr.deployments_dir())?;
    failpoint::hit("deploy.renamed");

    state.deployments.push(dep);
    state.next_id = id + 1;
    if !opts.no_default {
        state.default = Some(id);
    }
    crate::deploy::system::commit_state(&sr, &pool, &state)?;
    failpoint::hit("deploy.state");
    let boot = crate::deploy::boot::sync(&sr, &pool, &state, reporter)?;

    let removed = if opts.no_cleanup {
        Vec::new()
    } else {
        crate::deploy::cleanup::apply(&sr, &pool, &mut state, reporter)?
    };
    let against = base.as_ref().map(|b| b.id);
    let diff = match &base {
        Some(b) => Some(crate::deploy::system::view_diff(
            &pool, &b.view, &opts.view,
        )?),
        None => None,
    };
    Ok(DeployReport {
        id,
        view: opts.view.clone(),
        root: dest,
        default: !opts.no_default,
        against,
        diff,
        merge: summary,
        steps,
        removed,
        created_layout,
        boot,
        seconds: started.elapsed().as_secs_f64(),
    })
}
