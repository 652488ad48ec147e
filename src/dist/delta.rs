//! Static deltas: a new extent package encoded against the content of an
//! older image, computed once by `publish --deltas-from` and applied by any
//! client that holds the old packages (docs/serving.md has the format).
//!
//! ```text
//! "RIMGDLTA"  u32 version (1, or 2 when an op 4 is used)  u32 0
//! u32 n, n bytes JSON: {"format":1,"target":{file,sha256,size,header_sha256},"needs":[{file,header_sha256}]}
//! header op (kind 1 or 3), then one op per stored file in offset order:
//!   0 COPY    blake3[32]                  content the old image has, unchanged
//!   1 ZSTD    u64 n, zstd frame            content sent whole
//!   2 PATCH   blake3[32], u64 n, frame     zstd with that old content as reference prefix
//!   3 HPATCH  u32 k, u64 n, frame          header part, zstd with needs[k]'s header part as prefix
//!   4 BSDIFF  blake3[32], u64 m, u64 n, frame   zstd of a bsdiff patch (m bytes) against that old content
//! "RIMGDEND"
//! ```
//! Each changed file with a basis is encoded both ways, zstd with the basis
//! as prefix (2) and bsdiff (4; what ostree uses for every modified file),
//! and the smaller is kept: zstd's long matches win on data that moved,
//! bsdiff's approximate matches on code whose addresses all shifted.
//! All integers little-endian. The basis of a changed file is the old file
//! with the same path, else the old file with the same name and the closest
//! size (kernel modules move directory with every kernel), anywhere in the
//! old image. Because the extent format is deterministic, the client rebuilds
//! the new package byte for byte and checks it like any other.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::dist::manifest::{DeltaRef, DeltaSummary, Manifest, ManifestPackage, Need, OpStat};
use crate::store::clone::Cloner;
use crate::store::extent::{self, Index};
use crate::store::pool::Pool;
use crate::store::writer::{ContentStore, Expect, Layout, Pending, RangeReader, Writer};
use crate::util::report::Reporter;

pub const MAGIC: &[u8; 8] = b"RIMGDLTA";
pub const END: &[u8; 8] = b"RIMGDEND";
/// The newest delta format this build reads (it writes 1 when no op needs 2).
pub const DELTA_FORMAT: u32 = 2;
const COPY: u8 = 0;
const ZSTD: u8 = 1;
const PATCH: u8 = 2;
const HPATCH: u8 = 3;
const BSDIFF: u8 = 4;
/// Basis and new content above this are not tried with bsdiff (its suffix
/// sort holds about 16 bytes per basis byte while encoding).
pub const MAX_BSDIFF: u64 = 48 << 20;
/// Basis + new content above this go whole (the zstd window is at most 2 GiB,
/// and both are held in memory while encoding and decoding).
pub const MAX_PATCH_WINDOW: u64 = 1 << 30;
/// Largest single op a client accepts into memory.
const MAX_OP: u64 = 2 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeltaHead {
    pub format: u32,
    pub target: Target,
    pub needs: Vec<Need>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub header_sha256: String,
}

/// One old package of the basis image.
struct OldPkg {
    file: String,
    header_sha256: [u8; 32],
    path: PathBuf,
    header_len: u64,
}

/// The old image: where each content, path and base name is.
struct OldImage {
    pkgs: Vec<OldPkg>,
    /// BLAKE3 -> (package, offset, length).
    content: HashMap<[u8; 32], (usize, u64, u64)>,
    by_path: HashMap<String, [u8; 32]>,
    by_base: HashMap<String, Vec<(u64, [u8; 32])>>,
    by_name: HashMap<String, usize>,
}

