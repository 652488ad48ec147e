//! `reimage sync`: bring a pool to an image version published by
//! `reimage publish` (docs/sync.md).
//!
//! ```text
//! manifest  images/IMAGE/VERSION.json (+ .sig with a keyring) -> POOL/tmp/sync/,
//!           and VERSION.deltas/OLD.json (+ .sig) for versions the pool holds
//! plan      per missing package: a static delta whose basis the pool holds,
//!           else (rsync sources) live rsync with a basis seeded by reflink
//!           from the closest older package of the same name, else whole
//! fetch     one `rsync --files-from` per batch (or HTTP GETs) into POOL/tmp/sync/
//! rebuild   through extent_writer: pool content cloned, new bytes written per
//!           file, every digest checked, SHA256 against the manifest, rename
//! record    POOL/images/IMAGE/VERSION.json once every package is in
//! compose   optionally, incrementally from the newest view of the image
//! ```
//!
//! Packages enter `packages/` one by one, each complete and verified, so an
//! interrupted sync resumes where it stopped; `tmp/` is garbage after a crash.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::dist::delta;
use crate::dist::publish::{self, ImageIndex, Manifest, ManifestPackage};
use crate::store::clone::Cloner;
use crate::store::pool::Pool;
use crate::store::writer::{ContentStore, Expect};
use crate::util::report::Reporter;

/// Options of `reimage sync`.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `rsync://host[:port]/module[/path]`, `host:path`, a local path, or `http(s)://...`.
    pub source: String,
    pub image: String,
    /// Default: the newest published, by rpm's version comparison.
    pub version: Option<String>,
    /// Compose this view once synced.
    pub compose: Option<String>,
    /// Require the manifest to be signed by a key in this file.
    pub keyring: Option<PathBuf>,
    /// Use static deltas where the pool holds their basis.
    pub deltas: bool,
    pub wait: bool,
    /// Accept a version older than the newest one the pool already holds
    /// (the version index is unsigned: a mirror could replay an old one).
    pub allow_downgrade: bool,
}

/// How a package got into the pool.
#[derive(Debug, Clone, Serialize)]
pub struct PackageSync {
    pub file: String,
    /// "delta", "rsync" (seeded from `basis`), "whole".
    pub how: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    pub written_bytes: u64,
    pub cloned_bytes: u64,
}

/// What sync did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SyncReport {
    pub source: String,
    pub transport: &'static str,
    pub image: String,
    pub version: String,
    /// The newest version of the image the pool had before, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    pub packages: usize,
    pub present: usize,
    pub fetched: Vec<PackageSync>,
    pub by_delta: usize,
    pub by_rsync: usize,
    pub whole: usize,
    /// Against `previous`, by package name.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Everything that crossed the wire (rsync's sent + received, or HTTP bodies).
    pub wire_bytes: u64,
    pub manifest_bytes: u64,
    pub delta_bytes: u64,
    pub package_wire_bytes: u64,
    /// The `.rpm` size of the packages fetched: what dnf would have downloaded.
    pub rpm_bytes: u64,
    /// Size of the extent packages fetched.
    pub package_bytes: u64,
    pub written_bytes: u64,
    pub cloned_bytes: u64,
    /// Deltas that could not be used (then the package came another way).
    pub refused_deltas: Vec<String>,
    pub signature_checked: bool,
    /// Packages that could not be synced, with the reason (then the sync
    /// fails with [`Incomplete`], whose report this is).
    pub failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<crate::views::compose::ComposeReport>,
    pub seconds: f64,
}

/// A sync that got some packages but not all: the error carries the report
/// (the others are in the pool; the next sync resumes).
#[derive(Debug)]
pub struct Incomplete(pub SyncReport);

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.0;
        write!(
            f,
            "{} of {} package(s) could not be synced (the others are in the pool; run sync again to resume):\n  {}",
            r.failures.len(),
            r.packages - r.present,
            r.failures.join("\n  ")
        )
    }
}

impl std::error::Error for Incomplete {}

// ---------------------------------------------------------------------------
// Transports

/// Where packages come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Anything rsync reaches: `rsync://...`, `host:path`, a local path.
    /// Always ends with '/'.
    Rsync(String),
    /// A static mirror; no trailing '/'.
    Http(String),
    /// An offline bundle (`reimage bundle`), already checked whole.
    Bundle(std::sync::Arc<crate::dist::bundle::Reader>),
}

impl Source {
    pub fn parse(s: &str) -> Result<Source> {
        if s.is_empty() {
            bail!("the source is empty");
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Source::Http(s.trim_end_matches('/').to_string()));
        }
        if s.starts_with('-') {
            bail!("source {s:?} looks like an option");
        }
        let mut r = s.to_string();
        if !r.starts_with("rsync://") && !is_ssh(&r) {
            // A local repository: say so plainly rather than through rsync.
            let p = Path::new(s);
            if p.is_file() {
                let b = crate::dist::bundle::Reader::open(p)?;
                return Ok(Source::Bundle(std::sync::Arc::new(b)));
            }
            if !p.is_dir() {
                bail!("source {s} is not a directory (a repository made by reimage publish, an rsync:// URL, host:path, an http(s):// mirror, or a file made by reimage bundle)");
            }
        }
        if !r.ends_with('/') {
            r.push('/');
        }
        Ok(Source::Rsync(r))
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Rsync(s) if s.starts_with("rsync://") => "rsync",
            Source::Rsync(s) if is_ssh(s) => "rsync-ssh",
            Source::Rsync(_) => "rsync-local",
            Source::Http(_) => "http",
            Source::Bundle(_) => "bundle",
        }
    }

    fn live(&self) -> bool {
        matches!(self, Source::Rsync(_))
    }
}

/// `host:path` (rsync over ssh): a colon before any slash.
fn is_ssh(s: &str) -> bool {
    match (s.find(':'), s.find('/')) {
        (Some(c), Some(sl)) => c < sl && !s.starts_with("rsync://"),
        (Some(_), None) => true,
        _ => false,
    }
}

/// Fetches `rels` (paths relative to the source root) into `dest` (keeping
/// the relative paths). A file already at its place in `dest` is the basis
/// rsync transfers against. Returns the bytes on the wire and the files that
/// did not arrive.
fn fetch(
    src: &Source,
    rels: &[String],
    dest: &Path,
    limits: &HashMap<String, u64>,
    resume: Option<&Resume>,
) -> Result<(u64, Vec<String>)> {
    if rels.is_empty() {
        return Ok((0, Vec::new()));
    }
    for r in rels {
        if r.starts_with('/') || r.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            bail!("refusing to fetch {r:?}");
        }
    }
    std::fs::create_dir_all(dest)?;
    let wire = match src {
        Source::Rsync(base) => rsync(base, rels, dest)?,
        Source::Http(base) => http_fetch_all(base, rels, dest, limits, resume)?,
        Source::Bundle(b) => b.extract(rels, dest)?,
    };
    let missing = rels
        .iter()
        .filter(|r| !std::fs::symlink_metadata(dest.join(r)).is_ok_and(|m| m.file_type().is_file()))
        .cloned()
        .collect();
    Ok((wire, missing))
}

