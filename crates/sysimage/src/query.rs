//! Queries over a tree's package database, like `rpm -qa`, `-qf`, `-ql`,
//! `-qi`, `--provides`, `--requires`, `--whatprovides`.
use crate::error::{Error, Result};
use crate::header::{Dep, FileEntry, Package};
use crate::headerdir::HeaderDir;
use crate::nevra::{Evr, Nevra};
use crate::relocate::{components, join_abs, Kind};
use crate::tree::{Location, Tree};
use serde::Serialize;
use std::cmp::Ordering;

/// One line of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListEntry {
    /// `N-[E:]V-R.A`, as rpm's `%{NEVRA}`.
    pub nevra: String,
    #[serde(flatten)]
    pub id: Nevra,
    pub summary: String,
    /// Installed size in bytes.
    pub size: u64,
}

/// The packages of a database, like `rpm -qa`.
pub fn list(db: &HeaderDir) -> Vec<ListEntry> {
    db.packages
        .iter()
        .map(|p| ListEntry {
            nevra: p.nevra.to_string(),
            id: p.nevra.clone(),
            summary: p.summary.clone(),
            size: p.size,
        })
        .collect()
}

/// A file of a package with where it lives in the view, when relocated.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    #[serde(flatten)]
    pub file: FileEntry,
    /// The path relative to the view root, when not `/usr/<same>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_path: Option<String>,
}

/// A package's files, like `rpm -ql` (header paths, header order).
pub fn files(tree: &Tree, pkg: &Package) -> Result<Vec<FileView>> {
    Ok(pkg
        .files()?
        .into_iter()
        .map(|f| {
            let view_path = tree
                .view_path(&f.path, Kind::from_mode(f.mode))
                .map(|p| p.to_string_lossy().into_owned());
            FileView { file: f, view_path }
        })
        .collect())
}

/// A package owning a path.
#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    pub nevra: String,
    /// The path as that package's header names it.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_path: Option<String>,
}

/// Which packages own `path`, like `rpm -qf`. A path matches a header path
/// equal to it, or one that lands at the same place in the view (so
/// `/bin/bash` finds `/usr/bin/bash` in a merged view, and back).
pub fn owner_of(tree: &Tree, db: &HeaderDir, path: &str) -> Result<Vec<Owner>> {
    let c = components(path)?;
    let norm = join_abs(&c);
    let base = c.last().copied().unwrap_or("");
    let loc = |p: &str, kind| match tree.locate(p, kind) {
        Location::Tree { rel, .. } => Some(rel),
        _ => None,
    };
    let want = loc(&norm, Kind::File);
    // Header paths recorded as relocated to that place under another base
    // name (/boot/vmlinuz-K at lib/modules/K/vmlinuz, --relocate'd dirs).
    let renamed = want
        .as_deref()
        .map(|w| tree.relocated_to(w))
        .unwrap_or_default();
    let mut out = Vec::new();
    for pkg in &db.packages {
        let paths = pkg.file_paths()?;
        let mut hit = paths.iter().position(|p| *p == norm);
        if hit.is_none() && want.is_some() {
            // Same place in the view under another name (/bin/x vs /usr/bin/x).
            hit = paths.iter().position(|p| {
                renamed.contains(&p.as_str())
                    || (p.rsplit('/').next() == Some(base) && loc(p, Kind::File) == want)
            });
        }
        if let Some(i) = hit {
            let files = pkg.files()?;
            let f = &files[i];
            out.push(Owner {
                nevra: pkg.nevra.to_string(),
                path: f.path.clone(),
                view_path: tree
                    .view_path(&f.path, Kind::from_mode(f.mode))
                    .map(|p| p.to_string_lossy().into_owned()),
            });
        }
    }
    Ok(out)
}

/// A package providing a capability.
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    pub nevra: String,
    /// The matching provide (`name = version`) or file path.
    pub provides: String,
}

