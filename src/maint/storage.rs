//! `reimage dedupe`, `usage`, `gc`: keeping the pool shared and small, and
//! saying where the bytes go. See `docs/storage.md`.
//!
//! How bytes are counted (as `compsize` does): every file's `EXTENT_DATA`
//! items are read from the btrfs file tree ([`sys::file_extents`],
//! [`sys::subvolume_file_extents`]). A physical extent (`disk_bytenr`) is
//! counted once, at its full allocated size (`disk_num_bytes`), for as long
//! as any item anywhere references any part of it: btrfs frees an extent
//! only when no part of it is referenced. "Referenced" is the sum of the
//! items' lengths (what the files hold). An *owner* is one extent package
//! or one view; an extent is *exclusive* to an owner when no other owner in
//! the pool references it, else *shared*.
//!
//! State kept by `dedupe` (derived, safe to delete):
//!
//! ```text
//! POOL/index/dedupe.json   per package file: size, mtime, inode, "clean"
//!                          (file-sized extents) at the end of the last run
//! ```
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::store::extent::{align_up, Index, FLAG_HARDLINK_ALIAS};
use crate::store::pool::Pool;
use crate::sys::{self, DedupeOutcome, FileExtent, FileExtentKind, SysError};
use crate::util::report::Reporter;

// ---------------------------------------------------------------------------
// Accounting: physical extents per owner

/// What one owner (a package file or a view) references.
#[derive(Debug, Default, Clone)]
struct OwnerExtents {
    /// disk_bytenr -> disk_num_bytes of every physical extent referenced.
    extents: HashMap<u64, u64>,
    /// Sum of the referenced lengths of all items.
    referenced: u64,
    /// Bytes of inline extents (stored in metadata, never shared).
    inline: u64,
}

impl OwnerExtents {
    fn add(&mut self, fe: &FileExtent) {
        match fe.kind {
            FileExtentKind::Inline => {
                self.inline += fe.disk_num_bytes;
                self.referenced += fe.num_bytes;
            }
            _ if fe.is_hole() => {}
            _ => {
                self.extents.insert(fe.disk_bytenr, fe.disk_num_bytes);
                self.referenced += fe.num_bytes;
            }
        }
    }
}

/// Disk figures of one owner, counted like `compsize`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct UsageRow {
    /// Package file name or view name.
    pub name: String,
    /// Bytes the owner's files hold (sum of their extent references).
    pub referenced: u64,
    /// Allocated bytes of every physical extent it references, each once
    /// (what `compsize` calls Disk Usage for these files alone).
    pub disk: u64,
    /// Of `disk`: extents some other package or view references too.
    pub shared: u64,
    /// Of `disk`: extents no other package or view references: what
    /// removing this owner alone would free.
    pub exclusive: u64,
    /// Distinct physical extents.
    pub extents: u64,
}

/// Pool-wide figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct UsageTotals {
    /// Every physical extent referenced by any package or view, once.
    pub disk: u64,
    /// Sum of all owners' referenced bytes.
    pub referenced: u64,
    /// Extents referenced by packages (union).
    pub packages_disk: u64,
    /// Extents referenced by views (union).
    pub views_disk: u64,
    /// Extents referenced by views but by no package (e.g. old copies of
    /// packages that were rebuilt or removed): freed when those views go.
    pub views_only: u64,
    /// Extents referenced by more than one owner.
    pub shared: u64,
}

/// The result of [`usage`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub packages: Vec<UsageRow>,
    pub views: Vec<UsageRow>,
    pub totals: UsageTotals,
    /// Package files or views that could not be read, with the reason.
    pub errors: Vec<String>,
    pub seconds: f64,
}

/// All owners of a pool and what they reference.
struct Scan {
    packages: Vec<(String, OwnerExtents)>,
    views: Vec<(String, OwnerExtents)>,
    errors: Vec<String>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot read {}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn owner_of_file(path: &Path) -> Result<OwnerExtents> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut o = OwnerExtents::default();
    for fe in sys::file_extents(&f).with_context(|| format!("{}", path.display()))? {
        o.add(&fe);
    }
    Ok(o)
}

fn owner_of_view(path: &Path) -> Result<OwnerExtents> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut o = OwnerExtents::default();
    sys::subvolume_file_extents(&f, &mut |fe| o.add(&fe))
        .with_context(|| format!("{}", path.display()))?;
    Ok(o)
}

/// Reads the extent items of every package and view. The pool must be on
/// btrfs (anything else is refused with the reason).
fn scan(pool: &Pool) -> Result<Scan> {
    let fs = sys::fs_info(&pool.root).with_context(|| format!("{}", pool.root.display()))?;
    if fs.kind != sys::FsKind::Btrfs {
        bail!(
            "{} is on {}: usage is counted from btrfs extent items (only btrfs pools)",
            pool.root.display(),
            fs.kind
        );
    }
    // Delayed allocation has no extent items yet: flush first.
    pool.syncfs()?;
    let mut s = Scan {
        packages: Vec::new(),
        views: Vec::new(),
        errors: Vec::new(),
    };
    for p in sorted_entries(&pool.packages_dir())? {
        if !p.symlink_metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        match owner_of_file(&p) {
            Ok(o) => s.packages.push((file_name(&p), o)),
            Err(e) => s.errors.push(format!("{e:#}")),
        }
    }
    for p in sorted_entries(&pool.views_dir())? {
        if !p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        match owner_of_view(&p) {
            Ok(o) => s.views.push((file_name(&p), o)),
            Err(e) => s.errors.push(format!("{e:#}")),
        }
    }
    Ok(s)
}

/// Turns per-owner extent sets into rows and totals.
fn account(
    packages: &[(String, OwnerExtents)],
    views: &[(String, OwnerExtents)],
) -> (Vec<UsageRow>, Vec<UsageRow>, UsageTotals) {
    // bytenr -> (size, owners, referenced by a package, by a view)
    let mut global: HashMap<u64, (u64, u32, bool, bool)> = HashMap::new();
    for (is_view, list) in [(false, packages), (true, views)] {
        for (_, o) in list {
            for (&b, &size) in &o.extents {
                let g = global.entry(b).or_insert((size, 0, false, false));
                g.1 += 1;
                if is_view {
                    g.3 = true;
                } else {
                    g.2 = true;
                }
            }
        }
    }
    let row = |(name, o): &(String, OwnerExtents)| {
        let mut r = UsageRow {
            name: name.clone(),
            referenced: o.referenced,
            disk: o.inline,
            exclusive: o.inline,
            extents: o.extents.len() as u64,
            shared: 0,
        };
        for (b, &size) in &o.extents {
            r.disk += size;
            if global[b].1 == 1 {
                r.exclusive += size;
            }
        }
        r.shared = r.disk - r.exclusive;
        r
    };
    let prow: Vec<UsageRow> = packages.iter().map(row).collect();
    let vrow: Vec<UsageRow> = views.iter().map(row).collect();
    let mut t = UsageTotals::default();
    for &(size, owners, in_pkg, in_view) in global.values() {
        t.disk += size;
        if in_pkg {
            t.packages_disk += size;
        }
        if in_view {
            t.views_disk += size;
        }
        if in_view && !in_pkg {
            t.views_only += size;
        }
        if owners > 1 {
            t.shared += size;
        }
    }
    for (_, o) in packages.iter().chain(views) {
        t.disk += o.inline;
        t.referenced += o.referenced;
    }
    // Inline data lives in the owner's own metadata.
    t.packages_disk += packages.iter().map(|(_, o)| o.inline).sum::<u64>();
    let views_inline: u64 = views.iter().map(|(_, o)| o.inline).sum();
    t.views_disk += views_inline;
    t.views_only += views_inline;
    (prow, vrow, t)
}

