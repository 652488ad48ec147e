//! Realistic test packages: real Debian packages converted to RPM.
//!
//! `testdata/realistic.list` pins ~40 bookworm packages in two versions (v1 older,
//! v2 newer). Debs are fetched with `apt-get download NAME=VERSION` into
//! `$XDG_CACHE_HOME/reimage/debs` (default `~/.cache/reimage/debs`) and converted by
//! [`convert`] into `$XDG_CACHE_HOME/reimage/rpms/<deb sha256>-c<CONVERTER>/`, so a
//! second run only copies. The converter (not `alien`, which loses owners and epochs):
//! * moves `/bin`, `/sbin`, `/lib`, `/lib32`, `/lib64`, `/libx32` into `/usr` as Fedora
//!   does, rewriting symlink targets so they resolve to the same file afterwards;
//! * keeps owner names, modes (setuid included), mtimes, symlinks, hardlinks, and
//!   directories as entries; `conffiles` become `%config(noreplace)`;
//! * maps `[epoch:]upstream[-revision]` to Epoch/Version/Release (characters rpm
//!   forbids become `_`; a native version gets Release `0`), `amd64` to `x86_64` and
//!   `all` to `noarch`; Provides are the name and the deb's Provides, Requires the first
//!   alternative of each Depends/Pre-Depends, unversioned;
//! * writes a zstd payload with SHA256 file digests; the build time is the newest
//!   mtime in the deb, so a conversion is a pure function of the deb.
use crate::cmd;
use crate::deb;
use crate::edge;
use anyhow::{bail, Context, Result};
use rpm::{BuildConfig, CompressionWithLevel, Dependency, FileOptions, PackageBuilder, Timestamp};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Bump when the converter's output changes: it is part of the cache key.
const CONVERTER: u32 = 1;
/// zstd level of converted payloads (Fedora uses 19; this keeps a cold run short).
const ZSTD_LEVEL: i32 = 12;
const TAG_BUILDTIME: u32 = 1006;
/// Top-level directories merged into /usr.
const MERGED: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The cache root: `${XDG_CACHE_HOME:-$HOME/.cache}/reimage`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        })
        .join("reimage")
}

/// A version column that says "not in this set".
const ABSENT: &str = "-";

/// One line of `realistic.list`.
struct Pin {
    name: String,
    v1: String,
    v2: String,
}

fn read_list(path: &Path) -> Result<Vec<Pin>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut pins = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let [name, v1, v2] = w.as_slice() else {
            bail!("{}:{}: expected `NAME V1 V2`", path.display(), i + 1);
        };
        let v2 = if *v2 == "=" { v1 } else { v2 };
        pins.push(Pin {
            name: name.to_string(),
            v1: v1.to_string(),
            v2: v2.to_string(),
        });
    }
    Ok(pins)
}

/// The cached deb for NAME=VERSION, if downloaded (apt writes `:` as `%3a`).
fn cached_deb(dir: &Path, name: &str, version: &str) -> Option<PathBuf> {
    let prefix = format!("{name}_{}_", version.replace(':', "%3a"));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}