impl OldImage {
    fn load(pool: &Pool, m: &Manifest) -> Result<OldImage> {
        let mut img = OldImage {
            pkgs: Vec::new(),
            content: HashMap::new(),
            by_path: HashMap::new(),
            by_base: HashMap::new(),
            by_name: HashMap::new(),
        };
        for p in &m.packages {
            let path = pool.packages_dir().join(&p.file);
            let f = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            let (index, _) = Index::read(&f).with_context(|| path.display().to_string())?;
            let mut r = std::io::BufReader::new(RangeReader::new(&f, 0, index.header_len));
            let prefix = crate::rpm::stream::read_prefix(&mut r, &path)?;
            let (files, _) = crate::rpm::files::files(&prefix.main)?;
            let k = img.pkgs.len();
            for e in &index.entries {
                if e.length == 0 {
                    continue;
                }
                let fp = &files[e.file_index as usize].path;
                img.by_path.insert(fp.clone(), e.blake3);
                if e.flags & extent::FLAG_HARDLINK_ALIAS == 0 {
                    img.content
                        .entry(e.blake3)
                        .or_insert((k, e.offset, e.length));
                    let base = fp.rsplit('/').next().unwrap_or(fp).to_string();
                    img.by_base
                        .entry(base)
                        .or_default()
                        .push((e.length, e.blake3));
                }
            }
            img.by_name.insert(p.name().to_string(), k);
            img.pkgs.push(OldPkg {
                file: p.file.clone(),
                header_sha256: index.header_sha256,
                path,
                header_len: index.header_len,
            });
        }
        Ok(img)
    }

    fn read(&self, k: usize, offset: u64, len: u64) -> Result<Vec<u8>> {
        let f = File::open(&self.pkgs[k].path)?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// The basis for a new file: same path, else same base name and closest size.
    fn basis(&self, path: &str, len: u64) -> Option<[u8; 32]> {
        if let Some(b) = self.by_path.get(path) {
            return Some(*b);
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        self.by_base
            .get(base)?
            .iter()
            .min_by_key(|(l, b)| (l.abs_diff(len), *b))
            .map(|(_, b)| *b)
    }
}

fn window_log(total: u64) -> u32 {
    (64 - (total.max(1024) - 1).leading_zeros()).clamp(10, 31)
}

/// zstd-compresses `data`, with `prefix` as reference when given.
fn compress(data: &[u8], prefix: Option<&[u8]>, level: i32) -> Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let total = data.len() as u64 + prefix.map_or(0, |p| p.len() as u64);
    let mut cctx = CCtx::create();
    let err = |c: usize| anyhow!("zstd: {}", zstd::zstd_safe::get_error_name(c));
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(err)?;
    cctx.set_parameter(CParameter::WindowLog(window_log(total)))
        .map_err(err)?;
    cctx.set_parameter(CParameter::EnableLongDistanceMatching(true))
        .map_err(err)?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .map_err(err)?;
    if let Some(p) = prefix {
        cctx.ref_prefix(p).map_err(err)?;
    }
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).map_err(err)?;
    Ok(out)
}

/// Decompresses one frame of exactly `len` bytes.
fn decompress(frame: &[u8], prefix: Option<&[u8]>, len: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    Decoder::new()?.decompress(frame, prefix, len, &mut out)?;
    Ok(out)
}

/// A zstd context and buffers reused from file to file of a delta: fresh
/// multi-megabyte buffers per file cost more in page faults than decoding.
struct Decoder {
    data: Vec<u8>,
    basis: Vec<u8>,
    patch: Vec<u8>,
}

fn zstd_err(c: usize) -> anyhow::Error {
    anyhow!("zstd: {}", zstd::zstd_safe::get_error_name(c))
}

impl Decoder {
    fn new() -> Result<Decoder> {
        Ok(Decoder {
            data: Vec::new(),
            basis: Vec::new(),
            patch: Vec::new(),
        })
    }

    /// Decodes `frame` (against `prefix`) into `out`, which must come to
    /// exactly `len` bytes.
    fn decompress(
        &mut self,
        frame: &[u8],
        prefix: Option<&[u8]>,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if len > MAX_OP {
            bail!("a file of {len} bytes is too large for a delta");
        }
        use zstd::zstd_safe::{DCtx, DParameter};
        let mut dctx = DCtx::create();
        dctx.set_parameter(DParameter::WindowLogMax(31))
            .map_err(zstd_err)?;
        if let Some(p) = prefix {
            dctx.ref_prefix(p).map_err(zstd_err)?;
        }
        out.clear();
        out.reserve(len as usize);
        dctx.decompress(out, frame).map_err(zstd_err)?;
        if out.len() as u64 != len {
            bail!("a delta frame decodes to {} bytes, not {len}", out.len());
        }
        Ok(())
    }

