//! What makes a live `/usr` complete, after the mount: the new packages'
//! users (`systemd-sysusers`), their directories in `/var` and `/run`
//! (`systemd-tmpfiles --create`, as a transient unit where systemd runs,
//! so it runs with the service manager's environment), the library cache
//! (`ldconfig -X`) and the units (`systemctl daemon-reload`). Users come
//! before tmpfiles because tmpfiles lines name them (systemd orders
//! `systemd-sysusers.service` before `systemd-tmpfiles-setup.service` for
//! the same reason).
//!
//! Only the configuration files the new view adds or changes are given to
//! sysusers and tmpfiles: what was there already has been applied. A step
//! that fails does not stop the others (the new `/usr` is mounted already);
//! it is reported, and `apply-live` exits 1.
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::deploy::firstboot::{tool, StepResult};
use crate::util::report::Reporter;

/// The configuration files a step gets, as paths in the running root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub sysusers: Vec<String>,
    pub tmpfiles: Vec<String>,
}

/// The `*.conf` files of `dir` (relative to a view) that `new` has and
/// `old` has not, or has with other content.
fn changed(old: &Path, new: &Path, dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(new.join(dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let content = std::fs::read(e.path()).ok()?;
            let same = std::fs::read(old.join(dir).join(&name)).is_ok_and(|o| o == content);
            (name.ends_with(".conf") && !same).then(|| format!("/usr/{dir}/{name}"))
        })
        .collect();
    out.sort();
    out
}

/// What the steps get, from the view that was `/usr` and the new one.
pub fn plan(old: &Path, new: &Path) -> Plan {
    Plan {
        sysusers: changed(old, new, "lib/sysusers.d"),
        tmpfiles: changed(old, new, "lib/tmpfiles.d"),
    }
}

/// Runs the steps on the running root `root` (in its mount namespace).
pub fn run(root: &Path, plan: &Plan, reporter: &dyn Reporter) -> Vec<StepResult> {
    let live = root == Path::new("/");
    let systemd = live && Path::new("/run/systemd/system").is_dir();
    let root_arg = format!("--root={}", root.display());
    // With --root, the tools read configuration files named on their
    // command line as they are given, not below the root.
    let inside = |files: &[String]| -> Vec<String> {
        files
            .iter()
            .map(|f| root.join(f.trim_start_matches('/')).display().to_string())
            .collect()
    };
    let mut out = Vec::new();
    if !plan.sysusers.is_empty() {
        let mut args: Vec<String> = if live { vec![] } else { vec![root_arg.clone()] };
        args.extend(inside(&plan.sysusers));
        out.push(step(reporter, "sysusers", "systemd-sysusers", &args, false));
    }
    if !plan.tmpfiles.is_empty() {
        let mut args: Vec<String> = if live { vec![] } else { vec![root_arg.clone()] };
        args.push("--create".into());
        args.extend(inside(&plan.tmpfiles));
        out.push(step(
            reporter,
            "tmpfiles",
            "systemd-tmpfiles",
            &args,
            systemd,
        ));
    }
    let mut ld = vec!["-X".to_string()];
    if !live {
        ld.extend(["-r".to_string(), root.display().to_string()]);
    }
    out.push(step(reporter, "ldconfig", "ldconfig", &ld, false));
    if systemd {
        out.push(step(
            reporter,
            "daemon-reload",
            "systemctl",
            &["daemon-reload".into()],
            false,
        ));
    } else {
        out.push(skipped(
            "daemon-reload",
            "systemctl daemon-reload",
            "systemd does not run this root",
        ));
    }
    out
}

fn skipped(step: &'static str, command: &str, why: &str) -> StepResult {
    StepResult {
        step,
        command: command.into(),
        outcome: format!("skipped: {why}"),
    }
}

/// Runs one step; with `transient`, as a transient unit of the service
/// manager (`systemd-run --wait`).
fn step(
    reporter: &dyn Reporter,
    step: &'static str,
    program: &str,
    args: &[String],
    transient: bool,
) -> StepResult {
    let Some(bin) = tool(program) else {
        reporter.note(&format!(
            "warning: apply-live step {step}: {program} is not installed; skipped"
        ));
        return skipped(step, program, &format!("{program} not installed"));
    };
    let mut c = if transient {
        let mut c = Command::new(tool("systemd-run").unwrap_or_else(|| "systemd-run".into()));
        c.args(["--wait", "--collect", "--quiet", "--service-type=oneshot"])
            .arg(format!("--description=reimage apply-live: {step}"))
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    c.args(args);
    let command = crate::util::runner::describe(&c);
    let outcome = match crate::util::runner::run(&mut c) {
        Ok(_) => "done".to_string(),
        Err(e) => {
            reporter.note(&format!("warning: apply-live step {step} failed: {e:#}"));
            format!("failed: {e:#}")
        }
    };
    StepResult {
        step,
        command,
        outcome,
    }
}
