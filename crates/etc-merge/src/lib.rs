//! The `/etc` three-way merge of a deployment, as a crate of its own: the
//! rules are a pure function over three trees held in memory ([`merge`]),
//! table-tested without root; reading trees from disk ([`read_tree`]) and
//! writing a merge result ([`write`]) are a thin layer around it.
//!
//! The three trees: **old** defaults (the current view's `etc/`), **local**
//! (the running system's `/etc`), **new** defaults (the new view's `etc/`).
//! Per path, "changed" means any difference in type, content (or symlink
//! target), mode, owner, group or extended attributes (file capabilities,
//! SELinux labels):
//!
//! | old vs local | old vs new | result | rule |
//! |---|---|---|---|
//! | same | any | new (absent if new removed it) | `default` / `default-removed` |
//! | changed | same | local (absent if removed locally) | `local` / `local-added` / `local-removed` |
//! | changed | changed, local == new | local | `same-change` |
//! | changed (removed) | changed | stays removed | `local-removed` |
//! | changed | changed (removed) | local | `local-kept-default-removed` |
//! | changed | changed, same type | local, new beside it as `FILE.rpmnew` | `conflict` |
//! | changed | changed, other type | local | `type-change` |
//!
//! The result stays a tree: a path kept from the local side keeps its local
//! parent directories (a file added locally is never lost, even where the
//! new defaults remove its directory); a path of the new defaults whose
//! directory was removed or replaced locally is dropped
//! (`dropped-under-local`). Sockets and FIFOs are skipped (`skipped-special`).
//! Unchanged paths are counted, not listed.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file: its content's SHA-256 and size.
    File {
        sha256: [u8; 32],
        size: u64,
    },
    Dir,
    Symlink(OsString),
    /// A socket, FIFO or device node: never merged.
    Special(&'static str),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::File { .. } => "file",
            Kind::Dir => "directory",
            Kind::Symlink(_) => "symlink",
            Kind::Special(s) => s,
        }
    }
    fn same_type(&self, o: &Kind) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(o)
    }
}

/// One path of a tree: everything that counts as "changed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (07777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: BTreeMap<OsString, Vec<u8>>,
}

/// A tree: entries by path relative to its root (the root itself excluded).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Where the tree was read from (where file contents are copied from).
    pub root: Option<PathBuf>,
    pub entries: BTreeMap<PathBuf, Entry>,
}

/// Which input a result entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Local,
    New,
}

/// The rule that decided a path (see the module doc's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    Default,
    DefaultRemoved,
    Local,
    LocalAdded,
    LocalRemoved,
    SameChange,
    LocalKeptDefaultRemoved,
    Conflict,
    TypeChange,
    DroppedUnderLocal,
    SkippedSpecial,
}

/// One decision, recorded with the deployment and shown with `-v`/`--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub path: PathBuf,
    pub rule: Rule,
    /// Human words: what was kept and why.
    pub detail: String,
}

/// The result of a merge: every path of the new `/etc` and where it comes
/// from, the decisions, and the `.rpmnew` files to write beside conflicts.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub result: BTreeMap<PathBuf, (Side, Entry)>,
    /// `FILE.rpmnew` -> the new default's `FILE`.
    pub rpmnew: BTreeMap<PathBuf, PathBuf>,
    pub decisions: Vec<Decision>,
    /// Paths equal in all three trees (or untouched and unchanged).
    pub unchanged: usize,
}

impl Plan {
    /// Decisions that need a person's attention: conflicts, type changes,
    /// skipped special files.
    pub fn notable(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| {
            matches!(
                d.rule,
                Rule::Conflict | Rule::TypeChange | Rule::SkippedSpecial | Rule::DroppedUnderLocal
            )
        })
    }
}

fn describe(e: Option<&Entry>) -> String {
    e.map_or("absent".into(), |e| e.kind.name().to_string())
}

/// The three-way merge (see the module doc).
pub fn merge(old: &Tree, local: &Tree, new: &Tree) -> Plan {
    let mut plan = Plan::default();
    let paths: BTreeSet<&PathBuf> = old
        .entries
        .keys()
        .chain(local.entries.keys())
        .chain(new.entries.keys())
        .collect();
    for path in paths {
        let (o, l, n) = (
            old.entries.get(path),
            local.entries.get(path),
            new.entries.get(path),
        );
        decide(&mut plan, path, o, l, n);
    }
    drop_orphans(&mut plan, local);
    plan
}