    /// Decodes a file encoded against a basis from the pool into `self.data`.
    fn patch_from(
        &mut self,
        store: &ContentStore,
        b: &[u8; 32],
        frame: &[u8],
        len: u64,
    ) -> Result<()> {
        if !store.read_into(b, &mut self.basis)? {
            bail!("the pool lacks the delta's basis");
        }
        let (basis, mut data) = (
            std::mem::take(&mut self.basis),
            std::mem::take(&mut self.data),
        );
        let r = self.decompress(frame, Some(&basis), len, &mut data);
        (self.basis, self.data) = (basis, data);
        r
    }

    /// Applies a bsdiff patch of `m` bytes to a basis from the pool, into
    /// `self.data`.
    fn bsdiff_from(
        &mut self,
        store: &ContentStore,
        b: &[u8; 32],
        m: u64,
        frame: &[u8],
        len: u64,
    ) -> Result<()> {
        if !store.read_into(b, &mut self.basis)? {
            bail!("the pool lacks the delta's basis");
        }
        let mut patch = std::mem::take(&mut self.patch);
        let r = self.decompress(frame, None, m, &mut patch);
        self.patch = patch;
        r?;
        bsdiff_apply(&self.basis, &self.patch, len, &mut self.data)
    }
}

/// What kind of file a delta op carries (for the byte accounting).
fn kind_of(path: &str, data: &[u8]) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.contains(".ko") && (name.ends_with(".ko") || name.contains(".ko.")) {
        "kernel module"
    } else if [".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip", ".jar"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        "compressed"
    } else if data.starts_with(b"\x7fELF") {
        "ELF"
    } else {
        "other"
    }
}

/// Bytes of a delta by encoding and by kind of file.
#[derive(Default)]
struct Stats {
    by_op: BTreeMap<&'static str, OpStat>,
    by_kind: BTreeMap<&'static str, OpStat>,
}

impl Stats {
    fn add(&mut self, op: &'static str, kind: &'static str, bytes: usize) {
        for (m, k) in [(&mut self.by_op, op), (&mut self.by_kind, kind)] {
            let e = m.entry(k).or_default();
            e.files += 1;
            e.bytes += bytes as u64;
        }
    }
}

/// The bsdiff encoding of `data` against `basis`: (patch length, zstd frame).
fn bsdiff_encode(basis: &[u8], data: &[u8], level: i32) -> Result<(u64, Vec<u8>)> {
    let mut patch = Vec::new();
    bsdiff::diff(basis, data, &mut patch).context("bsdiff")?;
    Ok((patch.len() as u64, compress(&patch, None, level)?))
}

/// Decodes op 4: the zstd frame of a bsdiff patch of `m` bytes, applied to
/// `basis`, which must give exactly `len` bytes.
#[cfg(test)]
fn bsdiff_decode(basis: &[u8], m: u64, frame: &[u8], len: u64) -> Result<Vec<u8>> {
    let patch = decompress(frame, None, m)?;
    let mut out = Vec::new();
    bsdiff_apply(basis, &patch, len, &mut out)?;
    Ok(out)
}

/// Applies a bsdiff `patch` to `basis` into `out`, which must come to
/// exactly `len` bytes.
fn bsdiff_apply(basis: &[u8], patch: &[u8], len: u64, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.reserve(len.min(MAX_OP) as usize);
    bsdiff::patch(basis, &mut &patch[..], out).map_err(|e| anyhow!("bsdiff patch: {e}"))?;
    if out.len() as u64 != len {
        bail!("a bsdiff patch gives {} bytes, not {len}", out.len());
    }
    Ok(())
}

