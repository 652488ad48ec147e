//! publish and sync on real btrfs: the realistic v1 -> v2 update from a
//! local path, a stock `rsync --daemon` on 127.0.0.1 and a static HTTP server
//! (`python3 -m http.server`), with and without static deltas; hostile
//! servers; kill -9 mid-sync and resume; newest-version selection.
mod common;

use common::*;
use reimage::pool::Pool;
use reimage::publish::{self, Manifest, PublishOptions, PublishReport};
use reimage::report::Silent;
use reimage::sync::{self, SyncOptions, SyncReport};
use reimage_testkit::require_root;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The realistic tests each need ~0.5 GiB of the shared 2 GiB btrfs: one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// zstd level of the tests' deltas: faster than the default 19 (the figures
/// in docs/sync.md are measured with 19).
const TEST_DELTA_LEVEL: i32 = 9;

fn do_publish(repo: &Path, version: &str, rpms: &Path, deltas_from: &[&str]) -> PublishReport {
    publish_paths(repo, version, &[rpms.to_path_buf()], deltas_from)
}

fn publish_paths(
    repo: &Path,
    version: &str,
    rpms: &[PathBuf],
    deltas_from: &[&str],
) -> PublishReport {
    let r = publish::publish(
        &PublishOptions {
            repo: repo.to_path_buf(),
            target: Some(("demo".into(), version.into())),
            paths: rpms.to_vec(),
            deltas_from: deltas_from.iter().map(|s| s.to_string()).collect(),
            delta_level: std::env::var("REIMAGE_TEST_DELTA_LEVEL")
                .ok()
                .and_then(|l| l.parse().ok())
                .unwrap_or(TEST_DELTA_LEVEL),
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_or_else(|e| panic!("publish {version}: {e:#}"));
    eprintln!(
        "published {version}: {}",
        serde_json::to_string(&r).unwrap()
    );
    r
}

fn try_sync(
    pool: &Path,
    source: &str,
    version: Option<&str>,
    deltas: bool,
) -> anyhow::Result<SyncReport> {
    let p = Pool::open(pool)?;
    sync::sync(
        &p,
        &SyncOptions {
            source: source.into(),
            image: "demo".into(),
            version: version.map(String::from),
            deltas,
            wait: true,
            ..Default::default()
        },
        &Silent,
    )
}

fn do_sync(pool: &Path, source: &str, version: Option<&str>, deltas: bool) -> SyncReport {
    let r = try_sync(pool, source, version, deltas)
        .unwrap_or_else(|e| panic!("sync {source} {version:?}: {e:#}"));
    eprintln!(
        "sync {source} {} deltas={deltas}: present {} delta {} rsync {} whole {}; wire {} (manifest {}, deltas {}, packages {}), rpm {}, refused deltas {:?}",
        r.version, r.present, r.by_delta, r.by_rsync, r.whole, r.wire_bytes, r.manifest_bytes,
        r.delta_bytes, r.package_wire_bytes, r.rpm_bytes, r.refused_deltas
    );
    r
}

/// A repository with the realistic v1 and v2 (v2 with deltas from v1).
fn realistic_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    do_publish(&repo, "1", &testdata("realistic/v1"), &[]);
    let r = do_publish(&repo, "2", &testdata("realistic/v2"), &["1"]);
    // Both per-file encodings are in use on real packages (the syncs that
    // follow rebuild every package from them, byte for byte).
    let enc = &r.deltas[0].encodings;
    for op in [
        "zstd against an old file",
        "bsdiff against an old file",
        "copy",
    ] {
        assert!(
            enc.get(op).is_some_and(|s| s.files > 0 && s.bytes > 0),
            "no {op} in the v2 deltas: {enc:?}"
        );
    }
    let total: u64 = enc.values().map(|s| s.bytes).sum();
    assert!(
        total <= r.deltas[0].delta_bytes,
        "{total} > {}",
        r.deltas[0].delta_bytes
    );
    repo
}

fn manifest(root: &Path, version: &str) -> Manifest {
    Manifest::parse(&std::fs::read(publish::manifest_path(root, "demo", version)).unwrap()).unwrap()
}

/// Every package the manifest names is in the pool, byte for byte the server's.
fn assert_same_packages(repo: &Path, pool: &Path, version: &str) {
    let m = manifest(repo, version);
    for p in &m.packages {
        let a = std::fs::read(repo.join("packages").join(&p.file)).unwrap();
        let b = std::fs::read(pool.join("packages").join(&p.file))
            .unwrap_or_else(|e| panic!("{} not in the pool: {e}", p.file));
        assert!(a == b, "{} differs from the server's", p.file);
    }
    assert_eq!(manifest(pool, version), m, "the pool keeps the manifest");
}

fn new_pool(dir: &Path, name: &str) -> PathBuf {
    let pool = dir.join(name);
    ok(&pool, &["init"]);
    pool
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server on {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process killed (and reaped) on drop.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rsync --daemon` on 127.0.0.1 serving `repo` as module `reimage`, with
/// the example config of docs/serving.md.
fn rsync_daemon(dir: &Path, repo: &Path) -> (Server, String) {
    let port = free_port();
    let example = std::fs::read_to_string(repo_root().join("examples/rsyncd.conf")).unwrap();
    let conf = example
        .replace("/srv/reimage", &repo.display().to_string())
        .replace(
            "/run/rsyncd.pid",
            &dir.join("rsyncd.pid").display().to_string(),
        )
        + &format!("port = {port}\naddress = 127.0.0.1\n");
    // Global options must precede the modules.
    let conf = format!("port = {port}\naddress = 127.0.0.1\n{conf}");
    let path = dir.join("rsyncd.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("rsync")
        .args(["--daemon", "--no-detach"])
        .arg(format!("--config={}", path.display()))
        .stdout(Stdio::null())
        .spawn()
        .expect("rsync must be installed");
    let server = Server(child);
    wait_port(port);
    (server, format!("rsync://127.0.0.1:{port}/reimage/"))
}

fn http_server(repo: &Path) -> (Server, String) {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(repo)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 must be installed");
    let server = Server(child);
    wait_port(port);
    (server, format!("http://127.0.0.1:{port}"))
}

fn repo_root() -> PathBuf {
    common::repo()
}

/// The v1 -> v2 update with and without deltas from `source`; returns the
/// reports of the v2 syncs (deltas, no deltas).
fn update_both_ways(dir: &Path, repo: &Path, source: &str, tag: &str) -> (SyncReport, SyncReport) {
    // Client a: with deltas, composing each version in the same command.
    let a = new_pool(dir, &format!("client-{tag}-a"));
    let r1 = sync_compose(&a, source, Some("1"), true, "demo-1");
    assert_eq!(r1.present, 0);
    assert_same_packages(repo, &a, "1");
    let with = sync_compose(&a, source, None, true, "demo-2");
    assert_eq!(with.version, "2", "the newest version is the default");
    assert!(with.by_delta > 0, "deltas used: {with:?}");
    assert_eq!(
        with.by_rsync + with.whole,
        0,
        "every changed package by delta"
    );
    assert!(with.refused_deltas.is_empty());
    assert_same_packages(repo, &a, "2");
    assert!(!with.changed.is_empty());
    let comp = with.compose.as_ref().unwrap();
    assert_eq!(
        comp.from.as_deref(),
        Some("demo-1"),
        "incremental from the image's newest view"
    );
    for (v, name) in [("1", "demo-1"), ("2", "demo-2")] {
        let view = a.join("views").join(name);
        let mut headers: Vec<String> = std::fs::read_dir(view.join("lib/sysimage/packages"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        headers.sort();
        let mut want: Vec<String> = manifest(repo, v)
            .packages
            .iter()
            .map(|p| format!("{}.rpm", p.file))
            .collect();
        want.sort();
        assert_eq!(headers, want, "the view's header directory is the manifest");
        let meta = std::fs::read_to_string(view.join("lib/reimage/view.json")).unwrap();
        assert!(meta.contains("\"image\": \"demo\""), "{meta}");
    }
    ok(&a, &["verify", "demo-2"]);
    assert_fully_shared(&a, &format!("{tag}, by delta"));
    // Free the space for client b (views are read-only subvolumes).
    ok(&a, &["rm-view", "demo-1"]);
    ok(&a, &["rm-view", "demo-2"]);
    reimage::pool::remove_any(&a).unwrap();

    // Client b: without deltas.
    let b = new_pool(dir, &format!("client-{tag}-b"));
    do_sync(&b, source, Some("1"), false);
    let without = do_sync(&b, source, Some("2"), false);
    assert_eq!(without.by_delta, 0);
    assert_same_packages(repo, &b, "2");
    // Synced again: nothing to do.
    let again = do_sync(&b, source, Some("2"), true);
    assert_eq!(again.present, again.packages);
    assert_fully_shared(&b, &format!("{tag}, without deltas"));
    reimage::pool::remove_any(&b).unwrap();
    (with, without)
}

/// Sync shares as it writes: `dedupe` finds nothing left to share or rebuild
/// (also content repeated inside one package).
fn assert_fully_shared(pool: &Path, what: &str) {
    let d = json(pool, &["dedupe", "--dry-run"]);
    assert_eq!(
        d["deduped_bytes"], 0,
        "{what}: dedupe would share more: {d}"
    );
    assert_eq!(
        d["rebuilt"].as_array().map(|a| a.len()),
        Some(0),
        "{what}: dedupe would rebuild: {d}"
    );
}

fn sync_compose(
    pool: &Path,
    source: &str,
    version: Option<&str>,
    deltas: bool,
    view: &str,
) -> SyncReport {
    let p = Pool::open(pool).unwrap();
    let r = sync::sync(
        &p,
        &SyncOptions {
            source: source.into(),
            image: "demo".into(),
            version: version.map(String::from),
            compose: Some(view.into()),
            deltas,
            wait: true,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_or_else(|e| panic!("sync {source} {version:?}: {e:#}"));
    eprintln!(
        "sync {source} {} deltas={deltas} +compose: present {} delta {} rsync {} whole {}; wire {} (deltas {}, packages {}), rpm {}",
        r.version, r.present, r.by_delta, r.by_rsync, r.whole, r.wire_bytes, r.delta_bytes, r.package_wire_bytes, r.rpm_bytes
    );
    r
}

#[test]
fn local_path_update_with_and_without_deltas() {
    require_root!();
    let _g = heavy();
    let dir = reimage_testkit::btrfs_dir("sync-local");
    let repo = realistic_repo(dir.path());
    let m2 = manifest(&repo, "2");
    assert!(m2.packages.iter().any(|p| !p.deltas.is_empty()));
    let (with, without) = update_both_ways(dir.path(), &repo, &repo.display().to_string(), "local");
    // A seeded basis: the live path transfers less than the packages' size.
    assert!(without.by_rsync > 0);
    assert!(without.package_wire_bytes < without.package_bytes);
    eprintln!(
        "FIGURES local v1->v2: changed .rpm {} | rsync --no-deltas {} | deltas {}",
        with.rpm_bytes, without.wire_bytes, with.wire_bytes
    );
}

#[test]
fn rsync_daemon_update_and_compose() {
    require_root!();
    let _g = heavy();
    let dir = reimage_testkit::btrfs_dir("sync-rsyncd");
    let repo = realistic_repo(dir.path());
    let (_server, url) = rsync_daemon(dir.path(), &repo);
    let (with, without) = update_both_ways(dir.path(), &repo, &url, "rsyncd");
    // rsync of the compressed .rpm files, as a mirror would: for comparison.
    let rpm_dir = dir.join("rpms");
    std::fs::create_dir_all(rpm_dir.join("v1")).unwrap();
    std::fs::create_dir_all(rpm_dir.join("v2")).unwrap();
    for v in ["v1", "v2"] {
        for f in std::fs::read_dir(testdata(&format!("realistic/{v}"))).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, rpm_dir.join(v).join(f.file_name().unwrap())).unwrap();
        }
    }
    let client = dir.join("rpm-client");
    std::fs::create_dir_all(&client).unwrap();
    // Like a mirror of the .rpm files would: delta transfer, zstd, --fuzzy
    // to find the old version of a renamed file as basis.
    let local_rpm_rsync = |v: &str| -> u64 {
        let out = Command::new("rsync")
            .args([
                "-r",
                "--compress",
                "--compress-choice=zstd",
                "--stats",
                "--no-whole-file",
                "--fuzzy",
                "--delete-after",
            ])
            .arg(format!("{}/", rpm_dir.join(v).display()))
            .arg(&client)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let n = |k: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| {
                    v.split_whitespace()
                        .next()
                        .unwrap()
                        .replace(',', "")
                        .parse()
                        .unwrap()
                })
                .unwrap_or(0)
        };
        n("Total bytes sent:") + n("Total bytes received:")
    };
    local_rpm_rsync("v1");
    let rpm_rsync = local_rpm_rsync("v2");
    eprintln!(
        "FIGURES rsyncd v1->v2: changed .rpm (dnf) {} | rsync of .rpm files {} | sync --no-deltas {} | sync with deltas {}",
        with.rpm_bytes, rpm_rsync, without.wire_bytes, with.wire_bytes
    );
    assert!(
        with.wire_bytes * 2 < with.rpm_bytes,
        "deltas beat the .rpm download by far"
    );
}

#[test]
fn http_mirror_update() {
    require_root!();
    let _g = heavy();
    let dir = reimage_testkit::btrfs_dir("sync-http");
    let repo = realistic_repo(dir.path());
    let (_server, url) = http_server(&repo);
    let (with, without) = update_both_ways(dir.path(), &repo, &url, "http");
    assert_eq!(without.by_rsync, 0);
    assert!(without.whole > 0);
    eprintln!(
        "FIGURES http v1->v2: changed .rpm {} | whole packages {} | deltas {}",
        with.rpm_bytes, without.wire_bytes, with.wire_bytes
    );
    // A mirror that is not there is a connection error, not a missing image;
    // an image the live mirror lacks is a missing image.
    let pool = new_pool(dir.path(), "http-errors");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let err = fails(&pool, &["sync", &dead, "demo"]);
    assert!(
        err.contains("GET ") && !err.contains("no image"),
        "a dead mirror: {err}"
    );
    let err = fails(&pool, &["sync", &url, "nosuchimage"]);
    assert!(err.contains("no image nosuchimage"), "{err}");
}

/// Three small edge packages as v1, the update of one as v2 (with deltas).
fn edge_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    let (v1, v2) = edge_versions();
    publish_paths(&repo, "1", &v1, &[]);
    publish_paths(&repo, "2", &v2, &["1"]);
    repo
}

fn package_names(pool: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(pool.join("packages"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn flip_byte(path: &Path, at_from_end: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    let mut b = [0u8];
    f.read_exact_at(&mut b, len - at_from_end).unwrap();
    b[0] ^= 0x55;
    f.write_all_at(&b, len - at_from_end).unwrap();
}

#[test]
fn hostile_server_is_refused() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("sync-hostile");
    let repo = edge_repo(dir.path());
    let src = repo.display().to_string();
    let m1 = manifest(&repo, "1");
    let victim = m1
        .packages
        .iter()
        .find(|p| p.file.starts_with("edge-sizes"))
        .unwrap();
    let vpath = repo.join("packages").join(&victim.file);
    let saved = std::fs::read(&vpath).unwrap();

    // 1. A package changed after publishing: in its data, then in its index.
    for at in [saved.len() as u64 / 2, 100] {
        let pool = new_pool(dir.path(), &format!("client-tamper-{at}"));
        flip_byte(&vpath, at);
        let e = try_sync(&pool, &src, Some("1"), true).unwrap_err();
        eprintln!("refused as expected: {e:#}");
        assert!(format!("{e:#}").contains(&victim.file), "{e:#}");
        assert!(!package_names(&pool).contains(&victim.file));
        assert!(
            !publish::manifest_path(&pool, "demo", "1").exists(),
            "no manifest recorded"
        );
        std::fs::write(&vpath, &saved).unwrap();
    }

    // 2. A manifest naming a package the server lacks.
    let pool = new_pool(dir.path(), "client-lacks");
    let mpath = publish::manifest_path(&repo, "demo", "1");
    let good = std::fs::read(&mpath).unwrap();
    let mut m = m1.clone();
    let mut ghost = m.packages[0].clone();
    ghost.file = "ghost-1.0-1.x86_64".into();
    ghost.nevra = "ghost-1.0-1.x86_64".into();
    m.packages.push(ghost);
    std::fs::write(&mpath, m.to_json()).unwrap();
    let e = try_sync(&pool, &src, Some("1"), true).unwrap_err();
    assert!(format!("{e:#}").contains("ghost-1.0-1.x86_64"), "{e:#}");
    assert!(!publish::manifest_path(&pool, "demo", "1").exists());
    // The error carries the report: what came, what did not.
    let inc = e
        .downcast_ref::<sync::Incomplete>()
        .expect("an incomplete sync");
    assert_eq!(inc.0.failures.len(), 1, "{:?}", inc.0.failures);
    assert_eq!(inc.0.fetched.len(), m1.packages.len());
    // --json prints that report too, exit 1.
    let out = Command::new(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(&pool)
        .args(["--json", "sync", &src, "demo", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(
        j["failures"][0]
            .as_str()
            .unwrap()
            .contains("ghost-1.0-1.x86_64"),
        "{j}"
    );
    assert_eq!(j["present"], m1.packages.len(), "{j}");
    std::fs::write(&mpath, &good).unwrap();

    // 3. A delta changed after publishing: refused, the package comes whole.
    let pool = new_pool(dir.path(), "client-delta");
    do_sync(&pool, &src, Some("1"), true);
    let m2 = manifest(&repo, "2");
    let d = m2
        .packages
        .iter()
        .find_map(|p| p.deltas.first())
        .expect("a delta");
    flip_byte(&repo.join(&d.path), 20);
    let r = do_sync(&pool, &src, Some("2"), true);
    assert_eq!(r.by_delta, 0);
    assert_eq!(r.refused_deltas.len(), 1, "{:?}", r.refused_deltas);
    assert_same_packages(&repo, &pool, "2");
}

#[test]
fn signed_manifests_and_keyrings() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("sync-signed");
    let repo = edge_repo(dir.path());
    let (sec, public) = gpg_key(dir.path(), "good");
    let (_, other) = gpg_key(dir.path(), "other");
    let e = testdata("edge");
    let r = publish::publish(
        &PublishOptions {
            repo: repo.clone(),
            target: Some(("demo".into(), "3".into())),
            paths: vec![e.join("edge-update-1.1-1.x86_64.rpm")],
            sign: Some(sec),
            delta_level: TEST_DELTA_LEVEL,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    assert!(r.signed);
    let src = repo.display().to_string();
    let with_keyring = |pool: &Path, version: &str, keyring: &Path| {
        sync::sync(
            &Pool::open(pool).unwrap(),
            &SyncOptions {
                source: src.clone(),
                image: "demo".into(),
                version: Some(version.into()),
                keyring: Some(keyring.to_path_buf()),
                deltas: true,
                wait: true,
                ..Default::default()
            },
            &Silent,
        )
    };
    let pool = new_pool(dir.path(), "client");
    // Unsigned, or signed by another key: refused, the pool unchanged.
    let e = with_keyring(&pool, "1", &public).unwrap_err();
    assert!(format!("{e:#}").contains("not signed"), "{e:#}");
    let e = with_keyring(&pool, "3", &other).unwrap_err();
    assert!(format!("{e:#}").contains("signature"), "{e:#}");
    assert!(package_names(&pool).is_empty());
    // A manifest changed after signing: refused.
    let mpath = publish::manifest_path(&repo, "demo", "3");
    let good = std::fs::read(&mpath).unwrap();
    let mut bad = good.clone();
    bad.extend_from_slice(b" ");
    std::fs::write(&mpath, &bad).unwrap();
    let e = with_keyring(&pool, "3", &public).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("changed after it was signed") && !msg.contains("assert"),
        "{msg}"
    );
    assert!(package_names(&pool).is_empty());
    std::fs::write(&mpath, &good).unwrap();
    // Publishing the same version again without --sign keeps its signature
    // (the bytes did not change).
    let sig = publish::sig_path(&mpath);
    let before = std::fs::read(&sig).unwrap();
    let r = publish::publish(
        &PublishOptions {
            repo: repo.clone(),
            target: Some(("demo".into(), "3".into())),
            paths: vec![testdata("edge").join("edge-update-1.1-1.x86_64.rpm")],
            delta_level: TEST_DELTA_LEVEL,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    assert!(r.signed, "{r:?}");
    assert_eq!(std::fs::read(&sig).unwrap(), before);
    // A key that cannot sign (passphrase-protected) publishes nothing, and
    // a refused publish leaves no packages behind.
    let (locked, _) = gpg_key_with_passphrase(dir.path(), "locked", "secret");
    let packages_before = std::fs::read_dir(repo.join("packages")).unwrap().count();
    let err = publish::publish(
        &PublishOptions {
            repo: repo.clone(),
            target: Some(("demo".into(), "4".into())),
            paths: vec![testdata("edge").join("edge-modes-1.0-1.x86_64.rpm")],
            sign: Some(locked),
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("passphrase"), "{err:#}");
    assert!(!publish::manifest_path(&repo, "demo", "4").exists());
    let err = publish::publish(
        &PublishOptions {
            repo: repo.clone(),
            target: Some(("demo".into(), "3".into())),
            paths: vec![testdata("edge").join("edge-modes-1.0-1.x86_64.rpm")],
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("already published"), "{err:#}");
    assert_eq!(
        std::fs::read_dir(repo.join("packages")).unwrap().count(),
        packages_before,
        "a refused publish leaves no packages"
    );
    // The right key: accepted, and the signature is kept beside the manifest.
    let r = with_keyring(&pool, "3", &public).unwrap();
    assert!(r.signature_checked);
    assert!(publish::sig_path(&publish::manifest_path(&pool, "demo", "3")).exists());
}

#[test]
fn newest_version_by_rpm_order() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("sync-newest");
    let repo = dir.join("repo");
    let e = testdata("edge");
    publish_paths(&repo, "9", &[e.join("edge-update-1.0-1.x86_64.rpm")], &[]);
    publish_paths(
        &repo,
        "10",
        &[e.join("edge-update-1.1-1.x86_64.rpm")],
        &["9"],
    );
    let pool = new_pool(dir.path(), "client");
    let r = do_sync(&pool, &repo.display().to_string(), None, true);
    assert_eq!(r.version, "10");
    assert_same_packages(&repo, &pool, "10");
    // Prune: 9 gone, its package goes; 10's stays; so does a signature
    // of the removed manifest.
    std::fs::remove_file(publish::manifest_path(&repo, "demo", "9")).unwrap();
    let orphan_sig = publish::sig_path(&publish::manifest_path(&repo, "demo", "9"));
    std::fs::write(&orphan_sig, b"an old signature").unwrap();
    let r = publish::publish(
        &PublishOptions {
            repo: repo.clone(),
            prune: true,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    assert!(r.pruned_files >= 1, "the old package pruned: {r:?}");
    assert!(
        !orphan_sig.exists(),
        "the removed manifest's signature pruned"
    );
    assert_eq!(
        package_names(&repo),
        vec!["edge-update-1.1-1.x86_64".to_string()]
    );
}

/// PIDs of processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{name}: {cmd}"));
            }
        }
    }
    out
}

/// kill -9 mid-sync, from a local path and from an rsync daemon (where
/// rsync forks a receiver that must die too): no rsync left, what was
/// verified stays, the rerun resumes.
#[test]
fn kill_9_mid_sync_resumes() {
    require_root!();
    let _g = heavy();
    let dir = reimage_testkit::btrfs_dir("sync-kill");
    let repo = dir.join("repo");
    do_publish(&repo, "1", &testdata("realistic/v1"), &[]);
    kill_and_resume(
        &new_pool(dir.path(), "client"),
        &repo,
        &repo.display().to_string(),
    );
    let (_daemon, url) = rsync_daemon(dir.path(), &repo);
    kill_and_resume(&new_pool(dir.path(), "daemon-client"), &repo, &url);
}

fn kill_and_resume(pool: &Path, repo: &Path, src: &str) {
    let (pool, repo) = (pool.to_path_buf(), repo.to_path_buf());
    let src = src.to_string();
    // The real binary, killed like a power cut.
    let mut child = Command::new(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(&pool)
        .args(["-q", "sync", &src, "demo", "1"])
        .env("REIMAGE_RSYNC_ARGS", "--bwlimit=8000")
        .spawn()
        .unwrap();
    // Kill once some packages are in and the next rsync has been on the
    // wire for a while (rsync has forked its receiver by then).
    let pool_s = pool.display().to_string();
    let t = Instant::now();
    let mut on_wire: Option<Instant> = None;
    loop {
        let n = package_names(&pool).len();
        if n > 0 && !processes_with(&pool_s).is_empty() {
            let since = *on_wire.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(700) {
                break;
            }
        } else {
            on_wire = None;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "no package arrived");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let had = package_names(&pool).len();
    let total = manifest(&repo, "1").packages.len();
    assert!(had < total, "killed mid-sync ({had} of {total} in)");
    // No rsync child outlives reimage (parent-death signal).
    let t = Instant::now();
    while !processes_with(&pool_s).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "left running: {:?}",
            processes_with(&pool_s)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every package that made it in is whole; the rerun resumes.
    for f in package_names(&pool) {
        let p = manifest(&repo, "1")
            .packages
            .into_iter()
            .find(|p| p.file == f)
            .unwrap();
        assert_eq!(
            hex::encode(publish::sha256_file(&pool.join("packages").join(&f)).unwrap()),
            p.sha256
        );
    }
    let r = do_sync(&pool, &src, Some("1"), true);
    assert_eq!(
        r.present, had,
        "resumed without refetching what was verified"
    );
    assert_same_packages(&repo, &pool, "1");
}

/// publish, sync --compose, views and verify through the real binary; the
/// update goes by static delta.
#[test]
fn publish_and_sync_through_the_binary() {
    require_root!();
    let _g = heavy();
    let dir = reimage_testkit::btrfs_dir("sync-cli");
    let repo = dir.join("repo");
    let edge = testdata("edge");
    let base: Vec<String> = ["edge-sizes-1.0-1.x86_64.rpm", "edge-links-1.0-1.x86_64.rpm"]
        .iter()
        .map(|f| edge.join(f).display().to_string())
        .collect();
    let mut v1 = base.clone();
    v1.push(
        edge.join("edge-update-1.0-1.x86_64.rpm")
            .display()
            .to_string(),
    );
    let mut v2 = base.clone();
    v2.push(
        edge.join("edge-update-1.1-1.x86_64.rpm")
            .display()
            .to_string(),
    );
    let mut a = vec!["publish", repo.to_str().unwrap(), "edgeimg", "1"];
    a.extend(v1.iter().map(String::as_str));
    let r = json(&repo, &a);
    assert!(r.is_object(), "{r}");
    let mut a = vec![
        "publish",
        repo.to_str().unwrap(),
        "edgeimg",
        "1.1",
        "--deltas-from",
        "1",
        "--delta-level",
        "3",
    ];
    a.extend(v2.iter().map(String::as_str));
    json(&repo, &a);
    assert!(repo.join("images/edgeimg/1.1.json").is_file());

    let pool = new_pool(dir.path(), "client");
    let src = repo.display().to_string();
    let s1 = json(&pool, &["sync", &src, "edgeimg", "1", "--compose", "e1"]);
    assert!(s1.to_string().contains("\"e1\""), "{s1}");
    ok(&pool, &["verify", "e1"]);
    // Newest by default; the changed package comes as a delta.
    let s2 = json(&pool, &["sync", &src, "edgeimg", "--compose", "e2"]);
    assert_eq!(s2["version"], "1.1", "{s2}");
    assert_eq!(s2["by_delta"], 1, "{s2}");
    ok(&pool, &["verify", "e2"]);
    let d = ok(&pool, &["diff", "e1", "e2"]);
    assert!(d.contains("edge-update"), "{d}");
    let v = json(&pool, &["views"]);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(
        pool.join("images/edgeimg/1.1.json").is_file(),
        "synced manifest kept"
    );
    // An unknown image is a clear error.
    let err = fails(&pool, &["sync", &src, "nosuchimage"]);
    assert!(err.contains("nosuchimage"), "{err}");
    // A --compose name that is taken is refused before anything is fetched.
    std::fs::remove_dir_all(pool.join("images/edgeimg")).unwrap();
    let err = fails(&pool, &["sync", &src, "edgeimg", "--compose", "e2"]);
    assert!(err.contains("view e2 already exists"), "{err}");
    assert!(
        !pool.join("images/edgeimg").exists(),
        "nothing was synced for a view that cannot be composed"
    );
}

/// sync over ssh (`user@host:path`, live rsync through ssh): a real sshd on
/// 127.0.0.1 with throwaway keys; rsync's ssh is configured by `RSYNC_RSH`,
/// as a user's `~/.ssh/config` would.
#[test]
fn ssh_update() {
    require_root!();
    let _g = heavy();
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.is_file(),
        "{} is needed (apt-get install openssh-server; cargo xtask test installs it)",
        sshd.display()
    );
    let dir = reimage_testkit::btrfs_dir("sync-ssh");
    let repo = edge_repo(dir.path());
    // Keys off the scratch filesystem (nothing may keep it busy).
    let keys = tempfile::Builder::new()
        .prefix("reimage-ssh-")
        .tempdir()
        .unwrap();
    let keygen = |name: &str| -> PathBuf {
        let k = keys.path().join(name);
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&k)
            .status()
            .expect("ssh-keygen must be installed");
        assert!(st.success());
        k
    };
    let host = keygen("host");
    let client = keygen("client");
    let auth = keys.path().join("authorized_keys");
    std::fs::copy(client.with_extension("pub"), &auth).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let child = Command::new(sshd)
        .args(["-D", "-e", "-f", "/dev/null", "-p"])
        .arg(port.to_string())
        .arg("-h")
        .arg(&host)
        .args(["-o", "ListenAddress=127.0.0.1"])
        .arg("-o")
        .arg(format!("AuthorizedKeysFile={}", auth.display()))
        .args([
            "-o",
            "PermitRootLogin=prohibit-password",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "UsePAM=no",
            "-o",
            "StrictModes=no",
            "-o",
            "PidFile=none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start sshd");
    let _server = Server(child);
    wait_port(port);
    let rsh = format!(
        "ssh -p {port} -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        client.display()
    );
    let pool = new_pool(dir.path(), "ssh-client");
    let src = format!("root@127.0.0.1:{}", repo.display());
    let sync = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_reimage"))
            .arg("--pool")
            .arg(&pool)
            .args(["--json", "sync", &src])
            .args(args)
            .env("RSYNC_RSH", &rsh)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sync {args:?} over ssh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r1 = sync(&["demo", "1", "--compose", "s1"]);
    assert_eq!(r1["transport"], "rsync-ssh", "{r1}");
    assert_eq!(r1["by_rsync"], 3, "{r1}");
    assert_same_packages(&repo, &pool, "1");
    let r2 = sync(&["demo", "2", "--compose", "s2"]);
    assert_eq!(r2["by_delta"], 1, "{r2}");
    assert!(r2["wire_bytes"].as_u64().unwrap() > 0, "{r2}");
    assert_same_packages(&repo, &pool, "2");
    ok(&pool, &["verify", "s2"]);
    // A refused login is a clear error, not a missing image.
    let out = Command::new(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(&pool)
        .args(["sync", &src, "demo", "2"])
        .env(
            "RSYNC_RSH",
            format!("ssh -p {port} -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR", host.display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ssh"), "{stderr}");
}