/// `reimage usage`: per package and per view, bytes referenced, shared and
/// exclusive, and pool totals, counted from the btrfs extent items.
pub fn usage(pool: &Pool) -> Result<Usage> {
    let started = Instant::now();
    let s = scan(pool)?;
    let (packages, views, totals) = account(&s.packages, &s.views);
    Ok(Usage {
        packages,
        views,
        totals,
        errors: s.errors,
        seconds: started.elapsed().as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------
// Dedupe

/// Options of [`dedupe`].
#[derive(Debug, Clone, Default)]
pub struct DedupeOptions {
    /// Say what would be done; change nothing.
    pub dry_run: bool,
    /// Wait for another writer instead of failing.
    pub wait: bool,
}

/// The result of [`dedupe`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct DedupeReport {
    pub dry_run: bool,
    /// Extent packages in the pool.
    pub packages: usize,
    /// Packages new or changed since the last run (all on a first run).
    pub changed: usize,
    /// Nothing changed since the last run: nothing was looked at.
    pub unchanged: bool,
    /// Groups of identical content (same BLAKE3 and length) in more than one
    /// place that involve a changed package.
    pub groups: usize,
    /// Bytes (content, each extra copy) already sharing storage with their group.
    pub already_shared_bytes: u64,
    /// Bytes made to share storage with FIDEDUPERANGE (dry run: would be).
    pub deduped_bytes: u64,
    /// Ranges the kernel found different (a stale or damaged index): left alone.
    pub differing_ranges: u64,
    /// Packages rebuilt from file-sized extents (dry run: would be).
    pub rebuilt: Vec<String>,
    /// Packages stored as big extents that were left as they are: each is
    /// the copy every other one of its contents shares (its extent stays
    /// fully used, so nothing of it is wasted), and rebuilding it would only
    /// rewrite bytes.
    pub kept: Vec<String>,
    /// Content bytes still stored more than once: copies inside kept
    /// packages of content another kept package holds (or that the package
    /// holds twice), where a rebuild would have written more than it frees.
    pub left_bytes: u64,
    /// Of the rebuilt packages: bytes cloned from content the pool has.
    pub rebuilt_cloned_bytes: u64,
    /// Of the rebuilt packages: bytes written anew.
    pub rebuilt_written_bytes: u64,
    /// Disk usage of all packages and views (compsize's way) before and after.
    pub disk_before: u64,
    pub disk_after: u64,
    /// `disk_before - disk_after`.
    pub freed_bytes: u64,
    /// Extents referenced by views and by no package after the run (old
    /// extents of rebuilt packages that views still reflink): freed only
    /// when those views are removed.
    pub held_by_views: u64,
    /// Problems with single packages (the run went on without them).
    pub errors: Vec<String>,
    pub seconds: f64,
}

/// `POOL/index/dedupe.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    format: u32,
    packages: BTreeMap<String, Stamp>,
}

/// What a package file looked like at the end of the last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

const STATE_FILE: &str = "dedupe.json";
const STATE_FORMAT: u32 = 1;

fn load_state(pool: &Pool) -> State {
    let path = pool.index_dir().join(STATE_FILE);
    std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<State>(&b).ok())
        .filter(|s| s.format == STATE_FORMAT)
        .unwrap_or_default()
}

fn save_state(pool: &Pool, state: &State) -> Result<()> {
    std::fs::create_dir_all(pool.index_dir())?;
    let text = serde_json::to_vec_pretty(state)?;
    crate::util::atomic::write_atomic(&pool.index_dir().join(STATE_FILE), &text)
}

/// One package during a dedupe run.
struct Pkg {
    name: String,
    path: PathBuf,
    index: Index,
    index_offset: u64,
    size: u64,
    changed: bool,
    /// Extent items (read when the package takes part in a group).
    extents: Option<Vec<FileExtent>>,
}

impl Pkg {
    fn load_extents(&mut self) -> Result<&[FileExtent]> {
        if self.extents.is_none() {
            let f = File::open(&self.path)
                .with_context(|| format!("cannot open {}", self.path.display()))?;
            self.extents =
                Some(sys::file_extents(&f).with_context(|| format!("{}", self.path.display()))?);
        }
        Ok(self.extents.as_deref().unwrap())
    }

    /// The data regions of the package: (start, aligned length) of each
    /// stored file's data, in offset order.
    fn regions(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .index
            .entries
            .iter()
            .filter(|e| e.length > 0 && e.flags & FLAG_HARDLINK_ALIAS == 0)
            .map(|e| (e.offset, align_up(e.length)))
            .collect();
        v.sort();
        v
    }
}

/// Physical extents (disk_bytenr) that a package references whole, and
/// which packages do: such an extent is fully used for as long as that
/// package is there, so another package referencing part of it (sharing
/// with a kept big-extent package) wastes nothing.
type WholeBy = HashMap<u64, BTreeSet<usize>>;

fn whole_by(pkgs: &[Pkg]) -> WholeBy {
    let mut out: WholeBy = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        let Some(extents) = &p.extents else { continue };
        // Per extent: the parts this package references, merged.
        let mut parts: HashMap<u64, (u64, Vec<(u64, u64)>)> = HashMap::new();
        for fe in extents {
            if fe.kind == FileExtentKind::Inline || fe.is_hole() {
                continue;
            }
            let e = parts
                .entry(fe.disk_bytenr)
                .or_insert((fe.ram_bytes, Vec::new()));
            e.1.push((fe.extent_offset, fe.extent_offset + fe.num_bytes));
        }
        for (bytenr, (size, mut ranges)) in parts {
            ranges.sort_unstable();
            let mut covered = 0u64;
            for (s, e) in ranges {
                if s > covered {
                    break;
                }
                covered = covered.max(e);
            }
            if covered >= size {
                out.entry(bytenr).or_default().insert(i);
            }
        }
    }
    out
}

/// Whether `by` references extent `bytenr` whole while being some other
/// package than `me`.
fn whole_elsewhere(whole: &WholeBy, bytenr: u64, me: usize) -> bool {
    whole
        .get(&bytenr)
        .is_some_and(|s| s.iter().any(|&o| o != me))
}