/// HTTP downloads that survive an interruption: files whose SHA256 the
/// manifest gives are downloaded into `POOL/partial/SHA256` (outside `tmp/`,
/// which every writer empties), continued with a Range request, and used
/// only once their SHA256 and size match.
pub struct Resume {
    pub dir: PathBuf,
    /// Relative path -> SHA256 (hex) from the manifest.
    pub sha256: HashMap<String, String>,
}

/// HTTP GETs at once (a mirror or CDN serves many; one client stays polite).
pub const HTTP_PARALLEL: usize = 4;

/// GETs `rels` from `base`, [`HTTP_PARALLEL`] at a time.
fn http_fetch_all(
    base: &str,
    rels: &[String],
    dest: &Path,
    limits: &HashMap<String, u64>,
    resume: Option<&Resume>,
) -> Result<u64> {
    let got = crate::util::parallel::map(HTTP_PARALLEL, rels, |r| {
        let limit = limits.get(r).copied().unwrap_or(64 << 20);
        let url = format!("{base}/{r}");
        let sha = resume.and_then(|x| x.sha256.get(r).map(|h| (&x.dir, h)));
        let got = match sha {
            Some((dir, h)) => http_get_resumable(&url, &dir.join(h), h, limit, &dest.join(r)),
            None => http_get(&url, &dest.join(r), limit),
        };
        if let Ok(None) = &got {
            crate::util::runner::log::debug(&format!("GET {url}: not found"));
        }
        got
    });
    let mut total = 0;
    let mut failed = Vec::new();
    for g in got {
        match g {
            Ok(b) => total += b.unwrap_or(0),
            // One file that fails is a missing file (a delta then falls
            // back, a package is reported); every file failing is a mirror
            // that is not there.
            Err(e) => {
                crate::util::runner::log::warn(&format!("{e:#}"));
                failed.push(e);
            }
        }
    }
    if failed.len() == rels.len() {
        return Err(failed.remove(0));
    }
    Ok(total)
}

/// GETs `url` (whose SHA256 is `sha` and size `size`) through the partial
/// file `part`: what is there is continued with `Range: bytes=N-`; a 200
/// reply (a server that ignores Range) restarts the file. The finished file
/// is checked against `sha` and `size`, then renamed to `dest`; a mismatch
/// removes it (the next try starts over). Returns the bytes received.
fn http_get_resumable(
    url: &str,
    part: &Path,
    sha: &str,
    size: u64,
    dest: &Path,
) -> Result<Option<u64>> {
    use std::io::{Read, Write};
    std::fs::create_dir_all(part.parent().unwrap())
        .with_context(|| format!("cannot create {}", part.parent().unwrap().display()))?;
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut n = 0u64;
    if have < size {
        let mut req = ureq::get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::StatusCode(404 | 410)) => return Ok(None),
            Err(e) => bail!("GET {url}: {e}"),
        };
        let start = match resp.status().as_u16() {
            206 => {
                let cr = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let from = cr
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|x| x.parse::<u64>().ok());
                if from != Some(have) {
                    bail!("GET {url}: asked for bytes {have}- and got {cr:?}");
                }
                have
            }
            _ => 0,
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(start == 0)
            .append(start > 0)
            .open(part)
            .with_context(|| format!("cannot open {}", part.display()))?;
        let mut body = resp.into_body();
        let mut r = body.as_reader().take(size - start + 1);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = r.read(&mut buf).with_context(|| format!("GET {url}"))?;
            if k == 0 {
                break;
            }
            f.write_all(&buf[..k])
                .with_context(|| format!("cannot write {}", part.display()))?;
            n += k as u64;
        }
        f.sync_all()?;
    }
    let len = std::fs::metadata(part)?.len();
    let ok = len == size && hex::encode(publish::sha256_file(part)?) == sha;
    if !ok {
        let _ = std::fs::remove_file(part);
        bail!("GET {url}: the file received ({len} bytes) does not match the manifest's SHA256 and size ({size} bytes)");
    }
    std::fs::create_dir_all(dest.parent().unwrap())?;
    std::fs::rename(part, dest)
        .with_context(|| format!("cannot move {} to {}", part.display(), dest.display()))?;
    Ok(Some(n))
}

/// What rsync's exit codes mean (rsync(1), EXIT VALUES).
fn rsync_exit_meaning(code: i32) -> &'static str {
    match code {
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files",
        5 => "error starting the client-server protocol (module missing or refused?)",
        10 => "error in socket I/O (connection refused or lost?)",
        11 => "error in file I/O",
        12 => "error in the rsync protocol data stream",
        20 => "interrupted",
        23 => "partial transfer (files missing on the server?)",
        24 => "some files vanished on the server",
        30 => "timeout",
        35 => "timeout waiting for the daemon",
        255 => "the remote shell (ssh) failed",
        _ => "rsync failed",
    }
}

/// Runs the real rsync: explicit file names, no recursion, no symlinks, no
/// quick check (seeded basis files must never pass as up to date), zstd on
/// the wire; in a wrapper that kills it when reimage dies.
fn rsync(base: &str, rels: &[String], dest: &Path) -> Result<u64> {
    let list = tempfile::NamedTempFile::new_in(dest)?;
    std::fs::write(list.path(), rels.join("\n") + "\n")?;
    // When reimage dies (even by SIGKILL) the kernel sends rsync SIGTERM
    // (parent-death signal), on which rsync stops the receiver it forked
    // and exits. SIGKILL there left that receiver downloading from a daemon.
    // rsync stays in reimage's process group: ssh and daemon password
    // prompts reach the terminal, Ctrl-C reaches rsync.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "TERM", "--", "rsync"]);
    cmd.arg(format!("--files-from={}", list.path().display()));
    cmd.args([
        "--no-recursive",
        "--no-links",
        "--no-perms",
        "--no-owner",
        "--no-group",
        "--no-devices",
        "--no-specials",
        "--ignore-times",
        "--no-whole-file",
        "--compress",
        "--compress-choice=zstd",
        "--stats",
        "--no-motd",
        "--timeout=600",
    ]);
    if base.starts_with("rsync://") {
        // A daemon connection: without TCP_NODELAY each transfer stalls
        // twice on Nagle's algorithm against delayed ACKs (~40 ms each; a
        // sync makes three). The daemon side: `socket options` in
        // examples/rsyncd.conf.
        cmd.arg("--sockopts=TCP_NODELAY");
    }
    cmd.arg(base).arg(dest);
    if let Ok(extra) = std::env::var("REIMAGE_RSYNC_ARGS") {
        // For tests and debugging only (e.g. --bwlimit).
        cmd.args(extra.split_whitespace());
    }
    let out = match crate::util::runner::run(&mut cmd) {
        Ok(out) => out,
        Err(e) => {
            let msg = format!("{e:#}");
            let code = msg
                .split("exit status: ")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse::<i32>().ok());
            match code {
                // Missing files are found and reported by the caller.
                Some(23) | Some(24) => {
                    crate::util::runner::log::debug(&msg);
                    return Ok(0);
                }
                Some(c) => {
                    return Err(e.context(format!(
                        "rsync from {base}: {} (exit {c})",
                        rsync_exit_meaning(c)
                    )))
                }
                None => return Err(e.context(format!("rsync from {base}"))),
            }
        }
    };
    Ok(parse_stats(&out))
}

