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
