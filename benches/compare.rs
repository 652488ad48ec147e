//! Side-by-side benchmarks of reimage against the tools users run today.
//!
//! `cargo bench --bench compare -- [--quick] [--reps N]`
//!
//! Everything runs on one loop-mounted btrfs made for the run
//! ([`reimage_testkit::ScratchFs`], unmounted and detached on drop), with the
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
use reimage_testkit::{FsType, ScratchFs};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "compare/large.rs"]
mod large;
#[path = "compare/update.rs"]
mod update;

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
    "ostree",
    "rsync",
    "cat",
    "diff",
    "sort",
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

/// Set by `--quick`: [`FULL_ONLY`] contenders are left out.
static QUICK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Contenders only the full run measures: informational variants and the
/// slowest peers (`--quick` keeps one peer per figure).
const FULL_ONLY: &[&str] = &[
    "reimage_import_j1",
    "cpio_p1",
    "zstd_p1",
    "cpio_root",
    "inc_1",
    "full_1",
    "snapper_1",
    "snapper_10",
    "auto_1",
    "auto_v2",
    "inc_v2",
    "full_v2",
    "snapper_v2",
    "rpmi_small",
    "rpmi_realistic",
    "rpmi_large",
    "linc_1",
    "lsnap_1",
    "linc_50",
    "lsnap_50",
];

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
    /// Entries (files, directories, symlinks) the command handles: time per file.
    files: Option<u64>,
    /// The contender this one's ratio divides by (else the section's reference).
    vs: Option<&'static str>,
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
            files: None,
            vs: None,
        }
    }
    fn files(mut self, n: u64) -> Self {
        self.files = Some(n);
        self
    }
    fn vs(mut self, key: &'static str) -> Self {
        self.vs = Some(key);
        self
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
    files: Option<u64>,
    vs: Option<&'static str>,
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

/// The snapper way of an update: snapshot the root, `rpm -U` into it (the
/// snapshot is deleted after each repetition).
fn snapper<'a>(
    ctx: &'a Ctx,
    key: &'static str,
    cmp: &Path,
    root: PathBuf,
    pkgs: Vec<PathBuf>,
    prefix: String,
) -> Contender<'a> {
    let cmp = cmp.to_path_buf();
    Contender::new(
        key,
        &format!("snapshot + rpm -U ({} packages)", pkgs.len()),
        format!(
            "btrfs subvolume snapshot ROOT S && rpm -U --root S {} PKGS",
            RPM_FLAGS.join(" ")
        ),
        Box::new(move |rep| {
            let snap = cmp.join(format!("{prefix}-{rep}"));
            let r = ctx.timed(&mut sh(&format!(
                "btrfs -q subvolume snapshot {} {s}\nrpm -U --root {s} {} {}",
                q(&root),
                RPM_FLAGS.join(" "),
                qs(&pkgs),
                s = q(&snap),
            )));
            ctx.run(
                Command::new("btrfs")
                    .args(["subvolume", "delete"])
                    .arg(&snap),
            )?;
            r
        }),
    )
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
    if QUICK.load(std::sync::atomic::Ordering::Relaxed) {
        cs.retain(|c| !FULL_ONLY.contains(&c.key));
    }
    println!("\n== {title}");
    if cs.is_empty() {
        println!("  (full run only)");
    }
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
                files: c.files,
                vs: c.vs,
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

