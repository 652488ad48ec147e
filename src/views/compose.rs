//! `reimage compose`: a package list becomes a read-only view, a `/usr` tree
//! whose file contents are reflinks into the extent packages.
//!
//! Two halves:
//! - [`plan`] (`views/plan.rs`) reads only headers and extent-package indexes and decides every
//!   path of the view: placement (the relocation policy), type, mode, owner,
//!   mtime, where its data comes from; it refuses conflicts, unplaceable paths
//!   and anything that would put a path under a non-directory.
//! - materialisation builds the planned tree in a writable subvolume under
//!   `POOL/tmp/`, creating every entry relative to a directory opened with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and `O_EXCL | O_NOFOLLOW`,
//!   so nothing is ever written through a symlink or outside the tree. After
//!   one `syncfs`, a read-only snapshot of it is created at `views/NAME` (one
//!   ioctl, fails if NAME exists) and the tmp subvolume is deleted.
//!
//! `--from OLD` plans both package sets (with OLD's stored plan, only at the
//! paths the changed packages touch: `views/incremental.rs`), snapshots OLD
//! and applies only the difference; the result equals a full compose of the
//! new list.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use serde::Serialize;
use sysimage::meta::{Relocation, Rule, ViewMeta, VIEW_META};
use sysimage::relocate::Policy;

use super::incremental::{self, Outcome};
pub use super::model::{load_package, Data, LoadedPkg, Node, PkgContent};
use super::planstore::{self, PkgPlacement, Summary};
use crate::store::clone::Cloner;
use crate::store::extent::align_up;
use crate::store::pool::Pool;
use crate::sys;
use crate::util::report::Reporter;

use super::plan::{
    assemble, diff_plans, generated, insert, parent_of, place_all, place_package, PlanDiff,
};
pub use super::plan::{plan, OwnerSources, Plan, HEADER_DIR};

/// Options of `reimage compose`.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    pub name: String,
    /// Package specs: NEVRA, `.rpm` file name, or bare name (newest).
    pub specs: Vec<String>,
    /// A list file of specs (one per line, `#` comments).
    pub list: Option<PathBuf>,
    /// Base view for an incremental compose.
    pub from: Option<String>,
    /// Without `from`: compose whole instead of from the view sharing the
    /// most packages.
    pub no_base: bool,
    pub passwd: Option<PathBuf>,
    pub group: Option<PathBuf>,
    /// `--relocate FROM=TO` rules.
    pub relocate: Vec<String>,
    pub wait: bool,
    /// Image and version recorded as the view's origin (sync).
    pub image: Option<(String, String)>,
}

/// What compose did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ComposeReport {
    pub view: String,
    pub path: PathBuf,
    pub packages: usize,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Bytes of file content placed (reflinked or copied).
    pub bytes: u64,
    /// Data was copied (filesystem without reflinks, pool allows copies).
    pub copied: bool,
    /// The view is a read-only subvolume (false on filesystems without subvolumes).
    pub readonly: bool,
    pub relocations: Vec<Relocation>,
    /// Owner names no table knew: mapped to root.
    pub unknown_owners: Vec<String>,
    /// The base view (`--from`, or chosen: see `auto_base`), and the package
    /// changes applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The base was chosen by compose (no `--from`, no `--no-base`): the
    /// view sharing the most packages with the list.
    pub auto_base: bool,
    /// Packages whose placement came from the base view's stored plan
    /// (their headers and indexes were not read).
    pub stored_placements: usize,
    /// Entries planned: the whole view's, or with a stored plan of the base
    /// only those at the paths the changed packages touch.
    pub planned_entries: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `--from` was given but most entries changed, so the view was composed whole.
    pub whole: bool,
    /// Entries created and removed (incremental: only the difference).
    pub created_entries: u64,
    pub removed_entries: u64,
    pub seconds: f64,
}

/// Loads packages by file name in parallel, reusing any already in `have`.
fn load_all(
    pool: &Pool,
    fnames: &[String],
    have: &[Arc<LoadedPkg>],
) -> Result<Vec<Arc<LoadedPkg>>> {
    use rayon::prelude::*;
    fnames
        .par_iter()
        .map(|f| match have.iter().find(|p| &p.fname == f) {
            Some(p) => Ok(p.clone()),
            None => load_package(&pool.packages_dir().join(f)).map(Arc::new),
        })
        .collect()
}

/// The view metadata of a plan.
fn view_meta(plan: &Plan, opts: &ComposeOptions, from: Option<String>) -> ViewMeta {
    ViewMeta {
        format: sysimage::meta::VIEW_META_FORMAT,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        packages: plan.pkgs.iter().map(|p| p.fname.clone()).collect(),
        relocations: plan.relocations.clone(),
        rules: plan
            .policy
            .rules()
            .iter()
            .map(|(f, t)| Rule {
                from: f.clone(),
                to: t.clone(),
            })
            .collect(),
        users: plan.users.clone(),
        groups: plan.groups.clone(),
        from,
        image: opts.image.as_ref().map(|i| i.0.clone()),
        version: opts.image.as_ref().map(|i| i.1.clone()),
    }
}

// ---------------------------------------------------------------------------
// Package selection

/// Reads specs from a list file: one per line, `#` starts a comment.
pub fn read_list(path: &Path) -> Result<Vec<String>> {
    Ok(read_list_lines(path)?.into_iter().map(|(_, s)| s).collect())
}

/// [`read_list`] with the line number (from 1) of each spec.
pub fn read_list_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read package list {}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i, l.to_string()))
        .collect())
}

struct Candidate {
    fname: String,
    name: String,
    epoch: u32,
    version: String,
    release: String,
    arch: String,
}

