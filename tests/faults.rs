//! Fault injection through the real binary on a real btrfs (issue 9):
//!
//! - **kill points**: `import`, `compose`, `compose --from`, `dedupe` and `gc`
//!   are killed (SIGKILL, through `REIMAGE_FAILPOINT=NAME:N`, see
//!   `src/failpoint.rs`) at every hit of every failpoint an uninterrupted run
//!   passes (the full suite, `cargo xtask faults`), or at the first, middle
//!   and last hit of each (`kill_points_quick`, in CI), plus kills at random
//!   times. After each kill: `fsck` passes (or passes after `--repair`
//!   removed only garbage), every view present is complete and equal to the
//!   one an uninterrupted run makes (nothing half-visible), every package
//!   present has the bytes an uninterrupted run gives it; then the operation
//!   is run again and the pool must equal the pool of an uninterrupted run
//!   (packages byte for byte, view trees by a walk) with `tmp/` empty.
//! - **ENOSPC** on a 256 MiB loop btrfs, filled during import and compose.
//! - **two writers** at once: import + gc, compose + gc, two composes of one name.
mod common;

use common::*;
use reimage_testkit::require_root;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reimage")
}

/// `reimage --pool POOL ARGS` with extra environment, quietly (the suite
/// runs hundreds of them; failures print their output).
fn run(pool: &Path, args: &[String], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(bin());
    c.arg("--pool").arg(pool).arg("--quiet").args(args);
    c.env_remove("REIMAGE_POOL")
        .env_remove("REIMAGE_FAILPOINT")
        .env_remove("REIMAGE_FAILPOINT_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("cannot run reimage")
}

fn must(pool: &Path, args: &[String]) {
    let out = run(pool, args, &[]);
    assert!(
        out.status.success(),
        "reimage {} failed ({:?}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn edge(name: &str) -> String {
    testdata("edge").join(name).display().to_string()
}

/// The edge packages the scenarios use (all but the one compose refuses).
fn edge_rpms() -> Vec<String> {
    let mut v: Vec<String> = rpms(&testdata("edge"))
        .into_iter()
        .map(|p| p.display().to_string())
        .filter(|p| !p.contains("edge-unmapped") && !p.contains("edge-update-1.1"))
        .collect();
    v.push(edge("edge-update-1.1-1.x86_64.rpm"));
    v
}

/// The package list of view v1 (file names, as compose takes them).
fn v1_list() -> Vec<String> {
    edge_rpms()
        .iter()
        .filter(|p| !p.contains("edge-update-1.1"))
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// v2 = v1 with edge-update 1.0 -> 1.1 (a small difference: --from stays incremental).
fn v2_list() -> Vec<String> {
    v1_list()
        .into_iter()
        .map(|p| p.replace("edge-update-1.0-1", "edge-update-1.1-1"))
        .collect()
}

/// One operation under test: how to prepare the pool, what to run.
struct Scenario {
    op: &'static str,
    setup: fn(&Path),
    args: fn() -> Vec<String>,
}

fn setup_empty(_: &Path) {}

fn setup_imported(pool: &Path) {
    let mut a = s(&["import"]);
    a.extend(edge_rpms());
    must(pool, &a);
}

fn setup_v1(pool: &Path) {
    setup_imported(pool);
    let mut a = s(&["compose", "v1"]);
    a.extend(v1_list());
    must(pool, &a);
}

/// Rewrites every package as a copy, sharing lost: work for dedupe. The
/// `edge-compress-*` ones file by file (each file its own extent, as import
/// writes them: dedupe shares them with FIDEDUPERANGE), the others in one
/// write (big extents: dedupe rebuilds them).
fn setup_copied(pool: &Path) {
    use std::os::unix::fs::FileExt;
    setup_imported(pool);
    for e in std::fs::read_dir(pool.join("packages")).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let tmp = p.with_extension("copy");
        let f = std::fs::File::create(&tmp).unwrap();
        if p.to_string_lossy().contains("edge-compress") {
            let (index, index_offset) =
                reimage::extent::Index::read(&std::fs::File::open(&p).unwrap()).unwrap();
            let mut cuts = vec![0, index.data_start(), index_offset, bytes.len() as u64];
            for en in &index.entries {
                if en.length > 0 {
                    cuts.push(en.offset);
                }
            }
            cuts.sort();
            cuts.dedup();
            for w in cuts.windows(2) {
                f.write_all_at(&bytes[w[0] as usize..w[1] as usize], w[0])
                    .unwrap();
                f.sync_all().unwrap();
            }
        } else {
            f.write_all_at(&bytes, 0).unwrap();
            f.sync_all().unwrap();
        }
        std::fs::rename(&tmp, &p).unwrap();
    }
}

/// A view of a few packages: gc has the others to remove.
fn setup_gc(pool: &Path) {
    setup_imported(pool);
    must(
        pool,
        &s(&[
            "compose",
            "small",
            "edge-sizes-1.0-1.x86_64.rpm",
            "edge-links-1.0-1.x86_64.rpm",
        ]),
    );
}

/// The repository the sync scenario syncs from: published once per suite
/// (`kill_suite`) with the real binary.
static REPO: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn repo() -> String {
    REPO.get()
        .expect("the sync repository is published first")
        .display()
        .to_string()
}

/// Publishes image `demo`: version 1 (three edge packages) and version 2
/// (edge-update 1.0 -> 1.1 and two new packages; all three have static
/// deltas, the new ones from nothing: `sync` applies deltas, `sync
/// --no-deltas` fetches the packages with rsync).
fn publish_repo(repo: &Path) {
    let v1 = [
        "edge-links-1.0-1.x86_64.rpm",
        "edge-sizes-1.0-1.x86_64.rpm",
        "edge-update-1.0-1.x86_64.rpm",
    ];
    let v2 = [
        "edge-links-1.0-1.x86_64.rpm",
        "edge-sizes-1.0-1.x86_64.rpm",
        "edge-update-1.1-1.x86_64.rpm",
        "edge-compress-xz-1.0-1.x86_64.rpm",
        "edge-modes-1.0-1.x86_64.rpm",
    ];
    let r = repo.display().to_string();
    let mut a = s(&["publish", &r, "demo", "1"]);
    a.extend(v1.iter().map(|f| edge(f)));
    must(repo, &a);
    let mut a = s(&["publish", &r, "demo", "2", "--deltas-from", "1"]);
    a.extend(v2.iter().map(|f| edge(f)));
    must(repo, &a);
}

/// A pool that synced and composed version 1.
fn setup_synced(pool: &Path) {
    must(pool, &s(&["sync", &repo(), "demo", "1", "--compose", "s1"]));
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            op: "import",
            setup: setup_empty,
            args: || {
                let mut a = s(&["import", "--jobs", "2"]);
                a.extend(edge_rpms());
                a
            },
        },
        Scenario {
            op: "compose",
            setup: setup_imported,
            args: || {
                let mut a = s(&["compose", "v1"]);
                a.extend(v1_list());
                a
            },
        },
        Scenario {
            op: "compose-from",
            setup: setup_v1,
            args: || {
                let mut a = s(&["compose", "v2", "--from", "v1"]);
                a.extend(v2_list());
                a
            },
        },
        Scenario {
            op: "dedupe",
            setup: setup_copied,
            args: || s(&["dedupe"]),
        },
        Scenario {
            op: "gc",
            setup: setup_gc,
            args: || s(&["gc"]),
        },
        Scenario {
            op: "sync",
            setup: setup_synced,
            args: || s(&["sync", &repo(), "demo", "2", "--compose", "s2"]),
        },
        Scenario {
            op: "sync-rsync",
            setup: setup_synced,
            args: || s(&["sync", &repo(), "demo", "2", "--no-deltas"]),
        },
    ]
}

