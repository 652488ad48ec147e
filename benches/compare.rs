//! Side-by-side benchmarks of reimage against the tools users run today.
//!
//! `cargo bench --bench compare -- [--quick] [--reps N]`
//!
//! Everything runs on one loop-mounted btrfs made for the run
//! ([`reimage::testing::ScratchFs`], unmounted and detached on drop), with the
//! release `reimage` binary, on the realistic test packages
//! (`cargo xtask testdata --realistic`). Every contender of a figure runs in
//! the same process, interleaved rep by rep (rep 1 of all, then rep 2 of all,
//! ...), so a noisy machine slows all of them alike; only the ratios count.
//!
//! Each run is timed twice: `done` when the command exits, and `durable`
//! after a `syncfs(2)` of the scratch filesystem that follows it. reimage
//! makes its output durable itself (fsync per package on import, one syncfs
//! before publishing a view); the baselines do not, so `durable` is the fair
//! comparison and the one the ratios use. Before every timed run the
//! filesystem is synced (untimed) so earlier writeback does not leak into it.
//!
//! Writes `target/bench/report.md`, `target/bench/report.json` and a log of
//! every command run (`target/bench/commands.log`). Exits non-zero, after
//! writing the report, if any figure could not be measured; exits non-zero at
//! once if a tool is missing.
use anyhow::{anyhow, bail, Context, Result};
use reimage::testing::{FsType, ScratchFs};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Flags for Debian's `rpm -i/-U --root`: no scripts, no dependency or
/// signature checks (the converted packages are unsigned and their
/// dependencies name Debian packages). `--ignorearch --ignoreos` are not
/// needed for x86_64/noarch packages on x86_64 but keep it working elsewhere.
const RPM_FLAGS: &[&str] = &[
    "--dbpath",
    "/var/lib/rpm",
    "--nodeps",
    "--noscripts",
    "--notriggers",
    "--nosignature",
    "--nodigest",
    "--ignorearch",
    "--ignoreos",
];

const TOOLS: &[&str] = &[
    "rpm",
    "rpm2cpio",
    "cpio",
    "zstd",
    "btrfs",
    "compsize",
    "cp",
    "xargs",
    "bash",
    "mkfs.btrfs",
    "losetup",
    "git",
];

#[derive(Clone, Copy, Debug)]
struct Sample {
    done: f64,
    durable: f64,
}

#[derive(Clone, Copy, Debug)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(v: &[f64]) -> Option<Stats> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: s[0],
        max: s[n - 1],
    })
}

type RunFn<'a> = Box<dyn FnMut(usize) -> Result<Sample> + 'a>;

/// One contender of a figure: a name, the command in words, and a closure
/// doing one (untimed setup, timed run, untimed cleanup) repetition.
struct Contender<'a> {
    key: &'static str,
    label: String,
    command: String,
    run: RunFn<'a>,
    samples: Vec<Sample>,
    error: Option<String>,
}

impl<'a> Contender<'a> {
    fn new(key: &'static str, label: &str, command: String, run: RunFn<'a>) -> Self {
        Contender {
            key,
            label: label.to_string(),
            command,
            run,
            samples: vec![],
            error: None,
        }
    }
    fn durable(&self) -> Option<Stats> {
        stats(&self.samples.iter().map(|s| s.durable).collect::<Vec<_>>())
    }
    fn done(&self) -> Option<Stats> {
        stats(&self.samples.iter().map(|s| s.done).collect::<Vec<_>>())
    }
}

/// A measured figure: contenders, plus which one the ratios divide by.
struct Section {
    id: &'static str,
    title: String,
    /// Bytes of uncompressed content processed (for MB/s), if meaningful.
    bytes: Option<u64>,
    reference: &'static str,
    contenders: Vec<FigureResult>,
}

struct FigureResult {
    key: &'static str,
    label: String,
    command: String,
    samples: Vec<Sample>,
    error: Option<String>,
}

impl FigureResult {
    fn durable(&self) -> Option<Stats> {
        stats(&self.samples.iter().map(|s| s.durable).collect::<Vec<_>>())
    }
    fn done(&self) -> Option<Stats> {
        stats(&self.samples.iter().map(|s| s.done).collect::<Vec<_>>())
    }
}

struct Ctx {
    bin: PathBuf,
    scratch: PathBuf,
    log: PathBuf,
}

impl Ctx {
    fn syncfs(&self) -> Result<()> {
        let f = File::open(&self.scratch)?;
        reimage::sys::syncfs(&f).map_err(|e| anyhow!("syncfs: {e}"))?;
        Ok(())
    }

    fn log_line(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Runs `cmd` to completion (untimed), output to the log; an error with
    /// the tail of its output if it fails. Returns stdout.
    fn run(&self, cmd: &mut Command) -> Result<String> {
        self.log_line(&format!("$ {cmd:?}"));
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.log_line(&stdout);
        self.log_line(&stderr);
        if !out.status.success() {
            bail!("{cmd:?} failed ({}): {}", out.status, tail(&stderr, 800));
        }
        Ok(stdout)
    }

    /// One timed run: syncfs (untimed), run, `done`, syncfs, `durable`.
    fn timed(&self, cmd: &mut Command) -> Result<Sample> {
        self.syncfs()?;
        self.log_line(&format!("$ (timed) {cmd:?}"));
        let err_path = self.log.with_extension("stderr");
        let err = File::create(&err_path)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let start = Instant::now();
        let status = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .status()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        let done = start.elapsed().as_secs_f64();
        let mut text = String::new();
        File::open(&err_path)?.read_to_string(&mut text)?;
        self.log_line(&text);
        if !status.success() {
            bail!("{cmd:?} failed ({status}): {}", tail(&text, 600));
        }
        self.syncfs()?;
        let durable = start.elapsed().as_secs_f64();
        Ok(Sample { done, durable })
    }

    fn reimage(&self, pool: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--pool").arg(pool).arg("-q");
        c
    }
}

fn tail(s: &str, n: usize) -> String {
    let t = s.trim_end();
    if t.len() <= n {
        return t.to_string();
    }
    let mut start = t.len() - n;
    while !t.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &t[start..])
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c").arg(format!("set -eo pipefail\n{script}"));
    c
}

