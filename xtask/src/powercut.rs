//! `cargo xtask powercut [--cuts N] [--seed S]`: power cuts during an update,
//! in a virtual machine whose disk loses what was not flushed.
//!
//! The disk image (made by `reimage install --disk`, as the boot test's) is
//! served by `nbdkit --filter=cache file IMG cache=writeback` on a unix
//! socket; qemu reaches it over NBD in user space (`file.driver=nbd`,
//! `cache=writeback`, so the guest's virtio disk has a volatile write cache
//! and sends flushes). The cache filter keeps every write in its own cache
//! file until a flush or a FUA write, and only then writes it to the image:
//! killing nbdkit (`kill -9`) loses everything written since the last flush,
//! as a disk's volatile cache does at a power cut. A control run at the start
//! of every run proves it (a file written and synced is on the image after
//! the cut, one written without a sync is not).
//!
//! The guest is light: the installed view's own kernel booted directly, an
//! initramfs of static busybox, the modules for virtio, btrfs and vfat, and
//! the host's release `reimage` with its libraries. Its `/init` mounts the
//! disk's btrfs and ESP and runs the workload, printing a line before and
//! after each operation: `import` (three packages), `compose v2 --from
//! system`, `deploy v2` (with its boot entry on the ESP), `rollback`, `gc`.
//!
//! An uninterrupted run is the reference. Then each cut: a fresh copy of
//! the installed disk, the workload, and at a moment drawn inside one
//! operation (round robin over them; uniformly within the operation's
//! length in the reference run, counted from its start line in this run's
//! log) nbdkit and then qemu are killed. On the
//! host the image is attached (`losetup -P`) and checked; see [`check`].
//! After every fifth cut the disk is booted: the default entry's kernel and
//! initrd with its options, until the deployment's systemd starts. A
//! failure keeps the image and the guest's log under
//! `target/powercut/fail-CUT-AIMED+MS-RUNNING/` and the run goes on; the task
//! fails at the end if any cut failed. `target/powercut/report.md` has the
//! figures.
use crate::{boot, cmd};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "powercut_check.rs"]
mod check;
#[path = "powercut_guest.rs"]
mod guest;

pub struct Options {
    pub cuts: u64,
    pub seed: Option<u64>,
    /// Boot the disk after every this many cuts (0: never).
    pub boot_every: u64,
}

/// What the power-cut run needs besides the boot test's tools.
const TOOLS: &[crate::prereq::Tool] = &[
    ("nbdkit", "nbdkit"),
    (
        "/usr/lib/x86_64-linux-gnu/nbdkit/filters/nbdkit-cache-filter.so",
        "nbdkit",
    ),
    ("/bin/busybox", "busybox-static"),
    ("mcopy", "mtools"),
    ("mdir", "mtools"),
    ("partx", "util-linux"),
    ("findmnt", "util-linux"),
    ("strip", "binutils"),
    ("file", "file"),
    ("ldd", "libc-bin"),
];

/// The operations of the workload, in order.
pub const OPS: &[&str] = &["import", "compose", "deploy", "rollback", "gc"];