fn decide(plan: &mut Plan, path: &Path, o: Option<&Entry>, l: Option<&Entry>, n: Option<&Entry>) {
    let mut note = |rule, detail: String| {
        plan.decisions.push(Decision {
            path: path.to_path_buf(),
            rule,
            detail,
        })
    };
    let special = |e: Option<&Entry>| e.is_some_and(|e| matches!(e.kind, Kind::Special(_)));
    if special(l) || (l.is_none() && special(n)) {
        let e = l.or(n).unwrap();
        note(
            Rule::SkippedSpecial,
            format!("a {}: not merged, not created", e.kind.name()),
        );
        return;
    }
    let take = |plan: &mut Plan, side: Side, e: Option<&Entry>| {
        if let Some(e) = e {
            plan.result.insert(path.to_path_buf(), (side, e.clone()));
        }
    };
    if l == o {
        // Untouched locally: follow the new defaults.
        if n == o {
            plan.unchanged += 1;
        } else if n.is_none() {
            note(Rule::DefaultRemoved, "removed by the new defaults".into());
        } else {
            note(
                Rule::Default,
                format!("untouched locally: the new default ({})", describe(n)),
            );
        }
        if !special(n) {
            take(plan, Side::New, n);
        }
        return;
    }
    if n == o {
        // Changed locally, the default did not change.
        let rule = match (o, l) {
            (None, _) => Rule::LocalAdded,
            (_, None) => Rule::LocalRemoved,
            _ => Rule::Local,
        };
        note(
            rule,
            "changed locally, default unchanged: local kept".into(),
        );
        take(plan, Side::Local, l);
        return;
    }
    // Both changed.
    match (l, n) {
        _ if l == n => {
            note(
                Rule::SameChange,
                "changed alike locally and in the defaults".into(),
            );
            take(plan, Side::Local, l);
        }
        (None, _) => note(
            Rule::LocalRemoved,
            "removed locally: stays removed (the default changed too)".into(),
        ),
        (Some(_), None) => {
            note(
                Rule::LocalKeptDefaultRemoved,
                "changed locally, removed by the new defaults: local kept".into(),
            );
            take(plan, Side::Local, l);
        }
        (Some(le), Some(ne)) if le.kind.same_type(&ne.kind) && !matches!(ne.kind, Kind::Dir) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".rpmnew");
            let rpmnew = PathBuf::from(name);
            note(
                Rule::Conflict,
                format!(
                    "changed locally and in the defaults: local kept, the new default written as {}",
                    rpmnew.display()
                ),
            );
            take(plan, Side::Local, l);
            plan.rpmnew.insert(rpmnew, path.to_path_buf());
        }
        (Some(le), Some(ne)) if le.kind.same_type(&ne.kind) => {
            // A directory whose metadata changed on both sides: local wins.
            note(
                Rule::Local,
                "directory changed locally and in the defaults: local attributes kept".into(),
            );
            take(plan, Side::Local, l);
        }
        (Some(le), Some(ne)) => {
            note(
                Rule::TypeChange,
                format!(
                    "a {} locally, a {} in the new defaults: local kept",
                    le.kind.name(),
                    ne.kind.name()
                ),
            );
            take(plan, Side::Local, l);
        }
    }
}

/// Keeps the result a tree. A path kept from the local side keeps its
/// local parent directories too (a file added locally is never lost, even
/// where the new defaults remove or replace its directory: that is a type
/// change or removal resolved for the local side). A path from the new
/// defaults whose parent is not a directory of the result (removed or
/// replaced locally) is dropped.
fn drop_orphans(plan: &mut Plan, local: &Tree) {
    let local_paths: Vec<PathBuf> = plan
        .result
        .iter()
        .filter(|(_, (side, _))| *side == Side::Local)
        .map(|(p, _)| p.clone())
        .collect();
    for p in local_paths {
        for anc in p.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            let is_local_dir =
                matches!(plan.result.get(anc), Some((Side::Local, e)) if e.kind == Kind::Dir);
            if is_local_dir {
                break;
            }
            let Some(le) = local.entries.get(anc).filter(|e| e.kind == Kind::Dir) else {
                break;
            };
            let was = plan
                .result
                .insert(anc.to_path_buf(), (Side::Local, le.clone()));
            plan.decisions.retain(|d| d.path != anc);
            plan.decisions.push(Decision {
                path: anc.to_path_buf(),
                rule: if was.is_some() {
                    Rule::TypeChange
                } else {
                    Rule::Local
                },
                detail: "holds local changes: the local directory is kept".into(),
            });
        }
    }
    let keys: Vec<PathBuf> = plan.result.keys().cloned().collect();
    let mut dropped = Vec::new();
    // BTreeMap order puts a parent before its children.
    for p in keys {
        let parent = p.parent().filter(|q| !q.as_os_str().is_empty());
        let ok = match parent {
            None => true,
            Some(q) => plan.result.get(q).is_some_and(|(_, e)| e.kind == Kind::Dir),
        };
        if !ok {
            plan.result.remove(&p);
            dropped.push(p);
        }
    }
    for p in dropped {
        plan.decisions.retain(|d| d.path != p);
        plan.decisions.push(Decision {
            path: p,
            rule: Rule::DroppedUnderLocal,
            detail: "its directory was removed or replaced locally: dropped".into(),
        });
    }
    plan.rpmnew.retain(|_, of| plan.result.contains_key(of));
}

