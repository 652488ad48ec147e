//! `reimage import`: transcode RPM files into extent packages in the pool.
//!
//! One package is read as a stream: its lead, signature and main header are kept
//! byte for byte; the payload is decompressed and its cpio archive walked; each
//! regular file's content is hashed (the header's file digest and BLAKE3) while
//! it is written to a staging file, then cloned to its aligned place in the new
//! extent package so that every file's data is its own extent. Content the pool
//! already has (same BLAKE3) is cloned from there instead. Nothing reaches
//! `packages/` before every digest has matched: the package is built in `tmp/`,
//! fsynced and renamed into place.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::rpm::files::{PkgFile, S_IFMT};
use crate::rpm::stream::{self, CpioEntry, CpioReader, DigestAlgo, Hasher, HashingReader};
use crate::rpm::trust::Trusted;
use crate::store::clone::Cloner;
use crate::store::extent::{self, align_up, Index};
use crate::store::pool::Pool;
use crate::store::writer::{ContentStore, Layout};
use crate::util::report::Reporter;

/// Options of `reimage import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `.rpm` files or directories of them.
    pub paths: Vec<PathBuf>,
    /// Parallel jobs (default: the number of CPUs).
    pub jobs: Option<usize>,
    /// Require a valid header-only signature by a key in this file.
    pub keyring: Option<PathBuf>,
    /// Wait for another writer instead of failing.
    pub wait: bool,
    /// Import packages the pool already holds again, replacing its copies
    /// (after `fsck` found them damaged); still refused: another package
    /// under the same NEVRA.
    pub replace: bool,
}

/// What import did with one package (JSON: `imported`, `present`,
/// `replaced`, `refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Imported,
    /// The same package (same main header) was already in the pool.
    Present,
    /// It was, and `--replace` rebuilt it.
    Replaced,
    Refused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `{:8}` pads: go through str's Display, which honours width.
        f.pad(match self {
            Status::Imported => "imported",
            Status::Present => "present",
            Status::Replaced => "replaced",
            Status::Refused => "refused",
        })
    }
}

/// What happened to one input file.
#[derive(Debug, Clone, Serialize)]
pub struct PackageOutcome {
    pub source: PathBuf,
    /// NEVRA, when the headers could be read.
    pub nevra: Option<String>,
    /// The extent package's file name in `packages/` (not when refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub status: Status,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub files: u64,
    /// Bytes of regular-file content (each hardlink set once).
    pub content_bytes: u64,
    /// Content bytes written anew.
    pub written_bytes: u64,
    /// Content bytes cloned from data the pool already had.
    pub cloned_bytes: u64,
}

/// The result of an import run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportReport {
    pub packages: Vec<PackageOutcome>,
    pub imported: u64,
    pub present: u64,
    /// Of `imported`: packages that replaced the pool's copy (`--replace`).
    pub replaced: u64,
    pub refused: u64,
    pub written_bytes: u64,
    pub cloned_bytes: u64,
    /// Content bytes of packages that were already present.
    pub skipped_bytes: u64,
    /// Data was copied, not reflinked (pool made with --allow-copy).
    pub copied: bool,
    pub seconds: f64,
}

/// Expands directories into the `.rpm` files they hold (sorted, not recursive).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|x| x.extension().is_some_and(|e| e == "rpm") && x.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{} holds no .rpm files", p.display());
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub use crate::rpm::keyring::Keyring;

/// Imports packages into the pool. Per-package refusals are reported in the
/// result (and make the CLI exit 1); errors of the pool itself are returned.
pub fn import(pool: &Pool, opts: &ImportOptions, reporter: &dyn Reporter) -> Result<ImportReport> {
    let lock = pool.lock(opts.wait)?;
    import_locked(pool, opts, reporter, &lock)
}