/// Computes the delta of the new package at `new_path` against `old`.
fn encode(
    old: &OldImage,
    new_path: &Path,
    target: &ManifestPackage,
    level: i32,
    stats: &mut Stats,
) -> Result<(Vec<u8>, Vec<Need>)> {
    let f = File::open(new_path).with_context(|| format!("cannot open {}", new_path.display()))?;
    let (index, _) = Index::read(&f).with_context(|| new_path.display().to_string())?;
    let mut header = vec![0u8; index.header_len as usize];
    f.read_exact_at(&mut header, 0)?;
    let layout = Layout::from_header_bytes(&header)?;
    let mut used: BTreeSet<usize> = BTreeSet::new();
    let mut body: Vec<u8> = Vec::new();
    // The header part, against the old package of the same name.
    match old.by_name.get(target.name()) {
        Some(&k) => {
            let oldh = old.read(k, 0, old.pkgs[k].header_len)?;
            used.insert(k);
            body.push(HPATCH);
            body.extend_from_slice(&(k as u32).to_le_bytes()); // renumbered below
            let z = compress(&header, Some(&oldh), level)?;
            body.extend_from_slice(&(z.len() as u64).to_le_bytes());
            body.extend_from_slice(&z);
            stats.add("header against the old header", "header", z.len() + 13);
        }
        None => {
            body.push(ZSTD);
            let z = compress(&header, None, level)?;
            body.extend_from_slice(&(z.len() as u64).to_le_bytes());
            body.extend_from_slice(&z);
            stats.add("header whole", "header", z.len() + 9);
        }
    }
    let mut format = 1;
    for slot in &layout.slots {
        let e = index.entry(slot.file_index).ok_or_else(|| {
            anyhow!(
                "{}: index lacks file {}",
                new_path.display(),
                slot.file_index
            )
        })?;
        if let Some(&(k, _, _)) = old.content.get(&e.blake3) {
            used.insert(k);
            body.push(COPY);
            body.extend_from_slice(&e.blake3);
            stats.add("copy", "unchanged", 33);
            continue;
        }
        let mut data = vec![0u8; slot.length as usize];
        f.read_exact_at(&mut data, slot.offset)?;
        let basis = old
            .basis(layout.path_of(slot), slot.length)
            .and_then(|b| old.content.get(&b).map(|c| (b, *c)))
            .filter(|(_, (_, _, blen))| blen + slot.length <= MAX_PATCH_WINDOW);
        let kind = kind_of(layout.path_of(slot), &data);
        match basis {
            Some((b, (k, off, blen))) => {
                let prefix = old.read(k, off, blen)?;
                let z = compress(&data, Some(&prefix), level)?;
                let bs = if blen <= MAX_BSDIFF && slot.length <= MAX_BSDIFF {
                    Some(bsdiff_encode(&prefix, &data, level)?)
                } else {
                    None
                };
                used.insert(k);
                match bs {
                    Some((m, bz)) if bz.len() + 8 < z.len() => {
                        format = 2;
                        body.push(BSDIFF);
                        body.extend_from_slice(&b);
                        body.extend_from_slice(&m.to_le_bytes());
                        body.extend_from_slice(&(bz.len() as u64).to_le_bytes());
                        body.extend_from_slice(&bz);
                        stats.add("bsdiff against an old file", kind, bz.len() + 49);
                    }
                    _ => {
                        body.push(PATCH);
                        body.extend_from_slice(&b);
                        body.extend_from_slice(&(z.len() as u64).to_le_bytes());
                        body.extend_from_slice(&z);
                        stats.add("zstd against an old file", kind, z.len() + 41);
                    }
                }
            }
            None => {
                let z = compress(&data, None, level)?;
                body.push(ZSTD);
                body.extend_from_slice(&(z.len() as u64).to_le_bytes());
                body.extend_from_slice(&z);
                stats.add("zstd whole (no basis)", kind, z.len() + 9);
            }
        }
    }
    body.extend_from_slice(END);
    // needs: the used packages, in index order; HPATCH's k is its position.
    let used: Vec<usize> = used.into_iter().collect();
    if body[0] == HPATCH {
        let k = u32::from_le_bytes(body[1..5].try_into().unwrap()) as usize;
        let pos = used.iter().position(|&u| u == k).unwrap() as u32;
        body[1..5].copy_from_slice(&pos.to_le_bytes());
    }
    let needs: Vec<Need> = used
        .iter()
        .map(|&k| Need {
            file: old.pkgs[k].file.clone(),
            header_sha256: hex::encode(old.pkgs[k].header_sha256),
        })
        .collect();
    let head = DeltaHead {
        format,
        target: Target {
            file: target.file.clone(),
            sha256: target.sha256.clone(),
            size: target.size,
            header_sha256: target.header_sha256.clone(),
        },
        needs: needs.clone(),
    };
    let json = serde_json::to_vec(&head)?;
    let mut out = Vec::with_capacity(body.len() + json.len() + 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&format.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&body);
    Ok((out, needs))
}

