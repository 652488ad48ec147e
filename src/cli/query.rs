//! CLI commands over the header directory: list, query, diff, verify.
//!
//! VIEW is a view name in the pool (`POOL/views/NAME`) or a path to any
//! `/usr` tree. Data goes to stdout (human text, or JSON with `--json`);
//! unreadable header files are warned about on stderr and do not stop the
//! command.
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use sysimage::{query, verify, HeaderDir, Tree};

use crate::cli::common::{Global, Out};
use crate::util::runner::log;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// A view name in the pool, or a path to a /usr tree.
    pub view: String,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(false)))]
pub struct QueryArgs {
    /// A view name in the pool, or a path to a /usr tree.
    pub view: String,
    /// Which package owns PATH (like rpm -qf).
    #[arg(short = 'f', long = "file", value_name = "PATH", group = "what")]
    pub file: Option<String>,
    /// The files of PKG (like rpm -ql).
    #[arg(short = 'l', long = "list", value_name = "PKG", group = "what")]
    pub list: Option<String>,
    /// Information about PKG (like rpm -qi).
    #[arg(short = 'i', long = "info", value_name = "PKG", group = "what")]
    pub info: Option<String>,
    /// What PKG provides.
    #[arg(long, value_name = "PKG", group = "what")]
    pub provides: Option<String>,
    /// What PKG requires.
    #[arg(long, value_name = "PKG", group = "what")]
    pub requires: Option<String>,
    /// Which packages provide CAP (`NAME`, `"NAME >= VERSION"`, or a path).
    #[arg(long, value_name = "CAP", group = "what")]
    pub whatprovides: Option<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old view (name or /usr tree).
    pub a: String,
    /// The new view (name or /usr tree).
    pub b: String,
    /// Also list files added, removed and changed (from the headers alone).
    #[arg(long)]
    pub files: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A view name in the pool, or a path to a /usr tree.
    pub view: String,
    /// Packages to verify (NEVRA, N-V-R or name); all when none.
    pub packages: Vec<String>,
}

/// Resolves VIEW: an existing path (or anything with a `/`) is a `/usr`
/// tree; otherwise a view name in the pool.
pub fn resolve_view(global: &Global, view: &str) -> Result<PathBuf> {
    let p = Path::new(view);
    if view.contains('/') || p.exists() {
        if !p.is_dir() {
            bail!("{view} is not a directory (expected a view name or a /usr tree)");
        }
        return Ok(p.to_path_buf());
    }
    let pool = crate::store::pool::Pool::open(&global.pool)
        .with_context(|| format!("{view:?} is not a path, so it names a view in the pool"))?;
    let dir = pool.views_dir().join(view);
    if !dir.is_dir() {
        bail!(
            "no view {view:?} in {} (and no directory of that name here)",
            pool.views_dir().display()
        );
    }
    Ok(dir)
}

/// Opens a tree and its package database, warning about unreadable headers.
fn open(global: &Global, view: &str) -> Result<(Tree, HeaderDir)> {
    let root = resolve_view(global, view)?;
    let tree = Tree::open(&root).with_context(|| format!("cannot open {}", root.display()))?;
    let db = tree
        .packages()
        .with_context(|| format!("cannot read the package database of {}", root.display()))?;
    for e in &db.errors {
        log::warn(&e.to_string());
    }
    Ok((tree, db))
}

fn error_strings(db: &HeaderDir) -> Vec<String> {
    db.errors.iter().map(|e| e.to_string()).collect()
}

#[derive(Serialize)]
struct ListJson {
    packages: Vec<query::ListEntry>,
    errors: Vec<String>,
}

/// `reimage list VIEW`.
pub fn run_list(global: &Global, args: ListArgs) -> Result<i32> {
    let (_tree, db) = open(global, &args.view)?;
    let packages = query::list(&db);
    let mut out = Out::new();
    if global.json {
        out.json(&ListJson {
            packages,
            errors: error_strings(&db),
        })?;
    } else {
        let w = packages.iter().map(|p| p.nevra.len()).max().unwrap_or(0);
        for p in &packages {
            out.line(format_args!(
                "{:<w$}  {:>12}  {}",
                p.nevra, p.size, p.summary
            ))?;
        }
    }
    Ok(0)
}

#[derive(Serialize)]
struct OwnersJson {
    path: String,
    owners: Vec<query::Owner>,
}

#[derive(Serialize)]
struct FilesJson {
    package: String,
    files: Vec<query::FileView>,
}

#[derive(Serialize)]
struct DepsJson {
    package: String,
    deps: Vec<sysimage::Dep>,
}

#[derive(Serialize)]
struct ProvidersJson {
    capability: String,
    providers: Vec<query::Provider>,
}

