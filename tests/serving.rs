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
    let (v1, v2) = edge_versions();
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

fn publish_signed(repo: &Path, version: &str, rpms: &[PathBuf], from: &[&str], key: &Path) {
    publish::publish(
        &PublishOptions {
            repo: repo.to_path_buf(),
            target: Some(("demo".into(), version.into())),
            paths: rpms.to_vec(),
            deltas_from: from.iter().map(|s| s.to_string()).collect(),
            sign: Some(key.to_path_buf()),
            delta_level: TEST_DELTA_LEVEL,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap_or_else(|e| panic!("publish {version}: {e:#}"));
}

/// Every file of the repository but its lock and tmp/: path -> SHA256.
fn repo_files(repo: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(repo).unwrap().display().to_string();
            if rel == "tmp" || rel == "lock" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    out
}

/// A cache-safe mirror: publishing deltas to an existing version (a second
/// `--deltas-from`) changes no file already published but the version
/// index; the deltas go into `images/demo/2.deltas/1.json`, signed, which
/// sync uses; a tampered one is refused with the pool unchanged.
#[test]
fn later_deltas_get_a_signed_file_of_their_own() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-later-deltas");
    let (sec, public) = gpg_key(dir.path(), "mirror");
    let repo = dir.path().join("repo");
    let (v1, v2) = edge_versions();
    publish_signed(&repo, "1", &v1, &[], &sec);
    publish_signed(&repo, "2", &v2, &[], &sec);
    assert!(manifest(&repo, "2")
        .packages
        .iter()
        .all(|p| p.deltas.is_empty()));
    let before = repo_files(&repo);

    publish_signed(&repo, "2", &v2, &["1"], &sec);
    let after = repo_files(&repo);
    for (rel, sha) in &before {
        if rel != "images/demo/index.json" {
            assert_eq!(
                after.get(rel),
                Some(sha),
                "{rel} changed after it was published"
            );
        }
    }
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        added.contains(&&"images/demo/2.deltas/1.json".to_string())
            && added.contains(&&"images/demo/2.deltas/1.json.sig".to_string())
            && added
                .iter()
                .any(|a| a.starts_with("deltas/edge-update-1.1-1")),
        "{added:?}"
    );
    assert_eq!(publish::versions(&repo, "demo").unwrap(), ["1", "2"]);
    // Publishing it again changes nothing at all.
    publish_signed(&repo, "2", &v2, &["1"], &sec);
    assert_eq!(repo_files(&repo), after);

    let src = repo.display().to_string();
    let keyed = |version: &str| SyncOptions {
        keyring: Some(public.clone()),
        ..sync_opts(&src, Some(version))
    };
    let pool = new_pool(dir.path(), "client");
    try_sync(&pool, &keyed("1")).unwrap();
    let r = try_sync(&pool, &keyed("2")).unwrap();
    assert_eq!(r.by_delta, 1, "the update came by the later delta: {r:?}");
    assert_eq!(r.whole, 0, "{r:?}");
    assert_same_packages(&repo, &pool, "2");

    // The version index lists the later delta file, and a client following
    // the newest version fetches exactly what it lists.
    let index_path = repo.join("images/demo/index.json");
    let index_text = std::fs::read_to_string(&index_path).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index_text).unwrap();
    assert_eq!(
        index["later_deltas"],
        serde_json::json!({"2": ["1"]}),
        "{index}"
    );
    let follow = SyncOptions {
        keyring: Some(public.clone()),
        ..sync_opts(&src, None)
    };
    let newest = new_pool(dir.path(), "follows");
    try_sync(&newest, &keyed("1")).unwrap();
    let r = try_sync(&newest, &follow).unwrap();
    assert_eq!((r.version.as_str(), r.by_delta), ("2", 1), "{r:?}");
    // An index that lists none: the client does not ask for it.
    let mut unlisted = index.clone();
    unlisted["later_deltas"] = serde_json::json!({});
    std::fs::write(&index_path, unlisted.to_string()).unwrap();
    let blind = new_pool(dir.path(), "unlisted");
    try_sync(&blind, &keyed("1")).unwrap();
    let r = try_sync(&blind, &follow).unwrap();
    assert_eq!((r.by_delta, r.by_rsync + r.whole), (0, 1), "{r:?}");
    std::fs::write(&index_path, &index_text).unwrap();

    // The delta file changed after signing (a mirror or cache serving
    // another one): refused before anything is written.
    let dfile = repo.join("images/demo/2.deltas/1.json");
    let good = std::fs::read(&dfile).unwrap();
    let mut bad = String::from_utf8(good.clone()).unwrap();
    bad = bad.replacen("\"size\": ", "\"size\": 1", 1);
    std::fs::write(&dfile, bad).unwrap();
    let other = new_pool(dir.path(), "other");
    try_sync(&other, &keyed("1")).unwrap();
    let held = package_names(&other);
    let e = format!("{:#}", try_sync(&other, &keyed("2")).unwrap_err());
    assert!(
        e.contains("images/demo/2.deltas/1.json") && e.contains("changed after it was signed"),
        "{e}"
    );
    assert_eq!(package_names(&other), held, "nothing fetched");
    assert!(!publish::manifest_path(&other, "demo", "2").exists());
    // Its signature gone: refused too (a keyring requires one).
    std::fs::write(&dfile, &good).unwrap();
    std::fs::remove_file(repo.join("images/demo/2.deltas/1.json.sig")).unwrap();
    let e = format!("{:#}", try_sync(&other, &keyed("2")).unwrap_err());
    assert!(e.contains("not signed"), "{e}");
    assert_eq!(package_names(&other), held, "nothing fetched");

    // --prune keeps the deltas a later delta file names; once the version
    // is retired, its later delta files and their deltas go.
    let prune = || {
        publish::publish(
            &PublishOptions {
                repo: repo.clone(),
                prune: true,
                ..Default::default()
            },
            &Silent,
        )
        .unwrap()
    };
    let later: Vec<String> = after
        .keys()
        .filter(|k| k.starts_with("deltas/"))
        .cloned()
        .collect();
    assert!(!later.is_empty());
    prune();
    for d in &later {
        assert!(
            repo.join(d).is_file(),
            "{d} pruned while 2.deltas/1.json names it"
        );
    }
    std::fs::remove_file(publish::manifest_path(&repo, "demo", "2")).unwrap();
    let r = prune();
    assert!(!repo.join("images/demo/2.deltas").exists(), "{r:?}");
    for d in &later {
        assert!(
            !repo.join(d).exists(),
            "{d} kept after its version was retired"
        );
    }
}

