//! `compose`, `views`, `rm-view`: the views' commands.
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::cli::common::{human_bytes, parse_rule, usage, Global, Out};

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// Name of the new view (POOL/views/NAME).
    pub name: String,
    /// Packages: NEVRA, `.rpm` file name, or bare name (the newest in the pool).
    pub packages: Vec<String>,
    /// Read packages from FILE (one per line, `#` comments).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Start from this view and apply only the package difference. Without
    /// it, compose starts from the view sharing the most packages with the
    /// list (when that is more than half of it).
    #[arg(long, value_name = "VIEW", conflicts_with = "no_base")]
    pub from: Option<String>,
    /// Compose the whole view, not from the view sharing the most packages.
    #[arg(long)]
    pub no_base: bool,
    /// passwd file for owner names the view's own files do not define.
    #[arg(long, value_name = "FILE")]
    pub passwd: Option<PathBuf>,
    /// group file for group names the view's own files do not define.
    #[arg(long, value_name = "FILE")]
    pub group: Option<PathBuf>,
    /// Map paths outside /usr: --relocate /opt/foo=/usr/lib/foo (repeatable).
    #[arg(long, value_name = "FROM=TO", value_parser = parse_rule)]
    pub relocate: Vec<String>,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug)]
pub struct RmViewArgs {
    /// The view to delete.
    pub name: String,
    /// Fail at once if another reimage writer holds the pool.
    #[arg(long)]
    pub no_wait: bool,
}

pub fn cmd_compose(g: &Global, a: ComposeArgs) -> Result<i32> {
    if a.packages.is_empty() && a.list.is_none() {
        return Err(usage("name the packages, or give --list FILE"));
    }
    let pool = crate::store::pool::Pool::open(&g.pool)?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let opts = crate::views::compose::ComposeOptions {
        name: a.name,
        specs: a.packages,
        list: a.list,
        from: a.from,
        no_base: a.no_base,
        passwd: a.passwd,
        group: a.group,
        relocate: a.relocate,
        wait: !a.no_wait,
        image: None,
    };
    let r = crate::views::compose::compose(&pool, &opts, &reporter)?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else if !g.quiet {
        if g.verbose {
            for rel in &r.relocations {
                out.line(format!("relocated {} -> /usr/{}", rel.from, rel.to))?;
            }
        }
        let from = match &r.from {
            Some(f) if r.whole => format!(
                " (+{} -{} packages against {f}: most entries changed, so composed whole)",
                r.added.len(),
                r.removed.len(),
            ),
            Some(f) => format!(
                " from {f}{} (+{} -{} packages, {} entries created, {} removed)",
                if r.auto_base {
                    " (the view sharing most packages)"
                } else {
                    ""
                },
                r.added.len(),
                r.removed.len(),
                r.created_entries,
                r.removed_entries
            ),
            None => String::new(),
        };
        out.line(format!(
            "view {} at {}{}: {} packages, {} files, {} dirs, {} symlinks, {} {}, {} relocated, {:.2}s{}",
            r.view,
            r.path.display(),
            from,
            r.packages,
            r.files,
            r.dirs,
            r.symlinks,
            human_bytes(r.bytes),
            if r.copied { "copied" } else { "reflinked" },
            r.relocations.len(),
            r.seconds,
            if r.readonly { "" } else { " (not read-only: no subvolumes here)" }
        ))?;
    }
    Ok(0)
}

pub fn cmd_views(g: &Global) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&g.pool)?;
    let views = crate::views::compose::views(&pool)?;
    let mut out = Out::new();
    if g.json {
        out.json(&views)?;
        return Ok(0);
    }
    for v in &views {
        out.line(format!(
            "{:24} {:>5} packages  {}  {}{}",
            v.name,
            v.packages,
            v.path.display(),
            if v.readonly { "ro" } else { "rw" },
            v.from
                .as_deref()
                .map(|f| format!("  from {f}"))
                .unwrap_or_default()
        ))?;
    }
    Ok(0)
}