/// Whether a package is stored as file-sized extents: no extent behind a
/// file's data is larger than that file's (aligned) data, and the header and
/// index are not in an extent larger than both together. A package written
/// as one big extent (`cp`, defragment, rsync) is not: sharing parts of it
/// can never free that extent. An extent another package references whole
/// (a kept big-extent package this one shares with) does not count.
fn is_clean(p: &Pkg, me: usize, extents: &[FileExtent], whole: &WholeBy) -> bool {
    let regions = p.regions();
    let other = align_up(p.index.header_len) + align_up(p.size - p.index_offset);
    extents
        .iter()
        .filter(|fe| fe.kind != FileExtentKind::Inline && !fe.is_hole())
        .all(|fe| {
            // The region holding the start of this item.
            let i = regions.partition_point(|&(s, _)| s <= fe.file_offset);
            let limit = match i.checked_sub(1).map(|i| regions[i]) {
                Some((s, l)) if fe.file_offset < s + l => l,
                _ => other,
            };
            let ok = fe.ram_bytes <= limit || whole_elsewhere(whole, fe.disk_bytenr, me);
            if !ok {
                crate::util::runner::log::debug(&format!(
                    "dedupe: {}: the extent at {} ({} bytes, {} of it referenced from {}) is larger than the {limit} bytes there",
                    p.name, fe.file_offset, fe.ram_bytes, fe.num_bytes, fe.extent_offset
                ));
            }
            ok
        })
}

/// The physical places behind `[off, off + len)` of a file: (disk_bytenr,
/// offset in the extent, length) runs, merged where contiguous. Two ranges
/// share storage exactly when their runs are equal.
fn physical(extents: &[FileExtent], off: u64, len: u64) -> Vec<(u64, u64, u64)> {
    let end = off + len;
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for fe in extents {
        let (s, e) = (fe.file_offset, fe.file_offset + fe.num_bytes);
        if e <= off || s >= end {
            continue;
        }
        let from = s.max(off);
        let to = e.min(end);
        let (b, o) = if fe.kind == FileExtentKind::Inline || fe.is_hole() {
            // Never shared: make it unequal to anything else.
            (u64::MAX, fe.ino)
        } else {
            (fe.disk_bytenr, fe.extent_offset + (from - s))
        };
        match out.last_mut() {
            Some(last) if last.0 == b && last.1 + last.2 == o => last.2 += to - from,
            _ => out.push((b, o, to - from)),
        }
    }
    out
}

/// One place holding a group's content.
#[derive(Clone, Copy, Debug)]
struct Member {
    pkg: usize,
    offset: u64,
}

/// Content key: BLAKE3 and length.
type Key = ([u8; 32], u64);

/// `reimage dedupe`: share identical content across extent packages.
///
/// Under the pool's write lock: reads every package's index, groups stored
/// file contents by (BLAKE3, length), and for every group that involves a
/// package new or changed since the last run:
/// 1. rebuilds packages stored as big extents (see [`is_clean`]) from
///    file-sized extents, in parallel waves, reading each byte once: content
///    another copy holds is shared with it by FIDEDUPERANGE, the rest read,
///    checked against the index (BLAKE3s, header SHA256) and written (in
///    `tmp/`, then renamed over the old file: the same bytes; see [`rebuild`]);
/// 2. shares every other copy with one source per group via FIDEDUPERANGE
///    (the kernel compares the bytes: a stale index changes nothing).
///
/// Disk usage of packages and views is measured before and after, the way
/// `compsize` counts.
pub fn dedupe(pool: &Pool, opts: &DedupeOptions, reporter: &dyn Reporter) -> Result<DedupeReport> {
    let started = Instant::now();
    let _lock = pool.lock(opts.wait)?;
    if !opts.dry_run {
        pool.clean_tmp()?;
    }
    let mut r = DedupeReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let state = load_state(pool);

    // 1. Which packages changed since the last run (a stat each).
    let mut stamps: Vec<(String, PathBuf, Stamp)> = Vec::new();
    for p in sorted_entries(&pool.packages_dir())? {
        let meta = p.symlink_metadata()?;
        if meta.is_file() {
            stamps.push((file_name(&p), p, Stamp::of(&meta)));
        }
    }
    r.packages = stamps.len();
    let changed: BTreeSet<&str> = stamps
        .iter()
        .filter(|(n, _, s)| state.packages.get(n) != Some(s))
        .map(|(n, _, _)| n.as_str())
        .collect();
    r.changed = changed.len();
    if changed.is_empty() && !stamps.is_empty() {
        r.unchanged = true;
        r.seconds = started.elapsed().as_secs_f64();
        return Ok(r);
    }

    // 2. Indexes and groups.
    let (mut pkgs, groups) = load_groups(&stamps, &changed, &mut r);
    let mut involved: BTreeSet<usize> = BTreeSet::new();
    for m in groups.values().flatten() {
        involved.insert(m.pkg);
    }

    // 3. Before: disk usage of the pool, and which involved packages are
    // stored as big extents.
    let before = if groups.is_empty() {
        None
    } else {
        Some(scan(pool)?)
    };
    if let Some(s) = &before {
        r.disk_before = account(&s.packages, &s.views).2.disk;
    }
    // Every package's extent items (not only the involved ones): an
    // involved package may reference an extent some other package holds
    // whole.
    if !groups.is_empty() {
        for (i, p) in pkgs.iter_mut().enumerate() {
            if let Err(e) = p.load_extents() {
                if involved.contains(&i) {
                    r.errors.push(format!("{e:#}"));
                }
            }
        }
    }
    let whole = whole_by(&pkgs);
    let unclean: BTreeSet<usize> = involved
        .iter()
        .copied()
        .filter(|&i| {
            let p = &pkgs[i];
            p.extents
                .as_deref()
                .is_some_and(|ext| !is_clean(p, i, ext, &whole))
        })
        .collect();
    // Big-extent packages that can stay as they are (the source of all
    // they share); the others are rebuilt.
    let kept = choose_kept(&pkgs, &groups, &unclean);
    r.kept = kept.pkgs.iter().map(|&i| pkgs[i].name.clone()).collect();
    let to_rebuild: BTreeSet<usize> = unclean.difference(&kept.pkgs).copied().collect();
    let total: u64 = involved.iter().map(|&i| pkgs[i].size).sum();
    reporter.start("deduplicating", total);

    // 4. Rebuild the other packages stored as big extents.
    let failed = rebuild_unclean(
        pool,
        opts,
        &mut pkgs,
        &groups,
        (&to_rebuild, &kept, &whole),
        &mut r,
        reporter,
    );

    // 5. Share every other copy with its group's source (FIDEDUPERANGE).
    share(
        opts,
        &mut pkgs,
        &groups,
        &involved,
        (&to_rebuild, &kept),
        &failed,
        &mut r,
    )?;
    reporter.finish();

    // 6. After: measure, remember.
    if before.is_some() && !opts.dry_run {
        let s = scan(pool)?;
        let (_, _, t) = account(&s.packages, &s.views);
        r.disk_after = t.disk;
        r.held_by_views = t.views_only;
    } else {
        r.disk_after = r.disk_before;
        if let Some(s) = &before {
            r.held_by_views = account(&s.packages, &s.views).2.views_only;
        }
    }
    r.freed_bytes = r.disk_before.saturating_sub(r.disk_after);
    if !opts.dry_run {
        remember(pool, &r)?;
    }
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// Loads every package's index and groups identical contents (by BLAKE3
/// and length) that a changed package takes part in.
#[allow(clippy::type_complexity)]
fn load_groups(
    stamps: &[(String, PathBuf, Stamp)],
    changed: &BTreeSet<&str>,
    r: &mut DedupeReport,
) -> (Vec<Pkg>, HashMap<Key, Vec<Member>>) {
    let mut pkgs: Vec<Pkg> = Vec::new();
    for (name, path, stamp) in stamps {
        let loaded = File::open(path)
            .map_err(anyhow::Error::from)
            .and_then(|f| Index::read(&f).map_err(anyhow::Error::from));
        match loaded {
            Ok((index, index_offset)) => pkgs.push(Pkg {
                name: name.clone(),
                path: path.clone(),
                index,
                index_offset,
                size: stamp.size,
                changed: changed.contains(name.as_str()),
                extents: None,
            }),
            Err(e) => r
                .errors
                .push(format!("{}: {e:#} (skipped)", path.display())),
        }
    }
    let mut groups: HashMap<Key, Vec<Member>> = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        for e in &p.index.entries {
            if e.length > 0 && e.flags & FLAG_HARDLINK_ALIAS == 0 {
                groups
                    .entry((e.blake3, e.length))
                    .or_default()
                    .push(Member {
                        pkg: i,
                        offset: e.offset,
                    });
            }
        }
    }
    groups.retain(|_, m| m.len() > 1 && m.iter().any(|m| pkgs[m.pkg].changed));
    r.groups = groups.len();
    (pkgs, groups)
}