fn q(p: &Path) -> String {
    let s = p.to_string_lossy();
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn qs(ps: &[PathBuf]) -> String {
    ps.iter().map(|p| q(p)).collect::<Vec<_>>().join(" ")
}

/// Runs every contender `reps` times, interleaved; a contender that fails
/// once is not run again and its error is kept.
fn measure(
    id: &'static str,
    title: &str,
    bytes: Option<u64>,
    reference: &'static str,
    mut cs: Vec<Contender<'_>>,
    reps: usize,
) -> Section {
    println!("\n== {title}");
    for rep in 0..reps {
        for c in cs.iter_mut() {
            if c.error.is_some() {
                continue;
            }
            match (c.run)(rep) {
                Ok(s) => {
                    println!(
                        "  rep {}/{reps}  {:<34} {:>7.3} s (done {:.3} s)",
                        rep + 1,
                        c.label,
                        s.durable,
                        s.done
                    );
                    c.samples.push(s);
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    println!("  rep {}/{reps}  {:<34} FAILED: {msg}", rep + 1, c.label);
                    c.error = Some(msg);
                }
            }
        }
    }
    for c in &cs {
        if let (Some(d), Some(n)) = (c.durable(), c.done()) {
            println!(
                "  {:<42} median {:.3} s [{:.3}..{:.3}] (done {:.3} s)",
                c.label, d.median, d.min, d.max, n.median
            );
        }
    }
    Section {
        id,
        title: title.to_string(),
        bytes,
        reference,
        contenders: cs
            .into_iter()
            .map(|c| FigureResult {
                key: c.key,
                label: c.label,
                command: c.command,
                samples: c.samples,
                error: c.error,
            })
            .collect(),
    }
}

/// Byte offset of the payload of an RPM: lead (96), signature header padded
/// to 8, main header.
fn payload_offset(rpm: &Path) -> Result<u64> {
    let mut f = File::open(rpm)?;
    let mut buf = vec![0u8; 96 + 16];
    f.read_exact(&mut buf)?;
    let header_len = |h: &[u8]| -> Result<u64> {
        if h[0..3] != [0x8e, 0xad, 0xe8] {
            bail!("{}: no header magic", rpm.display());
        }
        let n = u32::from_be_bytes(h[8..12].try_into()?) as u64;
        let size = u32::from_be_bytes(h[12..16].try_into()?) as u64;
        Ok(16 + 16 * n + size)
    };
    let sig = header_len(&buf[96..112])?;
    let main_at = 96 + sig.div_ceil(8) * 8;
    let mut h = [0u8; 16];
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(main_at))?;
    f.read_exact(&mut h)?;
    Ok(main_at + header_len(&h)?)
}

/// Copies the (zstd) payload of each RPM to `dir/NAME.cpio.zst`.
fn extract_payloads(rpms: &[PathBuf], dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut out = vec![];
    for rpm in rpms {
        let off = payload_offset(rpm)?;
        let data = fs::read(rpm)?;
        let payload = &data[off as usize..];
        if !payload.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            bail!("{}: payload is not zstd", rpm.display());
        }
        let stem = rpm.file_stem().unwrap_or_default().to_string_lossy();
        let p = dir.join(format!("{stem}.cpio.zst"));
        fs::write(&p, payload)?;
        out.push(p);
    }
    Ok(out)
}

fn rpms_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    v.sort();
    Ok(v)
}

/// `NAME` of `NAME-VERSION-RELEASE.ARCH.rpm`.
fn rpm_name(p: &Path) -> String {
    let f = p.file_name().unwrap_or_default().to_string_lossy();
    let mut parts: Vec<&str> = f.rsplitn(3, '-').collect();
    parts.pop().unwrap_or_default().to_string()
}

fn write_list(path: &Path, rpms: &[PathBuf]) -> Result<()> {
    let mut s = String::new();
    for r in rpms {
        writeln!(s, "{}", r.display())?;
    }
    fs::write(path, s)?;
    Ok(())
}

fn machine() -> Value {
    let cmd = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let os = fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    json!({
        "nproc": cmd("nproc", &[]),
        "kernel": cmd("uname", &["-r"]),
        "os": os,
        "cpu": cpu,
        "memory": mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        "date": cmd("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "rpm": cmd("rpm", &["--version"]),
        "zstd": cmd("zstd", &["--version"]),
        "btrfs_progs": cmd("btrfs", &["--version"]),
    })
}

/// `btrfs filesystem df -b`: bytes used by metadata (one copy; DUP stores two).
fn metadata_used(ctx: &Ctx) -> Result<u64> {
    ctx.syncfs()?;
    let out = ctx.run(
        Command::new("btrfs")
            .args(["filesystem", "df", "-b"])
            .arg(&ctx.scratch),
    )?;
    for l in out.lines() {
        if l.starts_with("Metadata") {
            if let Some(u) = l.split("used=").nth(1) {
                return Ok(u.trim().parse()?);
            }
        }
    }
    bail!("no Metadata line in btrfs filesystem df: {out}")
}

/// `btrfs filesystem du -s --raw PATH`: (total, exclusive, set shared).
fn btrfs_du(ctx: &Ctx, p: &Path) -> Result<(u64, u64, u64)> {
    let out = ctx.run(
        Command::new("btrfs")
            .args(["filesystem", "du", "-s", "--raw"])
            .arg(p),
    )?;
    let l = out
        .lines()
        .nth(1)
        .ok_or_else(|| anyhow!("btrfs filesystem du printed {out}"))?;
    let n: Vec<u64> = l
        .split_whitespace()
        .take(3)
        .map(|x| x.parse())
        .collect::<Result<_, _>>()?;
    Ok((n[0], n[1], n[2]))
}

/// `compsize -b PATHS`: disk usage (each extent once) and referenced bytes.
fn compsize(ctx: &Ctx, ps: &[PathBuf]) -> Result<(u64, u64)> {
    let out = ctx.run(Command::new("compsize").arg("-b").args(ps))?;
    let l = out
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .ok_or_else(|| anyhow!("compsize printed {out}"))?;
    let n: Vec<&str> = l.split_whitespace().collect();
    Ok((n[2].parse()?, n[4].parse()?))
}

struct Opts {
    quick: bool,
    reps: usize,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        quick: false,
        reps: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--reps" => {
                o.reps = args
                    .next()
                    .ok_or_else(|| anyhow!("--reps needs a number"))?
                    .parse()?
            }
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                println!("cargo bench --bench compare -- [--quick] [--reps N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if o.reps == 0 {
        o.reps = if o.quick { 3 } else { 5 };
    }
    Ok(o)
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn find_binary() -> Result<PathBuf> {
    // cargo builds the bin targets (bench profile = release) for benches.
    if let Some(p) = option_env!("CARGO_BIN_EXE_reimage") {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    let p = target_dir().join("release/reimage");
    if !p.exists() {
        println!("building the release binary: cargo build --release --bin reimage");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "reimage"])
            .current_dir(workspace())
            .status()?;
        if !st.success() || !p.exists() {
            bail!("cargo build --release --bin reimage failed");
        }
    }
    Ok(p)
}