/// Bytes sent + received from rsync's `--stats`.
fn parse_stats(out: &str) -> u64 {
    let num = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| {
                v.split_whitespace()
                    .next()
                    .unwrap_or("0")
                    .replace([',', '.'], "")
                    .parse()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    num("Total bytes sent:") + num("Total bytes received:")
}

/// GETs `url` into `dest` (at most `limit` bytes); returns the body size,
/// or None when the server says the file is not there (404, 410). Anything
/// else (no connection, a name that does not resolve, a server error) is an
/// error: a dead mirror must not read as a missing file.
fn http_get(url: &str, dest: &Path, limit: u64) -> Result<Option<u64>> {
    use std::io::{Read, Write};
    let resp = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(404 | 410)) => return Ok(None),
        Err(e) => bail!("GET {url}: {e}"),
    };
    let mut body = resp.into_body();
    let mut r = body.as_reader().take(limit + 1);
    std::fs::create_dir_all(dest.parent().unwrap())?;
    let mut f = std::fs::File::create(dest)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    let got = (|| -> Result<()> {
        loop {
            let k = r.read(&mut buf).with_context(|| format!("GET {url}"))?;
            if k == 0 {
                break;
            }
            f.write_all(&buf[..k])?;
            n += k as u64;
        }
        if n > limit {
            bail!("GET {url}: more than the {limit} bytes expected");
        }
        Ok(())
    })();
    if let Err(e) = got {
        // Nothing half-downloaded stays to be taken for the file.
        let _ = std::fs::remove_file(dest);
        return Err(e);
    }
    Ok(Some(n))
}

// ---------------------------------------------------------------------------
// Manifest

/// Verifies a detached signature of `data` with the keys in `keyring`.
fn check_signature(keyring: &Path, data: &[u8], sig: &[u8]) -> Result<()> {
    let keyring = crate::rpm::keyring::Keyring::load(keyring)?;
    let Err(last) = keyring.verify(data, sig) else {
        return Ok(());
    };
    // The OpenPGP library's own words (e.g. a failed internal assertion on
    // the hash prefix) help a developer, not a user: -v shows them.
    crate::util::runner::log::debug(&format!("signature check: {last}"));
    let keyring = keyring.path();
    bail!(
        "the signature does not verify with a key in {}: the file was changed \
         after it was signed, or it was signed by another key",
        keyring.display()
    )
}

/// The versions of `image` at the source, newest last.
fn remote_versions(src: &Source, image: &str, dir: &Path) -> Result<(Vec<String>, u64, Later)> {
    let rel = format!("images/{image}/index.json");
    let limits = HashMap::from([(rel.clone(), 16u64 << 20)]);
    let (wire, missing) = fetch(src, std::slice::from_ref(&rel), dir, &limits, None)?;
    if !missing.is_empty() {
        bail!("the source has no image {image} (no {rel})");
    }
    let idx: ImageIndex = serde_json::from_slice(&std::fs::read(dir.join(&rel))?)
        .with_context(|| format!("{rel} is not valid"))?;
    if idx.image != image {
        bail!(
            "{rel} is the index of image {:?}, not of {image}",
            idx.image
        );
    }
    let mut v: Vec<String> = idx
        .versions
        .into_iter()
        .filter(|v| publish::check_name("version", v).is_ok())
        .collect();
    publish::sort_versions(&mut v);
    Ok((v, wire, idx.later_deltas))
}

/// What an image index says about later delta files (`None`: nothing).
type Later = Option<std::collections::BTreeMap<String, Vec<String>>>;

// ---------------------------------------------------------------------------
// Sync

fn expect_of(p: &ManifestPackage) -> Result<Expect> {
    Ok(Expect {
        sha256: p.sha256_bytes()?,
        size: p.size,
        header_sha256: p.header_sha256_bytes()?,
    })
}

/// The closest older package of the same name the pool holds (rsync's
/// basis), else the oldest newer one.
fn seed_for(
    pool: &Pool,
    p: &ManifestPackage,
    pool_pkgs: &[(String, String, String)],
) -> Option<String> {
    use sysimage::vercmp::rpmvercmp;
    let name = p.name();
    let want = p.nevra.get(name.len() + 1..).unwrap_or("");
    let cands: Vec<&(String, String, String)> = pool_pkgs
        .iter()
        .filter(|(file, n, _)| n == name && file != &p.file)
        .filter(|(file, _, _)| pool.packages_dir().join(file).is_file())
        .collect();
    let older = cands
        .iter()
        .filter(|c| rpmvercmp(&c.2, want).is_lt())
        .max_by(|a, b| rpmvercmp(&a.2, &b.2));
    let newer = || cands.iter().min_by(|a, b| rpmvercmp(&a.2, &b.2));
    older.or_else(newer).map(|c| c.0.clone())
}

/// Splits packages into batches of about `limit` bytes (at least one each).
fn batches<'m>(pkgs: &[&'m ManifestPackage], limit: u64) -> Vec<Vec<&'m ManifestPackage>> {
    let mut out: Vec<Vec<&ManifestPackage>> = Vec::new();
    let mut size = 0;
    for p in pkgs {
        if out.is_empty() || (size + p.size > limit && !out.last().unwrap().is_empty()) {
            out.push(Vec::new());
            size = 0;
        }
        size += p.size;
        out.last_mut().unwrap().push(p);
    }
    out
}

