//! Offline bundles (docs/serving.md "Air-gapped machines", format in
//! docs/FORMAT.md): `reimage bundle REPO IMAGE VERSION [--from OLD] -o FILE`
//! writes one file holding a published version's manifest, its signature,
//! and the deltas and packages a client at OLD needs (everything without
//! `--from`); `reimage sync FILE IMAGE` reads it as a source like a mirror
//! (src/dist/sync.rs), with the same checks.
//!
//! ```text
//! "RIMGBNDL" u32le format u32le 0       16 bytes
//! members, back to back                 at the offsets the table gives
//! table of contents (JSON)              toc_len bytes
//! u64le toc_len
//! SHA256 of every byte before it        32 bytes
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::dist::manifest::{
    delta_file_rel, manifest_path, sig_path, DeltaFile, ImageIndex, Manifest, MANIFEST_FORMAT,
};
use crate::util::report::Reporter;

pub const MAGIC: &[u8; 8] = b"RIMGBNDL";
pub const BUNDLE_FORMAT: u32 = 1;
const HEAD: u64 = 16;
const TAIL: u64 = 8 + 32;

/// The table of contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Toc {
    pub format: u32,
    pub image: String,
    pub version: String,
    /// The version a client must hold (none: a fresh install).
    pub from: Option<String>,
    pub members: Vec<Member>,
}

/// One file of the bundle, by its path in a repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub path: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

/// Options of `reimage bundle`.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    pub repo: PathBuf,
    pub image: String,
    pub version: String,
    pub from: Option<String>,
    pub output: PathBuf,
}

/// What `reimage bundle` wrote.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BundleReport {
    pub file: PathBuf,
    pub image: String,
    pub version: String,
    pub from: Option<String>,
    /// Packages of the version (all of them, whatever the bundle carries).
    pub packages: usize,
    /// Packages the client must already hold (unchanged since `from`).
    pub unchanged: usize,
    pub whole_packages: usize,
    pub deltas: usize,
    pub signed: bool,
    /// Size of the bundle file.
    pub bytes: u64,
    /// Size of every package of the version (what a fresh install needs).
    pub package_bytes: u64,
    pub seconds: f64,
}

/// The repository files (relative paths) a client at `from` needs to reach `m`.
fn plan(
    repo: &Path,
    m: &Manifest,
    from: Option<&str>,
    report: &mut BundleReport,
) -> Result<Vec<String>> {
    let image = &m.image;
    let version = &m.version;
    let mut rels = vec![format!("images/{image}/{version}.json")];
    if sig_path(&manifest_path(repo, image, version)).is_file() {
        rels.push(format!("images/{image}/{version}.json.sig"));
        report.signed = true;
    }
    let Some(from) = from else {
        for p in &m.packages {
            rels.push(format!("packages/{}", p.file));
        }
        report.whole_packages = m.packages.len();
        return Ok(rels);
    };
    let old_path = manifest_path(repo, image, from);
    let old = Manifest::parse(
        &std::fs::read(&old_path)
            .with_context(|| format!("--from {from}: cannot read {}", old_path.display()))?,
    )
    .with_context(|| old_path.display().to_string())?;
    let mut m = m.clone();
    let later = delta_file_rel(image, version, from);
    if let Ok(bytes) = std::fs::read(repo.join(&later)) {
        DeltaFile::parse(&bytes, &m, from)
            .with_context(|| repo.join(&later).display().to_string())?
            .merge_into(&mut m);
        rels.push(later.clone());
        if repo.join(format!("{later}.sig")).is_file() {
            rels.push(format!("{later}.sig"));
        }
    }
    let have: BTreeSet<(&str, &str)> = old
        .packages
        .iter()
        .map(|p| (p.file.as_str(), p.sha256.as_str()))
        .collect();
    let headers: BTreeSet<(&str, &str)> = old
        .packages
        .iter()
        .map(|p| (p.file.as_str(), p.header_sha256.as_str()))
        .collect();
    for p in &m.packages {
        if have.contains(&(p.file.as_str(), p.sha256.as_str())) {
            report.unchanged += 1;
            continue;
        }
        // A delta from `from` whose every basis `from` has.
        let delta = p.deltas.iter().find(|d| {
            d.from == from
                && d.needs
                    .iter()
                    .all(|n| headers.contains(&(n.file.as_str(), n.header_sha256.as_str())))
        });
        match delta {
            Some(d) => {
                rels.push(d.path.clone());
                report.deltas += 1;
            }
            None => {
                rels.push(format!("packages/{}", p.file));
                report.whole_packages += 1;
            }
        }
    }
    Ok(rels)
}

