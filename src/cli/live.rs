//! `apply-live` (docs/live.md).
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::common::{Global, Out};
use crate::cli::deploy::SysrootArg;

#[derive(Args, Debug)]
pub struct ApplyLiveArgs {
    #[command(flatten)]
    pub at: SysrootArg,
    /// The deployment whose view to apply (default: the default one); it
    /// becomes the default for the next boot.
    #[arg(long, value_name = "ID")]
    pub deployment: Option<u64>,
    /// Apply even when packages of the running /usr are upgraded, downgraded,
    /// rebuilt or removed (the processes still using the old files are listed).
    #[arg(long)]
    pub allow_replacement: bool,
    /// The running root whose /usr is switched (default `/`; another one is a
    /// booted deployment mounted there, e.g. in a test's mount namespace).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

pub fn run_apply_live(g: &Global, a: ApplyLiveArgs) -> Result<i32> {
    a.at.use_esp()?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let r = crate::live::apply::apply_live(
        &crate::live::apply::ApplyOptions {
            sysroot: a.at.sysroot,
            root: a.root,
            deployment: a.deployment,
            allow_replacement: a.allow_replacement,
            wait: !a.at.no_wait,
        },
        &reporter,
    )?;
    let code = if r.failed_steps().is_empty() { 0 } else { 1 };
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
        return Ok(code);
    }
    if !g.quiet {
        out.line(format!(
            "{} view {} of deployment {} over booted deployment {} (was {}): +{} packages, {} replaced{}",
            if r.again { "re-applied" } else { "live:" },
            r.view,
            r.deployment,
            r.booted,
            r.from,
            r.diff.added.len(),
            r.diff.upgraded.len() + r.diff.downgraded.len() + r.diff.rebuilt.len() + r.diff.removed.len(),
            if r.default_changed { "; it is the default for the next boot now" } else { "" }
        ))?;
        out.line(format!(
            "/etc: {} written, {} removed, {} conflicts kept locally (new defaults as .rpmnew); \
             this part is not transactional",
            r.etc.applied.written.len(),
            r.etc.applied.removed.len(),
            r.etc.conflicts.len()
        ))?;
        for c in &r.etc.conflicts {
            out.line(format!("  conflict: {c} (see {c}.rpmnew)"))?;
        }
        for s in &r.steps {
            if g.verbose || s.outcome != "done" {
                out.line(format!("  {}: {} ({})", s.step, s.outcome, s.command))?;
            }
        }
        let replaced = !(r.diff.upgraded.is_empty()
            && r.diff.downgraded.is_empty()
            && r.diff.rebuilt.is_empty()
            && r.diff.removed.is_empty());
        if replaced || g.verbose {
            out.line(format!(
                "{} process(es) still use files of the old /usr{}",
                r.processes.len(),
                if r.processes.is_empty() {
                    ""
                } else {
                    " (restart them to use the new files):"
                }
            ))?;
            for p in &r.processes {
                out.line(format!(
                    "  {:>7} {:16} {} file(s): {}",
                    p.pid,
                    p.command,
                    p.count,
                    p.files.join(" ")
                ))?;
            }
        }
    }
    for s in r.failed_steps() {
        eprintln!("error: apply-live step {} failed: {}", s.step, s.outcome);
    }
    Ok(code)
}
