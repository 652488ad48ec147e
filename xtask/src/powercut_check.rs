//! The host's checks of a disk after a power cut.
//!
//! 1. `reimage fsck --full --sysroot --esp` passes; when it reports
//!    garbage, `--repair` (run after the boot of 4) may remove only `tmp/`
//!    content and temporary files; when it reports boot entries lagging the
//!    record (a cut between the record, the commit point, and the ESP),
//!    `--repair` brings them in line, and fsck is clean after it.
//! 2. Nothing is half-present: every package is one of the installed or
//!    imported ones, and an imported one has the reference run's bytes
//!    (fsck `--full` verified each against its header already); a view
//!    present is `system` or `v2`, and v2 equals the reference's and passes
//!    `reimage verify`; every boot entry on the ESP (mtools) parses, names a
//!    deployment of the state record, and its kernel and initrd exist with
//!    the SHA-256 their names carry; the entry systemd-boot picks is the
//!    record's default (or, with the ESP lagging, another deployment the
//!    record keeps), a deployment whose view verifies.
//! 3. What the guest had finished before the cut (its log says so) is there:
//!    a finished operation was durable.
//! 4. Boot (after every fifth cut): the default entry's kernel and initrd
//!    with its options, until the deployment's systemd starts (a snapshot
//!    of the disk: the boot changes nothing).
//! 5. The interrupted operation is run again (on the host), then the ones
//!    after it; the result equals the reference run's: packages (imported
//!    ones byte for byte), views and their package lists, the deployments,
//!    the default, the boot entries' names and text, an empty `tmp/`.
use super::{Cut, Setup};
use crate::cmd;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A disk image on a loop device (`losetup -P`), its btrfs mounted.
pub struct Attached {
    pub dev: String,
    pub mnt: PathBuf,
}

