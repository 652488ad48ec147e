//! publish and sync on real btrfs: the realistic v1 -> v2 update from a
//! local path, a stock `rsync --daemon` on 127.0.0.1 and a static HTTP server
//! (`python3 -m http.server`), with and without static deltas; hostile
//! servers; kill -9 mid-sync and resume; newest-version selection.
mod common;

use common::*;
use reimage::pool::Pool;
use reimage::report::Silent;
use reimage::require_root;
use reimage::sync_cli::publish::{self, Manifest, PublishOptions, PublishReport};
use reimage::sync_cli::sync::{self, SyncOptions, SyncReport};
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

fn do_publish(repo: &Path, version: &str, rpms: &Path, deltas_from: &[&str]) -> PublishReport {
    let r = publish::publish(
        &PublishOptions {
            repo: repo.to_path_buf(),
            target: Some(("demo".into(), version.into())),
            paths: vec![rpms.to_path_buf()],
            deltas_from: deltas_from.iter().map(|s| s.to_string()).collect(),
            delta_level: 19,
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
    do_publish(&repo, "2", &testdata("realistic/v2"), &["1"]);
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
    let a = new_pool(dir, &format!("client-{tag}-a"));
    let r1 = do_sync(&a, source, Some("1"), true);
    assert_eq!(r1.present, 0);
    assert_same_packages(repo, &a, "1");
    let with = do_sync(&a, source, None, true);
    assert_eq!(with.version, "2", "the newest version is the default");
    assert!(with.by_delta > 0, "deltas used: {with:?}");
    assert_eq!(
        with.by_rsync + with.whole,
        0,
        "every changed package by delta"
    );
    assert_same_packages(repo, &a, "2");
    assert!(!with.changed.is_empty());
    let b = new_pool(dir, &format!("client-{tag}-b"));
    do_sync(&b, source, Some("1"), false);
    let without = do_sync(&b, source, Some("2"), false);
    assert_eq!(without.by_delta, 0);
    assert_same_packages(repo, &b, "2");
    // Synced again: nothing to do.
    let again = do_sync(&b, source, Some("2"), true);
    assert_eq!(again.present, again.packages);
    (with, without)
}

#[test]
fn local_path_update_with_and_without_deltas() {
    require_root!();
    let _g = heavy();
    let dir = reimage::testing::btrfs_dir("sync-local");
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
    let dir = reimage::testing::btrfs_dir("sync-rsyncd");
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

    // Compose in the same command; the view's header directory is the manifest.
    let c = new_pool(dir.path(), "client-compose");
    let p = Pool::open(&c).unwrap();
    for (v, name) in [("1", "demo-1"), ("2", "demo-2")] {
        let r = sync::sync(
            &p,
            &SyncOptions {
                source: url.clone(),
                image: "demo".into(),
                version: Some(v.into()),
                compose: Some(name.into()),
                deltas: true,
                wait: true,
                ..Default::default()
            },
            &Silent,
        )
        .unwrap();
        let comp = r.compose.unwrap();
        if v == "2" {
            assert_eq!(
                comp.from.as_deref(),
                Some("demo-1"),
                "incremental from the image's newest view"
            );
        }
        let mut headers: Vec<String> =
            std::fs::read_dir(c.join("views").join(name).join("lib/sysimage/packages"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        headers.sort();
        let mut want: Vec<String> = manifest(&repo, v)
            .packages
            .iter()
            .map(|p| format!("{}.rpm", p.file))
            .collect();
        want.sort();
        assert_eq!(headers, want);
        let meta =
            std::fs::read_to_string(c.join("views").join(name).join("lib/reimage/view.json"))
                .unwrap();
        assert!(meta.contains("\"image\": \"demo\""), "{meta}");
    }
    ok(&c, &["verify", "demo-2"]);
}

#[test]
fn http_mirror_update() {
    require_root!();
    let _g = heavy();
    let dir = reimage::testing::btrfs_dir("sync-http");
    let repo = realistic_repo(dir.path());
    let (_server, url) = http_server(&repo);
    let (with, without) = update_both_ways(dir.path(), &repo, &url, "http");
    assert_eq!(without.by_rsync, 0);
    assert!(without.whole > 0);
    eprintln!(
        "FIGURES http v1->v2: changed .rpm {} | whole packages {} | deltas {}",
        with.rpm_bytes, without.wire_bytes, with.wire_bytes
    );
}
