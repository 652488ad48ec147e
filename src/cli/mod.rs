//! The command-line interface: clap lives here only. Every command turns its
//! flags into the library's plain option structs, calls the library, and prints
//! data to stdout (human text, or JSON with `--json`) and messages to stderr.
pub mod dist;
pub mod fsck;
pub mod progress;
pub mod query;
pub mod storage;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

use crate::util::runner::log;

#[derive(Parser, Debug)]
#[command(name = "reimage", version, about = "Image-like, atomic OS updates built from RPM packages on btrfs", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The clap definition of the whole command line (for man pages and shell
/// completions, generated from it: `dist/man/`, `dist/completions/`).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

/// Options every command shares.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The pool directory.
    #[arg(long, global = true, env = "REIMAGE_POOL", default_value = crate::store::pool::DEFAULT_POOL)]
    pub pool: PathBuf,
    /// Say more (commands run, per-package detail).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Say nothing but errors; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Prepare a pool (optionally inside a loop-mounted btrfs image).
    Init(InitArgs),
    /// Transcode RPM files into extent packages in the pool.
    Import(ImportArgs),
    /// List the extent packages in the pool.
    Packages,
    /// Compose a read-only /usr view from a package list.
    Compose(ComposeArgs),
    /// List the views in the pool.
    Views,
    /// Delete a view.
    RmView(RmViewArgs),
    /// List the packages of a view (or any /usr tree), like rpm -qa.
    List(crate::cli::query::ListArgs),
    /// Query a view's packages: -f PATH, -l PKG, -i PKG, --provides/--requires PKG, --whatprovides CAP.
    Query(crate::cli::query::QueryArgs),
    /// Package (and with --files, file) differences between two views.
    Diff(crate::cli::query::DiffArgs),
    /// Check every file of a view against its package header, like rpm -V (exit 1 on mismatch).
    Verify(crate::cli::query::VerifyArgs),
    /// Share identical content across extent packages (FIDEDUPERANGE; rebuilds big-extent packages).
    Dedupe(crate::cli::storage::DedupeArgs),
    /// Bytes referenced, shared and exclusive per package and view, counted like compsize.
    Usage(crate::cli::storage::UsageArgs),
    /// Remove extent packages no view or image manifest references; clean tmp/.
    Gc(crate::cli::storage::GcArgs),
    /// Publish an image version into a repository (or --prune it).
    Publish(crate::cli::dist::PublishArgs),
    /// Bring the pool to an image version from a repository (rsync, ssh, path, http).
    Sync(crate::cli::dist::SyncArgs),
    /// Check the pool: every package against its index and header, every view complete.
    Fsck(crate::cli::fsck::FsckArgs),
}

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// Name of the new view (POOL/views/NAME).
    pub name: String,
    /// Packages: NEVRA, `.rpm` file name, or bare name (the newest in the pool).
    pub packages: Vec<String>,
    /// Read packages from FILE (one per line, `#` comments).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Start from this view and apply only the package difference.
    #[arg(long, value_name = "VIEW")]
    pub from: Option<String>,
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

/// Parses sizes like `2G`, `512M`, `1T`, `4096` (binary units).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let mult = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1u64 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], mult)
        }
        None => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 2G, 512M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Writes to stdout; a closed pipe (`reimage list | head`) is not an error.
pub struct Out(std::io::StdoutLock<'static>);
impl Out {
    pub fn new() -> Out {
        Out(std::io::stdout().lock())
    }
    pub fn line(&mut self, s: impl std::fmt::Display) -> Result<()> {
        writeln!(self.0, "{s}")?;
        Ok(())
    }
    pub fn json(&mut self, v: &impl serde::Serialize) -> Result<()> {
        let text = serde_json::to_string_pretty(v)?;
        writeln!(self.0, "{text}")?;
        Ok(())
    }
}
impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

/// A command line that clap accepts but that cannot work (no packages
/// named, IMAGE without VERSION, ...): exit status 2, like clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error (exit status 2).
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// `--jobs N`: at least 1.
pub fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of jobs (1 or more)")),
    }
}

/// `--relocate FROM=TO`: both sides non-empty (the policy checks the paths).
fn parse_rule(s: &str) -> std::result::Result<String, String> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not FROM=TO (e.g. /opt/foo=/usr/lib/foo)")),
    }
}

/// Entry point of the binary; returns the exit code.
pub fn main() -> i32 {
    // `REIMAGE_POOL=` (set but empty) means unset, not "--pool without a value".
    if std::env::var_os("REIMAGE_POOL").is_some_and(|v| v.is_empty()) {
        // Single-threaded here: nothing else reads the environment yet.
        std::env::remove_var("REIMAGE_POOL");
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    log::set_level(if cli.global.quiet {
        0
    } else if cli.global.verbose {
        2
    } else {
        1
    });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                eprintln!("\nFor more information, try '--help'.");
                return 2;
            }
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<i32> {
    let g = cli.global;
    match cli.command {
        Command::Init(a) => {
            let report = crate::store::init::init(&crate::store::init::InitOptions {
                pool: g.pool.clone(),
                image: a.image,
                size: a.size,
                allow_copy: a.allow_copy,
            })?;
            let mut out = Out::new();
            if g.json {
                out.json(&report)?;
            } else if !g.quiet {
                for line in report.lines() {
                    out.line(line)?;
                }
            }
        }
        Command::Import(a) => return cmd_import(&g, a),
        Command::Packages => return cmd_packages(&g),
        Command::Compose(a) => return cmd_compose(&g, a),
        Command::Views => return cmd_views(&g),
        Command::List(a) => return crate::cli::query::run_list(&g, a),
        Command::Query(a) => return crate::cli::query::run_query(&g, a),
        Command::Diff(a) => return crate::cli::query::run_diff(&g, a),
        Command::Verify(a) => return crate::cli::query::run_verify(&g, a),
        Command::Dedupe(a) => return crate::cli::storage::run_dedupe(&g, a),
        Command::Usage(a) => return crate::cli::storage::run_usage(&g, a),
        Command::Gc(a) => return crate::cli::storage::run_gc(&g, a),
        Command::Publish(a) => return crate::cli::dist::run_publish(&g, a),
        Command::Sync(a) => return crate::cli::dist::run_sync(&g, a),
        Command::Fsck(a) => return crate::cli::fsck::run_fsck(&g, a),
        Command::RmView(a) => {
            let pool = crate::store::pool::Pool::open(&g.pool)?;
            crate::views::compose::rm_view(&pool, &a.name, !a.no_wait)?;
            if g.json {
                Out::new().json(&serde_json::json!({ "removed": a.name }))?;
            } else if !g.quiet {
                eprintln!("removed view {}", a.name);
            }
        }
    }
    Ok(0)
}

fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn cmd_import(g: &Global, a: ImportArgs) -> Result<i32> {
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
                if p.status != "refused" {
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
    for p in r.packages.iter().filter(|p| p.status == "refused") {
        eprintln!("error: {}", p.error.as_deref().unwrap_or("refused"));
    }
    Ok(if r.refused > 0 { 1 } else { 0 })
}

fn cmd_packages(g: &Global) -> Result<i32> {
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

fn cmd_compose(g: &Global, a: ComposeArgs) -> Result<i32> {
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
                " from {f} (+{} -{} packages, {} entries created, {} removed)",
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

fn cmd_views(g: &Global) -> Result<i32> {
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

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("2X").is_err());
        assert!(parse_size("G").is_err());
    }
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