fn satisfies(provided: &Dep, op: &str, want: &str) -> bool {
    if op.is_empty() || provided.op.is_empty() {
        return true;
    }
    let (Ok(have), Ok(want)) = (Evr::parse(&provided.version), Evr::parse(want)) else {
        return provided.version == want;
    };
    // Does some version in the provided range satisfy the requested range?
    let o = have.cmp_dep(&want);
    let ok_req = |o: Ordering| match op {
        "=" | "==" => o == Ordering::Equal,
        "<" => o == Ordering::Less,
        "<=" => o != Ordering::Greater,
        ">" => o == Ordering::Greater,
        ">=" => o != Ordering::Less,
        _ => false,
    };
    match provided.op.as_str() {
        "=" => ok_req(o),
        ">=" | ">" => {
            matches!(op, ">" | ">=")
                || o == Ordering::Less
                || (o == Ordering::Equal && provided.op == ">=" && op != "<")
        }
        "<=" | "<" => {
            matches!(op, "<" | "<=")
                || o == Ordering::Greater
                || (o == Ordering::Equal && provided.op == "<=" && op != ">")
        }
        _ => false,
    }
}

/// Which packages provide `cap` (`NAME`, or `NAME OP VERSION`, or a file
/// path), like `rpm -q --whatprovides`.
pub fn whatprovides(tree: &Tree, db: &HeaderDir, cap: &str) -> Result<Vec<Provider>> {
    let mut words = cap.split_whitespace();
    let name = words
        .next()
        .ok_or_else(|| Error::NoPackage(cap.to_string()))?;
    let op = words.next().unwrap_or("");
    let ver = words.next().unwrap_or("");
    let mut out = Vec::new();
    for pkg in &db.packages {
        for d in pkg.provides()? {
            if d.name == name && satisfies(&d, op, ver) {
                out.push(Provider {
                    nevra: pkg.nevra.to_string(),
                    provides: d.to_string(),
                });
                break;
            }
        }
    }
    if name.starts_with('/') && op.is_empty() {
        for o in owner_of(tree, db, name)? {
            if !out.iter().any(|p| p.nevra == o.nevra) {
                out.push(Provider {
                    nevra: o.nevra,
                    provides: o.path,
                });
            }
        }
    }
    Ok(out)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (days to civil date: Howard
/// Hinnant's algorithm).
pub fn utc(t: u64) -> String {
    let (days, secs) = ((t / 86_400) as i64, t % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Formats `rpm -qi`-like text for a package.
pub fn info_text(pkg: &Package) -> Result<String> {
    let i = pkg.info()?;
    let mut s = String::new();
    let mut line = |k: &str, v: &str| {
        s.push_str(&format!("{k:<12}: {v}\n"));
    };
    line("Name", &i.nevra.name);
    if let Some(e) = i.nevra.epoch {
        line("Epoch", &e.to_string());
    }
    line("Version", &i.nevra.version);
    line("Release", &i.nevra.release);
    line("Architecture", &i.nevra.arch);
    line("Group", &i.group);
    line("Size", &i.size.to_string());
    line("License", &i.license);
    line("Source RPM", &i.source_rpm);
    line("Build Date", &utc(i.build_time));
    line("Build Host", &i.build_host);
    if !i.packager.is_empty() {
        line("Packager", &i.packager);
    }
    if !i.vendor.is_empty() {
        line("Vendor", &i.vendor);
    }
    if !i.url.is_empty() {
        line("URL", &i.url);
    }
    line("Summary", &i.summary);
    s.push_str("Description :\n");
    s.push_str(&i.description);
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    fn dep(op: &str, v: &str) -> Dep {
        Dep {
            name: "x".into(),
            op: op.into(),
            version: v.into(),
        }
    }

    #[test]
    fn ranges() {
        assert!(satisfies(&dep("=", "1.0-1"), ">=", "1.0"));
        assert!(satisfies(&dep("=", "1.0-1"), "=", "1.0"));
        assert!(!satisfies(&dep("=", "1.0-1"), ">", "1.0-1"));
        assert!(satisfies(&dep("", ""), ">", "9"));
        assert!(satisfies(&dep(">=", "2"), ">", "5"));
        assert!(satisfies(&dep(">=", "2"), "<", "5"));
        assert!(!satisfies(&dep(">=", "5"), "<", "2"));
        assert!(satisfies(&dep(">=", "5"), "<=", "5"));
        assert!(!satisfies(&dep(">", "5"), "<=", "5"));
        assert!(satisfies(&dep("<", "5"), ">", "2"));
        assert!(!satisfies(&dep("<", "2"), ">", "5"));
    }
}