/// [`import`] for a caller that holds the pool's writer lock (publish keeps
/// it from import to manifest).
pub fn import_locked(
    pool: &Pool,
    opts: &ImportOptions,
    reporter: &dyn Reporter,
    _lock: &crate::store::pool::WriteLock,
) -> Result<ImportReport> {
    let started = std::time::Instant::now();
    let files = expand_paths(&opts.paths)?;
    let keyring = opts.keyring.as_deref().map(Keyring::load).transpose()?;
    pool.clean_tmp()?;
    std::fs::create_dir_all(pool.packages_dir())?;
    let content = Mutex::new(ContentStore::load(&pool.packages_dir())?);
    let cloner = Cloner::new(pool.config.allow_copy);

    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    reporter.start("importing", total);
    let jobs = opts.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let tp = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let run = Run {
        pool,
        keyring: keyring.as_ref(),
        content: &content,
        cloner: &cloner,
        replace: opts.replace,
    };
    let outcomes: Vec<PackageOutcome> = tp.install(|| {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|src| {
                let size = std::fs::metadata(src).map(|m| m.len()).unwrap_or(0);
                let out = import_one(&run, src);
                reporter.advance(size);
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                reporter.message(&format!("importing {n}/{} packages", files.len()));
                let out = match out {
                    Ok(o) => o,
                    Err((nevra, e)) => PackageOutcome {
                        source: src.clone(),
                        nevra,
                        file: None,
                        status: Status::Refused,
                        error: Some(format!("{e:#}")),
                        files: 0,
                        content_bytes: 0,
                        written_bytes: 0,
                        cloned_bytes: 0,
                    },
                };
                out
            })
            .collect()
    });
    reporter.finish();
    // Make everything durable with one syncfs instead of an fsync per file.
    pool.syncfs()?;
    crate::util::failpoint::hit("import.done");

    let mut r = ImportReport {
        copied: cloner.is_copying(),
        ..Default::default()
    };
    for o in &outcomes {
        match o.status {
            Status::Imported => r.imported += 1,
            Status::Replaced => {
                r.imported += 1;
                r.replaced += 1;
            }
            Status::Present => {
                r.present += 1;
                r.skipped_bytes += o.content_bytes;
            }
            Status::Refused => r.refused += 1,
        }
        r.written_bytes += o.written_bytes;
        r.cloned_bytes += o.cloned_bytes;
    }
    r.packages = outcomes;
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

type Refusal = (Option<String>, anyhow::Error);

/// Shared state of one import run.
struct Run<'a> {
    pool: &'a Pool,
    keyring: Option<&'a Keyring>,
    content: &'a Mutex<ContentStore>,
    cloner: &'a Cloner,
    replace: bool,
}

fn import_one(run: &Run, src: &Path) -> std::result::Result<PackageOutcome, Refusal> {
    let mut input = stream::open_buffered(src).map_err(|e| {
        (
            None,
            anyhow!(e).context(format!("cannot open {}", src.display())),
        )
    })?;
    let headers = stream::read_prefix(&mut input, src).map_err(|e| (None, anyhow!(e)))?;
    let nevra = crate::rpm::trust::identity(&headers.main)
        .ok()
        .map(|(n, _)| n);
    let ctx = |e: anyhow::Error| {
        let what = match &nevra {
            Some(n) => format!("{} ({n})", src.display()),
            None => src.display().to_string(),
        };
        (nevra.clone(), e.context(what))
    };
    let trusted = crate::rpm::trust::check(headers).map_err(ctx)?;
    build(run, src, input, trusted).map_err(ctx)
}

