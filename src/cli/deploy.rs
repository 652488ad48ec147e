//! `deploy`, `status`, `rollback`, `pin`, `unpin`, `cleanup`, `finalize`,
//! `etc ...`: the deployment commands (docs/deploy.md).
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::common::{Global, Out};
use crate::deploy;

/// Where the system is: `--sysroot DIR` (the mounted top level of its
/// btrfs), else the running system itself.
#[derive(Args, Debug, Clone)]
pub struct SysrootArg {
    /// The mounted top level (subvolid=5) of a reimage system's btrfs; without
    /// it, the running system.
    #[arg(long, value_name = "DIR", global = true)]
    pub sysroot: Option<PathBuf>,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Offline: the ESP to write boot entries to instead of the system's own
    /// (a mounted directory, or IMAGE[@@OFFSET] written with mtools).
    #[arg(long, value_name = "ESP", global = true)]
    pub esp: Option<String>,
}

impl SysrootArg {
    /// Applies `--esp` for this process.
    pub fn use_esp(&self) -> Result<()> {
        if let Some(e) = &self.esp {
            deploy::boot::use_esp(crate::boot::esp::Esp::parse(e)?);
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: SysrootArg,
    /// The running root whose live /usr to report (default `/` on a running
    /// system; for a deployment mounted elsewhere, as `apply-live --root`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The view to deploy (POOL/views/VIEW).
    pub view: String,
    #[command(flatten)]
    pub at: SysrootArg,
    /// Stage it only: the default for the next boot stays as it is.
    #[arg(long)]
    pub no_default: bool,
    /// An extra kernel command line argument of its boot entry (repeatable).
    #[arg(long = "kernel-arg", value_name = "ARG")]
    pub kernel_args: Vec<String>,
    /// Do not remove the deployments retention no longer keeps.
    #[arg(long)]
    pub no_cleanup: bool,
    /// Boot it diskless: the initrd copies it into RAM and lets the disk go
    /// (`reimage.toram` on its kernel command line; docs/live.md).
    #[arg(long)]
    pub diskless: bool,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// A deployment id (`reimage status` lists them).
    pub id: u64,
    #[command(flatten)]
    pub at: SysrootArg,
}

#[derive(Args, Debug)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub at: SysrootArg,
    /// Keep this many deployments besides the booted, the default and the
    /// pinned ones (remembered; default 2).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
}

#[derive(Args, Debug)]
pub struct EtcArgs {
    #[command(subcommand)]
    pub command: EtcCommand,
    #[command(flatten)]
    pub at: SysrootArg,
    /// The deployment whose /etc (default: the booted one; offline: the default).
    #[arg(long, value_name = "ID", global = true)]
    pub deployment: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum EtcCommand {
    /// Save /etc as a read-only snapshot (its history; the oldest beyond --limit go).
    Commit {
        /// What changed.
        #[arg(short, long, default_value = "")]
        message: String,
        /// Commits kept.
        #[arg(long, default_value_t = deploy::etc::DEFAULT_LIMIT)]
        limit: usize,
    },
    /// List the commits of /etc.
    Log,
    /// What changed in /etc since commit REV (default: the newest).
    Diff { rev: Option<u64> },
    /// Make /etc commit REV again.
    Revert { rev: u64 },
    /// Carry this /etc's changes into deployment ID (e.g. a rollback target).
    Sync { id: u64 },
}

fn time(t: u64) -> String {
    sysimage::query::utc(t)
}

fn diff_summary(d: &sysimage::diff::PackageDiff) -> String {
    format!(
        "+{} -{} ~{} upgraded, {} downgraded",
        d.added.len(),
        d.removed.len(),
        d.upgraded.len(),
        d.downgraded.len()
    )
}

pub fn run_deploy(g: &Global, a: DeployArgs) -> Result<i32> {
    a.at.use_esp()?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let r = deploy::new::deploy(
        &deploy::new::DeployOptions {
            view: a.view,
            sysroot: a.at.sysroot,
            pool: g.pool.clone(),
            no_default: a.no_default,
            kernel_args: a.kernel_args,
            diskless: a.diskless,
            origin: None,
            no_cleanup: a.no_cleanup,
            wait: !a.at.no_wait,
        },
        &reporter,
    )?;
    let Some(mut out) = Out::for_text(g, &r)? else {
        return Ok(0);
    };
    out.line(format!(
        "deployment {} of view {} at {}{} ({:.2}s)",
        r.id,
        r.view,
        r.root.display(),
        if r.default {
            ": the default for the next boot"
        } else {
            ": staged (the default is unchanged)"
        },
        r.seconds
    ))?;
    if let (Some(from), Some(d)) = (r.against, &r.diff) {
        out.line(format!(
            "packages against deployment {from}: {}",
            diff_summary(d)
        ))?;
        for c in &d.upgraded {
            out.line(format!("  upgraded   {} {} -> {}", c.name, c.from, c.to))?;
        }
        for c in &d.downgraded {
            out.line(format!("  downgraded {} {} -> {}", c.name, c.from, c.to))?;
        }
        for n in &d.added {
            out.line(format!("  added      {n}"))?;
        }
        for n in &d.removed {
            out.line(format!("  removed    {n}"))?;
        }
    }
    out.line(format!(
        "/etc: {} unchanged, {} decisions, {} conflicts (.rpmnew)",
        r.merge.unchanged,
        r.merge.decisions.len(),
        r.merge.conflicts.len()
    ))?;
    if g.verbose {
        for d in &r.merge.decisions {
            out.line(format!(
                "  {:28} /etc/{}: {}",
                rule(d.rule),
                d.path.display(),
                d.detail
            ))?;
        }
        for s in &r.steps {
            out.line(format!("  step {:10} {} {}", s.step, s.outcome, s.command))?;
        }
    }
    for id in &r.removed {
        out.line(format!("removed deployment {id} (retention)"))?;
    }
    Ok(0)
}

fn rule(r: deploy::merge::Rule) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub fn run_status(g: &Global, a: StatusArgs) -> Result<i32> {
    a.at.use_esp()?;
    let root = a.root.as_deref().map(std::fs::canonicalize).transpose()?;
    let s = deploy::status::status(a.at.sysroot.as_deref(), root.as_deref())?;
    let mut out = Out::new();
    if g.json {
        out.json(&s)?;
        return Ok(0);
    }
    for d in &s.deployments {
        let mut marks = Vec::new();
        if d.booted {
            marks.push("booted");
        }
        if d.default {
            marks.push("default");
        }
        if d.pinned {
            marks.push("pinned");
        }
        if d.failed.is_some() {
            marks.push("FAILED");
        }
        if !d.kept {
            marks.push("not kept by retention");
        }
        out.line(format!(
            "{} {:>3}  {:20} {:>4} packages  {}  {}",
            if d.default { '*' } else { ' ' },
            d.id,
            d.view,
            d.packages,
            time(d.created),
            marks.join(", ")
        ))?;
        if let Some(f) = &d.failed {
            out.line(format!("        failed: {f}"))?;
        }
        if let Some(e) = &d.entry {
            let state = match e.counter {
                crate::boot::entries::Counter::Blessed => "blessed".to_string(),
                crate::boot::entries::Counter::Counting { left: 0, done } => {
                    format!("no tries left ({done} used)")
                }
                crate::boot::entries::Counter::Counting { left, done } => {
                    format!("{left} tries left, {done} used")
                }
            };
            out.line(format!(
                "        boot entry {}: {state}{}",
                e.file,
                if e.first { ", boots next" } else { "" }
            ))?;
        }
        if let Some(diff) = &d.diff {
            out.line(format!(
                "        against {}: {}",
                s.booted.or(s.default).unwrap_or(0),
                diff_summary(diff)
            ))?;
        }
        if g.verbose {
            out.line(format!("        root {}", d.root.display()))?;
        }
    }
    if s.deployments.is_empty() {
        out.line("no deployments")?;
    }
    if let Some(l) = &s.live {
        out.line(format!(
            "live: /usr is view {} (deployment {}) over booted deployment {}, applied {}{}",
            l.view,
            l.deployment,
            l.booted,
            time(l.applied),
            if l.previous.len() > 1 {
                format!("; beneath it: {}", l.previous.join(" < "))
            } else {
                String::new()
            }
        ))?;
    }
    if let Some(e) = &s.esp_error {
        out.line(format!(
            "the ESP ({}) cannot be read: {e}",
            s.esp.as_deref().unwrap_or("?")
        ))?;
    }
    Ok(0)
}

pub fn run_rollback(g: &Global, a: SysrootArg) -> Result<i32> {
    a.use_esp()?;
    let r = deploy::rollback::rollback(a.sysroot.as_deref(), !a.no_wait)?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else if !g.quiet {
        out.line(format!(
            "deployment {} (view {}) is the default for the next boot (was {})",
            r.to, r.view, r.from
        ))?;
    }
    Ok(0)
}

pub fn run_pin(g: &Global, a: IdArgs, pinned: bool) -> Result<i32> {
    a.at.use_esp()?;
    deploy::pin::set_pinned(a.at.sysroot.as_deref(), a.id, pinned, !a.at.no_wait)?;
    if g.json {
        Out::new().json(&serde_json::json!({ "id": a.id, "pinned": pinned }))?;
    } else if !g.quiet {
        eprintln!(
            "deployment {} {}",
            a.id,
            if pinned { "pinned" } else { "unpinned" }
        );
    }
    Ok(0)
}

pub fn run_cleanup(g: &Global, a: CleanupArgs) -> Result<i32> {
    a.at.use_esp()?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let r = deploy::cleanup::cleanup(
        &deploy::cleanup::CleanupOptions {
            sysroot: a.at.sysroot,
            keep: a.keep,
            wait: !a.at.no_wait,
        },
        &reporter,
    )?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else if !g.quiet {
        out.line(format!(
            "removed {} deployments, kept {} (retain {})",
            r.removed.len(),
            r.kept.len(),
            r.retain
        ))?;
    }
    Ok(0)
}

pub fn run_undeploy(g: &Global, a: IdArgs) -> Result<i32> {
    a.at.use_esp()?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    deploy::cleanup::undeploy(a.at.sysroot.as_deref(), a.id, !a.at.no_wait, &reporter)?;
    if g.json {
        Out::new().json(&serde_json::json!({ "removed": a.id }))?;
    }
    Ok(0)
}

pub fn run_finalize(g: &Global, a: SysrootArg) -> Result<i32> {
    a.use_esp()?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let r = deploy::finalize::finalize(a.sysroot.as_deref(), !a.no_wait, &reporter)?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else if !g.quiet {
        match (r.staged, r.from, &r.merge) {
            (Some(s), Some(f), Some(m)) => out.line(format!(
                "deployment {s}: /etc merged again from deployment {f} ({} decisions, {} conflicts)",
                m.decisions.len(),
                m.conflicts.len()
            ))?,
            _ => out.line("nothing staged: nothing to finalize")?,
        }
    }
    Ok(0)
}

pub fn run_etc(g: &Global, a: EtcArgs) -> Result<i32> {
    a.at.use_esp()?;
    let o = deploy::etc::EtcOptions {
        sysroot: a.at.sysroot,
        deployment: a.deployment,
        wait: !a.at.no_wait,
    };
    let mut out = Out::new();
    match a.command {
        EtcCommand::Commit { message, limit } => {
            let (id, c, pruned) = deploy::etc::commit(&o, &message, limit)?;
            if g.json {
                out.json(&serde_json::json!({"deployment": id, "commit": c, "pruned": pruned}))?;
            } else if !g.quiet {
                out.line(format!("deployment {id}: /etc commit {}", c.rev))?;
            }
        }
        EtcCommand::Log => {
            let (id, commits) = deploy::etc::log(&o)?;
            if g.json {
                out.json(&serde_json::json!({"deployment": id, "commits": commits}))?;
            } else {
                for c in commits.iter().rev() {
                    out.line(format!("{:>4}  {}  {}", c.rev, time(c.time), c.message))?;
                }
            }
        }
        EtcCommand::Diff { rev } => {
            let (id, rev, changes) = deploy::etc::diff(&o, rev)?;
            if g.json {
                out.json(&serde_json::json!({"deployment": id, "rev": rev, "changes": changes}))?;
            } else {
                for c in &changes {
                    out.line(format!("{:8} {}", c.change, c.path))?;
                }
            }
        }
        EtcCommand::Revert { rev } => {
            let (id, changes) = deploy::etc::revert(&o, rev)?;
            if g.json {
                out.json(&serde_json::json!({"deployment": id, "rev": rev, "changes": changes}))?;
            } else if !g.quiet {
                out.line(format!(
                    "deployment {id}: /etc is commit {rev} again ({} paths changed)",
                    changes.len()
                ))?;
            }
        }
        EtcCommand::Sync { id } => {
            let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
            let (from, to, m) = deploy::etc::sync(&o, id, &reporter)?;
            if g.json {
                out.json(&serde_json::json!({"from": from, "to": to, "merge": m}))?;
            } else if !g.quiet {
                out.line(format!(
                    "deployment {to}: /etc changes of deployment {from} carried over ({} decisions, {} conflicts)",
                    m.decisions.len(),
                    m.conflicts.len()
                ))?;
            }
        }
    }
    Ok(0)
}
