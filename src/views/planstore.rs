//! Stored plans: what a view's plan was made of, kept next to the view, so an
//! incremental compose reads the headers and indexes of the changed packages
//! only (docs/compose.md, "How --from stays cheap").
//!
//! `POOL/index/plans/NAME` holds, for view NAME, every package's *placement*
//! (the entries it puts in the view, its relocations, the few entries the
//! tmpfiles.d snippets need) exactly as [`super::compose`] computed them from
//! the package. A new plan is then assembled from the stored placements of
//! the packages it keeps and fresh placements of the packages it adds, by the
//! same code that assembles a full plan: the result is the same plan.
//!
//! It is derived data. It is trusted only while it matches: the digest of the
//! view's `view.json` it was written for, the relocation rules, and for every
//! package the extent package's inode, size and mtime (an extent package is
//! immutable and renamed into place, so a replaced one has a new inode). A
//! plan that is missing, stale, or damaged (its trailing BLAKE3 does not
//! match) is ignored and compose plans from the packages, saying why at `-v`.
//!
//! Besides the placements it keeps the plan's [`Summary`] (entries by kind,
//! uses of each owner name), so an incremental compose can assemble only the
//! paths the changed packages touch and still know the whole view's counts
//! and owner tables (see `compose::incremental`).
//!
//! ```text
//! "REIMAGE-PLAN-2\n"  magic
//! [32]                SHA-256 of the view's view.json
//! rules               u32 count, then (from, to) strings
//! summary             dirs, files, symlinks, hardlinks, entries: u64 each;
//!                     users, groups: u32 count, then (name string, uses u64)
//! packages            u32 count, then per package:
//!                     file name, inode u64, size u64, mtime ns u64, blob length u64
//! blobs               one per package, in order (see `encode_placement`)
//! [32]                BLAKE3 of everything before
//! ```
//! Integers are little-endian; a string is a u32 length and UTF-8 bytes.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};
use sysimage::meta::{Relocation, VIEW_META};
use sysimage::relocate::{Kind, PlacedEntry, Policy};

use super::model::{Data, LoadedPkg, Node};
use crate::store::pool::Pool;

const MAGIC: &[u8] = b"REIMAGE-PLAN-2\n";

/// What a whole plan holds, counted (without `view.json`, which every
/// compose writes anew): kept with the plan so an incremental compose knows
/// the new view's totals from the base's and the difference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Every entry (header files and generated files included).
    pub entries: u64,
    /// Owner name -> how many entries it owns.
    pub users: BTreeMap<String, u64>,
    pub groups: BTreeMap<String, u64>,
}

impl Summary {
    /// Counts `nodes`.
    pub(crate) fn of<'a>(nodes: impl Iterator<Item = &'a Node>) -> Summary {
        let mut s = Summary::default();
        for n in nodes {
            s.entries += 1;
            match &n.data {
                Data::Dir => s.dirs += 1,
                Data::File { link, .. } => {
                    s.files += 1;
                    if link.is_some() {
                        s.hardlinks += 1;
                    }
                }
                Data::Symlink(_) => s.symlinks += 1,
                Data::Header(_) | Data::Generated(_) => {}
            }
            *s.users.entry(n.user.clone()).or_default() += 1;
            *s.groups.entry(n.group.clone()).or_default() += 1;
        }
        s
    }

    /// `self - minus + plus`: the summary of a plan that differs from this
    /// one's only where `minus` (the old entries) became `plus` (the new
    /// ones). None if `minus` is not part of `self` (a summary that does
    /// not belong to the plan it came with).
    pub(crate) fn apply(&self, minus: &Summary, plus: &Summary) -> Option<Summary> {
        let f = |a: u64, m: u64, p: u64| a.checked_sub(m).map(|v| v + p);
        let names = |a: &BTreeMap<String, u64>,
                     m: &BTreeMap<String, u64>,
                     p: &BTreeMap<String, u64>|
         -> Option<BTreeMap<String, u64>> {
            let mut out = a.clone();
            for (k, v) in m {
                let e = out.get_mut(k)?;
                *e = e.checked_sub(*v)?;
            }
            for (k, v) in p {
                *out.entry(k.clone()).or_default() += v;
            }
            out.retain(|_, v| *v > 0);
            Some(out)
        };
        Some(Summary {
            dirs: f(self.dirs, minus.dirs, plus.dirs)?,
            files: f(self.files, minus.files, plus.files)?,
            symlinks: f(self.symlinks, minus.symlinks, plus.symlinks)?,
            hardlinks: f(self.hardlinks, minus.hardlinks, plus.hardlinks)?,
            entries: f(self.entries, minus.entries, plus.entries)?,
            users: names(&self.users, &minus.users, &plus.users)?,
            groups: names(&self.groups, &minus.groups, &plus.groups)?,
        })
    }
}