/// All versions `apt-cache madison` offers for `name`, oldest first.
fn madison(name: &str) -> Vec<String> {
    let out =
        cmd::run_capture(Command::new("apt-cache").args(["madison", name])).unwrap_or_default();
    let mut vs: Vec<String> = out
        .lines()
        .filter_map(|l| l.split('|').nth(1).map(|v| v.trim().to_string()))
        .collect();
    vs.sort_by(|a, b| {
        if a == b {
            std::cmp::Ordering::Equal
        } else if Command::new("dpkg")
            .args(["--compare-versions", a, "lt", b])
            .status()
            .is_ok_and(|s| s.success())
        {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
    vs.dedup();
    vs
}

/// Downloads every missing NAME=VERSION into `dir` (one `apt-get download` call, then
/// one per package on failure, with a fallback to what the mirror offers).
fn download(
    dir: &Path,
    wanted: &[(String, String)],
) -> Result<BTreeMap<(String, String), PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let missing: Vec<&(String, String)> = wanted
        .iter()
        .filter(|(n, v)| cached_deb(dir, n, v).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "testdata: realistic: downloading {} debs into {}",
            missing.len(),
            dir.display()
        );
        // An image without apt lists cannot download anything: update them once.
        if madison(&missing[0].0).is_empty() {
            if !cmd::is_root() {
                bail!(
                    "apt has no package lists (run `apt-get update` as root) to download {}",
                    missing[0].0
                );
            }
            cmd::run_visible(Command::new("apt-get").arg("update"))?;
        }
        let args: Vec<String> = missing.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let batch = cmd::run_capture(
            Command::new("apt-get")
                .arg("download")
                .args(&args)
                .current_dir(dir),
        );
        if let Err(e) = batch {
            eprintln!("testdata: realistic: batch download failed, retrying one by one: {e:#}");
            for (n, v) in &missing {
                if cached_deb(dir, n, v).is_some() {
                    continue;
                }
                let one = cmd::run_capture(
                    Command::new("apt-get")
                        .arg("download")
                        .arg(format!("{n}={v}"))
                        .current_dir(dir),
                );
                if let Err(e) = one {
                    eprintln!("warning: {n}={v} is not downloadable ({e:#})");
                }
            }
        }
    }
    let mut found = BTreeMap::new();
    for (n, v) in wanted {
        let path = match cached_deb(dir, n, v) {
            Some(p) => p,
            None => {
                // The pinned version left the mirror: take the closest the mirror offers.
                let offered = madison(n);
                let pick = offered
                    .iter()
                    .find(|o| *o >= v)
                    .or(offered.last())
                    .with_context(|| format!("{n}: no version of it is available from apt"))?
                    .clone();
                eprintln!("warning: {n}={v} is unavailable; using {n}={pick} (update testdata/realistic.list)");
                if cached_deb(dir, n, &pick).is_none() {
                    cmd::run_capture(
                        Command::new("apt-get")
                            .arg("download")
                            .arg(format!("{n}={pick}"))
                            .current_dir(dir),
                    )?;
                }
                cached_deb(dir, n, &pick)
                    .with_context(|| format!("{n}={pick}: download produced no file"))?
            }
        };
        found.insert((n.clone(), v.clone()), path);
    }
    Ok(found)
}

/// What was converted, for the summary.
#[derive(Default, Clone, Copy)]
struct Stats {
    packages: usize,
    files: usize,
    bytes: u64,
    rpm_bytes: u64,
}

fn stats_of(path: &Path) -> Result<Stats> {
    let meta =
        rpm::PackageMetadata::open(path).with_context(|| format!("reading {}", path.display()))?;
    let files = meta.get_file_entries().map(|v| v.len()).unwrap_or(0);
    Ok(Stats {
        packages: 1,
        files,
        bytes: meta.get_installed_size().unwrap_or(0),
        rpm_bytes: std::fs::metadata(path)?.len(),
    })
}

/// Builds `OUT/v1` and `OUT/v2`.
pub fn run(out: &Path) -> Result<()> {
    build_sets("realistic", out)
}

/// The closed, bootable Debian set of `testdata/boot.list` (v1, v2), for the
/// boot test.
pub fn boot(out: &Path) -> Result<()> {
    build_sets("boot", out)
}

/// Downloads, converts and writes `out/v1`, `out/v2` from `testdata/NAME.list`.
fn build_sets(name: &str, out: &Path) -> Result<()> {
    let t0 = Instant::now();
    let list = cmd::repo_root().join(format!("testdata/{name}.list"));
    let pins = read_list(&list)?;
    let cache = cache_root();
    let debs_dir = cache.join("debs");
    let rpms_dir = cache.join("rpms");
    let mut wanted: Vec<(String, String)> = Vec::new();
    for p in &pins {
        for v in [&p.v1, &p.v2] {
            if v != ABSENT && !wanted.contains(&(p.name.clone(), v.clone())) {
                wanted.push((p.name.clone(), v.clone()));
            }
        }
    }
    let debs = download(&debs_dir, &wanted)?;
    let t_download = t0.elapsed();

    // Convert (or find in the cache) every distinct deb, on all cores.
    let jobs: Vec<PathBuf> = debs
        .values()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<HashMap<PathBuf, (PathBuf, bool)>> = Mutex::new(HashMap::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(deb) = jobs.get(i) else { break };
                match convert_cached(deb, &rpms_dir) {
                    Ok(r) => {
                        results.lock().unwrap().insert(deb.clone(), r);
                    }
                    Err(e) => errors
                        .lock()
                        .unwrap()
                        .push(format!("{}: {e:#}", deb.display())),
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        bail!("converting debs failed:\n{}", errors.join("\n"));
    }
    let results = results.into_inner().unwrap();
    let converted = results.values().filter(|(_, fresh)| *fresh).count();

    // Release "1.deb": the Debian-flavoured skeleton differs from the edge set's
    // Fedora-flavoured one, and one pool may hold both (the demo does).
    let filesystem = edge::filesystem("1.deb", true)?;
    for (set, pick) in [("v1", 0), ("v2", 1)] {
        let dir = out.join(set);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let mut total = Stats::default();
        for p in &pins {
            let v = if pick == 0 { &p.v1 } else { &p.v2 };
            if v == ABSENT {
                continue;
            }
            let deb = &debs[&(p.name.clone(), v.clone())];
            let (rpm_path, _) = &results[deb];
            let dest = dir.join(rpm_path.file_name().context("rpm path without a name")?);
            std::fs::copy(rpm_path, &dest)
                .with_context(|| format!("copying to {}", dest.display()))?;
            let s = stats_of(&dest)?;
            total.packages += 1;
            total.files += s.files;
            total.bytes += s.bytes;
            total.rpm_bytes += s.rpm_bytes;
        }
        let fs_path = edge::write(&dir, &filesystem)?;
        let s = stats_of(&fs_path)?;
        total.packages += 1;
        total.files += s.files;
        eprintln!(
            "testdata: {name}/{set}: {} packages, {} files, {:.1} MiB installed, {:.1} MiB of rpm -> {}",
            total.packages,
            total.files,
            total.bytes as f64 / 1048576.0,
            total.rpm_bytes as f64 / 1048576.0,
            dir.display()
        );
    }
    eprintln!(
        "testdata: {name}: {} debs ({} converted now, {} from the cache {}) in {:.1}s (download {:.1}s)",
        jobs.len(),
        converted,
        jobs.len() - converted,
        rpms_dir.display(),
        t0.elapsed().as_secs_f64(),
        t_download.as_secs_f64()
    );
    Ok(())
}

/// Converts `deb` unless the cache has it; returns (rpm path, converted now).
fn convert_cached(deb: &Path, rpms_dir: &Path) -> Result<(PathBuf, bool)> {
    let bytes = std::fs::read(deb).with_context(|| format!("reading {}", deb.display()))?;
    let key = format!("{}-c{CONVERTER}", hex::encode(sha2::Sha256::digest(&bytes)));
    let dir = rpms_dir.join(&key);
    if let Some(hit) = std::fs::read_dir(&dir).ok().and_then(|rd| {
        rd.flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "rpm"))
    }) {
        return Ok((hit, false));
    }
    let t = Instant::now();
    let (file_name, rpm_bytes, notes) =
        convert(&bytes).with_context(|| format!("converting {}", deb.display()))?;
    let tmp = rpms_dir.join(format!("{key}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join(&file_name), &rpm_bytes)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir)?;
    eprintln!(
        "testdata: converted {} -> {file_name} ({} bytes, {:.1}s){}",
        deb.file_name().unwrap_or_default().to_string_lossy(),
        rpm_bytes.len(),
        t.elapsed().as_secs_f64(),
        if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join("; "))
        }
    );
    Ok((dir.join(file_name), true))
}

