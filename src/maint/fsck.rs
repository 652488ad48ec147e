//! `reimage fsck`: checks that a pool is whole, and with `--repair` removes
//! what is provably garbage (and nothing else).
//!
//! What is checked:
//! - **packages/**: every entry is a regular file named `NAME-VERSION-RELEASE.ARCH`
//!   holding an extent package: its index reads and checks (docs/FORMAT.md);
//!   its header part parses, has the index's length, and its main header has
//!   the index's SHA256; the headers pass every check import makes
//!   (`crate::rpm::trust`: rpm's header rules, every header digest); its file name is the header's NEVRA; the index has exactly one
//!   entry per regular, non-%ghost file of the header, with the header's
//!   sizes, at the offsets import would choose (the layout is a pure function
//!   of the header); every stored file's BLAKE3 matches its bytes and all
//!   padding is zeros. With `full`, every file's content also matches the
//!   header's own file digest (`FILEDIGESTALGO`).
//! - **views/**: every entry is a read-only subvolume (on btrfs; a directory
//!   elsewhere) with a readable `lib/reimage/view.json`; every package it lists
//!   is in `packages/`; `lib/sysimage/packages/` holds exactly one header file
//!   per listed package, byte for byte the package's header part. A view that
//!   fails is reported, never removed: views are published atomically, so a
//!   broken one is damage to look at, not garbage.
//! - **garbage**: anything in `tmp/` (staging; garbage after a crash, removed
//!   by the next writer anyway: reported, not a problem), and temporary files
//!   (`.tmpXXXXXX`, as written by an interrupted atomic write) anywhere else
//!   in the pool (`packages/`, `index/`, `images/`, the pool root): a problem
//!   until `--repair` removes them.
//!
//! `--repair` takes the writer lock, removes `tmp/`'s content and stray
//! temporary files, and nothing else. Without it fsck changes nothing; it
//! examines `tmp/` only when no writer holds the lock.
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use sysimage::meta::{ViewMeta, VIEW_META};

use crate::store::extent::{align_up, Index, FLAG_HARDLINK_ALIAS};
use crate::store::pool::Pool;
use crate::store::writer::Layout;
use crate::views::compose::HEADER_DIR;

/// Options of `reimage fsck`.
#[derive(Debug, Clone, Default)]
pub struct FsckOptions {
    /// Remove `tmp/` content and stray temporary files.
    pub repair: bool,
    /// Also check every file against the header's file digest.
    pub full: bool,
    /// With `repair`: wait for another writer instead of failing.
    pub wait: bool,
}

/// One thing wrong with the pool.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// `package`, `view`, `stray`, `pool`; for a system (deploy/check.rs)
    /// `state`, `deployment`, `boot`.
    pub kind: &'static str,
    pub path: PathBuf,
    pub message: String,
}

/// What fsck found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FsckReport {
    /// Extent packages checked (good or not).
    pub packages: usize,
    /// Files (index entries) checked.
    pub files: u64,
    /// Content bytes read and hashed.
    pub bytes: u64,
    pub views: usize,
    /// Problems that remain (exit status 1 when not empty).
    pub problems: Vec<Problem>,
    /// Garbage found: `tmp/` entries and stray temporary files.
    pub garbage: Vec<PathBuf>,
    /// Garbage removed (`--repair`).
    pub repaired: Vec<PathBuf>,
    /// `tmp/` was examined (no writer held the lock, or `--repair`).
    pub tmp_checked: bool,
    pub full: bool,
    pub seconds: f64,
}

impl FsckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A temporary file's name as `tempfile` makes them (`.tmp` + 6 characters),
/// which no final name in the pool can be (package and view names never
/// start with a dot).
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(".tmp")
        .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks the pool (and repairs garbage with `opts.repair`).
