//! `reimage health`: the boot's health checks (boot assessment).
//!
//! Every executable in `/etc/reimage/health.d/required.d/` and
//! `/usr/lib/reimage/health.d/required.d/` must exit 0; those in
//! `wanted.d/` are run and reported but do not fail the boot. A name in
//! `/etc` masks the same name in `/usr/lib` (an empty file or a symlink to
//! `/dev/null` disables a vendor check). `reimage-health.service` runs this
//! before `boot-complete.target`; when it fails the boot is not blessed and
//! the unit reboots (`FailureAction=reboot`), so systemd-boot counts the
//! try down and, with none left, boots the previous deployment.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

/// The directories checks are read from, `/etc` first.
pub const DIRS: &[&str] = &["etc/reimage/health.d", "usr/lib/reimage/health.d"];

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub path: PathBuf,
    pub required: bool,
    pub ok: bool,
    pub status: Option<i32>,
    /// The last lines of its output.
    pub output: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub checks: Vec<Check>,
    /// All required checks passed.
    pub healthy: bool,
}

fn checks_in(root: &Path, kind: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for d in DIRS.iter().rev() {
        let dir = root.join(d).join(kind);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // Later (/etc) replaces earlier (/usr/lib).
            out.insert(name, e.path());
        }
    }
    out
}

fn masked(p: &Path) -> bool {
    std::fs::read_link(p).is_ok_and(|t| t == Path::new("/dev/null"))
        || std::fs::metadata(p).is_ok_and(|m| m.len() == 0)
}

/// Runs the checks under `root` (`/` on a running system), in name order.
pub fn run(root: &Path) -> Result<HealthReport> {
    let mut checks = Vec::new();
    for (kind, required) in [("required.d", true), ("wanted.d", false)] {
        for (name, path) in checks_in(root, kind) {
            if masked(&path) {
                continue;
            }
            let out = std::process::Command::new(&path)
                .stdin(std::process::Stdio::null())
                .output();
            let (ok, status, output) = match out {
                Ok(o) => {
                    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&o.stderr));
                    let tail: Vec<&str> = text.lines().rev().take(10).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    (o.status.success(), o.status.code(), tail.join("\n"))
                }
                Err(e) => (false, None, format!("cannot run it: {e}")),
            };
            checks.push(Check {
                name,
                path,
                required,
                ok,
                status,
                output,
            });
        }
    }
    let healthy = checks.iter().all(|c| c.ok || !c.required);
    Ok(HealthReport { checks, healthy })
}
