//! Building an extent package (docs/FORMAT.md) from its header part and its
//! files' contents, delivered in index order from anywhere: content the pool
//! already has (cloned), a reader (staged, then cloned into place so each file
//! is its own extent), or bytes in memory (a decoded delta).
//!
//! Every file's content is checked against the header's digest as it passes,
//! the whole package's SHA256 is computed in the same pass (everything is
//! written in offset order), and nothing is renamed into `packages/` before
//! the caller's expectation (the manifest's SHA256 and size) has matched:
//!
//! ```text
//! Layout::new(trusted)     headers checked (crate::rpm::trust), offsets planned (as import)
//! Writer::new(...)         tmp/rebuild-NAME.XXXX: header part written
//! writer.put_*(...)        one call per stored file, in offset order
//! writer.finish(expect)    index + trailer, SHA256/size check, fsync,
//!                          rename NOREPLACE into packages/NAME
//! ```
//!
//! The format is deterministic, so a package rebuilt here is byte for byte the
//! one `reimage import` writes from the same RPM.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use sha2::Digest;

use crate::rpm::files::PkgFile;
use crate::rpm::stream::{DigestAlgo, RpmPrefix};
use crate::rpm::trust::{PayloadWords, Trusted};
use crate::store::clone::Cloner;
use crate::store::extent::{self, align_up, Entry, Index};

/// Where a piece of content lives in the pool.
#[derive(Debug, Clone)]
pub struct Location {
    pub package: Arc<PathBuf>,
    pub offset: u64,
    pub length: u64,
}

/// BLAKE3 -> a place in the pool holding that content: the union of the
/// extent packages' own indexes, read when a writer starts (import, sync), so
/// it is never stale and needs no repair.
#[derive(Debug, Default)]
pub struct ContentStore {
    map: HashMap<[u8; 32], Location>,
}

impl ContentStore {
    /// Loads the indexes of every extent package in `dir` (damaged ones are
    /// skipped: they cannot be clone sources).
    pub fn load(dir: &Path) -> Result<ContentStore> {
        let mut s = ContentStore::default();
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let Ok(f) = File::open(&path) else { continue };
            if let Ok((index, _)) = Index::read(&f) {
                s.add(&path, &index);
            }
        }
        Ok(s)
    }

    /// Adds the content of one package.
    pub fn add(&mut self, package: &Path, index: &Index) {
        let package = Arc::new(package.to_path_buf());
        for e in &index.entries {
            if e.length > 0 && e.flags & extent::FLAG_HARDLINK_ALIAS == 0 {
                self.map.entry(e.blake3).or_insert_with(|| Location {
                    package: package.clone(),
                    offset: e.offset,
                    length: e.length,
                });
            }
        }
    }

    pub fn get(&self, blake3: &[u8; 32]) -> Option<&Location> {
        self.map.get(blake3)
    }

    pub fn contains(&self, blake3: &[u8; 32]) -> bool {
        self.map.contains_key(blake3)
    }

    /// Reads the whole content of `blake3` (for a delta basis).
    /// Reads the content with this BLAKE3 into `buf` (replacing what it
    /// held); false when no package holds it.
    pub fn read_into(&self, blake3: &[u8; 32], buf: &mut Vec<u8>) -> Result<bool> {
        let Some(loc) = self.get(blake3) else {
            return Ok(false);
        };
        let f = File::open(&*loc.package)
            .with_context(|| format!("cannot open {}", loc.package.display()))?;
        buf.clear();
        buf.resize(loc.length as usize, 0);
        f.read_exact_at(buf, loc.offset)
            .with_context(|| format!("cannot read {}", loc.package.display()))?;
        Ok(true)
    }

    pub fn read(&self, blake3: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        let Some(loc) = self.get(blake3) else {
            return Ok(None);
        };
        let f = File::open(&*loc.package)
            .with_context(|| format!("cannot open {}", loc.package.display()))?;
        let mut buf = vec![0u8; loc.length as usize];
        f.read_exact_at(&mut buf, loc.offset)
            .with_context(|| format!("cannot read {}", loc.package.display()))?;
        Ok(Some(buf))
    }
}

/// One stored file's data in the package: a hardlink set's first member or a
/// file of its own, with content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub file_index: u32,
    pub offset: u64,
    pub length: u64,
}