fn make_bundle(
    client: &Path,
    repo: &Path,
    version: &str,
    from: Option<&str>,
    out: &Path,
) -> serde_json::Value {
    let (r, o) = (repo.display().to_string(), out.display().to_string());
    let mut args = vec!["bundle", &r, "demo", version, "-o", &o];
    if let Some(f) = from {
        args.extend(["--from", f]);
    }
    json(client, &args)
}

/// Nothing beside the bundle but what was there (no temporary file left).
fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A bundle without --from installs a version on an empty pool, checked
/// with the trusted key like a network sync.
#[test]
fn bundle_fresh_install() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-bundle-fresh");
    let (sec, public) = gpg_key(dir.path(), "bundle");
    let repo = dir.path().join("repo");
    let (v1, v2) = edge_versions();
    publish_signed(&repo, "1", &v1, &[], &sec);
    publish_signed(&repo, "2", &v2, &["1"], &sec);
    let out_dir = dir.path().join("usb");
    std::fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("demo-2.rbundle");
    let pool = new_pool(dir.path(), "client");
    let r = make_bundle(&pool, &repo, "2", None, &file);
    assert_eq!(r["whole_packages"], 3, "{r}");
    assert_eq!(r["signed"], true, "{r}");
    assert_eq!(dir_names(&out_dir), ["demo-2.rbundle"]);
    assert_eq!(r["bytes"], std::fs::metadata(&file).unwrap().len());

    let f = file.display().to_string();
    let k = public.display().to_string();
    let s = json(&pool, &["sync", &f, "demo", "--keyring", &k]);
    assert_eq!(s["transport"], "bundle", "{s}");
    assert_eq!(s["version"], "2", "{s}");
    assert_eq!(s["signature_checked"], true, "{s}");
    assert_eq!(s["whole"], 3, "{s}");
    assert_same_packages(&repo, &pool, "2");
    // A bundle is not recorded as the pool's source.
    assert!(sync::recorded_source(&Pool::open(&pool).unwrap(), "demo")
        .unwrap()
        .is_none());
    // Another key: refused like a network sync.
    let (_, other) = gpg_key(dir.path(), "other");
    let pool2 = new_pool(dir.path(), "client2");
    let o = other.display().to_string();
    let e = fails(&pool2, &["sync", &f, "demo", "--keyring", &o]);
    assert!(e.contains("signature does not verify"), "{e}");
    assert!(package_names(&pool2).is_empty());
}