fn check_tools() -> Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            !std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
                .unwrap_or(false)
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing tools: {} (install them: apt-get install rpm rpm2cpio cpio zstd btrfs-progs btrfs-compsize)",
            missing.join(", ")
        );
    }
    if !rustix::process::geteuid().is_root() {
        bail!("must run as root (loop-mounted btrfs, subvolumes)");
    }
    Ok(())
}

fn main() {
    match real_main() {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("\nSOME FIGURES COULD NOT BE MEASURED (see above and the report)");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("benches/compare: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<bool> {
    let t0 = Instant::now();
    let opts = parse_args()?;
    check_tools()?;
    let bin = find_binary()?;
    let out_dir = target_dir().join("bench");
    fs::create_dir_all(&out_dir)?;
    let data = target_dir().join("testdata");
    if !data.join("realistic/v1").is_dir() || !data.join("edge").is_dir() {
        println!("generating test data: cargo xtask testdata --realistic");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["xtask", "testdata", "--realistic"])
            .current_dir(workspace())
            .status()?;
        if !st.success() {
            bail!("cargo xtask testdata --realistic failed");
        }
    }
    // filesystem-*.rpm conflicts with base-files on /var/lock: left out.
    let not_fs = |v: Vec<PathBuf>| -> Vec<PathBuf> {
        v.into_iter()
            .filter(|p| rpm_name(p) != "filesystem")
            .collect()
    };
    let v1 = not_fs(rpms_in(&data.join("realistic/v1"))?);
    let v2 = not_fs(rpms_in(&data.join("realistic/v2"))?);
    let e10 = data.join("edge/edge-update-1.0-1.x86_64.rpm");
    let e11 = data.join("edge/edge-update-1.1-1.x86_64.rpm");
    for p in [&e10, &e11] {
        if !p.is_file() {
            bail!("{} missing (cargo xtask testdata)", p.display());
        }
    }
    if v1.is_empty() || v2.is_empty() {
        bail!("no packages in {}/realistic/v1 or v2", data.display());
    }
    let changed: Vec<PathBuf> = v2
        .iter()
        .filter(|p| !v1.iter().any(|o| o.file_name() == p.file_name()))
        .cloned()
        .collect();
    let up10: Vec<PathBuf> = changed.iter().take(10).cloned().collect();
    let list_u10: Vec<PathBuf> = v1
        .iter()
        .map(|p| {
            up10.iter()
                .find(|n| rpm_name(n) == rpm_name(p))
                .unwrap_or(p)
                .clone()
        })
        .collect();
    if list_u10.iter().filter(|p| up10.contains(p)).count() != up10.len() {
        bail!("could not pair the 10 updated packages with v1 packages by name");
    }

    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args([
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "src",
            "sysimage",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .current_dir(workspace())
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let machine = machine();
    println!(
        "reimage compare: commit {commit}{}, {} reps{}, binary {}",
        if dirty { " (src dirty)" } else { "" },
        opts.reps,
        if opts.quick { " (--quick)" } else { "" },
        bin.display()
    );
    println!("machine: {machine}");

    // Warm the page cache with the inputs: every contender reads them hot.
    for p in v1.iter().chain(&v2).chain([&e10, &e11]) {
        fs::read(p)?;
    }

    let fs_guard = ScratchFs::new(FsType::Btrfs, 12 << 30)?;
    let s = fs_guard.path().to_path_buf();
    let log = out_dir.join("commands.log");
    let _ = fs::remove_file(&log);
    let ctx = Ctx {
        bin: bin.clone(),
        scratch: s.clone(),
        log,
    };
    println!(
        "scratch btrfs: {} on {}",
        s.display(),
        fs_guard.device().display()
    );

    // Helper scripts: extract one RPM into its own subdirectory / into a root.
    let scripts = s.join("bin");
    fs::create_dir_all(&scripts)?;
    let x_sub = scripts.join("x-sub.sh");
    fs::write(
        &x_sub,
        "#!/bin/bash\nset -e\nd=\"$1/$(basename \"$2\" .rpm)\"\nmkdir -p \"$d\"\ncd \"$d\"\nrpm2cpio \"$2\" | cpio -idm --quiet\n",
    )?;
    let x_into = scripts.join("x-into.sh");
    fs::write(
        &x_into,
        "#!/bin/bash\nset -e\nmkdir -p \"$1\"\ncd \"$1\"\nrpm2cpio \"$2\" | cpio -idm --quiet\n",
    )?;
    ctx.run(Command::new("chmod").arg("+x").arg(&x_sub).arg(&x_into))?;
    let lists = s.join("lists");
    fs::create_dir_all(&lists)?;
    let rpm_list0 = lists.join("v1.0list");
    let nul_list = |path: &Path, v: &[PathBuf]| -> Result<()> {
        let mut b = vec![];
        for p in v {
            b.extend_from_slice(p.as_os_str().as_encoded_bytes());
            b.push(0);
        }
        fs::write(path, b)?;
        Ok(())
    };
    nul_list(&rpm_list0, &v1)?;
    let rm_rf = |p: &Path| -> Result<()> {
        if p.exists() {
            fs::remove_dir_all(p).with_context(|| format!("rm -rf {}", p.display()))?;
        }
        Ok(())
    };
    let subvol_delete = |p: &Path| -> Result<()> {
        ctx.run(Command::new("btrfs").args(["subvolume", "delete"]).arg(p))?;
        Ok(())
    };

    let mut sections = vec![];
    let mut notes: Vec<String> = vec![
        "rpm2cpio exits 1 on every test package although its output is complete: the packages carry no \
         PAYLOADSIZE/LONGARCHIVESIZE tag, which rpm 4.18's rpm2cpio compares the copied byte count against. \
         The cpio baselines therefore check cpio's exit status (truncated input makes cpio fail), not rpm2cpio's."
            .into(),
        "Debian's rpm installs the converted packages with the flags shown; it prints 'RPM should not be used \
         directly' and 'group staff/shadow does not exist - using root'. --ignorearch --ignoreos are not needed \
         for x86_64/noarch packages on x86_64."
            .into(),
    ];

    // ---------------------------------------------------------------- import
    // Content size: what reimage stores (regular files' bytes, a hardlink set once).
    let probe = s.join("probe");
    ctx.run(ctx.reimage(&probe).arg("init"))?;
    let j: Value = serde_json::from_str(
        &ctx.run(
            Command::new(&bin)
                .arg("--pool")
                .arg(&probe)
                .arg("--json")
                .arg("import")
                .args(&v1),
        )?,
    )?;
    let content: u64 = j["packages"]
        .as_array()
        .ok_or_else(|| anyhow!("import --json has no packages array"))?
        .iter()
        .map(|p| p["content_bytes"].as_u64().unwrap_or(0))
        .sum();
    let files: u64 = j["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["files"].as_u64().unwrap_or(0))
        .sum();
    rm_rf(&probe)?;
    let compressed: u64 = v1
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "realistic v1: {} packages, {} files, {:.1} MB content, {:.1} MB as .rpm",
        v1.len(),
        files,
        content as f64 / 1e6,
        compressed as f64 / 1e6
    );
    let payloads = extract_payloads(&v1, &s.join("payloads"))?;
    let pay_list = lists.join("payloads.0list");
    nul_list(&pay_list, &payloads)?;
    let imp = s.join("imp");
    let jobs = machine["nproc"].as_str().unwrap_or("2").to_string();
    let mut cs: Vec<Contender> = vec![];
    cs.push(Contender::new(
        "reimage_import",
        &format!("reimage import (--jobs {jobs})"),
        "reimage --pool P import realistic/v1/*.rpm (fresh pool)".into(),
        Box::new(|rep| {
            let pool = imp.join(format!("reimage-{rep}"));
            ctx.run(ctx.reimage(&pool).arg("init"))?;
            let r = ctx.timed(ctx.reimage(&pool).arg("import").args(&v1));
            rm_rf(&pool)?;
            r
        }),
    ));
    cs.push(Contender::new(
        "reimage_import_j1",
        "reimage import --jobs 1",
        "reimage --pool P import --jobs 1 realistic/v1/*.rpm (fresh pool)".into(),
        Box::new(|rep| {
            let pool = imp.join(format!("reimage1-{rep}"));
            ctx.run(ctx.reimage(&pool).arg("init"))?;
            let r = ctx.timed(ctx.reimage(&pool).args(["import", "--jobs", "1"]).args(&v1));
            rm_rf(&pool)?;
            r
        }),
    ));
    for (key, label, par) in [
        ("cpio_p1", "rpm2cpio | cpio -idm (serial)", 1),
        ("cpio_p2", "rpm2cpio | cpio -idm (xargs -P2)", 2),
    ] {
        let (imp, x_sub, rpm_list0, ctx) = (&imp, &x_sub, &rpm_list0, &ctx);
        cs.push(Contender::new(
            key,
            label,
            format!("xargs -0 -n1 -P{par} x-sub.sh OUT < list  # x-sub.sh: mkdir OUT/PKG; cd; rpm2cpio RPM | cpio -idm"),
            Box::new(move |rep| {
                let out = imp.join(format!("{key}-{rep}"));
                fs::create_dir_all(&out)?;
                let r = ctx.timed(&mut sh(&format!(
                    "xargs -0 -n1 -P{par} {} {} < {}",
                    q(x_sub),
                    q(&out),
                    q(rpm_list0)
                )));
                rm_rf(&out)?;
                r
            }),
        ));
    }
    for (key, label, par) in [
        ("zstd_p1", "zstd -d of the payloads (serial)", 1),
        ("zstd_p2", "zstd -d of the payloads (xargs -P2)", 2),
    ] {
        let (imp, pay_list, ctx) = (&imp, &pay_list, &ctx);
        cs.push(Contender::new(
            key,
            label,
            format!("xargs -0 -n1 -P{par} zstd -d -q --output-dir-flat OUT < payloads  # cpio archives, not extracted"),
            Box::new(move |rep| {
                let out = imp.join(format!("{key}-{rep}"));
                fs::create_dir_all(&out)?;
                let r = ctx.timed(&mut sh(&format!(
                    "xargs -0 -n1 -P{par} zstd -d -q --output-dir-flat {} < {}",
                    q(&out),
                    q(pay_list)
                )));
                rm_rf(&out)?;
                r
            }),
        ));
    }
    sections.push(measure(
        "import",
        &format!(
            "import throughput: realistic v1, {} packages, {:.1} MB of content",
            v1.len(),
            content as f64 / 1e6
        ),
        Some(content),
        "reimage_import",
        cs,
        opts.reps,
    ));
    rm_rf(&imp)?;

    // --------------------------------------------------------------- compose
    let pool = s.join("pool");
    ctx.run(ctx.reimage(&pool).arg("init"))?;
    ctx.run(
        ctx.reimage(&pool)
            .arg("import")
            .args(&v1)
            .args(&v2)
            .arg(&e10)
            .arg(&e11),
    )?;
    let l_v1 = lists.join("v1.list");
    let l_v2 = lists.join("v2.list");
    let l_u10 = lists.join("u10.list");
    let l_e0 = lists.join("e0.list");
    let l_e1 = lists.join("e1.list");
    write_list(&l_v1, &v1)?;
    write_list(&l_v2, &v2)?;
    write_list(&l_u10, &list_u10)?;
    let mut e0 = v1.clone();
    e0.push(e10.clone());
    let mut e1 = v1.clone();
    e1.push(e11.clone());
    write_list(&l_e0, &e0)?;
    write_list(&l_e1, &e1)?;
    ctx.run(
        ctx.reimage(&pool)
            .args(["compose", "base-v1", "--list"])
            .arg(&l_v1),
    )?;
    ctx.run(
        ctx.reimage(&pool)
            .args(["compose", "base-e0", "--list"])
            .arg(&l_e0),
    )?;
    let base_v1 = pool.join("views/base-v1");
    let cmp = s.join("cmp");
    fs::create_dir_all(&cmp)?;
    let rm_view = |name: &str| -> Result<()> {
        ctx.run(ctx.reimage(&pool).args(["rm-view", name]))?;
        Ok(())
    };
    let mut cs: Vec<Contender> = vec![];
    cs.push(Contender::new(
        "reimage_compose",
        "reimage compose (full)",
        "reimage compose NAME --list v1.list".into(),
        Box::new(|rep| {
            let name = format!("full-{rep}");
            let r = ctx.timed(
                ctx.reimage(&pool)
                    .args(["compose", &name, "--list"])
                    .arg(&l_v1),
            );
            rm_view(&name)?;
            r
        }),
    ));
    cs.push(Contender::new(
        "rpm_i",
        "rpm -i --root",
        format!("rpm -i --root R {} v1/*.rpm", RPM_FLAGS.join(" ")),
        Box::new(|rep| {
            let root = cmp.join(format!("rpm-{rep}"));
            let r = ctx.timed(
                Command::new("rpm")
                    .arg("-i")
                    .arg("--root")
                    .arg(&root)
                    .args(RPM_FLAGS)
                    .args(&v1),
            );
            rm_rf(&root)?;
            r
        }),
    ));
    cs.push(Contender::new(
        "cpio_root",
        "rpm2cpio | cpio -idm (one root)",
        "for f in v1/*.rpm; do rpm2cpio $f | (cd R && cpio -idm); done".into(),
        Box::new(|rep| {
            let root = cmp.join(format!("cpio-{rep}"));
            let r = ctx.timed(&mut sh(&format!(
                "xargs -0 -n1 -P1 {} {} < {}",
                q(&x_into),
                q(&root),
                q(&rpm_list0)
            )));
            rm_rf(&root)?;
            r
        }),
    ));
    cs.push(Contender::new(
        "cp_reflink",
        "cp -a --reflink=always of the view",
        "cp -a --reflink=always POOL/views/base-v1 DIR".into(),
        Box::new(|rep| {
            let dst = cmp.join(format!("cp-{rep}"));
            let r = ctx.timed(
                Command::new("cp")
                    .args(["-a", "--reflink=always"])
                    .arg(&base_v1)
                    .arg(&dst),
            );
            rm_rf(&dst)?;
            r
        }),
    ));
    cs.push(Contender::new(
        "snapshot",
        "btrfs subvolume snapshot of the view",
        "btrfs subvolume snapshot POOL/views/base-v1 DIR".into(),
        Box::new(|rep| {
            let dst = cmp.join(format!("snap-{rep}"));
            let r = ctx.timed(
                Command::new("btrfs")
                    .args(["subvolume", "snapshot"])
                    .arg(&base_v1)
                    .arg(&dst),
            );
            subvol_delete(&dst)?;
            r
        }),
    ));
    sections.push(measure(
        "compose",
        &format!(
            "full compose: realistic v1, {} packages, {files} files",
            v1.len()
        ),
        Some(content),
        "reimage_compose",
        cs,
        opts.reps,
    ));

    // ----------------------------------------------------------- incremental
    // rpm roots as subvolumes for the snapper way (snapshot + rpm -U).
    let rr_v1 = s.join("rr-v1");
    let rr_e0 = s.join("rr-e0");
    let mut snapper_ok = true;
    for (root, pkgs) in [(&rr_v1, &v1), (&rr_e0, &e0)] {
        ctx.run(
            Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(root),
        )?;
        if let Err(e) = ctx.run(
            Command::new("rpm")
                .arg("-i")
                .arg("--root")
                .arg(root)
                .args(RPM_FLAGS)
                .args(pkgs),
        ) {
            notes.push(format!(
                "snapper baseline: rpm -i of the base root failed: {e:#}"
            ));
            snapper_ok = false;
        }
    }
    let updates: [(&str, &str, &Path, &PathBuf, Vec<PathBuf>); 3] = [
        ("1", "base-e0", &rr_e0, &l_e1, vec![e11.clone()]),
        ("10", "base-v1", &rr_v1, &l_u10, up10.clone()),
        ("v2", "base-v1", &rr_v1, &l_v2, changed.clone()),
    ];
    let mut cs: Vec<Contender> = vec![];
    for (tag, from, rroot, list, pkgs) in updates.iter() {
        let n = pkgs.len();
        let key_inc: &'static str = match *tag {
            "1" => "inc_1",
            "10" => "inc_10",
            _ => "inc_v2",
        };
        let key_full: &'static str = match *tag {
            "1" => "full_1",
            "10" => "full_10",
            _ => "full_v2",
        };
        let key_snap: &'static str = match *tag {
            "1" => "snapper_1",
            "10" => "snapper_10",
            _ => "snapper_v2",
        };
        let (pool, ctx, rm_view) = (&pool, &ctx, &rm_view);
        cs.push(Contender::new(
            key_inc,
            &format!("compose --from ({n}-package update)"),
            format!("reimage compose NAME --from {from} --list LIST  # {n} packages replaced"),
            Box::new(move |rep| {
                let name = format!("inc{tag}-{rep}");
                let r = ctx.timed(
                    ctx.reimage(pool)
                        .args(["compose", &name, "--from", from, "--list"])
                        .arg(list),
                );
                rm_view(&name)?;
                r
            }),
        ));
        cs.push(Contender::new(
            key_full,
            &format!("compose full (same list as {n}-update)"),
            "reimage compose NAME --list LIST".into(),
            Box::new(move |rep| {
                let name = format!("full{tag}-{rep}");
                let r = ctx.timed(
                    ctx.reimage(pool)
                        .args(["compose", &name, "--list"])
                        .arg(list),
                );
                rm_view(&name)?;
                r
            }),
        ));
        if snapper_ok {
            let (cmp, subvol_delete) = (&cmp, &subvol_delete);
            let rroot = rroot.to_path_buf();
            let pkgs = pkgs.clone();
            cs.push(Contender::new(
                key_snap,
                &format!("snapshot + rpm -U ({n} packages)"),
                format!(
                    "btrfs subvolume snapshot ROOT S && rpm -U --root S {} PKGS",
                    RPM_FLAGS.join(" ")
                ),
                Box::new(move |rep| {
                    let snap = cmp.join(format!("snapper{tag}-{rep}"));
                    let r = ctx.timed(&mut sh(&format!(
                        "btrfs -q subvolume snapshot {} {s}\nrpm -U --root {s} {} {}",
                        q(&rroot),
                        RPM_FLAGS.join(" "),
                        qs(&pkgs),
                        s = q(&snap),
                    )));
                    subvol_delete(&snap)?;
                    r
                }),
            ));
        }
    }
    sections.push(measure(
        "incremental",
        &format!(
            "incremental compose: 1 (edge-update 1.0->1.1), 10 and {} (v1->v2) package updates",
            changed.len()
        ),
        None,
        "",
        cs,
        opts.reps,
    ));

    // ------------------------------------------------------------------ disk
    println!("\n== disk: 5 views of realistic v1 vs the pool");
    let disk = (|| -> Result<Value> {
        let n = 5;
        // Let the cleaner finish with views deleted earlier first.
        ctx.run(
            Command::new("btrfs")
                .args(["subvolume", "sync"])
                .arg(&ctx.scratch),
        )?;
        let meta0 = metadata_used(&ctx)?;
        let mut views = vec![];
        for i in 0..n {
            let name = format!("disk-{i}");
            ctx.run(
                ctx.reimage(&pool)
                    .args(["compose", &name, "--list"])
                    .arg(&l_v1),
            )?;
            views.push(pool.join("views").join(&name));
        }
        let meta1 = metadata_used(&ctx)?;
        let mut per_view = vec![];
        for v in &views {
            let (t, e, sh) = btrfs_du(&ctx, v)?;
            per_view.push(json!({"view": v.file_name().map(|f| f.to_string_lossy().into_owned()), "total": t, "exclusive": e, "set_shared": sh}));
        }
        let (pt, pe, ps) = btrfs_du(&ctx, &pool.join("packages"))?;
        let (views_disk, views_ref) = compsize(&ctx, &views)?;
        let (pool_disk, pool_ref) = compsize(&ctx, &[pool.join("packages")])?;
        // The same tree as plain files (one rpm -i root) and as 5 snapshots of it.
        let (root_t, _, _) = btrfs_du(&ctx, &rr_v1)?;
        let meta2 = metadata_used(&ctx)?;
        let mut snaps = vec![];
        for i in 0..n {
            let p = cmp.join(format!("disk-snap-{i}"));
            ctx.run(
                Command::new("btrfs")
                    .args(["subvolume", "snapshot"])
                    .arg(&rr_v1)
                    .arg(&p),
            )?;
            snaps.push(p);
        }
        let meta3 = metadata_used(&ctx)?;
        // Exclusive bytes per subvolume, metadata included: qgroups.
        ctx.run(
            Command::new("btrfs")
                .args(["quota", "enable"])
                .arg(&ctx.scratch),
        )?;
        ctx.run(
            Command::new("btrfs")
                .args(["quota", "rescan", "-w"])
                .arg(&ctx.scratch),
        )?;
        let qg = ctx.run(
            Command::new("btrfs")
                .args(["qgroup", "show", "--raw"])
                .arg(&ctx.scratch),
        )?;
        let subvol_id = |p: &Path| -> Result<String> {
            let out = ctx.run(Command::new("btrfs").args(["subvolume", "show"]).arg(p))?;
            out.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("Subvolume ID:")
                        .map(|v| v.trim().to_string())
                })
                .ok_or_else(|| anyhow!("no Subvolume ID for {}", p.display()))
        };
        let qexcl = |p: &Path| -> Result<(u64, u64)> {
            let id = format!("0/{}", subvol_id(p)?);
            let l = qg
                .lines()
                .find(|l| l.split_whitespace().next() == Some(id.as_str()))
                .ok_or_else(|| anyhow!("qgroup {id} not shown"))?;
            let n: Vec<&str> = l.split_whitespace().collect();
            Ok((n[1].parse()?, n[2].parse()?))
        };
        let mut q_views = vec![];
        for v in &views {
            let (r, e) = qexcl(v)?;
            q_views.push(json!({"view": v.file_name().map(|f| f.to_string_lossy().into_owned()), "referenced": r, "exclusive": e}));
        }
        let mut q_snaps = vec![];
        for p in &snaps {
            let (r, e) = qexcl(p)?;
            q_snaps.push(json!({"referenced": r, "exclusive": e}));
        }
        ctx.run(
            Command::new("btrfs")
                .args(["quota", "disable"])
                .arg(&ctx.scratch),
        )?;
        for p in &snaps {
            subvol_delete(p)?;
        }
        let v = json!({
            "views": n,
            "per_view": per_view,
            "pool_packages": {"total": pt, "exclusive": pe, "set_shared": ps},
            "compsize_views": {"disk": views_disk, "referenced": views_ref},
            "compsize_pool": {"disk": pool_disk, "referenced": pool_ref},
            "metadata_per_view": (meta1.saturating_sub(meta0)) / n as u64,
            "plain_root_total": root_t,
            "n_plain_roots": root_t * n as u64,
            "metadata_per_snapshot": (meta3.saturating_sub(meta2)) / n as u64,
            "qgroup_views": q_views,
            "qgroup_snapshots": q_snaps,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(v)
    })();
    let disk = match disk {
        Ok(v) => v,
        Err(e) => {
            println!("  disk: FAILED: {e:#}");
            json!({"error": format!("{e:#}")})
        }
    };

    // ---------------------------------------------------------------- report
    let elapsed = t0.elapsed().as_secs_f64();
    let ok = sections
        .iter()
        .all(|s| s.contenders.iter().all(|c| c.error.is_none()))
        && disk.get("error").is_none();
    let (md, js) = report(
        &opts,
        &machine,
        &commit,
        dirty,
        &sections,
        &disk,
        &notes,
        elapsed,
        (v1.len(), files, content, compressed, changed.len()),
    )?;
    fs::write(out_dir.join("report.md"), &md)?;
    fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&js)?,
    )?;
    println!("\n{md}");
    println!(
        "wrote {} and report.json ({elapsed:.0} s)",
        out_dir.join("report.md").display()
    );
    drop(fs_guard);
    Ok(ok)
}

