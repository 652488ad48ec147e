//! `install`, `boot check|sync`, `health`: the boot commands (docs/boot.md).
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::common::{parse_size, Global, Out};
use crate::cli::deploy::SysrootArg;
use crate::deploy;

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The disk: an image file (made new) or a block device (written over).
    #[arg(long, value_name = "FILE|DEVICE")]
    pub disk: PathBuf,
    /// Size of a new disk image.
    #[arg(long, value_parser = parse_size, default_value = "4G")]
    pub size: u64,
    /// Size of the EFI system partition.
    #[arg(long, value_parser = parse_size, default_value = "256M")]
    pub esp_size: u64,
    /// A package list (one spec per line) choosing among the packages.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// A kernel command line argument of the boot entry (repeatable), e.g. console=ttyS0.
    #[arg(long = "kernel-arg", value_name = "ARG")]
    pub kernel_args: Vec<String>,
    /// Boot diskless: the initrd copies the deployment into RAM and lets the
    /// disk go (`reimage.toram`; docs/live.md).
    #[arg(long)]
    pub diskless: bool,
    /// Install a published image instead: SOURCE IMAGE [VERSION] (as `sync`);
    /// later updates follow it.
    #[arg(long, num_args = 2..=3, value_names = ["SOURCE", "IMAGE"])]
    pub from: Option<Vec<String>>,
    /// The view's name (default: system).
    #[arg(long)]
    pub view: Option<String>,
    /// Tries a new boot entry gets before systemd-boot falls back.
    #[arg(long, default_value_t = crate::boot::entries::TRIES)]
    pub tries: u32,
    /// systemd-boot's menu timeout in seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout: u32,
    /// Require package (or, with --from, manifest) signatures by keys in this file.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// `.rpm` files or directories of them.
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BootArgs {
    #[command(subcommand)]
    pub command: BootCommand,
}

#[derive(Subcommand, Debug)]
pub enum BootCommand {
    /// At boot: if systemd-boot fell back from a default with no tries left,
    /// mark it failed and make the booted deployment the default.
    Check(SysrootArg),
    /// Bring the ESP's entries in line with the state record.
    Sync(SysrootArg),
}

pub fn run_install(g: &Global, a: InstallArgs) -> Result<i32> {
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let packages = match a.from {
        Some(f) => {
            if !a.paths.is_empty() || a.list.is_some() {
                anyhow::bail!(
                    "--from installs a published image: give no package paths or --list with it"
                );
            }
            deploy::install::Packages::Published {
                source: f[0].clone(),
                image: f[1].clone(),
                version: f.get(2).cloned(),
                keyring: a.keyring.clone(),
            }
        }
        None => {
            if a.paths.is_empty() {
                anyhow::bail!(
                    "name the .rpm files or directories to install (or --from SOURCE IMAGE)"
                );
            }
            deploy::install::Packages::Files {
                paths: a.paths,
                list: a.list,
            }
        }
    };
    let r = deploy::install::install(
        &deploy::install::InstallOptions {
            disk: a.disk,
            size: a.size,
            esp_size: a.esp_size,
            packages,
            view: a.view,
            kernel_args: crate::deploy::new::with_diskless(a.kernel_args, a.diskless),
            tries: a.tries,
            timeout: a.timeout,
            keyring: a.keyring,
        },
        &reporter,
    )?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else if !g.quiet {
        out.line(format!(
            "installed {} packages as view {} on {} ({:.1}s): deployment {}, boot entry {}",
            r.packages,
            r.view,
            r.disk.display(),
            r.seconds,
            r.deployment,
            r.entry.join(", ")
        ))?;
        out.line(format!(
            "  root btrfs UUID {}, ESP {} (FAT {})",
            r.root_uuid, r.esp, r.esp_uuid
        ))?;
        out.line(format!("  systemd-boot: {}", r.loader))?;
    }
    Ok(0)
}

pub fn run_boot(g: &Global, a: BootArgs) -> Result<i32> {
    let reporter = crate::cli::progress::BarReporter::new(g.quiet, false);
    let mut out = Out::new();
    match a.command {
        BootCommand::Check(at) => {
            at.use_esp()?;
            let r = deploy::bootcheck::check(at.sysroot.as_deref(), !at.no_wait, &reporter)?;
            if g.json {
                out.json(&r)?;
            } else if !g.quiet {
                match r.failed {
                    Some(f) => out.line(format!(
                        "deployment {f} did not boot healthy with the tries it had: deployment {} is the default again",
                        r.default.unwrap_or(0)
                    ))?,
                    None => out.line(format!(
                        "booted {}, default {}: no fallback",
                        r.booted.map_or("-".into(), |b| b.to_string()),
                        r.default.map_or("-".into(), |b| b.to_string())
                    ))?,
                }
            }
        }
        BootCommand::Sync(at) => {
            at.use_esp()?;
            let (sr, pool, _lock, state, _) =
                deploy::system::open_locked(at.sysroot.as_deref(), None, false, !at.no_wait)?;
            let r = deploy::boot::sync(&sr, &pool, &state, &reporter)?;
            if g.json {
                out.json(&r)?;
            } else if !g.quiet {
                match r {
                    None => {
                        out.line("this system has no ESP recorded: no boot entries to write")?
                    }
                    Some(a) => out.line(format!(
                        "entries written: {}; removed: {}",
                        if a.written.is_empty() {
                            "none".into()
                        } else {
                            a.written.join(", ")
                        },
                        if a.removed.is_empty() {
                            "none".into()
                        } else {
                            a.removed.join(", ")
                        }
                    ))?,
                }
            }
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The root whose checks run (default: /).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

pub fn run_health(g: &Global, a: HealthArgs) -> Result<i32> {
    let r = deploy::health::run(&a.root)?;
    let mut out = Out::new();
    if g.json {
        out.json(&r)?;
    } else {
        for c in &r.checks {
            out.line(format!(
                "reimage-health: {} {} ({}){}",
                if c.ok { "ok    " } else { "FAILED" },
                c.name,
                if c.required { "required" } else { "wanted" },
                if c.ok || c.output.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.output.replace('\n', " | "))
                }
            ))?;
        }
        out.line(if r.healthy {
            format!("reimage-health: healthy ({} checks)", r.checks.len())
        } else {
            "reimage-health: UNHEALTHY: a required check failed".to_string()
        })?;
    }
    Ok(if r.healthy { 0 } else { 1 })
}