/// What the pool holds: packages (name -> SHA256 of the bytes) and views
/// (name -> walk of the tree).
#[derive(Debug, Clone, PartialEq, Default)]
struct State {
    packages: BTreeMap<String, String>,
    views: BTreeMap<String, BTreeMap<String, String>>,
    /// The image manifests sync recorded (`images/IMAGE/VERSION.json`).
    images: BTreeMap<String, String>,
}

/// Every entry of a tree, `view.json` without its creation time.
fn walk(root: &Path) -> BTreeMap<String, String> {
    common::walk(root, ViewJson::WithoutProvenance)
}

fn state(pool: &Path) -> State {
    let mut st = State::default();
    for e in std::fs::read_dir(pool.join("packages")).unwrap() {
        let p = e.unwrap().path();
        st.packages.insert(
            p.file_name().unwrap().to_string_lossy().into(),
            sha256_file(&p),
        );
    }
    for e in std::fs::read_dir(pool.join("views")).unwrap() {
        let p = e.unwrap().path();
        st.views
            .insert(p.file_name().unwrap().to_string_lossy().into(), walk(&p));
    }
    if let Ok(rd) = std::fs::read_dir(pool.join("images")) {
        for image in rd {
            let image = image.unwrap().path();
            for e in std::fs::read_dir(&image).unwrap() {
                let p = e.unwrap().path();
                st.images.insert(
                    p.strip_prefix(pool).unwrap().display().to_string(),
                    sha256_file(&p),
                );
            }
        }
    }
    st
}