/// (file, name, evr) of every package in the pool (from their headers).
fn pool_packages(pool: &Pool) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(pool.packages_dir()) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        let mut r = std::io::BufReader::new(f);
        let Ok(prefix) = crate::rpm::stream::read_prefix(&mut r, &e.path()) else {
            continue;
        };
        let Ok((nevra, _)) = crate::rpm::trust::identity(&prefix.main) else {
            continue;
        };
        let name = prefix
            .main
            .utf8_string(sysimage::header::tag::NAME)
            .ok()
            .flatten()
            .unwrap_or("")
            .to_string();
        let evr = nevra.get(name.len() + 1..).unwrap_or("").to_string();
        out.push((e.file_name().to_string_lossy().into_owned(), name, evr));
    }
    out
}

/// Syncs an image version into the pool.
pub fn sync(pool: &Pool, opts: &SyncOptions, reporter: &dyn Reporter) -> Result<SyncReport> {
    let started = std::time::Instant::now();
    let phase = |what: &str| {
        crate::util::runner::log::debug(&format!(
            "sync: {what} at {:.3}s",
            started.elapsed().as_secs_f64()
        ))
    };
    publish::check_name("image", &opts.image)?;
    if let Some(v) = &opts.version {
        publish::check_name("version", v)?;
    }
    let src = Source::parse(&opts.source)?;
    if let Source::Bundle(b) = &src {
        let t = &b.toc;
        if t.image != opts.image || opts.version.as_ref().is_some_and(|v| v != &t.version) {
            bail!(
                "{} is a bundle of {} {}, not of {}",
                b.path.display(),
                t.image,
                t.version,
                match &opts.version {
                    Some(v) => format!("{} {v}", opts.image),
                    None => opts.image.clone(),
                }
            );
        }
    }
    let mut report = SyncReport {
        source: opts.source.clone(),
        transport: src.name(),
        image: opts.image.clone(),
        ..Default::default()
    };
    if let Some(name) = &opts.compose {
        crate::views::compose::check_view_name(name)?;
    }
    let lock = pool.lock(opts.wait)?;
    if let Some(name) = &opts.compose {
        // Before anything is fetched: the view could not be composed.
        let dest = pool.views_dir().join(name);
        if dest.symlink_metadata().is_ok() {
            bail!(
                "view {name} already exists at {} (choose another --compose name, or remove it with reimage rm-view {name})",
                dest.display()
            );
        }
    }
    pool.clean_tmp()?;
    std::fs::create_dir_all(pool.packages_dir())?;
    let work = pool.tmp_dir().join("sync");
    std::fs::create_dir_all(&work)?;

    // 1. The manifest, and what changed since the version synced before.
    let (version, rel, manifest_bytes, mut manifest) =
        fetch_manifest(pool, &src, opts, &work, &mut report)?;
    refuse_downgrade(pool, opts, &version)?;
    if let Source::Bundle(b) = &src {
        // Only what the bundle carries can be used.
        for p in &mut manifest.packages {
            p.deltas.retain(|d| b.contains(&d.path));
        }
    }
    compare_previous(pool, opts, &version, &manifest, &mut report)?;
    phase("fetched the manifest");

    // 2. What is missing.
    let missing_pkgs = missing_packages(pool, &manifest, &rel, &mut report)?;
    if let Source::Bundle(b) = &src {
        check_bundle_base(pool, b, &missing_pkgs)?;
    }
    let mut run = Run {
        pool,
        src: &src,
        work: work.clone(),
        store: ContentStore::load(&pool.packages_dir())?,
        cloner: Cloner::new(pool.config.allow_copy),
        reporter,
        failures: Vec::new(),
    };
    phase("found what is missing");
    reporter.start("syncing", missing_pkgs.len() as u64);

    // 3. Deltas, then 4. packages (live rsync against a seeded basis, or whole).
    let rest = run.by_delta(opts, missing_pkgs, &mut report)?;
    phase("applied the deltas");
    run.packages(rest, &mut report)?;
    reporter.finish();
    pool.syncfs()?;
    phase("fetched the packages, synced");
    if !run.failures.is_empty() {
        report.failures = run.failures;
        report.seconds = started.elapsed().as_secs_f64();
        return Err(anyhow::Error::new(Incomplete(report)));
    }

    // 5. Record the manifest (and its signature) once everything is in.
    let mpath = publish::manifest_path(&pool.root, &opts.image, &version);
    std::fs::create_dir_all(mpath.parent().unwrap())?;
    crate::util::atomic::write_atomic(&mpath, &manifest_bytes)?;
    let sig = work.join(format!("{rel}.sig"));
    if sig.is_file() {
        crate::util::atomic::write_atomic(&publish::sig_path(&mpath), &std::fs::read(&sig)?)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    remove_own_partials(pool, &manifest);
    if !matches!(src, Source::Bundle(_)) {
        // (A bundle is a one-off: the next sync names its source.)
        record_source(pool, opts);
    }
    crate::util::failpoint::hit("sync.recorded");

    // 6. Compose, still holding the writer lock (no window for gc).
    if let Some(name) = &opts.compose {
        let from = newest_view_of(pool, &opts.image, name);
        let r = crate::views::compose::compose_locked(
            pool,
            &crate::views::compose::ComposeOptions {
                name: name.clone(),
                specs: manifest.packages.iter().map(|p| p.file.clone()).collect(),
                from,
                wait: opts.wait,
                image: Some((opts.image.clone(), version.clone())),
                ..Default::default()
            },
            reporter,
            &lock,
        )?;
        report.compose = Some(r);
    }
    drop(lock);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes the partial downloads (`POOL/partial/SHA256`) of the files this
/// manifest names, packages and deltas: each is now in the pool or no
/// longer needed. Partial files of other images' files stay: an interrupted
/// sync of another image resumes from them. No other sync writes partial/
/// meanwhile: every sync holds the pool's writer lock from before its first
/// fetch to after this (`Pool::lock` in [`sync`]), so syncs of one pool run
/// one after another.
fn remove_own_partials(pool: &Pool, manifest: &Manifest) {
    let dir = pool.root.join("partial");
    for p in &manifest.packages {
        let shas = std::iter::once(&p.sha256).chain(p.deltas.iter().map(|d| &d.sha256));
        for sha in shas {
            let _ = std::fs::remove_file(dir.join(sha));
        }
    }
    // Only once empty.
    let _ = std::fs::remove_dir(&dir);
}

/// Fetches the manifest of the version to sync (the newest the source
/// publishes unless one is given), checks it (signature with --keyring,
/// image, version) and adds the deltas published after it from the versions
/// the pool holds ([`later_deltas`]): manifest, signature and those files in
/// one round trip. Returns the version, the manifest's path in the source,
/// its bytes and itself.
fn fetch_manifest(
    pool: &Pool,
    src: &Source,
    opts: &SyncOptions,
    work: &Path,
    report: &mut SyncReport,
) -> Result<(String, String, Vec<u8>, Manifest)> {
    let (version, later) = match &opts.version {
        Some(v) => (v.clone(), None),
        None => {
            let (v, wire, later) = remote_versions(src, &opts.image, work)?;
            report.wire_bytes += wire;
            report.manifest_bytes += wire;
            let v = v
                .last()
                .cloned()
                .ok_or_else(|| anyhow!("the source publishes no version of {}", opts.image))?;
            (v, later)
        }
    };
    report.version = version.clone();
    let rel = format!("images/{}/{version}.json", opts.image);
    let mut rels = vec![rel.clone()];
    if opts.keyring.is_some() {
        rels.push(format!("{rel}.sig"));
    }
    let mut olds = later_delta_bases(pool, opts, &version)?;
    if let Some(listed) = &later {
        // The index lists them: ask only for those that exist.
        let have = listed.get(&version).map(Vec::as_slice).unwrap_or(&[]);
        olds.retain(|o| have.contains(o));
    }
    for old in &olds {
        let d = crate::dist::manifest::delta_file_rel(&opts.image, &version, old);
        if opts.keyring.is_some() {
            rels.push(format!("{d}.sig"));
        }
        rels.push(d);
    }
    let limits: HashMap<String, u64> = rels.iter().map(|r| (r.clone(), 64 << 20)).collect();
    let (wire, missing) = fetch(src, &rels, work, &limits, None)?;
    report.wire_bytes += wire;
    report.manifest_bytes += wire;
    if missing.contains(&rel) {
        bail!(
            "the source has no version {version} of {} (no {rel})",
            opts.image
        );
    }
    let manifest_bytes = std::fs::read(work.join(&rel))?;
    if let Some(k) = &opts.keyring {
        if missing.contains(&format!("{rel}.sig")) {
            bail!("the manifest {rel} is not signed (no {rel}.sig) and --keyring requires a signature");
        }
        let sig = std::fs::read(work.join(format!("{rel}.sig")))?;
        check_signature(k, &manifest_bytes, &sig).with_context(|| rel.clone())?;
        report.signature_checked = true;
    }
    let manifest = Manifest::parse(&manifest_bytes).with_context(|| rel.clone())?;
    if manifest.image != opts.image || manifest.version != version {
        bail!(
            "{rel} is the manifest of {} {}, not of {} {version}",
            manifest.image,
            manifest.version,
            opts.image
        );
    }
    report.packages = manifest.packages.len();
    crate::util::failpoint::hit("sync.manifest");
    let mut manifest = manifest;
    later_deltas(&olds, opts, work, &missing, &mut manifest)?;

    Ok((version, rel, manifest_bytes, manifest))
}

/// The versions whose later delta files a sync of `version` looks for: the
/// newest three the pool holds.
fn later_delta_bases(pool: &Pool, opts: &SyncOptions, version: &str) -> Result<Vec<String>> {
    let mut held = publish::versions(&pool.root, &opts.image)?;
    held.retain(|v| v != version);
    Ok(held.into_iter().rev().take(3).collect())
}

/// Deltas published after the manifest (`images/IMAGE/VERSION.deltas/OLD.json`,
/// docs/serving.md) from the versions `olds` the pool holds, fetched with the
/// manifest, checked like it (signature with --keyring, image, version,
/// base) and added to its packages. A missing file is no error (fewer
/// deltas); one that does not verify is.
fn later_deltas(
    olds: &[String],
    opts: &SyncOptions,
    work: &Path,
    missing: &[String],
    manifest: &mut Manifest,
) -> Result<()> {
    for old in olds {
        let rel = crate::dist::manifest::delta_file_rel(&opts.image, &manifest.version, old);
        if missing.contains(&rel) {
            continue;
        }
        let bytes = std::fs::read(work.join(&rel))?;
        if let Some(k) = &opts.keyring {
            let sig_rel = format!("{rel}.sig");
            if missing.contains(&sig_rel) {
                bail!("the delta file {rel} is not signed (no {sig_rel}) and --keyring requires a signature");
            }
            let sig = std::fs::read(work.join(&sig_rel))?;
            check_signature(k, &bytes, &sig).with_context(|| rel.clone())?;
        }
        crate::dist::manifest::DeltaFile::parse(&bytes, manifest, old)
            .with_context(|| rel.clone())?
            .merge_into(manifest);
    }
    Ok(())
}

/// Refuses a bundle made for another base before anything is written: every
/// package the pool lacks must be in the bundle whole, or have a delta in it
/// whose every basis the pool holds.
fn check_bundle_base(
    pool: &Pool,
    b: &crate::dist::bundle::Reader,
    missing: &[&ManifestPackage],
) -> Result<()> {
    let lacking: Vec<&str> = missing
        .iter()
        .filter(|p| {
            !b.contains(&format!("packages/{}", p.file))
                && !p.deltas.iter().any(|d| delta::applicable(pool, &d.needs))
        })
        .map(|p| p.file.as_str())
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    let held = publish::versions(&pool.root, &b.toc.image).unwrap_or_default();
    bail!(
        "{} is a bundle of {} {} for a machine at {}, but this pool {}: it lacks {} package(s) \
         the bundle does not carry ({}{}); nothing was written. Make a bundle --from a version \
         this pool holds, or one without --from",
        b.path.display(),
        b.toc.image,
        b.toc.version,
        b.toc
            .from
            .as_deref()
            .map(|f| format!("version {f}"))
            .unwrap_or_else(|| "no version".into()),
        if held.is_empty() {
            "holds no version of it".to_string()
        } else {
            format!("holds {}", held.join(", "))
        },
        lacking.len(),
        lacking
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if lacking.len() > 3 { ", ..." } else { "" }
    )
}

/// Refuses `version` when the pool already holds a newer version of the
/// image (unless `--allow-downgrade`): the version index is not signed, so a
/// mirror (or a cache) replaying an old one must not roll a machine back.
fn refuse_downgrade(pool: &Pool, opts: &SyncOptions, version: &str) -> Result<()> {
    if opts.allow_downgrade {
        return Ok(());
    }
    let held = publish::versions(&pool.root, &opts.image)?;
    if let Some(newest) = held.last() {
        if sysimage::vercmp::rpmvercmp(version, newest).is_lt() {
            bail!(
                "{} {version} is older than {newest}, which the pool already holds \
                 ({}): refusing to go back (a mirror may serve an old version index); \
                 give --allow-downgrade to sync it anyway",
                opts.image,
                publish::manifest_path(&pool.root, &opts.image, newest).display()
            );
        }
    }
    Ok(())
}

/// The previous version the pool synced, for the report.
fn compare_previous(
    pool: &Pool,
    opts: &SyncOptions,
    version: &str,
    manifest: &Manifest,
    report: &mut SyncReport,
) -> Result<()> {
    let previous = publish::versions(&pool.root, &opts.image)?
        .into_iter()
        .filter(|v| v != version)
        .filter_map(|v| {
            let m = std::fs::read(publish::manifest_path(&pool.root, &opts.image, &v)).ok()?;
            Some((v, Manifest::parse(&m).ok()?))
        })
        .next_back();
    if let Some((pv, pm)) = &previous {
        report.previous = Some(pv.clone());
        let old: BTreeMap<&str, &str> = pm
            .packages
            .iter()
            .map(|p| (p.name(), p.file.as_str()))
            .collect();
        let new: BTreeMap<&str, &str> = manifest
            .packages
            .iter()
            .map(|p| (p.name(), p.file.as_str()))
            .collect();
        for (n, f) in &new {
            match old.get(n) {
                None => report.added.push(f.to_string()),
                Some(o) if o != f => report.changed.push(f.to_string()),
                _ => {}
            }
        }
        for (n, f) in &old {
            if !new.contains_key(n) {
                report.removed.push(f.to_string());
            }
        }
    }

    Ok(())
}

/// The manifest's packages the pool lacks; a present one must be the same.
fn missing_packages<'m>(
    pool: &Pool,
    manifest: &'m Manifest,
    rel: &str,
    report: &mut SyncReport,
) -> Result<Vec<&'m ManifestPackage>> {
    let mut missing_pkgs: Vec<&ManifestPackage> = Vec::new();
    for p in &manifest.packages {
        let path = pool.packages_dir().join(&p.file);
        match std::fs::File::open(&path) {
            Ok(f) => {
                let (index, _) = crate::store::extent::Index::read(&f)
                    .with_context(|| format!("{} is damaged", path.display()))?;
                if hex::encode(index.header_sha256) != p.header_sha256 {
                    bail!(
                        "the pool holds a different {} (another main header) than {rel} names",
                        p.file
                    );
                }
                report.present += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing_pkgs.push(p),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        }
    }
    Ok(missing_pkgs)
}

/// One sync's fetching and building of packages.
struct Run<'a> {
    pool: &'a Pool,
    src: &'a Source,
    work: PathBuf,
    store: ContentStore,
    cloner: Cloner,
    reporter: &'a dyn Reporter,
    failures: Vec<String>,
}