/// `/bin/x` -> `/usr/bin/x`, `/lib` -> `/usr/lib`; other paths unchanged.
pub fn usrmerge(path: &str) -> String {
    for m in MERGED {
        if path == m || path.strip_prefix(m).is_some_and(|r| r.starts_with('/')) {
            return format!("/usr{path}");
        }
    }
    path.to_string()
}

/// Lexically normalizes an absolute path (`.` and `..` resolved, `//` collapsed).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `to` relative to the directory `from_dir` (both absolute and normalized).
fn relative(from_dir: &str, to: &str) -> String {
    let a: Vec<&str> = from_dir.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; a.len() - common];
    parts.extend(&b[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// The symlink target to write for a link moved from `old` to `new`: unchanged
/// unless the link or what it points to moved with the /usr merge.
pub fn retarget(old: &str, new: &str, target: &str) -> String {
    if target.starts_with('/') {
        let t = usrmerge(&normalize(target));
        return if t == normalize(target) {
            target.to_string()
        } else {
            t
        };
    }
    let abs = normalize(&format!("{}/{target}", parent(old)));
    let merged = usrmerge(&abs);
    if merged == abs && old == new {
        return target.to_string();
    }
    relative(parent(new), &merged)
}

/// Replaces characters rpm forbids in a version or release.
fn rpm_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+%{}~^".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `[epoch:]upstream[-revision]` -> (epoch, version, release).
pub fn split_version(v: &str) -> (Option<u32>, String, String) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().ok(), r)
        }
        _ => (None, v),
    };
    let (up, rev) = match rest.rfind('-') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, "0"),
    };
    (epoch, rpm_safe(up), rpm_safe(rev))
}