/// A rebuild must free at least 1/8 of the bytes it writes. Measured on the
/// realistic v1 + v2 pool copied with `cp` (docs/storage.md): at 1/8 the
/// pool ends within 0.3% of full sharing (1 MB of 424 MB left stored twice,
/// license files and the like that would cost rewriting a whole libc6) while
/// skipping 32 of 63 rebuilds; at 1/1 it skips 57 but leaves 52 MB.
const REBUILD_WORTH: u64 = 8;

/// Big-extent packages left as they are, and the package whose copy each
/// group's other copies share.
#[derive(Default)]
struct Kept {
    pkgs: BTreeSet<usize>,
    /// Group -> the kept package that holds its source copy.
    owner: HashMap<Key, usize>,
}

/// Which packages stored as big extents (`unclean`) are left as they are.
///
/// A big extent is freed only when nothing references any part of it, so
/// sharing some of a big-extent package's content frees nothing until the
/// whole package is rewritten (a *rebuild*: each file its own extent). A
/// rebuild writes the package's content no other copy holds and frees its
/// copies of content some other package keeps. So, the package with the
/// most content of its own first: a package is rebuilt only when that frees
/// at least 1/[`REBUILD_WORTH`] of what it writes; otherwise it is kept, becomes the
/// source of its groups that have none yet, and its copies of content
/// another kept package holds (or of content it holds twice) stay where
/// they are (`left_bytes`). Two versions of one package mostly rebuild one
/// of the two; a package that shares a license file with another is not
/// rewritten for it.
fn choose_kept(
    pkgs: &[Pkg],
    groups: &HashMap<Key, Vec<Member>>,
    unclean: &BTreeSet<usize>,
) -> Kept {
    let mut member_of: HashMap<usize, Vec<&Key>> = HashMap::new();
    let mut twice: HashMap<usize, u64> = HashMap::new();
    for (key, members) in groups {
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        for m in members {
            if seen.insert(m.pkg) {
                member_of.entry(m.pkg).or_default().push(key);
            } else {
                *twice.entry(m.pkg).or_default() += key.1;
            }
        }
    }
    let unique = |p: &Pkg| -> u64 {
        p.index
            .entries
            .iter()
            .filter(|e| e.length > 0 && e.flags & FLAG_HARDLINK_ALIAS == 0)
            .filter(|e| !groups.contains_key(&(e.blake3, e.length)))
            .map(|e| e.length)
            .sum()
    };
    let mut cands: Vec<(u64, u64, usize)> = unclean
        .iter()
        .map(|&i| (unique(&pkgs[i]), pkgs[i].size, i))
        .collect();
    cands.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut kept = Kept::default();
    for (own, _, i) in cands {
        let keys = member_of.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let (mut freed, mut written) = (twice.get(&i).copied().unwrap_or(0), own);
        for k in keys {
            if kept.owner.contains_key(*k) {
                freed += k.1;
            } else {
                written += k.1;
            }
        }
        let rebuild = freed.saturating_mul(REBUILD_WORTH) >= written;
        crate::util::runner::log::debug(&format!(
            "dedupe: {}: {own} bytes of its own; a rebuild would free {freed} and write {written}: {}",
            pkgs[i].name,
            if rebuild { "rebuilt" } else { "kept" }
        ));
        if !rebuild {
            kept.pkgs.insert(i);
            for k in keys {
                kept.owner.entry(**k).or_insert(i);
            }
        }
    }
    kept
}

/// Where a range of a rebuilt package gets its storage from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    /// Read from the old file and written anew, as its own extent.
    Write,
    /// Shared with `(package, offset)` by FIDEDUPERANGE (the kernel
    /// compares the bytes); `None` for the package itself (content it holds
    /// twice).
    Share(Option<usize>, u64),
}

/// One range of a rebuilt package: `[offset, offset + len)`, the BLAKE3
/// the index gives for its content (`None` for header, padding and index),
/// and where its storage comes from.
#[derive(Clone, Copy, Debug)]
struct Seg {
    offset: u64,
    len: u64,
    content: Option<Key>,
    from: From,
}

/// The plan of one rebuild: every range of the package, in offset order,
/// and the wave it runs in (after the rebuilt packages it shares from).
struct Plan {
    pkg: usize,
    segs: Vec<Seg>,
    wave: usize,
}