impl Attached {
    pub fn new(img: &Path, mnt: &Path, readonly: bool) -> Result<Attached> {
        let mut c = Command::new("losetup");
        c.args(["--find", "--show", "--partscan"]);
        if readonly {
            c.arg("--read-only");
        }
        let dev = cmd::run_capture(c.arg(img))?.trim().to_string();
        let a = Attached {
            dev,
            mnt: mnt.to_path_buf(),
        };
        let part = format!("{}p2", a.dev);
        let t0 = Instant::now();
        let mut asked = false;
        while !Path::new(&part).exists() {
            // This host's kernel does not always scan at attach time: ask
            // again (BLKPG, what `partx -a` does).
            if !asked && t0.elapsed() > Duration::from_millis(500) {
                asked = true;
                cmd::run_capture(Command::new("partx").arg("-a").arg(&a.dev))?;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{part} did not appear after losetup --partscan {}",
                    img.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::create_dir_all(mnt)?;
        let mut m = Command::new("mount");
        if readonly {
            m.args(["-o", "ro"]);
        }
        cmd::run_capture(m.arg(&part).arg(mnt))
            .with_context(|| format!("cannot mount the btrfs of {}", img.display()))?;
        Ok(a)
    }

    /// The ESP (partition 1), as `--esp` takes it and mtools read it.
    pub fn esp(&self) -> String {
        format!("{}p1", self.dev)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mounted = Command::new("findmnt")
            .arg("-rn")
            .arg(&self.mnt)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn reimage(s: &Setup, a: &Attached) -> Command {
    let mut c = Command::new(&s.bin);
    c.arg("--quiet").arg("--pool").arg(a.mnt.join("pool"));
    c
}

/// Every `problems` list in a fsck report (the pool's and the system's).
fn problems(v: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = v["problems"].as_array().cloned().unwrap_or_default();
    out.extend(
        v["system"]["problems"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    out
}

fn fsck_json(s: &Setup, a: &Attached, repair: bool) -> Result<Value> {
    let mut c = reimage(s, a);
    c.args(["--json", "fsck", "--full", "--sysroot"])
        .arg(&a.mnt)
        .arg("--esp")
        .arg(a.esp());
    if repair {
        c.arg("--repair");
    }
    let out = c
        .stdin(Stdio::null())
        .output()
        .context("cannot run reimage fsck")?;
    let v: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "reimage fsck printed no JSON ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let p = problems(&v);
    if !p.is_empty() || !out.status.success() {
        bail!(
            "fsck{}: {} problems: {}",
            if repair { " --repair" } else { "" },
            p.len(),
            serde_json::to_string(&p)?
        );
    }
    Ok(v)
}

/// What fsck found besides problems: garbage, and boot entries lagging the
/// record (an interrupted deploy, rollback or gc between the record and
/// the ESP).
struct Found {
    garbage: Vec<String>,
    lag: Vec<String>,
}

/// fsck passes (without `--repair`).
fn fsck(s: &Setup, a: &Attached) -> Result<Found> {
    let v = fsck_json(s, a, false)?;
    let strings = |vals: [&Value; 2], field: Option<&str>| -> Vec<String> {
        let mut out = Vec::new();
        for g in vals {
            for p in g.as_array().into_iter().flatten() {
                let p = field.map_or(p, |f| &p[f]);
                out.push(p.as_str().unwrap_or_default().to_string());
            }
        }
        out
    };
    Ok(Found {
        garbage: strings([&v["garbage"], &v["system"]["garbage"]], None),
        lag: strings([&v["system"]["unfinished"], &Value::Null], Some("message")),
    })
}

/// `fsck --repair` removes only `tmp/` content or temporary files, and
/// brings lagging boot entries in line; fsck is clean after it. Returns a
/// note of what it did.
fn repair(s: &Setup, a: &Attached, f: &Found) -> Result<Option<String>> {
    if f.garbage.is_empty() && f.lag.is_empty() {
        return Ok(None);
    }
    let r = fsck_json(s, a, true)?;
    let tmp = a.mnt.join("pool/tmp");
    let mut repaired = Vec::new();
    for g in [&r["repaired"], &r["system"]["repaired"]] {
        for p in g.as_array().into_iter().flatten() {
            let p = PathBuf::from(p.as_str().unwrap_or_default());
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let ok = p.starts_with(&tmp)
                || name.starts_with(".tmp")
                || p.starts_with(a.mnt.join("reimage/tmp"));
            if !ok {
                bail!(
                    "fsck --repair removed {} (not tmp/ content or a temporary file)",
                    p.display()
                );
            }
            repaired.push(p.strip_prefix(&a.mnt).unwrap_or(&p).display().to_string());
        }
    }
    let finished: Vec<String> = r["system"]["finished"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    let after = fsck(s, a)?;
    if !after.garbage.is_empty() || !after.lag.is_empty() {
        bail!(
            "after fsck --repair: garbage {:?}, boot entries still lagging {:?}",
            after.garbage,
            after.lag
        );
    }
    let mut note = Vec::new();
    if !repaired.is_empty() {
        note.push(format!("repair removed {}", repaired.join(", ")));
    }
    if !f.lag.is_empty() {
        note.push(format!(
            "boot entries lagged the record ({}); repair: {}",
            f.lag.join("; "),
            finished.join(", ")
        ));
    }
    Ok(Some(note.join("; ")))
}

fn mtools(prog: &str, a: &Attached) -> Command {
    let mut c = Command::new(prog);
    c.arg("-i").arg(a.esp()).env("MTOOLS_SKIP_CHECK", "1");
    c
}

fn esp_list(a: &Attached, dir: &str) -> Result<Vec<String>> {
    let out = cmd::run_capture(mtools("mdir", a).args(["-b", &format!("::{dir}")]))?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim_end_matches('/').rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect())
}

fn esp_read(a: &Attached, path: &str, to: &Path) -> Result<Vec<u8>> {
    cmd::run_capture(
        mtools("mcopy", a)
            .arg("-on")
            .arg(format!("::{path}"))
            .arg(to),
    )?;
    Ok(std::fs::read(to)?)
}

/// The boot entries (file name -> text).
fn entries(s: &Setup, a: &Attached) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for n in esp_list(a, "/loader/entries")? {
        if n.starts_with("reimage-") && n.ends_with(".conf") {
            let t = esp_read(a, &format!("/loader/entries/{n}"), &s.dir.join("entry.tmp"))?;
            out.insert(n, String::from_utf8_lossy(&t).into_owned());
        }
    }
    Ok(out)
}

/// `reimage-ID[+LEFT[-DONE]].conf` -> (id, tries left: None when blessed).
fn entry_name(n: &str) -> Option<(u64, Option<u32>)> {
    let stem = n.strip_prefix("reimage-")?.strip_suffix(".conf")?;
    match stem.split_once('+') {
        None => Some((stem.parse().ok()?, None)),
        Some((id, c)) => Some((id.parse().ok()?, Some(c.split('-').next()?.parse().ok()?))),
    }
}

fn key<'a>(text: &'a str, k: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
        .map(str::trim)
}

/// What one parsed entry says.
pub struct Parsed {
    pub id: u64,
    pub rank: u64,
    pub exhausted: bool,
    pub linux: String,
    pub initrd: String,
    pub options: String,
}

fn parse_entries(e: &BTreeMap<String, String>) -> Result<Vec<Parsed>> {
    let mut out = Vec::new();
    for (n, t) in e {
        let (id, left) =
            entry_name(n).with_context(|| format!("boot entry {n}: not a reimage entry name"))?;
        let get = |k: &str| {
            key(t, k)
                .map(str::to_string)
                .with_context(|| format!("boot entry {n} has no {k} line: {t:?}"))
        };
        if get("sort-key")? != "reimage" || get("title")?.is_empty() {
            bail!("boot entry {n}: bad sort-key or title: {t:?}");
        }
        out.push(Parsed {
            id,
            rank: get("version")?
                .parse()
                .with_context(|| format!("boot entry {n}: version is not a rank"))?,
            exhausted: left == Some(0),
            linux: get("linux")?,
            initrd: get("initrd")?,
            options: get("options")?,
        });
    }
    Ok(out)
}

/// The entry systemd-boot boots: the highest rank among those with tries
/// left, else the highest rank.
fn loader_pick(p: &[Parsed]) -> Option<u64> {
    let best = |it: Vec<&Parsed>| it.into_iter().max_by_key(|e| (e.rank, e.id)).map(|e| e.id);
    best(p.iter().filter(|e| !e.exhausted).collect()).or_else(|| best(p.iter().collect()))
}

fn state(a: &Attached) -> Result<Value> {
    let p = a.mnt.join("reimage/state.json");
    let t = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&t).with_context(|| format!("{} is not JSON", p.display()))
}

fn deployments(st: &Value) -> Vec<(u64, String)> {
    st["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["id"].as_u64().unwrap_or(0),
                d["view"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn names(dir: &Path) -> Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    crate::boot::file_names(dir)
}

fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// What the reference run ends with, and what it is made of.
pub struct Print {
    /// The packages of the installed disk.
    pub base: Vec<String>,
    /// The imported packages' pool names and SHA-256 (the junk one's from
    /// the pool before gc is unknown: fsck --full verifies it).
    pub digests: BTreeMap<String, String>,
    pub junk: String,
    pub end: Value,
}

/// The state the checks compare: packages, views, deployments, default,
/// entries, `tmp/`.
fn fingerprint(s: &Setup, a: &Attached, digests: &BTreeMap<String, String>) -> Result<Value> {
    let pool = a.mnt.join("pool");
    let mut views = BTreeMap::new();
    for v in names(&pool.join("views"))? {
        let out = cmd::run_capture(reimage(s, a).args(["list", &v]))?;
        views.insert(v, out);
    }
    let mut d = BTreeMap::new();
    for n in digests.keys() {
        let p = pool.join("packages").join(n);
        if p.exists() {
            d.insert(n.clone(), sha256_file(&p)?);
        }
    }
    let st = state(a)?;
    Ok(json!({
        "packages": names(&pool.join("packages"))?,
        "digests": d,
        "views": views,
        "deployments": deployments(&st),
        "default": st["default"],
        "entries": entries(s, a)?,
        "tmp": names(&pool.join("tmp"))?,
    }))
}

/// Checks the reference run's disk and takes its fingerprint.
pub fn reference(s: &Setup, img: &Path) -> Result<Print> {
    let base = {
        let a = Attached::new(&s.base, &s.dir.join("mnt"), true)?;
        names(&a.mnt.join("pool/packages"))?
    };
    let a = Attached::new(img, &s.dir.join("mnt"), false)?;
    fsck(s, &a)?;
    let pool = a.mnt.join("pool/packages");
    let mut digests = BTreeMap::new();
    for n in names(&pool)? {
        if !base.contains(&n) {
            digests.insert(n.clone(), sha256_file(&pool.join(&n))?);
        }
    }
    let junk = s.junk.trim_end_matches(".rpm").to_string();
    let end = fingerprint(s, &a, &digests)?;
    let st = state(&a)?;
    let deps = deployments(&st);
    if !deps.contains(&(2, "v2".into())) || st["default"] != 1 || digests.contains_key(&junk) {
        bail!("the reference run ended in an unexpected state: deployments {deps:?}, default {}, packages {:?}", st["default"], digests.keys());
    }
    Ok(Print {
        base,
        digests,
        junk,
        end,
    })
}

/// Nothing half-present (see the module doc, 2); returns the entry the
/// boot loader picks.
fn whole(s: &Setup, a: &Attached, r: &Print, lag: bool) -> Result<Parsed> {
    let pool = a.mnt.join("pool");
    for n in names(&pool.join("packages"))? {
        if r.base.contains(&n) || n == r.junk {
            continue;
        }
        let want = r
            .digests
            .get(&n)
            .with_context(|| format!("packages/{n}: not a package of the workload"))?;
        if &sha256_file(&pool.join("packages").join(&n))? != want {
            bail!("packages/{n} differs from the reference run's");
        }
    }
    for v in names(&pool.join("views"))? {
        match v.as_str() {
            "system" => {}
            "v2" => {
                cmd::run_capture(reimage(s, a).args(["verify", "v2"]))
                    .context("view v2 does not verify")?;
                let l = cmd::run_capture(reimage(s, a).args(["list", "v2"]))?;
                if r.end["views"]["v2"].as_str() != Some(l.as_str()) {
                    bail!("view v2's packages differ from the reference run's");
                }
            }
            _ => bail!("views/{v}: not a view of the workload"),
        }
    }
    let st = state(a)?;
    let deps = deployments(&st);
    let e = entries(s, a)?;
    let parsed = parse_entries(&e)?;
    let files = esp_list(a, "/reimage")?;
    let pick = loader_pick(&parsed).context("no boot entry on the ESP")?;
    for p in &parsed {
        // A lagging ESP may still hold the entry of a deployment the record
        // dropped (gc, cleanup), never as the loader's pick.
        if !deps.iter().any(|(id, _)| *id == p.id) && (!lag || p.id == pick) {
            bail!(
                "boot entry of deployment {} which the state record does not list ({deps:?})",
                p.id
            );
        }
        for f in [&p.linux, &p.initrd] {
            let name = f.rsplit('/').next().unwrap_or_default();
            if !files.iter().any(|x| x.eq_ignore_ascii_case(name)) {
                bail!("boot entry {}: {f} is not on the ESP", p.id);
            }
            let data = esp_read(a, f, &s.dir.join("esp-file.tmp"))?;
            let sum = hex::encode(&sha2::Sha256::digest(&data)[..8]);
            if !name.to_ascii_lowercase().ends_with(&sum) {
                bail!(
                    "boot entry {}: {f} has SHA-256 {sum}..., not what its name says",
                    p.id
                );
            }
        }
    }
    // With the ESP lagging, the loader starts the previous default, which
    // the record keeps (checked above) and which must verify (below).
    if st["default"].as_u64() != Some(pick) && !lag {
        bail!(
            "systemd-boot would boot deployment {pick}, the state record's default is {}",
            st["default"]
        );
    }
    let view = deps
        .iter()
        .find(|(id, _)| *id == pick)
        .map(|d| d.1.clone())
        .unwrap_or_default();
    cmd::run_capture(reimage(s, a).args(["verify", &view]))
        .with_context(|| format!("the default deployment {pick}'s view {view} does not verify"))?;
    let p = parsed.into_iter().find(|p| p.id == pick).unwrap();
    Ok(p)
}

/// Whether operation `op` has its effect on the disk.
fn is_done(s: &Setup, a: &Attached, r: &Print, op: &str, later_gc: bool) -> Result<bool> {
    let pool = a.mnt.join("pool");
    let pk = names(&pool.join("packages"))?;
    let st = state(a)?;
    let v2_deployed = deployments(&st).iter().any(|(_, v)| v == "v2");
    let _ = s;
    Ok(match op {
        "import" => r.digests.keys().all(|n| pk.contains(n)) && (later_gc || pk.contains(&r.junk)),
        "compose" => pool.join("views/v2").exists(),
        "deploy" => v2_deployed,
        "rollback" => v2_deployed && st["default"] == 1,
        "gc" => !pk.contains(&r.junk),
        _ => false,
    })
}

/// Boots the default entry (kernel, initrd, options) on a snapshot of the
/// disk until the deployment's systemd starts.
fn boot(
    s: &Setup,
    disk: &Path,
    id: u64,
    kernel: &Path,
    initrd: &Path,
    options: &str,
) -> Result<()> {
    let log = s.dir.join("boot.log");
    let _ = std::fs::remove_file(&log);
    let mut append = options.to_string();
    if !append.contains("console=ttyS0") {
        append.push_str(" console=ttyS0");
    }
    let mut q = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(&append)
        .arg("-drive")
        .arg(format!(
            "if=virtio,format=raw,snapshot=on,file={}",
            disk.display()
        ))
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-nic",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .spawn()
        .context("cannot start qemu-system-x86_64")?;
    let t0 = Instant::now();
    let want = format!("subvol=/reimage/deployments/{id}");
    let r = loop {
        let t = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        let started = t
            .split("switching root")
            .nth(1)
            .is_some_and(|r| r.contains("Welcome to") || r.contains("systemd["));
        if started {
            break if t.contains(&want) {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "the boot did not mount deployment {id} ({want}); log {}",
                    log.display()
                ))
            };
        }
        if t.contains("reimage-init: FAILED") || q.try_wait()?.is_some() {
            break Err(anyhow::anyhow!(
                "the boot of deployment {id} failed; log {} ends:\n{}",
                log.display(),
                crate::boot::tail(&t, 15)
            ));
        }
        if t0.elapsed() > Duration::from_secs(240) {
            break Err(anyhow::anyhow!(
                "deployment {id}'s systemd did not start in 240 s; log {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = q.kill();
    let _ = q.wait();
    r
}

/// Runs the operations from `from` on, as the workload does (on the host),
/// skipping one whose effect is already there (a compose whose view exists,
/// a deploy or rollback recorded).
fn rerun(s: &Setup, a: &Attached, r: &Print, from: usize) -> Result<Vec<String>> {
    let mut ran = Vec::new();
    for op in &super::OPS[from..] {
        let skip = matches!(*op, "compose" | "deploy" | "rollback") && is_done(s, a, r, op, false)?;
        if skip {
            ran.push(format!("{op} (already done)"));
            continue;
        }
        let mut c = reimage(s, a);
        match *op {
            "import" => c.arg("import").args(&s.imports),
            "compose" => c.args(["compose", "v2", "--from", "system"]).args(&s.specs),
            "deploy" => c
                .args(["deploy", "v2", "--sysroot"])
                .arg(&a.mnt)
                .arg("--esp")
                .arg(a.esp()),
            "rollback" => c
                .args(["rollback", "--sysroot"])
                .arg(&a.mnt)
                .arg("--esp")
                .arg(a.esp()),
            _ => c.arg("gc"),
        };
        cmd::run_capture(&mut c).with_context(|| format!("{op} run again after the cut"))?;
        ran.push(op.to_string());
    }
    Ok(ran)
}

/// All checks of one cut (module doc).
pub fn after_cut(
    s: &Setup,
    disk: &Path,
    done: &[String],
    running: Option<&str>,
    boot_it: bool,
    r: &Print,
    cut: &mut Cut,
) -> Result<()> {
    let mnt = s.dir.join("mnt");
    let (pick, found) = {
        let a = Attached::new(disk, &mnt, false)?;
        let found = fsck(s, &a)?;
        let pick = whole(s, &a, r, !found.lag.is_empty())?;
        let later_gc = done.iter().any(|d| d == "gc") || running == Some("gc");
        for op in done {
            if !is_done(s, &a, r, op, later_gc)? {
                bail!("{op} had finished before the cut, but its effect is not on the disk");
            }
        }
        if boot_it {
            esp_read(&a, &pick.linux, &s.dir.join("boot-vmlinuz"))?;
            esp_read(&a, &pick.initrd, &s.dir.join("boot-initrd"))?;
        }
        (pick, found)
    };
    if boot_it {
        boot(
            s,
            disk,
            pick.id,
            &s.dir.join("boot-vmlinuz"),
            &s.dir.join("boot-initrd"),
            &pick.options,
        )?;
        cut.booted = Some(pick.id);
    }
    // The boot ran on a snapshot of the disk as the cut left it; the repair
    // runs on the disk itself, before the rerun.
    let a = Attached::new(disk, &mnt, false)?;
    if let Some(n) = repair(s, &a, &found)? {
        cut.notes.push(n);
    }
    let from = match running {
        Some(op) => super::OPS.iter().position(|o| *o == op).unwrap_or(0),
        None => done.len(),
    };
    let ran = rerun(s, &a, r, from)?;
    if !ran.is_empty() {
        cut.notes.push(format!("ran again: {}", ran.join(", ")));
    }
    let got = fingerprint(s, &a, &r.digests)?;
    if got != r.end {
        let mut diff = Vec::new();
        for (k, v) in r.end.as_object().into_iter().flatten() {
            if got[k] != *v {
                diff.push(format!(
                    "{k}: reference {v}, after the cut and the rerun {}",
                    got[k]
                ));
            }
        }
        bail!(
            "after the rerun the disk differs from the uninterrupted run: {}",
            diff.join("; ")
        );
    }
    Ok(())
}
