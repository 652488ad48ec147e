//! Differences between two package databases: packages (by name and arch,
//! with rpm's EVR comparison) and files (from the headers alone).
use crate::error::Result;
use crate::header::{FileEntry, Package};
use crate::headerdir::HeaderDir;
use crate::nevra::Nevra;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// One package whose version changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub name: String,
    pub arch: String,
    pub from: String,
    pub to: String,
}

/// The package-level difference from A to B.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    /// NEVRAs only in B.
    pub added: Vec<String>,
    /// NEVRAs only in A.
    pub removed: Vec<String>,
    pub upgraded: Vec<Change>,
    pub downgraded: Vec<Change>,
    /// Same NEVRA on both sides but a different main header (a rebuild).
    pub rebuilt: Vec<String>,
}

impl PackageDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.upgraded.is_empty()
            && self.downgraded.is_empty()
            && self.rebuilt.is_empty()
    }
}

fn by_key(db: &HeaderDir) -> BTreeMap<(String, String), Vec<&Package>> {
    let mut m: BTreeMap<(String, String), Vec<&Package>> = BTreeMap::new();
    for p in &db.packages {
        m.entry((p.nevra.name.clone(), p.nevra.arch.clone()))
            .or_default()
            .push(p);
    }
    m
}

/// Compares two package databases. Packages pair up by name and arch; when
/// a name and arch has several versions on a side (install-only packages
/// such as kernels), identical versions pair up and the rest are added or
/// removed unless exactly one is left on each side.
pub fn diff(a: &HeaderDir, b: &HeaderDir) -> PackageDiff {
    let (ma, mb) = (by_key(a), by_key(b));
    let keys: BTreeSet<_> = ma.keys().chain(mb.keys()).cloned().collect();
    let mut d = PackageDiff::default();
    let empty = Vec::new();
    for k in keys {
        let mut left: Vec<&Package> = ma.get(&k).unwrap_or(&empty).clone();
        let mut right: Vec<&Package> = mb.get(&k).unwrap_or(&empty).clone();
        // Pair identical versions.
        left.retain(|l| {
            match right.iter().position(|r| {
                l.nevra.cmp_evr(&r.nevra) == Ordering::Equal
                    && l.nevra.epoch.unwrap_or(0) == r.nevra.epoch.unwrap_or(0)
            }) {
                Some(i) => {
                    let r = right.remove(i);
                    if l.header().bytes() != r.header().bytes() {
                        d.rebuilt.push(r.nevra.to_string());
                    }
                    false
                }
                None => true,
            }
        });
        match (left.as_slice(), right.as_slice()) {
            ([l], [r]) => {
                let c = Change {
                    name: k.0.clone(),
                    arch: k.1.clone(),
                    from: l.nevra.to_string(),
                    to: r.nevra.to_string(),
                };
                match l.nevra.cmp_evr(&r.nevra) {
                    Ordering::Less => d.upgraded.push(c),
                    _ => d.downgraded.push(c),
                }
            }
            _ => {
                d.removed.extend(left.iter().map(|p| p.nevra.to_string()));
                d.added.extend(right.iter().map(|p| p.nevra.to_string()));
            }
        }
    }
    d
}

/// One file-level change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    /// What differs: `type`, `digest`, `size`, `mode`, `user`, `group`, `link`.
    pub what: Vec<&'static str>,
    /// The owning package on each side.
    pub from: String,
    pub to: String,
}

/// The file-level difference from A to B.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<FileChange>,
}

fn all_files(db: &HeaderDir) -> Result<BTreeMap<String, (FileEntry, Nevra)>> {
    use rayon::prelude::*;
    let per: Vec<Vec<FileEntry>> = db
        .packages
        .par_iter()
        .map(|p| p.files())
        .collect::<Result<_>>()?;
    let mut m = BTreeMap::new();
    for (p, files) in db.packages.iter().zip(per) {
        for f in files {
            m.entry(f.path.clone()).or_insert((f, p.nevra.clone()));
        }
    }
    Ok(m)
}

/// What differs between two header entries for the same path.
pub fn file_differences(a: &FileEntry, b: &FileEntry) -> Vec<&'static str> {
    let mut w = Vec::new();
    if a.file_type != b.file_type {
        w.push("type");
    }
    if a.digest != b.digest {
        w.push("digest");
    }
    if a.size != b.size {
        w.push("size");
    }
    if a.mode & 0o7777 != b.mode & 0o7777 {
        w.push("mode");
    }
    if a.user != b.user {
        w.push("user");
    }
    if a.group != b.group {
        w.push("group");
    }
    if a.link != b.link {
        w.push("link");
    }
    if a.caps != b.caps {
        w.push("caps");
    }
    w
}

/// Files added, removed and changed from A to B, from the headers alone
/// (paths as the headers name them).
pub fn diff_files(a: &HeaderDir, b: &HeaderDir) -> Result<FileDiff> {
    let (fa, fb) = rayon::join(|| all_files(a), || all_files(b));
    let (fa, fb) = (fa?, fb?);
    let mut d = FileDiff::default();
    for (path, (f, pkg)) in &fa {
        match fb.get(path) {
            None => d.removed.push(path.clone()),
            Some((g, pkg_b)) => {
                let what = file_differences(f, g);
                if !what.is_empty() {
                    d.changed.push(FileChange {
                        path: path.clone(),
                        what,
                        from: pkg.to_string(),
                        to: pkg_b.to_string(),
                    });
                }
            }
        }
    }
    d.added = fb
        .keys()
        .filter(|p| !fa.contains_key(*p))
        .cloned()
        .collect();
    Ok(d)
}