/// Plans the rebuild of every package in `unclean`: each stored file's data
/// is shared with a copy some other package holds (a kept one, else a clean
/// one, else one rebuilt in an earlier wave) or written anew; header, index
/// and padding are written anew. Nothing is read here (index and extent
/// items only).
fn plan_rebuilds(
    pkgs: &[Pkg],
    groups: &HashMap<Key, Vec<Member>>,
    unclean: &BTreeSet<usize>,
    kept: &Kept,
) -> Vec<Plan> {
    // A group's source: its copy in the kept package that holds it, else its
    // first copy in a clean one.
    let mut sources: HashMap<Key, (usize, u64)> = HashMap::new();
    for (key, members) in groups {
        let owner = kept.owner.get(key);
        let m = members.iter().find(|m| owner == Some(&m.pkg)).or_else(|| {
            members
                .iter()
                .find(|m| !unclean.contains(&m.pkg) && !kept.pkgs.contains(&m.pkg))
        });
        if let Some(m) = m {
            sources.insert(*key, (m.pkg, m.offset));
        }
    }
    let mut wave_of: HashMap<usize, usize> = HashMap::new();
    let mut plans = Vec::new();
    for &i in unclean {
        let p = &pkgs[i];
        let mut stored: Vec<&crate::store::extent::Entry> = p
            .index
            .entries
            .iter()
            .filter(|e| e.length > 0 && e.flags & FLAG_HARDLINK_ALIAS == 0)
            .collect();
        stored.sort_by_key(|e| e.offset);
        let mut segs = Vec::new();
        let mut wave = 0;
        let mut pos = 0;
        let gap = |segs: &mut Vec<Seg>, from: u64, to: u64| {
            if to > from {
                segs.push(Seg {
                    offset: from,
                    len: to - from,
                    content: None,
                    from: From::Write,
                });
            }
        };
        gap(&mut segs, 0, p.index.data_start());
        pos = pos.max(p.index.data_start());
        for e in stored {
            if e.offset < pos {
                continue; // another entry at the same offset (a hard link)
            }
            gap(&mut segs, pos, e.offset);
            let key = (e.blake3, e.length);
            let from = match sources.get(&key) {
                Some(&(s, off)) if s == i => From::Share(None, off),
                Some(&(s, off)) => {
                    wave = wave.max(wave_of.get(&s).copied().unwrap_or(0));
                    From::Share(Some(s), off)
                }
                None => {
                    if groups.contains_key(&key) {
                        sources.insert(key, (i, e.offset));
                    }
                    From::Write
                }
            };
            segs.push(Seg {
                offset: e.offset,
                len: align_up(e.length),
                content: Some(key),
                from,
            });
            pos = e.offset + align_up(e.length);
        }
        gap(&mut segs, pos, p.index_offset);
        gap(&mut segs, p.index_offset.max(pos), p.size);
        wave_of.insert(i, wave + 1);
        plans.push(Plan {
            pkg: i,
            segs,
            wave: wave + 1,
        });
    }
    plans
}

/// How many packages are rebuilt at once: the work is waiting for reads,
/// writes and the kernel's compares, so more than the cores.
const REBUILD_THREADS: usize = 4;

/// Rebuilds packages stored as big extents (`unclean`, less `kept`) into file-sized
/// extents, wave by wave (a package sharing content first written by another
/// rebuild runs after it), the packages of a wave in parallel. Returns the
/// ones that failed.
#[allow(clippy::too_many_arguments)]
fn rebuild_unclean(
    pool: &Pool,
    opts: &DedupeOptions,
    pkgs: &mut [Pkg],
    groups: &HashMap<Key, Vec<Member>>,
    (unclean, kept, whole): (&BTreeSet<usize>, &Kept, &WholeBy),
    r: &mut DedupeReport,
    reporter: &dyn Reporter,
) -> BTreeSet<usize> {
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let plans = plan_rebuilds(pkgs, groups, unclean, kept);
    if opts.dry_run {
        for plan in &plans {
            r.rebuilt.push(pkgs[plan.pkg].name.clone());
            reporter.advance(pkgs[plan.pkg].size);
        }
        return failed;
    }
    let waves = plans.iter().map(|p| p.wave).max().unwrap_or(0);
    let mut done: BTreeMap<usize, Result<(u64, u64)>> = BTreeMap::new();
    for wave in 1..=waves {
        let todo: Vec<&Plan> = plans.iter().filter(|p| p.wave == wave).collect();
        let shared: &[Pkg] = pkgs;
        let mut results = crate::util::parallel::map(REBUILD_THREADS, &todo, |plan| {
            let res = rebuild(pool, shared, plan, whole);
            reporter.advance(shared[plan.pkg].size);
            (plan.pkg, res)
        });
        // The wave's new files durable at once (one syncfs, not an fsync
        // each), then renamed over the old ones: the next wave shares from
        // them.
        if results.iter().any(|(_, r)| r.is_ok()) {
            if let Err(e) = pool.syncfs() {
                let msg = format!("{e:#}");
                for (_, r) in &mut results {
                    if r.is_ok() {
                        *r = Err(anyhow!("{msg}"));
                    }
                }
            }
        }
        for (i, res) in results {
            let res = res.and_then(|(tmp, shared, written)| {
                tmp.persist(&pkgs[i].path)
                    .with_context(|| format!("cannot rename over {}", pkgs[i].path.display()))?;
                crate::util::failpoint::hit("dedupe.renamed");
                Ok((shared, written))
            });
            done.insert(i, res);
        }
    }
    if !done.is_empty() {
        if let Err(e) = File::open(pool.packages_dir()).and_then(|d| d.sync_all()) {
            r.errors
                .push(format!("fsync {}: {e}", pool.packages_dir().display()));
        }
    }
    for (i, res) in done {
        match res {
            Ok((cloned, written)) => {
                r.rebuilt.push(pkgs[i].name.clone());
                r.rebuilt_cloned_bytes += cloned;
                r.rebuilt_written_bytes += written;
                pkgs[i].extents = None;
            }
            Err(e) => {
                failed.insert(i);
                r.errors.push(format!("{e:#}"));
            }
        }
    }
    failed
}

/// Shares every other copy of a group with its source (FIDEDUPERANGE).
fn share(
    opts: &DedupeOptions,
    pkgs: &mut [Pkg],
    groups: &HashMap<Key, Vec<Member>>,
    involved: &BTreeSet<usize>,
    (unclean, kept): (&BTreeSet<usize>, &Kept),
    failed: &BTreeSet<usize>,
    r: &mut DedupeReport,
) -> Result<()> {
    let mut keys: Vec<&Key> = groups.keys().collect();
    keys.sort();
    for &i in involved {
        if let Err(e) = pkgs[i].load_extents() {
            r.errors.push(format!("{e:#}"));
        }
    }
    let mut files: HashMap<usize, File> = HashMap::new();
    for key in keys {
        let members = &groups[key];
        let alen = align_up(key.1);
        // The source: the copy in the kept package that holds it (its big
        // extent stays fully used), else the first copy not left in a big
        // extent.
        let owner = kept.owner.get(key);
        let src = *members
            .iter()
            .find(|m| owner == Some(&m.pkg))
            .or_else(|| {
                members.iter().find(|m| {
                    let left_big =
                        failed.contains(&m.pkg) || (opts.dry_run && unclean.contains(&m.pkg));
                    !left_big
                })
            })
            .unwrap_or(&members[0]);
        let Some(src_ext) = pkgs[src.pkg].extents.clone() else {
            continue;
        };
        let src_phys = physical(&src_ext, src.offset, alen);
        for m in members
            .iter()
            .filter(|m| (m.pkg, m.offset) != (src.pkg, src.offset))
        {
            let Some(ext) = pkgs[m.pkg].extents.as_deref() else {
                continue;
            };
            if physical(ext, m.offset, alen) == src_phys {
                r.already_shared_bytes += key.1;
                continue;
            }
            if kept.pkgs.contains(&m.pkg) {
                // A kept package's extent stays whole: sharing this copy
                // would free nothing.
                r.left_bytes += key.1;
                continue;
            }
            if opts.dry_run {
                r.deduped_bytes += key.1;
                continue;
            }
            for idx in [src.pkg, m.pkg] {
                if let std::collections::hash_map::Entry::Vacant(v) = files.entry(idx) {
                    v.insert(
                        File::open(&pkgs[idx].path)
                            .with_context(|| format!("cannot open {}", pkgs[idx].path.display()))?,
                    );
                }
            }
            let (sf, df) = (&files[&src.pkg], &files[&m.pkg]);
            crate::util::failpoint::hit("dedupe.shared");
            match sys::dedupe_range(sf, src.offset, alen, df, m.offset) {
                Ok(DedupeOutcome::Deduped(_)) => r.deduped_bytes += key.1,
                Ok(DedupeOutcome::Differs { .. }) => r.differing_ranges += 1,
                Err(e) => r.errors.push(format!(
                    "cannot share {} bytes at {} of {} with {} at {}: {e}",
                    alen, m.offset, pkgs[m.pkg].name, pkgs[src.pkg].name, src.offset
                )),
            }
        }
    }
    drop(files);
    Ok(())
}

