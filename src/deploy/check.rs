//! `reimage fsck` of a system (`--sysroot DIR`, or the running system): the
//! state record, every deployment it lists (a writable root subvolume with
//! its own `etc/` subvolume and a `usr/` mount point, its view present and
//! read-only), the pool's root file naming every view a deployment uses,
//! the boot entries against the record, and the garbage an interrupted
//! writer left (removed with `--repair`, never anything the record names).
//!
//! Boot entries that lag the record are an interrupted writer's unfinished
//! work, not damage: the record is the commit point and the ESP follows it
//! (deploy/boot.rs), so a power cut between the two leaves the loader
//! starting a deployment the record still keeps. That is reported as
//! `unfinished` and `--repair` finishes it (`reimage boot sync`, as the
//! next writer or the boot check would). Entries that would start nothing
//! the record keeps are problems.
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::deploy::state::State;
use crate::deploy::sysroot::Sysroot;
use crate::maint::fsck::Problem;
use crate::store::pool::Pool;

#[derive(Debug, Clone, Serialize)]
pub struct SystemCheck {
    pub sysroot: PathBuf,
    pub deployments: usize,
    pub problems: Vec<Problem>,
    pub garbage: Vec<PathBuf>,
    pub repaired: Vec<PathBuf>,
    /// Boot entries lagging the record (see the module doc).
    pub unfinished: Vec<Problem>,
    /// What `--repair` did to finish it (entries written and removed).
    pub finished: Vec<String>,
}

fn problem(kind: &'static str, path: &Path, message: String) -> Problem {
    Problem {
        kind,
        path: path.to_path_buf(),
        message,
    }
}

/// One deployment's subvolumes and view.
fn check_deployment(sr: &Sysroot, pool: &Pool, id: u64, view: &str, out: &mut Vec<Problem>) {
    let root = sr.deployment(id);
    let sub = |p: &Path| crate::sys::is_subvolume(p).unwrap_or(false);
    if !sub(&root) {
        out.push(problem(
            "deployment",
            &root,
            format!("deployment {id} has no root subvolume"),
        ));
        return;
    }
    if crate::sys::is_readonly(&root).unwrap_or(false) {
        out.push(problem(
            "deployment",
            &root,
            "the root subvolume is read-only".into(),
        ));
    }
    if !sub(&root.join("etc")) {
        out.push(problem(
            "deployment",
            &root.join("etc"),
            "etc/ is not a subvolume".into(),
        ));
    }
    if !root.join("usr").is_dir() {
        out.push(problem(
            "deployment",
            &root.join("usr"),
            "no usr/ mount point".into(),
        ));
    }
    let v = pool.views_dir().join(view);
    if !sub(&v) {
        out.push(problem(
            "deployment",
            &v,
            format!("deployment {id}'s view {view} is missing"),
        ));
    } else if !crate::sys::is_readonly(&v).unwrap_or(false) {
        out.push(problem(
            "deployment",
            &v,
            format!("view {view} is writable"),
        ));
    }
}