/// Writes deltas from `old` for every package of `new` that `old` lacks, and
/// records them in `new`.
pub fn publish_deltas(
    pool: &Pool,
    old: &Manifest,
    new: &mut Manifest,
    level: i32,
    reporter: &dyn Reporter,
) -> Result<DeltaSummary> {
    let img = OldImage::load(pool, old)
        .with_context(|| format!("version {} of {}", old.version, old.image))?;
    let have: BTreeSet<(&str, &str)> = old
        .packages
        .iter()
        .map(|p| (p.file.as_str(), p.sha256.as_str()))
        .collect();
    let changed: Vec<usize> = new
        .packages
        .iter()
        .enumerate()
        .filter(|(_, p)| !have.contains(&(p.file.as_str(), p.sha256.as_str())))
        .map(|(i, _)| i)
        .collect();
    let mut summary = DeltaSummary {
        from: old.version.clone(),
        changed: changed.len(),
        ..Default::default()
    };
    reporter.start("computing deltas", changed.len() as u64);
    type Encoded = (usize, Vec<u8>, Vec<Need>, Stats);
    let results: Vec<Result<Encoded>> = {
        use rayon::prelude::*;
        changed
            .par_iter()
            .map(|&i| {
                let p = &new.packages[i];
                let mut st = Stats::default();
                let r = encode(&img, &pool.packages_dir().join(&p.file), p, level, &mut st)
                    .map(|(d, n)| (i, d, n, st))
                    .with_context(|| format!("delta of {}", p.file));
                reporter.advance(1);
                r
            })
            .collect()
    };
    reporter.finish();
    for r in results {
        let (i, bytes, needs, st) = r?;
        for (into, from) in [
            (&mut summary.encodings, st.by_op),
            (&mut summary.kinds, st.by_kind),
        ] {
            for (k, v) in from {
                let e = into.entry(k.to_string()).or_default();
                e.files += v.files;
                e.bytes += v.bytes;
            }
        }
        let p = &mut new.packages[i];
        let key = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for n in &needs {
                h.update(n.file.as_bytes());
                h.update(n.header_sha256.as_bytes());
            }
            hex::encode(&h.finalize()[..8])
        };
        let rel = format!("deltas/{}/{key}.rdelta", p.file);
        let path = pool.root.join(&rel);
        // Immutable under its name (mirrors and caches keep it forever): a
        // delta already published for the same basis is kept as it is, even
        // if this run (another --delta-level) encoded other bytes.
        let bytes = match std::fs::read(&path) {
            Ok(existing) => existing,
            Err(_) => {
                std::fs::create_dir_all(path.parent().unwrap())?;
                crate::util::atomic::write_atomic(&path, &bytes)?;
                crate::dist::manifest::world_readable(&path)?;
                bytes
            }
        };
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        summary.package_bytes += p.size;
        summary.rpm_bytes += p.rpm_size;
        summary.delta_bytes += bytes.len() as u64;
        p.deltas.retain(|d| d.path != rel);
        p.deltas.push(DeltaRef {
            from: old.version.clone(),
            path: rel,
            sha256: sha,
            size: bytes.len() as u64,
            needs,
        });
    }
    Ok(summary)
}

// ---------------------------------------------------------------------------
// Applying