impl Run<'_> {
    /// Partial downloads of these files live in `POOL/partial/`.
    fn resume(&self, files: impl Iterator<Item = (String, String)>) -> Resume {
        Resume {
            dir: self.pool.root.join("partial"),
            sha256: files.collect(),
        }
    }

    /// Builds what it can from static deltas; returns the packages left.
    fn by_delta<'m>(
        &mut self,
        opts: &SyncOptions,
        missing_pkgs: Vec<&'m ManifestPackage>,
        report: &mut SyncReport,
    ) -> Result<Vec<&'m ManifestPackage>> {
        let (pool, src, work, reporter) = (self.pool, self.src, self.work.clone(), self.reporter);
        let mut rest: Vec<&'m ManifestPackage> = Vec::new();
        let mut by_delta: Vec<(&'m ManifestPackage, &'m publish::DeltaRef)> = Vec::new();
        for p in missing_pkgs {
            let d = if opts.deltas {
                p.deltas.iter().find(|d| delta::applicable(pool, &d.needs))
            } else {
                None
            };
            match d {
                Some(d) => by_delta.push((p, d)),
                None => rest.push(p),
            }
        }
        if !by_delta.is_empty() {
            let rels: Vec<String> = by_delta.iter().map(|(_, d)| d.path.clone()).collect();
            let limits = by_delta
                .iter()
                .map(|(_, d)| (d.path.clone(), d.size))
                .collect();
            let resume = self.resume(
                by_delta
                    .iter()
                    .map(|(_, d)| (d.path.clone(), d.sha256.clone())),
            );
            let (wire, _) = fetch(src, &rels, &work, &limits, Some(&resume))?;
            crate::util::failpoint::hit("sync.fetched");
            report.wire_bytes += wire;
            report.delta_bytes += wire;
            let results = apply_deltas(pool, &self.store, &self.cloner, reporter, &work, &by_delta);
            let mut built_new: Vec<(PathBuf, crate::store::extent::Index)> = Vec::new();
            for ((p, d), res) in by_delta.into_iter().zip(results) {
                match res {
                    Ok((index, built)) => {
                        built_new.push((pool.packages_dir().join(&p.file), index));
                        report.by_delta += 1;
                        report.record(p, &built, "delta", None);
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        let msg = if msg.contains(&d.path) {
                            msg
                        } else {
                            format!("{}: {msg}", d.path)
                        };
                        crate::util::runner::log::warn(&format!(
                            "delta refused, fetching the package instead: {msg}"
                        ));
                        report.refused_deltas.push(msg);
                        rest.push(p);
                    }
                }
            }
            share_within_update(&built_new);
            for (path, index) in &built_new {
                self.store.add(path, index);
            }
        }

        Ok(rest)
    }

    /// Fetches whole packages (live rsync: against a seeded basis).
    fn packages(&mut self, rest: Vec<&ManifestPackage>, report: &mut SyncReport) -> Result<()> {
        let (pool, src, work, reporter) = (self.pool, self.src, self.work.clone(), self.reporter);
        if !rest.is_empty() {
            let pool_pkgs = if src.live() {
                pool_packages(pool)
            } else {
                Vec::new()
            };
            let dl = work.join("dl");
            // Batches of about 64 MiB: what arrived and was verified stays when
            // a sync is interrupted.
            for batch in batches(&rest, 64 << 20) {
                let mut seeds: HashMap<String, String> = HashMap::new();
                for p in &batch {
                    let rel = format!("packages/{}", p.file);
                    let at = dl.join(&rel);
                    std::fs::create_dir_all(at.parent().unwrap())?;
                    if let Some(seed) = src.live().then(|| seed_for(pool, p, &pool_pkgs)).flatten()
                    {
                        let from = std::fs::File::open(pool.packages_dir().join(&seed))?;
                        let to = std::fs::File::create(&at)?;
                        if crate::sys::clone_file(&from, &to).is_err() {
                            drop(to);
                            std::fs::copy(pool.packages_dir().join(&seed), &at)?;
                        }
                        seeds.insert(p.file.clone(), seed);
                    }
                }
                let rels: Vec<String> = batch
                    .iter()
                    .map(|p| format!("packages/{}", p.file))
                    .collect();
                let limits = batch
                    .iter()
                    .map(|p| (format!("packages/{}", p.file), p.size))
                    .collect();
                let resume = self.resume(
                    batch
                        .iter()
                        .map(|p| (format!("packages/{}", p.file), p.sha256.clone())),
                );
                let (wire, missing) = fetch(src, &rels, &dl, &limits, Some(&resume))?;
                crate::util::failpoint::hit("sync.fetched");
                report.wire_bytes += wire;
                report.package_wire_bytes += wire;
                for p in batch.iter().copied() {
                    let rel = format!("packages/{}", p.file);
                    if missing.contains(&rel) {
                        self.failures.push(format!(
                            "{}: the source did not send it (is it missing on the server?)",
                            p.file
                        ));
                        continue;
                    }
                    let at = dl.join(&rel);
                    let dest = pool.packages_dir().join(&p.file);
                    let res = expect_of(p).and_then(|e| {
                        crate::store::writer::rebuild_from_package(
                            &at,
                            &e,
                            &self.store,
                            &pool.tmp_dir(),
                            &self.cloner,
                            &dest,
                        )
                    });
                    let _ = std::fs::remove_file(&at);
                    match res {
                        Ok((index, built)) => {
                            self.store.add(&dest, &index);
                            let how = if src.live() {
                                report.by_rsync += 1;
                                "rsync"
                            } else {
                                report.whole += 1;
                                "whole"
                            };
                            report.record(p, &built, how, seeds.get(&p.file).cloned());
                            reporter.advance(1);
                        }
                        Err(e) => self.failures.push(format!("{}: refused: {e:#}", p.file)),
                    }
                }
            }
        }
        Ok(())
    }
}