/// The pool's root file names every view the record uses.
fn check_roots(sr: &Sysroot, pool: &Pool, state: &State, out: &mut Vec<Problem>) {
    let file = crate::deploy::system::roots_file(pool, sr);
    let named: Vec<String> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["views"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    for v in state.views() {
        if !named.contains(&v) {
            out.push(problem(
                "state",
                &file,
                format!("view {v} is used by a deployment but not protected here (rm-view would remove it)"),
            ));
        }
    }
}

/// The ESP's entries against the record: problems go to `out`, a lag the
/// next writer finishes to `lag`.
fn check_boot(state: &State, out: &mut Vec<Problem>, lag: &mut Vec<Problem>) {
    let esp = match crate::deploy::boot::esp_of(state) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            let at = state.boot.as_ref().map_or("", |b| b.esp.as_str());
            out.push(problem("boot", Path::new(at), format!("{e:#}")));
            return;
        }
    };
    let at = PathBuf::from(esp.to_string());
    let found = match crate::boot::read_entries(&esp) {
        Ok(f) => f,
        Err(e) => {
            out.push(problem("boot", &at, format!("{e:#}")));
            return;
        }
    };
    let first = crate::boot::first_entry(&found);
    // The loader starts a deployment the record keeps: what differs is only
    // unfinished. Otherwise the machine would boot nothing it knows.
    let boots_known = first.is_some_and(|f| state.get(f).is_some());
    let mut report = |message: String| {
        let p = problem("boot", &at, message);
        if boots_known {
            lag.push(p)
        } else {
            out.push(p)
        }
    };
    if !state.deployments.is_empty() && !boots_known {
        report(match first {
            None => "no boot entry: the machine would not boot (reimage boot sync)".into(),
            Some(f) => format!(
                "the boot loader would start deployment {f}, which the record does not keep (reimage boot sync)"
            ),
        });
    }
    for d in &state.deployments {
        if !found.contains_key(&d.id) {
            report(format!(
                "deployment {} has no boot entry (reimage boot sync writes it)",
                d.id
            ));
        }
    }
    for f in found.values() {
        if state.get(f.id).is_none() && Some(f.id) != first {
            report(format!(
                "{} is the entry of no deployment (reimage boot sync removes it)",
                f.file
            ));
        }
    }
    if let (Some(d), Some(f)) = (state.default, first) {
        let pending = found.get(&d).is_some_and(|e| e.counter.exhausted());
        if d != f && !pending && boots_known {
            report(format!("the boot loader would start deployment {f}, the record's default is {d} (reimage boot sync)"));
        }
    }
}

/// Checks the system at `sysroot` (`None`: the running one). With
/// `repair`, removes the garbage under the pool's writer lock.
pub fn check(sysroot: Option<&Path>, repair: bool, wait: bool) -> Result<SystemCheck> {
    let sr = crate::deploy::sysroot::open(sysroot)?;
    // The record's own invariants are checked by reading it.
    let state = match sr.read_state() {
        Ok(s) => s,
        Err(e) => {
            return Ok(SystemCheck {
                sysroot: sr.root.clone(),
                deployments: 0,
                problems: vec![problem(
                    "state",
                    &sr.state_dir().join(State::FILE),
                    format!("{e:#}"),
                )],
                garbage: Vec::new(),
                repaired: Vec::new(),
                unfinished: Vec::new(),
                finished: Vec::new(),
            })
        }
    };
    let pool = Pool::open(&sr.pool_path(&state))?;
    let mut problems = Vec::new();
    for d in &state.deployments {
        check_deployment(&sr, &pool, d.id, &d.view, &mut problems);
    }
    check_roots(&sr, &pool, &state, &mut problems);
    let mut unfinished = Vec::new();
    check_boot(&state, &mut problems, &mut unfinished);
    let garbage = crate::deploy::system::garbage(&sr, &state);
    let mut repaired = Vec::new();
    let mut finished = Vec::new();
    if repair && (!garbage.is_empty() || !unfinished.is_empty()) {
        let _lock = pool.lock(wait)?;
        // Read again under the lock: a writer may have finished meanwhile.
        let state = sr.read_state()?;
        repaired = crate::deploy::system::clean_garbage(&sr, &state)?;
        if !unfinished.is_empty() {
            let silent = crate::util::report::Silent;
            if let Some(a) = crate::deploy::boot::sync(&sr, &pool, &state, &silent)? {
                finished.extend(a.written.iter().map(|n| format!("wrote boot entry {n}")));
                finished.extend(a.removed.iter().map(|n| format!("removed boot entry {n}")));
                finished.extend(
                    a.files_removed
                        .iter()
                        .map(|n| format!("removed {n} (no entry uses it)")),
                );
            }
            if finished.is_empty() {
                finished.push("boot entries already in line with the record".into());
            }
        }
    }
    Ok(SystemCheck {
        sysroot: sr.root.clone(),
        deployments: state.deployments.len(),
        problems,
        garbage,
        repaired,
        unfinished,
        finished,
    })
}
