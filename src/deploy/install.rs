//! `reimage install --disk FILE|DEVICE`: a new system from packages in one
//! command.
//!
//! ```text
//! DISK (GPT)
//!   1  ESP  (FAT32, mformat at the partition's offset: never mounted here)
//!        EFI/BOOT/BOOTX64.EFI, EFI/systemd/   systemd-boot (the view's, else the host's)
//!        loader/loader.conf, loader/entries/reimage-1+3.conf
//!        reimage/vmlinuz-SHA, initrd-SHA
//!   2  root (btrfs, x86-64 root type; a loop device at the offset while installing)
//!        pool/       the packages, imported; pool/views/VIEW composed
//!        reimage/    the system layout and deployment 1 (docs/deploy.md)
//!        shared/     var, home, root, srv, opt, usr-local
//! ```
//!
//! A disk file is made new (refused when it exists and is not empty) and
//! removed again when the install fails; a device is written over. The
//! ESP is mounted at `/efi` on the installed system (fstab; systemd-gpt-auto-generator
//! then leaves it alone, and systemd-bless-boot finds it there).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::boot::esp;
use crate::deploy::state::BootConfig;
use crate::util::report::Reporter;
use crate::util::runner;

/// GPT partition types.
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
/// Where the installed system mounts its ESP.
pub const ESP_MOUNT: &str = "/efi";