/// A bundle --from 1 carries the delta and not the unchanged packages, and
/// brings a pool at 1 to exactly what a network sync brings.
#[test]
fn bundle_delta_update_equals_network_sync() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-bundle-delta");
    let repo = edge_repo(dir.path());
    let src = repo.display().to_string();
    let by_net = new_pool(dir.path(), "net");
    let by_file = new_pool(dir.path(), "file");
    do_sync(&by_net, &src, Some("1"));
    do_sync(&by_file, &src, Some("1"));
    let file = dir.path().join("demo-1-2.rbundle");
    let r = make_bundle(&by_file, &repo, "2", Some("1"), &file);
    assert_eq!(r["deltas"], 1, "{r}");
    assert_eq!(r["whole_packages"], 0, "{r}");
    assert_eq!(r["unchanged"], 2, "{r}");
    let delta_bytes: u64 = manifest(&repo, "2")
        .packages
        .iter()
        .flat_map(|p| p.deltas.iter().map(|d| d.size))
        .sum();
    let bytes = r["bytes"].as_u64().unwrap();
    assert!(
        bytes > delta_bytes && bytes < delta_bytes + 64 * 1024,
        "{bytes} vs {delta_bytes}"
    );

    let net = do_sync(&by_net, &src, Some("2"));
    let f = file.display().to_string();
    let s = json(&by_file, &["sync", &f, "demo"]);
    assert_eq!(s["by_delta"], net.by_delta as u64, "{s}");
    assert_eq!(s["whole"], 0, "{s}");
    assert_same_packages(&repo, &by_net, "2");
    assert_same_packages(&repo, &by_file, "2");
    assert_eq!(package_names(&by_file), package_names(&by_net));
}

/// A bundle copied with errors (a flipped byte, cut short) is refused,
/// naming the file; nothing is written to the pool.
#[test]
fn corrupted_bundle_refused() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-bundle-corrupt");
    let repo = edge_repo(dir.path());
    let pool = new_pool(dir.path(), "client");
    let good = dir.path().join("good.rbundle");
    make_bundle(&pool, &repo, "2", None, &good);
    let bytes = std::fs::read(&good).unwrap();
    let before = repo_files(&pool);
    let flipped = dir.path().join("flipped.rbundle");
    let mut b = bytes.clone();
    b[bytes.len() / 2] ^= 0x01;
    std::fs::write(&flipped, &b).unwrap();
    let cut = dir.path().join("cut.rbundle");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    for f in [&flipped, &cut] {
        let s = f.display().to_string();
        let e = fails(&pool, &["sync", &s, "demo"]);
        assert!(e.contains(&s) && e.contains("damaged"), "{e}");
        assert_eq!(repo_files(&pool), before, "the pool unchanged");
    }
    // The good copy works.
    let s = good.display().to_string();
    json(&pool, &["sync", &s, "demo"]);
    assert_same_packages(&repo, &pool, "2");
}

/// A bundle --from 1 on a pool that does not hold 1 is refused before
/// anything is written.
#[test]
fn wrong_base_bundle_refused() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("serving-bundle-base");
    let repo = edge_repo(dir.path());
    let pool = new_pool(dir.path(), "client");
    let file = dir.path().join("demo-1-2.rbundle");
    make_bundle(&pool, &repo, "2", Some("1"), &file);
    let before = repo_files(&pool);
    let f = file.display().to_string();
    let e = fails(&pool, &["sync", &f, "demo"]);
    assert!(
        e.contains(&f)
            && e.contains("for a machine at version 1")
            && e.contains("holds no version")
            && e.contains("nothing was written"),
        "{e}"
    );
    assert_eq!(repo_files(&pool), before, "the pool unchanged");
    // A bundle of another image.
    let e = fails(&pool, &["sync", &f, "other"]);
    assert!(e.contains("bundle of demo 2"), "{e}");
    assert_eq!(repo_files(&pool), before, "the pool unchanged");
}
