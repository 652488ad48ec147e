//! `upgrade [--check]` (docs/deploy.md, "Upgrading").
use anyhow::Result;
use clap::Args;

use crate::cli::common::{human_bytes, Global, Out};
use crate::cli::deploy::SysrootArg;

#[derive(Args, Debug)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub at: SysrootArg,
    /// Only say what would change: the package changes and the bytes to fetch.
    #[arg(long)]
    pub check: bool,
    /// Fetch from here instead of the source the system follows (a mirror).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Require the manifest to be signed by a key in FILE (instead of the
    /// keyring recorded at install).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<std::path::PathBuf>,
    /// Do not use static deltas.
    #[arg(long)]
    pub no_deltas: bool,
}

pub fn run_upgrade(g: &Global, a: UpgradeArgs) -> Result<i32> {
    a.at.use_esp()?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let r = crate::deploy::upgrade::upgrade(
        &crate::deploy::upgrade::UpgradeOptions {
            sysroot: a.at.sysroot,
            check: a.check,
            source: a.source,
            keyring: a.keyring,
            deltas: !a.no_deltas,
            wait: !a.at.no_wait,
        },
        &reporter,
    )?;
    let Some(mut out) = Out::for_text(g, &r)? else {
        return Ok(0);
    };
    let from = r.current.as_deref().unwrap_or("(not a synced version)");
    if r.up_to_date {
        out.line(format!(
            "{} {}: the default deployment already is the newest version (from {})",
            r.image, r.version, r.source
        ))?;
        return Ok(0);
    }
    let c = &r.changes;
    let summary = format!(
        "{} changed, {} added, {} removed",
        c.changed.len(),
        c.added.len(),
        c.removed.len()
    );
    if let Some(k) = &r.check {
        out.line(format!(
            "{} {from} -> {} from {}: {summary}; {} to fetch ({} packages, {} by delta; .rpm download: {})",
            r.image,
            r.version,
            r.source,
            human_bytes(k.fetch_bytes),
            k.fetch.len(),
            k.by_delta,
            human_bytes(k.rpm_bytes)
        ))?;
    } else {
        let wire = r.sync.as_ref().map(|s| s.wire_bytes).unwrap_or(0);
        let d = r.deploy.as_ref();
        out.line(format!(
            "{} {from} -> {}: {summary}; {} on the wire; deployment {} of view {} is the default for the next boot ({:.2}s)",
            r.image,
            r.version,
            human_bytes(wire),
            d.map(|d| d.id).unwrap_or(0),
            d.map(|d| d.view.as_str()).unwrap_or(""),
            r.seconds
        ))?;
    }
    for ch in &c.changed {
        out.line(format!("  changed {} {} -> {}", ch.name, ch.from, ch.to))?;
    }
    for f in &c.added {
        out.line(format!("  added   {f}"))?;
    }
    for f in &c.removed {
        out.line(format!("  removed {f}"))?;
    }
    Ok(0)
}