/// The package name a pool file name `NAME-VERSION-RELEASE.ARCH` starts
/// with (None if it does not have that shape).
fn name_of_fname(fname: &str) -> Option<&str> {
    let (nvr, _arch) = fname.rsplit_once('.')?;
    let (nv, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

/// The pool's packages, read lazily: a header is read only when its file
/// name could match a spec (every form of spec starts with the package
/// name), and once.
struct Candidates {
    fnames: Vec<String>,
    read: HashMap<String, Option<Candidate>>,
}

impl Candidates {
    fn new(pool: &Pool) -> Result<Candidates> {
        let dir = pool.packages_dir();
        let mut fnames = Vec::new();
        for e in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            fnames.push(e?.file_name().to_string_lossy().into_owned());
        }
        fnames.sort();
        Ok(Candidates {
            fnames,
            read: HashMap::new(),
        })
    }

    /// The packages whose name could start `spec`.
    fn for_spec(&mut self, pool: &Pool, spec: &str) -> Result<Vec<&Candidate>> {
        let wanted: Vec<String> = self
            .fnames
            .iter()
            .filter(|f| name_of_fname(f).is_none_or(|n| spec.starts_with(n)))
            .cloned()
            .collect();
        for fname in &wanted {
            if !self.read.contains_key(fname) {
                let c = Self::read_one(pool, fname)?;
                self.read.insert(fname.clone(), c);
            }
        }
        Ok(wanted
            .iter()
            .filter_map(|f| self.read[f].as_ref())
            .collect())
    }

    fn read_one(pool: &Pool, fname: &str) -> Result<Option<Candidate>> {
        let path = pool.packages_dir().join(fname);
        let mut r = std::io::BufReader::new(
            File::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
        );
        let Ok(prefix) = crate::rpm::stream::read_prefix(&mut r, &path) else {
            return Ok(None);
        };
        let m = &prefix.main;
        let s = |t: u32| -> String { m.utf8_string(t).ok().flatten().unwrap_or("").to_string() };
        use sysimage::header::tag;
        Ok(Some(Candidate {
            fname: fname.to_string(),
            name: s(tag::NAME),
            epoch: m.int(tag::EPOCH).ok().flatten().unwrap_or(0) as u32,
            version: s(tag::VERSION),
            release: s(tag::RELEASE),
            arch: s(tag::ARCH),
        }))
    }
}

/// Resolves specs to package file names in the pool.
pub fn resolve(pool: &Pool, specs: &[String]) -> Result<Vec<String>> {
    resolve_labeled(pool, specs, &[])
}

/// [`resolve`], naming where a spec came from (`labels[i]`, e.g. "FILE line
/// 3") when it cannot be resolved.
fn resolve_labeled(
    pool: &Pool,
    specs: &[String],
    labels: &[Option<String>],
) -> Result<Vec<String>> {
    // Headers are read only for specs that are not exact file names, and
    // only of the packages whose file name could match.
    let mut cands: Option<Candidates> = None;
    let mut out: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let fname = resolve_one(pool, spec, &mut cands).map_err(|e| match labels.get(i) {
            Some(Some(l)) => e.context(format!("{l}: {spec:?}")),
            _ => e,
        })?;
        if !out.contains(&fname) {
            out.push(fname);
        }
    }
    if out.is_empty() {
        bail!("no packages given (name them, or use --list FILE)");
    }
    Ok(out)
}

