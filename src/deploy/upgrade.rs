//! `reimage upgrade [--check]`: one command from "a new version is published"
//! to "it is the default for the next boot", as `bootc upgrade` or
//! `rpm-ostree upgrade`: sync the image the system follows, compose the new
//! view from the one in use (incrementally, from its stored plan), deploy it.
//!
//! What a system follows: the origin of its deployment (`install --from`
//! records it, every deploy inherits it), else the image its view was synced
//! as, from where the pool last synced that image (`sync` remembers it).
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sysimage::meta::ViewMeta;

use crate::deploy::state::Origin;
use crate::deploy::sysroot;
use crate::dist::sync::{self, SyncCheck, SyncOptions, SyncReport};
use crate::store::pool::Pool;
use crate::util::report::Reporter;
use crate::views::compose::{ComposeOptions, ComposeReport};

/// Options of `reimage upgrade`.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    pub sysroot: Option<PathBuf>,
    /// Only say what would change.
    pub check: bool,
    /// Instead of the recorded source (a mirror, say).
    pub source: Option<String>,
    /// Instead of the recorded keyring.
    pub keyring: Option<PathBuf>,
    pub deltas: bool,
    pub wait: bool,
}

/// A package that changes version.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// The package changes of an upgrade, by file name (NAME-VERSION-RELEASE.ARCH).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<Changed>,
}

/// What `upgrade` did (or, with `--check`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    pub source: String,
    pub image: String,
    /// The deployment upgraded from (booted, else the default) and its view.
    pub deployment: u64,
    pub view: String,
    /// The image version of that view, when it was synced.
    pub current: Option<String>,
    /// The newest published version.
    pub version: String,
    /// Nothing to do: the default deployment already is that version.
    pub up_to_date: bool,
    pub changes: Changes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<SyncCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<crate::deploy::new::DeployReport>,
    pub seconds: f64,
}

/// `NAME.ARCH` and `VERSION-RELEASE` of a package file name.
fn split_fname(f: &str) -> (String, String) {
    let (stem, arch) = f.rsplit_once('.').unwrap_or((f, ""));
    let mut it = stem.rsplitn(3, '-');
    let (rel, ver, name) = (it.next(), it.next(), it.next());
    match (rel, ver, name) {
        (Some(r), Some(v), Some(n)) => (format!("{n}.{arch}"), format!("{v}-{r}")),
        _ => (f.to_string(), String::new()),
    }
}

fn changes(old: &[String], new: &[String]) -> Changes {
    let o: BTreeMap<String, (String, &String)> = old
        .iter()
        .map(|f| {
            let (k, v) = split_fname(f);
            (k, (v, f))
        })
        .collect();
    let n: BTreeMap<String, (String, &String)> = new
        .iter()
        .map(|f| {
            let (k, v) = split_fname(f);
            (k, (v, f))
        })
        .collect();
    let mut c = Changes::default();
    for (k, (v, f)) in &n {
        match o.get(k) {
            None => c.added.push((*f).clone()),
            Some((ov, of)) if of != f => c.changed.push(Changed {
                name: k.clone(),
                from: ov.clone(),
                to: v.clone(),
            }),
            Some(_) => {}
        }
    }
    c.removed = o
        .iter()
        .filter(|(k, _)| !n.contains_key(*k))
        .map(|(_, (_, f))| (*f).clone())
        .collect();
    c
}

