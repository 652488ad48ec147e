//! A `/usr` tree: a view (with its `view.json`) or the `/usr` of a running
//! system (without), and where each header path lives in it.
use crate::error::{Error, Result};
use crate::headerdir::{HeaderDir, HEADER_DIR};
use crate::meta::{Owners, ViewMeta};
use crate::relocate::{components, Kind, Placement, Policy};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// An open `/usr` tree.
#[derive(Debug)]
pub struct Tree {
    /// The tree's root, which is `/usr` once deployed.
    pub root: PathBuf,
    /// The view's metadata, `None` for a plain `/usr`.
    pub meta: Option<ViewMeta>,
    /// The owner tables files are checked against.
    pub owners: Owners,
    policy: Policy,
    relocations: HashMap<String, PathBuf>,
}

/// Where a header path lives in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Inside the tree, at this path relative to its root; `relocated` when
    /// the header path is not `/usr/<same path>`.
    Tree { rel: PathBuf, relocated: bool },
    /// Outside the tree (a plain `/usr`: `/etc/x` is the system's `/etc/x`).
    Outside(PathBuf),
    /// Not materialised (root skeleton, refused path): nothing to check.
    Nowhere,
}

impl Tree {
    /// Opens a tree: reads `lib/reimage/view.json` if there is one, and the
    /// owner tables (the view's recorded table; else `ROOT/../etc/passwd` and
    /// `group` when they exist; else the host's).
    pub fn open(root: &Path) -> Result<Tree> {
        let meta = ViewMeta::read(root)?;
        let (owners, policy, relocations) = match &meta {
            Some(m) => (
                Owners::from_tables(&m.users, &m.groups),
                Policy::with_rules(m.rules.iter().map(|r| (&r.from, &r.to)))?,
                m.relocations
                    .iter()
                    .map(|r| (r.from.clone(), PathBuf::from(&r.to)))
                    .collect(),
            ),
            None => {
                let etc = root.join("../etc");
                let etc = if etc.join("passwd").exists() {
                    etc
                } else {
                    PathBuf::from("/etc")
                };
                (
                    Owners::from_files(&etc.join("passwd"), &etc.join("group"))?,
                    Policy::new(),
                    HashMap::new(),
                )
            }
        };
        Ok(Tree {
            root: root.to_path_buf(),
            meta,
            owners,
            policy,
            relocations,
        })
    }

    /// `ROOT/lib/sysimage/packages`.
    pub fn header_dir(&self) -> PathBuf {
        self.root.join(HEADER_DIR)
    }

    /// Reads the tree's package database. In a view, a header file its
    /// metadata lists but the directory lacks is an error of the result.
    pub fn packages(&self) -> Result<HeaderDir> {
        let mut db = HeaderDir::read(&self.header_dir())?;
        if let Some(meta) = &self.meta {
            for p in &meta.packages {
                let path = self.header_dir().join(format!("{p}.rpm"));
                if path.symlink_metadata().is_err() {
                    db.errors.push(Error::MissingHeader { path });
                }
            }
            db.errors.sort_by_key(|e| e.to_string());
        }
        Ok(db)
    }

    /// The relocation policy of the tree (with the view's recorded rules).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where the header path `path` of `kind` lives.
    pub fn locate(&self, path: &str, kind: Kind) -> Location {
        let Ok(c) = components(path) else {
            return Location::Nowhere;
        };
        if let Some(rel) = self.relocations.get(path) {
            return Location::Tree {
                rel: rel.clone(),
                relocated: true,
            };
        }
        if self.meta.is_none() {
            return match c.as_slice() {
                ["usr", rest @ ..] => Location::Tree {
                    rel: rest.iter().collect(),
                    relocated: false,
                },
                _ => {
                    let mut p = self.root.join("..");
                    p.extend(&c);
                    Location::Outside(p)
                }
            };
        }
        match self.policy.place(path, kind) {
            Ok(Placement::View(rel)) => {
                let relocated = c.first() != Some(&"usr")
                    || self
                        .policy
                        .rules()
                        .iter()
                        .any(|(f, _)| path == f || path.starts_with(&format!("{f}/")));
                Location::Tree { rel, relocated }
            }
            _ => Location::Nowhere,
        }
    }

    /// The header paths the view records as relocated to `rel` (a path
    /// relative to the root), e.g. `/boot/vmlinuz-K` for
    /// `lib/modules/K/vmlinuz`: places whose header name differs from the
    /// view's name in more than the leading directory.
    pub fn relocated_to(&self, rel: &Path) -> Vec<&str> {
        self.relocations
            .iter()
            .filter(|(_, to)| to.as_path() == rel)
            .map(|(from, _)| from.as_str())
            .collect()
    }

    /// The filesystem path of a header path, if it is materialised.
    pub fn fs_path(&self, path: &str, kind: Kind) -> Option<PathBuf> {
        match self.locate(path, kind) {
            Location::Tree { rel, .. } => Some(self.root.join(rel)),
            Location::Outside(p) => Some(p),
            Location::Nowhere => None,
        }
    }

    /// The view path of a relocated header path (for `--json` output).
    pub fn view_path(&self, path: &str, kind: Kind) -> Option<PathBuf> {
        match self.locate(path, kind) {
            Location::Tree {
                rel,
                relocated: true,
            } => Some(rel),
            _ => None,
        }
    }
}