fn tmp_entries(pool: &Path) -> Vec<String> {
    std::fs::read_dir(pool.join("tmp"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes a pool with its (read-only) subvolumes.
fn remove_pool(pool: &Path) {
    for sub in ["views", "tmp"] {
        if let Ok(rd) = std::fs::read_dir(pool.join(sub)) {
            for e in rd {
                reimage::pool::remove_any(&e.unwrap().path()).unwrap();
            }
        }
    }
    std::fs::remove_dir_all(pool).unwrap();
}

/// fsck through the library (the same code as `reimage fsck`): must pass,
/// or pass after `--repair` removed garbage only. Returns what was repaired.
fn fsck_must_pass(pool: &Path, what: &str) -> Vec<PathBuf> {
    use reimage::fsck::{fsck, FsckOptions};
    let p = reimage::pool::Pool::open(pool).unwrap();
    let r = fsck(&p, &FsckOptions::default()).unwrap();
    assert!(r.tmp_checked, "{what}: fsck could not take the lock");
    if r.ok() {
        return Vec::new();
    }
    assert!(
        r.problems.iter().all(|p| p.kind == "stray"),
        "{what}: fsck found problems: {:#?}",
        r.problems
    );
    let rep = fsck(
        &p,
        &FsckOptions {
            repair: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rep.ok(), "{what}: fsck --repair left {:#?}", rep.problems);
    for x in &rep.repaired {
        let name = x.file_name().unwrap().to_string_lossy();
        assert!(
            x.starts_with(pool.join("tmp")) || reimage::fsck::is_temp_name(&name),
            "{what}: repair removed {}, which is not garbage",
            x.display()
        );
    }
    rep.repaired
}

/// Checks a pool just after a kill: fsck, nothing half-visible, nothing
/// that differs from what an uninterrupted run produces.
fn check_after_kill(pool: &Path, known: &State, what: &str) {
    fsck_must_pass(pool, what);
    let now = state(pool);
    for (name, sum) in &now.packages {
        assert_eq!(
            known.packages.get(name),
            Some(sum),
            "{what}: package {name} is not what an uninterrupted run writes"
        );
    }
    for (name, tree) in &now.views {
        let want = known
            .views
            .get(name)
            .unwrap_or_else(|| panic!("{what}: unexpected view {name}"));
        if tree != want {
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| tree.get(*k) != Some(v))
                .map(|(k, _)| k)
                .chain(tree.keys().filter(|k| !want.contains_key(*k)))
                .take(10)
                .collect();
            panic!("{what}: view {name} is visible but differs from a complete one: {diff:?}");
        }
    }
    for (rel, sum) in &now.images {
        assert_eq!(
            known.images.get(rel),
            Some(sum),
            "{what}: {rel} is not what an uninterrupted sync records"
        );
        if !rel.ends_with(".json") {
            continue;
        }
        // Recorded only once every package it names is in the pool.
        let m = reimage::publish::Manifest::parse(&std::fs::read(pool.join(rel)).unwrap())
            .unwrap_or_else(|e| panic!("{what}: {rel}: {e:#}"));
        for p in &m.packages {
            assert!(
                now.packages.contains_key(&p.file),
                "{what}: {rel} is recorded but {} is not in the pool",
                p.file
            );
        }
    }
}

/// The keys whose values differ between two maps (or that one lacks).
fn differing<'a, V: PartialEq>(
    a: &'a BTreeMap<String, V>,
    b: &'a BTreeMap<String, V>,
) -> std::collections::BTreeSet<&'a String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect()
}

/// Reruns the operation after a kill and compares with the reference.
fn rerun_and_compare(pool: &Path, sc: &Scenario, reference: &State, what: &str) {
    let args = (sc.args)();
    let out = run(pool, &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let published_already = out.status.code() == Some(1)
        && (sc.op.starts_with("compose") || sc.op.starts_with("sync"))
        && stderr.contains("already exists");
    assert!(
        out.status.success() || published_already,
        "{what}: rerun of {} failed ({:?}): {stderr}",
        sc.op,
        out.status
    );
    if published_already {
        // The view was complete before the kill; the next writer cleans tmp/.
        let p = reimage::pool::Pool::open(pool).unwrap();
        let _l = p.lock(true).unwrap();
        p.clean_tmp().unwrap();
    }
    let after = state(pool);
    if after != *reference {
        let pk = differing(&reference.packages, &after.packages);
        let vw = differing(&reference.views, &after.views);
        let im = differing(&reference.images, &after.images);
        panic!("{what}: after the rerun the pool differs from an uninterrupted run: packages {pk:?}, views {vw:?}, images {im:?}");
    }
    assert!(
        tmp_entries(pool).is_empty(),
        "{what}: tmp/ not empty after the rerun: {:?}",
        tmp_entries(pool)
    );
    let r = fsck_must_pass(pool, what);
    assert!(r.is_empty(), "{what}: garbage after the rerun: {r:?}");
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// What the suite ran.
#[derive(Default)]
struct Summary {
    /// (op, failpoint, n) that killed the process.
    killed: Vec<(String, String, u64)>,
    /// Random-time kills that hit a running process.
    random_killed: Vec<(String, u64)>,
    /// Random-time kills that came after the process had finished.
    random_late: usize,
    /// Hits per (op, failpoint) in an uninterrupted run.
    hits: BTreeMap<(String, String), u64>,
}

/// Which hits to kill at: all, or first/middle/last (quick), or at most
/// `max` spread evenly.
fn pick(hits: u64, quick: bool, max: Option<u64>) -> Vec<u64> {
    let mut v: Vec<u64> = if quick {
        vec![1, hits.div_ceil(2), hits]
    } else {
        match max {
            Some(m) if hits > m => (0..m)
                .map(|i| 1 + i * (hits - 1) / (m - 1).max(1))
                .collect(),
            _ => (1..=hits).collect(),
        }
    };
    v.sort();
    v.dedup();
    v.retain(|n| *n >= 1);
    v
}

fn kill_suite(quick: bool, max_per_name: Option<u64>, random_kills: usize) -> Summary {
    let dir = reimage_testkit::btrfs_dir(if quick { "faults-quick" } else { "faults" });
    let mut sum = Summary::default();
    let seed: u64 = std::env::var("REIMAGE_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d);
    eprintln!("random kill seed: {seed} (REIMAGE_FAULTS_SEED)");
    let mut rng = Rng(seed | 1);
    let repo = dir.join("repo");
    publish_repo(&repo);
    REPO.set(repo).expect("one kill suite per test process");
    let mut n_pool = 0u64;
    let mut fresh = |sc: &Scenario| -> PathBuf {
        n_pool += 1;
        let p = dir.join(format!("{}-{n_pool}", sc.op));
        must(&p, &s(&["init"]));
        (sc.setup)(&p);
        p
    };
    for sc in scenarios() {
        // The reference: an uninterrupted run, with every failpoint logged.
        let pool = fresh(&sc);
        let before = state(&pool);
        let log = dir.join(format!("{}.hits", sc.op));
        let started = Instant::now();
        let out = run(
            &pool,
            &(sc.args)(),
            &[("REIMAGE_FAILPOINT_LOG", log.display().to_string())],
        );
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "uninterrupted {} failed: {}",
            sc.op,
            String::from_utf8_lossy(&out.stderr)
        );
        let reference = state(&pool);
        assert!(tmp_entries(&pool).is_empty());
        remove_pool(&pool);
        let mut known = reference.clone();
        for (k, v) in &before.packages {
            known.packages.entry(k.clone()).or_insert(v.clone());
        }
        for (k, v) in &before.views {
            known.views.entry(k.clone()).or_insert(v.clone());
        }
        for (k, v) in &before.images {
            known.images.entry(k.clone()).or_insert(v.clone());
        }
        let mut hits: BTreeMap<String, u64> = BTreeMap::new();
        for l in std::fs::read_to_string(&log).unwrap().lines() {
            *hits.entry(l.to_string()).or_default() += 1;
        }
        assert!(
            !hits.is_empty(),
            "{}: an uninterrupted run passed no failpoint",
            sc.op
        );
        eprintln!("{}: {took:.2?} uninterrupted, failpoints {hits:?}", sc.op);
        for (name, &count) in &hits {
            sum.hits.insert((sc.op.into(), name.clone()), count);
            for n in pick(count, quick, max_per_name) {
                let what = format!("{} killed at {name}:{n}", sc.op);
                let pool = fresh(&sc);
                let out = run(
                    &pool,
                    &(sc.args)(),
                    &[("REIMAGE_FAILPOINT", format!("{name}:{n}"))],
                );
                assert_eq!(
                    out.status.signal(),
                    Some(9),
                    "{what}: the process was not killed ({:?}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                check_after_kill(&pool, &known, &what);
                rerun_and_compare(&pool, &sc, &reference, &what);
                remove_pool(&pool);
                sum.killed.push((sc.op.into(), name.clone(), n));
            }
        }
        // Kills at random times.
        for i in 0..random_kills {
            let pool = fresh(&sc);
            let at_us = rng.next() % (took.as_micros() as u64).max(1);
            let what = format!("{} killed at random time {at_us}us (#{i})", sc.op);
            let mut child = Command::new(bin())
                .arg("--pool")
                .arg(&pool)
                .arg("--quiet")
                .args((sc.args)())
                .env_remove("REIMAGE_FAILPOINT")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(at_us));
            let _ = child.kill();
            let st = child.wait().unwrap();
            if st.signal() == Some(9) {
                sum.random_killed.push((sc.op.into(), at_us));
            } else {
                sum.random_late += 1;
            }
            check_after_kill(&pool, &known, &what);
            rerun_and_compare(&pool, &sc, &reference, &what);
            remove_pool(&pool);
        }
    }
    sum
}

fn report(sum: &Summary) {
    let mut per: BTreeMap<(&str, &str), (usize, u64)> = BTreeMap::new();
    for (op, name, _) in &sum.killed {
        let hits = sum.hits[&(op.clone(), name.clone())];
        let e = per.entry((op, name)).or_insert((0, hits));
        e.0 += 1;
    }
    eprintln!("kill points (operation, failpoint: killed at / hits in an uninterrupted run):");
    for ((op, name), (n, hits)) in &per {
        eprintln!("  {op:14} {name:24} {n:4} / {hits}");
    }
    eprintln!(
        "{} failpoint kills at {} distinct failpoints, {} random-time kills ({} came after the end): {} distinct kill points, 0 failures",
        sum.killed.len(),
        per.len(),
        sum.random_killed.len(),
        sum.random_late,
        sum.killed.len() + sum.random_killed.len()
    );
}

/// The CI form: first, middle and last hit of every failpoint of every
/// operation, and one random-time kill each.
#[test]
fn kill_points_quick() {
    require_root!();
    let sum = kill_suite(true, None, 1);
    report(&sum);
    assert!(sum.killed.len() >= 30, "too few kill points ran");
    let ops: std::collections::BTreeSet<&str> =
        sum.killed.iter().map(|(o, _, _)| o.as_str()).collect();
    assert_eq!(ops.len(), 7, "every operation is killed: {ops:?}");
}

/// The full suite (`cargo xtask faults`): every hit of every failpoint
/// (`REIMAGE_FAULTS_MAX_PER_NAME` caps the hits per failpoint, spread
/// evenly), and `REIMAGE_FAULTS_RANDOM` (default 5) random-time kills per
/// operation.
#[test]
#[ignore = "long: run with cargo xtask faults"]
fn kill_points_full() {
    require_root!();
    let max = std::env::var("REIMAGE_FAULTS_MAX_PER_NAME")
        .ok()
        .and_then(|s| s.parse().ok());
    let random = std::env::var("REIMAGE_FAULTS_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let sum = kill_suite(false, max, random);
    report(&sum);
    assert!(
        sum.killed.len() + sum.random_killed.len() >= 100,
        "the full suite must run at least 100 kill points"
    );
}

/// fsck finds damage and repairs only garbage: a flipped byte in a
/// package's data, a stray temporary file, a writable view, a view whose
/// header directory lost a file. Damaged packages and views are reported,
/// never removed.
#[test]
fn fsck_finds_damage_and_repairs_only_garbage() {
    require_root!();
    use reimage::fsck::{fsck, FsckOptions};
    let dir = reimage_testkit::btrfs_dir("fsck");
    let pool = dir.join("pool");
    must(&pool, &s(&["init"]));
    setup_v1(&pool);
    let p = reimage::pool::Pool::open(&pool).unwrap();
    let clean = fsck(
        &p,
        &FsckOptions {
            full: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(clean.ok(), "{:#?}", clean.problems);
    assert_eq!(clean.views, 1);
    assert!(clean.packages >= 15 && clean.files > 100 && clean.bytes > 4 << 20);

    // Garbage: tmp/ content is not a problem, a stray temp file is.
    std::fs::write(pool.join("tmp/leftover"), b"x").unwrap();
    std::fs::write(pool.join("packages/.tmpAbC123"), b"half a package").unwrap();
    std::fs::write(pool.join("index/.tmpZz9876"), b"{").unwrap();
    // Damage: one byte of file data.
    let victim = pool.join("packages/edge-sizes-1.0-1.x86_64");
    let (index, _) = reimage::extent::Index::read(&std::fs::File::open(&victim).unwrap()).unwrap();
    let e = index.entries.iter().find(|e| e.length > 100).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&victim)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, e.offset + 50).unwrap();
        b[0] ^= 0x40;
        f.write_all_at(&b, e.offset + 50).unwrap();
    }
    // Damage: a view made writable, then a header file removed.
    let view = pool.join("views/v1");
    let st = Command::new("btrfs")
        .args(["property", "set", "-f"])
        .arg(&view)
        .args(["ro", "false"])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(view.join("lib/sysimage/packages/edge-links-1.0-1.x86_64.rpm")).unwrap();

    let r = fsck(&p, &FsckOptions::default()).unwrap();
    let kinds: Vec<(&str, String)> = r
        .problems
        .iter()
        .map(|x| (x.kind, x.message.clone()))
        .collect();
    eprintln!("{kinds:#?}");
    assert!(!r.ok());
    assert_eq!(r.problems.iter().filter(|x| x.kind == "stray").count(), 2);
    assert!(r
        .problems
        .iter()
        .any(|x| x.kind == "package" && x.path == victim && x.message.contains("BLAKE3")));
    assert!(r
        .problems
        .iter()
        .any(|x| x.kind == "view" && x.message.contains("writable")));
    assert!(r
        .problems
        .iter()
        .any(|x| x.kind == "view" && x.message.contains("missing")));
    assert!(r.garbage.iter().any(|g| g.ends_with("tmp/leftover")));

    let rep = fsck(
        &p,
        &FsckOptions {
            repair: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rep.repaired.len(), 3, "{:?}", rep.repaired);
    assert!(!rep.ok(), "damage is not garbage: still reported");
    assert!(rep.problems.iter().all(|x| x.kind != "stray"));
    assert!(
        victim.exists() && view.exists(),
        "repair never removes packages or views"
    );
    assert!(tmp_entries(&pool).is_empty());
}

/// Bytes free to unprivileged writers on the filesystem of `p`.
fn free_bytes(p: &Path) -> u64 {
    let _ = std::fs::File::open(p).map(|f| rustix::fs::syncfs(&f));
    let st = rustix::fs::statvfs(p).unwrap();
    st.f_bavail * st.f_frsize
}

/// Writes 4 MiB files into `dir` until the filesystem is full.
fn fill_data(dir: &Path) -> Vec<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let chunk: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    let mut files = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("fill-{i}"));
        let res = std::fs::File::create(&p).and_then(|mut f| {
            f.write_all(&chunk)?;
            f.sync_all()
        });
        match res {
            Ok(()) => files.push(p),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "filling: {e}");
                let _ = std::fs::remove_file(&p);
                break;
            }
        }
    }
    files
}