impl SyncReport {
    /// Counts a package that arrived and was built.
    fn record(
        &mut self,
        p: &ManifestPackage,
        built: &crate::store::writer::Built,
        how: &'static str,
        basis: Option<String>,
    ) {
        self.rpm_bytes += p.rpm_size;
        self.package_bytes += p.size;
        self.written_bytes += built.written;
        self.cloned_bytes += built.cloned;
        self.fetched.push(PackageSync {
            file: p.file.clone(),
            how,
            basis,
            written_bytes: built.written,
            cloned_bytes: built.cloned,
        });
    }
}

/// The view composed from the newest version of `image`, if any.
fn newest_view_of(pool: &Pool, image: &str, except: &str) -> Option<String> {
    let mut best: Option<(String, String)> = None;
    for e in std::fs::read_dir(pool.views_dir()).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == except {
            continue;
        }
        let Ok(Some(meta)) = sysimage::meta::ViewMeta::read(&e.path()) else {
            continue;
        };
        if meta.image.as_deref() != Some(image) {
            continue;
        }
        let v = meta.version.unwrap_or_default();
        if best
            .as_ref()
            .is_none_or(|(bv, _)| sysimage::vercmp::rpmvercmp(&v, bv).is_gt())
        {
            best = Some((v, name));
        }
    }
    best.map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert!(
            matches!(Source::parse("http://x/repo/").unwrap(), Source::Http(s) if s == "http://x/repo")
        );
        assert_eq!(Source::parse("rsync://h:873/m").unwrap().name(), "rsync");
        assert_eq!(Source::parse("host:/srv/repo").unwrap().name(), "rsync-ssh");
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("a:b");
        std::fs::create_dir(&local).unwrap();
        assert_eq!(
            Source::parse(local.to_str().unwrap()).unwrap().name(),
            "rsync-local"
        );
        // A local path that does not exist is said plainly, not by rsync.
        let err = Source::parse("/nonexistent/repo").unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
        assert!(Source::parse("--rsh=evil").is_err());
    }

    #[test]
    fn stats() {
        let out = "Number of files: 1\nTotal bytes sent: 1,234\nTotal bytes received: 56\n";
        assert_eq!(parse_stats(out), 1290);
    }
}