/// Where everything goes in the extent package of one header part: the one
/// layout rule of the format (docs/FORMAT.md), used by import, sync and
/// fsck alike. The data of each stored file (a regular file with content,
/// or a hardlink set's first member) follows the header part, each at the
/// next block boundary, in header order; the index follows the last one.
pub struct Layout {
    pub prefix: RpmPrefix,
    pub files: Vec<PkgFile>,
    pub algo: DigestAlgo,
    pub payload: PayloadWords,
    /// Stored files in offset order.
    pub slots: Vec<Slot>,
    /// Slot number by file index (stored files only).
    slot_of: HashMap<u32, usize>,
    /// File index by header path (for payload entries named by path).
    by_path: HashMap<String, u32>,
    pub index_offset: u64,
    pub header_sha256: [u8; 32],
    /// `NAME-VERSION-RELEASE.ARCH`.
    pub file_name: String,
    pub nevra: String,
}

impl Layout {
    /// Plans the package of headers that passed [`crate::rpm::trust::check`].
    pub fn new(t: Trusted) -> Result<Layout> {
        let mut slots = Vec::new();
        let mut slot_of = HashMap::new();
        let mut cursor = align_up(t.headers.bytes.len() as u64);
        for (i, f) in t.files.iter().enumerate() {
            if f.has_data() && f.link_leader == i as u32 && f.size > 0 {
                if f.digest.is_empty() {
                    bail!(
                        "{}: the header has no digest for it, so it cannot be verified",
                        f.path
                    );
                }
                slot_of.insert(i as u32, slots.len());
                slots.push(Slot {
                    file_index: i as u32,
                    offset: cursor,
                    length: f.size,
                });
                cursor = cursor
                    .checked_add(align_up(f.size))
                    .ok_or_else(|| anyhow!("file sizes in the header overflow"))?;
            }
        }
        let by_path = t
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i as u32))
            .collect();
        Ok(Layout {
            prefix: t.headers,
            files: t.files,
            algo: t.algo,
            payload: t.payload,
            slots,
            slot_of,
            by_path,
            index_offset: cursor,
            header_sha256: t.header_sha256,
            file_name: t.file_name,
            nevra: t.nevra,
        })
    }

    /// Parses and checks a header part held in memory.
    pub fn from_header_bytes(bytes: &[u8]) -> Result<Layout> {
        let mut r = bytes;
        let headers = crate::rpm::stream::read_prefix(&mut r, Path::new("header part"))?;
        if !r.is_empty() {
            bail!("{} bytes follow the header part", r.len());
        }
        Layout::new(crate::rpm::trust::check(headers)?)
    }

    /// The header path of a slot's file.
    pub fn path_of(&self, slot: &Slot) -> &str {
        &self.files[slot.file_index as usize].path
    }

    /// Where the data of stored file `leader` goes.
    pub fn offset_of(&self, leader: u32) -> Option<u64> {
        self.slot_of.get(&leader).map(|&s| self.slots[s].offset)
    }

    /// The header file a payload entry stands for.
    pub fn entry_index(&self, e: &crate::rpm::stream::CpioEntry) -> Result<u32> {
        if let Some(i) = e.file_index {
            return Ok(i);
        }
        let name = e.name.strip_prefix('.').unwrap_or(&e.name);
        self.by_path
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("payload holds {:?}, which the header does not list", e.name))
    }

    /// The index entries, given each slot's BLAKE3.
    fn entries(&self, blakes: &[[u8; 32]]) -> Vec<Entry> {
        let by_leader: HashMap<u32, [u8; 32]> = self
            .slots
            .iter()
            .zip(blakes)
            .map(|(s, b)| (s.file_index, *b))
            .collect();
        let empty = *blake3::hash(b"").as_bytes();
        self.entries_by(|leader| by_leader.get(&leader).copied().unwrap_or(empty))
    }

    /// The index entries, with `blake(leader)` giving each stored file's
    /// BLAKE3 (empty files: the BLAKE3 of nothing).
    pub fn entries_by(&self, blake: impl Fn(u32) -> [u8; 32]) -> Vec<Entry> {
        let empty = *blake3::hash(b"").as_bytes();
        let mut out = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            if !f.has_data() {
                continue;
            }
            let leader = f.link_leader;
            let (offset, b) = if f.size == 0 {
                (0, empty)
            } else {
                (self.offset_of(leader).expect("planned"), blake(leader))
            };
            out.push(Entry {
                file_index: i as u32,
                flags: if leader != i as u32 {
                    extent::FLAG_HARDLINK_ALIAS
                } else {
                    0
                },
                offset,
                length: f.size,
                blake3: b,
            });
        }
        out
    }
}