/// Creates small (inline, metadata-only) files in `dir` until the
/// filesystem's metadata is full.
fn fill_metadata(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let data = vec![b'm'; 1800];
    let mut n = 0;
    loop {
        let p = dir.join(format!("m-{n}"));
        match std::fs::write(&p, &data) {
            Ok(()) => n += 1,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "filling metadata: {e}");
                let _ = std::fs::remove_file(&p);
                break;
            }
        }
        if n % 2000 == 0 {
            let _ = std::fs::File::open(dir).map(|f| rustix::fs::syncfs(&f));
        }
    }
    n
}

/// A full disk during import and compose: a clear error, nothing
/// half-published, the pool passes fsck, and once space is back the next
/// writer leaves `tmp/` empty and the space is given back.
#[test]
fn enospc_during_import_and_compose() {
    require_root!();
    use reimage_testkit::{FsType, ScratchFs};
    let fs = ScratchFs::new(FsType::Btrfs, 256 << 20).unwrap();
    let pool = fs.path().join("pool");
    must(&pool, &s(&["init"]));
    let free0 = free_bytes(fs.path());

    // Import: ~160 MiB of packages into ~40 MiB.
    let fill = fill_data(&fs.path().join("fill"));
    assert!(fill.len() > 20, "the filler should take most of the space");
    for f in fill.iter().rev().take(10) {
        std::fs::remove_file(f).unwrap();
    }
    let out = run(
        &pool,
        &s(&["import", &testdata("realistic/v1").display().to_string()]),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "import into a full disk: {err}");
    assert!(
        err.contains("No space left on device"),
        "the error says why: {err}"
    );
    assert!(!err.contains("panicked"));
    fsck_must_pass(&pool, "import on a full disk");
    let imported = std::fs::read_dir(pool.join("packages")).unwrap().count();
    eprintln!("import on a full disk: {imported} packages made it, each complete");

    // Space back; the next writer cleans up.
    std::fs::remove_dir_all(fs.path().join("fill")).unwrap();
    must(&pool, &s(&["import", &edge("edge-empty-1.0-1.x86_64.rpm")]));
    assert!(tmp_entries(&pool).is_empty());
    let held: u64 = std::fs::read_dir(pool.join("packages"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let free1 = free_bytes(fs.path());
    eprintln!("free: {free0} at first, {free1} after cleanup, packages hold {held}");
    assert!(
        free1 + held + (24 << 20) >= free0,
        "space is given back: {free0} free at first, {free1} after, packages {held}"
    );

    // Compose with no metadata space left.
    must(&pool, &{
        let mut a = s(&["import"]);
        a.extend(edge_rpms());
        a
    });
    let fill = fill_data(&fs.path().join("fill"));
    let m = fill_metadata(&fs.path().join("meta"));
    eprintln!("filled with {} data files and {m} small files", fill.len());
    let mut args = s(&["compose", "v1"]);
    args.extend(v1_list());
    let out = run(&pool, &args, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "compose on a full disk: {err}");
    assert!(
        err.contains("No space left on device"),
        "the error says why: {err}"
    );
    assert!(!pool.join("views/v1").exists(), "nothing published");
    fsck_must_pass(&pool, "compose on a full disk");
    std::fs::remove_dir_all(fs.path().join("fill")).unwrap();
    std::fs::remove_dir_all(fs.path().join("meta")).unwrap();
    must(&pool, &args);
    assert!(tmp_entries(&pool).is_empty());
    fsck_must_pass(&pool, "compose after space came back");
}

fn spawn(pool: &Path, args: &[String]) -> std::process::Child {
    Command::new(bin())
        .arg("--pool")
        .arg(pool)
        .arg("--quiet")
        .args(args)
        .env_remove("REIMAGE_FAILPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Two writers at once: import + gc, compose + gc, two composes of one
/// name, and a writer with --no-wait while another holds the pool.
/// Serialized or refused, never corrupt.
#[test]
fn two_writers_at_once() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("two-writers");
    // The view an uninterrupted compose makes.
    let refpool = dir.join("ref");
    must(&refpool, &s(&["init"]));
    setup_v1(&refpool);
    let want = walk(&refpool.join("views/v1"));
    let known = state(&refpool);

    let pool = dir.join("pool");
    must(&pool, &s(&["init"]));
    let mut import = s(&["import"]);
    import.extend(edge_rpms());
    let mut compose_v1 = s(&["compose", "v1"]);
    compose_v1.extend(v1_list());
    let (mut gc_first, mut compose_first) = (0, 0);
    for round in 0..6 {
        // import + gc
        let a = spawn(&pool, &import);
        let b = spawn(&pool, &s(&["gc"]));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(
            a.status.success(),
            "import: {}",
            String::from_utf8_lossy(&a.stderr)
        );
        assert!(
            b.status.success(),
            "gc: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        fsck_must_pass(&pool, "import + gc");
        for (name, sum) in state(&pool).packages {
            assert_eq!(known.packages.get(&name), Some(&sum), "import + gc: {name}");
        }

        // compose + gc
        must(&pool, &import);
        let name = format!("c{round}");
        let mut c = compose_v1.clone();
        c[1] = name.clone();
        let a = spawn(&pool, &c);
        let b = spawn(&pool, &s(&["gc"]));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(
            b.status.success(),
            "gc: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        let view = pool.join("views").join(&name);
        if a.status.success() {
            compose_first += 1;
            assert_eq!(walk(&view), want, "view {name} composed alongside gc");
        } else {
            gc_first += 1;
            let err = String::from_utf8_lossy(&a.stderr);
            assert!(err.contains("not in the pool"), "compose after gc: {err}");
            assert!(!view.exists());
        }
        fsck_must_pass(&pool, "compose + gc");

        // two composes of one name
        must(&pool, &import);
        let name = format!("same{round}");
        let mut c = compose_v1.clone();
        c[1] = name.clone();
        let a = spawn(&pool, &c);
        let b = spawn(&pool, &c);
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let oks = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(oks, 1, "exactly one of two composes of {name} succeeds");
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        assert_eq!(loser.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&loser.stderr).contains("already exists"));
        assert_eq!(walk(&pool.join("views").join(&name)), want);
        fsck_must_pass(&pool, "two composes");
    }
    eprintln!("compose + gc: compose first {compose_first}, gc first {gc_first}");

    // --no-wait while another writer holds the lock: refused, nothing changed.
    let p = reimage::pool::Pool::open(&pool).unwrap();
    let before = state(&pool);
    let lock = p.lock(false).unwrap();
    let out = run(&pool, &s(&["gc", "--no-wait"]), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another reimage writer holds"));
    let mut c = compose_v1.clone();
    c[1] = "nowait".into();
    c.push("--no-wait".into());
    let out = run(&pool, &c, &[]);
    assert_eq!(out.status.code(), Some(1));
    drop(lock);
    assert_eq!(state(&pool), before);
}