/// One package's placement in a view (see `compose::place_package`).
pub(crate) struct PkgPlacement {
    pub nodes: Vec<(String, Node)>,
    pub relocations: Vec<Relocation>,
    pub refused: Vec<String>,
    /// Only what the tmpfiles.d snippets need: skeleton and /var entries.
    pub placed: Vec<PlacedEntry>,
    /// This placement, encoded for the stored plan.
    pub blob: Arc<[u8]>,
}

/// A package's file in the pool, as the stored plan identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    ino: u64,
    size: u64,
    mtime_ns: u64,
}

impl FileId {
    pub(crate) fn of(path: &Path) -> Result<FileId> {
        let m =
            std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
        Ok(FileId {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: (m.mtime() as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(m.mtime_nsec() as u64),
        })
    }
}

/// A stored plan, read and checked.
pub(crate) struct StoredPlan {
    pub rules: Vec<(String, String)>,
    pub summary: Summary,
    /// In the view's package order: file name, identity, blob.
    pub pkgs: Vec<(String, FileId, Arc<[u8]>)>,
}

impl StoredPlan {
    pub(crate) fn find(&self, fname: &str) -> Option<&(String, FileId, Arc<[u8]>)> {
        self.pkgs.iter().find(|(f, _, _)| f == fname)
    }
}

/// Where the stored plan of view `name` lives.
pub(crate) fn path(pool: &Pool, name: &str) -> PathBuf {
    pool.root.join("index").join("plans").join(name)
}

fn view_meta_digest(pool: &Pool, name: &str) -> Result<[u8; 32]> {
    let p = pool.views_dir().join(name).join(VIEW_META);
    let b = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(Sha256::digest(&b).into())
}

/// Writes the stored plan of the view `name` just published. Derived data:
/// written atomically, and a failure only costs the next compose its speed.
pub(crate) fn write(
    pool: &Pool,
    name: &str,
    rules: &[(String, String)],
    summary: &Summary,
    pkgs: &[Arc<LoadedPkg>],
    blobs: &[Arc<[u8]>],
) -> Result<()> {
    let mut w = Enc(Vec::with_capacity(
        blobs.iter().map(|b| b.len()).sum::<usize>() + 4096,
    ));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&view_meta_digest(pool, name)?);
    w.u32(rules.len() as u32);
    for (f, t) in rules {
        w.str(f);
        w.str(t);
    }
    for v in [
        summary.dirs,
        summary.files,
        summary.symlinks,
        summary.hardlinks,
        summary.entries,
    ] {
        w.u64(v);
    }
    for names in [&summary.users, &summary.groups] {
        w.u32(names.len() as u32);
        for (k, v) in names {
            w.str(k);
            w.u64(*v);
        }
    }
    w.u32(pkgs.len() as u32);
    for (p, b) in pkgs.iter().zip(blobs) {
        let id = FileId::of(&p.path)?;
        w.str(&p.fname);
        w.u64(id.ino);
        w.u64(id.size);
        w.u64(id.mtime_ns);
        w.u64(b.len() as u64);
    }
    for b in blobs {
        w.0.extend_from_slice(b);
    }
    let sum = blake3::hash(&w.0);
    w.0.extend_from_slice(sum.as_bytes());
    // Renamed into place without an fsync: after a power cut the file is
    // whole, absent, or fails its checksum, and then it is only ignored.
    let dest = path(pool, name);
    let dir = dest.parent().unwrap();
    // Explicit modes: derived data, readable by all, written by root only,
    // whatever umask the caller runs under.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&w.0))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("cannot rename to {}", dest.display()))
}

/// Removes the stored plan of view `name`, if any.
pub(crate) fn remove(pool: &Pool, name: &str) {
    let _ = std::fs::remove_file(path(pool, name));
}

/// Removes stored plans whose view is gone; returns how many.
pub(crate) fn prune(pool: &Pool) -> usize {
    let dir = pool.root.join("index").join("plans");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        if pool.views_dir().join(&name).symlink_metadata().is_err()
            && std::fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}

