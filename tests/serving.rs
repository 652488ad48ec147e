//! Serving a fleet (docs/serving.md): downgrades refused, HTTP downloads
//! resumed from `POOL/partial/` against a real nginx, parallel fetches,
//! deltas published later in their own signed file, offline bundles.
mod common;

use common::*;
use reimage::pool::Pool;
use reimage::publish::{self, Manifest, PublishOptions};
use reimage::report::Silent;
use reimage::sync::{self, SyncOptions, SyncReport};
use reimage_testkit::require_root;
use std::path::{Path, PathBuf};

const TEST_DELTA_LEVEL: i32 = 3;

fn publish_paths(repo: &Path, version: &str, rpms: &[PathBuf], deltas_from: &[&str]) {
    publish::publish(
        &PublishOptions {
            repo: repo.to_path_buf(),
            target: Some(("demo".into(), version.into())),
            paths: rpms.to_vec(),
            deltas_from: deltas_from.iter().map(|s| s.to_string()).collect(),
            delta_level: TEST_DELTA_LEVEL,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_or_else(|e| panic!("publish {version}: {e:#}"));
}

fn sync_opts(source: &str, version: Option<&str>) -> SyncOptions {
    SyncOptions {
        source: source.into(),
        image: "demo".into(),
        version: version.map(String::from),
        deltas: true,
        wait: true,
        ..Default::default()
    }
}

fn try_sync(pool: &Path, opts: &SyncOptions) -> anyhow::Result<SyncReport> {
    sync::sync(&Pool::open(pool)?, opts, &Silent)
}

fn do_sync(pool: &Path, source: &str, version: Option<&str>) -> SyncReport {
    let r = try_sync(pool, &sync_opts(source, version))
        .unwrap_or_else(|e| panic!("sync {source} {version:?}: {e:#}"));
    eprintln!(
        "sync {source} {}: present {} delta {} whole {}; wire {}",
        r.version, r.present, r.by_delta, r.whole, r.wire_bytes
    );
    r
}

fn new_pool(dir: &Path, name: &str) -> PathBuf {
    let pool = dir.join(name);
    ok(&pool, &["init"]);
    pool
}

fn manifest(root: &Path, version: &str) -> Manifest {
    Manifest::parse(&std::fs::read(publish::manifest_path(root, "demo", version)).unwrap()).unwrap()
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

/// Three small edge packages as v1, the update of one as v2 (with deltas).
fn edge_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    let e = testdata("edge");
    let common = [
        e.join("edge-links-1.0-1.x86_64.rpm"),
        e.join("edge-sizes-1.0-1.x86_64.rpm"),
    ];
    let mut v1 = common.to_vec();
    v1.push(e.join("edge-update-1.0-1.x86_64.rpm"));
    let mut v2 = common.to_vec();
    v2.push(e.join("edge-update-1.1-1.x86_64.rpm"));
    publish_paths(&repo, "1", &v1, &[]);
    publish_paths(&repo, "2", &v2, &["1"]);
    repo
}

/// A pool that follows 2 refuses 1, named or replayed by a stale version
/// index, unless `--allow-downgrade`.
#[test]
fn downgrade_refused_unless_allowed() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-downgrade");
    let repo = edge_repo(dir.path());
    let src = repo.display().to_string();
    let pool = new_pool(dir.path(), "client");
    do_sync(&pool, &src, Some("2"));

    let err = fails(&pool, &["sync", &src, "demo", "1"]);
    assert!(
        err.contains("older than 2") && err.contains("--allow-downgrade"),
        "{err}"
    );
    assert!(!publish::manifest_path(&pool, "demo", "1").exists());
    let before = package_names(&pool);
    assert!(
        !before.contains(&"edge-update-1.0-1.x86_64".to_string()),
        "the refused version's package was not fetched: {before:?}"
    );
    // A mirror replaying an old version index (it is not signed).
    let index = repo.join("images/demo/index.json");
    let good = std::fs::read(&index).unwrap();
    std::fs::write(
        &index,
        r#"{"format": 1, "image": "demo", "versions": ["1"]}"#,
    )
    .unwrap();
    let err = fails(&pool, &["sync", &src, "demo"]);
    assert!(err.contains("older than 2"), "{err}");
    assert!(!publish::manifest_path(&pool, "demo", "1").exists());
    assert_eq!(package_names(&pool), before, "nothing fetched");
    std::fs::write(&index, good).unwrap();
    // The same version again is no downgrade; --allow-downgrade goes back.
    do_sync(&pool, &src, Some("2"));
    let r = json(&pool, &["sync", &src, "demo", "1", "--allow-downgrade"]);
    assert_eq!(r["version"], "1", "{r}");
    assert_same_packages(&repo, &pool, "1");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "server on {port} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A server process killed (and reaped) on drop. nginx runs with
/// `master_process off`, so this one process is the whole server: no worker
/// outlives it.
struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Nothing listens on `port` any more.
fn assert_stopped(port: u16) {
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server on {port} still answers after it was stopped"
    );
}

/// Debian's nginx on 127.0.0.1 serving `repo` (Range requests honoured),
/// `limit_rate` per connection. Returns the server, its URL and port.
fn nginx(dir: &Path, repo: &Path, rate: &str) -> (Server, String, u16) {
    reimage_testkit::require_tool("nginx", "nginx-light");
    let port = free_port();
    let conf_dir = dir.join(format!("nginx-{port}"));
    std::fs::create_dir_all(&conf_dir).unwrap();
    let c = conf_dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\npid {c}/nginx.pid;\n\
         error_log {c}/error.log;\nevents {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {c}/body;\n proxy_temp_path {c}/proxy;\n\
         fastcgi_temp_path {c}/fastcgi;\n uwsgi_temp_path {c}/uwsgi;\n scgi_temp_path {c}/scgi;\n\
         server {{\n  listen 127.0.0.1:{port};\n  root {};\n  limit_rate {rate};\n }}\n}}\n",
        repo.display()
    );
    std::fs::write(conf_dir.join("nginx.conf"), conf).unwrap();
    let child = std::process::Command::new("nginx")
        .arg("-c")
        .arg(conf_dir.join("nginx.conf"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx must be installed (apt-get install nginx-light)");
    let s = Server(child);
    wait_port(port);
    (s, format!("http://127.0.0.1:{port}"), port)
}

/// Files under `pool/partial` with their sizes.
fn partials(pool: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(pool.join("partial"))
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
        })
        .unwrap_or_default()
}