/// Imports one package whose headers passed [`crate::rpm::trust::check`].
fn build(
    run: &Run,
    src: &Path,
    input: BufReader<File>,
    trusted: Trusted,
) -> Result<PackageOutcome> {
    // 1. Signatures, when a keyring is required.
    if let Some(k) = run.keyring {
        k.check(&trusted.headers)?;
    }
    // 2. Already there? This copy must still be whole: checked by its
    // payload digests when it has them, else by the full import below,
    // which then keeps nothing.
    let layout = Layout::new(trusted)?;
    let final_path = run.pool.packages_dir().join(&layout.file_name);
    let lookup = || existing(&final_path, &layout, src, run.replace);
    let present = lookup()?;
    if let Some(o) = &present {
        let p = &layout.payload;
        if !run.replace && (!p.digests.is_empty() || p.legacy_md5.is_some()) {
            verify_payload(input, &layout)
                .context("the pool already holds this package, but this copy of it is damaged")?;
            return Ok(o.clone());
        }
    }
    // 3. Stream the payload into a staged package, every check on the way.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("import-{}.", layout.file_name))
        .tempfile_in(run.pool.tmp_dir())
        .context("cannot create a file in the pool's tmp/")?;
    tmp.as_file().write_all_at(&layout.prefix.bytes, 0)?;
    crate::util::failpoint::hit("import.staged");
    let placed = stream_payload(run, &layout, input, tmp.as_file())?;
    if let Some(o) = present.as_ref().filter(|_| !run.replace) {
        // Verified in full; the pool's copy stays.
        return Ok(o.clone());
    }
    // 4. The index, then make it durable and visible.
    let index = Index {
        header_len: layout.prefix.bytes.len() as u64,
        header_sha256: layout.header_sha256,
        entries: layout.entries_by(|leader| placed.blakes[&leader]),
    };
    let pkg = tmp.as_file();
    let tail = index.encode(layout.index_offset);
    pkg.write_all_at(&tail, layout.index_offset)?;
    pkg.set_len(layout.index_offset + tail.len() as u64)?;
    pkg.sync_all()?;
    crate::util::failpoint::hit("import.synced");
    let replacing = run.replace && present.is_some();
    if !publish(tmp, &final_path, replacing)? {
        // Another job in this run imported the same NEVRA first.
        if let Some(o) = lookup()? {
            return Ok(o);
        }
        bail!("{} appeared while importing", final_path.display());
    }
    run.content.lock().unwrap().add(&final_path, &index);
    Ok(PackageOutcome {
        source: src.to_path_buf(),
        nevra: Some(layout.nevra.clone()),
        file: Some(layout.file_name.clone()),
        status: if replacing {
            Status::Replaced
        } else {
            Status::Imported
        },
        error: None,
        files: layout.files.len() as u64,
        content_bytes: placed.content_bytes,
        written_bytes: placed.written,
        cloned_bytes: placed.cloned,
    })
}

/// Renames the staged package into place: over the pool's copy of this same
/// package with `--replace` (same main header, checked before), otherwise
/// never over anything. `false`: the name was taken meanwhile.
fn publish(tmp: tempfile::NamedTempFile, final_path: &Path, replacing: bool) -> Result<bool> {
    let tmp_path = tmp.into_temp_path();
    let flags = if replacing {
        rustix::fs::RenameFlags::empty()
    } else {
        rustix::fs::RenameFlags::NOREPLACE
    };
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        &*tmp_path,
        rustix::fs::CWD,
        final_path,
        flags,
    ) {
        Ok(()) => {
            let _ = tmp_path.keep();
            crate::util::failpoint::hit("import.renamed");
            Ok(true)
        }
        Err(rustix::io::Errno::EXIST) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot rename into {}", final_path.display())),
    }
}

/// What streaming the payload placed.
struct Placed {
    /// BLAKE3 of each stored file's content, by its set leader's index.
    blakes: HashMap<u32, [u8; 32]>,
    content_bytes: u64,
    written: u64,
    cloned: u64,
}

/// Reads the payload once: its compressed bytes through the payload
/// digests, its cpio archive entry by entry against the header, each
/// regular file's content through its digest into its place in `pkg`.
fn stream_payload(
    run: &Run,
    layout: &Layout,
    input: BufReader<File>,
    pkg: &File,
) -> Result<Placed> {
    let files = &layout.files;
    let payload = &layout.payload;
    let hashers = payload.hashers(layout.prefix.main_bytes());
    let mut raw = BufReader::with_capacity(256 * 1024, HashingReader::new(input, hashers));
    let compression = {
        use std::io::BufRead;
        let head = raw.fill_buf().context("cannot read the payload")?;
        let no_data = files.iter().all(|f| !f.has_data() || f.size == 0);
        payload.compression(head, no_data)?
    };
    let mut placer = Placer::new(run, layout, pkg)?;
    let archive_len;
    {
        let dec = stream::decompressor(&mut raw, compression)
            .context("cannot start the payload decompressor")?;
        let alt = HashingReader::new(dec, payload.alt_hashers());
        let mut cpio = CpioReader::new(alt, stripped_sizes(files));
        let mut seen = vec![false; files.len()];
        while let Some(entry) = cpio
            .next_entry()
            .map_err(|e| anyhow!("payload is corrupt: {e}"))?
        {
            let idx = layout.entry_index(&entry)? as usize;
            if std::mem::replace(&mut seen[idx], true) {
                bail!("{}: the payload holds it twice", files[idx].path);
            }
            placer.entry(idx, &entry, &mut cpio)?;
        }
        // Read what the decompressor has left (padding) so the digests cover it.
        let mut inner = cpio.into_inner();
        io::copy(&mut inner, &mut io::sink())
            .map_err(|e| anyhow!("payload is corrupt after the archive: {e}"))?;
        archive_len = inner.count;
        payload.check_alt(inner.hashers, archive_len)?;
    }
    io::copy(&mut raw, &mut io::sink())?;
    let hr = raw.into_inner();
    payload.check(
        hr.hashers,
        layout.prefix.main_bytes().len() as u64,
        hr.count,
    )?;
    placer.finish()
}

