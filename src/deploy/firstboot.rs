//! First-boot configuration without scriptlets. Packages in an image cannot
//! run scriptlets against `/etc` and `/var`; their declarative files do the
//! work instead, applied to a new deployment's root with its view as `/usr`
//! (bind-mounted read-only in reimage's private mount namespace):
//!
//! 1. `systemd-sysusers --root` (users and groups of `lib/sysusers.d`);
//! 2. reimage's declarative minimum where the view's files do not cover it:
//!    `/etc/passwd`, `/etc/group` and `/etc/shadow` with at least `root`
//!    (from Debian's `base-passwd` master files when the view has them, whose
//!    maintainer script would have made them);
//! 3. `systemd-tmpfiles --root --create`, with `/var`, `/home` (shared, the
//!    running system's; their lines are applied by `systemd-tmpfiles-setup`
//!    at boot), `/usr` (read-only) and the API filesystems excluded;
//! 4. `systemctl --root preset` for the units of packages new in this
//!    deployment (`preset-all` on the first one), in `enable-only` mode so
//!    local enablement is kept;
//! 5. `ldconfig -X -r` (the cache into `/etc`; the view's links stay as
//!    they are: it is read-only);
//! 6. an empty `etc/machine-id` on a first deployment (systemd fills it at
//!    its first boot);
//! 7. `etc/fstab` with reimage's marked lines.
//!
//! Then every owner name of the view's owner table must have the same id in
//! the merged `passwd`/`group`, or the deploy fails naming both.
//!
//! The tools are the running system's (on an installed system: the current
//! view's); a step whose tool is missing is skipped with a warning, and a
//! step that fails stops the deploy with the step, its command and the tail
//! of its output.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::util::report::Reporter;

/// What one step did.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: &'static str,
    /// The command line (empty for reimage's own steps).
    pub command: String,
    /// `done`, `skipped` (and why).
    pub outcome: String,
}

/// Inputs of the steps.
pub struct Steps<'a> {
    /// The deployment root being built, its `usr` the view.
    pub root: &'a Path,
    /// The view (for its owner table and units).
    pub view: &'a Path,
    /// Units of packages new in this deployment; `None`: the first
    /// deployment (`preset-all`).
    pub new_units: Option<Vec<String>>,
    pub first: bool,
    /// The fstab lines to write.
    pub fstab: Vec<crate::deploy::fstab::Line>,
}

/// Where `name` is installed (PATH, then the usual directories).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run_step(
    out: &mut Vec<StepResult>,
    reporter: &dyn Reporter,
    step: &'static str,
    program: &str,
    args: &[String],
) -> Result<()> {
    let Some(bin) = tool(program) else {
        reporter.note(&format!(
            "warning: deploy step {step}: {program} is not installed here; skipped"
        ));
        out.push(StepResult {
            step,
            command: program.into(),
            outcome: format!("skipped: {program} not installed"),
        });
        return Ok(());
    };
    let mut c = Command::new(&bin);
    c.args(args).env("SYSTEMD_OFFLINE", "1");
    let line = crate::util::runner::describe(&c);
    crate::util::runner::run(&mut c).with_context(|| format!("deploy step {step} failed"))?;
    out.push(StepResult {
        step,
        command: line,
        outcome: "done".into(),
    });
    Ok(())
}

/// Runs the steps (see the module doc).
pub fn run(s: &Steps, reporter: &dyn Reporter) -> Result<Vec<StepResult>> {
    let mut out = Vec::new();
    let root = s.root.display().to_string();
    let etc = s.root.join("etc");
    if s.root.join("usr/lib/sysusers.d").is_dir() {
        run_step(
            &mut out,
            reporter,
            "sysusers",
            "systemd-sysusers",
            &[format!("--root={root}")],
        )?;
    }
    minimum_accounts(s.root, &mut out)?;
    let mut tmpfiles = vec![format!("--root={root}"), "--create".into()];
    for p in ["/var", "/home", "/usr", "/dev", "/proc", "/sys", "/run"] {
        tmpfiles.push(format!("--exclude-prefix={p}"));
    }
    if s.root.join("usr/lib/tmpfiles.d").is_dir() {
        run_step(
            &mut out,
            reporter,
            "tmpfiles",
            "systemd-tmpfiles",
            &tmpfiles,
        )?;
    }
    if s.root.join("usr/lib/systemd/system").is_dir() {
        match &s.new_units {
            None => run_step(
                &mut out,
                reporter,
                "preset",
                "systemctl",
                &[format!("--root={root}"), "preset-all".into()],
            )?,
            Some(units) if !units.is_empty() => {
                let mut args = vec![
                    format!("--root={root}"),
                    "preset".into(),
                    "--preset-mode=enable-only".into(),
                ];
                args.extend(units.iter().cloned());
                run_step(&mut out, reporter, "preset", "systemctl", &args)?
            }
            Some(_) => {}
        }
    }
    if s.root.join("etc/ld.so.conf").exists() || s.root.join("usr/lib/x86_64-linux-gnu").is_dir() {
        run_step(
            &mut out,
            reporter,
            "ldconfig",
            "ldconfig",
            &["-X".into(), "-r".into(), root.clone()],
        )?;
    }
    if s.first && !etc.join("machine-id").exists() {
        write_new(&etc.join("machine-id"), b"", 0o444)?;
        out.push(own(
            "machine-id",
            "an empty etc/machine-id (systemd fills it at first boot)",
        ));
    }
    let fstab = etc.join("fstab");
    let local = std::fs::read_to_string(&fstab).unwrap_or_default();
    let text = crate::deploy::fstab::merge(&local, &s.fstab);
    crate::util::atomic::write_atomic(&fstab, text.as_bytes())?;
    out.push(own(
        "fstab",
        "etc/fstab: reimage's marked lines, local lines kept",
    ));
    check_owners(s.view, &etc)?;
    Ok(out)
}