fn resolve_one(pool: &Pool, spec: &str, cands: &mut Option<Candidates>) -> Result<String> {
    let dir = pool.packages_dir();
    let s = spec.trim();
    let s = s.rsplit('/').next().unwrap_or(s);
    let s = s.strip_suffix(".rpm").unwrap_or(s);
    if !s.is_empty() && !s.starts_with('.') && dir.join(s).is_file() {
        return Ok(s.to_string());
    }
    if cands.is_none() {
        *cands = Some(Candidates::new(pool)?);
    }
    let all = cands.as_mut().expect("just made").for_spec(pool, s)?;
    // NEVRA with epoch: name-E:V-R.A
    let found: Vec<&Candidate> = all
        .iter()
        .copied()
        .filter(|c| {
            c.fname == s
                || format!(
                    "{}-{}:{}-{}.{}",
                    c.name, c.epoch, c.version, c.release, c.arch
                ) == s
                || format!("{}-{}-{}", c.name, c.version, c.release) == s
        })
        .collect();
    let pick = if found.len() == 1 {
        found[0]
    } else if found.is_empty() {
        // NAME or NAME.ARCH; for a bare NAME, the machine's own arch (or
        // noarch) wins over others, as dnf picks (multilib pools).
        let mut named: Vec<&Candidate> = all
            .iter()
            .copied()
            .filter(|c| c.name == s || format!("{}.{}", c.name, c.arch) == s)
            .collect();
        if named.is_empty() {
            bail!("package {spec:?} is not in the pool (reimage packages lists what is; reimage import adds)");
        }
        let native = |c: &&Candidate| c.arch == std::env::consts::ARCH || c.arch == "noarch";
        if named.iter().any(native) && named.iter().any(|c| !native(c)) {
            named.retain(native);
        }
        named.sort_by(|a, b| {
            sysimage::vercmp::evr_cmp(
                (Some(a.epoch), &a.version, Some(&a.release)),
                (Some(b.epoch), &b.version, Some(&b.release)),
            )
        });
        let newest: &Candidate = named[named.len() - 1];
        let tied: Vec<&&Candidate> = named
            .iter()
            .filter(|c| {
                c.epoch == newest.epoch
                    && c.version == newest.version
                    && c.release == newest.release
            })
            .collect();
        if tied.len() > 1 {
            bail!(
                "package {spec:?} is ambiguous: {} (name one)",
                tied.iter()
                    .map(|c| c.fname.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        newest
    } else {
        bail!("package {spec:?} matches several packages");
    };
    Ok(pick.fname.clone())
}

/// A view name must be one plain path component.
pub fn check_view_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.contains('/')
        || name.starts_with('.')
        || name.contains('\0')
        || name.len() > 200
    {
        bail!("view name {name:?} is not valid (one path component, not starting with '.')");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Materialisation

fn cpath(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).expect("planned paths hold no NUL")
}

/// Opens the directory `rel` (relative to `root`, "" for root) without
/// following any symlink and without leaving `root`.
fn open_dir(root: &OwnedFd, rel: &str) -> Result<OwnedFd> {
    let p = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root,
        cpath(p).as_c_str(),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .with_context(|| format!("cannot open directory /usr/{rel} in the view"))
}

fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

fn ts(mtime: u32) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

struct Ctx<'a> {
    plan: &'a Plan,
    /// Building a new tree (not on top of a base view): see `create_file`.
    fresh: bool,
    root: OwnedFd,
    /// The extent packages, opened where entries are cloned from them.
    pkg_files: Vec<Option<File>>,
    cloner: &'a Cloner,
    bytes: AtomicU64,
    created: AtomicU64,
}

impl Ctx<'_> {
    fn pkg_file(&self, pkg: usize) -> Result<&File> {
        self.pkg_files[pkg]
            .as_ref()
            .ok_or_else(|| anyhow!("{} was not opened", self.plan.pkgs[pkg].fname))
    }

    /// Creates a regular file (package data, header, generated) with its metadata.
    fn create_file(&self, dir: &OwnedFd, rel: &str, n: &Node) -> Result<()> {
        let (_, name) = split(rel);
        // In a fresh tree (umask 0, parents ours and not setgid) the file is
        // created with its final mode and root:root; otherwise 0600, then
        // chown and chmod as below.
        let create_mode = if self.fresh { n.perm & 0o7777 } else { 0o600 };
        let fd = rustix::fs::openat(
            dir,
            cpath(name).as_c_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(create_mode),
        )
        .with_context(|| format!("cannot create /usr/{rel}"))?;
        let file = File::from(fd);
        match &n.data {
            Data::File {
                pkg, offset, size, ..
            } => {
                if *size > 0 {
                    self.cloner
                        .place(self.pkg_file(*pkg)?, *offset, align_up(*size), &file, 0)
                        .with_context(|| {
                            format!("/usr/{rel}: cloning from {}", self.plan.pkgs[*pkg].fname)
                        })?;
                    file.set_len(*size)?;
                    self.bytes.fetch_add(*size, Ordering::Relaxed);
                }
            }
            Data::Header(pkg) => {
                let hl = self.plan.pkgs[*pkg].header_len;
                self.cloner
                    .place(self.pkg_file(*pkg)?, 0, align_up(hl), &file, 0)
                    .with_context(|| format!("/usr/{rel}: cloning the header"))?;
                file.set_len(hl)?;
            }
            Data::Generated(bytes) => {
                use std::io::Write;
                (&file).write_all(bytes)?;
                // The only data compose writes itself (view.json, tmpfiles.d):
                // flushed here, so a write error is reported, not published.
                file.sync_data()
                    .with_context(|| format!("cannot write /usr/{rel}"))?;
            }
            _ => unreachable!(),
        }
        let (uid, gid) = (n.uid, n.gid);
        let chown = !self.fresh || uid != 0 || gid != 0;
        if chown {
            rustix::fs::fchown(
                &file,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .with_context(|| format!("cannot chown /usr/{rel}"))?;
        }
        // After chown, which clears setuid/setgid.
        if !self.fresh || (chown && n.perm & 0o6000 != 0) {
            rustix::fs::fchmod(&file, Mode::from_raw_mode(n.perm))?;
        }
        // Capabilities last: chown clears them too.
        if !n.caps.is_empty() {
            let caps = crate::rpm::caps::parse(&n.caps).with_context(|| format!("/usr/{rel}"))?;
            rustix::fs::fsetxattr(
                &file,
                "security.capability",
                &caps.to_xattr(),
                rustix::fs::XattrFlags::empty(),
            )
            .with_context(|| format!("cannot set file capabilities on /usr/{rel}"))?;
        }
        rustix::fs::futimens(&file, &ts(n.mtime))?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn create_symlink(&self, dir: &OwnedFd, rel: &str, n: &Node, target: &str) -> Result<()> {
        let (_, name) = split(rel);
        let name = cpath(name);
        rustix::fs::symlinkat(cpath(target).as_c_str(), dir, name.as_c_str())
            .with_context(|| format!("cannot create symlink /usr/{rel}"))?;
        let (uid, gid) = (n.uid, n.gid);
        if !self.fresh || uid != 0 || gid != 0 {
            rustix::fs::chownat(
                dir,
                name.as_c_str(),
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        rustix::fs::utimensat(
            dir,
            name.as_c_str(),
            &ts(n.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn create_link(&self, rel: &str, leader_rel: &str) -> Result<()> {
        let (lp, ln) = split(leader_rel);
        let (p, n) = split(rel);
        let ldir = open_dir(&self.root, lp)?;
        let dir = open_dir(&self.root, p)?;
        rustix::fs::linkat(
            &ldir,
            cpath(ln).as_c_str(),
            &dir,
            cpath(n).as_c_str(),
            AtFlags::empty(),
        )
        .with_context(|| format!("cannot hardlink /usr/{rel} to /usr/{leader_rel}"))?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn mkdir(&self, rel: &str) -> Result<()> {
        let (parent, name) = split(rel);
        let dir = open_dir(&self.root, parent)?;
        rustix::fs::mkdirat(&dir, cpath(name).as_c_str(), Mode::from_raw_mode(0o700))
            .with_context(|| format!("cannot create directory /usr/{rel}"))?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the mtime of a directory whose other metadata is as planned.
    fn dir_mtime(&self, rel: &str, n: &Node) -> Result<()> {
        let d = open_dir(&self.root, rel)?;
        rustix::fs::futimens(&d, &ts(n.mtime))
            .with_context(|| format!("cannot set the mtime of /usr/{rel}"))?;
        Ok(())
    }

    /// Sets a directory's owner, mode and mtime (after its children exist).
    fn dir_meta(&self, rel: &str, n: &Node) -> Result<()> {
        let d = open_dir(&self.root, rel)?;
        rustix::fs::fchown(
            &d,
            Some(rustix::fs::Uid::from_raw(n.uid)),
            Some(rustix::fs::Gid::from_raw(n.gid)),
        )
        .with_context(|| format!("cannot chown /usr/{rel}"))?;
        rustix::fs::fchmod(&d, Mode::from_raw_mode(n.perm))?;
        rustix::fs::futimens(&d, &ts(n.mtime))?;
        Ok(())
    }

    /// Creates `paths` (sorted, parents first): directories, then files and
    /// symlinks in parallel, then hardlinks.
    fn create(&self, paths: &[&String], reporter: &dyn Reporter) -> Result<()> {
        use rayon::prelude::*;
        let mut leaders: HashMap<([u8; 32], u32), &str> = HashMap::new();
        let mut links: Vec<(&str, ([u8; 32], u32))> = Vec::new();
        let mut work: Vec<&str> = Vec::new();
        for rel in paths {
            let n = &self.plan.nodes[rel.as_str()];
            match &n.data {
                Data::Dir if !rel.is_empty() => {
                    self.mkdir(rel)?;
                    crate::util::failpoint::hit("compose.created");
                }
                Data::Dir => {}
                Data::File {
                    link: Some(key), ..
                } => match leaders.get(key) {
                    Some(_) => links.push((rel.as_str(), *key)),
                    None => {
                        leaders.insert(*key, rel.as_str());
                        work.push(rel);
                    }
                },
                _ => work.push(rel),
            }
        }
        reporter.start("composing", work.len() as u64);
        // Siblings in chunks: one directory open per chunk, chunks in parallel.
        let mut by_parent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for rel in &work {
            by_parent.entry(parent_of(rel)).or_default().push(rel);
        }
        let chunks: Vec<(&str, &[&str])> = by_parent
            .iter()
            .flat_map(|(p, v)| v.chunks(64).map(move |c| (*p, c)))
            .collect();
        chunks
            .par_iter()
            .try_for_each(|(parent, rels)| -> Result<()> {
                let dir = open_dir(&self.root, parent)?;
                for rel in rels.iter() {
                    let n = &self.plan.nodes[*rel];
                    match &n.data {
                        Data::Symlink(t) => self.create_symlink(&dir, rel, n, t)?,
                        _ => self.create_file(&dir, rel, n)?,
                    }
                    crate::util::failpoint::hit("compose.created");
                }
                reporter.advance(rels.len() as u64);
                Ok(())
            })?;
        reporter.finish();
        for (rel, key) in links {
            self.create_link(rel, leaders[&key])?;
            crate::util::failpoint::hit("compose.created");
        }
        Ok(())
    }
}

/// Removes one entry of the tree (a directory must be empty).
fn remove_entry(root: &OwnedFd, rel: &str, is_dir: bool) -> Result<()> {
    let (parent, name) = split(rel);
    let dir = open_dir(root, parent)?;
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    rustix::fs::unlinkat(&dir, cpath(name).as_c_str(), flags)
        .with_context(|| format!("cannot remove /usr/{rel}"))?;
    Ok(())
}

/// Composes a view.
pub fn compose(
    pool: &Pool,
    opts: &ComposeOptions,
    reporter: &dyn Reporter,
) -> Result<ComposeReport> {
    let lock = pool.lock(opts.wait)?;
    compose_locked(pool, opts, reporter, &lock)
}

/// [`compose`] for a caller that already holds the pool's writer lock (sync).
pub fn compose_locked(
    pool: &Pool,
    opts: &ComposeOptions,
    reporter: &dyn Reporter,
    _lock: &crate::store::pool::WriteLock,
) -> Result<ComposeReport> {
    let started = std::time::Instant::now();
    check_view_name(&opts.name)?;
    let (specs, labels, policy) = compose_inputs(opts)?;
    pool.clean_tmp()?;
    let dest = pool.views_dir().join(&opts.name);
    if dest.symlink_metadata().is_ok() {
        bail!(
            "view {} already exists at {} (remove it with reimage rm-view {})",
            opts.name,
            dest.display(),
            opts.name
        );
    }
    let phase = |what: &str| {
        crate::util::runner::log::debug(&format!(
            "compose: {what} at {:.3}s",
            started.elapsed().as_secs_f64()
        ))
    };
    let fnames = resolve_labeled(pool, &specs, &labels)?;
    phase("resolved");
    let fs = sys::fs_info(&pool.root)?;
    let btrfs = fs.kind == sys::FsKind::Btrfs;

    let (base_name, auto_base, stored) = choose_base(pool, opts, &fnames, btrfs, fs.kind);
    let Planned {
        base,
        mut plan,
        summary,
        reused,
    } = plan_views(
        pool,
        opts,
        &fnames,
        &policy,
        (base_name.as_deref(), auto_base, stored.as_ref()),
        &phase,
    )?;
    let used_base = base.as_ref().and(base_name.clone());
    add_view_meta(&mut plan, opts, used_base.clone())?;

    // A base view that would be mostly replaced: composing whole is cheaper.
    let (base, from_changes, composed_whole) = against_base(
        base,
        &plan,
        summary.entries as usize + 1,
        &opts.name,
        used_base.as_deref(),
    );
    phase("compared");
    let work = pool.tmp_dir().join(format!("compose-{}", opts.name));
    // Files are created with their final modes: no umask in the way (until
    // the view is published; the pool's own files below get the usual one).
    let umask = UmaskGuard::zero();
    let cloner = Cloner::new(pool.config.allow_copy);
    let pkg_files = open_packages(&plan, base.as_ref().map(|b| &b.2))?;

    let mut report = ComposeReport {
        view: opts.name.clone(),
        path: dest.clone(),
        packages: plan.pkgs.len(),
        from: used_base.clone(),
        auto_base: auto_base && used_base.is_some(),
        stored_placements: reused,
        planned_entries: plan.nodes.len(),
        ..Default::default()
    };
    // From here on `work` exists: a refused or failed compose removes it
    // before returning its error (a killed one leaves it to the next writer's
    // clean_tmp).
    let staged = crate::store::pool::TmpGuard::new(work.clone(), "compose");
    let built = (|| -> Result<()> {
        match &base {
            None => materialise_whole(
                &work,
                btrfs,
                &plan,
                pkg_files,
                &cloner,
                reporter,
                &mut report,
            )?,
            Some((base_path, _old, diff)) => materialise_from(
                base_path,
                diff,
                &work,
                &plan,
                pkg_files,
                &cloner,
                reporter,
                &mut report,
            )?,
        }
        tally(&summary, &plan, &mut report);
        report.whole = composed_whole;
        if let Some((added, removed)) = from_changes {
            report.added = added;
            report.removed = removed;
        }
        report.copied = cloner.is_copying();

        phase("materialised");
        publish_view(
            pool,
            &work,
            &dest,
            btrfs,
            &cloner,
            &opts.name,
            fs.kind,
            &mut report,
        )
    })();
    staged.settle(built)?;
    phase("published");
    drop(umask);
    if btrfs {
        store_plan(pool, &opts.name, &plan, &summary);
        phase("stored the plan");
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A compose's plans: the base's (restricted like the new one when
/// incremental) with its path, the new plan, its summary, and how many
/// packages came from the stored plan.
struct Planned {
    base: Option<(PathBuf, Plan)>,
    plan: Plan,
    summary: Summary,
    reused: usize,
}

/// Plans the new view and, with a base, the base's: only the changed paths
/// when the base's stored plan allows it (see `incremental`), else both
/// whole.
fn plan_views(
    pool: &Pool,
    opts: &ComposeOptions,
    fnames: &[String],
    policy: &Policy,
    (base_name, auto_base, stored): (Option<&str>, bool, Option<&planstore::StoredPlan>),
    phase: &dyn Fn(&str),
) -> Result<Planned> {
    // Placements of kept packages come from the stored plan when it was made
    // under the same relocation rules.
    let reuse = stored.filter(|s| s.rules == policy.rules());
    let owners = OwnerSources {
        passwd: opts.passwd.clone(),
        group: opts.group.clone(),
        fixed: None,
    };
    // With a stored plan, only the paths the changed packages touch are
    // planned (see `incremental`); else both views are planned whole.
    let mut fresh = incremental::Fresh::new();
    let mut inc = None;
    if let (Some(from), Some(s)) = (base_name, reuse) {
        check_view_name(from)?;
        match incremental::plan(pool, from, s, fnames, policy, &owners)? {
            Outcome::Done(i) => inc = Some(i),
            Outcome::Whole(why, f) => {
                crate::util::runner::log::debug(&format!(
                    "compose: {why}: planning both views whole"
                ));
                fresh = f;
            }
        }
    }
    Ok(match inc {
        Some(i) => {
            let i = *i;
            phase(&format!(
                "planned the changed paths of {} packages ({} placements from the stored plan)",
                i.new.pkgs.len(),
                i.kept
            ));
            let path = pool.views_dir().join(base_name.unwrap_or_default());
            Planned {
                base: Some((path, i.old)),
                plan: i.new,
                summary: i.summary,
                reused: i.kept,
            }
        }
        None => {
            let (pkgs, placed, reused) = load_and_place(pool, fnames, reuse, policy, fresh)?;
            phase(&format!(
                "loaded and placed {} packages ({reused} placements from the stored plan)",
                pkgs.len()
            ));
            let base = open_chosen_base(pool, base_name, auto_base, &pkgs, stored)?;
            // The base view's plan and the new one, side by side.
            let (base, new_plan) = match base {
                Some(b) => {
                    let path = b.path.clone();
                    let (old, new) = rayon::join(
                        || b.plan(),
                        || assemble(pkgs, placed, policy.clone(), &owners, &BTreeMap::new()),
                    );
                    (Some((path, old?)), new)
                }
                None => (
                    None,
                    assemble(pkgs, placed, policy.clone(), &owners, &BTreeMap::new()),
                ),
            };
            let plan = new_plan?;
            let summary = Summary::of(plan.nodes.values());
            phase("planned");
            Planned {
                base,
                plan,
                summary,
                reused,
            }
        }
    })
}

/// The base view of a compose (`--from`, or else the one sharing most
/// packages), whether it was chosen automatically, and its stored plan when
/// that is usable.
fn choose_base(
    pool: &Pool,
    opts: &ComposeOptions,
    fnames: &[String],
    btrfs: bool,
    kind: sys::FsKind,
) -> (Option<String>, bool, Option<planstore::StoredPlan>) {
    let (base_name, auto_base) = match &opts.from {
        Some(from) if btrfs => (Some(from.clone()), false),
        Some(_) => {
            crate::util::runner::log::warn(&format!(
                "{kind} has no subvolumes: --from composes the whole view"
            ));
            (None, false)
        }
        None if btrfs && !opts.no_base => (auto_base_view(pool, fnames), true),
        None => (None, false),
    };
    let stored = base_name.as_deref().and_then(|b| {
        let why = match planstore::read(pool, b) {
            Ok(Ok(s)) => return Some(s),
            Ok(Err(why)) => why.to_string(),
            Err(e) => format!("{e:#}"),
        };
        crate::util::runner::log::debug(&format!("compose: {why}: planning from the packages"));
        None
    });
    (base_name, auto_base, stored)
}

/// Opens the chosen base view; an automatic choice that cannot serve as a
/// base (damaged, or made under other rules) means composing whole.
fn open_chosen_base(
    pool: &Pool,
    name: Option<&str>,
    auto_base: bool,
    pkgs: &[Arc<LoadedPkg>],
    stored: Option<&planstore::StoredPlan>,
) -> Result<Option<Base>> {
    let Some(from) = name else { return Ok(None) };
    match open_base(pool, from, pkgs, stored) {
        Ok(b) => Ok(Some(b)),
        Err(e) if auto_base => {
            crate::util::runner::log::debug(&format!(
                "compose: {e:#}: composing whole instead of from {from}"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Warns about unmapped owners and adds `view.json` to the plan.
fn add_view_meta(plan: &mut Plan, opts: &ComposeOptions, base: Option<String>) -> Result<()> {
    if !plan.unknown_owners.is_empty() {
        crate::util::runner::log::warn(&format!(
            "no passwd/group entry for {}: owned by root (give --passwd/--group to map them)",
            plan.unknown_owners.join(", ")
        ));
    }
    let meta = view_meta(plan, opts, base);
    let meta_node = generated(VIEW_META, meta.to_json().into_bytes());
    insert(
        &plan.pkgs,
        &mut plan.nodes,
        VIEW_META.to_string(),
        meta_node,
    )
}

/// Stores the plan of a published view. Derived data: a failure costs the
/// next compose only its speed.
fn store_plan(pool: &Pool, name: &str, plan: &Plan, summary: &Summary) {
    if let Err(e) = planstore::write(
        pool,
        name,
        plan.policy.rules(),
        summary,
        &plan.pkgs,
        &plan.blobs,
    ) {
        crate::util::runner::log::warn(&format!(
            "view {name}: cannot store its plan ({e:#}); the next compose from it plans from the packages"
        ));
    }
}

/// The package specs (arguments, then `--list` lines with their labels) and
/// the relocation policy of a compose.
#[allow(clippy::type_complexity)]
fn compose_inputs(opts: &ComposeOptions) -> Result<(Vec<String>, Vec<Option<String>>, Policy)> {
    let mut specs = opts.specs.clone();
    let mut labels: Vec<Option<String>> = vec![None; specs.len()];
    if let Some(l) = &opts.list {
        let listed = read_list_lines(l)?;
        if listed.is_empty() {
            bail!("package list {} names no packages", l.display());
        }
        for (line, spec) in listed {
            specs.push(spec);
            labels.push(Some(format!("{} line {line}", l.display())));
        }
    }
    let policy = Policy::with_rules(
        opts.relocate
            .iter()
            .map(|r| Policy::parse_rule(r))
            .collect::<std::result::Result<Vec<_>, _>>()?,
    )?;
    Ok((specs, labels, policy))
}

/// The base view of an incremental compose, ready to be planned.
struct Base {
    path: PathBuf,
    pkgs: Vec<Arc<LoadedPkg>>,
    /// From the base's stored plan; None: placed now from `pkgs`.
    placed: Option<Vec<PkgPlacement>>,
    policy: Policy,
    owners: OwnerSources,
}

impl Base {
    fn plan(self) -> Result<Plan> {
        let placed = match self.placed {
            Some(p) => p,
            None => place_all(&self.pkgs, &self.policy)?,
        };
        assemble(
            self.pkgs,
            placed,
            self.policy,
            &self.owners,
            &BTreeMap::new(),
        )
    }
}

/// Opens the base view `from`: its packages and placements come from its
/// stored plan when there is one (then no package is read), else from the
/// packages (those the new list has too are loaded once).
fn open_base(
    pool: &Pool,
    from: &str,
    pkgs: &[Arc<LoadedPkg>],
    stored: Option<&planstore::StoredPlan>,
) -> Result<Base> {
    check_view_name(from)?;
    let path = pool.views_dir().join(from);
    if path.symlink_metadata().is_err() {
        bail!(
            "there is no view {from} to compose from in {} (reimage views lists them)",
            pool.views_dir().display()
        );
    }
    let meta = ViewMeta::read(&path)
        .with_context(|| format!("view {from}"))?
        .ok_or_else(|| anyhow!("view {from} has no {VIEW_META}: it was not composed by reimage"))?;
    let policy = Policy::with_rules(meta.rules.iter().map(|r| (r.from.clone(), r.to.clone())))?;
    let owners = OwnerSources {
        fixed: Some((meta.users.clone(), meta.groups.clone())),
        ..Default::default()
    };
    let matching = stored.filter(|s| {
        s.rules == policy.rules()
            && s.pkgs.len() == meta.packages.len()
            && s.pkgs.iter().zip(&meta.packages).all(|(p, f)| &p.0 == f)
    });
    if let Some(s) = matching {
        use rayon::prelude::*;
        let decoded: Vec<(LoadedPkg, PkgPlacement)> = s
            .pkgs
            .par_iter()
            .enumerate()
            .map(|(pi, (fname, _, blob))| {
                planstore::decode_placement(
                    blob,
                    pi,
                    pool.packages_dir().join(fname),
                    fname,
                    &policy,
                )
            })
            .collect::<Result<_>>()
            .with_context(|| format!("the stored plan of view {from}"))?;
        let (old_pkgs, placed): (Vec<_>, Vec<_>) =
            decoded.into_iter().map(|(p, pl)| (Arc::new(p), pl)).unzip();
        return Ok(Base {
            path,
            pkgs: old_pkgs,
            placed: Some(placed),
            policy,
            owners,
        });
    }
    // Packages in both lists are loaded once.
    let have: Vec<Arc<LoadedPkg>> = pkgs
        .iter()
        .filter(|p| p.content.is_some())
        .cloned()
        .collect();
    let old_pkgs = load_all(pool, &meta.packages, &have)
        .with_context(|| format!("a package of view {from} is no longer in the pool"))?;
    Ok(Base {
        path,
        pkgs: old_pkgs,
        placed: None,
        policy,
        owners,
    })
}

/// Loads and places the packages of a new plan, in parallel: a package the
/// stored plan of the base holds (the same file: inode, size, mtime) is
/// taken from it without reading the package; the others are read and
/// placed. Returns the packages, their placements and how many were reused.
#[allow(clippy::type_complexity)]
fn load_and_place(
    pool: &Pool,
    fnames: &[String],
    stored: Option<&planstore::StoredPlan>,
    policy: &Policy,
    fresh: incremental::Fresh,
) -> Result<(Vec<Arc<LoadedPkg>>, Vec<PkgPlacement>, usize)> {
    use rayon::prelude::*;
    let reused = AtomicU64::new(0);
    let fresh = std::sync::Mutex::new(fresh);
    let done: Vec<(Arc<LoadedPkg>, PkgPlacement)> = fnames
        .par_iter()
        .enumerate()
        .map(|(pi, fname)| {
            // Read and placed at this position already.
            if let Some(got) = fresh.lock().expect("not poisoned").remove(fname) {
                return Ok(got);
            }
            let path = pool.packages_dir().join(fname);
            if let Some((_, id, blob)) = stored.and_then(|s| s.find(fname)) {
                if planstore::FileId::of(&path).ok().as_ref() == Some(id) {
                    match planstore::decode_placement(blob, pi, path.clone(), fname, policy) {
                        Ok((p, pl)) => {
                            reused.fetch_add(1, Ordering::Relaxed);
                            return Ok((Arc::new(p), pl));
                        }
                        Err(e) => crate::util::runner::log::debug(&format!(
                            "compose: {e:#}: reading the package"
                        )),
                    }
                }
            }
            let p = load_package(&path)?;
            let pl = place_package(pi, &p, policy)?;
            Ok((Arc::new(p), pl))
        })
        .collect::<Result<_>>()?;
    let (pkgs, placed): (Vec<_>, Vec<_>) = done.into_iter().unzip();
    Ok((pkgs, placed, reused.load(Ordering::Relaxed) as usize))
}

/// The view to compose from when no base was named: the one sharing the
/// most packages with the list, if it shares most of it (more than half).
fn auto_base_view(pool: &Pool, fnames: &[String]) -> Option<String> {
    let want: BTreeSet<&str> = fnames.iter().map(String::as_str).collect();
    let mut best: Option<(usize, u64, String)> = None;
    for e in std::fs::read_dir(pool.views_dir()).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if check_view_name(&name).is_err() {
            continue;
        }
        let Ok(Some(meta)) = ViewMeta::read(&e.path()) else {
            continue;
        };
        let shared = meta
            .packages
            .iter()
            .filter(|p| want.contains(p.as_str()))
            .count();
        // Most shared first, then the newest, then by name (deterministic).
        let better = match &best {
            None => true,
            Some((s, c, n)) => {
                (shared, meta.created, std::cmp::Reverse(&name)) > (*s, *c, std::cmp::Reverse(n))
            }
        };
        if better {
            best = Some((shared, meta.created, name));
        }
    }
    let (shared, _, name) = best?;
    if shared * 2 > want.len() {
        crate::util::runner::log::debug(&format!(
            "compose: base view {name} shares {shared} of {} packages (--no-base composes whole)",
            want.len()
        ));
        Some(name)
    } else {
        None
    }
}

/// The packages added and removed against a base view.
type Changes = (Vec<String>, Vec<String>);

/// Compares the new plan with the base's. A base view that would be mostly
/// replaced is dropped: composing whole is cheaper. Returns the base to
/// build from, the package changes, and whether it composes whole instead.
fn against_base(
    base: Option<(PathBuf, Plan)>,
    plan: &Plan,
    entries: usize,
    name: &str,
    from: Option<&str>,
) -> (Option<(PathBuf, Plan, PlanDiff)>, Option<Changes>, bool) {
    let mut from_changes = None;
    let mut composed_whole = false;
    let base = match base {
        Some((path, old)) => {
            let old_set: BTreeSet<[u8; 32]> = old.pkgs.iter().map(|p| p.header_sha256).collect();
            let new_set: BTreeSet<[u8; 32]> = plan.pkgs.iter().map(|p| p.header_sha256).collect();
            from_changes = Some((
                plan.pkgs
                    .iter()
                    .filter(|p| !old_set.contains(&p.header_sha256))
                    .map(|p| p.nevra.clone())
                    .collect::<Vec<_>>(),
                old.pkgs
                    .iter()
                    .filter(|p| !new_set.contains(&p.header_sha256))
                    .map(|p| p.nevra.clone())
                    .collect::<Vec<_>>(),
            ));
            let diff = diff_plans(&old, plan);
            let changed = diff.create.len();
            if changed * 2 > entries && !plan.partial {
                composed_whole = true;
                crate::util::runner::log::info(&format!(
                    "{changed} of {entries} entries change: composing {} whole instead of from {}",
                    name,
                    from.unwrap_or("")
                ));
                None
            } else {
                Some((path, old, diff))
            }
        }
        None => None,
    };
    (base, from_changes, composed_whole)
}

/// Builds the whole view in `work`.
fn materialise_whole(
    work: &Path,
    btrfs: bool,
    plan: &Plan,
    pkg_files: Vec<Option<File>>,
    cloner: &Cloner,
    reporter: &dyn Reporter,
    report: &mut ComposeReport,
) -> Result<()> {
    if plan.partial {
        bail!("internal error: an incremental plan cannot be composed whole");
    }
    if btrfs {
        sys::subvolume_create(work)
            .with_context(|| format!("cannot create subvolume {}", work.display()))?;
        crate::util::failpoint::hit("compose.subvolume");
    } else {
        std::fs::create_dir(work).with_context(|| format!("cannot create {}", work.display()))?;
    }
    let root: OwnedFd = File::open(work)?.into();
    let ctx = Ctx {
        plan,
        fresh: true,
        root,
        pkg_files,
        cloner,
        bytes: AtomicU64::new(0),
        created: AtomicU64::new(0),
    };
    let paths: Vec<&String> = plan.nodes.keys().collect();
    ctx.create(&paths, reporter)?;
    for (rel, n) in plan.nodes.iter().rev().filter(|(_, n)| n.is_dir()) {
        ctx.dir_meta(rel, n)?;
    }
    report.bytes = ctx.bytes.load(Ordering::Relaxed);
    report.created_entries = ctx.created.load(Ordering::Relaxed);
    report.added = plan.pkgs.iter().map(|p| p.nevra.clone()).collect();
    Ok(())
}

/// Builds the view in `work` from a snapshot of the base, changing only
/// what `diff` names.
#[allow(clippy::too_many_arguments)]
fn materialise_from(
    base_path: &Path,
    diff: &PlanDiff,
    work: &Path,
    plan: &Plan,
    pkg_files: Vec<Option<File>>,
    cloner: &Cloner,
    reporter: &dyn Reporter,
    report: &mut ComposeReport,
) -> Result<()> {
    sys::snapshot(base_path, work, false).with_context(|| {
        format!(
            "cannot snapshot {} to {}",
            base_path.display(),
            work.display()
        )
    })?;
    crate::util::failpoint::hit("compose.snapshot-base");
    let root: OwnedFd = File::open(work)?.into();
    // Remove what changed or went: files and symlinks a directory at a
    // time, directories in parallel; then directories, deepest first.
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    let mut by_parent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (rel, is_dir) in &diff.remove {
        touched.insert(parent_of(rel));
        if !*is_dir {
            by_parent.entry(parent_of(rel)).or_default().push(rel);
        }
    }
    {
        use rayon::prelude::*;
        let groups: Vec<(&str, Vec<&str>)> = by_parent.into_iter().collect();
        groups
            .par_iter()
            .try_for_each(|(parent, rels)| -> Result<()> {
                let dir = open_dir(&root, parent)?;
                for rel in rels {
                    let (_, name) = split(rel);
                    rustix::fs::unlinkat(&dir, cpath(name).as_c_str(), AtFlags::empty())
                        .with_context(|| format!("cannot remove /usr/{rel}"))?;
                    crate::util::failpoint::hit("compose.removed");
                }
                Ok(())
            })?;
    }
    for (rel, _) in diff.remove.iter().filter(|(_, is_dir)| *is_dir) {
        remove_entry(&root, rel, true)?;
        crate::util::failpoint::hit("compose.removed");
    }
    // The old view.json is always replaced.
    if root_has(&root, VIEW_META) {
        remove_entry(&root, VIEW_META, false)?;
    }
    let ctx = Ctx {
        plan,
        fresh: false,
        root,
        pkg_files,
        cloner,
        bytes: AtomicU64::new(0),
        created: AtomicU64::new(0),
    };
    let to_create: Vec<&String> = diff.create.iter().collect();
    for rel in &to_create {
        touched.insert(parent_of(rel));
    }
    // Hardlink sets: a kept leader is not in to_create; members whose
    // set changed were removed and recreated with the whole set.
    ctx.create(&to_create, reporter)?;
    // Directories: metadata that changed (new ones included), and the
    // mtime of every directory whose entries changed. Nothing creates or
    // removes entries any more, so the order does not matter.
    let changed: BTreeSet<&str> = diff.dirs_changed.iter().map(String::as_str).collect();
    touched.extend(&changed);
    {
        use rayon::prelude::*;
        let dirs: Vec<(&str, &Node)> = touched
            .iter()
            .filter_map(|rel| Some((*rel, plan.nodes.get(*rel).filter(|n| n.is_dir())?)))
            .collect();
        dirs.par_iter().try_for_each(|(rel, nn)| {
            if changed.contains(rel) {
                ctx.dir_meta(rel, nn)
            } else {
                ctx.dir_mtime(rel, nn)
            }
        })?;
    }
    let removed = diff.remove.len() as u64;
    report.bytes = ctx.bytes.load(Ordering::Relaxed);
    report.created_entries = ctx.created.load(Ordering::Relaxed);
    report.removed_entries = removed;
    Ok(())
}

/// Counts the view's entries into the report, with its relocations and
/// unknown owners.
fn tally(summary: &Summary, plan: &Plan, report: &mut ComposeReport) {
    report.relocations = plan.relocations.clone();
    report.unknown_owners = plan.unknown_owners.clone();
    report.dirs = summary.dirs;
    report.files = summary.files;
    report.symlinks = summary.symlinks;
    report.hardlinks = summary.hardlinks;
}

/// Opens the extent packages a compose clones from: all of them for a whole
/// view, else only those the entries to create come from.
fn open_packages(plan: &Plan, diff: Option<&PlanDiff>) -> Result<Vec<Option<File>>> {
    let mut need = vec![diff.is_none(); plan.pkgs.len()];
    for rel in diff.map(|d| d.create.as_slice()).unwrap_or_default() {
        match plan.nodes.get(rel).map(|n| &n.data) {
            Some(Data::File { pkg, .. }) | Some(Data::Header(pkg)) => need[*pkg] = true,
            _ => {}
        }
    }
    plan.pkgs
        .iter()
        .zip(need)
        .map(|(p, need)| {
            need.then(|| {
                File::open(&p.path).with_context(|| format!("cannot open {}", p.path.display()))
            })
            .transpose()
        })
        .collect()
}

/// Makes the built view durable, then visible at `dest` (read-only on btrfs).
#[allow(clippy::too_many_arguments)]
fn publish_view(
    pool: &Pool,
    work: &Path,
    dest: &Path,
    btrfs: bool,
    cloner: &Cloner,
    name: &str,
    kind: sys::FsKind,
    report: &mut ComposeReport,
) -> Result<()> {
    // Durable, then visible. On btrfs the read-only snapshot does both in
    // one step: creating it flushes the source subvolume's dirty data and
    // commits a transaction holding the new view whole (a syncfs before it
    // cost ~50 ms). Its data is reflinks plus the few generated files,
    // which were fsynced as written (the snapshot reports no write errors).
    if !btrfs || cloner.is_copying() {
        // Without snapshots, or with data copied instead of reflinked: one
        // syncfs writes it out and reports any write error.
        sys::syncfs(&File::open(&pool.root)?).context("syncfs")?;
    }
    crate::util::failpoint::hit("compose.synced");
    if btrfs {
        sys::snapshot(work, dest, true).with_context(|| {
            format!("cannot publish {} as a read-only snapshot", dest.display())
        })?;
        crate::util::failpoint::hit("compose.published");
        sys::subvolume_delete(work).with_context(|| format!("cannot delete {}", work.display()))?;
        report.readonly = true;
    } else {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            work,
            rustix::fs::CWD,
            dest,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .with_context(|| format!("cannot move the view into {}", dest.display()))?;
        crate::util::runner::log::warn(&format!(
            "{}: {} has no read-only subvolumes; the view is a plain directory",
            name, kind
        ));
        report.readonly = false;
        File::open(pool.views_dir())?.sync_all()?;
    }
    // (On btrfs the snapshot ioctl commits a transaction: the view is durable.)
    crate::util::failpoint::hit("compose.done");
    Ok(())
}

/// Sets the process umask to 0 until dropped.
struct UmaskGuard(Mode);

impl UmaskGuard {
    fn zero() -> UmaskGuard {
        UmaskGuard(rustix::process::umask(Mode::empty()))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        rustix::process::umask(self.0);
    }
}

fn root_has(root: &OwnedFd, rel: &str) -> bool {
    let (p, n) = split(rel);
    open_dir(root, p)
        .ok()
        .and_then(|d| rustix::fs::statat(&d, cpath(n).as_c_str(), AtFlags::SYMLINK_NOFOLLOW).ok())
        .is_some()
}

/// One view in the pool.
#[derive(Debug, Serialize)]
pub struct ViewInfo {
    pub name: String,
    pub path: PathBuf,
    pub packages: usize,
    pub created: u64,
    pub readonly: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Lists the views of the pool.
pub fn views(pool: &Pool) -> Result<Vec<ViewInfo>> {
    let dir = pool.views_dir();
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for path in names {
        let meta = ViewMeta::read(&path).ok().flatten().unwrap_or_default();
        let packages = std::fs::read_dir(path.join(HEADER_DIR))
            .map(|rd| {
                rd.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "rpm"))
                })
                .count()
            })
            .unwrap_or(0);
        out.push(ViewInfo {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            readonly: sys::is_readonly(&path).unwrap_or(false),
            path,
            packages,
            created: meta.created,
            from: meta.from,
        });
    }
    Ok(out)
}

/// Deletes a view.
/// The root file (`POOL/roots/*.json`, written by deploy) that names view
/// `name`, if any: a deployment's `/usr` must not go while it exists.
pub fn rooted(pool: &Pool, name: &str) -> Result<Option<PathBuf>> {
    let dir = pool.root.join("roots");
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for e in rd {
        let p = e?.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", p.display()))?;
        if v["views"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == name))
        {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

pub fn rm_view(pool: &Pool, name: &str, wait: bool) -> Result<()> {
    check_view_name(name)?;
    let _lock = pool.lock(wait)?;
    let path = pool.views_dir().join(name);
    if path.symlink_metadata().is_err() {
        bail!("there is no view {name} in {}", pool.views_dir().display());
    }
    if let Some(by) = rooted(pool, name)? {
        bail!(
            "view {name} is the /usr of a deployment ({} names it): remove the deployment first (reimage undeploy, or cleanup)",
            by.display()
        );
    }
    // btrfs deletes a subvolume that is mounted (the kernel does not
    // refuse it): a view that is mounted somewhere, e.g. as a running
    // system's /usr or beneath a live one (apply-live), stays.
    let rel = Path::new("views").join(name);
    if let Some(m) = sys::mounts()?
        .into_iter()
        .find(|m| m.fs_type == "btrfs" && m.root.ends_with(&rel))
    {
        bail!(
            "view {name} is mounted at {} (a running /usr, or beneath a live one): it stays \
             until that mount goes (a reboot, for a system's /usr)",
            m.mount_point.display()
        );
    }
    if sys::is_subvolume(&path).unwrap_or(false) {
        sys::subvolume_delete(&path)
            .with_context(|| format!("cannot delete {}", path.display()))?;
    } else {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot remove {}", path.display()))?;
    }
    let _ = std::fs::File::open(pool.views_dir()).and_then(|d| d.sync_all());
    let _ = File::open(&pool.root).map(|f| sys::syncfs(&f));
    planstore::remove(pool, name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::name_of_fname;

    #[test]
    fn names_of_pool_file_names() {
        assert_eq!(name_of_fname("bash-5.2.15-2+b13.x86_64"), Some("bash"));
        assert_eq!(
            name_of_fname("python3.11-minimal-3.11.2-6.x86_64"),
            Some("python3.11-minimal")
        );
        assert_eq!(name_of_fname("a-1-1.noarch"), Some("a"));
        assert_eq!(name_of_fname("-1-1.noarch"), None);
        assert_eq!(name_of_fname("nodots"), None);
        assert_eq!(name_of_fname("one-dash.x"), None);
    }
}