// ---------------------------------------------------------------------------
// What `upgrade` follows, and `upgrade --check`

/// Where an image was last synced from (`POOL/index/sources/IMAGE.json`):
/// what `reimage upgrade` follows on a system installed from packages.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SourceRecord {
    pub source: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
}

fn source_record_path(pool: &Pool, image: &str) -> PathBuf {
    pool.root
        .join("index")
        .join("sources")
        .join(format!("{image}.json"))
}

/// What building one package from its delta gave.
type Applied = Result<(crate::store::extent::Index, crate::store::writer::Built)>;
/// Builds the packages of `by_delta` from their fetched deltas, on up to
/// four threads, largest delta first; the results in `by_delta`'s order.
/// Each is checked against its manifest entry (SHA256 and size of the delta,
/// then of the package built) by [`delta::apply`]; once all are built, one
/// `syncfs` makes them durable and each is renamed into `packages/`.
/// Content new to the pool that two packages of this update share is
/// written by each and shared afterwards ([`share_within_update`]).
fn apply_deltas(
    pool: &Pool,
    store: &ContentStore,
    cloner: &Cloner,
    reporter: &dyn Reporter,
    work: &Path,
    by_delta: &[(&ManifestPackage, &publish::DeltaRef)],
) -> Vec<Applied> {
    type Built = Result<crate::store::writer::Pending>;
    let apply_one = |p: &ManifestPackage, d: &publish::DeltaRef| -> Built {
        let dpath = work.join(&d.path);
        let res = (|| -> Built {
            // Read once: checked against the manifest, then parsed.
            let bytes = std::fs::read(&dpath)
                .with_context(|| format!("the source did not send {}", d.path))?;
            let sha = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
            if bytes.len() as u64 != d.size || hex::encode(sha) != d.sha256 {
                bail!("{} does not match the manifest (SHA256 or size)", d.path);
            }
            let delta = delta::Delta::parse(bytes)?;
            let dest = pool.packages_dir().join(&p.file);
            let t = std::time::Instant::now();
            let built = delta::apply(&delta, pool, store, &expect_of(p)?, cloner, &dest);
            crate::util::runner::log::debug(&format!(
                "sync: built {} from its delta in {:.3}s",
                p.file,
                t.elapsed().as_secs_f64()
            ));
            built
        })();
        let _ = std::fs::remove_file(&dpath);
        reporter.advance(1);
        res
    };
    // Largest delta first; the results back in by_delta's order.
    let mut order: Vec<usize> = (0..by_delta.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(by_delta[i].1.size));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let done = crate::util::parallel::map(threads, &order, |&i| {
        (i, apply_one(by_delta[i].0, by_delta[i].1))
    });
    let mut built: Vec<Option<Built>> = by_delta.iter().map(|_| None).collect();
    for (i, r) in done {
        built[i] = Some(r);
    }
    let built: Vec<Built> = built
        .into_iter()
        .map(|b| b.unwrap_or_else(|| Err(anyhow!("the delta was not applied"))))
        .collect();
    // Durable all at once, then into packages/.
    let t = std::time::Instant::now();
    let synced = if built.iter().any(|b| b.is_ok()) {
        pool.syncfs()
            .map(|()| crate::util::failpoint::hit("sync.synced"))
            .map_err(|e| format!("{e:#}"))
    } else {
        Ok(())
    };
    crate::util::runner::log::debug(&format!(
        "sync: the built packages durable in {:.3}s",
        t.elapsed().as_secs_f64()
    ));
    built
        .into_iter()
        .map(|b| match (&synced, b) {
            (Ok(()), Ok(pending)) => pending.persist(),
            (Err(e), Ok(_)) => Err(anyhow!("{e}")),
            (_, Err(e)) => Err(e),
        })
        .collect()
}