pub fn fsck(pool: &Pool, opts: &FsckOptions) -> Result<FsckReport> {
    let started = Instant::now();
    let mut r = FsckReport {
        full: opts.full,
        ..Default::default()
    };
    // The lock: required to repair; otherwise only taken when free, so that
    // a running writer's tmp/ is not mistaken for garbage.
    let lock = if opts.repair {
        Some(pool.lock(opts.wait)?)
    } else {
        pool.lock(false).ok()
    };
    r.tmp_checked = lock.is_some();

    // Garbage.
    if r.tmp_checked {
        if let Ok(rd) = std::fs::read_dir(pool.tmp_dir()) {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            r.garbage.extend(v.iter().cloned());
            if opts.repair && !v.is_empty() {
                pool.clean_tmp()?;
                r.repaired.extend(v);
            }
        }
    }
    let mut strays = Vec::new();
    for dir in [pool.root.clone(), pool.packages_dir(), pool.index_dir()] {
        strays_in(&dir, false, &mut strays);
    }
    strays_in(&pool.images_dir(), true, &mut strays);
    strays_in(&pool.views_dir(), false, &mut strays);
    strays.sort();
    for s in strays {
        r.garbage.push(s.clone());
        if opts.repair {
            crate::store::pool::remove_any(&s)?;
            r.repaired.push(s);
        } else {
            r.problems.push(Problem {
                kind: "stray",
                path: s,
                message: "temporary file left by an interrupted write (fsck --repair removes it)"
                    .into(),
            });
        }
    }

    // Packages.
    let pkg_dir = pool.packages_dir();
    let mut names: Vec<(String, PathBuf)> = match std::fs::read_dir(&pkg_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect(),
        Err(e) => {
            r.problems.push(Problem {
                kind: "pool",
                path: pkg_dir.clone(),
                message: format!("cannot read: {e}"),
            });
            Vec::new()
        }
    };
    names.sort();
    let mut headers: std::collections::HashMap<String, u64> = Default::default();
    for (name, path) in names {
        if is_temp_name(&name) {
            continue; // stray, above
        }
        r.packages += 1;
        match check_package(&path, &name, opts.full) {
            Ok(c) => {
                r.files += c.files;
                r.bytes += c.bytes;
                headers.insert(name, c.header_len);
            }
            Err(e) => r.problems.push(Problem {
                kind: "package",
                path,
                message: format!("{e:#}"),
            }),
        }
    }

    // Views.
    let views_dir = pool.views_dir();
    let btrfs = crate::sys::fs_info(&pool.root)
        .map(|i| i.kind == crate::sys::FsKind::Btrfs)
        .unwrap_or(false);
    let mut views: Vec<PathBuf> = std::fs::read_dir(&views_dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    views.sort();
    for v in views {
        let temp = v
            .file_name()
            .is_some_and(|n| is_temp_name(&n.to_string_lossy()));
        if temp && !v.is_dir() {
            continue; // stray, above
        }
        r.views += 1;
        for message in check_view(pool, &v, btrfs, &headers) {
            r.problems.push(Problem {
                kind: "view",
                path: v.clone(),
                message,
            });
        }
    }
    drop(lock);
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// Temporary files directly in `dir` (recursively with `deep`).
fn strays_in(dir: &Path, deep: bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_temp_name(&name) && !is_dir {
            out.push(e.path());
        } else if deep && is_dir {
            strays_in(&e.path(), true, out);
        }
    }
}

/// What checking one package counted.
pub struct PackageCheck {
    pub files: u64,
    pub bytes: u64,
    pub header_len: u64,
}

/// Checks one extent package completely (see the module doc).
pub fn check_package(path: &Path, name: &str, full: bool) -> Result<PackageCheck> {
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("not a regular file");
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (index, index_offset) = Index::read(&f)?;

    // The header part: read and trusted as import trusts it.
    let mut r = BufReader::new((&f).take(index.header_len));
    let prefix = crate::rpm::stream::read_prefix(&mut r, path)?;
    if prefix.bytes.len() as u64 != index.header_len {
        anyhow::bail!(
            "the header part is {} bytes, the index says {}",
            prefix.bytes.len(),
            index.header_len
        );
    }
    let layout = Layout::new(crate::rpm::trust::check(prefix)?)?;
    if layout.header_sha256 != index.header_sha256 {
        anyhow::bail!("the main header's SHA256 does not match the index");
    }
    if layout.file_name != name {
        anyhow::bail!("holds {}, not {name}", layout.file_name);
    }

    // The index against the one layout rule (crate::store::writer::Layout).
    let (files, algo) = (&layout.files, layout.algo);
    let data_start = align_up(index.header_len);
    let want = layout.entries_by(|leader| index.entry(leader).map(|e| e.blake3).unwrap_or([0; 32]));
    if want.len() != index.entries.len() {
        anyhow::bail!(
            "the index has {} entries, the header {} files with data",
            index.entries.len(),
            want.len()
        );
    }
    for (w, e) in want.iter().zip(&index.entries) {
        let hf = &files[w.file_index as usize];
        if e.file_index != w.file_index {
            anyhow::bail!("the index has no entry for {}", hf.path);
        }
        if e.length != w.length {
            anyhow::bail!(
                "{}: the index says {} bytes, the header {}",
                hf.path,
                e.length,
                w.length
            );
        }
        if e.flags != w.flags {
            anyhow::bail!("{}: hardlink flag disagrees with the header", hf.path);
        }
        if e.offset != w.offset {
            anyhow::bail!(
                "{}: stored at {}, but the layout puts it at {}",
                hf.path,
                e.offset,
                w.offset
            );
        }
    }
    if layout.index_offset != index_offset {
        anyhow::bail!(
            "the index is at {index_offset}, the layout puts it at {}",
            layout.index_offset
        );
    }

    // Bytes: header padding, then every stored file and its padding.
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    check_zeros(&f, index.header_len, data_start, &mut buf)?;
    for e in &index.entries {
        if e.length == 0 || e.flags & FLAG_HARDLINK_ALIAS != 0 {
            continue;
        }
        let hf = &files[e.file_index as usize];
        let mut b3 = blake3::Hasher::new();
        let mut fd = full.then(|| algo.hasher());
        let mut at = e.offset;
        let end = e.offset + e.length;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], at)
                .with_context(|| format!("{}: cannot read its data", hf.path))?;
            b3.update(&buf[..n]);
            if let Some(h) = fd.as_mut() {
                h.update(&buf[..n]);
            }
            at += n as u64;
        }
        bytes += e.length;
        if b3.finalize().as_bytes() != &e.blake3 {
            anyhow::bail!(
                "{}: content does not match its BLAKE3 in the index",
                hf.path
            );
        }
        if let Some(h) = fd {
            let got = h.hex();
            if !hf.digest.is_empty() && got != hf.digest {
                anyhow::bail!(
                    "{}: content does not match the header's {} digest",
                    hf.path,
                    algo.name()
                );
            }
        }
        check_zeros(&f, end, e.offset + align_up(e.length), &mut buf)
            .with_context(|| format!("{}: padding", hf.path))?;
    }
    Ok(PackageCheck {
        files: index.entries.len() as u64,
        bytes,
        header_len: index.header_len,
    })
}