/// Where the packages come from.
#[derive(Debug, Clone)]
pub enum Packages {
    /// `.rpm` files or directories; `list` picks among them.
    Files {
        paths: Vec<PathBuf>,
        list: Option<PathBuf>,
    },
    /// A published image (`sync SOURCE IMAGE [VERSION]`), recorded as the
    /// origin later updates follow.
    Published {
        source: String,
        image: String,
        version: Option<String>,
        keyring: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub disk: PathBuf,
    /// Size of a new disk file.
    pub size: u64,
    pub esp_size: u64,
    pub packages: Packages,
    /// The view's name (default: `system`, or the published version).
    pub view: Option<String>,
    pub kernel_args: Vec<String>,
    pub tries: u32,
    /// systemd-boot's menu timeout (seconds).
    pub timeout: u32,
    pub keyring: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub disk: PathBuf,
    pub esp: String,
    pub esp_uuid: String,
    pub root_uuid: String,
    pub view: String,
    pub packages: usize,
    pub deployment: u64,
    /// Where systemd-boot's binary came from (the view, or the host).
    pub loader: String,
    pub entry: Vec<String>,
    pub seconds: f64,
}

/// A partition: byte offset and size.
#[derive(Debug, Clone, Copy)]
struct Part {
    offset: u64,
    size: u64,
}

fn partition(disk: &Path, esp_size: u64) -> Result<(Part, Part)> {
    let script = format!(
        "label: gpt\nstart=2048, size={}, type={ESP_TYPE}, name=ESP\ntype={ROOT_X86_64}, name=root\n",
        esp_size / 512
    );
    let mut c = Command::new("sfdisk");
    c.args([
        "--quiet",
        "--no-reread",
        "--no-tell-kernel",
        "--wipe",
        "always",
    ])
    .arg(disk);
    runner::run_with_input(&mut c, script.as_bytes())
        .with_context(|| format!("cannot partition {} (sfdisk, from fdisk)", disk.display()))?;
    let out = runner::run(Command::new("sfdisk").arg("--json").arg(disk))?;
    let v: serde_json::Value = serde_json::from_str(&out).context("sfdisk --json")?;
    let parts = v["partitiontable"]["partitions"]
        .as_array()
        .context("sfdisk --json lists no partitions")?;
    let sector = v["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
    let get = |i: usize| -> Result<Part> {
        let p = parts.get(i).context("a partition is missing")?;
        Ok(Part {
            offset: p["start"].as_u64().context("start")? * sector,
            size: p["size"].as_u64().context("size")? * sector,
        })
    };
    Ok((get(0)?, get(1)?))
}

/// The root partition while installing: a loop device at its offset, its
/// btrfs mounted on a private directory. Unmounted and detached on drop.
struct Root {
    loopdev: String,
    mnt: PathBuf,
    mounted: bool,
}

impl Root {
    fn open(disk: &Path, part: Part) -> Result<Root> {
        let out = runner::run(
            Command::new("losetup")
                .args(["--find", "--show", "--offset"])
                .arg(part.offset.to_string())
                .arg("--sizelimit")
                .arg(part.size.to_string())
                .arg(disk),
        )
        .context("cannot attach the root partition to a loop device")?;
        let mnt = tempfile::Builder::new()
            .prefix("reimage-install-")
            .tempdir_in("/run")
            .or_else(|_| tempfile::tempdir())?
            .keep();
        Ok(Root {
            loopdev: out.trim().to_string(),
            mnt,
            mounted: false,
        })
    }

    fn format_and_mount(&mut self) -> Result<()> {
        runner::run(
            Command::new("mkfs.btrfs")
                .args(["-q", "-f", "-L", "reimage"])
                .arg(&self.loopdev),
        )
        .context("cannot make the root btrfs (mkfs.btrfs, from btrfs-progs)")?;
        runner::run(Command::new("mount").arg(&self.loopdev).arg(&self.mnt))?;
        self.mounted = true;
        Ok(())
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
        }
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .status();
        let _ = std::fs::remove_dir(&self.mnt);
    }
}

/// Installs; on failure a disk file it made is removed again.
pub fn install(opts: &InstallOptions, reporter: &dyn Reporter) -> Result<InstallReport> {
    let started = std::time::Instant::now();
    let is_dev = opts
        .disk
        .metadata()
        .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
        .unwrap_or(false);
    let made = if is_dev {
        false
    } else {
        if opts.disk.metadata().is_ok_and(|m| m.len() > 0) {
            bail!(
                "{} exists and is not empty: install makes a new disk (remove it, or name another file)",
                opts.disk.display()
            );
        }
        let f = std::fs::File::create(&opts.disk)
            .with_context(|| format!("cannot create {}", opts.disk.display()))?;
        f.set_len(opts.size)?;
        true
    };
    let r = install_on(opts, reporter, started);
    if r.is_err() && made {
        let _ = std::fs::remove_file(&opts.disk);
    }
    r
}

fn install_on(
    opts: &InstallOptions,
    reporter: &dyn Reporter,
    started: std::time::Instant,
) -> Result<InstallReport> {
    let disk = &opts.disk;
    let (esp_part, root_part) = partition(disk, opts.esp_size)?;
    let esp = esp::format(disk, esp_part.offset, esp_part.size)?;
    let esp_uuid = esp::volume_id(&esp)?;
    reporter.note(&format!(
        "{}: ESP {} MiB at {} (FAT {esp_uuid}), root {} MiB",
        disk.display(),
        esp_part.size >> 20,
        esp_part.offset,
        root_part.size >> 20
    ));
    let mut root = Root::open(disk, root_part)?;
    root.format_and_mount()?;
    let sysroot = root.mnt.clone();
    let pool_dir = sysroot.join("pool");
    crate::store::init::init(&crate::store::init::InitOptions {
        pool: pool_dir.clone(),
        image: None,
        size: None,
        allow_copy: false,
    })?;
    let pool = crate::store::pool::Pool::open(&pool_dir)?;

    // The packages, and the view.
    let (view, origin, packages) = match &opts.packages {
        Packages::Files { paths, list } => from_files(&pool, opts, paths, list, reporter)?,
        Packages::Published {
            source,
            image,
            version,
            keyring,
        } => {
            let name = opts.view.clone();
            let r = crate::dist::sync::sync(
                &pool,
                &crate::dist::sync::SyncOptions {
                    source: source.clone(),
                    image: image.clone(),
                    version: version.clone(),
                    keyring: keyring.clone(),
                    compose: Some(name.clone().unwrap_or_else(|| "system".into())),
                    deltas: true,
                    wait: true,
                    allow_downgrade: false,
                },
                reporter,
            )?;
            let origin = crate::deploy::state::Origin {
                source: source.clone(),
                image: image.clone(),
                version: Some(r.version.clone()),
                keyring: keyring.clone(),
            };
            (
                name.unwrap_or_else(|| "system".into()),
                Some(origin),
                r.packages,
            )
        }
    };
    let view_path = pool.views_dir().join(&view);
    let (loader, from) = crate::boot::find_loader(&view_path)?;
    reporter.note(&format!("systemd-boot from {from}: {}", loader.display()));

    // The system layout, with its boot configuration, then deployment 1.
    let sr = crate::deploy::sysroot::open(Some(&sysroot))?;
    let mut state = crate::deploy::sysroot::create_layout(&sr, &pool_dir)?;
    state.boot = Some(BootConfig {
        esp: ESP_MOUNT.into(),
        esp_uuid: esp_uuid.clone(),
        tries: opts.tries,
    });
    crate::deploy::system::commit_state(&sr, &pool, &state)?;
    crate::deploy::boot::use_esp(esp.clone());
    crate::boot::install_loader(&esp, &loader, opts.timeout)?;
    let d = crate::deploy::new::deploy(
        &crate::deploy::new::DeployOptions {
            view: view.clone(),
            sysroot: Some(sysroot.clone()),
            pool: pool_dir.clone(),
            no_default: false,
            kernel_args: opts.kernel_args.clone(),
            diskless: false,
            origin,
            no_cleanup: true,
            wait: true,
        },
        reporter,
    )?;
    let entry = d
        .boot
        .as_ref()
        .map(|b| b.written.clone())
        .unwrap_or_default();
    crate::sys::syncfs(&std::fs::File::open(&sysroot)?)?;
    let root_uuid = sr.uuid.clone();
    drop(root);
    Ok(InstallReport {
        disk: disk.clone(),
        esp: esp.to_string(),
        esp_uuid,
        root_uuid,
        view,
        packages,
        deployment: d.id,
        loader: format!("{} ({from})", loader.display()),
        entry,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Imports the packages and composes the view; returns (view, no origin, packages).
fn from_files(
    pool: &crate::store::pool::Pool,
    opts: &InstallOptions,
    paths: &[PathBuf],
    list: &Option<PathBuf>,
    reporter: &dyn Reporter,
) -> Result<(String, Option<crate::deploy::state::Origin>, usize)> {
    let r = crate::store::import::import(
        pool,
        &crate::store::import::ImportOptions {
            paths: paths.to_vec(),
            jobs: None,
            keyring: opts.keyring.clone(),
            wait: true,
            replace: false,
        },
        reporter,
    )?;
    if r.refused > 0 {
        let why: Vec<String> = r
            .packages
            .iter()
            .filter_map(|p| {
                p.error
                    .as_ref()
                    .map(|e| format!("{}: {e}", p.source.display()))
            })
            .collect();
        bail!("{} packages were refused:\n{}", r.refused, why.join("\n"));
    }
    let name = opts.view.clone().unwrap_or_else(|| "system".into());
    let specs = match list {
        Some(_) => Vec::new(),
        None => r.packages.iter().filter_map(|p| p.file.clone()).collect(),
    };
    let c = crate::views::compose::compose(
        pool,
        &crate::views::compose::ComposeOptions {
            name: name.clone(),
            specs,
            list: list.clone(),
            wait: true,
            ..Default::default()
        },
        reporter,
    )?;
    Ok((name, None, c.packages))
}
