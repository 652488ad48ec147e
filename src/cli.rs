//! The command-line interface: clap lives here only. Every command turns its
//! flags into the library's plain option structs, calls the library, and prints
//! data to stdout (human text, or JSON with `--json`) and messages to stderr.
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

use crate::runner::log;

#[derive(Parser, Debug)]
#[command(name = "reimage", version, about = "Image-like, atomic OS updates built from RPM packages on btrfs", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The pool directory.
    #[arg(long, global = true, env = "REIMAGE_POOL", default_value = crate::pool::DEFAULT_POOL)]
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
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// `.rpm` files, or directories of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Packages imported in parallel (default: number of CPUs).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Require a valid header-only signature by a key in this file (armored
    /// OpenPGP public keys).
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Fail at once if another reimage writer holds the pool, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
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

/// Entry point of the binary; returns the exit code.
pub fn main() -> i32 {
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
            let report = crate::init::init(&crate::init::InitOptions {
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
    }
    Ok(0)
}

fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn cmd_import(g: &Global, a: ImportArgs) -> Result<i32> {
    let pool = crate::pool::Pool::open(&g.pool)?;
    let reporter = crate::progress::BarReporter::new(g.quiet, true);
    let opts = crate::import::ImportOptions {
        paths: a.paths,
        jobs: a.jobs,
        keyring: a.keyring,
        wait: !a.no_wait,
    };
    let r = crate::import::import(&pool, &opts, &reporter)?;
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
                "imported {}, already present {}, refused {}: {} written, {} cloned, {} skipped in {:.1}s{}",
                r.imported,
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
    let pool = crate::pool::Pool::open(&g.pool)?;
    let list = crate::packages::list(&pool)?;
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