fn check_zeros(f: &File, from: u64, to: u64, buf: &mut [u8]) -> Result<()> {
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|b| *b != 0) {
            anyhow::bail!("padding at {at}..{} is not zeros", at + n as u64);
        }
        at += n as u64;
    }
    Ok(())
}

/// Problems of one view (empty: fine).
fn check_view(
    pool: &Pool,
    view: &Path,
    btrfs: bool,
    headers: &std::collections::HashMap<String, u64>,
) -> Vec<String> {
    let mut out = Vec::new();
    let meta = match view.symlink_metadata() {
        Ok(m) => m,
        Err(e) => return vec![format!("cannot stat: {e}")],
    };
    if !meta.is_dir() {
        return vec!["not a directory (a view is a read-only subvolume)".into()];
    }
    if btrfs {
        if !crate::sys::is_subvolume(view).unwrap_or(false) {
            out.push("not a subvolume: views are published as read-only snapshots".into());
        } else if !crate::sys::is_readonly(view).unwrap_or(false) {
            out.push("is writable: a published view is a read-only subvolume".into());
        }
    }
    let vm = match ViewMeta::read(view) {
        Ok(Some(m)) => m,
        Ok(None) => {
            out.push(format!("has no {VIEW_META}: incomplete"));
            return out;
        }
        Err(e) => {
            out.push(format!("{VIEW_META} cannot be read: {e:#}"));
            return out;
        }
    };
    let mut listed: Vec<String> = vm.packages.iter().map(|p| format!("{p}.rpm")).collect();
    listed.sort();
    let hdir = view.join(HEADER_DIR);
    let mut have: Vec<String> = match std::fs::read_dir(&hdir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            out.push(format!("cannot read {HEADER_DIR}: {e}"));
            Vec::new()
        }
    };
    have.sort();
    if have != listed {
        let extra: Vec<&String> = have.iter().filter(|h| !listed.contains(h)).collect();
        let missing: Vec<&String> = listed.iter().filter(|l| !have.contains(l)).collect();
        out.push(format!(
            "{HEADER_DIR} does not match {VIEW_META}: missing {missing:?}, extra {extra:?}"
        ));
    }
    for p in &vm.packages {
        let pkg = pool.packages_dir().join(p);
        if !pkg.is_file() {
            out.push(format!("uses package {p}, which is not in the pool"));
            continue;
        }
        // The header file is the package's header part, byte for byte.
        let Some(&hl) = headers.get(p) else {
            continue; // the package itself is reported as damaged
        };
        let hf = hdir.join(format!("{p}.rpm"));
        let same = (|| -> std::io::Result<bool> {
            let a = std::fs::read(&hf)?;
            if a.len() as u64 != hl {
                return Ok(false);
            }
            let mut b = vec![0u8; hl as usize];
            File::open(&pkg)?.read_exact_at(&mut b, 0)?;
            Ok(a == b)
        })();
        match same {
            Ok(true) => {}
            Ok(false) => out.push(format!(
                "{HEADER_DIR}/{p}.rpm is not the header part of package {p}"
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // reported above
            Err(e) => out.push(format!("cannot read {HEADER_DIR}/{p}.rpm: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".tmpAb12Z9"));
        assert!(!is_temp_name(".tmpAb12Z"));
        assert!(!is_temp_name(".tmpAb12Z9x"));
        assert!(!is_temp_name("bash-5.2-1.x86_64"));
        assert!(!is_temp_name(".tmp-ab12z9"));
    }
}