/// What the finished package must be (from the manifest).
#[derive(Debug, Clone)]
pub struct Expect {
    pub sha256: [u8; 32],
    pub size: u64,
    pub header_sha256: [u8; 32],
}

/// What a rebuild did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Built {
    /// Content bytes written anew.
    pub written: u64,
    /// Content bytes cloned from the pool.
    pub cloned: u64,
    pub size: u64,
}

/// Writes one extent package; see the module doc.
///
/// Content is checked as it comes. New content is staged and cloned into
/// place at once (its own extent); content from the pool (and content the
/// package holds twice) is placed in [`Writer::finish`], a run of
/// consecutive files from consecutive places in one clone.
pub struct Writer<'a> {
    layout: &'a Layout,
    cloner: &'a Cloner,
    tmp: tempfile::NamedTempFile,
    staging: File,
    sha: sha2::Sha256,
    hashed: u64,
    blakes: Vec<[u8; 32]>,
    /// New content placed in this package so far (BLAKE3 -> offset,
    /// length): a file repeated inside the package shares its first copy.
    local: HashMap<[u8; 32], (u64, u64)>,
    /// Pool packages content is cloned from, open once each.
    sources: Vec<File>,
    source_ix: HashMap<Arc<PathBuf>, usize>,
    places: Vec<Place>,
    buf: Vec<u8>,
    pub built: Built,
}

/// Where a slot's content comes from when the package is put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `Writer::sources[i]`.
    Pool(usize),
    /// The package itself (content it holds twice).
    Package,
}

/// One clone of [`Writer::finish`]: `len` (aligned) bytes from `src_off`
/// of `from` to `dst_off` of the package; `file` names it in errors.
#[derive(Debug, Clone, Copy)]
struct Place {
    from: Source,
    src_off: u64,
    len: u64,
    dst_off: u64,
    file: u32,
}

const ZEROS: [u8; 4096] = [0; 4096];