/// Remembers each package's stamp, so the next run looks only at what
/// changed; a package that failed is looked at again next time.
fn remember(pool: &Pool, r: &DedupeReport) -> Result<()> {
    let mut next = State {
        format: STATE_FORMAT,
        packages: BTreeMap::new(),
    };
    for p in sorted_entries(&pool.packages_dir())? {
        let name = file_name(&p);
        // A package that failed is looked at again next time.
        if r.errors.iter().any(|e| e.contains(&name)) {
            continue;
        }
        if let Ok(meta) = p.symlink_metadata() {
            if meta.is_file() {
                next.packages.insert(name, Stamp::of(&meta));
            }
        }
    }
    crate::util::failpoint::hit("dedupe.state");
    save_state(pool, &next)?;
    Ok(())
}

/// Rebuilds one package from file-sized extents, reading each of its bytes
/// once. The new file (in `tmp/`) starts as a reflink of the old one (the
/// same bytes, the old big extent); then every range of the plan gets its
/// own storage: content some other copy holds is shared with it by
/// FIDEDUPERANGE (the kernel compares both sides under lock and shares only
/// equal bytes), everything else is read from the old file, checked against
/// the index (BLAKE3 of each file, SHA256 of the main header), staged and
/// cloned into place so it is its own extent. No range is left on the old
/// extent (checked from the extent items), so the rename frees it. Returns
/// the new file, not yet durable nor renamed (the caller does both for a
/// whole wave), and (shared, written) content bytes.
fn rebuild(
    pool: &Pool,
    pkgs: &[Pkg],
    plan: &Plan,
    whole: &WholeBy,
) -> Result<(tempfile::NamedTempFile, u64, u64)> {
    let p = &pkgs[plan.pkg];
    let what = || format!("rebuilding {}", p.path.display());
    let old = File::open(&p.path).with_context(what)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("dedupe-{}.", p.name))
        .tempfile_in(pool.tmp_dir())
        .with_context(|| format!("cannot create a file in {}", pool.tmp_dir().display()))?;
    let new = tmp.as_file();
    sys::clone_file(&old, new).with_context(what)?;
    if new.metadata()?.len() != p.size {
        bail!("{}: changed size while being rebuilt", p.path.display());
    }
    // The sources, open once; their ranges and ours are read ahead while
    // this thread reads and writes the rest.
    let mut srcs: HashMap<usize, File> = HashMap::new();
    let runs = share_runs(&plan.segs);
    for run in &runs {
        if let Some(s) = run.src {
            if let std::collections::hash_map::Entry::Vacant(v) = srcs.entry(s) {
                let f = File::open(&pkgs[s].path)
                    .with_context(|| format!("cannot open {}", pkgs[s].path.display()))?;
                v.insert(f);
            }
            let _ = sys::prefetch(&srcs[&s], run.src_off, run.len);
            let _ = sys::prefetch(new, run.offset, run.len);
        }
    }
    let staging = tempfile::tempfile_in(pool.tmp_dir())?;
    let (mut shared, mut written) = (0u64, 0u64);
    let mut buf = Vec::new();
    // A range read from the old file and checked against the index.
    let read_checked = |seg: &Seg, buf: &mut Vec<u8>| -> Result<()> {
        buf.resize(seg.len as usize, 0);
        old.read_exact_at(buf, seg.offset).with_context(what)?;
        check_segment(p, seg, buf)
    };
    let write = |seg: &Seg, buf: &mut Vec<u8>| -> Result<u64> {
        read_checked(seg, buf)?;
        staging.set_len(0)?;
        staging.write_all_at(buf, 0)?;
        sys::clone_range(&staging, 0, seg.len, new, seg.offset)
            .with_context(|| format!("{}: cannot clone staged data", p.name))?;
        Ok(seg.content.map_or(0, |k| k.1))
    };
    // Writes first: content this package holds twice shares with its first
    // copy, written here. Every range is read, checked and staged at its
    // own place in the staging file (a hole between two ranges keeps them
    // separate extents), written back in one pass, then cloned into place.
    let mut staged: Vec<(u64, &Seg)> = Vec::new();
    let mut at = 0u64;
    for seg in plan.segs.iter().filter(|s| s.from == From::Write) {
        read_checked(seg, &mut buf)?;
        staging.write_all_at(&buf, at)?;
        staged.push((at, seg));
        at += seg.len + GAP;
    }
    let _ = sys::start_writeback(&staging, 0, at);
    for (from, seg) in staged {
        sys::clone_range(&staging, from, seg.len, new, seg.offset)
            .with_context(|| format!("{}: cannot clone staged data", p.name))?;
        written += seg.content.map_or(0, |k| k.1);
    }
    staging.set_len(0)?;
    for run in &runs {
        let src = run.src.map_or(new, |s| &srcs[&s]);
        crate::util::failpoint::hit("dedupe.shared");
        if run.segs.len() > 1 {
            // Consecutive files shared from consecutive places: one call.
            if let Ok(DedupeOutcome::Deduped(_)) =
                sys::dedupe_range(src, run.src_off, run.len, new, run.offset)
            {
                shared += run
                    .segs
                    .iter()
                    .map(|s| s.content.map_or(0, |k| k.1))
                    .sum::<u64>();
                continue;
            }
        }
        // One file at a time (a run that differs somewhere, or one file).
        for seg in &run.segs {
            let From::Share(_, off) = seg.from else {
                continue;
            };
            match sys::dedupe_range(src, off, seg.len, new, seg.offset) {
                Ok(DedupeOutcome::Deduped(_)) => shared += seg.content.map_or(0, |k| k.1),
                // Not the same bytes after all (a stale index): ours, written.
                Ok(DedupeOutcome::Differs { .. }) | Err(_) => written += write(seg, &mut buf)?,
            }
        }
    }
    drop(staging);
    // Nothing of the new file may stay on the old file's extents (other
    // than those another package references whole: a kept package's). Its
    // data came only by clone and FIDEDUPERANGE: its extent items are final.
    let old_extents: std::collections::HashSet<u64> = sys::file_extents(&old)
        .with_context(what)?
        .iter()
        .filter(|fe| fe.kind != FileExtentKind::Inline && !fe.is_hole())
        .filter(|fe| !whole_elsewhere(whole, fe.disk_bytenr, plan.pkg))
        .map(|fe| fe.disk_bytenr)
        .collect();
    let left = sys::file_extents(new)
        .with_context(what)?
        .iter()
        .filter(|fe| old_extents.contains(&fe.disk_bytenr))
        .map(|fe| fe.num_bytes)
        .sum::<u64>();
    if left > 0 {
        bail!(
            "{}: {left} bytes of the rebuilt copy still use the old extents; the package is left as it was",
            p.path.display()
        );
    }
    if new.metadata()?.len() != p.size {
        bail!("{}: the rebuilt copy has another size", p.path.display());
    }
    // The old file's mode (a temporary file is created 0600).
    new.set_permissions(old.metadata()?.permissions())?;
    crate::util::failpoint::hit("dedupe.rebuilt");
    Ok((tmp, shared, written))
}

