//! `reimage-init`: the `/init` of the initrd reimage builds from a view
//! (docs/boot.md). It serves any package set (a Debian set has neither
//! dracut nor busybox), needs nothing but the kernel, and does only this:
//!
//! 1. mounts `/proc`, `/sys`, `/dev` (devtmpfs), `/run` (tmpfs);
//! 2. loads the kernel modules listed in `/lib/modules/load-order` (written
//!    by reimage with each module after its dependencies, already
//!    decompressed);
//! 3. finds the root filesystem by `root=UUID=...` (reading btrfs
//!    superblocks of the block devices, no udev needed), mounts it with
//!    `rootflags=` at `/sysroot`, and `/usr` from `mount.usr=` with
//!    `mount.usrflags=` (systemd's own names for them) at `/sysroot/usr`;
//! 4. runs reimage's own step if the command line asks for one (the
//!    diskless mode's `reimage.toram` copies `/usr` into RAM, see
//!    docs/live.md);
//! 5. moves `/dev`, `/proc`, `/sys`, `/run` under `/sysroot`, makes it `/`
//!    and executes `init=` (default `/usr/lib/systemd/systemd`, else
//!    `/sbin/init`).
//!
//! It prints each step to the console (`reimage-init: ...`) and, when a
//! step fails, says which and waits, then reboots (so a boot loader's try
//! counter sees the failed boot).
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::mount::{mount, mount_move, MountFlags};

type Result<T> = std::result::Result<T, String>;

fn say(msg: &str) {
    eprintln!("reimage-init: {msg}");
}

fn main() {
    if let Err(e) = run() {
        say(&format!("FAILED: {e}"));
        say("rebooting in 10 s");
        std::thread::sleep(Duration::from_secs(10));
        let _ = rustix::system::reboot(rustix::system::RebootCommand::Restart);
    }
}

fn mkdir(p: &str) {
    let _ = std::fs::create_dir_all(p);
}

fn mount_api() -> Result<()> {
    for (src, target, fs, flags) in [
        (
            "proc",
            "/proc",
            "proc",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        ),
        (
            "sysfs",
            "/sys",
            "sysfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        ),
        ("devtmpfs", "/dev", "devtmpfs", MountFlags::NOSUID),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
        ),
    ] {
        mkdir(target);
        mount(src, target, fs, flags, None)
            .map_err(|e| format!("cannot mount {fs} on {target}: {e}"))?;
    }
    Ok(())
}

/// `key=value` words of the kernel command line (the last one wins).
pub fn cmdline(text: &str) -> BTreeMap<String, String> {
    text.split_whitespace()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w.to_string(), String::new()),
        })
        .collect()
}

fn load_modules() -> Result<usize> {
    let list = match std::fs::read_to_string("/lib/modules/load-order") {
        Ok(t) => t,
        Err(_) => return Ok(0),
    };
    let mut n = 0;
    for rel in list.lines().filter(|l| !l.is_empty()) {
        let path = Path::new("/lib/modules").join(rel);
        let f = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open module {}: {e}", path.display()))?;
        match rustix::system::finit_module(&f, c"", 0) {
            Ok(()) => n += 1,
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => say(&format!("module {rel}: {e} (going on)")),
        }
    }
    Ok(n)
}

/// The UUID (fsid) of the btrfs on block device `dev`, if it is one.
fn btrfs_uuid(dev: &Path) -> Option<String> {
    let mut f = std::fs::File::open(dev).ok()?;
    let mut sb = vec![0u8; 65536 + 0x48];
    f.read_exact(&mut sb).ok()?;
    let s = &sb[65536..];
    if &s[0x40..0x48] != b"_BHRfS_M" {
        return None;
    }
    let u = &s[0x20..0x30];
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
    ))
}