fn find<'a>(sections: &'a [Section], key: &str) -> Option<&'a FigureResult> {
    sections
        .iter()
        .flat_map(|s| s.contenders.iter())
        .find(|c| c.key == key && c.error.is_none())
}

fn med(sections: &[Section], key: &str) -> Option<f64> {
    find(sections, key)
        .and_then(|c| c.durable())
        .map(|s| s.median)
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The contender a row's ratio divides by: the section's reference, or for
/// the incremental section the full compose of the same list.
fn reference_of(sec: &Section, key: &str) -> Option<String> {
    if !sec.reference.is_empty() {
        return Some(sec.reference.to_string());
    }
    let suffix = key.split_once('_').map(|(_, s)| s)?;
    Some(format!("full_{suffix}"))
}

#[allow(clippy::too_many_arguments)]
fn report(
    opts: &Opts,
    machine: &Value,
    commit: &str,
    dirty: bool,
    sections: &[Section],
    disk: &Value,
    notes: &[String],
    elapsed: f64,
    (npkg, files, content, compressed, nchanged): (usize, u64, u64, u64, usize),
) -> Result<(String, Value)> {
    let mut md = String::new();
    writeln!(md, "# reimage compare: report\n")?;
    writeln!(
        md,
        "- commit `{commit}`{}; {} reps{}; run took {elapsed:.0} s",
        if dirty {
            " (with uncommitted changes in src/)"
        } else {
            ""
        },
        opts.reps,
        if opts.quick { " (`--quick`)" } else { "" }
    )?;
    writeln!(
        md,
        "- machine: {} cores ({}), {}, kernel {}, {}, {}",
        machine["nproc"].as_str().unwrap_or("?"),
        machine["cpu"].as_str().unwrap_or("?"),
        machine["memory"].as_str().unwrap_or("?"),
        machine["kernel"].as_str().unwrap_or("?"),
        machine["os"].as_str().unwrap_or("?"),
        machine["date"].as_str().unwrap_or("?"),
    )?;
    writeln!(
        md,
        "- input: realistic v1, {npkg} packages (filesystem-* left out), {files} files, {:.1} MB of content, {:.1} MB as .rpm (zstd); v2 changes {nchanged} packages",
        content as f64 / 1e6,
        compressed as f64 / 1e6
    )?;
    writeln!(
        md,
        "- times in seconds, `durable` = command plus a syncfs of the filesystem (what ratios use), `done` = command alone; median [min..max]\n"
    )?;
    let mut jsections = vec![];
    for sec in sections {
        writeln!(md, "## {}\n", sec.title)?;

        let mb = sec.bytes.is_some() && sec.id == "import";
        writeln!(
            md,
            "| contender | durable median | min..max | done median |{} x {} |",
            if mb { " MB/s |" } else { "" },
            if sec.reference.is_empty() {
                "full compose of the same list"
            } else {
                "reimage time"
            }
        )?;
        writeln!(
            md,
            "|---|---:|---:|---:|{}---:|",
            if mb { "---:|" } else { "" }
        )?;
        let mut jcs = vec![];
        for c in &sec.contenders {
            let d = c.durable();
            let n = c.done();
            let refkey = reference_of(sec, c.key);
            let rel = match (refkey.as_deref().and_then(|k| med(sections, k)), d) {
                (Some(r), Some(d)) => Some(d.median / r),
                _ => None,
            };
            match (d, n) {
                (Some(d), Some(n)) => {
                    let mbs = sec.bytes.map(|b| b as f64 / 1e6 / d.median);
                    writeln!(
                        md,
                        "| {} | {:.3} | {:.3}..{:.3} | {:.3} |{} {} |",
                        esc(&c.label),
                        d.median,
                        d.min,
                        d.max,
                        n.median,
                        if mb {
                            format!(" {:.0} |", mbs.unwrap_or(0.0))
                        } else {
                            String::new()
                        },
                        rel.map(|r| format!("{r:.2}x"))
                            .unwrap_or_else(|| "-".into())
                    )?;
                }
                _ => {
                    writeln!(
                        md,
                        "| {} | NOT MEASURED: {} | | |{} |",
                        esc(&c.label),
                        c.error
                            .as_deref()
                            .unwrap_or("no samples")
                            .replace('|', "/")
                            .replace('\n', " "),
                        if mb { " |" } else { "" }
                    )?;
                }
            }
            let st = |s: Option<Stats>| {
                s.map(|s| json!({"median": s.median, "min": s.min, "max": s.max}))
            };
            jcs.push(json!({
                "key": c.key,
                "label": c.label,
                "command": c.command,
                "durable_s": st(d),
                "done_s": st(n),
                "samples": c.samples.iter().map(|s| json!({"done": s.done, "durable": s.durable})).collect::<Vec<_>>(),
                "mb_per_s": match (sec.bytes, d) { (Some(b), Some(d)) if sec.id == "import" => Some(b as f64 / 1e6 / d.median), _ => None },
                "time_vs_reference": rel,
                "error": c.error,
            }));
        }
        writeln!(md)?;
        writeln!(md, "Commands:\n")?;
        for c in &sec.contenders {
            writeln!(md, "- {}: `{}`", esc(&c.label), c.command)?;
        }
        writeln!(md)?;
        jsections.push(json!({"id": sec.id, "title": sec.title, "reference": sec.reference, "contenders": jcs}));
    }

    // Targets from issues 3 and 4.
    let ratio = |a: &str, b: &str| -> Option<f64> { Some(med(sections, a)? / med(sections, b)?) };
    let mut targets = vec![];
    let mut t = |name: &str, value: Option<f64>, goal: &str, pass: Option<bool>| {
        targets.push(json!({"target": name, "value": value, "goal": goal, "met": pass}));
    };
    let r = ratio("cpio_p2", "reimage_import");
    t(
        "import throughput vs rpm2cpio|cpio, both with 2 jobs (issue 3)",
        r,
        ">= 0.7x",
        r.map(|r| r >= 0.7),
    );
    let r = ratio("cpio_p1", "reimage_import");
    t(
        "import throughput vs rpm2cpio|cpio serial",
        r,
        "(info)",
        None,
    );
    let r = ratio("zstd_p2", "reimage_import");
    t(
        "import throughput vs zstd -d of payloads, 2 jobs",
        r,
        "(info)",
        None,
    );
    let r = ratio("rpm_i", "reimage_compose");
    t(
        "full compose speed-up over rpm -i --root (issue 4)",
        r,
        ">= 10x",
        r.map(|r| r >= 10.0),
    );
    let r = ratio("reimage_compose", "cp_reflink");
    t(
        "full compose time / cp -a --reflink (issue 4)",
        r,
        "<= 2x (aim < 1x)",
        r.map(|r| r <= 2.0),
    );
    let r = ratio("inc_10", "full_10");
    t(
        "10-package --from / full compose (issue 4)",
        r,
        "< 0.05",
        r.map(|r| r < 0.05),
    );
    let r = ratio("inc_1", "full_1");
    t("1-package --from / full compose", r, "(info)", None);
    let r = ratio("inc_v2", "full_v2");
    t(
        &format!("{nchanged}-package --from / full compose"),
        r,
        "(info)",
        None,
    );
    let r = ratio("snapper_v2", "inc_v2");
    t(
        &format!("{nchanged}-package --from speed-up over snapshot + rpm -U (issue 4 asks >= 20x for 54 packages)"),
        r,
        ">= 20x",
        r.map(|r| r >= 20.0),
    );
    let r = ratio("snapper_10", "inc_10");
    t(
        "10-package --from speed-up over snapshot + rpm -U",
        r,
        "(info)",
        None,
    );
    writeln!(md, "## Targets (issues 3 and 4)\n")?;
    writeln!(md, "| target | measured | goal | met |")?;
    writeln!(md, "|---|---:|---|---|")?;
    for t in &targets {
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            esc(t["target"].as_str().unwrap_or("")),
            t["value"]
                .as_f64()
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "not measured".into()),
            t["goal"].as_str().unwrap_or(""),
            match t["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "-",
            }
        )?;
    }
    writeln!(md)?;

    writeln!(md, "## Disk: 5 views of realistic v1 vs the pool\n")?;
    if let Some(e) = disk.get("error") {
        writeln!(md, "NOT MEASURED: {e}\n")?;
    } else {
        let mib = |v: &Value| {
            v.as_u64()
                .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
                .unwrap_or_default()
        };
        let kib = |v: &Value| {
            v.as_u64()
                .map(|b| format!("{:.0} KiB", b as f64 / 1024.0))
                .unwrap_or_default()
        };
        writeln!(md, "| what | total | exclusive | set shared |")?;
        writeln!(md, "|---|---:|---:|---:|")?;
        for v in disk["per_view"].as_array().into_iter().flatten() {
            writeln!(
                md,
                "| view {} (`btrfs filesystem du -s`) | {} | {} | {} |",
                v["view"].as_str().unwrap_or(""),
                mib(&v["total"]),
                mib(&v["exclusive"]),
                mib(&v["set_shared"])
            )?;
        }
        let p = &disk["pool_packages"];
        writeln!(
            md,
            "| pool `packages/` (v1 + v2 + edge-update) | {} | {} | {} |\n",
            mib(&p["total"]),
            mib(&p["exclusive"]),
            mib(&p["set_shared"])
        )?;
        writeln!(
            md,
            "- compsize of the 5 views together: disk {}, referenced {}; of the pool: disk {}, referenced {}",
            mib(&disk["compsize_views"]["disk"]),
            mib(&disk["compsize_views"]["referenced"]),
            mib(&disk["compsize_pool"]["disk"]),
            mib(&disk["compsize_pool"]["referenced"])
        )?;
        writeln!(
            md,
            "- metadata per view (`btrfs filesystem df` Metadata used, delta over 5 composes / 5; one copy, DUP stores two): {}",
            kib(&disk["metadata_per_view"])
        )?;
        let qv: Vec<String> = disk["qgroup_views"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| kib(&v["exclusive"]))
            .collect();
        let qs: Vec<String> = disk["qgroup_snapshots"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| kib(&v["exclusive"]))
            .collect();
        writeln!(
            md,
            "- exclusive bytes per view from qgroups (data and metadata only that view holds): {}; per snapshot of the rpm root: {}",
            qv.join(", "),
            qs.join(", ")
        )?;
        writeln!(
            md,
            "- the same tree as plain files (`rpm -i` root): {} each, {} for 5 separate roots; 5 snapshots of that root: {} metadata each\n",
            mib(&disk["plain_root_total"]),
            mib(&disk["n_plain_roots"]),
            kib(&disk["metadata_per_snapshot"])
        )?;
    }
    if !notes.is_empty() {
        writeln!(md, "## Notes\n")?;
        for n in notes {
            writeln!(md, "- {n}")?;
        }
    }
    let js = json!({
        "commit": commit,
        "src_dirty": dirty,
        "quick": opts.quick,
        "reps": opts.reps,
        "elapsed_s": elapsed,
        "machine": machine,
        "input": {"packages": npkg, "files": files, "content_bytes": content, "rpm_bytes": compressed, "v2_changed": nchanged},
        "sections": jsections,
        "targets": targets,
        "disk": disk,
        "notes": notes,
    });
    Ok((md, js))
}