fn own(step: &'static str, what: &str) -> StepResult {
    StepResult {
        step,
        command: String::new(),
        outcome: what.into(),
    }
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Whether a passwd/group file names `name`.
fn has_entry(path: &Path, name: &str) -> bool {
    std::fs::read_to_string(path)
        .is_ok_and(|t| t.lines().any(|l| l.split(':').next() == Some(name)))
}

/// `passwd`, `group` and `shadow` hold at least `root`: from Debian's
/// base-passwd master files when the view ships them (their maintainer
/// script makes `/etc/passwd` from them), else one line each.
fn minimum_accounts(root: &Path, out: &mut Vec<StepResult>) -> Result<()> {
    let etc = root.join("etc");
    let master = root.join("usr/share/base-passwd");
    for (file, fallback, mode) in [
        ("passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
        ("group", "root:x:0:\n", 0o644),
    ] {
        let p = etc.join(file);
        if has_entry(&p, "root") {
            continue;
        }
        let from_master = std::fs::read(master.join(format!("{file}.master"))).ok();
        let what = if from_master.is_some() {
            "from base-passwd's master file"
        } else {
            "root only"
        };
        let mut text = std::fs::read(&p).unwrap_or_default();
        text.extend(from_master.unwrap_or_else(|| fallback.as_bytes().to_vec()));
        write_new(&p, &text, mode)?;
        out.push(StepResult {
            step: "accounts",
            command: String::new(),
            outcome: format!("etc/{file}: {what} (no package made it)"),
        });
    }
    let shadow = etc.join("shadow");
    if !has_entry(&shadow, "root") {
        let mut text = std::fs::read(&shadow).unwrap_or_default();
        text.extend_from_slice(b"root:*:19000:0:99999:7:::\n");
        write_new(&shadow, &text, 0o600)?;
        out.push(own("accounts", "etc/shadow: root, locked"));
    }
    Ok(())
}

/// Every owner of the view's owner table has the same id in the merged
/// `passwd`/`group`: files in the view are owned by those ids.
fn check_owners(view: &Path, etc: &Path) -> Result<()> {
    let Some(meta) = sysimage::ViewMeta::read(view)? else {
        return Ok(());
    };
    let merged = sysimage::meta::Owners::from_files(&etc.join("passwd"), &etc.join("group"))?;
    for (name, &id) in &meta.users {
        if let Some(got) = merged.uid(name).filter(|&g| g != id) {
            bail!(
                "user {name} is uid {id} in the view's owner table (its files are owned by \
                 {id}) but uid {got} in the merged {}: fix the local passwd, or compose the \
                 view with --passwd",
                etc.join("passwd").display()
            );
        }
    }
    for (name, &id) in &meta.groups {
        if let Some(got) = merged.gid(name).filter(|&g| g != id) {
            bail!(
                "group {name} is gid {id} in the view's owner table but gid {got} in the merged {}",
                etc.join("group").display()
            );
        }
    }
    Ok(())
}

/// The unit files a package list ships (for `preset`): `*.service`,
/// `*.socket`, `*.timer`, `*.path`, `*.target` under `systemd/system/`,
/// templates excluded.
pub fn units_of(paths: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut units: Vec<String> = paths
        .into_iter()
        .filter_map(|p| {
            let (dir, name) = p.rsplit_once('/')?;
            let ok_dir = dir.ends_with("/systemd/system");
            let ok_ext = [".service", ".socket", ".timer", ".path", ".target"]
                .iter()
                .any(|e| name.ends_with(e));
            (ok_dir && ok_ext && !name.contains('@')).then(|| name.to_string())
        })
        .collect();
    units.sort();
    units.dedup();
    units
}

/// The unit files of packages in `new` but not in `old` (views' header dirs).
pub fn new_units(old: &Path, new: &Path) -> Result<Vec<String>> {
    let a = sysimage::Tree::open(old)?.packages()?;
    let b = sysimage::Tree::open(new)?.packages()?;
    let have: std::collections::HashSet<String> =
        a.packages.iter().map(|p| p.nevra.name.clone()).collect();
    let mut paths = Vec::new();
    for p in b.packages.iter().filter(|p| !have.contains(&p.nevra.name)) {
        paths.extend(p.file_paths().map_err(|e| anyhow!(e))?);
    }
    Ok(units_of(paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_non_template_unit_files() {
        let u = units_of(
            [
                "/usr/lib/systemd/system/a.service",
                "/lib/systemd/system/b.socket",
                "/usr/lib/systemd/system/c@.service",
                "/usr/lib/systemd/system/d.service.d/x.conf",
                "/etc/systemd/system/e.service",
                "/usr/lib/systemd/user/f.service",
            ]
            .map(String::from),
        );
        assert_eq!(u, vec!["a.service", "b.socket", "e.service"]);
    }
}