pub fn upgrade(opts: &UpgradeOptions, reporter: &dyn Reporter) -> Result<UpgradeReport> {
    let started = std::time::Instant::now();
    let sr = sysroot::open(opts.sysroot.as_deref())?;
    let state = sr.read_state()?;
    let pool = Pool::open(&sr.pool_path(&state))?;
    let Some(id) = sr.booted.or(state.default) else {
        bail!(
            "the system at {} has no deployment to upgrade",
            sr.root.display()
        );
    };
    let dep = state
        .get(id)
        .cloned()
        .with_context(|| format!("deployment {id} is not in the state record"))?;
    let meta = ViewMeta::read(&pool.views_dir().join(&dep.view))
        .with_context(|| format!("view {}", dep.view))?
        .with_context(|| format!("view {} has no view.json", dep.view))?;
    let origin = follows(&pool, &dep.origin, &meta, opts, id, &dep.view)?;
    let sync_opts = SyncOptions {
        source: origin.source.clone(),
        image: origin.image.clone(),
        version: None,
        compose: None,
        keyring: origin.keyring.clone(),
        deltas: opts.deltas,
        wait: opts.wait,
        allow_downgrade: false,
    };
    let current = (meta.image.as_deref() == Some(origin.image.as_str()))
        .then(|| meta.version.clone())
        .flatten();
    // The version the default deployment already is (an upgrade run twice
    // before a reboot has nothing more to do).
    let default_version = state
        .default
        .and_then(|d| state.get(d))
        .and_then(|d| {
            ViewMeta::read(&pool.views_dir().join(&d.view))
                .ok()
                .flatten()
        })
        .filter(|m| m.image.as_deref() == Some(origin.image.as_str()))
        .and_then(|m| m.version);
    let mut report = UpgradeReport {
        source: origin.source.clone(),
        image: origin.image.clone(),
        deployment: id,
        view: dep.view.clone(),
        current: current.clone(),
        version: String::new(),
        up_to_date: false,
        changes: Changes::default(),
        check: None,
        sync: None,
        compose: None,
        deploy: None,
        seconds: 0.0,
    };

    if opts.check {
        let c = sync::check(&pool, &sync_opts)?;
        report.version = c.version.clone();
        report.up_to_date = default_version.as_deref() == Some(c.version.as_str());
        report.changes = changes(&meta.packages, &c.files);
        report.check = Some(c);
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    let s = sync::sync(&pool, &sync_opts, reporter)?;
    report.version = s.version.clone();
    let new_files: Vec<String> = {
        let m = std::fs::read(crate::dist::publish::manifest_path(
            &pool.root,
            &origin.image,
            &s.version,
        ))?;
        crate::dist::manifest::Manifest::parse(&m)?
            .packages
            .into_iter()
            .map(|p| p.file)
            .collect()
    };
    report.changes = changes(&meta.packages, &new_files);
    report.sync = Some(s);
    if default_version.as_deref() == Some(report.version.as_str()) {
        report.up_to_date = true;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // The view: one of that version already composed, else a new one from
    // the view in use.
    let view = match existing_view(&pool, &origin.image, &report.version) {
        Some(v) => v,
        None => {
            let name = free_view_name(&pool, &format!("{}-{}", origin.image, report.version));
            let c = crate::views::compose::compose(
                &pool,
                &ComposeOptions {
                    name: name.clone(),
                    specs: new_files,
                    from: Some(dep.view.clone()),
                    wait: opts.wait,
                    image: Some((origin.image.clone(), report.version.clone())),
                    ..Default::default()
                },
                reporter,
            )?;
            report.compose = Some(c);
            name
        }
    };
    let d = crate::deploy::new::deploy(
        &crate::deploy::new::DeployOptions {
            view,
            sysroot: opts.sysroot.clone(),
            pool: pool.root.clone(),
            origin: Some(Origin {
                version: Some(report.version.clone()),
                ..origin
            }),
            wait: opts.wait,
            ..Default::default()
        },
        reporter,
    )?;
    report.deploy = Some(d);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What the deployment follows (see the module doc), with the options'
/// overrides.
fn follows(
    pool: &Pool,
    origin: &Option<Origin>,
    meta: &ViewMeta,
    opts: &UpgradeOptions,
    id: u64,
    view: &str,
) -> Result<Origin> {
    let mut o = match origin {
        Some(o) => o.clone(),
        None => {
            let Some(image) = &meta.image else {
                bail!(
                    "deployment {id} follows no image: its view {view} was composed from packages, \
                     not synced (install with `reimage install --from SOURCE IMAGE`, or sync once with \
                     `reimage sync SOURCE IMAGE --compose VIEW` and deploy that view)"
                );
            };
            match sync::recorded_source(pool, image)? {
                Some(r) => Origin {
                    source: r.source,
                    image: r.image,
                    version: meta.version.clone(),
                    keyring: r.keyring,
                },
                None => match &opts.source {
                    Some(s) => Origin {
                        source: s.clone(),
                        image: image.clone(),
                        version: meta.version.clone(),
                        keyring: None,
                    },
                    None => bail!(
                        "deployment {id}'s view {view} is image {image}, but the pool does not \
                         remember where it was synced from: give --source"
                    ),
                },
            }
        }
    };
    if let Some(s) = &opts.source {
        o.source = s.clone();
    }
    if let Some(k) = &opts.keyring {
        o.keyring = Some(k.clone());
    }
    Ok(o)
}

/// A view of `image` at `version` already in the pool.
fn existing_view(pool: &Pool, image: &str, version: &str) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(pool.views_dir())
        .ok()?
        .flatten()
        .filter_map(|e| {
            let m = ViewMeta::read(&e.path()).ok()??;
            (m.image.as_deref() == Some(image) && m.version.as_deref() == Some(version))
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// `base`, or `base-2`, `base-3`, ... whichever no view has.
fn free_view_name(pool: &Pool, base: &str) -> String {
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = base.clone();
    let mut n = 2;
    while pool.views_dir().join(&name).symlink_metadata().is_ok() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_by_name_and_arch() {
        let old = vec![
            "gcc-12-base-12.2.0-14.x86_64".to_string(),
            "bash-5.2-1.x86_64".to_string(),
            "gone-1-1.noarch".to_string(),
            "multi-1-1.i686".to_string(),
        ];
        let new = vec![
            "gcc-12-base-12.2.0-15.x86_64".to_string(),
            "bash-5.2-1.x86_64".to_string(),
            "multi-1-1.i686".to_string(),
            "multi-1-1.x86_64".to_string(),
        ];
        let c = changes(&old, &new);
        assert_eq!(c.added, vec!["multi-1-1.x86_64"]);
        assert_eq!(c.removed, vec!["gone-1-1.noarch"]);
        assert_eq!(c.changed.len(), 1);
        assert_eq!(c.changed[0].name, "gcc-12-base.x86_64");
        assert_eq!(
            (c.changed[0].from.as_str(), c.changed[0].to.as_str()),
            ("12.2.0-14", "12.2.0-15")
        );
    }
}