/// Sizes of the entries of a stripped (`07070X`) archive by file index: in
/// a hardlink set only the last member carries the data (as in rpm's
/// `rpmfiArchiveHasContent`); symlinks carry their target; nothing else
/// carries data.
fn stripped_sizes(files: &[PkgFile]) -> Vec<u64> {
    let mut last: HashMap<u32, usize> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        last.insert(f.link_leader, i);
    }
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if f.is_symlink() || (f.is_reg() && last[&f.link_leader] == i) {
                f.size
            } else {
                0
            }
        })
        .collect()
}

/// Places regular files' content into the staged package as the archive
/// delivers it: cloned from this package, from the pool, or written.
struct Placer<'a> {
    run: &'a Run<'a>,
    layout: &'a Layout,
    pkg: &'a File,
    staging: File,
    /// Members per hardlink set: leader -> count.
    set_sizes: HashMap<u32, u32>,
    got: Vec<bool>,
    local: HashMap<[u8; 32], (u64, u64)>,
    buf: Vec<u8>,
    placed: Placed,
}

impl<'a> Placer<'a> {
    fn new(run: &'a Run, layout: &'a Layout, pkg: &'a File) -> Result<Placer<'a>> {
        let mut set_sizes = HashMap::new();
        for f in &layout.files {
            *set_sizes.entry(f.link_leader).or_insert(0) += 1;
        }
        Ok(Placer {
            run,
            layout,
            pkg,
            staging: tempfile::tempfile_in(run.pool.tmp_dir())?,
            set_sizes,
            got: vec![false; layout.files.len()],
            local: HashMap::new(),
            buf: vec![0u8; 1 << 20],
            placed: Placed {
                blakes: HashMap::new(),
                content_bytes: 0,
                written: 0,
                cloned: 0,
            },
        })
    }

    /// One archive entry, which must be what the header says of file `idx`.
    fn entry<R: Read>(
        &mut self,
        idx: usize,
        e: &CpioEntry,
        cpio: &mut CpioReader<R>,
    ) -> Result<()> {
        let f = &self.layout.files[idx];
        if f.is_ghost() {
            bail!(
                "payload holds {}, a %ghost file (which has no data)",
                f.path
            );
        }
        // A stripped entry has no mode: its type is the header's.
        if e.file_index.is_none() && e.mode & S_IFMT != f.mode & S_IFMT {
            bail!(
                "{}: the header says it is a {}, the payload holds a {}",
                f.path,
                kind(f.mode),
                kind(e.mode)
            );
        }
        if f.is_symlink() {
            return check_symlink(f, e, cpio);
        }
        if !f.is_reg() {
            if e.size != 0 {
                bail!(
                    "{}: the header says it is a {}, yet the payload holds {} bytes of data for it",
                    f.path,
                    kind(f.mode),
                    e.size
                );
            }
            return Ok(()); // directories, devices: the header has them.
        }
        let leader = f.link_leader as usize;
        let in_set = self.set_sizes[&f.link_leader] > 1;
        if e.size == 0 && f.size > 0 && in_set {
            return Ok(()); // a hardlink whose data comes with another member
        }
        if e.size != f.size {
            bail!(
                "{}: the header says {} bytes but the payload holds {}",
                f.path,
                f.size,
                e.size
            );
        }
        if f.size == 0 {
            // Empty files (and every member of an empty hardlink set):
            // nothing to store.
            self.got[leader] = true;
            return check_digest(self.layout.algo, self.layout.algo.hasher(), f);
        }
        if std::mem::replace(&mut self.got[leader], true) {
            bail!("{}: the payload holds its data twice", f.path);
        }
        self.place(leader, f, cpio.data())
    }

    /// Streams one file's content into the staging file, checks it, and
    /// puts it at its place in the package.
    fn place(&mut self, leader: usize, f: &PkgFile, mut data: impl Read) -> Result<()> {
        let algo = self.layout.algo;
        self.staging.set_len(0)?;
        let mut fd = algo.hasher();
        let mut b3 = blake3::Hasher::new();
        let mut at = 0u64;
        loop {
            let n = data
                .read(&mut self.buf)
                .map_err(|e| anyhow!("payload is corrupt inside {}: {e}", f.path))?;
            if n == 0 {
                break;
            }
            fd.update(&self.buf[..n]);
            b3.update(&self.buf[..n]);
            self.staging.write_all_at(&self.buf[..n], at)?;
            at += n as u64;
        }
        if at != f.size {
            bail!(
                "{}: the payload ends after {at} of {} bytes",
                f.path,
                f.size
            );
        }
        check_digest(algo, fd, f)?;
        let blake: [u8; 32] = *b3.finalize().as_bytes();
        let off = self.layout.offset_of(leader as u32).expect("planned");
        let alen = align_up(f.size);
        self.placed.content_bytes += f.size;
        let pkg = self.pkg;
        // Where from: this package, the pool, or the staging file.
        if let Some(&(loff, _)) = self.local.get(&blake) {
            self.run
                .cloner
                .place(pkg, loff, alen, pkg, off)
                .map_err(|e| anyhow!("{}: {e}", f.path))?;
            self.placed.cloned += f.size;
        } else if self.clone_from_pool(&blake, f.size, alen, off) {
            self.placed.cloned += f.size;
            self.local.insert(blake, (off, f.size));
        } else {
            // Zero padding makes the staged range block-aligned, so it can be
            // cloned into the middle of the package.
            if alen > f.size {
                self.staging
                    .write_all_at(&vec![0u8; (alen - f.size) as usize], f.size)?;
            }
            self.run
                .cloner
                .place(&self.staging, 0, alen, pkg, off)
                .map_err(|e| anyhow!("{}: {e}", f.path))?;
            self.placed.written += f.size;
            self.local.insert(blake, (off, f.size));
        }
        self.placed.blakes.insert(leader as u32, blake);
        crate::util::failpoint::hit("import.placed");
        Ok(())
    }

    /// Clones content the pool already has, after checking the pool's copy
    /// (a damaged package must not pass its damage on).
    fn clone_from_pool(&mut self, blake: &[u8; 32], len: u64, alen: u64, off: u64) -> bool {
        let loc = self.run.content.lock().unwrap().get(blake).cloned();
        let Some(loc) = loc.filter(|l| l.length == len) else {
            return false;
        };
        let Ok(srcf) = File::open(&*loc.package) else {
            return false;
        };
        match range_has_blake3(&srcf, loc.offset, len, blake, &mut self.buf) {
            Ok(true) => self
                .run
                .cloner
                .place(&srcf, loc.offset, alen, self.pkg, off)
                .is_ok(),
            _ => false,
        }
    }

    fn finish(self) -> Result<Placed> {
        for (i, f) in self.layout.files.iter().enumerate() {
            if f.has_data() && f.link_leader == i as u32 && !self.got[i] {
                bail!("{}: the payload has no data for it", f.path);
            }
        }
        let mut placed = self.placed;
        let empty = *blake3::hash(b"").as_bytes();
        for (i, f) in self.layout.files.iter().enumerate() {
            if f.has_data() && f.link_leader == i as u32 && f.size == 0 {
                placed.blakes.insert(i as u32, empty);
            }
        }
        Ok(placed)
    }
}

/// A symlink's archive entry carries its target, which must be the header's.
fn check_symlink<R: Read>(f: &PkgFile, e: &CpioEntry, cpio: &mut CpioReader<R>) -> Result<()> {
    if e.size != f.size {
        bail!(
            "{}: a symlink of {} bytes in the header, {} in the payload",
            f.path,
            f.size,
            e.size
        );
    }
    // The header's size is its target's length, under PATH_MAX (pkg::files).
    let mut target = Vec::with_capacity(e.size as usize);
    cpio.data()
        .read_to_end(&mut target)
        .map_err(|err| anyhow!("payload is corrupt inside {}: {err}", f.path))?;
    if target.contains(&0) {
        bail!(
            "{}: its symlink target in the payload contains a NUL byte",
            f.path
        );
    }
    if target != f.linkto.as_bytes() {
        bail!(
            "{}: the header says it points to {:?}, the payload to {:?}",
            f.path,
            f.linkto,
            String::from_utf8_lossy(&target)
        );
    }
    Ok(())
}

/// A file type in words, for errors.
fn kind(mode: u32) -> &'static str {
    match mode & S_IFMT {
        crate::rpm::files::S_IFREG => "regular file",
        crate::rpm::files::S_IFDIR => "directory",
        crate::rpm::files::S_IFLNK => "symlink",
        0o020000 => "character device",
        0o060000 => "block device",
        0o010000 => "fifo",
        0o140000 => "socket",
        _ => "file of unknown type",
    }
}