/// Shares the content that packages built by one update hold in common
/// (each wrote its own copy when they were built side by side): every later
/// copy is deduplicated against the first (FIDEDUPERANGE, which compares
/// the bytes under lock). Only storage changes, never a byte; a failure
/// leaves the copies as they are.
fn share_within_update(built: &[(PathBuf, crate::store::extent::Index)]) {
    use crate::store::extent::{align_up, FLAG_HARDLINK_ALIAS};
    let mut first: HashMap<[u8; 32], (usize, u64, u64)> = HashMap::new();
    // (source package, offset), (copy's package, offset), aligned length.
    type Place = (usize, u64);
    let mut pairs: Vec<(Place, Place, u64)> = Vec::new();
    for (k, (_, index)) in built.iter().enumerate() {
        for e in &index.entries {
            if e.length == 0 || e.flags & FLAG_HARDLINK_ALIAS != 0 {
                continue;
            }
            match first.get(&e.blake3) {
                Some(&(pk, off, len)) if pk != k && len == e.length => {
                    pairs.push(((pk, off), (k, e.offset), align_up(e.length)));
                }
                Some(_) => {}
                None => {
                    first.insert(e.blake3, (k, e.offset, e.length));
                }
            }
        }
    }
    if pairs.is_empty() {
        return;
    }
    let files: Vec<Option<std::fs::File>> = built
        .iter()
        .map(|(p, _)| std::fs::File::open(p).ok())
        .collect();
    let mut shared = 0u64;
    for ((sk, soff), (dk, doff), len) in pairs {
        let (Some(src), Some(dst)) = (&files[sk], &files[dk]) else {
            continue;
        };
        match crate::sys::dedupe_range(src, soff, len, dst, doff) {
            Ok(crate::sys::DedupeOutcome::Deduped(n)) => shared += n,
            Ok(crate::sys::DedupeOutcome::Differs { deduped }) => shared += deduped,
            Err(e) => crate::util::runner::log::debug(&format!(
                "sync: not shared ({}): {e}",
                built[dk].0.display()
            )),
        }
    }
    crate::util::runner::log::debug(&format!(
        "sync: {shared} bytes shared between the packages of this update"
    ));
}

/// Remembers where `opts.image` was synced from (best effort: derived state).
fn record_source(pool: &Pool, opts: &SyncOptions) {
    let r = SourceRecord {
        source: opts.source.clone(),
        image: opts.image.clone(),
        keyring: opts.keyring.clone(),
    };
    let p = source_record_path(pool, &opts.image);
    let _ = std::fs::create_dir_all(p.parent().unwrap());
    if let Err(e) = crate::util::atomic::write_atomic(
        &p,
        serde_json::to_string_pretty(&r)
            .unwrap_or_default()
            .as_bytes(),
    ) {
        crate::util::runner::log::warn(&format!(
            "cannot record the source of {}: {e:#}",
            opts.image
        ));
    }
}

/// Where `image` was last synced from into this pool, if it was.
pub fn recorded_source(pool: &Pool, image: &str) -> Result<Option<SourceRecord>> {
    let p = source_record_path(pool, image);
    match std::fs::read(&p) {
        Ok(b) => {
            Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("{} is not valid", p.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

/// What a sync of `opts` would do, without changing the pool.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SyncCheck {
    pub source: String,
    pub image: String,
    pub version: String,
    pub signature_checked: bool,
    pub packages: usize,
    pub present: usize,
    /// The packages to fetch (file names), and how many of them by delta.
    pub fetch: Vec<String>,
    pub by_delta: usize,
    /// Bytes to fetch: the deltas' sizes, and whole extent packages for
    /// the rest (an upper bound: live rsync sends less).
    pub fetch_bytes: u64,
    /// The `.rpm` size of those packages: what dnf would download.
    pub rpm_bytes: u64,
    /// The manifest (and version index) fetched to find out.
    pub manifest_bytes: u64,
    /// The file names of the manifest's packages.
    #[serde(skip)]
    pub files: Vec<String>,
}

/// Fetches and verifies the manifest of `opts` and says what a sync would
/// fetch. Takes no lock and writes nothing in the pool.
pub fn check(pool: &Pool, opts: &SyncOptions) -> Result<SyncCheck> {
    publish::check_name("image", &opts.image)?;
    let src = Source::parse(&opts.source)?;
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let mut report = SyncReport::default();
    let (version, rel, _, manifest) = fetch_manifest(pool, &src, opts, work.path(), &mut report)?;
    refuse_downgrade(pool, opts, &version)?;
    let missing = missing_packages(pool, &manifest, &rel, &mut report)?;
    let mut c = SyncCheck {
        source: opts.source.clone(),
        image: opts.image.clone(),
        version,
        signature_checked: report.signature_checked,
        packages: manifest.packages.len(),
        present: report.present,
        manifest_bytes: report.wire_bytes,
        files: manifest.packages.iter().map(|p| p.file.clone()).collect(),
        ..Default::default()
    };
    for p in missing {
        let d = opts
            .deltas
            .then(|| p.deltas.iter().find(|d| delta::applicable(pool, &d.needs)))
            .flatten();
        match d {
            Some(d) => {
                c.by_delta += 1;
                c.fetch_bytes += d.size;
            }
            None => c.fetch_bytes += p.size,
        }
        c.rpm_bytes += p.rpm_size;
        c.fetch.push(p.file.clone());
    }
    Ok(c)
}