/// `reimage query VIEW (-f PATH | -l PKG | -i PKG | --provides PKG | --requires PKG | --whatprovides CAP)`.
pub fn run_query(global: &Global, args: QueryArgs) -> Result<i32> {
    let (tree, db) = open(global, &args.view)?;
    let mut out = Out::new();
    if let Some(path) = &args.file {
        let owners = query::owner_of(&tree, &db, path)?;
        let code = if owners.is_empty() { 1 } else { 0 };
        if global.json {
            out.json(&OwnersJson {
                path: path.clone(),
                owners,
            })?;
        } else if owners.is_empty() {
            eprintln!("file {path} is not owned by any package");
        } else {
            for o in owners {
                out.line(o.nevra)?;
            }
        }
        return Ok(code);
    }
    if let Some(cap) = &args.whatprovides {
        let providers = query::whatprovides(&tree, &db, cap)?;
        let code = if providers.is_empty() { 1 } else { 0 };
        if global.json {
            out.json(&ProvidersJson {
                capability: cap.clone(),
                providers,
            })?;
        } else if providers.is_empty() {
            eprintln!("no package provides {cap}");
        } else {
            for p in providers {
                out.line(p.nevra)?;
            }
        }
        return Ok(code);
    }
    let (sel, what) = match (&args.list, &args.info, &args.provides, &args.requires) {
        (Some(p), ..) => (p, 'l'),
        (_, Some(p), ..) => (p, 'i'),
        (_, _, Some(p), _) => (p, 'p'),
        (_, _, _, Some(p)) => (p, 'r'),
        _ => bail!("nothing to query (use -f, -l, -i, --provides, --requires or --whatprovides)"),
    };
    let pkgs = db.select(sel)?;
    let mut json = Vec::new();
    for p in pkgs {
        let package = p.nevra.to_string();
        match what {
            'l' => {
                let files = query::files(&tree, p)?;
                if global.json {
                    json.push(serde_json::to_value(FilesJson { package, files })?);
                } else if files.is_empty() {
                    out.line("(contains no files)")?;
                } else {
                    for f in files {
                        out.line(f.file.path)?;
                    }
                }
            }
            'i' => {
                if global.json {
                    json.push(serde_json::to_value(p.info()?)?);
                } else {
                    out.line(query::info_text(p)?.trim_end())?;
                }
            }
            _ => {
                let deps = if what == 'p' {
                    p.provides()?
                } else {
                    p.requires()?
                };
                if global.json {
                    json.push(serde_json::to_value(DepsJson { package, deps })?);
                } else {
                    for d in deps {
                        out.line(d)?;
                    }
                }
            }
        }
    }
    if global.json {
        out.json(&json)?;
    }
    Ok(0)
}

#[derive(Serialize)]
struct DiffJson {
    packages: sysimage::diff::PackageDiff,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<sysimage::diff::FileDiff>,
}

/// `reimage diff A B [--files]`.
pub fn run_diff(global: &Global, args: DiffArgs) -> Result<i32> {
    let (_, a) = open(global, &args.a)?;
    let (_, b) = open(global, &args.b)?;
    let packages = sysimage::diff::diff(&a, &b);
    let files = if args.files {
        Some(sysimage::diff::diff_files(&a, &b)?)
    } else {
        None
    };
    let mut out = Out::new();
    if global.json {
        out.json(&DiffJson { packages, files })?;
        return Ok(0);
    }
    for n in &packages.removed {
        out.line(format_args!("removed     {n}"))?;
    }
    for n in &packages.added {
        out.line(format_args!("added       {n}"))?;
    }
    for c in &packages.upgraded {
        out.line(format_args!("upgraded    {} -> {}", c.from, c.to))?;
    }
    for c in &packages.downgraded {
        out.line(format_args!("downgraded  {} -> {}", c.from, c.to))?;
    }
    for n in &packages.rebuilt {
        out.line(format_args!("rebuilt     {n}"))?;
    }
    if let Some(f) = files {
        for p in &f.removed {
            out.line(format_args!("R {p}"))?;
        }
        for p in &f.added {
            out.line(format_args!("A {p}"))?;
        }
        for c in &f.changed {
            out.line(format_args!("M {} ({})", c.path, c.what.join(",")))?;
        }
    }
    Ok(0)
}

/// `reimage verify VIEW [PKG...]`: exit 1 on any mismatch.
pub fn run_verify(global: &Global, args: VerifyArgs) -> Result<i32> {
    let (tree, db) = open(global, &args.view)?;
    let pkgs = db.select_all(&args.packages)?;
    let report = verify::verify(&tree, &pkgs)?;
    let mut out = Out::new();
    if global.json {
        out.json(&report)?;
    } else {
        for p in &report.problems {
            out.line(&p.line)?;
        }
        log::debug(&format!(
            "verified {} files of {} packages ({} not materialised in the tree)",
            report.files, report.packages, report.skipped
        ));
    }
    Ok(if report.ok() && db.errors.is_empty() {
        0
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct T {
        #[command(subcommand)]
        c: C,
    }
    #[derive(Subcommand, Debug)]
    enum C {
        List(ListArgs),
        Query(QueryArgs),
        Diff(DiffArgs),
        Verify(VerifyArgs),
    }

    #[test]
    fn args_parse() {
        T::command().debug_assert();
        let t = T::try_parse_from(["x", "query", "v", "-f", "/usr/bin/bash"]).unwrap();
        assert!(matches!(t.c, C::Query(QueryArgs { file: Some(_), .. })));
        assert!(T::try_parse_from(["x", "query", "v"]).is_err());
        assert!(T::try_parse_from(["x", "query", "v", "-l", "a", "-i", "b"]).is_err());
        let t = T::try_parse_from(["x", "verify", "v", "bash", "rpm"]).unwrap();
        assert!(matches!(t.c, C::Verify(VerifyArgs { ref packages, .. }) if packages.len() == 2));
        assert!(T::try_parse_from(["x", "diff", "a", "b", "--files"]).is_ok());
    }
}