/// Whether `len` bytes of `file` at `offset` have the BLAKE3 `want`.
fn range_has_blake3(
    file: &File,
    offset: u64,
    len: u64,
    want: &[u8; 32],
    buf: &mut [u8],
) -> io::Result<bool> {
    let mut h = blake3::Hasher::new();
    let mut at = 0u64;
    while at < len {
        let k = (len - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..k], offset + at)?;
        h.update(&buf[..k]);
        at += k as u64;
    }
    Ok(h.finalize().as_bytes() == want)
}

fn check_digest(algo: DigestAlgo, h: Hasher, f: &PkgFile) -> Result<()> {
    if f.digest.is_empty() {
        if f.size == 0 {
            return Ok(());
        }
        bail!(
            "{}: the header has no digest for it, so it cannot be verified",
            f.path
        );
    }
    let got = h.hex();
    if got != f.digest {
        bail!(
            "{}: content does not match the header's {} digest (expected {}, got {got})",
            f.path,
            algo.name(),
            f.digest
        );
    }
    Ok(())
}

/// Reads the rest of `input` (the compressed payload) and checks it against
/// the header's payload digests and the signature's MD5 and sizes: how a
/// package the pool already holds is checked without decompressing it.
fn verify_payload(input: BufReader<File>, layout: &Layout) -> Result<()> {
    let p = &layout.payload;
    let mut r = HashingReader::new(input, p.hashers(layout.prefix.main_bytes()));
    io::copy(&mut r, &mut io::sink()).context("cannot read the payload")?;
    p.check(r.hashers, layout.prefix.main_bytes().len() as u64, r.count)
}