// ---------------------------------------------------------------------------
// Reading and writing trees.

fn xattrs(path: &Path) -> io::Result<BTreeMap<OsString, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let n = match rustix::fs::llistxattr_query(path) {
        Ok(n) => n,
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    if n == 0 {
        return Ok(out);
    }
    let mut names = vec![0u8; n];
    let n = rustix::fs::llistxattr(path, &mut names[..])?;
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = OsStr::from_bytes(name);
        let len = match rustix::fs::lgetxattr_query(path, name) {
            Ok(len) => len,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut v = vec![0u8; len];
        let got = rustix::fs::lgetxattr(path, name, &mut v[..])?;
        v.truncate(got);
        out.insert(name.to_owned(), v);
    }
    Ok(out)
}

fn sha256_file(path: &Path) -> io::Result<[u8; 32]> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Reads a tree from `dir` (not following symlinks). A missing `dir` is an
/// empty tree (a first deployment has no local `/etc`).
pub fn read_tree(dir: &Path) -> io::Result<Tree> {
    let mut tree = Tree {
        root: Some(dir.to_path_buf()),
        entries: BTreeMap::new(),
    };
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(tree);
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for e in std::fs::read_dir(&abs)? {
            let e = e?;
            let r = rel.join(e.file_name());
            let p = dir.join(&r);
            let m = std::fs::symlink_metadata(&p)?;
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(r.clone());
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(std::fs::read_link(&p)?.into_os_string())
            } else if ft.is_file() {
                Kind::File {
                    sha256: sha256_file(&p)?,
                    size: m.len(),
                }
            } else {
                use std::os::unix::fs::FileTypeExt;
                Kind::Special(if ft.is_socket() {
                    "socket"
                } else if ft.is_fifo() {
                    "fifo"
                } else {
                    "device node"
                })
            };
            let entry = Entry {
                xattrs: if matches!(kind, Kind::Special(_)) {
                    BTreeMap::new()
                } else {
                    xattrs(&p)?
                },
                kind,
                mode: m.permissions().mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
            };
            tree.entries.insert(r, entry);
        }
    }
    Ok(tree)
}

/// Writes the merge result into `dest` (an existing, empty directory on the
/// same filesystem as the inputs, so contents are reflinked): directories,
/// files (copied from the side that won), symlinks, then owners, modes
/// (after chown, which clears setuid bits), xattrs and mtimes as the source
/// has them; and each `.rpmnew` beside its file.
pub fn write(plan: &Plan, local: &Tree, new: &Tree, dest: &Path) -> io::Result<()> {
    let root_of = |side: Side| -> io::Result<&Path> {
        match side {
            Side::Local => local.root.as_deref(),
            Side::New => new.root.as_deref(),
        }
        .ok_or_else(|| io::Error::other("a tree without a root cannot be copied from"))
    };
    let mut items: Vec<(PathBuf, Side, PathBuf, &Entry)> = plan
        .result
        .iter()
        .map(|(p, (side, e))| (p.clone(), *side, p.clone(), e))
        .collect();
    for (rpmnew, of) in &plan.rpmnew {
        if let Some(e) = new.entries.get(of) {
            items.push((rpmnew.clone(), Side::New, of.clone(), e));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, side, from, e) in &items {
        let src = root_of(*side)?.join(from);
        let dst = dest.join(path);
        match &e.kind {
            Kind::Dir => std::fs::create_dir(&dst)?,
            Kind::Symlink(t) => std::os::unix::fs::symlink(t, &dst)?,
            Kind::File { .. } => {
                // std::fs::copy uses copy_file_range: a reflink on btrfs.
                std::fs::copy(&src, &dst)?;
            }
            Kind::Special(_) => continue,
        }
        set_attrs(&dst, &src, e)?;
    }
    // Directories last, deepest first: creating children changed their mtimes.
    for (path, side, from, e) in items.iter().rev() {
        if e.kind == Kind::Dir {
            copy_times(&root_of(*side)?.join(from), &dest.join(path))?;
        }
    }
    Ok(())
}

/// What [`apply_in_place`] changed in the local tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Paths given the new default's content (or created).
    pub written: Vec<PathBuf>,
    /// Paths removed (the new defaults removed what was untouched).
    pub removed: Vec<PathBuf>,
    /// `FILE.rpmnew` files written beside conflicts.
    pub rpmnew: Vec<PathBuf>,
}