/// Ranges of a rebuild shared from one place: consecutive segments whose
/// sources are consecutive in the same file (at most [`sys::DEDUPE_CHUNK`]
/// together), so a run of unchanged files is one FIDEDUPERANGE and one
/// read-ahead instead of one per file. The storage is the same: the run
/// references the source's own (file-sized) extents.
struct ShareRun<'p> {
    src: Option<usize>,
    src_off: u64,
    offset: u64,
    len: u64,
    segs: Vec<&'p Seg>,
}

fn share_runs(segs: &[Seg]) -> Vec<ShareRun<'_>> {
    let mut runs: Vec<ShareRun> = Vec::new();
    for seg in segs {
        let From::Share(src, off) = seg.from else {
            continue;
        };
        if let Some(r) = runs.last_mut() {
            if r.src == src
                && src.is_some()
                && r.src_off + r.len == off
                && r.offset + r.len == seg.offset
                && r.len + seg.len <= sys::DEDUPE_CHUNK
            {
                r.len += seg.len;
                r.segs.push(seg);
                continue;
            }
        }
        runs.push(ShareRun {
            src,
            src_off: off,
            offset: seg.offset,
            len: seg.len,
            segs: vec![seg],
        });
    }
    runs
}

/// The hole left between two ranges staged for a rebuild: written back
/// together, each still becomes an extent of its own.
const GAP: u64 = 4096;