/// Reads the stored plan of view `name`. `Ok(None)` with the reason when
/// there is none or it does not match the view.
pub(crate) fn read(pool: &Pool, name: &str) -> Result<std::result::Result<StoredPlan, String>> {
    let p = path(pool, name);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(format!("view {name} has no stored plan")))
        }
        Err(e) => return Ok(Err(format!("cannot read {}: {e}", p.display()))),
    };
    if bytes.len() < MAGIC.len() + 64 || !bytes.starts_with(MAGIC) {
        return Ok(Err(format!(
            "{} is not a stored plan of this version",
            p.display()
        )));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Ok(Err(format!("{} is damaged (checksum)", p.display())));
    }
    let mut d = Dec::new(&body[MAGIC.len()..]);
    let digest = d.take(32).map_err(|e| anyhow!("{}: {e}", p.display()))?;
    match view_meta_digest(pool, name) {
        Ok(v) if v[..] == *digest => {}
        _ => return Ok(Err(format!("the stored plan of view {name} is stale"))),
    }
    let parsed = (|| -> std::result::Result<StoredPlan, String> {
        let mut rules = Vec::new();
        for _ in 0..d.u32()? {
            rules.push((d.str()?, d.str()?));
        }
        let mut summary = Summary {
            dirs: d.u64()?,
            files: d.u64()?,
            symlinks: d.u64()?,
            hardlinks: d.u64()?,
            entries: d.u64()?,
            ..Default::default()
        };
        for names in [&mut summary.users, &mut summary.groups] {
            for _ in 0..d.u32()? {
                names.insert(d.str()?, d.u64()?);
            }
        }
        let n = d.u32()? as usize;
        let mut heads = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let fname = d.str()?;
            let id = FileId {
                ino: d.u64()?,
                size: d.u64()?,
                mtime_ns: d.u64()?,
            };
            heads.push((fname, id, d.u64()? as usize));
        }
        let mut pkgs = Vec::with_capacity(heads.len());
        for (fname, id, len) in heads {
            pkgs.push((fname, id, Arc::from(d.take(len)?)));
        }
        if !d.rest().is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(StoredPlan {
            rules,
            summary,
            pkgs,
        })
    })();
    Ok(parsed.map_err(|e| format!("{}: {e}", p.display())))
}

// ---------------------------------------------------------------------------
// One package's placement

/// The fields of a header entry the tmpfiles.d snippets need.
pub(crate) struct TmpfilesSource<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub user: &'a str,
    pub group: &'a str,
    pub linkto: &'a str,
}

/// Encodes a package's placement: the package's identity, its relocations,
/// its tmpfiles.d sources and its entries (without the package's position in
/// the list, which the plan that reads it assigns).
pub(crate) fn encode_placement(
    p: &LoadedPkg,
    nodes: &[(String, Node)],
    relocations: &[Relocation],
    tmpfiles: &[TmpfilesSource],
) -> Arc<[u8]> {
    let mut w = Enc(Vec::with_capacity(64 + nodes.len() * 120));
    w.str(&p.nevra);
    w.u64(p.header_len);
    w.0.extend_from_slice(&p.header_sha256);
    w.u32(p.build_time);
    w.u32(relocations.len() as u32);
    for r in relocations {
        w.str(&r.from);
        w.str(&r.to);
    }
    w.u32(tmpfiles.len() as u32);
    for t in tmpfiles {
        w.str(t.path);
        w.u32(t.mode);
        w.str(t.user);
        w.str(t.group);
        w.str(t.linkto);
    }
    w.u32(nodes.len() as u32);
    for (rel, n) in nodes {
        w.str(rel);
        let identity = if rel.is_empty() {
            n.header_path == "/usr"
        } else {
            n.header_path.len() == rel.len() + 5
                && n.header_path.starts_with("/usr/")
                && n.header_path.ends_with(rel.as_str())
        };
        if identity {
            w.u8(0);
        } else {
            w.u8(1);
            w.str(&n.header_path);
        }
        w.u32(n.perm);
        w.str(&n.user);
        w.str(&n.group);
        w.u32(n.mtime);
        w.str(&n.caps);
        match &n.data {
            Data::Dir => w.u8(0),
            Data::Symlink(t) => {
                w.u8(1);
                w.str(t);
            }
            Data::File {
                offset,
                size,
                blake3,
                link,
                ..
            } => {
                w.u8(2);
                w.u64(*offset);
                w.u64(*size);
                w.0.extend_from_slice(blake3);
                match link {
                    Some((_, leader)) => {
                        w.u8(1);
                        w.u32(*leader);
                    }
                    None => w.u8(0),
                }
            }
            // Package placements hold only these three.
            Data::Header(_) | Data::Generated(_) => unreachable!("not a package entry"),
        }
    }
    Arc::from(w.0)
}

/// Decodes a placement for package number `pi` of a plan, with the package
/// (without its header and index, which the plan does not need again).
pub(crate) fn decode_placement(
    blob: &Arc<[u8]>,
    pi: usize,
    path: PathBuf,
    fname: &str,
    policy: &Policy,
) -> Result<(LoadedPkg, PkgPlacement)> {
    decode_some(blob, pi, path, fname, policy, &|_| true, &mut |_| {})
}

