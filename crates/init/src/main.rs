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

/// Seconds since the kernel started (`/proc/uptime`).
fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn run() -> Result<()> {
    mount_api()?;
    let started = uptime();
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
    if let Some(size) = args.get("reimage.toram") {
        toram(&dev, &args, size)?;
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
    let now = uptime();
    say(&format!(
        "switching root, exec {init} (initrd took {:.2}s: from {started:.2}s to {now:.2}s after the kernel started)",
        now - started
    ));
    let e = std::process::Command::new(&init).arg0(&init).exec();
    Err(format!("cannot exec {init}: {e}"))
}

/// The diskless mode's step (docs/live.md): the deployment's root, its
/// `/etc` from the latest `etc commit` (else its own) and its view are
/// copied into a tmpfs, which becomes `/sysroot`; the disk is unmounted.
/// `/var` and `/home` are directories of that tmpfs; the fstab lines that
/// would mount the disk are made comments, and the ESP's line an automount
/// that lets go after 10 s idle (it is mounted to bless the entry).
/// `reimage.toram=SIZE` sizes the tmpfs (default 90% of RAM).
fn toram(dev: &Path, args: &BTreeMap<String, String>, size: &str) -> Result<()> {
    let t0 = Instant::now();
    let size = if size.is_empty() { "90%" } else { size };
    mkdir("/ram");
    let opts = std::ffi::CString::new(format!("mode=0755,size={size}")).unwrap();
    mount(
        "tmpfs",
        "/ram",
        "tmpfs",
        MountFlags::empty(),
        Some(opts.as_c_str()),
    )
    .map_err(|e| format!("cannot mount a tmpfs of {size} on /ram: {e}"))?;
    let id = args
        .get("rootflags")
        .and_then(|f| f.split(',').find_map(|o| o.strip_prefix("subvol=")))
        .and_then(|s| s.trim_end_matches('/').rsplit('/').next())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or("reimage.toram: rootflags= names no subvol=/reimage/deployments/ID")?;
    mkdir("/top");
    mount_btrfs(dev, "/top", "ro,subvolid=5")?;
    let etc = latest_commit(
        Path::new("/top/reimage/etc-history")
            .join(id.to_string())
            .as_path(),
    )
    .unwrap_or_else(|| PathBuf::from("/sysroot/etc"));
    let mut copy = Copy::default();
    copy.tree(Path::new("/sysroot"), Path::new("/ram"), &["usr", "etc"])?;
    copy.tree(&etc, Path::new("/ram/etc"), &[])?;
    copy.tree(Path::new("/sysroot/usr"), Path::new("/ram/usr"), &[])?;
    diskless_fstab(Path::new("/ram/etc/fstab"), args)?;
    for m in ["/top", "/sysroot/usr", "/sysroot"] {
        rustix::mount::unmount(m, rustix::mount::UnmountFlags::empty())
            .map_err(|e| format!("cannot unmount {m}: {e}"))?;
    }
    mount_move("/ram", "/sysroot").map_err(|e| format!("cannot move /ram to /sysroot: {e}"))?;
    say(&format!(
        "diskless: deployment {id} in RAM ({} MiB in {} files, /etc from {}) in {:.1}s; the disk is not mounted",
        copy.bytes >> 20,
        copy.files,
        etc.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The newest commit of an `etc-history/ID` directory: the highest `N`
/// with its `N.json` beside it.
fn latest_commit(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|n| dir.join(format!("{n}.json")).is_file())
        .max()
        .map(|n| dir.join(n.to_string()))
}

/// reimage's fstab lines for a diskless boot: those that mount the root
/// filesystem (the shared subvolumes) become comments, the ESP's an
/// automount.
pub fn diskless_fstab_text(text: &str, root_uuid: &str) -> String {
    let mut out = String::new();
    let mut ours = false;
    for line in text.lines() {
        if line.starts_with("# reimage: begin") {
            ours = true;
        } else if line.starts_with("# reimage: end") {
            ours = false;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if ours && !line.starts_with('#') && f.len() >= 4 {
            if f[0].eq_ignore_ascii_case(&format!("UUID={root_uuid}")) {
                out.push_str(&format!("#diskless: {line}\n"));
                continue;
            }
            if f[2] == "vfat" {
                let opts = format!(
                    "{},noauto,x-systemd.automount,x-systemd.idle-timeout=10",
                    f[3]
                );
                let rest: Vec<&str> = f[4..].to_vec();
                out.push_str(&format!(
                    "{} {} {} {opts} {}\n",
                    f[0],
                    f[1],
                    f[2],
                    rest.join(" ")
                ));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn diskless_fstab(path: &Path, args: &BTreeMap<String, String>) -> Result<()> {
    let uuid = args
        .get("root")
        .map(|r| uuid_of(r, "root"))
        .transpose()?
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, diskless_fstab_text(&text, &uuid))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A tree copy that keeps types, owners, modes, extended attributes
/// (file capabilities), times and hard links.
#[derive(Default)]
struct Copy {
    links: BTreeMap<(u64, u64), PathBuf>,
    bytes: u64,
    files: u64,
}

impl Copy {
    fn tree(&mut self, src: &Path, dst: &Path, skip: &[&str]) -> Result<()> {
        let err = |what: &str, p: &Path, e: std::io::Error| {
            format!("diskless: cannot {what} {}: {e}", p.display())
        };
        let m = std::fs::symlink_metadata(src).map_err(|e| err("read", src, e))?;
        if !dst.exists() {
            std::fs::create_dir(dst).map_err(|e| err("create", dst, e))?;
        }
        for e in std::fs::read_dir(src).map_err(|e| err("read", src, e))? {
            let e = e.map_err(|e| err("read", src, e))?;
            let name = e.file_name();
            if skip.iter().any(|s| name == *s) {
                mkdir(&dst.join(&name).display().to_string());
                continue;
            }
            let (s, d) = (e.path(), dst.join(&name));
            let em = std::fs::symlink_metadata(&s).map_err(|e| err("read", &s, e))?;
            let ft = em.file_type();
            if ft.is_dir() {
                self.tree(&s, &d, &[])?;
                continue;
            }
            use std::os::unix::fs::MetadataExt;
            if ft.is_file() && em.nlink() > 1 {
                if let Some(first) = self.links.get(&(em.dev(), em.ino())) {
                    std::fs::hard_link(first, &d).map_err(|e| err("link", &d, e))?;
                    continue;
                }
                self.links.insert((em.dev(), em.ino()), d.clone());
            }
            if ft.is_symlink() {
                let t = std::fs::read_link(&s).map_err(|e| err("read", &s, e))?;
                std::os::unix::fs::symlink(&t, &d).map_err(|e| err("create", &d, e))?;
            } else if ft.is_file() {
                self.bytes += std::fs::copy(&s, &d).map_err(|e| err("copy", &s, e))?;
                self.files += 1;
            } else {
                continue; // sockets, fifos, device nodes: none in a deployment
            }
            attrs(&s, &d, &em).map_err(|e| err("set the attributes of", &d, e))?;
        }
        attrs(src, dst, &m).map_err(|e| err("set the attributes of", dst, e))
    }
}

fn attrs(src: &Path, dst: &Path, m: &std::fs::Metadata) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Gid, Timespec, Timestamps, Uid, XattrFlags, CWD};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    rustix::fs::chownat(
        CWD,
        dst,
        Some(Uid::from_raw(m.uid())),
        Some(Gid::from_raw(m.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if m.file_type().is_symlink() {
        return Ok(());
    }
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(src, &mut names[..]).unwrap_or(0);
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(src, name, &mut value[..]) {
            rustix::fs::lsetxattr(dst, name, &value[..len], XattrFlags::empty())?;
        }
    }
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    let t = |s: i64, ns: i64| Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    let ts = Timestamps {
        last_access: t(m.atime(), m.atime_nsec()),
        last_modification: t(m.mtime(), m.mtime_nsec()),
    };
    rustix::fs::utimensat(CWD, dst, &ts, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
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

    #[test]
    fn diskless_fstab_keeps_the_disk_unmounted() {
        let t = "/dev/sdb1 /data ext4 defaults 0 2\n\
# reimage: begin (written by reimage deploy; lines up to the end mark are replaced)\n\
#UUID=ab /usr btrfs ro,subvol=/pool/views/v1 0 0\n\
UUID=ab /var btrfs subvol=/shared/var 0 0\n\
UUID=AB /home btrfs subvol=/shared/home 0 0\n\
UUID=1234-ABCD /efi vfat umask=0077 0 2\n\
# reimage: end\n\
UUID=ab /mine btrfs subvol=/mine 0 0\n";
        let d = diskless_fstab_text(t, "ab");
        assert!(d.contains("#diskless: UUID=ab /var"), "{d}");
        assert!(d.contains("#diskless: UUID=AB /home"), "{d}");
        assert!(d.contains("UUID=1234-ABCD /efi vfat umask=0077,noauto,x-systemd.automount,x-systemd.idle-timeout=10 0 2"), "{d}");
        assert!(d.starts_with("/dev/sdb1 /data ext4"), "local lines kept");
        assert!(
            d.contains("\nUUID=ab /mine btrfs"),
            "a local line outside the marks is the user's: {d}"
        );
        assert!(d.contains("#UUID=ab /usr"));
    }
}