/// Brings a merge result into the local tree where it lies (a running
/// system's `/etc`, for `apply-live`): each path whose result comes from
/// the new defaults and differs from the local one is written under a
/// temporary name beside it and renamed over it (each file is replaced
/// atomically; the tree as a whole is not), the paths the result drops are
/// removed deepest first (special files never), and each `.rpmnew` is
/// written. Paths the local side wins are not touched.
pub fn apply_in_place(plan: &Plan, local: &Tree, new: &Tree) -> io::Result<Applied> {
    let dest = local
        .root
        .as_deref()
        .ok_or_else(|| io::Error::other("a local tree without a root cannot be changed"))?;
    let src_root = new
        .root
        .as_deref()
        .ok_or_else(|| io::Error::other("a tree without a root cannot be copied from"))?;
    let mut done = Applied::default();
    for (path, (side, e)) in &plan.result {
        if *side == Side::Local || local.entries.get(path) == Some(e) {
            continue;
        }
        install(
            &src_root.join(path),
            &dest.join(path),
            local.entries.get(path),
            e,
        )?;
        done.written.push(path.clone());
    }
    for (rpmnew, of) in &plan.rpmnew {
        if let Some(e) = new
            .entries
            .get(of)
            .filter(|e| local.entries.get(rpmnew) != Some(*e))
        {
            install(
                &src_root.join(of),
                &dest.join(rpmnew),
                local.entries.get(rpmnew),
                e,
            )?;
            done.rpmnew.push(rpmnew.clone());
        }
    }
    for (path, e) in local.entries.iter().rev() {
        if plan.result.contains_key(path)
            || plan.rpmnew.contains_key(path)
            || matches!(e.kind, Kind::Special(_))
        {
            continue;
        }
        let p = dest.join(path);
        let r = if e.kind == Kind::Dir {
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => done.removed.push(path.clone()),
            // A directory that still holds a local file, or a path gone already.
            Err(err)
                if err.kind() == io::ErrorKind::NotFound
                    || err.kind() == io::ErrorKind::DirectoryNotEmpty => {}
            Err(err) => return Err(err),
        }
    }
    Ok(done)
}

/// Puts `e` (read from `src`) at `dst`, replacing what `old` is there.
fn install(src: &Path, dst: &Path, old: Option<&Entry>, e: &Entry) -> io::Result<()> {
    let old_dir = old.is_some_and(|o| o.kind == Kind::Dir);
    if e.kind == Kind::Dir {
        if old.is_some() && !old_dir {
            std::fs::remove_file(dst)?;
        }
        if !old_dir {
            std::fs::create_dir(dst)?;
        }
        return set_attrs(dst, src, e).and_then(|()| copy_times(src, dst));
    }
    let name = dst
        .file_name()
        .ok_or_else(|| io::Error::other("a path without a name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".reimage-new");
    let tmp = dst.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    match &e.kind {
        Kind::Symlink(t) => std::os::unix::fs::symlink(t, &tmp)?,
        Kind::File { .. } => {
            std::fs::copy(src, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
        }
        Kind::Dir | Kind::Special(_) => return Ok(()),
    }
    set_attrs(&tmp, src, e)?;
    if old_dir {
        std::fs::remove_dir_all(dst)?;
    }
    std::fs::rename(&tmp, dst)
}

fn set_attrs(dst: &Path, src: &Path, e: &Entry) -> io::Result<()> {
    use rustix::fs::{AtFlags, Gid, Uid, CWD};
    let (uid, gid) = (Uid::from_raw(e.uid), Gid::from_raw(e.gid));
    match rustix::fs::chownat(CWD, dst, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) => {}
        // Not root (tests): ownership stays the caller's, which is what the
        // sources have then.
        Err(rustix::io::Errno::PERM) if !rustix::process::geteuid().is_root() => {}
        Err(err) => return Err(err.into()),
    }
    if !matches!(e.kind, Kind::Symlink(_)) {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(e.mode))?;
    }
    for (name, value) in &e.xattrs {
        rustix::fs::lsetxattr(dst, name, value, rustix::fs::XattrFlags::empty())?;
    }
    if e.kind != Kind::Dir {
        copy_times(src, dst)?;
    }
    Ok(())
}

fn copy_times(src: &Path, dst: &Path) -> io::Result<()> {
    use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
    let m = std::fs::symlink_metadata(src)?;
    let t = |s: i64, ns: i64| Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    let ts = Timestamps {
        last_access: t(m.atime(), m.atime_nsec()),
        last_modification: t(m.mtime(), m.mtime_nsec()),
    };
    rustix::fs::utimensat(CWD, dst, &ts, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

#[cfg(test)]
mod tests;
