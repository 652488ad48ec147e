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
use rpm::{IndexSignatureTag, IndexTag};
use serde::Serialize;

use crate::clone::Cloner;
use crate::extent::{self, align_up, Entry, Index};
use crate::extent_writer::ContentStore;
use crate::pkg::PkgFile;
use crate::pool::Pool;
use crate::report::Reporter;
use crate::rpmfile::{self, Compression, CpioReader, DigestAlgo, Hasher, HashingReader};

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

/// What happened to one input file.
#[derive(Debug, Clone, Serialize)]
pub struct PackageOutcome {
    pub source: PathBuf,
    /// NEVRA, when the headers could be read.
    pub nevra: Option<String>,
    /// The extent package's file name in `packages/` (not when refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// "imported", "present" (the same package was already in the pool),
    /// "replaced" (it was, and `--replace` rebuilt it) or "refused".
    pub status: &'static str,
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

/// The file name of an extent package in `packages/`: `NAME-VERSION-RELEASE.ARCH`.
pub fn package_file_name(meta: &rpm::PackageMetadata) -> Result<String> {
    let name = meta.get_name()?;
    let v = meta.get_version()?;
    let r = meta.get_release()?;
    let a = meta.get_arch()?;
    let f = format!("{name}-{v}-{r}.{a}");
    if f.contains('/') || f.starts_with('.') || f.contains('\0') {
        bail!("package name {f:?} cannot be a file name");
    }
    Ok(f)
}

/// NEVRA as rpm prints it (`name-epoch:version-release.arch`, epoch only when set).
pub fn nevra(meta: &rpm::PackageMetadata) -> String {
    let name = meta.get_name().unwrap_or("?");
    let v = meta.get_version().unwrap_or("?");
    let r = meta.get_release().unwrap_or("?");
    let a = meta.get_arch().unwrap_or("?");
    match meta.get_epoch() {
        Ok(e) if e > 0 => format!("{name}-{e}:{v}-{r}.{a}"),
        _ => format!("{name}-{v}-{r}.{a}"),
    }
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

/// Header-only signature keys given with `--keyring` (one or more armored keys).
pub struct Keyring {
    verifiers: Vec<rpm::signature::pgp::Verifier>,
    path: PathBuf,
}

impl Keyring {
    pub fn load(path: &Path) -> Result<Keyring> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read keyring {}", path.display()))?;
        let begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let mut verifiers = Vec::new();
        for (i, part) in text.split(begin).skip(1).enumerate() {
            let block = format!("{begin}{part}");
            let v = rpm::signature::pgp::Verifier::from_asc(&block).map_err(|e| {
                anyhow!(
                    "keyring {}: key {} cannot be read: {e}",
                    path.display(),
                    i + 1
                )
            })?;
            verifiers.push(v);
        }
        if verifiers.is_empty() {
            bail!(
                "keyring {} holds no armored OpenPGP public key",
                path.display()
            );
        }
        Ok(Keyring {
            verifiers,
            path: path.to_path_buf(),
        })
    }

    /// Checks that at least one header-only signature verifies with a key.
    fn check(&self, prefix: &rpmfile::RpmPrefix) -> Result<()> {
        use rpm::signature::Verifying;
        let sigs = prefix
            .meta
            .raw_signatures()
            .map_err(|e| anyhow!("cannot read signatures: {e}"))?;
        if sigs.is_empty() {
            bail!(
                "the package is not signed (no header-only RSA/DSA/OpenPGP signature) and --keyring {} requires one",
                self.path.display()
            );
        }
        let mut last = None;
        for sig in &sigs {
            for v in &self.verifiers {
                match v.verify(prefix.main_header(), sig) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
        }
        bail!(
            "no signature verifies with a key in {}: {}",
            self.path.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        )
    }
}

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
    _lock: &crate::pool::WriteLock,
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
    let outcomes: Vec<PackageOutcome> = tp.install(|| {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|src| {
                let size = std::fs::metadata(src).map(|m| m.len()).unwrap_or(0);
                let out = import_one(pool, src, keyring.as_ref(), &content, &cloner, opts.replace);
                reporter.advance(size);
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                reporter.message(&format!("importing {n}/{} packages", files.len()));
                let out = match out {
                    Ok(o) => o,
                    Err((nevra, e)) => PackageOutcome {
                        source: src.clone(),
                        nevra,
                        file: None,
                        status: "refused",
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
    let root = File::open(&pool.root)?;
    crate::sys::syncfs(&root).with_context(|| format!("syncfs {}", pool.root.display()))?;
    crate::failpoint::hit("import.done");

    let mut r = ImportReport {
        copied: cloner.is_copying(),
        ..Default::default()
    };
    for o in &outcomes {
        match o.status {
            "imported" => r.imported += 1,
            "replaced" => {
                r.imported += 1;
                r.replaced += 1;
            }
            "present" => {
                r.present += 1;
                r.skipped_bytes += o.content_bytes;
            }
            _ => r.refused += 1,
        }
        r.written_bytes += o.written_bytes;
        r.cloned_bytes += o.cloned_bytes;
    }
    r.packages = outcomes;
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

type Refusal = (Option<String>, anyhow::Error);

fn import_one(
    pool: &Pool,
    src: &Path,
    keyring: Option<&Keyring>,
    content: &Mutex<ContentStore>,
    cloner: &Cloner,
    replace: bool,
) -> std::result::Result<PackageOutcome, Refusal> {
    let mut input = rpmfile::open_buffered(src).map_err(|e| {
        (
            None,
            anyhow!(e).context(format!("cannot open {}", src.display())),
        )
    })?;
    let prefix = rpmfile::read_prefix(&mut input)
        .map_err(|e| (None, anyhow!(e).context(format!("{}", src.display()))))?;
    let nevra = nevra(&prefix.meta);
    let ctx = |e: anyhow::Error| {
        (
            Some(nevra.clone()),
            e.context(format!("{} ({})", src.display(), nevra)),
        )
    };
    build(pool, src, input, &prefix, keyring, content, cloner, replace).map_err(ctx)
}

#[allow(clippy::too_many_arguments)]
fn build(
    pool: &Pool,
    src: &Path,
    input: BufReader<File>,
    prefix: &rpmfile::RpmPrefix,
    keyring: Option<&Keyring>,
    content: &Mutex<ContentStore>,
    cloner: &Cloner,
    replace: bool,
) -> Result<PackageOutcome> {
    let meta = &prefix.meta;
    if meta.is_source_package() {
        bail!("is a source package; only binary packages can be imported");
    }
    let nevra_s = nevra(meta);
    let name = package_file_name(meta)?;

    // 1. The header: its strongest digest, then signatures.
    let digests = rpmfile::header_digests(meta);
    let legacy_md5 = meta
        .signature
        .get_entry_data_as_binary(IndexSignatureTag::RPMSIGTAG_MD5)
        .ok()
        .map(hex::encode);
    match digests.first() {
        Some((algo, want)) => {
            let got = rpmfile::digest_hex(*algo, prefix.main_header());
            if &got != want {
                bail!(
                    "header {} digest mismatch (the header is corrupt or was altered): expected {want}, got {got}",
                    algo.name()
                );
            }
        }
        None if legacy_md5.is_some() => {}
        None => {
            bail!("has no header digest (SHA3-256, SHA256, SHA1 or MD5): it cannot be verified")
        }
    }
    if let Some(k) = keyring {
        k.check(prefix)?;
    }
    let header_sha256: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(prefix.main_header()).into()
    };

    // 2. Already there? This copy must still be whole: checked by its
    // payload digests when it has them, else by the full import below,
    // which then keeps nothing.
    let final_path = pool.packages_dir().join(&name);
    let payload_digest = payload_digest(meta);
    let header_files = crate::pkg::file_count(meta);
    let lookup = || {
        existing(
            &final_path,
            &header_sha256,
            &nevra_s,
            src,
            header_files,
            replace,
        )
    };
    let present = lookup()?;
    if let Some(o) = &present {
        if !replace && (payload_digest.is_some() || legacy_md5.is_some()) {
            verify_payload(input, meta, prefix, &payload_digest, &legacy_md5)
                .context("the pool already holds this package, but this copy of it is damaged")?;
            return Ok(o.clone());
        }
    }

    // 3. Plan: every regular file's place, by file index.
    let (files, algo) = crate::pkg::files(meta)?;
    let data_start = align_up(prefix.bytes.len() as u64);
    let mut offsets: Vec<Option<u64>> = vec![None; files.len()];
    let mut cursor = data_start;
    for (i, f) in files.iter().enumerate() {
        if f.has_data() && f.link_leader == i as u32 && f.size > 0 {
            offsets[i] = Some(cursor);
            cursor = cursor
                .checked_add(align_up(f.size))
                .ok_or_else(|| anyhow!("file sizes in the header overflow"))?;
        }
    }
    let index_offset = cursor;
    let by_path: HashMap<&str, u32> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i as u32))
        .collect();

    // 4. Stream the payload.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("import-{name}."))
        .tempfile_in(pool.tmp_dir())
        .context("cannot create a file in the pool's tmp/")?;
    let pkg = tmp.as_file();
    pkg.write_all_at(&prefix.bytes, 0)?;
    crate::failpoint::hit("import.staged");
    let staging = tempfile::tempfile_in(pool.tmp_dir())?;

    let hashers = payload_hashers(prefix, &payload_digest, &legacy_md5);
    // Members per hardlink set; in a stripped archive only the set's last
    // member carries the data (as in rpm's rpmfiArchiveHasContent).
    let mut set_members: HashMap<u32, (u32, u32)> = HashMap::new(); // leader -> (count, last)
    for (i, f) in files.iter().enumerate() {
        let e = set_members.entry(f.link_leader).or_insert((0, i as u32));
        e.0 += 1;
        e.1 = i as u32;
    }
    let in_set = |i: usize| set_members[&files[i].link_leader].0 > 1;
    let stripped_sizes: Vec<u64> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (count, last) = set_members[&f.link_leader];
            if count > 1 && last != i as u32 {
                0
            } else {
                f.size
            }
        })
        .collect();
    let mut blakes: HashMap<u32, [u8; 32]> = HashMap::new();
    let mut raw = BufReader::with_capacity(256 * 1024, HashingReader::new(input, hashers));
    let compression = {
        use std::io::BufRead;
        let head = raw.fill_buf().context("cannot read the payload")?;
        match Compression::detect(head) {
            Some(c) => c,
            None if head.is_empty() && files.iter().all(|f| !f.has_data() || f.size == 0) => {
                Compression::None
            }
            None => Compression::from_meta(meta).map_err(|e| anyhow!(e))?,
        }
    };
    let mut got: Vec<bool> = vec![false; files.len()];
    let mut local: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
    let mut written = 0u64;
    let mut cloned = 0u64;
    let mut content_bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    {
        let dec = rpmfile::decompressor(&mut raw, compression)
            .context("cannot start the payload decompressor")?;
        let mut cpio = CpioReader::new(dec, stripped_sizes);
        loop {
            let entry = cpio
                .next_entry()
                .map_err(|e| anyhow!("payload is corrupt: {e}"))?;
            let Some(entry) = entry else { break };
            let idx = match entry.file_index {
                Some(i) => i,
                None => {
                    let name = entry.name.strip_prefix('.').unwrap_or(&entry.name);
                    *by_path.get(name).ok_or_else(|| {
                        anyhow!(
                            "payload holds {:?}, which the header does not list",
                            entry.name
                        )
                    })?
                }
            };
            let f = &files[idx as usize];
            if !f.is_reg() {
                continue; // symlink targets, directories: the header has them.
            }
            if f.is_ghost() {
                bail!("payload holds data for {}, a %ghost file", f.path);
            }
            let leader = f.link_leader as usize;
            if entry.size == 0 && f.size > 0 && in_set(idx as usize) {
                continue; // a hardlink whose data comes with another member
            }
            if entry.size != f.size {
                bail!(
                    "{}: the header says {} bytes but the payload holds {}",
                    f.path,
                    f.size,
                    entry.size
                );
            }
            if f.size == 0 {
                // Empty files (and empty hardlink sets): nothing to store.
                check_digest(algo, algo.hasher(), f)?;
                got[leader] = true;
                continue;
            }
            if got[leader] {
                bail!("{}: the payload holds its data twice", f.path);
            }
            got[leader] = true;
            // Stream into the staging file, hashing as we go.
            staging.set_len(0)?;
            let mut fd = algo.hasher();
            let mut b3 = blake3::Hasher::new();
            let mut at = 0u64;
            let mut data = cpio.data();
            loop {
                let n = data
                    .read(&mut buf)
                    .map_err(|e| anyhow!("payload is corrupt inside {}: {e}", f.path))?;
                if n == 0 {
                    break;
                }
                fd.update(&buf[..n]);
                b3.update(&buf[..n]);
                staging.write_all_at(&buf[..n], at)?;
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
            let off = offsets[leader].expect("planned");
            let alen = align_up(f.size);
            content_bytes += f.size;
            // Where from: this package, the pool, or the staging file.
            if let Some(&(loff, llen)) = local.get(&blake) {
                debug_assert_eq!(llen, f.size);
                cloner
                    .place(pkg, loff, alen, pkg, off)
                    .map_err(|e| anyhow!("{}: {e}", f.path))?;
                cloned += f.size;
            } else {
                let from_pool = content.lock().unwrap().get(&blake).cloned();
                let mut done = false;
                if let Some(loc) = from_pool.filter(|l| l.length == f.size) {
                    // The pool's copy is checked before it is shared: a
                    // damaged package must not pass its damage on.
                    if let Ok(srcf) = File::open(&*loc.package).and_then(|srcf| {
                        range_has_blake3(&srcf, loc.offset, f.size, &blake, &mut buf).and_then(
                            |ok| {
                                if ok {
                                    Ok(srcf)
                                } else {
                                    Err(io::ErrorKind::InvalidData.into())
                                }
                            },
                        )
                    }) {
                        if cloner.place(&srcf, loc.offset, alen, pkg, off).is_ok() {
                            cloned += f.size;
                            done = true;
                        }
                    }
                }
                if !done {
                    // Zero padding makes the staged range block-aligned, so it
                    // can be cloned into the middle of the package.
                    if alen > f.size {
                        staging.write_all_at(&vec![0u8; (alen - f.size) as usize], f.size)?;
                    }
                    cloner
                        .place(&staging, 0, alen, pkg, off)
                        .map_err(|e| anyhow!("{}: {e}", f.path))?;
                    written += f.size;
                }
                local.insert(blake, (off, f.size));
            }
            blakes.insert(leader as u32, blake);
            crate::failpoint::hit("import.placed");
        }
        // Read what the decompressor has left (padding) so the digests cover it.
        let mut inner = cpio.into_inner();
        io::copy(&mut inner, &mut io::sink())
            .map_err(|e| anyhow!("payload is corrupt after the archive: {e}"))?;
    }
    io::copy(&mut raw, &mut io::sink())?;
    let hr = raw.into_inner();
    let payload_len = hr.count;
    check_payload(hr.hashers, &payload_digest, &legacy_md5)?;
    check_sizes(meta, prefix, payload_len)?;
    for (i, f) in files.iter().enumerate() {
        if f.has_data() && f.link_leader == i as u32 && !got[i] {
            bail!("{}: the payload has no data for it", f.path);
        }
    }

    if let Some(o) = present.as_ref().filter(|_| !replace) {
        // Verified in full; the pool's copy stays.
        return Ok(o.clone());
    }

    // 5. The index, then make it durable and visible.
    let mut entries = Vec::new();
    let mut nfiles = 0u64;
    for (i, f) in files.iter().enumerate() {
        nfiles += 1;
        if !f.has_data() {
            continue;
        }
        let leader = f.link_leader as usize;
        let blake = if f.size == 0 {
            *blake3::hash(b"").as_bytes()
        } else {
            *blakes.get(&(leader as u32)).expect("data seen")
        };
        entries.push(Entry {
            file_index: i as u32,
            flags: if leader != i {
                extent::FLAG_HARDLINK_ALIAS
            } else {
                0
            },
            offset: offsets[leader].unwrap_or(0),
            length: f.size,
            blake3: blake,
        });
    }
    let index = Index {
        header_len: prefix.bytes.len() as u64,
        header_sha256,
        entries,
    };
    let tail = index.encode(index_offset);
    pkg.write_all_at(&tail, index_offset)?;
    pkg.set_len(index_offset + tail.len() as u64)?;
    pkg.sync_all()?;
    crate::failpoint::hit("import.synced");
    let tmp_path = tmp.into_temp_path();
    // --replace: over the pool's copy of this same package (same main
    // header, checked above); otherwise never over anything.
    let replacing = replace && present.is_some();
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        &*tmp_path,
        rustix::fs::CWD,
        &final_path,
        if replacing {
            rustix::fs::RenameFlags::empty()
        } else {
            rustix::fs::RenameFlags::NOREPLACE
        },
    ) {
        Ok(()) => {
            let _ = tmp_path.keep();
            crate::failpoint::hit("import.renamed");
        }
        Err(rustix::io::Errno::EXIST) => {
            // Another job in this run imported the same NEVRA first.
            if let Some(o) = lookup()? {
                return Ok(o);
            }
            bail!("{} appeared while importing", final_path.display());
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot rename into {}", final_path.display()))
        }
    }
    content.lock().unwrap().add(&final_path, &index);
    Ok(PackageOutcome {
        source: src.to_path_buf(),
        nevra: Some(nevra_s),
        file: Some(name.clone()),
        status: if replacing { "replaced" } else { "imported" },
        error: None,
        files: nfiles,
        content_bytes,
        written_bytes: written,
        cloned_bytes: cloned,
    })
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
/// the header's payload digest and the signature's MD5 and sizes: how a
/// package the pool already holds is checked without decompressing it.
fn verify_payload(
    input: BufReader<File>,
    meta: &rpm::PackageMetadata,
    prefix: &rpmfile::RpmPrefix,
    payload_digest: &Option<(DigestAlgo, String)>,
    legacy_md5: &Option<String>,
) -> Result<()> {
    let mut r = HashingReader::new(input, payload_hashers(prefix, payload_digest, legacy_md5));
    io::copy(&mut r, &mut io::sink()).context("cannot read the payload")?;
    check_payload(r.hashers, payload_digest, legacy_md5)?;
    check_sizes(meta, prefix, r.count)
}

/// The hashers the payload streams through: its digest, then the legacy
/// MD5 over main header and payload (each when the package has it).
fn payload_hashers(
    prefix: &rpmfile::RpmPrefix,
    payload_digest: &Option<(DigestAlgo, String)>,
    legacy_md5: &Option<String>,
) -> Vec<Hasher> {
    let mut hashers = Vec::new();
    if let Some((algo, _)) = payload_digest {
        hashers.push(algo.hasher());
    }
    if legacy_md5.is_some() {
        let mut h = DigestAlgo::Md5.hasher();
        h.update(prefix.main_header());
        hashers.push(h);
    }
    hashers
}

/// Checks the hashers of [`payload_hashers`] after the whole payload.
fn check_payload(
    hashers: Vec<Hasher>,
    payload_digest: &Option<(DigestAlgo, String)>,
    legacy_md5: &Option<String>,
) -> Result<()> {
    let mut hashers = hashers.into_iter();
    if let Some((palgo, want)) = payload_digest {
        let got = hashers.next().expect("payload_hashers made it").hex();
        if &got != want {
            bail!(
                "payload {} digest mismatch (the payload is corrupt or was altered): expected {want}, got {got}",
                palgo.name()
            );
        }
    }
    if let Some(want) = legacy_md5 {
        let got = hashers.next().expect("payload_hashers made it").hex();
        if &got != want {
            bail!("MD5 digest of header and payload does not match: expected {want}, got {got}");
        }
    }
    Ok(())
}

/// The strongest payload digest the header carries (over the compressed payload).
fn payload_digest(meta: &rpm::PackageMetadata) -> Option<(DigestAlgo, String)> {
    let h = &meta.header;
    if let Ok(s) = h.get_entry_data_as_string(IndexTag::RPMTAG_PAYLOAD_SHA3_256) {
        return Some((DigestAlgo::Sha3_256, s.to_ascii_lowercase()));
    }
    if let Ok(s) = h.get_entry_data_as_string(IndexTag::RPMTAG_PAYLOAD_SHA512) {
        return Some((DigestAlgo::Sha512, s.to_ascii_lowercase()));
    }
    if let Ok(v) = h.get_entry_data_as_string_array(IndexTag::RPMTAG_PAYLOADSHA256) {
        if let Some(s) = v.first() {
            let algo = h
                .get_entry_data_as_u32(IndexTag::RPMTAG_PAYLOADSHA256ALGO)
                .ok()
                .and_then(DigestAlgo::from_pgp)
                .unwrap_or(DigestAlgo::Sha256);
            return Some((algo, s.to_ascii_lowercase()));
        }
    }
    None
}

/// The signature header's size tags (main header + compressed payload).
fn check_sizes(
    meta: &rpm::PackageMetadata,
    prefix: &rpmfile::RpmPrefix,
    payload_len: u64,
) -> Result<()> {
    let have = prefix.main_header().len() as u64 + payload_len;
    let want = meta
        .signature
        .get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGSIZE)
        .ok()
        .or_else(|| {
            meta.signature
                .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_SIZE)
                .ok()
                .map(u64::from)
        });
    if let Some(want) = want {
        if want != have {
            bail!("the signature header says header and payload are {want} bytes, but they are {have}");
        }
    }
    Ok(())
}

/// If `path` already holds a package: the same one (same main header) is
/// "present"; another one under the same name is refused.
fn existing(
    path: &Path,
    header_sha256: &[u8; 32],
    nevra: &str,
    src: &Path,
    files: u64,
    replace: bool,
) -> Result<Option<PackageOutcome>> {
    let outcome = |content_bytes| PackageOutcome {
        source: src.to_path_buf(),
        nevra: Some(nevra.to_string()),
        file: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        status: "present",
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
            let same = rpmfile::read_prefix(&mut r).ok().map(|p| {
                use sha2::Digest;
                let sha: [u8; 32] = sha2::Sha256::digest(p.main_header()).into();
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
