//! `cargo xtask init`, `cargo xtask rpm` and `cargo xtask boot-test`.
//!
//! * `init`: the static `reimage-init` (the initrd's `/init`).
//! * `rpm`: `target/rpm/reimage-VERSION-1.x86_64.rpm`: the reimage binary,
//!   `reimage-init`, the systemd units and their preset, man pages and
//!   completions; a system composed with it runs its own health checks,
//!   fallback detection and finalize.
//! * `boot-test`: installs the closed Debian set (`testdata/boot.list`) on a
//!   disk image, boots it under OVMF + systemd-boot in qemu (TCG), updates
//!   it from the host, boots the update, deploys a broken update and watches
//!   systemd-boot fall back by itself. Serial logs and the disk stay under
//!   `target/boot-test/`.
use crate::cmd;
use anyhow::{bail, Context, Result};
use rpm::{BuildConfig, CompressionWithLevel, FileOptions, PackageBuilder};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the boot test runs.
pub const BOOT_TOOLS: &[crate::prereq::Tool] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
    (
        "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        "systemd-boot-efi",
    ),
    ("mformat", "mtools"),
    ("mkfs.vfat", "dosfstools"),
    ("sfdisk", "fdisk"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("losetup", "mount"),
    ("dpkg-deb", "dpkg"),
];

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds the static reimage-init; returns its path.
pub fn init() -> Result<PathBuf> {
    let root = cmd::repo_root();
    cmd::run_visible(
        Command::new(env!("CARGO"))
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                "reimage-init",
                "--target",
                TARGET,
            ])
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    let p = root.join(format!("target/{TARGET}/release/reimage-init"));
    let out = cmd::run_capture(Command::new("file").arg(&p)).unwrap_or_default();
    if out.contains("dynamically linked") {
        bail!("{} is dynamically linked: {out}", p.display());
    }
    eprintln!("xtask init: {}", p.display());
    Ok(p)
}

fn release_binary() -> Result<PathBuf> {
    let root = cmd::repo_root();
    cmd::run_visible(Command::new(env!("CARGO")).current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "reimage",
        "--bin",
        "reimage",
    ]))?;
    Ok(root.join("target/release/reimage"))
}

pub(crate) fn builder(name: &str, version: &str, summary: &str) -> PackageBuilder {
    let mut b = PackageBuilder::new(name, version, "MIT OR Apache-2.0", "x86_64", summary);
    b.using_config(
        BuildConfig::v4()
            .source_date(1_700_000_000)
            .compression(CompressionWithLevel::Zstd(3)),
    )
    .release("1")
    .description(summary.to_string())
    .url("https://example.invalid/reimage");
    b
}

pub(crate) fn add(b: &mut PackageBuilder, path: &str, data: Vec<u8>, mode: u16) -> Result<()> {
    b.with_file_contents(data, FileOptions::new(path).permissions(mode))
        .with_context(|| format!("adding {path}"))?;
    Ok(())
}

/// Builds the reimage RPM; returns its path.
pub fn rpm() -> Result<PathBuf> {
    let root = cmd::repo_root();
    let init = init()?;
    let bin = release_binary()?;
    let version = env!("CARGO_PKG_VERSION");
    let mut b = builder(
        "reimage",
        version,
        "Image-like, atomic OS updates from RPM packages",
    );
    add(&mut b, "/usr/bin/reimage", std::fs::read(&bin)?, 0o755)?;
    add(
        &mut b,
        "/usr/lib/reimage/reimage-init",
        std::fs::read(&init)?,
        0o755,
    )?;
    for unit in [
        "reimage-health.service",
        "reimage-boot-check.service",
        "reimage-finalize.service",
    ] {
        add(
            &mut b,
            &format!("/usr/lib/systemd/system/{unit}"),
            std::fs::read(root.join("dist/systemd").join(unit))?,
            0o644,
        )?;
    }
    add(
        &mut b,
        "/usr/lib/systemd/system-preset/80-reimage.preset",
        std::fs::read(root.join("dist/systemd/80-reimage.preset"))?,
        0o644,
    )?;
    for e in std::fs::read_dir(root.join("dist/man"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "1") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            add(
                &mut b,
                &format!("/usr/share/man/man1/{name}"),
                std::fs::read(&p)?,
                0o644,
            )?;
        }
    }
    let pkg = b.build().context("building the reimage rpm")?;
    let dir = root.join("target/rpm");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(pkg.canonical_filename()?);
    pkg.write_file(&path)?;
    eprintln!("xtask rpm: {}", path.display());
    Ok(path)
}