/// A parsed delta file.
pub struct Delta {
    pub head: DeltaHead,
    bytes: Vec<u8>,
    body: usize,
}

impl Delta {
    /// A delta from its bytes (the caller read them and checked them
    /// against the manifest).
    pub fn parse(bytes: Vec<u8>) -> Result<Delta> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            bail!("not a reimage delta");
        }
        let v = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if !(1..=DELTA_FORMAT).contains(&v) {
            bail!("delta format {v} is not supported (this reimage reads 1 to {DELTA_FORMAT})");
        }
        let n = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let json = bytes
            .get(20..20 + n)
            .ok_or_else(|| anyhow!("the delta is truncated"))?;
        let head: DeltaHead = serde_json::from_slice(json).context("delta header")?;
        Ok(Delta {
            head,
            body: 20 + n,
            bytes,
        })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self
            .b
            .get(
                self.at
                    ..self
                        .at
                        .checked_add(n)
                        .ok_or_else(|| anyhow!("delta too long"))?,
            )
            .ok_or_else(|| anyhow!("the delta is truncated"))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn frame(&mut self) -> Result<&'a [u8]> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().unwrap());
        self.take(usize::try_from(n).map_err(|_| anyhow!("delta op too long"))?)
    }
    fn b3(&mut self) -> Result<[u8; 32]> {
        Ok(self.take(32)?.try_into().unwrap())
    }
}

/// Rebuilds the target package of `delta` from the pool's content, checking
/// it against `expect` (the manifest, not the delta): built and checked in
/// `tmp/`, to be made durable and renamed to `dest` by the caller
/// ([`Pending::persist`]).
pub fn apply(
    delta: &Delta,
    pool: &Pool,
    store: &ContentStore,
    expect: &Expect,
    cloner: &Cloner,
    dest: &Path,
) -> Result<Pending> {
    let mut c = Cursor {
        b: &delta.bytes,
        at: delta.body,
    };
    let header = match c.u8()? {
        ZSTD => decode_unsized(c.frame()?, None),
        HPATCH => {
            let k = c.u32()? as usize;
            let need = delta
                .head
                .needs
                .get(k)
                .ok_or_else(|| anyhow!("the delta names basis {k}, which it does not list"))?;
            crate::dist::manifest::check_file_name(&need.file)?;
            let path = pool.packages_dir().join(&need.file);
            let f = File::open(&path)
                .with_context(|| format!("the basis {} is not in the pool", need.file))?;
            let (index, _) = Index::read(&f).with_context(|| path.display().to_string())?;
            let mut oldh = vec![0u8; index.header_len as usize];
            f.read_exact_at(&mut oldh, 0)?;
            let frame = c.frame()?;
            decode_unsized(frame, Some(&oldh))
        }
        k => bail!("the delta starts with op {k}, not a header"),
    }?;
    let layout = Layout::from_header_bytes(&header)?;
    let mut w = Writer::new(&layout, &pool.tmp_dir(), cloner)?;
    let mut dec = Decoder::new()?;
    while let Some(slot) = w.next_slot() {
        let path = layout.path_of(slot).to_string();
        let op = c.u8()?;
        match op {
            COPY => {
                let b = c.b3()?;
                if !w.put_from_pool(store, &b)? {
                    bail!("{path}: the pool lacks the content the delta copies");
                }
                continue;
            }
            ZSTD => {
                let mut data = std::mem::take(&mut dec.data);
                let r = dec.decompress(c.frame()?, None, slot.length, &mut data);
                dec.data = data;
                r
            }
            PATCH => {
                let b = c.b3()?;
                dec.patch_from(store, &b, c.frame()?, slot.length)
            }
            BSDIFF => {
                let b = c.b3()?;
                let m = u64::from_le_bytes(c.take(8)?.try_into().unwrap());
                if m > MAX_OP {
                    bail!("{path}: a bsdiff patch of {m} bytes is too large");
                }
                dec.bsdiff_from(store, &b, m, c.frame()?, slot.length)
            }
            k => bail!("{path}: unknown delta op {k}"),
        }
        .with_context(|| path.clone())?;
        // New to the delta, but maybe not to the pool (another package of
        // this sync brought it): share it then.
        let b3 = *blake3::hash(&dec.data).as_bytes();
        if !w.put_from_pool(store, &b3)? {
            w.put_decoded(&dec.data, b3)?;
        }
    }
    if c.take(8)? != END {
        bail!("the delta has more ops than the header has files");
    }
    w.finish_unsynced(expect, dest)
}

