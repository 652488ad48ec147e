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
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::deploy::state::{Deployment, Origin, State};
use crate::deploy::sysroot::{self, Sysroot};
use crate::deploy::{firstboot, fstab, merge, record};
use crate::store::pool::Pool;
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
    pub kernel_args: Vec<String>,
    pub origin: Option<Origin>,
    /// Do not remove deployments the retention rule no longer keeps.
    pub no_cleanup: bool,
    pub wait: bool,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
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

/// Opens a system (creating its layout when `create` and there is none) and
/// its pool, with the pool's writer lock held.
pub fn open_locked(
    sysroot: Option<&Path>,
    pool: Option<&Path>,
    create: bool,
    wait: bool,
) -> Result<(Sysroot, Pool, crate::store::pool::WriteLock, State, bool)> {
    let sr = sysroot::open(sysroot)?;
    let (pool_path, state, created) = if sr.has_layout() {
        let state = sr.read_state()?;
        (sr.pool_path(&state), Some(state), false)
    } else if create {
        let p = pool.context("no pool to create the system's layout with")?;
        (p.to_path_buf(), None, true)
    } else {
        let state = sr.read_state()?; // the "not a reimage system" error
        (sr.pool_path(&state), Some(state), false)
    };
    let pool = Pool::open(&pool_path)?;
    let lock = pool.lock(wait)?;
    let state = match state {
        Some(s) => s,
        None => sysroot::create_layout(&sr, &pool.root)?,
    };
    crate::deploy::clean_garbage(&sr, &state)?;
    Ok((sr, pool, lock, state, created))
}

pub fn deploy(opts: &DeployOptions, reporter: &dyn Reporter) -> Result<DeployReport> {
    let started = std::time::Instant::now();
    let (sr, pool, _lock, mut state, created_layout) =
        open_locked(opts.sysroot.as_deref(), Some(&opts.pool), true, opts.wait)?;
    let view = crate::deploy::view_path(&pool, &opts.view)?;
    let base = sr.booted.or(state.default).and_then(|id| state.get(id).cloned());
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
            crate::deploy::view_path(&pool, &b.merge_base)?.join("etc"),
            sr.deployment(b.id).join("etc"),
        ),
        None => (PathBuf::from("/nonexistent"), PathBuf::from("/nonexistent")),
    };
    let summary = merge::merge_into(&old_defaults, &local, &view.join("etc"), &stage.join("etc"))?;
    for d in summary.decisions.iter().filter(|d| d.rule == merge::Rule::Conflict) {
        reporter.note(&format!(
            "/etc/{}: changed locally and in the new defaults: local kept, the new default is /etc/{}.rpmnew",
            d.path.display(),
            d.path.display()
        ));
    }
    failpoint::hit("deploy.merged");

    let new_units = match &base {
        Some(b) => Some(firstboot::new_units(
            &crate::deploy::view_path(&pool, &b.view)?,
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
        created: crate::deploy::now(),
        merge_base: opts.view.clone(),
        base: base.as_ref().map(|b| b.id),
        pinned: false,
        failed: None,
        origin: opts
            .origin
            .clone()
            .or_else(|| base.as_ref().and_then(|b| b.origin.clone())),
        packages,
        kernel_args: if opts.kernel_args.is_empty() {
            base.as_ref().map(|b| b.kernel_args.clone()).unwrap_or_default()
        } else {
            opts.kernel_args.clone()
        },
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
    crate::deploy::commit_state(&sr, &pool, &state)?;
    failpoint::hit("deploy.state");

    let removed = if opts.no_cleanup {
        Vec::new()
    } else {
        crate::deploy::cleanup::apply(&sr, &pool, &mut state, reporter)?
    };
    let against = base.as_ref().map(|b| b.id);
    let diff = match &base {
        Some(b) => Some(crate::deploy::view_diff(&pool, &b.view, &opts.view)?),
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
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The fstab lines of a deployment of `view` on this system.
pub fn fstab_lines(sr: &Sysroot, state: &State, view: &str) -> Vec<fstab::Line> {
    let view_subvol = format!("/{}/views/{view}", state.pool.display());
    let shared: Vec<(String, String)> = sysroot::SHARED
        .iter()
        .map(|(name, mp)| (format!("/{}/{name}", sysroot::SHARED_DIR), mp.to_string()))
        .collect();
    fstab::lines(&sr.uuid, &view_subvol, &shared, None)
}

/// Runs `f` with `view` bind-mounted on `root/usr` (in reimage's private
/// mount namespace, so the mount is nobody else's and cannot outlive
/// reimage), unmounting it afterwards.
pub fn with_usr<T>(root: &Path, view: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::deploy::private_namespace()?;
    let usr = root.join("usr");
    rustix::mount::mount_bind(view, &usr)
        .with_context(|| format!("cannot bind-mount {} on {}", view.display(), usr.display()))?;
    let r = f();
    let u = rustix::mount::unmount(&usr, rustix::mount::UnmountFlags::DETACH)
        .with_context(|| format!("cannot unmount {}", usr.display()));
    let v = r?;
    u?;
    if std::fs::read_dir(&usr)?.next().is_some() {
        bail!("{} is not empty after the first-boot steps", usr.display());
    }
    Ok(v)
}