/// Writes the bundle: to a temporary name beside FILE, fsynced, renamed.
pub fn bundle(opts: &BundleOptions, reporter: &dyn Reporter) -> Result<BundleReport> {
    let started = std::time::Instant::now();
    crate::dist::manifest::check_name("image", &opts.image)?;
    crate::dist::manifest::check_name("version", &opts.version)?;
    if let Some(f) = &opts.from {
        crate::dist::manifest::check_name("version", f)?;
        if f == &opts.version {
            bail!("--from {f} is the version being bundled");
        }
    }
    let mpath = manifest_path(&opts.repo, &opts.image, &opts.version);
    let mbytes = std::fs::read(&mpath).with_context(|| {
        format!(
            "{} {} is not published in {} (no {})",
            opts.image,
            opts.version,
            opts.repo.display(),
            mpath.display()
        )
    })?;
    let m = Manifest::parse(&mbytes).with_context(|| mpath.display().to_string())?;
    let mut report = BundleReport {
        file: opts.output.clone(),
        image: opts.image.clone(),
        version: opts.version.clone(),
        from: opts.from.clone(),
        packages: m.packages.len(),
        package_bytes: m.packages.iter().map(|p| p.size).sum(),
        ..Default::default()
    };
    let rels = plan(&opts.repo, &m, opts.from.as_deref(), &mut report)?;
    let index = {
        let mut s = serde_json::to_string_pretty(&ImageIndex {
            format: MANIFEST_FORMAT,
            image: opts.image.clone(),
            versions: vec![opts.version.clone()],
            // (Asking a bundle for a file it lacks costs nothing.)
            later_deltas: None,
        })?;
        s.push('\n');
        s.into_bytes()
    };

    let out = &opts.output;
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".reimage-bundle-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut w = HashingWriter {
        inner: std::io::BufWriter::new(tmp.as_file()),
        hash: sha2::Sha256::new(),
        pos: 0,
    };
    w.write_all(MAGIC)?;
    w.write_all(&BUNDLE_FORMAT.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    let mut members = Vec::new();
    let total: u64 = rels
        .iter()
        .map(|r| {
            std::fs::metadata(opts.repo.join(r))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    reporter.start("bundling", total);
    let index_rel = format!("images/{}/index.json", opts.image);
    members.push(w.member(&index_rel, &mut &index[..], None)?);
    for rel in &rels {
        let path = opts.repo.join(rel);
        let mut f = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        members.push(
            w.member(rel, &mut f, Some(reporter))
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    reporter.finish();
    let toc = Toc {
        format: BUNDLE_FORMAT,
        image: opts.image.clone(),
        version: opts.version.clone(),
        from: opts.from.clone(),
        members,
    };
    let toc = serde_json::to_vec(&toc)?;
    w.write_all(&toc)?;
    w.write_all(&(toc.len() as u64).to_le_bytes())?;
    let digest: [u8; 32] = w.hash.clone().finalize().into();
    w.inner.write_all(&digest)?;
    w.inner.flush()?;
    drop(w);
    tmp.as_file().sync_all()?;
    report.bytes = tmp.as_file().metadata()?.len();
    tmp.persist(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    crate::util::atomic::fsync_dir(dir)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes and hashes; knows its position.
struct HashingWriter<W: Write> {
    inner: W,
    hash: sha2::Sha256,
    pos: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> HashingWriter<W> {
    /// Copies one member in, returning its entry.
    fn member(
        &mut self,
        rel: &str,
        r: &mut dyn Read,
        reporter: Option<&dyn Reporter>,
    ) -> Result<Member> {
        let offset = self.pos;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            self.write_all(&buf[..n])?;
            if let Some(rep) = reporter {
                rep.advance(n as u64);
            }
        }
        Ok(Member {
            path: rel.to_string(),
            offset,
            size: self.pos - offset,
            sha256: hex::encode(h.finalize()),
        })
    }
}

// ---------------------------------------------------------------------------
// Reading

/// A bundle whose whole checksum and table of contents were checked.
#[derive(Debug)]
pub struct Reader {
    pub path: PathBuf,
    pub toc: Toc,
    by_path: BTreeMap<String, usize>,
}

impl Reader {
    /// Opens and checks a bundle: magic, format, the SHA256 over the whole
    /// file, the table of contents. A bundle copied with errors (a flipped
    /// byte, truncated) is refused here, before any sync starts.
    pub fn open(path: &Path) -> Result<Reader> {
        let damaged = |what: &str| {
            anyhow!(
                "{} is damaged ({what}): the bundle was copied with errors or cut short; copy it again",
                path.display()
            )
        };
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = f.metadata()?.len();
        let mut head = [0u8; HEAD as usize];
        if len < HEAD + TAIL || f.read_exact(&mut head).is_err() {
            return Err(damaged("shorter than a bundle's header and trailer"));
        }
        if &head[..8] != MAGIC {
            bail!(
                "{} is not a reimage bundle (no bundle magic)",
                path.display()
            );
        }
        let v = u32::from_le_bytes(head[8..12].try_into().unwrap());
        if v != BUNDLE_FORMAT {
            bail!(
                "{}: bundle format {v} is not supported (this reimage reads {BUNDLE_FORMAT})",
                path.display()
            );
        }
        // The whole-file checksum.
        f.seek(SeekFrom::Start(0))?;
        let mut h = sha2::Sha256::new();
        let mut left = len - 32;
        let mut buf = vec![0u8; 1 << 20];
        while left > 0 {
            let n = (left as usize).min(buf.len());
            f.read_exact(&mut buf[..n])
                .with_context(|| format!("cannot read {}", path.display()))?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        let mut tail = [0u8; TAIL as usize];
        f.seek(SeekFrom::Start(len - TAIL))?;
        f.read_exact(&mut tail)?;
        if h.finalize()[..] != tail[8..] {
            return Err(damaged("its SHA256 does not match the one it ends with"));
        }
        let toc_len = u64::from_le_bytes(tail[..8].try_into().unwrap());
        if toc_len > len - HEAD - TAIL {
            return Err(damaged("its table of contents is out of bounds"));
        }
        let toc_start = len - TAIL - toc_len;
        let mut toc = vec![0u8; toc_len as usize];
        f.seek(SeekFrom::Start(toc_start))?;
        f.read_exact(&mut toc)?;
        let toc: Toc = serde_json::from_slice(&toc)
            .with_context(|| format!("{}: the table of contents is not valid", path.display()))?;
        let mut by_path = BTreeMap::new();
        for (i, m) in toc.members.iter().enumerate() {
            let end = m.offset.checked_add(m.size);
            if m.offset < HEAD || end.is_none_or(|e| e > toc_start) {
                bail!("{}: member {} is out of bounds", path.display(), m.path);
            }
            if by_path.insert(m.path.clone(), i).is_some() {
                bail!("{}: member {} is there twice", path.display(), m.path);
            }
        }
        Ok(Reader {
            path: path.to_path_buf(),
            toc,
            by_path,
        })
    }

    pub fn contains(&self, rel: &str) -> bool {
        self.by_path.contains_key(rel)
    }

    /// Copies the members named by `rels` (those it has) to `dest/REL`,
    /// each checked against its SHA256. Returns the bytes copied.
    pub fn extract(&self, rels: &[String], dest: &Path) -> Result<u64> {
        let mut f = std::fs::File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        let mut total = 0;
        for rel in rels {
            let Some(&i) = self.by_path.get(rel) else {
                continue;
            };
            let m = &self.toc.members[i];
            let out = dest.join(rel);
            std::fs::create_dir_all(out.parent().unwrap())?;
            f.seek(SeekFrom::Start(m.offset))?;
            let mut w = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut h = sha2::Sha256::new();
            let mut left = m.size;
            let mut buf = vec![0u8; 1 << 20];
            while left > 0 {
                let n = (left as usize).min(buf.len());
                f.read_exact(&mut buf[..n])?;
                h.update(&buf[..n]);
                w.write_all(&buf[..n])?;
                left -= n as u64;
            }
            if hex::encode(h.finalize()) != m.sha256 {
                drop(w);
                let _ = std::fs::remove_file(&out);
                bail!(
                    "{}: member {} does not match its SHA256 (the file changed while it was read?)",
                    self.path.display(),
                    m.path
                );
            }
            total += m.size;
        }
        Ok(total)
    }
}