/// Checks bytes read for a rebuild against the package's index: a file's
/// content by its BLAKE3 (and zeros in its padding), the main header by the
/// index's SHA256. A package that does not match its index is left as it
/// was (and reported).
fn check_segment(p: &Pkg, seg: &Seg, buf: &[u8]) -> Result<()> {
    let bad = |what: &str| {
        anyhow!(
            "{}: {what} at {} does not match the package's index; the package is left as it was",
            p.path.display(),
            seg.offset
        )
    };
    if let Some((digest, len)) = seg.content {
        let (data, pad) = buf.split_at(len as usize);
        if *blake3::hash(data).as_bytes() != digest || pad.iter().any(|&b| b != 0) {
            return Err(bad("file data"));
        }
    } else if seg.offset == 0 {
        let prefix = crate::rpm::stream::read_prefix(&mut &buf[..], &p.path)?;
        let sha: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(prefix.main_bytes()).into()
        };
        if sha != p.index.header_sha256 || prefix.bytes.len() as u64 != p.index.header_len {
            return Err(bad("the main header"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// gc

/// Options of [`gc`].
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Say what would be removed; change nothing.
    pub dry_run: bool,
    /// Wait for another writer instead of failing.
    pub wait: bool,
}

/// One package gc removed (or would remove).
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub file: String,
    /// Apparent size of the file.
    pub size: u64,
}

/// The result of [`gc`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Packages removed (dry run: that would be).
    pub removed: Vec<Removed>,
    /// Packages kept because a view or an image manifest names them.
    pub kept: usize,
    /// Views and manifests read.
    pub views: usize,
    pub manifests: usize,
    /// Names referenced by a view or manifest but not in the pool.
    pub missing: Vec<String>,
    /// Files in packages/ that are not extent packages: left alone.
    pub skipped: Vec<String>,
    /// Entries of tmp/ removed (dry run: that would be).
    pub tmp_removed: Vec<String>,
    /// Disk space of extents only the removed packages referenced (counted
    /// like compsize; `null` where the pool is not on btrfs).
    pub freed_bytes: Option<u64>,
    pub seconds: f64,
}

/// Package names a manifest entry may give: `file` (`NAME-VERSION-RELEASE.ARCH`,
/// optionally with `.rpm`) or `nevra` (`NAME-[EPOCH:]VERSION-RELEASE.ARCH`),
/// or the entry itself as a string. Returns the pool file name.
pub fn manifest_entry_name(entry: &serde_json::Value) -> Option<String> {
    let s = match entry {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(o) => o
            .get("file")
            .and_then(|v| v.as_str())
            .or_else(|| o.get("nevra").and_then(|v| v.as_str()))?,
        _ => return None,
    };
    let s = s.strip_suffix(".rpm").unwrap_or(s);
    if s.is_empty() || s.contains('/') {
        return None;
    }
    Some(strip_epoch(s))
}

/// `name-E:v-r.a` -> `name-v-r.a` (the pool's file names carry no epoch).
fn strip_epoch(s: &str) -> String {
    let parts: Vec<&str> = s.rsplitn(3, '-').collect();
    if parts.len() == 3 {
        if let Some((e, v)) = parts[1].split_once(':') {
            if e.chars().all(|c| c.is_ascii_digit()) {
                return format!("{}-{}-{}", parts[2], v, parts[0]);
            }
        }
    }
    s.to_string()
}

/// Every package name the image manifests under `images/` reference
/// (recursively, every `*.json` file: `{"packages": [...]}`, see
/// [`manifest_entry_name`]). Any manifest that cannot be read or understood
/// is an error: gc must never guess.
pub fn image_references(pool: &Pool) -> Result<(BTreeSet<String>, usize)> {
    let mut names = BTreeSet::new();
    let mut count = 0;
    let mut stack = vec![pool.images_dir()];
    while let Some(dir) = stack.pop() {
        for p in sorted_entries(&dir)? {
            let meta = p.symlink_metadata()?;
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = std::fs::read(&p)
                .with_context(|| format!("cannot read image manifest {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("image manifest {} is not valid JSON", p.display()))?;
            let list = v
                .get("packages")
                .and_then(|l| l.as_array())
                .ok_or_else(|| {
                    anyhow!(
                        "image manifest {} has no \"packages\" list: gc will not guess what it keeps",
                        p.display()
                    )
                })?;
            for e in list {
                names.insert(manifest_entry_name(e).ok_or_else(|| {
                    anyhow!(
                        "image manifest {}: package entry {e} names no package (need \"file\" or \"nevra\")",
                        p.display()
                    )
                })?);
            }
            count += 1;
        }
    }
    Ok((names, count))
}

/// Every package file name the views use (their `lib/reimage/view.json`).
/// A view without readable metadata is an error: gc must never guess.
pub fn view_references(pool: &Pool) -> Result<(BTreeSet<String>, usize)> {
    let mut names = BTreeSet::new();
    let mut count = 0;
    for p in sorted_entries(&pool.views_dir())? {
        if !p.symlink_metadata()?.is_dir() {
            bail!(
                "{} is not a view (not a directory): remove it or fix it before gc",
                p.display()
            );
        }
        let meta = sysimage::meta::ViewMeta::read(&p)
            .with_context(|| {
                format!(
                    "view {}: cannot read its package list, so gc cannot know what it uses",
                    p.display()
                )
            })?
            .ok_or_else(|| {
                anyhow!(
                    "view {} has no {}: gc cannot know which packages it uses",
                    p.display(),
                    sysimage::meta::VIEW_META
                )
            })?;
        names.extend(meta.packages.iter().cloned());
        count += 1;
    }
    Ok((names, count))
}

/// `reimage gc`: under the write lock, removes extent packages no view and
/// no image manifest references, and cleans `tmp/`.
pub fn gc(pool: &Pool, opts: &GcOptions) -> Result<GcReport> {
    let started = Instant::now();
    let _lock = pool.lock(opts.wait)?;
    let mut r = GcReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let (mut keep, views) = view_references(pool)?;
    let (images, manifests) = image_references(pool)?;
    keep.extend(images);
    r.views = views;
    r.manifests = manifests;

    let mut present = BTreeSet::new();
    let mut doomed: Vec<PathBuf> = Vec::new();
    for p in sorted_entries(&pool.packages_dir())? {
        let name = file_name(&p);
        let meta = p.symlink_metadata()?;
        present.insert(name.clone());
        if keep.contains(&name) {
            r.kept += 1;
            continue;
        }
        let is_pkg = meta.is_file() && File::open(&p).ok().is_some_and(|f| Index::read(&f).is_ok());
        if !is_pkg {
            r.skipped.push(name);
            continue;
        }
        r.removed.push(Removed {
            file: name,
            size: meta.len(),
        });
        doomed.push(p);
    }
    r.missing = keep.difference(&present).cloned().collect();

    // What removing them frees: extents nothing else references.
    let btrfs = sys::fs_info(&pool.root).is_ok_and(|i| i.kind == sys::FsKind::Btrfs);
    if doomed.is_empty() && btrfs {
        r.freed_bytes = Some(0);
    }
    if !doomed.is_empty() && btrfs {
        let s = scan(pool)?;
        let gone: BTreeSet<&str> = r.removed.iter().map(|x| x.file.as_str()).collect();
        let mut elsewhere: std::collections::HashSet<u64> = Default::default();
        for (n, o) in &s.packages {
            if !gone.contains(n.as_str()) {
                elsewhere.extend(o.extents.keys());
            }
        }
        for (_, o) in &s.views {
            elsewhere.extend(o.extents.keys());
        }
        let mut freed: HashMap<u64, u64> = HashMap::new();
        let mut inline = 0;
        for (n, o) in &s.packages {
            if gone.contains(n.as_str()) {
                inline += o.inline;
                for (b, size) in &o.extents {
                    if !elsewhere.contains(b) {
                        freed.insert(*b, *size);
                    }
                }
            }
        }
        r.freed_bytes = Some(freed.values().sum::<u64>() + inline);
    }

    for e in sorted_entries(&pool.tmp_dir())? {
        r.tmp_removed.push(file_name(&e));
    }
    if !opts.dry_run {
        for p in &doomed {
            std::fs::remove_file(p).with_context(|| format!("cannot remove {}", p.display()))?;
            crate::util::failpoint::hit("gc.removed");
        }
        if !doomed.is_empty() {
            File::open(pool.packages_dir())?.sync_all()?;
        }
        crate::util::failpoint::hit("gc.done");
        pool.clean_tmp()?;
        crate::views::planstore::prune(pool);
    }
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// Whether an error from this module came from a filesystem that cannot do
/// what was asked (not btrfs, no CAP_SYS_ADMIN).
pub fn is_unsupported(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<SysError>(),
            Some(SysError::NotSupported(_)) | Some(SysError::PermissionDenied)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fe(file_offset: u64, bytenr: u64, ext_off: u64, len: u64, ram: u64) -> FileExtent {
        FileExtent {
            ino: 300,
            file_offset,
            kind: FileExtentKind::Regular,
            compression: 0,
            disk_bytenr: bytenr,
            disk_num_bytes: ram,
            extent_offset: ext_off,
            num_bytes: len,
            ram_bytes: ram,
        }
    }

    #[test]
    fn physical_runs_merge_and_compare() {
        // One big extent at 1 MiB holding a whole file; a range inside it.
        let a = [fe(0, 1 << 20, 0, 65536, 65536)];
        assert_eq!(physical(&a, 8192, 8192), vec![(1 << 20, 8192, 8192)]);
        // The same bytes split over two items of the same extent: equal.
        let b = [
            fe(0, 1 << 20, 8192, 4096, 65536),
            fe(4096, 1 << 20, 12288, 4096, 65536),
        ];
        assert_eq!(physical(&b, 0, 8192), physical(&a, 8192, 8192));
        // Another extent: different.
        let c = [fe(0, 2 << 20, 0, 8192, 8192)];
        assert_ne!(physical(&c, 0, 8192), physical(&a, 8192, 8192));
    }

    #[test]
    fn accounting_counts_each_extent_once() {
        let mut p1 = OwnerExtents::default();
        p1.add(&fe(0, 100, 0, 8192, 8192));
        p1.add(&fe(8192, 200, 0, 4096, 4096));
        let mut p2 = OwnerExtents::default();
        p2.add(&fe(0, 100, 0, 4096, 8192)); // part of p1's first extent
        let mut v = OwnerExtents::default();
        v.add(&fe(0, 200, 0, 4096, 4096));
        v.add(&fe(0, 300, 0, 4096, 4096));
        let (p, vr, t) = account(&[("p1".into(), p1), ("p2".into(), p2)], &[("v".into(), v)]);
        assert_eq!((p[0].disk, p[0].shared, p[0].exclusive), (12288, 12288, 0));
        assert_eq!(
            (p[1].referenced, p[1].disk, p[1].exclusive),
            (4096, 8192, 0)
        );
        assert_eq!((vr[0].disk, vr[0].exclusive), (8192, 4096));
        assert_eq!(t.disk, 16384);
        assert_eq!(t.packages_disk, 12288);
        assert_eq!(t.views_only, 4096);
        assert_eq!(t.shared, 12288);
        assert_eq!(t.referenced, 8192 + 4096 + 4096 + 8192);
    }

    #[test]
    fn manifest_entries() {
        use serde_json::json;
        let n = |v| manifest_entry_name(&v);
        assert_eq!(
            n(json!({"file": "bash-5.2-1.x86_64"})).as_deref(),
            Some("bash-5.2-1.x86_64")
        );
        assert_eq!(
            n(json!({"nevra": "bash-1:5.2-1.x86_64"})).as_deref(),
            Some("bash-5.2-1.x86_64")
        );
        assert_eq!(
            n(json!("a-b-c-1.0-2.noarch.rpm")).as_deref(),
            Some("a-b-c-1.0-2.noarch")
        );
        assert_eq!(
            n(json!({"nevra": "x-0:1-2.x86_64"})).as_deref(),
            Some("x-1-2.x86_64")
        );
        assert_eq!(n(json!({"name": "bash"})), None);
        assert_eq!(n(json!({"file": "../etc"})), None);
        assert_eq!(n(json!(3)), None);
    }
}