impl<'a> Writer<'a> {
    pub fn new(layout: &'a Layout, tmp_dir: &Path, cloner: &'a Cloner) -> Result<Writer<'a>> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("rebuild-{}.", layout.file_name))
            .tempfile_in(tmp_dir)
            .with_context(|| format!("cannot create a file in {}", tmp_dir.display()))?;
        let staging = tempfile::tempfile_in(tmp_dir)?;
        tmp.as_file().write_all_at(&layout.prefix.bytes, 0)?;
        let mut sha = sha2::Sha256::new();
        sha.update(&layout.prefix.bytes);
        Ok(Writer {
            layout,
            cloner,
            tmp,
            staging,
            sha,
            hashed: layout.prefix.bytes.len() as u64,
            blakes: Vec::with_capacity(layout.slots.len()),
            local: HashMap::new(),
            sources: Vec::new(),
            source_ix: HashMap::new(),
            places: Vec::with_capacity(layout.slots.len()),
            buf: vec![0u8; 1 << 20],
            built: Built::default(),
        })
    }

    /// The slot the next `put_*` call fills, if any is left.
    pub fn next_slot(&self) -> Option<&'a Slot> {
        self.layout.slots.get(self.blakes.len())
    }

    fn slot(&self) -> Result<(&'a Slot, &'a PkgFile)> {
        let s = self
            .next_slot()
            .ok_or_else(|| anyhow!("more file data than the header lists"))?;
        Ok((s, &self.layout.files[s.file_index as usize]))
    }

    fn pad_sha(sha: &mut sha2::Sha256, hashed: &mut u64, to: u64) {
        while *hashed < to {
            let n = (to - *hashed).min(ZEROS.len() as u64);
            sha.update(&ZEROS[..n as usize]);
            *hashed += n;
        }
    }

    /// Streams `src` through the digests; returns (file digest hex, BLAKE3
    /// (only `with_b3`, else zeros), bytes).
    fn hash_stream(
        buf: &mut [u8],
        mut src: impl Read,
        algo: DigestAlgo,
        sha: &mut sha2::Sha256,
        mut sink: impl FnMut(&[u8], u64) -> io::Result<()>,
        limit: u64,
        with_b3: bool,
    ) -> Result<(String, [u8; 32], u64)> {
        let mut fd = algo.hasher();
        let mut b3 = blake3::Hasher::new();
        let mut at = 0u64;
        loop {
            let want = ((limit + 1).saturating_sub(at)).min(buf.len() as u64) as usize;
            if want == 0 {
                break;
            }
            let n = src.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            fd.update(chunk);
            if with_b3 {
                b3.update(chunk);
            }
            sha.update(chunk);
            sink(chunk, at)?;
            at += n as u64;
        }
        let b3 = if with_b3 {
            *b3.finalize().as_bytes()
        } else {
            [0; 32]
        };
        Ok((fd.hex(), b3, at))
    }

    /// Fills the next slot by cloning content the pool holds under `blake3`,
    /// after checking it (digest against the header; the bytes read are the
    /// bytes cloned, and go into the package's SHA256 the manifest checks).
    /// Returns false (nothing done) when the pool lacks it or it does not
    /// fit.
    pub fn put_from_pool(&mut self, store: &ContentStore, blake3: &[u8; 32]) -> Result<bool> {
        let (slot, f) = self.slot()?;
        let Some(loc) = store.get(blake3).filter(|l| l.length == slot.length) else {
            return Ok(false);
        };
        let ix = match self.source_ix.get(&loc.package) {
            Some(&i) => i,
            None => {
                let Ok(f) = File::open(&*loc.package) else {
                    return Ok(false);
                };
                self.sources.push(f);
                self.source_ix
                    .insert(loc.package.clone(), self.sources.len() - 1);
                self.sources.len() - 1
            }
        };
        let mut sha = self.sha.clone();
        let mut hashed = self.hashed;
        Self::pad_sha(&mut sha, &mut hashed, slot.offset);
        let reader = RangeReader::new(&self.sources[ix], loc.offset, loc.length);
        // (Its BLAKE3 is the pool index's: not computed again.)
        let (digest, _, n) = Self::hash_stream(
            &mut self.buf,
            reader,
            self.layout.algo,
            &mut sha,
            |_, _| Ok(()),
            slot.length,
            false,
        )?;
        if n != slot.length || digest != f.digest {
            return Ok(false);
        }
        let b3 = *blake3;
        self.places.push(Place {
            from: Source::Pool(ix),
            src_off: loc.offset,
            len: align_up(slot.length),
            dst_off: slot.offset,
            file: slot.file_index,
        });
        self.sha = sha;
        self.hashed = hashed + n;
        self.blakes.push(b3);
        self.built.cloned += n;
        Ok(true)
    }

    /// The checks of a file's content against the header: its length and
    /// its digest.
    fn check_content(&self, slot: &Slot, f: &PkgFile, n: u64, digest: &str) -> Result<()> {
        if n != slot.length {
            bail!(
                "{}: the header says {} bytes but {n}{} came",
                f.path,
                slot.length,
                if n > slot.length { " or more" } else { "" }
            );
        }
        if digest != f.digest {
            bail!(
                "{}: content does not match the header's {} digest (expected {}, got {digest})",
                f.path,
                self.layout.algo.name(),
                f.digest
            );
        }
        Ok(())
    }

    /// Fills the next slot with the content read from `src` (exactly the
    /// slot's length), checked against the header's digest, written to a
    /// staging file and cloned into place (its own extent).
    pub fn put_reader(&mut self, src: impl Read) -> Result<()> {
        self.put_reader_b3(src, None)
    }

    /// [`Writer::put_reader`] of content whose BLAKE3 is `known` (computed by
    /// the caller from these very bytes), else computed here.
    /// A known BLAKE3 that this package already holds (a repeat) is not
    /// staged at all.
    fn put_reader_b3(&mut self, src: impl Read, known: Option<[u8; 32]>) -> Result<()> {
        let (slot, f) = self.slot()?;
        let repeat = known.is_some_and(|b| {
            self.local
                .get(&b)
                .is_some_and(|&(_, len)| len == slot.length)
        });
        // Empty: bytes left from an earlier file (one that turned out to be
        // a repeat) would otherwise join this file's extent.
        self.staging.set_len(0)?;
        let mut sha = self.sha.clone();
        let mut hashed = self.hashed;
        Self::pad_sha(&mut sha, &mut hashed, slot.offset);
        let staging = &self.staging;
        let (digest, b3, n) = Self::hash_stream(
            &mut self.buf,
            src,
            self.layout.algo,
            &mut sha,
            |chunk, at| {
                if repeat {
                    Ok(())
                } else {
                    staging.write_all_at(chunk, at)
                }
            },
            slot.length,
            known.is_none(),
        )?;
        let b3 = known.unwrap_or(b3);
        self.check_content(slot, f, n, &digest)?;
        let alen = align_up(n);
        match self.local.get(&b3) {
            // The same content earlier in this package: share its copy.
            Some(&(off, len)) if len == n => {
                self.built.cloned += n;
                self.places.push(Place {
                    from: Source::Package,
                    src_off: off,
                    len: alen,
                    dst_off: slot.offset,
                    file: slot.file_index,
                });
            }
            _ if alen > 0 => {
                // Its own extent now, cloned out of the staging file.
                if alen > n {
                    self.staging
                        .write_all_at(&ZEROS[..(alen - n) as usize], n)?;
                }
                self.cloner
                    .place(&self.staging, 0, alen, self.tmp.as_file(), slot.offset)
                    .map_err(|e| anyhow!("{}: {e}", f.path))?;
                self.built.written += n;
                self.local.insert(b3, (slot.offset, n));
            }
            _ => {}
        }
        self.sha = sha;
        self.hashed = hashed + n;
        self.blakes.push(b3);
        Ok(())
    }

    /// Puts the content from the pool (and repeated content) in place: one
    /// clone per run of consecutive places.
    fn place_all(&mut self) -> Result<()> {
        let dst = self.tmp.as_file();
        let mut i = 0;
        while i < self.places.len() {
            let first = self.places[i];
            let mut len = first.len;
            let mut j = i + 1;
            while let Some(p) = self.places.get(j) {
                if p.from != first.from
                    || p.src_off != first.src_off + len
                    || p.dst_off != first.dst_off + len
                {
                    break;
                }
                len += p.len;
                j += 1;
            }
            let src = match first.from {
                Source::Pool(k) => &self.sources[k],
                Source::Package => dst,
            };
            self.cloner
                .place(src, first.src_off, len, dst, first.dst_off)
                .map_err(|e| {
                    let f = &self.layout.files[first.file as usize];
                    anyhow!("{}: {e}", f.path)
                })?;
            crate::util::failpoint::hit("sync.placed");
            i = j;
        }
        Ok(())
    }

    /// Fills the next slot with content decoded in memory whose BLAKE3 the
    /// caller just computed from `data` (not computed again); content this
    /// package already holds is shared with that copy without being staged,
    /// the rest goes in like [`Writer::put_reader`].
    pub fn put_decoded(&mut self, data: &[u8], b3: [u8; 32]) -> Result<()> {
        self.put_reader_b3(data, Some(b3))
    }

    /// Writes the index, checks the whole package against `expect`, fsyncs
    /// and renames it to `dest` (never replacing anything). Returns the
    /// package's index.
    pub fn finish(self, expect: &Expect, dest: &Path) -> Result<(Index, Built)> {
        let pending = self.finish_unsynced(expect, dest)?;
        pending.tmp.as_file().sync_all()?;
        crate::util::failpoint::hit("sync.synced");
        pending.persist()
    }

    /// [`Writer::finish`] without the fsync and the rename: the caller makes
    /// many packages durable at once (one `syncfs`) and then
    /// [`Pending::persist`]s each.
    pub fn finish_unsynced(mut self, expect: &Expect, dest: &Path) -> Result<Pending> {
        if self.blakes.len() != self.layout.slots.len() {
            bail!(
                "data for {} of {} files is missing",
                self.layout.slots.len() - self.blakes.len(),
                self.layout.slots.len()
            );
        }
        // Empty files: their digest is the digest of nothing.
        for f in self
            .layout
            .files
            .iter()
            .filter(|f| f.has_data() && f.size == 0)
        {
            if !f.digest.is_empty()
                && f.digest != crate::rpm::stream::digest_hex(self.layout.algo, b"")
            {
                bail!(
                    "{}: empty, but the header's digest is not that of nothing",
                    f.path
                );
            }
        }
        if self.layout.header_sha256 != expect.header_sha256 {
            bail!(
                "its main header's SHA256 is {}, the manifest says {}",
                hex::encode(self.layout.header_sha256),
                hex::encode(expect.header_sha256)
            );
        }
        let index = Index {
            header_len: self.layout.prefix.bytes.len() as u64,
            header_sha256: self.layout.header_sha256,
            entries: self.layout.entries(&self.blakes),
        };
        let tail = index.encode(self.layout.index_offset);
        Self::pad_sha(&mut self.sha, &mut self.hashed, self.layout.index_offset);
        self.sha.update(&tail);
        let size = self.layout.index_offset + tail.len() as u64;
        let sha: [u8; 32] = std::mem::take(&mut self.sha).finalize().into();
        if size != expect.size || sha != expect.sha256 {
            bail!(
                "the rebuilt package does not match the manifest: SHA256 {} size {}, expected SHA256 {} size {}",
                hex::encode(sha),
                size,
                hex::encode(expect.sha256),
                expect.size
            );
        }
        self.place_all()?;
        let file = self.tmp.as_file();
        file.write_all_at(&tail, self.layout.index_offset)?;
        file.set_len(size)?;
        let mut built = self.built;
        built.size = size;
        Ok(Pending {
            tmp: self.tmp,
            dest: dest.to_path_buf(),
            index,
            built,
        })
    }
}