/// Everything a run is made of.
pub struct Setup {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub base: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The packages the workload imports (host paths).
    pub imports: Vec<PathBuf>,
    /// The package the workload imports but composes into nothing (gc's).
    pub junk: String,
    /// Every spec of v2.
    pub specs: Vec<String>,
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The packages the workload adds: `powercut-data` (composed into v2: 400
/// files, 6 MiB) and `powercut-junk` (imported, referenced by nothing: gc
/// removes it).
fn workload_packages(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let mut b = boot::builder("powercut-data", "1.0", "Files for the power-cut workload");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..400 {
        let len = 4096 + (i % 7) * 4096;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        boot::add(
            &mut b,
            &format!("/usr/share/powercut/d{}/f{i:03}", i % 10),
            data,
            0o644,
        )?;
    }
    let data = b.build()?;
    let data_path = dir.join(data.canonical_filename()?);
    data.write_file(&data_path)?;
    let mut b = boot::builder("powercut-junk", "1.0", "Imported, never composed (gc)");
    boot::add(
        &mut b,
        "/usr/share/powercut-junk/README",
        b"gc removes this package\n".repeat(100),
        0o644,
    )?;
    let junk = b.build()?;
    let junk_path = dir.join(junk.canonical_filename()?);
    junk.write_file(&junk_path)?;
    Ok((data_path, junk_path))
}

/// Builds everything: the boot set, the reimage RPM, the installed disk,
/// the guest's kernel and initramfs.
fn prepare(dir: &Path) -> Result<Setup> {
    let root = cmd::repo_root();
    let data = root.join("target/bootdata/boot");
    crate::realistic::boot(&data)?;
    let reimage_rpm = boot::rpm()?;
    let bin = root.join("target/release/reimage");
    let rpms = dir.join("rpms");
    let (_, probe_rpm) = boot::test_packages(&rpms)?;
    let (data_rpm, junk_rpm) = workload_packages(&rpms)?;
    let v1 = boot::file_names(&data.join("v1"))?;
    let added: Vec<PathBuf> = boot::file_names(&data.join("v2"))?
        .into_iter()
        .filter(|n| !v1.contains(n))
        .map(|n| data.join("v2").join(n))
        .collect();
    let mut specs = v1.clone();
    specs.push(boot::file_name(&reimage_rpm));
    specs.push(boot::file_name(&probe_rpm));
    specs.extend(added.iter().map(|p| boot::file_name(p)));
    specs.push(boot::file_name(&data_rpm));
    let mut imports = added.clone();
    imports.push(data_rpm);
    imports.push(junk_rpm.clone());

    let base = dir.join("base.img");
    let t = Instant::now();
    cmd::run_visible(
        Command::new(&bin)
            .args(["--quiet", "install", "--disk"])
            .arg(&base)
            .args(["--size", "3G", "--timeout", "0"])
            .args(["--kernel-arg", "console=ttyS0"])
            .args(["--kernel-arg", "systemd.show_status=1"])
            .arg(data.join("v1"))
            .arg(&reimage_rpm)
            .arg(&probe_rpm),
    )?;
    eprintln!("powercut: installed in {:.1}s", t.elapsed().as_secs_f64());
    let (kernel, initrd) = guest::build(dir, &base, &bin, &imports, &specs)?;
    Ok(Setup {
        dir: dir.to_path_buf(),
        bin,
        base,
        kernel,
        initrd,
        imports,
        junk: boot::file_name(&junk_rpm),
        specs,
    })
}

/// A guest running on an image served by nbdkit's writeback cache.
pub struct Vm {
    qemu: Child,
    nbd: Child,
    pub log: PathBuf,
}

impl Vm {
    pub fn start(s: &Setup, disk: &Path, name: &str, mode: &str) -> Result<Vm> {
        let sock = s.dir.join("nbd.sock");
        let _ = std::fs::remove_file(&sock);
        let cache = s.dir.join("nbd-cache");
        std::fs::create_dir_all(&cache)?;
        let nbd = Command::new("nbdkit")
            .args(["--foreground", "--unix"])
            .arg(&sock)
            .args(["--filter=cache", "file"])
            .arg(disk)
            .arg("cache=writeback")
            .env("TMPDIR", &cache)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start nbdkit")?;
        let mut vm = Vm {
            qemu: Command::new("true").spawn()?,
            nbd,
            log: s.dir.join(format!("{name}.log")),
        };
        // The last run's log must not be read as this one's before qemu
        // opens (and truncates) it: a cut would be aimed by stale lines.
        match std::fs::remove_file(&vm.log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", vm.log.display()))
            }
            _ => {}
        }
        let t0 = Instant::now();
        while !sock.exists() {
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("nbdkit did not make {} in 10 s", sock.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = vm.qemu.wait();
        vm.qemu = Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2"])
            .arg("-kernel")
            .arg(&s.kernel)
            .arg("-initrd")
            .arg(&s.initrd)
            .arg("-append")
            .arg(format!("console=ttyS0 panic=-1 loglevel=4 powercut={mode}"))
            .arg("-drive")
            .arg(format!(
                "if=virtio,format=raw,cache=writeback,file.driver=nbd,file.path={}",
                sock.display()
            ))
            .args(["-display", "none", "-monitor", "none", "-nic", "none"])
            .args(["-no-reboot", "-serial"])
            .arg(format!("file:{}", vm.log.display()))
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start qemu-system-x86_64")?;
        Ok(vm)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until `done` holds on the log (polled every 10 ms).
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<Instant> {
        let t0 = Instant::now();
        loop {
            if done(&self.text()) {
                return Ok(Instant::now());
            }
            if let Some(st) = self.qemu.try_wait()? {
                bail!(
                    "qemu exited ({st}) before {what}; log {}",
                    self.log.display()
                );
            }
            if t0.elapsed() > limit {
                bail!(
                    "no {what} after {}s; log {} ends:\n{}",
                    limit.as_secs(),
                    self.log.display(),
                    boot::tail(&self.text(), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The power cut: nbdkit first (what it has not written to the image is
    /// gone), then qemu, both with SIGKILL.
    pub fn cut(mut self) -> Result<()> {
        self.nbd.kill()?;
        let _ = self.qemu.kill();
        self.nbd.wait()?;
        self.qemu.wait()?;
        Ok(())
    }

    /// Waits for the guest to power itself off, then stops nbdkit (the
    /// guest unmounted its filesystems: everything was flushed).
    pub fn finish(mut self, limit: Duration) -> Result<()> {
        let t0 = Instant::now();
        while self.qemu.try_wait()?.is_none() {
            if t0.elapsed() > limit {
                bail!(
                    "the guest did not power off in {}s; log {}",
                    limit.as_secs(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.nbd.kill()?;
        self.nbd.wait()?;
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        for c in [&mut self.nbd, &mut self.qemu] {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The operations' windows in an uninterrupted run: seconds from the
/// workload's start to each operation's start and end.
pub type Timeline = BTreeMap<String, (f64, f64)>;

/// Runs the workload uninterrupted on `disk`; returns its timeline.
fn reference(s: &Setup, disk: &Path) -> Result<Timeline> {
    let mut vm = Vm::start(s, disk, "reference", "work")?;
    let t0 = vm.wait_for("the workload's start", Duration::from_secs(120), |t| {
        t.contains("powercut: workload start")
    })?;
    let mut tl = Timeline::new();
    for op in OPS {
        let a = vm.wait_for(&format!("{op}'s start"), Duration::from_secs(600), |t| {
            t.contains(&format!("powercut: op {op} start"))
        })?;
        let b = vm.wait_for(&format!("{op}'s end"), Duration::from_secs(600), |t| {
            t.contains(&format!("powercut: op {op} exit"))
        })?;
        tl.insert(
            op.to_string(),
            ((a - t0).as_secs_f64(), (b - t0).as_secs_f64()),
        );
    }
    vm.wait_for("the workload's end", Duration::from_secs(60), |t| {
        t.contains("powercut: workload done")
    })?;
    let text = vm.text();
    vm.finish(Duration::from_secs(60))?;
    for op in OPS {
        if !text.contains(&format!("powercut: op {op} exit 0")) {
            bail!(
                "the reference run's {op} failed; log {}",
                s.dir.join("reference.log").display()
            );
        }
    }
    Ok(tl)
}

/// The operation running at the cut, from the guest's log: the last one
/// started and not ended (`None`: between operations).
pub fn op_at_cut(log: &str) -> (Vec<String>, Option<String>) {
    let mut done = Vec::new();
    let mut running = None;
    for l in log.lines() {
        if let Some(r) = l.split("powercut: op ").nth(1) {
            let mut w = r.split_whitespace();
            let (op, what, rc) = (w.next(), w.next(), w.next());
            match (op, what) {
                (Some(op), Some("start")) => running = Some(op.to_string()),
                (Some(op), Some("exit")) => {
                    running = None;
                    if rc == Some("0") {
                        done.push(op.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    (done, running)
}

/// A sparse copy of the installed disk.
pub fn fresh_disk(s: &Setup, to: &Path) -> Result<()> {
    cmd::run_capture(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&s.base)
            .arg(to),
    )?;
    Ok(())
}

/// The control: a file synced before the cut is on the image, one written
/// after the last flush is not. Proves the layer drops unflushed writes.
fn control(s: &Setup) -> Result<String> {
    let disk = s.dir.join("control.img");
    std::fs::write(&disk, vec![0u8; 16 << 20])?;
    let mut vm = Vm::start(s, &disk, "control", "control")?;
    vm.wait_for("the control's writes", Duration::from_secs(120), |t| {
        t.contains("powercut: control written")
    })?;
    std::thread::sleep(Duration::from_millis(500));
    vm.cut()?;
    let img = std::fs::read(&disk)?;
    let _ = std::fs::remove_file(&disk);
    let at = |block: usize, want: &[u8]| img[block * 4096..].starts_with(want);
    let got = (at(1, b"powercut-synced\n"), at(100, b"powercut-unsynced\n"));
    if got != (true, false) {
        bail!(
            "the disk layer does not behave as a power cut: after the cut the flushed block is {}, the unflushed one {} (want: present, absent)",
            if got.0 { "present" } else { "absent" },
            if got.1 { "present" } else { "absent" }
        );
    }
    Ok("control: a block written and flushed is on the image after the cut, one written (acknowledged, O_DIRECT) and not flushed is not".into())
}

/// One cut's outcome.
pub struct Cut {
    pub n: u64,
    pub aimed: String,
    pub op: Option<String>,
    pub at: f64,
    pub booted: Option<u64>,
    pub error: Option<String>,
    pub notes: Vec<String>,
}

fn one_cut(
    s: &Setup,
    n: u64,
    aimed: &str,
    at: f64,
    boot_it: bool,
    reference: &check::Print,
) -> Cut {
    let disk = s.dir.join("cut.img");
    let mut cut = Cut {
        n,
        aimed: aimed.to_string(),
        op: None,
        at,
        booted: None,
        error: None,
        notes: Vec::new(),
    };
    let r = (|| -> Result<()> {
        fresh_disk(s, &disk)?;
        let mut vm = Vm::start(s, &disk, "cut", "work")?;
        // The moment is counted from the aimed operation's start line (the
        // guest's speed varies from run to run; a moment counted from the
        // workload's start would often land in another operation).
        vm.wait_for("the workload's start", Duration::from_secs(120), |t| {
            t.contains("powercut: workload start")
        })?;
        let start = format!("powercut: op {aimed} start");
        let t0 = vm.wait_for(&format!("{aimed}'s start"), Duration::from_secs(600), |t| {
            t.contains(&start)
        })?;
        let until = t0 + Duration::from_secs_f64(at);
        let _ = vm.wait_for("the cut moment", Duration::from_secs(900), |_| {
            Instant::now() >= until
        });
        let text = vm.text();
        vm.cut()?;
        let (done, running) = op_at_cut(&text);
        cut.op = running.clone();
        if text.contains("powercut: workload done") {
            cut.notes.push("the workload had finished".into());
        }
        check::after_cut(
            s,
            &disk,
            &done,
            running.as_deref(),
            boot_it,
            reference,
            &mut cut,
        )
    })();
    if let Err(e) = r {
        cut.error = Some(format!("{e:#}"));
        let name = format!(
            "fail-{n}-{aimed}+{}ms-{}",
            (at * 1000.0) as u64,
            cut.op.as_deref().unwrap_or("between")
        );
        let keep = s.dir.join(&name);
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::fs::rename(&disk, keep.join("disk.img"));
        let _ = std::fs::copy(s.dir.join("cut.log"), keep.join("guest.log"));
        let _ = std::fs::rename(s.dir.join("boot.log"), keep.join("boot.log"));
        let _ = std::fs::write(
            keep.join("what.txt"),
            format!(
                "cut {n}: aimed at {aimed}, {at:.3}s after its start; running at the cut: {}\n{e:#}\n",
                cut.op.as_deref().unwrap_or("(between operations)")
            ),
        );
        eprintln!(
            "powercut: cut {n} FAILED (kept in {}): {e:#}",
            keep.display()
        );
    }
    let _ = std::fs::remove_file(&disk);
    cut
}

/// Runs the whole power-cut test.
pub fn run(opts: &Options) -> Result<()> {
    crate::prereq::ensure("powercut", boot::BOOT_TOOLS)?;
    crate::prereq::ensure("powercut", TOOLS)?;
    let t_all = Instant::now();
    let dir = cmd::repo_root().join("target/powercut");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let s = prepare(&dir)?;
    let t_setup = t_all.elapsed().as_secs_f64();
    let control = control(&s)?;
    eprintln!("powercut: {control}");

    let refdisk = dir.join("reference.img");
    fresh_disk(&s, &refdisk)?;
    let tl = reference(&s, &refdisk)?;
    let print = check::reference(&s, &refdisk)?;
    let _ = std::fs::remove_file(&refdisk);
    eprintln!("powercut: reference run: {tl:?}");

    let seed = opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("powercut: seed {seed} (again: --seed {seed})");
    let mut rng = Rng::new(seed);
    let t_cuts = Instant::now();
    let mut cuts = Vec::new();
    for n in 1..=opts.cuts {
        let aimed = OPS[((n - 1) % OPS.len() as u64) as usize];
        let (a, b) = tl[aimed];
        let at = (b - a) * rng.unit();
        let boot_it = opts.boot_every > 0 && n % opts.boot_every == 0;
        let c = one_cut(&s, n, aimed, at, boot_it, &print);
        eprintln!(
            "powercut: cut {n}/{}: aimed at {aimed} +{at:.2}s: running {}; {}{}",
            opts.cuts,
            c.op.as_deref().unwrap_or("(between operations)"),
            if c.error.is_some() { "FAILED" } else { "ok" },
            c.booted
                .map(|id| format!("; booted deployment {id}"))
                .unwrap_or_default()
        );
        cuts.push(c);
    }
    let report = report(
        &tl,
        &cuts,
        seed,
        &control,
        t_setup,
        t_cuts.elapsed().as_secs_f64(),
        t_all.elapsed().as_secs_f64(),
    );
    std::fs::write(dir.join("report.md"), &report)?;
    eprintln!("{report}");
    let failed = cuts.iter().filter(|c| c.error.is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} cuts failed (kept under {})",
            cuts.len(),
            dir.display()
        );
    }
    Ok(())
}

fn report(
    tl: &Timeline,
    cuts: &[Cut],
    seed: u64,
    control: &str,
    setup: f64,
    cutting: f64,
    all: f64,
) -> String {
    let mut by_op: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for c in cuts {
        let e = by_op
            .entry(
                c.op.clone()
                    .unwrap_or_else(|| "(between operations)".into()),
            )
            .or_default();
        e.0 += 1;
        if c.error.is_some() {
            e.1 += 1;
        }
    }
    let failed = cuts.iter().filter(|c| c.error.is_some()).count();
    let booted = cuts.iter().filter(|c| c.booted.is_some()).count();
    let mut out = format!(
        "# power cuts\n\ncuts: {}, failures: {failed}, boots after a cut: {booted}; seed {seed}\n{control}\n\
         reference run (seconds from the workload's start): {}\n\
         time: setup {setup:.0}s, cuts {cutting:.0}s ({:.1}s a cut), total {all:.0}s\n\n\
         | running at the cut | cuts | failures |\n|---|---|---|\n",
        cuts.len(),
        tl.iter()
            .map(|(k, (a, b))| format!("{k} {a:.1}-{b:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        cutting / cuts.len().max(1) as f64
    );
    for (op, (n, f)) in &by_op {
        out.push_str(&format!("| {op} | {n} | {f} |\n"));
    }
    out.push_str(
        "\n| cut | aimed at | s after its start | running | result |\n|---|---|---|---|---|\n",
    );
    for c in cuts {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {} | {}{}{} |\n",
            c.n,
            c.aimed,
            c.at,
            c.op.as_deref().unwrap_or("-"),
            c.error.as_deref().map_or("ok".to_string(), |e| format!(
                "FAILED: {}",
                e.lines().next().unwrap_or("")
            )),
            c.booted
                .map(|id| format!("; booted {id}"))
                .unwrap_or_default(),
            if c.notes.is_empty() {
                String::new()
            } else {
                format!("; {}", c.notes.join("; "))
            }
        ));
    }
    out
}
