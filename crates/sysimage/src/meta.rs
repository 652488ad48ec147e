//! `VIEW/lib/reimage/view.json`: what compose records about a view and what
//! query and verify read back (relocations, owner table, origin).
//!
//! ```json
//! {
//!   "format": 1,
//!   "created": 1732233600,
//!   "packages": ["bash-5.2.15-3.fc38.x86_64", "..."],
//!   "relocations": [{"from": "/etc/foo", "to": "etc/foo"}, {"from": "/var/log", "to": "share/factory/var/log"}],
//!   "rules": [{"from": "/opt/foo", "to": "/usr/lib/foo"}],
//!   "users": {"root": 0, "tss": 59},
//!   "groups": {"root": 0, "utmp": 22}
//! }
//! ```
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The view metadata file, relative to the view root.
pub const VIEW_META: &str = "lib/reimage/view.json";
/// The format version this crate writes and reads.
pub const VIEW_META_FORMAT: u32 = 1;

/// One relocated path: the header path and where it lives in the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relocation {
    /// The path as the header names it (`/etc/foo`).
    pub from: String,
    /// The path relative to the view root (`etc/foo`).
    pub to: String,
}

/// A `--relocate FROM=TO` rule used by compose (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub from: String,
    pub to: String,
}

/// What compose records in a view; query and verify read it back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMeta {
    /// [`VIEW_META_FORMAT`].
    pub format: u32,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub created: u64,
    /// The NEVRAs composed into the view.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Every header path that lives elsewhere than `/usr/...` -> `...`.
    #[serde(default)]
    pub relocations: Vec<Relocation>,
    /// The user relocation rules in force.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The owner name -> id tables used to chown the tree.
    #[serde(default)]
    pub users: BTreeMap<String, u32>,
    #[serde(default)]
    pub groups: BTreeMap<String, u32>,
    /// The base view of an incremental compose, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The image and version the package list came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ViewMeta {
    /// Reads `VIEW/lib/reimage/view.json`; `None` when there is none (a
    /// plain `/usr` tree).
    pub fn read(view_root: &Path) -> Result<Option<ViewMeta>> {
        let path = view_root.join(VIEW_META);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let meta: ViewMeta = serde_json::from_slice(&text).map_err(|source| Error::Meta {
            path: path.clone(),
            source,
        })?;
        if meta.format != VIEW_META_FORMAT {
            return Err(Error::Corrupt {
                path,
                reason: format!(
                    "view metadata format {} (this build reads {VIEW_META_FORMAT})",
                    meta.format
                ),
            });
        }
        Ok(Some(meta))
    }

    /// The JSON text compose writes (pretty, stable key order).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("ViewMeta serializes");
        s.push('\n');
        s
    }
}

/// Owner name <-> id tables (users and groups).
#[derive(Debug, Clone, Default)]
pub struct Owners {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
    uid_names: HashMap<u32, String>,
    gid_names: HashMap<u32, String>,
}

fn parse_db(text: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (name.to_string(), id))
        })
        .collect()
}

impl Owners {
    /// From name -> id tables (a view's recorded table). `root` is always 0.
    pub fn from_tables(users: &BTreeMap<String, u32>, groups: &BTreeMap<String, u32>) -> Owners {
        let mut o = Owners::default();
        let add = |names: &mut HashMap<String, u32>,
                   ids: &mut HashMap<u32, String>,
                   t: &BTreeMap<String, u32>| {
            names.insert("root".into(), 0);
            ids.insert(0, "root".into());
            for (n, &id) in t {
                names.insert(n.clone(), id);
                ids.entry(id).or_insert_with(|| n.clone());
            }
        };
        add(&mut o.users, &mut o.uid_names, users);
        add(&mut o.groups, &mut o.gid_names, groups);
        o
    }

    /// From `passwd` and `group` files (a missing file is an empty table).
    pub fn from_files(passwd: &Path, group: &Path) -> Result<Owners> {
        let read = |p: &Path| match std::fs::read_to_string(p) {
            Ok(t) => Ok(parse_db(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io(p, e)),
        };
        Ok(Owners::from_tables(&read(passwd)?, &read(group)?))
    }

    pub fn uid(&self, name: &str) -> Option<u32> {
        self.users.get(name).copied()
    }
    pub fn gid(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.uid_names.get(&uid).map(String::as_str)
    }
    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.gid_names.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = ViewMeta {
            format: VIEW_META_FORMAT,
            created: 1,
            packages: vec!["a-1-1.noarch".into()],
            relocations: vec![Relocation {
                from: "/etc/a".into(),
                to: "etc/a".into(),
            }],
            rules: vec![],
            users: [("tss".to_string(), 59)].into(),
            groups: BTreeMap::new(),
            from: None,
            image: None,
            version: None,
        };
        let back: ViewMeta = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, m);
        // Older or minimal files: only the format is required.
        let min: ViewMeta = serde_json::from_str(r#"{"format":1}"#).unwrap();
        assert!(min.relocations.is_empty());
    }

    #[test]
    fn owners_from_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("passwd"),
            "root:x:0:0::/root:/bin/bash\n# c\nbin:x:1:1::/:/sbin/nologin\nbad\n",
        )
        .unwrap();
        let o = Owners::from_files(&d.path().join("passwd"), &d.path().join("nogroup")).unwrap();
        assert_eq!(o.uid("bin"), Some(1));
        assert_eq!(o.user_name(1), Some("bin"));
        assert_eq!(o.gid("root"), Some(0));
        assert_eq!(o.uid("bad"), None);
    }
}