/// What the probe does once the boot is assessed: when the host left a
/// view's name in `/var/lib/reimage-test/live`, deploy that view and apply
/// it live, then run `hello` (which only the new view has) without a
/// reboot; then power off (the minimal set has no logind to act on the
/// ACPI power button), after a sync, so the ESP's renames are on disk.
const PROBE: &[u8] = br#"#!/bin/bash
say() { echo "reimage-probe: $*" > /dev/console; }
f=/var/lib/reimage-test/live
if [ -f "$f" ]; then
    view=$(cat "$f"); rm -f "$f"; sync
    say "live: deploying $view"
    reimage --quiet deploy "$view" > /dev/console 2>&1 || say "live: deploy failed"
    t0=$(date +%s%N)
    reimage apply-live > /dev/console 2>&1; rc=$?
    t1=$(date +%s%N)
    say "live: apply-live exit $rc in $(( (t1 - t0) / 1000000 )) ms"
    say "live: hello says $(hello 2>&1)"
    say "live: $(reimage status | grep '^live:')"
fi
if grep -qw 'reimage.toram\(=[^ ]*\)\?' /proc/cmdline; then
    say "diskless: / is $(stat -f -c %T /), /usr is $(stat -f -c %T /usr/bin)"
    say "diskless: disk mounts besides the ESP: $(grep '^/dev/vda' /proc/mounts | grep -vc ' /efi ')"
    while read -r k v _; do case $k in MemTotal:) total=$v;; MemAvailable:) avail=$v;; esac; done < /proc/meminfo
    say "diskless: memory used $(( (total - avail) / 1024 )) MiB of $(( total / 1024 )) MiB; / holds $(df -m --output=used / | tail -n 1 | tr -d ' ') MiB"
    if [ -f /etc/reimage-diskless-test ]; then
        say "diskless: kept $(cat /etc/reimage-diskless-test)"
    else
        echo "saved-by-the-first-diskless-boot" > /etc/reimage-diskless-test
        reimage --quiet etc commit -m "boot test" > /dev/console 2>&1
        say "diskless: commit exit $?"
    fi
fi
say "boot: boot-complete.target at $(systemctl show -P ActiveEnterTimestampMonotonic boot-complete.target) us after kernel start"
sync
say done
systemctl --no-block poweroff
"#;

/// A package whose required health check fails (the broken update), and
/// a probe that prints what the booted system is to the console.
pub(crate) fn test_packages(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let mut b = builder(
        "reimage-health-fail",
        "1.0",
        "A required health check that always fails (boot test)",
    );
    add(
        &mut b,
        "/etc/reimage/health.d/required.d/50-fail",
        b"#!/bin/bash\necho 'failing on purpose (boot test)'\nexit 1\n".to_vec(),
        0o755,
    )?;
    let fail = b.build()?;
    let fail_path = dir.join(fail.canonical_filename()?);
    fail.write_file(&fail_path)?;
    let mut b = builder(
        "reimage-boot-probe",
        "1.0",
        "Prints the booted deployment to the console and powers off once the boot is assessed (boot test)",
    );
    add(
        &mut b,
        "/usr/lib/reimage/health.d/wanted.d/10-probe",
        b"#!/bin/bash\n{ echo \"reimage-probe: cmdline $(cat /proc/cmdline)\"\n  echo \"reimage-probe: hello $(command -v hello || echo absent)\"\n} > /dev/console\n".to_vec(),
        0o755,
    )?;
    // The minimal set has no logind to act on the ACPI power button: the
    // guest powers itself off once the boot is assessed (blessed, or a
    // fallback recorded), after a sync, so the ESP's renames are on disk.
    add(
        &mut b,
        "/usr/lib/systemd/system/reimage-boot-probe.service",
        b"[Unit]\nDescription=boot test: power off once the boot is assessed\nRequires=boot-complete.target\nAfter=boot-complete.target systemd-bless-boot.service reimage-boot-check.service multi-user.target\n\n[Service]\nType=oneshot\nTimeoutStartSec=900\nExecStart=/usr/lib/reimage/boot-probe\n\n[Install]\nWantedBy=multi-user.target\n".to_vec(),
        0o644,
    )?;
    add(&mut b, "/usr/lib/reimage/boot-probe", PROBE.to_vec(), 0o755)?;
    add(
        &mut b,
        "/usr/lib/systemd/system-preset/70-reimage-boot-probe.preset",
        b"enable reimage-boot-probe.service\n".to_vec(),
        0o644,
    )?;
    let probe = b.build()?;
    let probe_path = dir.join(probe.canonical_filename()?);
    probe.write_file(&probe_path)?;
    Ok((fail_path, probe_path))
}