/// [`decode_placement`] keeping only the entries whose path `pick` accepts
/// (its relocations and tmpfiles.d sources are always whole); each path left
/// out is passed to `left`. Nothing is allocated for an entry left out.
pub(crate) fn decode_some(
    blob: &Arc<[u8]>,
    pi: usize,
    path: PathBuf,
    fname: &str,
    policy: &Policy,
    pick: &dyn Fn(&str) -> bool,
    left: &mut dyn FnMut(&str),
) -> Result<(LoadedPkg, PkgPlacement)> {
    let mut d = Dec::new(blob);
    let r = (|| -> std::result::Result<(LoadedPkg, PkgPlacement), String> {
        let nevra = d.str()?;
        let header_len = d.u64()?;
        let header_sha256: [u8; 32] = d.take(32)?.try_into().unwrap();
        let build_time = d.u32()?;
        let mut relocations = Vec::new();
        for _ in 0..d.u32()? {
            relocations.push(Relocation {
                from: d.str()?,
                to: d.str()?,
            });
        }
        let mut placed = Vec::new();
        for _ in 0..d.u32()? {
            let (path, mode, user, group, link_target) =
                (d.str()?, d.u32()?, d.str()?, d.str()?, d.str()?);
            let kind = Kind::from_mode(mode);
            let placement = policy.place(&path, kind).map_err(|e| e.to_string())?;
            placed.push(PlacedEntry {
                path,
                kind,
                mode,
                user,
                group,
                link_target,
                placement,
            });
        }
        let n = d.u32()? as usize;
        let mut nodes = Vec::new();
        for _ in 0..n {
            let rel = d.s()?;
            if !pick(rel) {
                d.skip_entry()?;
                left(rel);
                continue;
            }
            let header_path = match d.u8()? {
                0 if rel.is_empty() => "/usr".to_string(),
                0 => format!("/usr/{rel}"),
                _ => d.str()?,
            };
            let perm = d.u32()?;
            let (user, group, mtime, caps) = (d.str()?, d.str()?, d.u32()?, d.str()?);
            let data = match d.u8()? {
                0 => Data::Dir,
                1 => Data::Symlink(d.str()?),
                2 => Data::File {
                    pkg: pi,
                    offset: d.u64()?,
                    size: d.u64()?,
                    blake3: d.take(32)?.try_into().unwrap(),
                    link: match d.u8()? {
                        0 => None,
                        _ => Some((header_sha256, d.u32()?)),
                    },
                },
                t => return Err(format!("unknown entry type {t}")),
            };
            nodes.push((
                rel.to_string(),
                Node {
                    data,
                    perm,
                    user,
                    group,
                    mtime,
                    caps,
                    uid: 0,
                    gid: 0,
                    pkg: Some(pi),
                    header_path,
                },
            ));
        }
        if !d.rest().is_empty() {
            return Err("trailing bytes".into());
        }
        Ok((
            LoadedPkg {
                path,
                fname: fname.to_string(),
                nevra,
                header_len,
                header_sha256,
                build_time,
                content: None,
            },
            PkgPlacement {
                nodes,
                relocations,
                refused: Vec::new(),
                placed,
                blob: blob.clone(),
            },
        ))
    })();
    r.map_err(|e| anyhow!("stored placement of {fname}: {e}"))
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    fn new(b: &'a [u8]) -> Dec<'a> {
        Dec { b }
    }
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("truncated".into());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn rest(&self) -> &'a [u8] {
        self.b
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn str(&mut self) -> std::result::Result<String, String> {
        self.s().map(str::to_string)
    }
    /// A string, borrowed.
    fn s(&mut self) -> std::result::Result<&'a str, String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| "a string is not UTF-8".to_string())
    }
    /// Skips a string.
    fn skip_str(&mut self) -> std::result::Result<(), String> {
        let n = self.u32()? as usize;
        self.take(n).map(|_| ())
    }
    /// Skips the rest of an entry after its path (see `encode_placement`).
    fn skip_entry(&mut self) -> std::result::Result<(), String> {
        if self.u8()? != 0 {
            self.skip_str()?;
        }
        self.take(4)?;
        self.skip_str()?;
        self.skip_str()?;
        self.take(4)?;
        self.skip_str()?;
        match self.u8()? {
            0 => {}
            1 => self.skip_str()?,
            2 => {
                self.take(8 + 8 + 32)?;
                if self.u8()? != 0 {
                    self.take(4)?;
                }
            }
            t => return Err(format!("unknown entry type {t}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        let policy = Policy::with_rules(Vec::<(String, String)>::new()).unwrap();
        let blob: Arc<[u8]> = Arc::from(vec![0xffu8; 40]);
        assert!(decode_placement(&blob, 0, "/x".into(), "x", &policy).is_err());
        let blob: Arc<[u8]> = Arc::from(Vec::<u8>::new());
        assert!(decode_placement(&blob, 0, "/x".into(), "x", &policy).is_err());
        if let Err(e) = Dec::new(&[1, 0, 0, 0]).str() {
            assert_eq!(e, "truncated");
        } else {
            panic!("a 1-byte string with no byte decoded");
        }
    }
}
