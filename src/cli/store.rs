//! `init`, `import`, `packages`: the store's commands.
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::cli::common::{human_bytes, parse_jobs, parse_size, Global, Out};
use crate::store::import::Status;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// `.rpm` files, or directories of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Packages imported in parallel (default: number of CPUs).
    #[arg(short, long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Require a valid header-only signature by a key in this file (armored
    /// OpenPGP public keys).
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// Import packages the pool already holds again and replace its copies
    /// (the repair for a package `fsck` reports damaged).
    #[arg(long)]
    pub replace: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Make a btrfs filesystem in this image file and loop-mount it at the pool
    /// path; with an existing image, re-mount it (e.g. after a reboot).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Size of a new image, e.g. 2G, 512M (needed when the image does not exist).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Allow a pool on a filesystem that cannot reflink: data is copied.
    #[arg(long)]
    pub allow_copy: bool,
}

pub fn cmd_import(g: &Global, a: ImportArgs) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&g.pool)?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, true);
    let opts = crate::store::import::ImportOptions {
        paths: a.paths,
        jobs: a.jobs,
        keyring: a.keyring,
        wait: !a.no_wait,
        replace: a.replace,
    };
    let r = crate::store::import::import(&pool, &opts, &reporter)?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else {
        if g.verbose {
            for p in &r.packages {
                if p.status != Status::Refused {
                    out.line(format!(
                        "{:8} {} ({} files, {} content, {} written, {} cloned)",
                        p.status,
                        p.nevra.as_deref().unwrap_or("?"),
                        p.files,
                        human_bytes(p.content_bytes),
                        human_bytes(p.written_bytes),
                        human_bytes(p.cloned_bytes)
                    ))?;
                }
            }
        }
        if !g.quiet {
            out.line(format!(
                "imported {}{}, already present {}, refused {}: {} written, {} cloned, {} skipped in {:.1}s{}",
                r.imported,
                if r.replaced > 0 {
                    format!(" ({} replaced)", r.replaced)
                } else {
                    String::new()
                },
                r.present,
                r.refused,
                human_bytes(r.written_bytes),
                human_bytes(r.cloned_bytes),
                human_bytes(r.skipped_bytes),
                r.seconds,
                if r.copied { " (data copied: no reflinks)" } else { "" }
            ))?;
        }
    }
    for p in r.packages.iter().filter(|p| p.status == Status::Refused) {
        eprintln!("error: {}", p.error.as_deref().unwrap_or("refused"));
    }
    Ok(if r.refused > 0 { 1 } else { 0 })
}

pub fn cmd_packages(g: &Global) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&g.pool)?;
    let list = crate::store::packages::list(&pool)?;
    let mut out = Out::new();
    if g.json {
        out.json(&list)?;
        return Ok(0);
    }
    for p in &list.packages {
        out.line(format!(
            "{:50} {:>6} files {:>10} content {:>10} on disk",
            p.nevra,
            p.files,
            human_bytes(p.content_bytes),
            human_bytes(p.disk_bytes)
        ))?;
    }
    for e in &list.errors {
        eprintln!("error: {e}");
    }
    if !g.quiet {
        eprintln!("{} packages", list.packages.len());
    }
    Ok(if list.errors.is_empty() { 0 } else { 1 })
}