/// Entries under `p` (files, directories, symlinks; `p` itself not counted).
fn count_entries(p: &Path) -> Result<u64> {
    let mut n = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let e = e?;
            n += 1;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(n)
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
    QUICK.store(opts.quick, std::sync::atomic::Ordering::Relaxed);
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

    // The generated large set (cached) and the small one (the edge set,
    // minus the package compose must refuse and the older edge-update).
    let large = large::ensure(&target_dir().join("bench/data/large"))?;
    let small: Vec<PathBuf> = rpms_in(&data.join("edge"))?
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            // edge-names: rpm cannot install its 255-byte file name (it
            // appends ";XXXXXXXX" while unpacking), so the peers could not run.
            !n.starts_with("edge-unmapped-")
                && !n.starts_with("edge-update-1.0-")
                && !n.starts_with("edge-names-")
        })
        .collect();

    // Warm the page cache with the inputs: every contender reads them hot.
    for p in v1
        .iter()
        .chain(&v2)
        .chain([&e10, &e11])
        .chain(&small)
        .chain(&large.v1)
        .chain(&large.changed)
    {
        fs::read(p)?;
    }

    let fs_guard = ScratchFs::new(FsType::Btrfs, 40 << 30)?;
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
    let ostree_repo = s.join("ostree");
    fs::create_dir_all(&cmp)?;
    let rm_view = |name: &str| -> Result<()> {
        ctx.run(ctx.reimage(&pool).args(["rm-view", name]))?;
        Ok(())
    };
    let mut cs: Vec<Contender> = vec![];
    cs.push(Contender::new(
        "reimage_compose",
        "reimage compose (full)",
        "reimage compose NAME --no-base --list v1.list".into(),
        Box::new(|rep| {
            let name = format!("full-{rep}");
            let r = ctx.timed(
                ctx.reimage(&pool)
                    .args(["compose", &name, "--no-base", "--list"])
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
    // ostree: the same tree committed to a bare repository on the same
    // filesystem, checked out as hard links (what ostree deployments do).
    ctx.run(
        Command::new("ostree")
            .arg(format!("--repo={}", ostree_repo.display()))
            .args(["init", "--mode=bare"]),
    )?;
    ctx.run(
        Command::new("ostree")
            .arg(format!("--repo={}", ostree_repo.display()))
            .args(["commit", "--branch=v1", "--no-bindings", "--subject=v1"])
            .arg(format!("--tree=dir={}", base_v1.display())),
    )?;
    {
        let (ostree_repo, cmp, ctx) = (&ostree_repo, &cmp, &ctx);
        cs.push(Contender::new(
            "ostree_checkout",
            "ostree checkout -H (bare repo)",
            "ostree --repo=REPO checkout -H v1 DIR  # REPO: bare, the view committed".into(),
            Box::new(move |rep| {
                let dst = cmp.join(format!("ostree-{rep}"));
                let r = ctx.timed(
                    Command::new("ostree")
                        .arg(format!("--repo={}", ostree_repo.display()))
                        .args(["checkout", "-H", "v1"])
                        .arg(&dst),
                );
                rm_rf(&dst)?;
                r
            }),
        ));
    }
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
            "reimage compose NAME --no-base --list LIST".into(),
            Box::new(move |rep| {
                let name = format!("full{tag}-{rep}");
                let r = ctx.timed(
                    ctx.reimage(pool)
                        .args(["compose", &name, "--no-base", "--list"])
                        .arg(list),
                );
                rm_view(&name)?;
                r
            }),
        ));
        // Without --from: compose picks the base itself (the view sharing
        // most packages), so the user gets the incremental cost by default.
        let key_auto: &'static str = match *tag {
            "1" => "auto_1",
            "10" => "auto_10",
            _ => "auto_v2",
        };
        cs.push(Contender::new(
            key_auto,
            &format!("compose, base chosen by itself ({n}-package update)"),
            "reimage compose NAME --list LIST  # no --from: the view sharing most packages".into(),
            Box::new(move |rep| {
                let name = format!("auto{tag}-{rep}");
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
            cs.push(snapper(
                ctx,
                key_snap,
                &cmp,
                rroot.to_path_buf(),
                pkgs.clone(),
                format!("snapper{tag}"),
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

    // ---------------------------------------------------------------- deploy
    // The scratch filesystem's top level is a system: base-v1 deployed once
    // (the layout), then each rep stages a deployment (--no-default, so it
    // can be removed again outside the timing; the default switch is one
    // rename either way).
    let sysroot = s.clone();
    ctx.run(
        ctx.reimage(&pool)
            .args(["deploy", "base-v1", "--no-cleanup", "--sysroot"])
            .arg(&sysroot),
    )?;
    ctx.run(
        ctx.reimage(&pool)
            .args(["compose", "deploy-v2", "--from", "base-v1", "--list"])
            .arg(&l_v2),
    )?;
    let next_id = std::cell::Cell::new(2u64);
    let mut cs: Vec<Contender> = vec![];
    {
        let (pool, ctx, rm_view, next_id, sysroot, l_v2) =
            (&pool, &ctx, &rm_view, &next_id, &sysroot, &l_v2);
        let undeploy = move |id: u64| -> Result<()> {
            ctx.run(
                ctx.reimage(pool)
                    .args(["undeploy", &id.to_string(), "--sysroot"])
                    .arg(sysroot),
            )
            .map(|_| ())
        };
        cs.push(Contender::new(
            "deploy_from_v2",
            &format!("compose --from + deploy ({}-package update)", changed.len()),
            "reimage compose NAME --from base-v1 --list LIST && reimage deploy NAME --no-default --sysroot S".into(),
            Box::new(move |rep| {
                let name = format!("dv2-{rep}");
                let t = ctx.timed(&mut sh(&format!(
                    "{b} --pool {p} -q compose {name} --from base-v1 --list {l}\n{b} --pool {p} -q deploy {name} --no-default --no-cleanup --sysroot {s}",
                    b = q(&ctx.bin),
                    p = q(pool),
                    l = q(l_v2),
                    s = q(sysroot),
                )));
                let id = next_id.get();
                next_id.set(id + 1);
                undeploy(id)?;
                rm_view(&name)?;
                t
            }),
        ));
        cs.push(Contender::new(
            "deploy_only",
            "deploy alone (view composed; merge and first-boot steps)",
            "reimage deploy deploy-v2 --no-default --sysroot S".into(),
            Box::new(move |_rep| {
                let t = ctx.timed(
                    ctx.reimage(pool)
                        .args([
                            "deploy",
                            "deploy-v2",
                            "--no-default",
                            "--no-cleanup",
                            "--sysroot",
                        ])
                        .arg(sysroot),
                );
                let id = next_id.get();
                next_id.set(id + 1);
                undeploy(id)?;
                t
            }),
        ));
        if snapper_ok {
            cs.push(snapper(
                ctx,
                "deploy_snapper",
                &cmp,
                rr_v1.clone(),
                changed.clone(),
                "dsnapper".into(),
            ));
        }
    }
    sections.push(measure(
        "deploy",
        &format!(
            "deployments: realistic v1 -> v2 ({} packages changed), compose --from + deploy, deploy alone, and the snapper way",
            changed.len()
        ),
        None,
        "deploy_snapper",
        cs,
        opts.reps,
    ));

    // ============================================================ large set
    // A second pool for the small (edge) and large (generated) sets.
    let xp = s.join("xpool");
    ctx.run(ctx.reimage(&xp).arg("init"))?;
    let t_imp = Instant::now();
    let jl: Value = serde_json::from_str(
        &ctx.run(
            Command::new(&bin)
                .arg("--pool")
                .arg(&xp)
                .arg("--json")
                .arg("import")
                .args(&large.v1),
        )?,
    )?;
    let large_import_s = t_imp.elapsed().as_secs_f64();
    let large_content: u64 = jl["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["content_bytes"].as_u64().unwrap_or(0))
        .sum();
    let large_files: u64 = jl["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["files"].as_u64().unwrap_or(0))
        .sum();
    let large_rpm_bytes: u64 = large
        .v1
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    ctx.run(
        ctx.reimage(&xp)
            .arg("import")
            .args(&large.changed)
            .args(&small),
    )?;
    println!(
        "large v1: {} packages, {large_files} files, {:.1} MB of content, {:.1} MB as .rpm; imported once in {large_import_s:.1} s (untimed setup, one sample)",
        large.v1.len(),
        large_content as f64 / 1e6,
        large_rpm_bytes as f64 / 1e6
    );
    let l_small = lists.join("small.list");
    let l_lv1 = lists.join("large-v1.list");
    let l_lv2 = lists.join("large-v2.list");
    write_list(&l_small, &small)?;
    write_list(&l_lv1, &large.v1)?;
    write_list(&l_lv2, &large.v2)?;
    for (name, list) in [("small", &l_small), ("large-v1", &l_lv1)] {
        ctx.run(ctx.reimage(&xp).args(["compose", name, "--list"]).arg(list))?;
    }
    ctx.run(
        ctx.reimage(&xp)
            .args(["compose", "large-v2", "--from", "large-v1", "--list"])
            .arg(&l_lv2),
    )?;
    let view_small = xp.join("views/small");
    let view_large = xp.join("views/large-v1");
    let n_small = count_entries(&view_small)?;
    let n_real = count_entries(&base_v1)?;
    let n_large = count_entries(&view_large)?;
    println!("entries per view: small {n_small}, realistic {n_real}, large {n_large}");

    // rpm roots (subvolumes, so the snapper way can snapshot them).
    let rr_small = s.join("rr-small");
    let rr_large = s.join("rr-large");
    let rr_large2 = s.join("rr-large-v2");
    let t_rpm = Instant::now();
    for (root, pkgs, justdb) in [(&rr_small, &small, false), (&rr_large, &large.v1, true)] {
        ctx.run(
            Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(root),
        )?;
        let mut c = Command::new("rpm");
        c.arg("-i").arg("--root").arg(root).args(RPM_FLAGS);
        if justdb {
            c.arg("--justdb");
        }
        ctx.run(c.args(pkgs.iter()))?;
        if justdb {
            // The files: a reflink copy of the view (same bytes, owners,
            // modes, mtimes as rpm -i writes; the view's extra files, such as
            // its header directory, are ignored by rpm -V).
            ctx.run(
                Command::new("cp")
                    .args(["-a", "--reflink=always"])
                    .arg(&view_large)
                    .arg(root.join("usr")),
            )?;
        }
    }
    notes.push(
        "The large rpm root (for rpm -qa/-qf/-V and the snapper way) is `rpm -i --justdb` of the large v1 packages \
         plus `cp -a --reflink=always` of the composed view as its /usr: the same files, owners, modes and mtimes \
         that `rpm -i` writes, made in seconds instead of a minute of setup. rpm -V checks them like any install; \
         rpm -i's own time on the large set is the `rpm -i --root (large)` row of the full run."
            .into(),
    );
    println!(
        "rpm roots of small and large: {:.1} s (untimed setup)",
        t_rpm.elapsed().as_secs_f64()
    );
    ctx.run(
        Command::new("btrfs")
            .args(["subvolume", "snapshot"])
            .arg(&rr_large)
            .arg(&rr_large2),
    )?;
    ctx.run(
        Command::new("rpm")
            .arg("-U")
            .arg("--root")
            .arg(&rr_large2)
            .args(RPM_FLAGS)
            .args(&large.changed),
    )?;
    // What rpm -V says about each root (its exit status is not 0 when it
    // reports a difference; the timed runs ignore it, so it is checked here).

    // ------------------------------------------------ scaling: three sizes
    #[allow(clippy::type_complexity)]
    let sizes: [(&str, &Path, &Path, &Path, &Path, u64, &[PathBuf]); 3] = [
        (
            "small",
            xp.as_path(),
            l_small.as_path(),
            view_small.as_path(),
            rr_small.as_path(),
            n_small,
            small.as_slice(),
        ),
        (
            "realistic",
            pool.as_path(),
            l_v1.as_path(),
            base_v1.as_path(),
            rr_v1.as_path(),
            n_real,
            v1.as_slice(),
        ),
        (
            "large",
            xp.as_path(),
            l_lv1.as_path(),
            view_large.as_path(),
            rr_large.as_path(),
            n_large,
            large.v1.as_slice(),
        ),
    ];
    let mut cs: Vec<Contender> = vec![];
    for (tag, vpool, list, view, rroot, n, pkgs) in sizes {
        let key = |k: &str| -> &'static str { Box::leak(format!("{k}_{tag}").into_boxed_str()) };
        let (k_comp, k_cp, k_rpmi, k_ver, k_rpmv) = (
            key("compose"),
            key("cp"),
            key("rpmi"),
            key("verify"),
            key("rpmV"),
        );
        let (ctx, cmp) = (&ctx, &cmp);
        let vname = view
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        cs.push(
            Contender::new(
                k_comp,
                &format!("reimage compose ({tag})"),
                format!("reimage compose NAME --list {tag}.list"),
                Box::new(move |rep| {
                    let name = format!("scale-{tag}-{rep}");
                    let r = ctx.timed(
                        ctx.reimage(vpool)
                            .args(["compose", &name, "--no-base", "--list"])
                            .arg(list),
                    );
                    ctx.run(ctx.reimage(vpool).args(["rm-view", &name]))?;
                    r
                }),
            )
            .files(n),
        );
        cs.push(
            Contender::new(
                k_cp,
                &format!("cp -a --reflink=always ({tag})"),
                format!("cp -a --reflink=always VIEW({tag}) DIR"),
                Box::new(move |rep| {
                    let dst = cmp.join(format!("scale-cp-{tag}-{rep}"));
                    let r = ctx.timed(
                        Command::new("cp")
                            .args(["-a", "--reflink=always"])
                            .arg(view)
                            .arg(&dst),
                    );
                    rm_rf(&dst)?;
                    r
                }),
            )
            .files(n)
            .vs(k_comp),
        );
        if !(opts.quick && tag == "large") {
            cs.push(
                Contender::new(
                    k_rpmi,
                    &format!("rpm -i --root ({tag})"),
                    format!("rpm -i --root R {} {tag}/*.rpm", RPM_FLAGS.join(" ")),
                    Box::new(move |rep| {
                        let root = cmp.join(format!("scale-rpm-{tag}-{rep}"));
                        let r = ctx.timed(
                            Command::new("rpm")
                                .arg("-i")
                                .arg("--root")
                                .arg(&root)
                                .args(RPM_FLAGS)
                                .args(pkgs),
                        );
                        rm_rf(&root)?;
                        r
                    }),
                )
                .files(n)
                .vs(k_comp),
            );
        }
        cs.push(
            Contender::new(
                k_ver,
                &format!("reimage verify ({tag})"),
                format!("reimage verify VIEW({tag})"),
                Box::new(move |_| ctx.timed(ctx.reimage(vpool).args(["verify", &vname]))),
            )
            .files(n),
        );
        cs.push(
            Contender::new(
                k_rpmv,
                &format!("rpm -Va --root ({tag})"),
                "rpm -Va --root R --dbpath /var/lib/rpm --nodeps  # exit status ignored, see notes"
                    .into(),
                Box::new(move |_| {
                    ctx.timed(&mut sh(&format!(
                        "rpm -Va --root {} --dbpath /var/lib/rpm --nodeps > {} 2>&1 || true",
                        q(rroot),
                        q(&cmp.join(format!("rpmV-{tag}.out")))
                    )))
                }),
            )
            .files(n)
            .vs(k_ver),
        );
    }
    let scaling = measure(
        "scaling",
        &format!(
            "how cost grows: compose and verify at three sizes (small {} packages, realistic {}, large {})",
            small.len(),
            v1.len(),
            large.v1.len()
        ),
        None,
        "",
        cs,
        opts.reps,
    );
    sections.push(scaling);
    for tag in ["small", "realistic", "large"] {
        let out = fs::read_to_string(cmp.join(format!("rpmV-{tag}.out"))).unwrap_or_default();
        let n = out.lines().count();
        let first: Vec<&str> = out.lines().take(3).collect();
        notes.push(format!(
            "rpm -Va on the {tag} rpm root (last rep) printed {n} lines, e.g. {:?}: what rpm finds different in its own \
             install (owners it could not resolve, hard links of the rpm crate's builder); the timed runs ignore its exit status.",
            first
        ));
    }

    // ------------------------------------------ list/query/diff on large
    let qpath = "/usr/lib/bench-p150/libbench-p150.so.1".to_string();
    let rpmq = |root: &Path| format!("rpm --root {} --dbpath /var/lib/rpm", q(root));
    let mut cs: Vec<Contender> = vec![];
    {
        let (xp, ctx, qpath) = (&xp, &ctx, &qpath);
        cs.push(Contender::new(
            "list_large",
            "reimage list",
            "reimage list large-v1".into(),
            Box::new(move |_| ctx.timed(ctx.reimage(xp).args(["list", "large-v1"]))),
        ));
        let c = format!("{} -qa", rpmq(&rr_large));
        cs.push(
            Contender::new(
                "rpm_qa",
                "rpm -qa",
                c.clone(),
                Box::new(move |_| ctx.timed(&mut sh(&c))),
            )
            .vs("list_large"),
        );
        cs.push(Contender::new(
            "qf_large",
            "reimage query -f",
            format!("reimage query -f {qpath} large-v1"),
            Box::new(move |_| ctx.timed(ctx.reimage(xp).args(["query", "-f", qpath, "large-v1"]))),
        ));
        let c = format!("{} -qf {qpath}", rpmq(&rr_large));
        cs.push(
            Contender::new(
                "rpm_qf",
                "rpm -qf",
                c.clone(),
                Box::new(move |_| ctx.timed(&mut sh(&c))),
            )
            .vs("qf_large"),
        );
        cs.push(Contender::new(
            "diff_large",
            "reimage diff",
            "reimage diff large-v1 large-v2".into(),
            Box::new(move |_| ctx.timed(ctx.reimage(xp).args(["diff", "large-v1", "large-v2"]))),
        ));
        let c = format!(
            "diff <({} -qa | sort) <({} -qa | sort) || [ $? -eq 1 ]",
            rpmq(&rr_large),
            rpmq(&rr_large2)
        );
        cs.push(
            Contender::new(
                "rpm_diff",
                "diff of two rpm -qa",
                c.clone(),
                Box::new(move |_| ctx.timed(&mut sh(&c))),
            )
            .vs("diff_large"),
        );
        cs.push(Contender::new(
            "diff_files_large",
            "reimage diff --files",
            "reimage diff --files large-v1 large-v2".into(),
            Box::new(move |_| {
                ctx.timed(
                    ctx.reimage(xp)
                        .args(["diff", "--files", "large-v1", "large-v2"]),
                )
            }),
        ));
        let c = format!(
            "diff <({} -qa --dump | sort) <({} -qa --dump | sort) || [ $? -eq 1 ]",
            rpmq(&rr_large),
            rpmq(&rr_large2)
        );
        cs.push(
            Contender::new(
                "rpm_dump_diff",
                "diff of two rpm -qa --dump",
                c.clone(),
                Box::new(move |_| ctx.timed(&mut sh(&c))),
            )
            .vs("diff_files_large"),
        );
    }
    sections.push(measure(
        "query",
        &format!(
            "list, query -f, diff on the large image ({} packages, {n_large} entries) vs rpm on an rpmdb of the same packages",
            large.v1.len()
        ),
        None,
        "",
        cs,
        opts.reps,
    ));

    // ------------------------------------- incremental compose, large set
    let lchanged = &large.changed;
    let swap = |k: usize| -> Vec<PathBuf> {
        large
            .v1
            .iter()
            .map(|p| {
                lchanged[..k]
                    .iter()
                    .find(|n| rpm_name(n) == rpm_name(p))
                    .unwrap_or(p)
                    .clone()
            })
            .collect()
    };
    let l_l1 = lists.join("large-u1.list");
    let l_l10 = lists.join("large-u10.list");
    write_list(&l_l1, &swap(1))?;
    write_list(&l_l10, &swap(10))?;
    let mut cs: Vec<Contender> = vec![];
    {
        let ctx = &ctx;
        let xp = &xp;
        let l_lv2 = &l_lv2;
        cs.push(Contender::new(
            "lfull_50",
            "compose full (large v2 list)",
            "reimage compose NAME --list large-v2.list".into(),
            Box::new(move |rep| {
                let name = format!("lfull-{rep}");
                let r = ctx.timed(
                    ctx.reimage(xp)
                        .args(["compose", &name, "--no-base", "--list"])
                        .arg(l_lv2),
                );
                ctx.run(ctx.reimage(xp).args(["rm-view", &name]))?;
                r
            }),
        ));
        let ups: [(&'static str, &'static str, usize, &Path); 3] = [
            ("linc_1", "lsnap_1", 1, &l_l1),
            ("linc_10", "lsnap_10", 10, &l_l10),
            ("linc_50", "lsnap_50", lchanged.len(), l_lv2),
        ];
        for (k_inc, k_snap, n, list) in ups {
            cs.push(
                Contender::new(
                    k_inc,
                    &format!("compose --from ({n}-package update)"),
                    format!("reimage compose NAME --from large-v1 --list LIST  # {n} of {} packages replaced", large.v1.len()),
                    Box::new(move |rep| {
                        let name = format!("linc{n}-{rep}");
                        let r = ctx.timed(
                            ctx.reimage(xp)
                                .args(["compose", &name, "--from", "large-v1", "--list"])
                                .arg(list),
                        );
                        ctx.run(ctx.reimage(xp).args(["rm-view", &name]))?;
                        r
                    }),
                )
                .vs("lfull_50"),
            );
            let (cmp, rr_large) = (&cmp, &rr_large);
            let pkgs = lchanged[..n].to_vec();
            cs.push(
                Contender::new(
                    k_snap,
                    &format!("snapshot + rpm -U ({n} packages)"),
                    format!(
                        "btrfs subvolume snapshot ROOT S && rpm -U --root S {} PKGS",
                        RPM_FLAGS.join(" ")
                    ),
                    Box::new(move |rep| {
                        let snap = cmp.join(format!("lsnap{n}-{rep}"));
                        let r = ctx.timed(&mut sh(&format!(
                            "btrfs -q subvolume snapshot {} {s}\nrpm -U --root {s} {} {}",
                            q(rr_large),
                            RPM_FLAGS.join(" "),
                            qs(&pkgs),
                            s = q(&snap),
                        )));
                        subvol_delete(&snap)?;
                        r
                    }),
                )
                .vs("lfull_50"),
            );
        }
    }
    sections.push(measure(
        "incremental_large",
        &format!(
            "incremental compose on the large set: 1, 10 and {} package updates of {} packages",
            lchanged.len(),
            large.v1.len()
        ),
        None,
        "",
        cs,
        opts.reps,
    ));

    // ------------------------------------------------------------- dedupe
    // A pool of realistic v1 + v2 whose packages lost their sharing: each
    // rewritten with cp --reflink=never before every rep of every contender.
    let dp = s.join("dpool");
    ctx.run(ctx.reimage(&dp).arg("init"))?;
    ctx.run(ctx.reimage(&dp).arg("import").args(&v1).args(&v2))?;
    let dpk = dp.join("packages");
    let dedupe_bytes: u64 = fs::read_dir(&dpk)?
        .filter_map(|e| e.ok())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let unshare = format!(
        "cd {} && for f in *; do cp --reflink=never --preserve=mode,timestamps \"$f\" \".$f.cp\" && mv \".$f.cp\" \"$f\"; done\n\
         sync -f . && for f in *; do dd if=\"$f\" iflag=nocache count=0 status=none; done",
        q(&dpk)
    );
    let dedupe_json = s.join("dedupe.json");
    let mut cs: Vec<Contender> = vec![];
    {
        let (ctx, unshare, dp, dpk, dedupe_json, bin) =
            (&ctx, &unshare, &dp, &dpk, &dedupe_json, &bin);
        // cat runs first and prepares the pool (rewrite, drop from the page
        // cache); dedupe then runs on the same unshared pool, dropped from the
        // page cache again (cat read it).
        let drop_cache = format!(
            "cd {} && for f in *; do dd if=\"$f\" iflag=nocache count=0 status=none; done",
            q(dpk)
        );
        cs.push(
            Contender::new(
                "cat_read",
                "cat packages/* > /dev/null",
                "cat POOL/packages/* > /dev/null  # after: for f in packages/*; cp --reflink=never f f.cp; mv f.cp f; each file dropped from the page cache (dd iflag=nocache count=0)".into(),
                Box::new(move |_| {
                    ctx.run(&mut sh(unshare))?;
                    ctx.timed(&mut sh(&format!("cat {}/* > /dev/null", q(dpk))))
                }),
            )
            .vs("dedupe"),
        );
        cs.push(Contender::new(
            "dedupe",
            "reimage dedupe",
            "reimage dedupe  # same pool as cat's, dropped from the page cache again".into(),
            Box::new(move |_| {
                ctx.run(&mut sh(&drop_cache))?;
                ctx.timed(&mut sh(&format!(
                    "{} --pool {} --json dedupe > {}",
                    q(bin),
                    q(dp),
                    q(dedupe_json)
                )))
            }),
        ));
    }
    sections.push(measure(
        "dedupe",
        &format!(
            "dedupe throughput: realistic v1 + v2 pool ({} MB of extent packages) rewritten as plain copies",
            dedupe_bytes / 1_000_000
        ),
        Some(dedupe_bytes),
        "dedupe",
        cs,
        opts.reps,
    ));
    let dedupe_report: Value = fs::read_to_string(&dedupe_json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    rm_rf(&dp)?;

    // --------------------------------------------------------- sync bytes
    println!("\n== sync bytes: realistic v1 -> v2");
    let delta_level = if opts.quick { 9 } else { 19 };
    let sync = (|| -> Result<Value> {
        let repo = s.join("repo");
        let pubpool = s.join("pubpool");
        ctx.run(ctx.reimage(&pubpool).arg("init"))?;
        let t = Instant::now();
        ctx.run(
            ctx.reimage(&pubpool)
                .arg("publish")
                .arg(&repo)
                .args(["bench", "1"])
                .args(&v1),
        )?;
        let pub1 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let pub2_json: Value = serde_json::from_str(
            &ctx.run(
                ctx.reimage(&pubpool)
                    .arg("--json")
                    .arg("publish")
                    .arg(&repo)
                    .args(["bench", "2"])
                    .args(&v2)
                    .args([
                        "--deltas-from",
                        "1",
                        "--delta-level",
                        &delta_level.to_string(),
                    ]),
            )?,
        )
        .unwrap_or(Value::Null);
        let pub2 = t.elapsed().as_secs_f64();
        let delta_detail = json!({
            "encodings": pub2_json["deltas"][0]["encodings"],
            "kinds": pub2_json["deltas"][0]["kinds"],
        });
        let sync_json = |pool: &Path, ver: &str, deltas: bool| -> Result<Value> {
            let mut c = Command::new(&bin);
            c.arg("--pool")
                .arg(pool)
                .arg("--json")
                .arg("sync")
                .arg(&repo)
                .args(["bench", ver]);
            if !deltas {
                c.arg("--no-deltas");
            }
            Ok(serde_json::from_str(&ctx.run(&mut c)?)?)
        };
        let mut res = vec![];
        for (tag, deltas) in [("live", false), ("deltas", true)] {
            let cp = s.join(format!("client-{tag}"));
            ctx.run(ctx.reimage(&cp).arg("init"))?;
            let first = sync_json(&cp, "1", deltas)?;
            let second = sync_json(&cp, "2", deltas)?;
            res.push((first, second));
            rm_rf(&cp)?;
        }
        // rsync of the compressed .rpm files, as a mirror would (tests/sync.rs).
        let rdir = s.join("rpmsync");
        for (d, pk) in [("v1", &v1), ("v2", &v2)] {
            fs::create_dir_all(rdir.join(d))?;
            for p in pk.iter() {
                fs::copy(p, rdir.join(d).join(p.file_name().unwrap_or_default()))?;
            }
        }
        let client = rdir.join("client");
        fs::create_dir_all(&client)?;
        let rsync = |d: &str| -> Result<u64> {
            let out = ctx.run(
                Command::new("rsync")
                    .args([
                        "-r",
                        "--compress",
                        "--compress-choice=zstd",
                        "--stats",
                        "--no-whole-file",
                        "--fuzzy",
                        "--delete-after",
                    ])
                    .arg(format!("{}/", rdir.join(d).display()))
                    .arg(&client),
            )?;
            let n = |k: &str| -> u64 {
                out.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .and_then(|v| v.split_whitespace().next().map(|x| x.replace(',', "")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Ok(n("Total bytes sent:") + n("Total bytes received:"))
        };
        let rsync_v1 = rsync("v1")?;
        let rsync_v2 = rsync("v2")?;
        let dnf: u64 = changed
            .iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        let mut ostree = json!({"skipped": "full run only (generating the delta takes minutes)"});
        if !opts.quick {
            let r = (|| -> Result<Value> {
                ctx.run(
                    ctx.reimage(&pool)
                        .args(["compose", "base-v2", "--list"])
                        .arg(&l_v2),
                )?;
                ctx.run(
                    Command::new("ostree")
                        .arg(format!("--repo={}", ostree_repo.display()))
                        .args(["commit", "--branch=v2", "--no-bindings", "--subject=v2"])
                        .arg(format!(
                            "--tree=dir={}",
                            pool.join("views/base-v2").display()
                        )),
                )?;
                let f = s.join("ostree-v1-v2.delta");
                let t = Instant::now();
                ctx.run(
                    Command::new("ostree")
                        .arg(format!("--repo={}", ostree_repo.display()))
                        .args([
                            "static-delta",
                            "generate",
                            "--from=v1",
                            "--to=v2",
                            "--inline",
                        ])
                        .arg(format!("--filename={}", f.display())),
                )?;
                let secs = t.elapsed().as_secs_f64();
                let bytes = fs::metadata(&f)?.len();
                Ok(json!({"bytes": bytes, "generate_seconds": secs}))
            })();
            ostree = r.unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        }
        let w = |v: &Value| v["wire_bytes"].as_u64();
        Ok(json!({
            "delta_level": delta_level,
            "delta_detail": delta_detail,
            "publish_v1_seconds": pub1,
            "publish_v2_seconds": pub2,
            "dnf_bytes": dnf,
            "rpm_rsync_v1_bytes": rsync_v1,
            "rpm_rsync_bytes": rsync_v2,
            "live_bytes": w(&res[0].1),
            "live_first_sync_bytes": w(&res[0].0),
            "live_report_rpm_bytes": res[0].1["rpm_bytes"],
            "live_seconds": res[0].1["seconds"],
            "delta_bytes": w(&res[1].1),
            "delta_seconds": res[1].1["seconds"],
            "by_delta": res[1].1["by_delta"],
            "by_rsync_live": res[0].1["by_rsync"],
            "ostree_delta": ostree,
        }))
    })();
    let sync = match sync {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            v
        }
        Err(e) => {
            println!("  sync: FAILED: {e:#}");
            json!({"error": format!("{e:#}")})
        }
    };

    // ------------------------------------- end to end, apply-live, history
    let inputs = update::Inputs {
        ctx: &ctx,
        scratch: &s,
        v1: &v1,
        v2: &v2,
        list_u10: &list_u10,
        up10: &up10,
        changed: &changed,
        rpm_root_v1: snapper_ok.then_some(rr_v1.as_path()),
        reps: opts.reps,
        delta_level: delta_level as u32,
    };
    let mut later = serde_json::Map::new();
    match update::end_to_end(&inputs) {
        Ok((sec, v)) => {
            sections.push(sec);
            later.insert("update".into(), v);
        }
        Err(e) => {
            println!("  update: FAILED: {e:#}");
            later.insert("update".into(), json!({"error": format!("{e:#}")}));
        }
    }
    match update::live(&inputs) {
        Ok(sec) => sections.push(sec),
        Err(e) => {
            println!("  live: FAILED: {e:#}");
            later.insert("live".into(), json!({"error": format!("{e:#}")}));
        }
    }
    match update::history(&inputs) {
        Ok((sec, v)) => {
            sections.push(sec);
            later.insert("history".into(), v);
        }
        Err(e) => {
            println!("  history: FAILED: {e:#}");
            later.insert("history".into(), json!({"error": format!("{e:#}")}));
        }
    }
    let later = Value::Object(later);
    // The VM boot test's figure, from its last run (cargo xtask boot-test).
    let boot_report = fs::read_to_string(target_dir().join("boot-test/report.md")).ok();
    let boot_complete: Option<f64> = boot_report.as_deref().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("kernel start to boot-complete.target (boot 2, v2): "))
            .and_then(|v| v.trim_end_matches('s').parse().ok())
    });

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
                    .args(["compose", &name, "--no-base", "--list"])
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
        // Two versions (v1 and the v2 update) three ways, by compsize.
        if !pool.join("views/base-v2").exists() {
            ctx.run(
                ctx.reimage(&pool)
                    .args(["compose", "base-v2", "--list"])
                    .arg(&l_v2),
            )?;
        }
        let (re_disk, _) = compsize(
            &ctx,
            &[
                pool.join("packages"),
                base_v1.clone(),
                pool.join("views/base-v2"),
            ],
        )?;
        let snap2 = cmp.join("disk-snapper-v2");
        ctx.run(&mut sh(&format!(
            "btrfs -q subvolume snapshot {} {s}\nrpm -U --root {s} {} {}",
            q(&rr_v1),
            RPM_FLAGS.join(" "),
            qs(&changed),
            s = q(&snap2),
        )))?;
        let (snapper_disk, _) = compsize(&ctx, &[rr_v1.clone(), snap2.clone()])?;
        let rr_v2 = cmp.join("disk-rr-v2");
        ctx.run(
            Command::new("rpm")
                .arg("-i")
                .arg("--root")
                .arg(&rr_v2)
                .args(RPM_FLAGS)
                .args(&v2),
        )?;
        let (v1_disk, _) = compsize(&ctx, std::slice::from_ref(&rr_v1))?;
        let (v2_disk, _) = compsize(&ctx, std::slice::from_ref(&rr_v2))?;
        subvol_delete(&snap2)?;
        rm_rf(&rr_v2)?;
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
            "two_versions": {
                "reimage_pool_and_views": re_disk,
                "snapper_root_and_updated_snapshot": snapper_disk,
                "separate_roots": v1_disk + v2_disk,
            },
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
        && ["update", "live", "history"]
            .iter()
            .all(|k| later.get(k).and_then(|v| v.get("error")).is_none())
        && disk.get("error").is_none()
        && sync.get("error").is_none()
        && sync["ostree_delta"].get("error").is_none();
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
        &json!({
            "sync": sync,
            "dedupe": {"report": dedupe_report, "bytes": dedupe_bytes},
            "small": {"packages": small.len(), "entries": n_small},
            "realistic_entries": n_real,
            "update": later["update"],
            "history": later["history"],
            "boot_complete_seconds": boot_complete,
            "large": {"packages": large.v1.len(), "files": large_files, "entries": n_large, "content_bytes": large_content, "rpm_bytes": large_rpm_bytes, "changed_in_v2": large.changed.len(), "import_seconds_once": large_import_s, "generate_or_load_seconds": large.seconds_generating},
        }),
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
fn reference_of(sec: &Section, c: &FigureResult) -> Option<String> {
    let key = c.key;
    if let Some(v) = c.vs {
        return Some(v.to_string());
    }
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
    extra: &Value,
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
        "- small: the edge set, {} packages, {} entries in the view; realistic v1: {} entries; large (generated): {} packages, {} files, {} entries, {:.1} MB of content, {:.1} MB as .rpm, v2 changes {}",
        extra["small"]["packages"],
        extra["small"]["entries"],
        extra["realistic_entries"],
        extra["large"]["packages"],
        extra["large"]["files"],
        extra["large"]["entries"],
        extra["large"]["content_bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
        extra["large"]["rpm_bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
        extra["large"]["changed_in_v2"],
    )?;
    writeln!(
        md,
        "- times in seconds, `durable` = command plus a syncfs of the filesystem (what ratios use), `done` = command alone; median [min..max]\n"
    )?;
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
        "full compose (--no-base) time / cp -a --reflink (issue 18)",
        r,
        "<= 1.0x",
        r.map(|r| r <= 1.0),
    );
    let r = ratio("inc_10", "full_10");
    t(
        "10-package --from / full compose (issue 4)",
        r,
        "< 0.05",
        r.map(|r| r < 0.05),
    );
    let r = ratio("auto_10", "full_10");
    t(
        "10-package compose without --from (base chosen by itself) / full compose (issue 18)",
        r,
        "< 0.05",
        r.map(|r| r < 0.05),
    );
    let r = med(sections, "e2e_10");
    t(
        "10-package update end to end, reimage upgrade: sync (deltas, rsync daemon) + compose --from + deploy, seconds (issue 18)",
        r,
        "< 1 s",
        r.map(|r| r < 1.0),
    );
    let r = ratio("e2e_snapper_10", "e2e_10");
    t(
        "10-package update end to end: snapper way (download + snapshot + rpm -U) / reimage upgrade (issue 18)",
        r,
        "> 1x (aim 3x)",
        r.map(|r| r > 1.0),
    );
    let r = ratio("e2e_snapper_v2", "e2e_v2");
    t(
        &format!("{nchanged}-package update end to end: snapper way / reimage upgrade"),
        r,
        "(info)",
        None,
    );
    let r = med(sections, "e2e_v2");
    t(
        &format!("{nchanged}-package update end to end, reimage upgrade, seconds"),
        r,
        "(info)",
        None,
    );
    let r = ratio("live_v2", "live_1");
    t(
        &format!(
            "apply-live, {nchanged}-package / 1-package update (should not grow with the update)"
        ),
        r,
        "(info) ~1x",
        None,
    );
    t(
        "VM boot test: kernel start to boot-complete.target, seconds (last cargo xtask boot-test)",
        extra["boot_complete_seconds"].as_f64(),
        "(info)",
        None,
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
    let r = ratio("rpmi_large", "compose_large");
    t(
        "full compose speed-up over rpm -i --root, large set (issue 4)",
        r,
        ">= 10x",
        r.map(|r| r >= 10.0),
    );
    let r = ratio("compose_large", "cp_large");
    t(
        "full compose (--no-base) time / cp -a --reflink, large set (issue 18)",
        r,
        "<= 1.0x",
        r.map(|r| r <= 1.0),
    );
    let r = ratio("reimage_compose", "ostree_checkout");
    t(
        "full compose time / ostree checkout -H, realistic",
        r,
        "(info)",
        None,
    );
    let r = ratio("linc_10", "lfull_50");
    t(
        "10-package --from / full compose, large set (issue 4)",
        r,
        "< 0.05",
        r.map(|r| r < 0.05),
    );
    let r = ratio("linc_1", "lfull_50");
    t(
        "1-package --from / full compose, large set",
        r,
        "(info)",
        None,
    );
    let r = ratio("lsnap_50", "linc_50");
    t(
        "50-package --from speed-up over snapshot + rpm -U, large set (issue 4: >= 20x for 54)",
        r,
        ">= 20x",
        r.map(|r| r >= 20.0),
    );
    let r = ratio("cat_read", "dedupe");
    t(
        "dedupe throughput / cat > /dev/null of the same packages (issue 6)",
        r,
        ">= 0.5x",
        r.map(|r| r >= 0.5),
    );
    let sy = &extra["sync"];
    let b = |k: &str| sy[k].as_u64().map(|v| v as f64);
    let r = b("live_bytes")
        .zip(b("rpm_rsync_bytes"))
        .map(|(a, c)| a / c);
    t(
        "sync --no-deltas bytes / rsync of the .rpm files (issue 7)",
        r,
        "<= 1",
        r.map(|r| r <= 1.0),
    );
    let r = b("delta_bytes").zip(b("dnf_bytes")).map(|(a, c)| a / c);
    t(
        "sync with static deltas bytes / dnf download (issue 7)",
        r,
        "<= 0.25",
        r.map(|r| r <= 0.25),
    );
    let r = b("delta_bytes")
        .zip(sy["ostree_delta"]["bytes"].as_u64().map(|v| v as f64))
        .map(|(a, c)| a / c);
    t(
        "sync with static deltas bytes / ostree static delta",
        r,
        "(info)",
        None,
    );
    for (a, bk, what) in [
        ("list_large", "rpm_qa", "reimage list vs rpm -qa"),
        ("qf_large", "rpm_qf", "reimage query -f vs rpm -qf"),
        (
            "diff_large",
            "rpm_diff",
            "reimage diff vs diff of two rpm -qa",
        ),
        (
            "diff_files_large",
            "rpm_dump_diff",
            "reimage diff --files vs diff of two rpm -qa --dump",
        ),
        ("verify_large", "rpmV_large", "reimage verify vs rpm -Va"),
    ] {
        let r = ratio(bk, a);
        t(&format!("{what}, large set: speed-up"), r, "(info)", None);
    }
    writeln!(
        md,
        "## Headline: targets of issues 3, 4, 6, 7 and ratios to peers\n"
    )?;
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

    let mut jsections = vec![];
    for sec in sections {
        if sec.contenders.is_empty() {
            writeln!(
                md,
                "## {}\n\nFull run only (left out by `--quick`).\n",
                sec.title
            )?;
            continue;
        }
        writeln!(md, "## {}\n", sec.title)?;

        let mb = sec.bytes.is_some() && (sec.id == "import" || sec.id == "dedupe");
        let pf = sec.contenders.iter().any(|c| c.files.is_some());
        writeln!(
            md,
            "| contender | durable median | min..max | done median |{}{} x {} |",
            if mb { " MB/s |" } else { "" },
            if pf { " files | µs/file |" } else { "" },
            if sec.reference.is_empty() {
                "its reference (see commands)"
            } else {
                "reimage time"
            }
        )?;
        writeln!(
            md,
            "|---|---:|---:|---:|{}{}---:|",
            if mb { "---:|" } else { "" },
            if pf { "---:|---:|" } else { "" }
        )?;
        let mut jcs = vec![];
        for c in &sec.contenders {
            let d = c.durable();
            let n = c.done();
            let refkey = reference_of(sec, c);
            let rel = match (refkey.as_deref().and_then(|k| med(sections, k)), d) {
                (Some(r), Some(d)) => Some(d.median / r),
                _ => None,
            };
            match (d, n) {
                (Some(d), Some(n)) => {
                    let mbs = sec.bytes.map(|b| b as f64 / 1e6 / d.median);
                    writeln!(
                        md,
                        "| {} | {:.3} | {:.3}..{:.3} | {:.3} |{}{} {} |",
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
                        match (pf, c.files) {
                            (true, Some(f)) =>
                                format!(" {f} | {:.1} |", d.median * 1e6 / f.max(1) as f64),
                            (true, None) => " | |".to_string(),
                            _ => String::new(),
                        },
                        rel.map(|r| format!("{r:.2}x"))
                            .unwrap_or_else(|| "-".into())
                    )?;
                }
                _ => {
                    writeln!(
                        md,
                        "| {} | NOT MEASURED: {} | | |{}{} |",
                        esc(&c.label),
                        c.error
                            .as_deref()
                            .unwrap_or("no samples")
                            .replace('|', "/")
                            .replace('\n', " "),
                        if mb { " |" } else { "" },
                        if pf { " | |" } else { "" }
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
                "mb_per_s": match (sec.bytes, d) { (Some(b), Some(d)) if mb => Some(b as f64 / 1e6 / d.median), _ => None },
                "files": c.files,
                "us_per_file": match (c.files, d) { (Some(f), Some(d)) => Some(d.median * 1e6 / f.max(1) as f64), _ => None },
                "reference": refkey,
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
    writeln!(
        md,
        "## Sync bytes: realistic v1 -> v2 ({nchanged} packages changed)\n"
    )?;
    let sy = &extra["sync"];
    if let Some(e) = sy.get("error") {
        writeln!(md, "NOT MEASURED: {e}\n")?;
    } else {
        let dnf = sy["dnf_bytes"].as_u64().unwrap_or(0).max(1) as f64;
        let row = |md: &mut String, what: &str, v: &Value| -> Result<()> {
            match v.as_u64() {
                Some(b) => writeln!(
                    md,
                    "| {what} | {b} | {:.1} | {:.2} |",
                    b as f64 / 1e6,
                    b as f64 / dnf
                )?,
                None => writeln!(md, "| {what} | NOT MEASURED | | |")?,
            }
            Ok(())
        };
        writeln!(
            md,
            "| what moves over the wire | bytes | MB | / dnf download |"
        )?;
        writeln!(md, "|---|---:|---:|---:|")?;
        row(&mut md, "dnf: the changed `.rpm` files", &sy["dnf_bytes"])?;
        row(
            &mut md,
            "rsync of the `.rpm` directory (zstd, `--fuzzy`, delta transfer; `--stats` sent + received)",
            &sy["rpm_rsync_bytes"],
        )?;
        row(
            &mut md,
            "`reimage sync --no-deltas` (live rsync, seeded bases; `wire_bytes`)",
            &sy["live_bytes"],
        )?;
        row(
            &mut md,
            &format!(
                "`reimage sync` with static deltas (`--delta-level {}`; `wire_bytes`)",
                sy["delta_level"]
            ),
            &sy["delta_bytes"],
        )?;
        match sy["ostree_delta"].get("bytes") {
            Some(v) => row(
                &mut md,
                "`ostree static-delta generate --inline` of the two views (bsdiff + lzma)",
                v,
            )?,
            None => writeln!(
                md,
                "| ostree static delta | {} | | |",
                sy["ostree_delta"]
                    .get("skipped")
                    .or(sy["ostree_delta"].get("error"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .replace('|', "/")
            )?,
        }
        writeln!(
            md,
            "\n- publish v2 with deltas took {:.1} s (v1: {:.1} s); ostree delta generation {} s; first sync of v1 moved {} bytes (live), rsync of the v1 `.rpm` files {}\n",
            sy["publish_v2_seconds"].as_f64().unwrap_or(0.0),
            sy["publish_v1_seconds"].as_f64().unwrap_or(0.0),
            sy["ostree_delta"]["generate_seconds"]
                .as_f64()
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "-".into()),
            sy["live_first_sync_bytes"],
            sy["rpm_rsync_v1_bytes"],
        )?;
        {
            let dd = &sy["delta_detail"];
            writeln!(
                md,
                "\nStatic delta bytes by encoding and by kind of file (v1 -> v2):\n"
            )?;
            writeln!(md, "| | files | bytes |")?;
            writeln!(md, "|---|---:|---:|")?;
            for part in ["encodings", "kinds"] {
                if let Some(m) = dd[part].as_object() {
                    for (k, v) in m {
                        writeln!(md, "| {part}: {k} | {} | {} |", v["files"], v["bytes"])?;
                    }
                }
            }
        }
    }
    let dd = &extra["dedupe"];
    writeln!(md, "## Dedupe detail\n")?;
    writeln!(
        md,
        "- last rep's `reimage --json dedupe`: disk before {} B, after {} B, freed {} B; {} packages rebuilt ({} B written, {} B shared by FIDEDUPERANGE while rebuilding), {} kept as they are ({} B left stored twice); {} B shared afterwards\n",
        dd["report"]["disk_before"],
        dd["report"]["disk_after"],
        dd["report"]["freed_bytes"],
        dd["report"]["rebuilt"].as_array().map(|a| a.len()).unwrap_or(0),
        dd["report"]["rebuilt_written_bytes"],
        dd["report"]["rebuilt_cloned_bytes"],
        dd["report"]["kept"].as_array().map(|a| a.len()).unwrap_or(0),
        dd["report"]["left_bytes"],
        dd["report"]["deduped_bytes"],
    )?;
    if let Some(tv) = disk.get("two_versions") {
        let m = |v: &Value| format!("{:.1} MiB", v.as_u64().unwrap_or(0) as f64 / 1048576.0);
        writeln!(
            md,
            "## Disk: two versions (realistic v1 and v2), by compsize\n"
        )?;
        writeln!(md, "| how | disk |")?;
        writeln!(md, "|---|---:|")?;
        writeln!(
            md,
            "| reimage: pool `packages/` (v1 + v2 + edge-update) + view v1 + view v2 | {} |",
            m(&tv["reimage_pool_and_views"])
        )?;
        writeln!(
            md,
            "| snapper way: `rpm -i` root of v1 + snapshot updated with `rpm -U` | {} |",
            m(&tv["snapper_root_and_updated_snapshot"])
        )?;
        writeln!(
            md,
            "| two separate `rpm -i` roots | {} |\n",
            m(&tv["separate_roots"])
        )?;
    }
    let up = &extra["update"];
    writeln!(md, "## Update end to end detail\n")?;
    writeln!(
        md,
        "- last rep of `reimage --json upgrade`: {}\n- publish with deltas (seconds): {}\n",
        up["last_rep"], up["publish_seconds"]
    )?;
    let h = &extra["history"];
    writeln!(md, "## History: 20 views, 5 deployments\n")?;
    let mib = |v: &Value| format!("{:.2} MiB", v.as_u64().unwrap_or(0) as f64 / 1048576.0);
    writeln!(
        md,
        "- first view: {}; each extra view (one package changed, base chosen by compose): {} ({} of it metadata); each extra deployment: {} ({} metadata); composing all 20: {:.1} s\n",
        mib(&h["first_view_bytes"]),
        mib(&h["bytes_per_extra_view"]),
        mib(&h["metadata_per_extra_view"]),
        mib(&h["bytes_per_extra_deployment"]),
        mib(&h["metadata_per_extra_deployment"]),
        h["compose_20_seconds"].as_f64().unwrap_or(f64::NAN),
    )?;
    if let Some(e) = h.get("error").or(up.get("error")) {
        writeln!(md, "- error: {e}\n")?;
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
        "extra": extra,
        "notes": notes,
    });
    Ok((md, js))
}
