//! CLI for `reimage publish`, `reimage bundle` and `reimage sync`: flags into the library's
//! option structs, results to stdout (text, or JSON with `--json`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::common::{Global, Out};

use crate::dist::{bundle, publish, sync};

/// `reimage publish REPO IMAGE VERSION (--list FILE | PATH...)`, `reimage publish REPO --prune`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The repository directory (a pool-like tree any rsync daemon or HTTP server can serve).
    pub repo: PathBuf,
    /// Image name.
    pub image: Option<String>,
    /// Version to publish (versions order by rpm's version comparison).
    pub version: Option<String>,
    /// `.rpm` files or directories of them.
    pub paths: Vec<PathBuf>,
    /// Read `.rpm` paths from FILE (one per line, relative to FILE's directory).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Also write static deltas from this published version (repeatable).
    #[arg(long = "deltas-from", value_name = "OLDVERSION")]
    pub deltas_from: Vec<String>,
    /// Remove packages and deltas that no manifest uses.
    #[arg(long)]
    pub prune: bool,
    /// Sign the manifest with this armored OpenPGP secret key (detached, VERSION.json.sig).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// zstd level of static deltas.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub delta_level: i32,
    /// Packages imported in parallel (default: number of CPUs).
    #[arg(short, long, value_parser = crate::cli::common::parse_jobs)]
    pub jobs: Option<usize>,
}

/// `reimage bundle REPO IMAGE VERSION [--from OLDVERSION] -o FILE`.
#[derive(Args, Debug)]
pub struct BundleArgs {
    /// The repository directory (made by reimage publish).
    pub repo: PathBuf,
    /// Image name.
    pub image: String,
    /// The published version to bundle.
    pub version: String,
    /// Carry only what a machine at this published version needs (default: everything).
    #[arg(long, value_name = "OLDVERSION")]
    pub from: Option<String>,
    /// The bundle file to write (written to a temporary name, then renamed).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `reimage sync SOURCE IMAGE [VERSION]`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// `rsync://host[:port]/module[/path]`, `host:path` (ssh), a local path, `http(s)://URL`, or a bundle file.
    pub source: String,
    /// Image name.
    pub image: String,
    /// Version (default: the newest, by rpm's version comparison).
    pub version: Option<String>,
    /// Compose this view from the synced version (incrementally from the image's newest view).
    #[arg(long, value_name = "NAME")]
    pub compose: Option<String>,
    /// Require the manifest to be signed by a key in FILE (armored OpenPGP public keys).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Do not use static deltas.
    #[arg(long)]
    pub no_deltas: bool,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// Accept a version older than the newest the pool already holds.
    #[arg(long)]
    pub allow_downgrade: bool,
}

use crate::cli::common::human_bytes as hb;

pub fn run_publish(g: &Global, a: PublishArgs) -> Result<i32> {
    let target = match (a.image, a.version) {
        (Some(i), Some(v)) => Some((i, v)),
        (None, None) => None,
        _ => return Err(crate::cli::common::usage("name both IMAGE and VERSION")),
    };
    if target.is_some() && a.paths.is_empty() && a.list.is_none() {
        return Err(crate::cli::common::usage(
            "no packages given: name .rpm files or directories, or use --list FILE",
        ));
    }
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, true);
    let r = publish::publish(
        &publish::PublishOptions {
            repo: a.repo,
            target,
            paths: a.paths,
            list: a.list,
            deltas_from: a.deltas_from,
            prune: a.prune,
            sign: a.sign,
            delta_level: a.delta_level,
            jobs: a.jobs,
        },
        &reporter,
    )?;
    let Some(mut out) = Out::for_text(g, &r)? else {
        return Ok(0);
    };
    if let (Some(i), Some(v)) = (&r.image, &r.version) {
        out.line(format!(
            "published {i} {v} in {}: {} packages ({} imported, {} present), {} of extent packages, {} of .rpm{}",
            r.repo.display(),
            r.packages,
            r.imported,
            r.present,
            hb(r.package_bytes),
            hb(r.rpm_bytes),
            if r.signed { ", signed" } else { "" }
        ))?;
    }
    for d in &r.deltas {
        out.line(format!(
            "deltas from {}: {} changed packages, {} of deltas for {} of packages ({} of .rpm)",
            d.from,
            d.changed,
            hb(d.delta_bytes),
            hb(d.package_bytes),
            hb(d.rpm_bytes)
        ))?;
    }
    if a.prune {
        out.line(format!(
            "pruned {} files, {}",
            r.pruned_files,
            hb(r.pruned_bytes)
        ))?;
    }
    Ok(0)
}

pub fn run_bundle(g: &Global, a: BundleArgs) -> Result<i32> {
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, true);
    let r = bundle::bundle(
        &bundle::BundleOptions {
            repo: a.repo,
            image: a.image,
            version: a.version,
            from: a.from,
            output: a.output,
        },
        &reporter,
    )?;
    if let Some(mut out) = Out::for_text(g, &r)? {
        out.line(format!(
            "bundled {} {} {} into {}: {}; {} of {} packages whole, {} by delta, {} unchanged{}",
            r.image,
            r.version,
            r.from
                .as_deref()
                .map(|f| format!("for machines at {f}"))
                .unwrap_or_else(|| "for a fresh install".into()),
            r.file.display(),
            hb(r.bytes),
            r.whole_packages,
            r.packages,
            r.deltas,
            r.unchanged,
            if r.signed { ", signed" } else { "" }
        ))?;
    }
    Ok(0)
}

pub fn run_sync(g: &Global, a: SyncArgs) -> Result<i32> {
    let pool = crate::store::pool::Pool::open(&g.pool)?;
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let r = sync::sync(
        &pool,
        &sync::SyncOptions {
            source: a.source,
            image: a.image,
            version: a.version,
            compose: a.compose,
            keyring: a.keyring,
            deltas: !a.no_deltas,
            wait: !a.no_wait,
            allow_downgrade: a.allow_downgrade,
        },
        &reporter,
    );
    let r = match r {
        Ok(r) => r,
        // Some packages failed: --json still reports what happened.
        Err(e) if g.json && e.downcast_ref::<sync::Incomplete>().is_some() => {
            let inc = e.downcast_ref::<sync::Incomplete>().expect("checked");
            Out::new().json(&inc.0)?;
            eprintln!("error: {e:#}");
            return Ok(1);
        }
        Err(e) => return Err(e),
    };
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
        return Ok(0);
    }
    if g.verbose {
        for p in &r.fetched {
            out.line(format!(
                "{:6} {}{} ({} written, {} cloned)",
                p.how,
                p.file,
                p.basis
                    .as_deref()
                    .map(|b| format!(" from {b}"))
                    .unwrap_or_default(),
                hb(p.written_bytes),
                hb(p.cloned_bytes)
            ))?;
        }
    }
    if !g.quiet {
        out.line(format!(
            "synced {} {} from {}: {} packages, {} present, {} by delta, {} by rsync, {} whole; {} on the wire (.rpm download: {}), {} written, {} cloned in {:.1}s",
            r.image,
            r.version,
            r.source,
            r.packages,
            r.present,
            r.by_delta,
            r.by_rsync,
            r.whole,
            hb(r.wire_bytes),
            hb(r.rpm_bytes),
            hb(r.written_bytes),
            hb(r.cloned_bytes),
            r.seconds
        ))?;
        if let Some(c) = &r.compose {
            out.line(format!("view {} at {}", c.view, c.path.display()))?;
        }
    }
    Ok(0)
}
