//! CLI for `reimage fsck` (wired into `cli.rs` by the lead): flags to
//! [`FsckOptions`], the report to stdout (text, or JSON with `--json`),
//! exit status 1 when problems remain.
use anyhow::Result;
use clap::Args;

use crate::cli::common::{Global, Out};
use crate::maint::fsck::{self, FsckOptions};

#[derive(Args, Debug)]
pub struct FsckArgs {
    /// Remove what is provably garbage: tmp/ content and temporary files left
    /// by interrupted writes. Never packages or views.
    #[arg(long)]
    pub repair: bool,
    /// Also check every file against its header's file digest (slower).
    #[arg(long)]
    pub full: bool,
    /// With --repair: fail at once if another writer holds the pool.
    #[arg(long)]
    pub no_wait: bool,
    /// Also check the system at DIR (the mounted top level of its btrfs): the
    /// state record, its deployments and their views, the boot entries. On a
    /// running reimage system its own layout is checked without this.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<std::path::PathBuf>,
    /// Offline: the ESP to compare the boot entries on (as `deploy --esp`).
    #[arg(long, value_name = "ESP")]
    pub esp: Option<String>,
}

/// `reimage fsck`.
pub fn run_fsck(global: &Global, args: FsckArgs) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&global.pool)?;
    let r = fsck::fsck(
        &pool,
        &FsckOptions {
            repair: args.repair,
            full: args.full,
            wait: !args.no_wait,
        },
    )?;
    if let Some(e) = &args.esp {
        crate::deploy::boot::use_esp(crate::boot::esp::Esp::parse(e)?);
    }
    let system = match &args.sysroot {
        Some(dir) => Some(crate::deploy::check::check(
            Some(dir),
            args.repair,
            !args.no_wait,
        )?),
        // A running reimage system checks its own layout; elsewhere there is none.
        None => crate::deploy::check::check(None, args.repair, !args.no_wait).ok(),
    };
    let sys_ok = system.as_ref().is_none_or(|s| s.problems.is_empty());
    let mut out = Out::new();
    if global.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(s) = &system {
            v["system"] = serde_json::to_value(s)?;
        }
        out.json(&v)?;
    } else {
        if let Some(s) = &system {
            for p in &s.problems {
                out.line(format!("{}: {}: {}", p.kind, p.path.display(), p.message))?;
            }
            for g in &s.repaired {
                out.line(format!("removed {}", g.display()))?;
            }
            if s.finished.is_empty() {
                for p in &s.unfinished {
                    out.line(format!(
                        "unfinished: {}: {} (an interrupted deploy, rollback or cleanup; finished by the next writer, the boot check, or --repair)",
                        p.path.display(),
                        p.message
                    ))?;
                }
            }
            for f in &s.finished {
                out.line(format!("finished: {f}"))?;
            }
            if !global.quiet {
                out.line(format!(
                    "system {}: {} deployments: {}{}",
                    s.sysroot.display(),
                    s.deployments,
                    if s.problems.is_empty() {
                        "ok".to_string()
                    } else {
                        format!("{} problem(s)", s.problems.len())
                    },
                    match s.garbage.len() - s.repaired.len().min(s.garbage.len()) {
                        0 => String::new(),
                        n => format!(
                            ", {n} garbage entries (removed by the next writer, or --repair)"
                        ),
                    }
                ))?;
            }
        }
        for p in &r.problems {
            out.line(format!("{}: {}: {}", p.kind, p.path.display(), p.message))?;
        }
        if r.problems.iter().any(|p| p.kind == "package") {
            eprintln!(
                "hint: import the damaged package's RPM again with `reimage import --replace FILE.rpm` \
                 (views keep their own data; nothing else changes)"
            );
        }
        let repaired: std::collections::BTreeSet<_> = r.repaired.iter().collect();
        let tmp_garbage = r
            .garbage
            .iter()
            .filter(|g| !repaired.contains(g) && g.starts_with(pool.tmp_dir()))
            .count();
        if tmp_garbage > 0 && !global.verbose && !global.quiet {
            out.line(format!(
                "{tmp_garbage} entries in {} (garbage of an interrupted run, removed by the next writer; -v lists them)",
                pool.tmp_dir().display()
            ))?;
        }
        for g in &r.garbage {
            if repaired.contains(g) {
                out.line(format!("removed {}", g.display()))?;
            } else if global.verbose && g.starts_with(pool.tmp_dir()) {
                out.line(format!(
                    "garbage {} (removed by the next writer)",
                    g.display()
                ))?;
            }
        }
        if !global.quiet {
            out.line(format!(
                "{} packages ({} files, {} checked{}), {} views: {}{}{} in {:.2}s",
                r.packages,
                r.files,
                crate::cli::common::human_bytes(r.bytes),
                if r.full {
                    " against header digests"
                } else {
                    ""
                },
                r.views,
                if r.ok() {
                    "ok".to_string()
                } else {
                    format!("{} problem(s)", r.problems.len())
                },
                if r.repaired.is_empty() {
                    String::new()
                } else {
                    format!(", {} garbage entries removed", r.repaired.len())
                },
                if r.tmp_checked {
                    ""
                } else {
                    " (a writer holds the pool: tmp/ not examined)"
                },
                r.seconds
            ))?;
        }
    }
    Ok(if r.ok() && sys_ok { 0 } else { 1 })
}
