//! CLI for `dedupe`, `usage`, `gc` (wired into `cli.rs` by the lead): flags
//! to the library's option structs, data to stdout (text, or JSON with
//! `--json`), messages to stderr.
use anyhow::Result;
use clap::Args;

use crate::cli::common::{Global, Out};
use crate::maint::storage::{self, UsageRow};

#[derive(Args, Debug)]
pub struct DedupeArgs {
    /// Say what would be shared and rebuilt; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only the pool totals and the views (no per-package rows).
    #[arg(long)]
    pub views_only: bool,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Say what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
}

use crate::cli::common::human_bytes as hb;

/// `reimage dedupe`.
pub fn run_dedupe(global: &Global, args: DedupeArgs) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&global.pool)?;
    let reporter = crate::cli::progress::BarReporter::new(global.quiet, true);
    let r = storage::dedupe(
        &pool,
        &storage::DedupeOptions {
            dry_run: args.dry_run,
            wait: !args.no_wait,
        },
        &reporter,
    )?;
    let mut out = Out::new();
    if global.json {
        out.json(&r)?;
    } else if !global.quiet {
        if r.unchanged {
            out.line(format!(
                "{} packages unchanged since the last dedupe: nothing to do ({:.2}s)",
                r.packages, r.seconds
            ))?;
        } else {
            if global.verbose {
                let would = if r.dry_run { "would " } else { "" };
                for p in &r.rebuilt {
                    out.line(format!("{would}rebuild {p} (stored as big extents)"))?;
                }
                for p in &r.kept {
                    out.line(format!(
                        "{would}keep {p} as it is (big extents, the copy the others share)"
                    ))?;
                }
            }
            let (shared, rebuilt) = if r.dry_run {
                ("to share", "to rebuild")
            } else {
                ("shared", "rebuilt")
            };
            out.line(format!(
                "{} packages ({} changed), {} groups of identical content: {} already shared, {} {shared}, {} packages {rebuilt} ({} cloned, {} written){}",
                r.packages,
                r.changed,
                r.groups,
                hb(r.already_shared_bytes),
                hb(r.deduped_bytes),
                r.rebuilt.len(),
                hb(r.rebuilt_cloned_bytes),
                hb(r.rebuilt_written_bytes),
                if r.kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} in big extents kept as they are ({} left stored twice: sharing it would mean rewriting more than it frees)",
                        r.kept.len(),
                        hb(r.left_bytes)
                    )
                },
            ))?;
            if !r.dry_run && r.groups > 0 {
                out.line(format!(
                    "disk usage of packages and views {} -> {}: {} freed in {:.2}s",
                    hb(r.disk_before),
                    hb(r.disk_after),
                    hb(r.freed_bytes),
                    r.seconds
                ))?;
            }
            if r.held_by_views > 0 {
                out.line(format!(
                    "{} are held by views only (old extents they reflink): freed when those views are removed",
                    hb(r.held_by_views)
                ))?;
            }
            if r.differing_ranges > 0 {
                out.line(format!(
                    "{} ranges differ from what the indexes say: left alone (run fsck)",
                    r.differing_ranges
                ))?;
            }
        }
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    Ok(if r.errors.is_empty() { 0 } else { 1 })
}

fn usage_line(kind: &str, r: &UsageRow) -> String {
    format!(
        "{:7} {:48} {:>11} {:>11} {:>11} {:>11}",
        kind,
        r.name,
        hb(r.referenced),
        hb(r.disk),
        hb(r.shared),
        hb(r.exclusive)
    )
}

/// `reimage usage`.
pub fn run_usage(global: &Global, args: UsageArgs) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&global.pool)?;
    let mut u = storage::usage(&pool)?;
    if args.views_only {
        u.packages.clear();
    }
    let mut out = Out::new();
    if global.json {
        out.json(&u)?;
    } else {
        out.line(format!(
            "{:7} {:48} {:>11} {:>11} {:>11} {:>11}",
            "KIND", "NAME", "REFERENCED", "DISK", "SHARED", "EXCLUSIVE"
        ))?;
        for r in &u.packages {
            out.line(usage_line("package", r))?;
        }
        for r in &u.views {
            out.line(usage_line("view", r))?;
        }
        let t = &u.totals;
        out.line(format!(
            "total: {} on disk ({} referenced); packages {}, views {} ({} referenced by views only), {} shared",
            hb(t.disk),
            hb(t.referenced),
            hb(t.packages_disk),
            hb(t.views_disk),
            hb(t.views_only),
            hb(t.shared)
        ))?;
        if !global.quiet && !u.views.is_empty() {
            eprintln!("removing a view frees its EXCLUSIVE data, and its metadata");
        }
    }
    for e in &u.errors {
        eprintln!("error: {e}");
    }
    Ok(if u.errors.is_empty() { 0 } else { 1 })
}

/// `reimage gc`.
pub fn run_gc(global: &Global, args: GcArgs) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&global.pool)?;
    let r = storage::gc(
        &pool,
        &storage::GcOptions {
            dry_run: args.dry_run,
            wait: !args.no_wait,
        },
    )?;
    let mut out = Out::new();
    if global.json {
        out.json(&r)?;
        return Ok(0);
    }
    let would = if r.dry_run { "would remove" } else { "removed" };
    if !global.quiet {
        for p in &r.removed {
            out.line(format!("{would} {} ({})", p.file, hb(p.size)))?;
        }
        for t in &r.tmp_removed {
            out.line(format!("{would} tmp/{t}"))?;
        }
        for s in &r.skipped {
            eprintln!("warning: packages/{s} is not an extent package: left alone");
        }
        for m in &r.missing {
            eprintln!("warning: {m} is referenced but not in the pool");
        }
        out.line(format!(
            "{} {} packages{}, kept {} (referenced by {} views, {} image manifests), {:.2}s",
            would,
            r.removed.len(),
            r.freed_bytes
                .map(|b| format!(" (frees {})", hb(b)))
                .unwrap_or_default(),
            r.kept,
            r.views,
            r.manifests,
            r.seconds
        ))?;
    }
    Ok(0)
}