/// The virtual machine every boot here runs on: software emulation (TCG,
/// no KVM), so its times are no hardware figure.
pub const QEMU_MACHINE: &[&str] = &["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2"];

/// A running VM: qemu with its serial console in a log file.
struct Vm {
    child: std::process::Child,
    log: PathBuf,
    qmp: PathBuf,
}

impl Vm {
    fn start(dir: &Path, disk: &Path, name: &str) -> Result<Vm> {
        let vars = dir.join("OVMF_VARS.fd");
        if !vars.exists() {
            std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)?;
        }
        let log = dir.join(format!("{name}.log"));
        let qmp = dir.join("qmp.sock");
        let _ = std::fs::remove_file(&qmp);
        let child = Command::new("qemu-system-x86_64")
            .args(QEMU_MACHINE)
            .args(["-machine", "q35"])
            .arg("-drive")
            .arg("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ))
            .arg("-drive")
            .arg(format!("if=virtio,format=raw,file={}", disk.display()))
            .args(["-display", "none", "-monitor", "none", "-nic", "none"])
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start qemu-system-x86_64")?;
        eprintln!(
            "boot-test: {name}: qemu started, serial log {}",
            log.display()
        );
        Ok(Vm { child, log, qmp })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until `done` holds on the serial log; fails after `limit`.
    fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        loop {
            let text = self.text();
            if done(&text) {
                return Ok(t0.elapsed());
            }
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "qemu exited ({st}) before {what}; serial log {}",
                    self.log.display()
                );
            }
            if t0.elapsed() > limit {
                bail!(
                    "no {what} after {}s; serial log {} ends:\n{}",
                    limit.as_secs(),
                    self.log.display(),
                    tail(&text, 25)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits for the guest to power itself off (the probe does), else the
    /// ACPI power button, else kills qemu after 120 s.
    fn shutdown(mut self) -> Result<()> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.qmp) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut r = std::io::BufReader::new(s.try_clone()?);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = s.write_all(b"{\"execute\":\"qmp_capabilities\"}\n");
            let _ = r.read_line(&mut line);
            let _ = s.write_all(b"{\"execute\":\"system_powerdown\"}\n");
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(120) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("boot-test: the guest did not power off in 120 s: killing qemu");
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

fn reimage(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--quiet");
    c
}

/// The ESP partition's byte offset in the disk image (sfdisk --json).
fn esp_offset(disk: &Path) -> Result<(u64, u64, u64)> {
    let out = cmd::run_capture(Command::new("sfdisk").arg("--json").arg(disk))?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let p = &v["partitiontable"]["partitions"];
    let num = |i: usize, k: &str| p[i][k].as_u64().context("sfdisk --json");
    Ok((
        num(0, "start")? * 512,
        num(1, "start")? * 512,
        num(1, "size")? * 512,
    ))
}

fn entries(disk: &Path, off: u64) -> Result<Vec<String>> {
    let out = cmd::run_capture(
        Command::new("mdir")
            .args(["-b", "-i"])
            .arg(format!("{}@@{off}", disk.display()))
            .arg("::/loader/entries")
            .env("MTOOLS_SKIP_CHECK", "1"),
    )?;
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter(|n| n.starts_with("reimage-") && n.ends_with(".conf"))
        .map(str::to_string)
        .collect();
    v.sort();
    Ok(v)
}

/// The root btrfs of the disk mounted on the host, for offline updates.
struct Mounted {
    dev: String,
    mnt: PathBuf,
}

impl Mounted {
    fn new(disk: &Path, dir: &Path) -> Result<Mounted> {
        let (_, off, size) = esp_offset(disk)?;
        let dev = cmd::run_capture(
            Command::new("losetup")
                .args(["--find", "--show", "--offset"])
                .arg(off.to_string())
                .arg("--sizelimit")
                .arg(size.to_string())
                .arg(disk),
        )?
        .trim()
        .to_string();
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt)?;
        let m = Mounted { dev, mnt };
        cmd::run_visible(Command::new("mount").arg(&m.dev).arg(&m.mnt))?;
        Ok(m)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn state_of(sysroot: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(sysroot.join("reimage/state.json"))?;
    Ok(serde_json::from_str(&text)?)
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The file names in `dir`, sorted.
pub(crate) fn file_names(dir: &Path) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        v.push(e?.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

/// An update from the host: import `import`, compose `view` from `from`
/// with `specs`, and (with `esp`) deploy it with its boot entry on the
/// disk's ESP offline; without, leave the view's name for the guest's
/// probe to deploy and apply live.
#[allow(clippy::too_many_arguments)]
fn update(
    bin: &Path,
    disk: &Path,
    dir: &Path,
    esp: Option<&str>,
    import: &[PathBuf],
    view: &str,
    from: &str,
    specs: &[String],
) -> Result<()> {
    let m = Mounted::new(disk, dir)?;
    let pool = m.mnt.join("pool");
    let pooled = || {
        let mut c = reimage(bin);
        c.arg("--pool").arg(&pool);
        c
    };
    cmd::run_visible(pooled().arg("import").args(import))?;
    cmd::run_visible(pooled().args(["compose", view, "--from", from]).args(specs))?;
    let Some(esp) = esp else {
        let trigger = m.mnt.join("shared/var/lib/reimage-test/live");
        std::fs::create_dir_all(trigger.parent().unwrap())?;
        std::fs::write(&trigger, view)?;
        return Ok(());
    };
    cmd::run_visible(
        pooled()
            .args(["deploy", view, "--sysroot"])
            .arg(&m.mnt)
            .arg("--esp")
            .arg(esp),
    )
}

/// Boots the disk and expects deployment `id` to come up healthy (and the
/// serial log to show `also`), power off, and its entry to be blessed.
/// Returns the time to the healthy verdict.
fn boot_healthy(
    dir: &Path,
    disk: &Path,
    off: u64,
    name: &str,
    id: u64,
    also: Option<&str>,
) -> Result<Duration> {
    let mut vm = Vm::start(dir, disk, name)?;
    let t = vm.wait_for(
        &format!("a healthy boot of deployment {id}"),
        Duration::from_secs(600),
        |t| t.contains("reimage-health: healthy") && also.is_none_or(|a| t.contains(a)),
    )?;
    if !vm.text().contains(&format!("deployments/{id} ")) {
        bail!(
            "{name} did not boot deployment {id}; serial log {}",
            vm.log.display()
        );
    }
    vm.wait_for("the probe's power-off", Duration::from_secs(120), |t| {
        t.contains("reimage-probe: done")
    })?;
    vm.shutdown()?;
    let e = entries(disk, off)?;
    if !e.contains(&format!("reimage-{id}.conf")) {
        bail!("after a healthy boot, deployment {id}'s entry is not blessed: {e:?}");
    }
    eprintln!(
        "boot-test: {name}: deployment {id} healthy in {:.0}s, entry blessed: {e:?}",
        t.as_secs_f64()
    );
    Ok(t)
}

/// Boots deployment 1 with a view left for the probe to apply live;
/// expects `hello` to run in the same boot, and `status` to show the live
/// view. Returns the report's line.
fn live_apply(dir: &Path, disk: &Path, off: u64) -> Result<String> {
    let mut vm = Vm::start(dir, disk, "boot2-live")?;
    vm.wait_for("the probe's live apply", Duration::from_secs(900), |t| {
        t.contains("reimage-probe: done")
    })?;
    let text = vm.text();
    let log = vm.log.clone();
    vm.shutdown()?;
    let line = |key: &str| {
        text.lines()
            .find_map(|l| {
                l.split_once(&format!("reimage-probe: live: {key}"))
                    .map(|(_, r)| r.trim().to_string())
            })
            .unwrap_or_default()
    };
    let (exit, hello, status) = (line("apply-live exit"), line("hello says"), line("live:"));
    if !exit.starts_with("0 ") || !hello.contains("Hello, world!") || !status.contains("view v2") {
        bail!(
            "the live apply in the guest did not work: exit {exit:?}, hello {hello:?}, status {status:?}; serial log {}",
            log.display()
        );
    }
    if !text.contains("deployments/1 ") {
        bail!(
            "the live apply ran in another deployment than 1; serial log {}",
            log.display()
        );
    }
    let e = entries(disk, off)?;
    if !e.iter().any(|n| n.starts_with("reimage-2")) {
        bail!("after the live apply deployment 2 has no boot entry: {e:?}");
    }
    eprintln!("boot-test: live apply in the guest: exit {exit}; hello: {hello}; {status}");
    Ok(format!(
        "apply-live of v2 in the running v1 (guest, TCG): {}",
        exit.trim_start_matches("0 in ")
    ))
}

/// Kernel start to `boot-complete.target`, from the probe's line.
fn boot_complete_seconds(log: &Path) -> Result<f64> {
    let text = String::from_utf8_lossy(&std::fs::read(log)?).into_owned();
    text.lines()
        .find_map(|l| {
            let us: f64 = l
                .split_once("boot: boot-complete.target at ")?
                .1
                .split_once(' ')?
                .0
                .parse()
                .ok()?;
            (us > 0.0).then_some(us / 1e6)
        })
        .with_context(|| format!("no boot-complete time in {}", log.display()))
}

/// The initrd's time from its start to the root switch, from a serial log.
fn initrd_seconds(log: &Path) -> Result<f64> {
    let text = String::from_utf8_lossy(&std::fs::read(log)?).into_owned();
    text.lines()
        .find_map(|l| {
            l.split_once("(initrd took ")?
                .1
                .split_once('s')?
                .0
                .parse()
                .ok()
        })
        .with_context(|| format!("no initrd time in {}", log.display()))
}

/// Boots deployment 4 diskless and expects the disk unmounted, / and /usr
/// on tmpfs, and the serial log to show `also`. Returns the initrd's time
/// and the memory line.
fn boot_diskless(dir: &Path, disk: &Path, name: &str, also: &str) -> Result<(f64, String)> {
    let mut vm = Vm::start(dir, disk, name)?;
    vm.wait_for(
        "the probe on a diskless boot",
        Duration::from_secs(900),
        |t| t.contains("reimage-probe: done"),
    )?;
    let text = vm.text();
    let log = vm.log.clone();
    vm.shutdown()?;
    let want = [
        "deployments/4 ",
        "reimage-init: diskless: deployment 4 in RAM",
        "reimage-probe: diskless: / is tmpfs, /usr is tmpfs",
        "reimage-probe: diskless: disk mounts besides the ESP: 0",
        "reimage-health: healthy",
        also,
    ];
    if let Some(missing) = want.iter().find(|w| !text.contains(*w)) {
        bail!("{name}: the serial log {} lacks {missing:?}", log.display());
    }
    let mem = text
        .lines()
        .find_map(|l| {
            l.split_once("reimage-probe: diskless: memory ")
                .map(|(_, r)| format!("memory {}", r.trim()))
        })
        .unwrap_or_default();
    Ok((initrd_seconds(&log)?, mem))
}

/// `reimage install --disk`: the boot set's v1 with the reimage RPM and
/// the probe on a fresh 3 GiB disk image (deployment 1). Returns the
/// command line.
fn install_v1(
    bin: &Path,
    disk: &Path,
    v1: &Path,
    reimage_rpm: &Path,
    probe_rpm: &Path,
) -> Result<String> {
    let mut c = reimage(bin);
    c.args(["install", "--disk"])
        .arg(disk)
        .args(["--size", "3G", "--tries", "2", "--timeout", "0"])
        .args([
            "--kernel-arg",
            "console=ttyS0",
            "--kernel-arg",
            "systemd.show_status=1",
        ])
        .arg(v1)
        .arg(reimage_rpm)
        .arg(probe_rpm);
    let line = cmd::describe(&c);
    cmd::run_visible(&mut c)?;
    Ok(line)
}

/// One measured VM boot (`cargo xtask bench`'s figure).
pub struct BootTiming {
    /// Kernel start to `boot-complete.target`, in the guest's own clock
    /// (`systemctl show -P ActiveEnterTimestampMonotonic`).
    pub boot_complete_s: f64,
    /// qemu start (firmware included) to `reimage-health: healthy` on the
    /// serial console, on the host's clock (polled every 0.5 s).
    pub healthy_s: f64,
    /// The `reimage install --disk` before it.
    pub install_s: f64,
    /// That install's command line.
    pub install_cmd: String,
    /// The guest's serial log.
    pub log: PathBuf,
}

/// What a boot run starts from: the boot set (`data`/boot/v1, v2), the
/// reimage RPM, the release binary, the test packages, where the disk goes.
struct Inputs {
    data: PathBuf,
    reimage_rpm: PathBuf,
    bin: PathBuf,
    fail_rpm: PathBuf,
    probe_rpm: PathBuf,
    disk: PathBuf,
}

/// Installs the tools (`what` names the command), empties `dir` and builds
/// the inputs of a boot run there.
fn inputs(what: &str, dir: &Path) -> Result<Inputs> {
    crate::prereq::ensure(what, BOOT_TOOLS)?;
    let root = cmd::repo_root();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let data = root.join("target/bootdata");
    crate::realistic::boot(&data.join("boot"))?;
    let reimage_rpm = rpm()?;
    let (fail_rpm, probe_rpm) = test_packages(&dir.join("rpms"))?;
    Ok(Inputs {
        data,
        reimage_rpm,
        bin: root.join("target/release/reimage"),
        fail_rpm,
        probe_rpm,
        disk: dir.join("disk.img"),
    })
}

/// Installs the boot set's v1 on a fresh disk image under `dir` (as the
/// boot test's step 1 does) and boots it once to healthy. Builds what it
/// needs (tools, the boot set, the reimage RPM); qemu is killed if it is
/// still running when this returns; the disk image stays in `dir`.
pub fn measure_v1_boot(dir: &Path) -> Result<BootTiming> {
    let Inputs {
        data,
        reimage_rpm,
        bin,
        probe_rpm,
        disk,
        ..
    } = inputs("boot", dir)?;
    let t = Instant::now();
    let install_cmd = install_v1(&bin, &disk, &data.join("boot/v1"), &reimage_rpm, &probe_rpm)?;
    let install_s = t.elapsed().as_secs_f64();
    let off = esp_offset(&disk)?.0;
    let name = "boot1-v1";
    let healthy = boot_healthy(dir, &disk, off, name, 1, None)?;
    let log = dir.join(format!("{name}.log"));
    Ok(BootTiming {
        boot_complete_s: boot_complete_seconds(&log)?,
        healthy_s: healthy.as_secs_f64(),
        install_s,
        install_cmd,
        log,
    })
}

/// Runs the whole boot test.
pub fn boot_test() -> Result<()> {
    let dir = cmd::repo_root().join("target/boot-test");
    let t_all = Instant::now();
    let Inputs {
        data,
        reimage_rpm,
        bin,
        fail_rpm,
        probe_rpm,
        disk,
    } = inputs("boot-test", &dir)?;

    // 1. Install v1 and boot it.
    let t = Instant::now();
    install_v1(&bin, &disk, &data.join("boot/v1"), &reimage_rpm, &probe_rpm)?;
    let install_s = t.elapsed().as_secs_f64();
    let off = esp_offset(&disk)?.0;
    let esp = format!("{}@@{off}", disk.display());
    eprintln!(
        "boot-test: installed in {install_s:.1}s; entries {:?}",
        entries(&disk, off)?
    );
    let t1 = boot_healthy(&dir, &disk, off, "boot1-v1", 1, None)?;

    // 2. v2 (adds `hello`), composed from the host, deployed and applied
    // live by the running v1: `hello` runs without a reboot; the next boot
    // starts deployment 2, and `hello` is still there.
    let mut specs = file_names(&data.join("boot/v2"))?;
    specs.push(file_name(&reimage_rpm));
    specs.push(file_name(&probe_rpm));
    let v2 = [data.join("boot/v2")];
    update(&bin, &disk, &dir, None, &v2, "v2", "system", &specs)?;
    let live = live_apply(&dir, &disk, off)?;
    eprintln!(
        "boot-test: applied v2 live; entries {:?}",
        entries(&disk, off)?
    );
    let t2 = boot_healthy(
        &dir,
        &disk,
        off,
        "boot2-v2",
        2,
        Some("reimage-probe: hello /usr/bin/hello"),
    )?;

    // 3. A broken update (a required health check fails): systemd-boot
    // tries it twice, then boots deployment 2, which records the fallback.
    specs.push(file_name(&fail_rpm));
    update(
        &bin,
        &disk,
        &dir,
        Some(&esp),
        std::slice::from_ref(&fail_rpm),
        "v3",
        "v2",
        &specs,
    )?;
    eprintln!(
        "boot-test: deployed broken v3; entries {:?}",
        entries(&disk, off)?
    );
    let mut vm = Vm::start(&dir, &disk, "boot3-v3-fallback")?;
    let b3 = vm.wait_for(
        "the fallback to deployment 2",
        Duration::from_secs(1500),
        |t| t.contains("deployment 3 did not boot healthy") || t.contains("is the default again"),
    )?;
    vm.wait_for(
        "the probe's power-off after the fallback",
        Duration::from_secs(300),
        |t| {
            t.rsplit("is the default again")
                .next()
                .is_some_and(|r| r.contains("reimage-probe: done"))
        },
    )?;
    let text = vm.text();
    let failures = text.matches("UNHEALTHY").count();
    vm.shutdown()?;
    let e = entries(&disk, off)?;
    let m = Mounted::new(&disk, &dir)?;
    let st = state_of(&m.mnt)?;
    drop(m);
    let failed3 = st["deployments"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["id"] == 3))
        .and_then(|d| d["failed"].as_str())
        .map(str::to_string);
    if st["default"] != 2 || failed3.is_none() {
        bail!("after the fallback the state record says default {} and deployment 3 failed {failed3:?}", st["default"]);
    }
    if !e.iter().any(|n| n.starts_with("reimage-3+0-")) {
        bail!("deployment 3's entry should have no tries left: {e:?}");
    }
    eprintln!(
        "boot-test: broken v3 failed its health check {failures} times, systemd-boot fell back to 2 by itself ({:.0}s for all boots); state: default 2, 3 failed ({}); entries {e:?}",
        b3.as_secs_f64(),
        failed3.unwrap_or_default()
    );
    // 4. Diskless: v2 deployed again with --diskless (deployment 4). The
    // disk is not mounted once booted, / and /usr are in RAM; a change of
    // /etc committed with `etc commit` is there at the next diskless boot.
    let m = Mounted::new(&disk, &dir)?;
    cmd::run_visible(
        reimage(&bin)
            .arg("--pool")
            .arg(m.mnt.join("pool"))
            .args(["deploy", "v2", "--diskless", "--sysroot"])
            .arg(&m.mnt)
            .arg("--esp")
            .arg(&esp),
    )?;
    drop(m);
    let normal_initrd = initrd_seconds(&dir.join("boot2-v2.log"))?;
    let complete = boot_complete_seconds(&dir.join("boot2-v2.log"))?;
    let (d1, mem) = boot_diskless(&dir, &disk, "boot4-diskless", "diskless: commit exit 0")?;
    let (d2, _) = boot_diskless(
        &dir,
        &disk,
        "boot5-diskless-again",
        "diskless: kept saved-by-the-first-diskless-boot",
    )?;
    let diskless = format!(
        "diskless boots: initrd start to root switch {d1:.1}s and {d2:.1}s (normal boot: {normal_initrd:.1}s); {mem}; /etc change committed and restored"
    );
    eprintln!("boot-test: {diskless}");
    let report = format!(
        "# boot test\n\ninstall: {install_s:.1}s\nboot 1 (v1) to healthy: {:.0}s\nkernel start to boot-complete.target (boot 2, v2): {complete:.1}s\n{live}\nboot 2 (v2) to healthy: {:.0}s\nbroken v3: {failures} unhealthy boots, fallback to 2 recorded, {:.0}s\n{diskless}\ntotal: {:.0}s\n",
        t1.as_secs_f64(),
        t2.as_secs_f64(),
        b3.as_secs_f64(),
        t_all.elapsed().as_secs_f64()
    );
    std::fs::write(dir.join("report.md"), &report)?;
    eprintln!("{report}");
    Ok(())
}