/// A download cut mid-file (kill -9 of the client, nginx sending slowly)
/// stays in POOL/partial/ across a writer's tmp cleaning and resumes by
/// Range; a server ignoring Range (200) restarts the file; a damaged
/// partial file is refused by the manifest's SHA256 and fetched again.
#[test]
fn http_download_cut_mid_file_resumes() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-resume");
    let repo = edge_repo(dir.path());
    let big = manifest(&repo, "1")
        .packages
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap();
    assert!(big.size > 2 << 20, "{big:?}");
    let pool = new_pool(dir.path(), "client");
    {
        let (slow, url, port) = nginx(dir.path(), &repo, "400k");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reimage"))
            .arg("--pool")
            .arg(&pool)
            .args(["sync", &url, "demo", "1"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Cut once the big package is partly there.
        let t = std::time::Instant::now();
        loop {
            let part = partials(&pool).into_iter().find(|(n, _)| *n == big.sha256);
            if part.is_some_and(|(_, len)| len > 256 << 10) {
                break;
            }
            assert!(
                t.elapsed().as_secs() < 60,
                "no partial download of {}",
                big.file
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(slow);
        assert_stopped(port);
    }
    let cut = partials(&pool)
        .into_iter()
        .find(|(n, _)| *n == big.sha256)
        .unwrap()
        .1;
    assert!(cut < big.size, "cut mid-file: {cut} of {}", big.size);
    // Another writer empties tmp/; partial/ stays.
    ok(&pool, &["gc"]);
    assert!(
        partials(&pool)
            .iter()
            .any(|(n, l)| *n == big.sha256 && *l == cut),
        "the partial download survives tmp cleaning"
    );
    // A partial download of another image's file (an interrupted sync of
    // it): not this sync's to remove.
    let other = "0".repeat(64);
    std::fs::write(pool.join("partial").join(&other), b"another image").unwrap();
    let (_fast, url, _) = nginx(dir.path(), &repo, "0");
    let r = do_sync(&pool, &url, Some("1"));
    let total: u64 = manifest(&repo, "1").packages.iter().map(|p| p.size).sum();
    assert!(
        r.package_wire_bytes + cut <= total + (64 << 10) && r.package_wire_bytes < total,
        "resumed, not refetched: {} on the wire, {cut} already there, {total} in all",
        r.package_wire_bytes
    );
    assert_same_packages(&repo, &pool, "1");
    assert_eq!(
        partials(&pool),
        vec![(other, 13)],
        "the sync removed its own partial files, and only those"
    );

    // A damaged partial file (nginx continues it by Range): the finished
    // file fails the manifest's SHA256, is removed, and the next sync
    // fetches it whole.
    let pool = new_pool(dir.path(), "client-damaged");
    std::fs::create_dir_all(pool.join("partial")).unwrap();
    let good = std::fs::read(repo.join("packages").join(&big.file)).unwrap();
    let mut bad = good[..good.len() / 2].to_vec();
    bad[100] ^= 0x55;
    std::fs::write(pool.join("partial").join(&big.sha256), &bad).unwrap();
    let e = try_sync(&pool, &sync_opts(&url, Some("1"))).unwrap_err();
    assert!(format!("{e:#}").contains(&big.file), "{e:#}");
    assert!(!package_names(&pool).contains(&big.file));
    do_sync(&pool, &url, Some("1"));
    assert_same_packages(&repo, &pool, "1");
}

/// A server that ignores Range (Python's http.server answers 200 to
/// `Range: bytes=N-`): the partial file restarts from the first byte (were
/// the body appended, the SHA256 check would refuse the package).
#[test]
fn http_server_answering_range_with_200_restarts_the_file() {
    require_root!();
    reimage_testkit::require_tool("python3", "python3");
    let dir = reimage_testkit::btrfs_dir("serving-200");
    let repo = edge_repo(dir.path());
    let big = manifest(&repo, "1")
        .packages
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap();
    let pool = new_pool(dir.path(), "client-200");
    std::fs::create_dir_all(pool.join("partial")).unwrap();
    std::fs::write(pool.join("partial").join(&big.sha256), b"not the start").unwrap();
    let port = free_port();
    let py = Server(
        std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(&repo)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    let r = do_sync(&pool, &format!("http://127.0.0.1:{port}"), Some("1"));
    drop(py);
    assert_stopped(port);
    assert_same_packages(&repo, &pool, "1");
    let total: u64 = manifest(&repo, "1").packages.iter().map(|p| p.size).sum();
    assert_eq!(
        r.package_wire_bytes, total,
        "every package whole, the stale partial start dropped"
    );
    assert!(partials(&pool).is_empty(), "{:?}", partials(&pool));
}