/// Waits (up to 30 s) for the block device holding the btrfs `uuid`.
fn find_device(uuid: &str) -> Result<PathBuf> {
    let start = Instant::now();
    loop {
        for e in std::fs::read_dir("/sys/class/block")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dev = Path::new("/dev").join(e.file_name());
            if btrfs_uuid(&dev).as_deref() == Some(uuid) {
                return Ok(dev);
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            let seen: Vec<String> = std::fs::read_dir("/sys/class/block")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            return Err(format!(
                "no btrfs with UUID {uuid} after 30 s (block devices: {})",
                seen.join(" ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn uuid_of(arg: &str, what: &str) -> Result<String> {
    arg.strip_prefix("UUID=")
        .map(|u| u.to_ascii_lowercase())
        .ok_or_else(|| format!("{what}={arg}: only UUID= is understood"))
}

/// Mount options: the flags mount(2) takes, and the rest as data.
fn options(opts: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noatime" => flags |= MountFlags::NOATIME,
            o => data.push(o),
        }
    }
    (flags, data.join(","))
}

fn mount_btrfs(dev: &Path, target: &str, opts: &str) -> Result<()> {
    let (flags, data) = options(opts);
    let data = std::ffi::CString::new(data).map_err(|e| e.to_string())?;
    mount(dev, target, "btrfs", flags, Some(data.as_c_str()))
        .map_err(|e| format!("cannot mount {} on {target} ({opts}): {e}", dev.display()))
}

fn run() -> Result<()> {
    mount_api()?;
    let args = cmdline(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    let n = load_modules()?;
    say(&format!("{n} modules loaded"));
    let root = args
        .get("root")
        .ok_or("no root= on the kernel command line")?;
    let root_uuid = uuid_of(root, "root")?;
    let dev = find_device(&root_uuid)?;
    mkdir("/sysroot");
    let mut rootflags = args.get("rootflags").cloned().unwrap_or_default();
    if args.contains_key("ro") {
        rootflags = format!("ro,{rootflags}");
    }
    mount_btrfs(&dev, "/sysroot", &rootflags)?;
    say(&format!("root {} ({rootflags}) mounted", dev.display()));
    if let Some(usr) = args.get("mount.usr") {
        let usr_dev = match uuid_of(usr, "mount.usr")? {
            u if u == root_uuid => dev.clone(),
            u => find_device(&u)?,
        };
        let flags = args.get("mount.usrflags").cloned().unwrap_or_default();
        mount_btrfs(&usr_dev, "/sysroot/usr", &flags)?;
        say(&format!("/usr ({flags}) mounted"));
    }
    if args.contains_key("reimage.toram") {
        toram()?;
    }
    for d in ["/dev", "/proc", "/sys", "/run"] {
        let target = format!("/sysroot{d}");
        mkdir(&target);
        mount_move(d, &target).map_err(|e| format!("cannot move {d}: {e}"))?;
    }
    std::env::set_current_dir("/sysroot").map_err(|e| e.to_string())?;
    mount_move(".", "/").map_err(|e| format!("cannot move /sysroot to /: {e}"))?;
    rustix::process::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| e.to_string())?;
    let init = match args.get("init") {
        Some(i) => i.clone(),
        None if Path::new("/usr/lib/systemd/systemd").exists() => "/usr/lib/systemd/systemd".into(),
        None => "/sbin/init".into(),
    };
    say(&format!("switching root, exec {init}"));
    let e = std::process::Command::new(&init).arg0(&init).exec();
    Err(format!("cannot exec {init}: {e}"))
}

/// The diskless mode's step (docs/live.md): the view and the deployment's
/// `/etc` are copied into RAM and the disk is let go. Implemented with
/// diskless mode; until then the option is refused rather than ignored.
fn toram() -> Result<()> {
    Err("reimage.toram: this initrd has no diskless mode".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_command_line() {
        let a = cmdline(
            "BOOT_IMAGE=/x root=UUID=AB rootflags=subvol=/reimage/deployments/3 rw \
             mount.usr=UUID=AB mount.usrflags=subvol=/pool/views/v2,ro console=ttyS0",
        );
        assert_eq!(a["rootflags"], "subvol=/reimage/deployments/3");
        assert_eq!(a["mount.usrflags"], "subvol=/pool/views/v2,ro");
        assert_eq!(uuid_of(&a["root"], "root").unwrap(), "ab");
        assert!(a.contains_key("rw"));
        let (f, d) = options("subvol=/pool/views/v2,ro");
        assert!(f.contains(MountFlags::RDONLY));
        assert_eq!(d, "subvol=/pool/views/v2");
    }
}