/// Decodes a frame whose size the frame header states (at most 256 MiB).
fn decode_unsized(frame: &[u8], prefix: Option<&[u8]>) -> Result<Vec<u8>> {
    let len = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("the delta's header frame has no size"))?;
    if len > 256 << 20 {
        bail!("the delta's header part is too large");
    }
    decompress(frame, prefix, len)
}

/// Whether the pool holds every package a delta needs (same main header).
pub fn applicable(pool: &Pool, needs: &[Need]) -> bool {
    needs.iter().all(|n| {
        crate::dist::manifest::check_file_name(&n.file).is_ok()
            && File::open(pool.packages_dir().join(&n.file))
                .ok()
                .and_then(|f| Index::read(&f).ok())
                .is_some_and(|(i, _)| hex::encode(i.header_sha256) == n.header_sha256)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_roundtrip_and_size() {
        let basis: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i * 7).to_le_bytes())
            .collect();
        let mut new = basis.clone();
        new[1000] ^= 0xff;
        new.extend_from_slice(b"appended");
        let z = compress(&new, Some(&basis), 19).unwrap();
        assert!(
            z.len() < 200,
            "delta of a 1-byte change is {} bytes",
            z.len()
        );
        assert_eq!(decompress(&z, Some(&basis), new.len() as u64).unwrap(), new);
        // The wrong basis does not silently decode to the right size.
        let other = vec![0u8; basis.len()];
        assert!(decompress(&z, Some(&other), new.len() as u64)
            .map(|d| d != new)
            .unwrap_or(true));
        let w = compress(&new, None, 3).unwrap();
        assert_eq!(decode_unsized(&w, None).unwrap(), new);
    }

    #[test]
    fn bsdiff_roundtrip_and_checks() {
        // Code whose addresses all shift: every 16th byte changes by one.
        let basis: Vec<u8> = (0..400_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let new: Vec<u8> = basis
            .iter()
            .enumerate()
            .map(|(i, b)| if i % 16 == 0 { b.wrapping_add(4) } else { *b })
            .collect();
        let (m, frame) = bsdiff_encode(&basis, &new, 19).unwrap();
        assert_eq!(
            bsdiff_decode(&basis, m, &frame, new.len() as u64).unwrap(),
            new
        );
        let z = compress(&new, Some(&basis), 19).unwrap();
        assert!(
            frame.len() * 4 < z.len(),
            "bsdiff {} bytes, zstd with prefix {} bytes",
            frame.len(),
            z.len()
        );
        // The wrong length or a cut patch is refused, never trusted.
        assert!(bsdiff_decode(&basis, m, &frame, new.len() as u64 + 1).is_err());
        assert!(bsdiff_decode(&basis, m, &frame[..frame.len() / 2], new.len() as u64).is_err());
        assert!(bsdiff_decode(&basis[..1000], m, &frame, new.len() as u64).is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(
            kind_of("lib/modules/6.1/kernel/fs/btrfs.ko.xz", b""),
            "kernel module"
        );
        assert_eq!(kind_of("lib/modules/6.1/a.ko", b""), "kernel module");
        assert_eq!(kind_of("share/doc/x/changelog.gz", b""), "compressed");
        assert_eq!(kind_of("bin/ls", b"\x7fELF\x02"), "ELF");
        assert_eq!(kind_of("share/kofi", b"text"), "other");
    }

    #[test]
    fn window_logs() {
        assert_eq!(window_log(0), 10);
        assert_eq!(window_log(1 << 20), 20);
        assert_eq!(window_log((1 << 20) + 1), 21);
        assert_eq!(window_log(3 << 30), 31);
    }
}