/// Dependency names from a Depends-style field: first alternative, no version or arch.
fn dep_names(field: Option<&String>) -> Vec<String> {
    let Some(f) = field else { return Vec::new() };
    f.split(',')
        .filter_map(|item| {
            let first = item.split('|').next()?.trim();
            let name = first
                .split(|c: char| c.is_whitespace() || c == '(')
                .next()?;
            let name = name.split(':').next()?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

struct Item {
    path: String,
    kind: Kind,
    mode: u16,
    user: String,
    group: String,
    mtime: u32,
}

/// Converts one deb; returns (rpm file name, rpm bytes, notes about what was changed).
pub fn convert(deb_bytes: &[u8]) -> Result<(String, Vec<u8>, Vec<String>)> {
    let members = deb::ar_members(deb_bytes)?;
    let (cname, cdata) = members
        .iter()
        .find(|(n, _)| n.starts_with("control.tar"))
        .context("deb has no control.tar")?;
    let (dname, ddata) = members
        .iter()
        .find(|(n, _)| n.starts_with("data.tar"))
        .context("deb has no data.tar")?;
    let control = deb::read_control(cname, cdata)?;
    let f = &control.fields;
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let name = field("Package");
    let (epoch, version, release) = split_version(&field("Version"));
    let arch = match field("Architecture").as_str() {
        "amd64" => "x86_64".to_string(),
        "all" => "noarch".to_string(),
        "i386" => "i686".to_string(),
        "arm64" => "aarch64".to_string(),
        other => other.to_string(),
    };
    let mut notes = Vec::new();

    // Read the data tarball, relocating paths.
    let mut items: Vec<Item> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut moved = 0usize;
    let mut retargeted = 0usize;
    let mut ar = tar::Archive::new(deb::tar_reader(dname, ddata)?);
    for entry in ar.entries()? {
        let mut e = entry?;
        let raw = e.path()?.to_string_lossy().into_owned();
        let old = normalize(&format!("/{}", raw.trim_start_matches("./")));
        if old == "/" {
            continue;
        }
        let new = usrmerge(&old);
        if new != old {
            moved += 1;
        }
        let h = e.header();
        let mode = (h.mode()? & 0o7777) as u16;
        let mtime = h.mtime()? as u32;
        let user = h
            .username()
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
            .unwrap_or("root")
            .to_string();
        let group = h
            .groupname()
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
            .unwrap_or("root")
            .to_string();
        let et = h.entry_type();
        let kind = if et.is_dir() {
            Kind::Dir
        } else if et.is_symlink() {
            let target = e
                .link_name()?
                .context("symlink without target")?
                .to_string_lossy()
                .into_owned();
            let t = retarget(&old, &new, &target);
            if t != target {
                retargeted += 1;
            }
            Kind::Symlink(t)
        } else if et.is_hard_link() {
            let target = e
                .link_name()?
                .context("hardlink without target")?
                .to_string_lossy()
                .into_owned();
            Kind::Hardlink(usrmerge(&normalize(&format!(
                "/{}",
                target.trim_start_matches("./")
            ))))
        } else if et.is_file() {
            let mut data = Vec::with_capacity(e.size() as usize);
            e.read_to_end(&mut data)?;
            Kind::File(data)
        } else {
            notes.push(format!("skipped special file {old}"));
            continue;
        };
        let item = Item {
            path: new.clone(),
            kind,
            mode,
            user,
            group,
            mtime,
        };
        match index.get(&new) {
            None => {
                index.insert(new, items.len());
                items.push(item);
            }
            Some(&i) => {
                // Two deb paths became one (e.g. /lib/x and /usr/lib/x): directories merge,
                // a real file wins over a symlink; otherwise the first one stays.
                let prev = &items[i];
                match (&prev.kind, &item.kind) {
                    (Kind::Dir, Kind::Dir) => {}
                    (Kind::Symlink(_), Kind::File(_) | Kind::Hardlink(_)) => {
                        notes.push(format!("{new}: kept the file, dropped the symlink"));
                        items[i] = item;
                    }
                    _ => notes.push(format!(
                        "{new}: shipped twice after the /usr merge, kept the first"
                    )),
                }
            }
        }
    }
    if moved > 0 {
        notes.push(format!("{moved} paths moved into /usr"));
    }
    if retargeted > 0 {
        notes.push(format!("{retargeted} symlink targets rewritten"));
    }

    // Hardlink sets: the target and every link to it share one identity.
    let mut identity: HashMap<String, String> = HashMap::new();
    for it in &items {
        if let Kind::Hardlink(t) = &it.kind {
            identity.insert(t.clone(), t.clone());
            identity.insert(it.path.clone(), t.clone());
        }
    }
    let source_date = items
        .iter()
        .map(|i| i.mtime)
        .max()
        .unwrap_or(edge::SOURCE_DATE)
        .max(1);

    let description = field("Description");
    let mut lines = description.lines();
    let summary = lines.next().unwrap_or(&name).trim().to_string();
    let body: Vec<&str> = lines
        .map(|l| if l.trim() == "." { "" } else { l })
        .collect();
    let license = format!("Debian (see /usr/share/doc/{name}/copyright)");
    let mut b = PackageBuilder::new(
        &name,
        &version,
        &license,
        &arch,
        if summary.is_empty() { &name } else { &summary },
    );
    b.using_config(
        BuildConfig::v4()
            .source_date(source_date)
            .compression(CompressionWithLevel::Zstd(ZSTD_LEVEL)),
    )
    .release(release.clone())
    .description(if body.is_empty() {
        summary.clone()
    } else {
        body.join("\n")
    })
    .vendor("Debian (converted by reimage xtask)");
    if let Some(e) = epoch {
        b.epoch(e);
    }
    for (k, set) in [("Homepage", 0), ("Maintainer", 1), ("Section", 2)] {
        if let Some(v) = f.get(k) {
            match set {
                0 => b.url(v.clone()),
                1 => b.packager(v.clone()),
                _ => b.group(v.clone()),
            };
        }
    }
    for p in f
        .get("Provides")
        .map(|s| s.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let p = p.trim();
        let pname = p
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("");
        if pname.is_empty() || pname == name {
            continue;
        }
        match p.split_once("(=") {
            Some((_, v)) => {
                let (e, ver, rel) = split_version(v.trim_end_matches(')').trim());
                let pevr = match e {
                    Some(e) => format!("{e}:{ver}-{rel}"),
                    None => format!("{ver}-{rel}"),
                };
                b.provides(Dependency::eq(pname, pevr))
            }
            None => b.provides(Dependency::any(pname)),
        };
    }
    let mut reqs: BTreeSet<String> = BTreeSet::new();
    reqs.extend(dep_names(f.get("Pre-Depends")));
    reqs.extend(dep_names(f.get("Depends")));
    for r in reqs {
        b.requires(Dependency::any(r));
    }

    let conf: BTreeSet<&str> = control.conffiles.iter().map(|s| s.as_str()).collect();
    let by_path: HashMap<&str, &Item> = items.iter().map(|i| (i.path.as_str(), i)).collect();
    for it in &items {
        let ts = Timestamp(it.mtime);
        match &it.kind {
            Kind::Dir => {
                b.with_dir_entry(
                    FileOptions::dir(&it.path)
                        .permissions(it.mode)
                        .user(&it.user)
                        .group(&it.group)
                        .modified_at(ts),
                )?;
            }
            Kind::Symlink(t) => {
                b.with_symlink(
                    FileOptions::symlink(&it.path, t)
                        .user(&it.user)
                        .group(&it.group)
                        .modified_at(ts),
                )?;
            }
            Kind::File(_) | Kind::Hardlink(_) => {
                // A hardlink takes the content and metadata of its target.
                let src = match &it.kind {
                    Kind::Hardlink(t) => *by_path
                        .get(t.as_str())
                        .with_context(|| format!("hardlink {} to missing {t}", it.path))?,
                    _ => it,
                };
                let Kind::File(data) = &src.kind else {
                    bail!("hardlink {} points at a non-file", it.path);
                };
                let mut o = FileOptions::new(&it.path)
                    .permissions(src.mode)
                    .user(&src.user)
                    .group(&src.group)
                    .modified_at(Timestamp(src.mtime));
                if let Some(id) = identity.get(&it.path) {
                    o = o.hardlink(id);
                }
                if conf.contains(it.path.as_str()) {
                    o = o.config().noreplace();
                }
                b.with_file_contents(data.clone(), o)?;
            }
        }
    }
    let mut pkg = b.build()?;
    // The builder takes the clock when it is behind the deb's mtimes: pin the build
    // time so the conversion stays a pure function of the deb.
    if pkg.metadata.get_build_time()? != u64::from(source_date) {
        let mut entries = crate::surgery::entries(&pkg)?;
        for (t, d) in entries.iter_mut() {
            if *t == TAG_BUILDTIME {
                *d = rpm::IndexData::Int32(vec![source_date]);
            }
        }
        crate::surgery::rebuild(&mut pkg, entries, None)?;
    }
    let file_name = pkg.canonical_filename()?;
    let mut out = Vec::new();
    pkg.write(&mut out)?;
    Ok((file_name, out, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            split_version("1:2.38.1-5+deb12u1"),
            (Some(1), "2.38.1".into(), "5+deb12u1".into())
        );
        assert_eq!(split_version("9.1-1"), (None, "9.1".into(), "1".into()));
        assert_eq!(
            split_version("12.4+deb12u15"),
            (None, "12.4+deb12u15".into(), "0".into())
        );
        assert_eq!(
            split_version("1.0-beta-2"),
            (None, "1.0_beta".into(), "2".into())
        );
        assert_eq!(
            split_version("252.39-1~deb12u2"),
            (None, "252.39".into(), "1~deb12u2".into())
        );
    }

    #[test]
    fn merge_and_retarget() {
        assert_eq!(usrmerge("/bin/ls"), "/usr/bin/ls");
        assert_eq!(usrmerge("/lib"), "/usr/lib");
        assert_eq!(usrmerge("/library/x"), "/library/x");
        assert_eq!(usrmerge("/usr/lib/x"), "/usr/lib/x");
        // Absolute targets into merged directories follow the merge.
        assert_eq!(
            retarget(
                "/lib64/ld.so",
                "/usr/lib64/ld.so",
                "/lib/x86_64-linux-gnu/ld.so"
            ),
            "/usr/lib/x86_64-linux-gnu/ld.so"
        );
        // Relative target inside a moved directory: unchanged in effect.
        assert_eq!(
            retarget(
                "/lib/x/libfoo.so.1",
                "/usr/lib/x/libfoo.so.1",
                "libfoo.so.1.2"
            ),
            "libfoo.so.1.2"
        );
        // A /usr link pointing up into /lib now points within /usr.
        assert_eq!(
            retarget(
                "/usr/lib/x/libfoo.so",
                "/usr/lib/x/libfoo.so",
                "../../../lib/x/libfoo.so.1"
            ),
            "libfoo.so.1"
        );
        // A /bin link pointing into /usr/bin.
        assert_eq!(
            retarget("/bin/sh2", "/usr/bin/sh2", "../usr/bin/dash"),
            "dash"
        );
        assert_eq!(retarget("/usr/bin/x", "/usr/bin/x", "y"), "y");
    }

    #[test]
    fn deps() {
        let d = "libc6 (>= 2.34), libssl3 (>= 3.0.0) | libssl1.1, perl:any, debconf (>= 0.5) | debconf-2.0".to_string();
        assert_eq!(
            dep_names(Some(&d)),
            vec!["libc6", "libssl3", "perl", "debconf"]
        );
    }
}
