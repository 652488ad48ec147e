//! What every command module of the CLI shares: the global options, the
//! stdout writer, usage errors, value parsers and the one byte formatter.
//! Command modules import this; it imports none of them.
use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

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
    /// A command's report: printed as JSON with `--json`; with `-q`
    /// nothing; otherwise the output its text goes to.
    pub fn for_text(g: &Global, report: &impl serde::Serialize) -> Result<Option<Out>> {
        let mut out = Out::new();
        if g.json {
            out.json(report)?;
            return Ok(None);
        }
        Ok((!g.quiet).then_some(out))
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
pub fn parse_rule(s: &str) -> std::result::Result<String, String> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not FROM=TO (e.g. /opt/foo=/usr/lib/foo)")),
    }
}

/// Bytes as people read them (`1.50 MiB`): the one rendering of sizes.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
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
}