/// If `path` already holds a package: the same one (same main header) is
/// "present"; another one under the same name is refused.
fn existing(
    path: &Path,
    layout: &Layout,
    src: &Path,
    replace: bool,
) -> Result<Option<PackageOutcome>> {
    let (header_sha256, nevra) = (&layout.header_sha256, &layout.nevra);
    let files = layout.files.len() as u64;
    let outcome = |content_bytes| PackageOutcome {
        source: src.to_path_buf(),
        nevra: Some(nevra.to_string()),
        file: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        status: Status::Present,
        error: None,
        files,
        content_bytes,
        written_bytes: 0,
        cloned_bytes: 0,
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let index = match Index::read(&f) {
        Ok((index, _)) => index,
        // Unreadable index: --replace puts this (verified) package in its
        // place, if the damaged copy's main header (at its start) is this one's.
        Err(_) if replace => {
            let mut r = io::BufReader::new(&f);
            let same = stream::read_prefix(&mut r, path).ok().map(|p| {
                use sha2::Digest;
                let sha: [u8; 32] = sha2::Sha256::digest(p.main_bytes()).into();
                &sha == header_sha256
            });
            return match same {
                Some(true) => Ok(Some(outcome(0))),
                Some(false) => bail!(
                    "the pool already holds a different {nevra} (another main header under the same NEVRA): {}",
                    path.display()
                ),
                None => bail!(
                    "{} is damaged beyond its header: it cannot be told to be this package; \
                     remove it by hand if you mean to replace it",
                    path.display()
                ),
            };
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "{} is damaged (reimage fsck tells more; reimage import --replace with the RPM repairs it)",
                    path.display()
                )
            })
        }
    };
    if &index.header_sha256 != header_sha256 {
        bail!(
            "the pool already holds a different {nevra} (another main header under the same NEVRA): {}",
            path.display()
        );
    }
    let content: u64 = index
        .entries
        .iter()
        .filter(|e| e.flags & extent::FLAG_HARDLINK_ALIAS == 0)
        .map(|e| e.length)
        .sum();
    Ok(Some(outcome(content)))
}