/// A package built and checked in `tmp/`, not yet durable nor in
/// `packages/` ([`Writer::finish_unsynced`]).
pub struct Pending {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    index: Index,
    built: Built,
}

impl Pending {
    /// Renames the package into place (never replacing anything). Its data
    /// must be durable first (an fsync of it, or a `syncfs` of the pool).
    pub fn persist(self) -> Result<(Index, Built)> {
        let tmp_path = self.tmp.into_temp_path();
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &*tmp_path,
            rustix::fs::CWD,
            &self.dest,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                let _ = tmp_path.keep();
                crate::util::failpoint::hit("sync.renamed");
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot rename into {}", self.dest.display()))
            }
        }
        Ok((self.index, self.built))
    }
}

/// Reads `len` bytes of `file` from `offset`.
pub struct RangeReader<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl<'f> RangeReader<'f> {
    pub fn new(file: &'f File, offset: u64, len: u64) -> Self {
        RangeReader {
            file,
            pos: offset,
            end: offset + len,
        }
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Rebuilds a downloaded extent package (`src`, untrusted) into `dest`:
/// content the pool already has is cloned from there, the rest is copied out
/// of `src` into file-sized extents; every file is checked against the
/// header's digest and the result against `expect`.
pub fn rebuild_from_package(
    src: &Path,
    expect: &Expect,
    store: &ContentStore,
    tmp_dir: &Path,
    cloner: &Cloner,
    dest: &Path,
) -> Result<(Index, Built)> {
    let f = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let size = f.metadata()?.len();
    if size != expect.size {
        bail!("it is {size} bytes, the manifest says {}", expect.size);
    }
    let (index, index_offset) = Index::read(&f).map_err(|e| anyhow!(e))?;
    let mut r = io::BufReader::new(RangeReader::new(&f, 0, index.header_len));
    let prefix = crate::rpm::stream::read_prefix(&mut r, src)?;
    if prefix.bytes.len() as u64 != index.header_len {
        bail!(
            "its index says the header part is {} bytes, it is {}",
            index.header_len,
            prefix.bytes.len()
        );
    }
    let layout = Layout::new(crate::rpm::trust::check(prefix)?)?;
    if layout.index_offset != index_offset {
        bail!("its index is not where the header's file sizes put it");
    }
    let mut w = Writer::new(&layout, tmp_dir, cloner)?;
    for slot in &layout.slots {
        let e = index
            .entry(slot.file_index)
            .filter(|e| e.offset == slot.offset && e.length == slot.length && e.flags == 0)
            .ok_or_else(|| {
                anyhow!(
                    "its index does not match the header for {}",
                    layout.path_of(slot)
                )
            })?;
        if !w.put_from_pool(store, &e.blake3)? {
            w.put_reader(RangeReader::new(&f, slot.offset, slot.length))?;
        }
    }
    w.finish(expect, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_reader_stops_at_the_end() {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, b"0123456789").unwrap();
        let mut s = String::new();
        RangeReader::new(&f, 2, 5).read_to_string(&mut s).unwrap();
        assert_eq!(s, "23456");
        let mut s = String::new();
        RangeReader::new(&f, 8, 5).read_to_string(&mut s).unwrap();
        assert_eq!(s, "89");
    }
}
