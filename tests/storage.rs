//! `dedupe`, `usage`, `gc` on a real btrfs: dedupe of packages that lost
//! their sharing against compsize, the cost of ten views, gc against compose
//! running at the same time, what gc keeps, usage against compsize.
//!
//! The storage commands are called through the library (`reimage::storage`)
//! until they are wired into the CLI; import and compose run the real binary.
mod common;

use common::*;
use reimage::pool::Pool;
use reimage::report::Silent;
use reimage::storage::{self, DedupeOptions, GcOptions};
use reimage_testkit::require_root;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// compsize's TOTAL line in bytes: (disk usage, uncompressed, referenced).
fn compsize<P: AsRef<Path>>(paths: &[P]) -> (u64, u64, u64) {
    let out = Command::new("compsize")
        .arg("-b")
        .args(paths.iter().map(|p| p.as_ref()))
        .output()
        .expect("compsize must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compsize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .unwrap_or_else(|| panic!("no TOTAL in compsize output:\n{text}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The realistic packages of one version, without `filesystem-*` (which
/// conflicts with base-files on /var/lock in the generated set).
fn realistic(version: &str) -> Vec<PathBuf> {
    rpms(&testdata(&format!("realistic/{version}")))
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("filesystem-")
        })
        .collect()
}

fn import(pool: &Path, rpms: &[PathBuf]) {
    let mut args = vec!["-q".to_string(), "import".to_string()];
    args.extend(rpms.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ok(pool, &args);
}

/// The package names (`NAME-V-R.A`) of RPM files.
fn names(rpms: &[PathBuf]) -> Vec<String> {
    rpms.iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".rpm")
                .to_string()
        })
        .collect()
}

/// The smallest disk a set of extent packages can take: every distinct
/// file content once (aligned), plus each package's header and index.
fn unique_content(packages: &Path) -> u64 {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for p in files_in(packages) {
        let f = std::fs::File::open(&p).unwrap();
        let (idx, index_offset) = reimage::extent::Index::read(&f).unwrap();
        let size = f.metadata().unwrap().len();
        total += idx.data_start() + reimage::extent::align_up(size - index_offset);
        for e in &idx.entries {
            if e.length > 0 && seen.insert((e.blake3, e.length)) {
                total += reimage::extent::align_up(e.length);
            }
        }
    }
    total
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1048576.0)
}

/// Rewrites every extent package as a plain copy: all sharing lost, each
/// package one big extent (as `cp`, rsync or a defragment leave them).
fn unshare(packages: &Path) {
    for p in files_in(packages) {
        let tmp = p.with_extension("copy");
        let st = Command::new("cp")
            .arg("--reflink=never")
            .arg(&p)
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::rename(&tmp, &p).unwrap();
    }
    Command::new("sync").status().unwrap();
}

/// Issue 6, done-when 1: two versions of the realistic packages that lost
/// all sharing, then dedupe: compsize within 5% of the unique content.
/// Also: the bytes are unchanged, and a second run is near-instant.
#[test]
fn dedupe_restores_sharing_of_copied_packages() {
    require_root!();
    let (_dir, pool) = btrfs_pool("dedupe-copied");
    import(&pool, &realistic("v1"));
    import(&pool, &realistic("v2"));
    // A view made before the copies: it keeps reflinking the old extents.
    let mut args = vec!["-q".to_string(), "compose".into(), "old".into()];
    args.extend(names(&realistic("v1")));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ok(&pool, &a);
    let packages = pool.join("packages");
    let digests: Vec<(PathBuf, String)> = files_in(&packages)
        .into_iter()
        .map(|p| {
            let h = blake3::hash(&std::fs::read(&p).unwrap())
                .to_hex()
                .to_string();
            (p, h)
        })
        .collect();
    let unique = unique_content(&packages);
    let (imported, _, _) = compsize(&[&packages]);
    unshare(&packages);
    let (copied, _, refd) = compsize(&[&packages]);
    eprintln!(
        "unique content {}, after import {}, after plain copies {} (referenced {})",
        mib(unique),
        mib(imported),
        mib(copied),
        mib(refd)
    );
    assert!(
        copied > unique * 11 / 10,
        "the copies should have lost sharing"
    );

    let p = Pool::open(&pool).unwrap();
    let dry = storage::dedupe(
        &p,
        &DedupeOptions {
            dry_run: true,
            wait: true,
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(compsize(&[&packages]).0, copied, "dry run changed nothing");
    assert!(!dry.rebuilt.is_empty());

    let r = storage::dedupe(
        &p,
        &DedupeOptions {
            dry_run: false,
            wait: true,
        },
        &Silent,
    )
    .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // v1 and v2 of a package share most of their files: one of the two
    // stays as it is (the source of what they share), only the other is
    // rebuilt, and what it writes is its own content, not the shared part.
    assert!(!r.kept.is_empty(), "no big-extent package kept: {r:?}");
    assert!(
        r.kept.iter().all(|k| !r.rebuilt.contains(k)),
        "kept and rebuilt: {r:?}"
    );
    assert_eq!(
        dry.rebuilt.len() + dry.kept.len(),
        r.rebuilt.len() + r.kept.len()
    );
    // What stays stored twice (a rebuild would write 8x what it frees) is
    // small: under 1% of the content.
    assert!(
        r.left_bytes * 100 < unique,
        "{} left stored twice of {unique}: {r:?}",
        r.left_bytes
    );
    let (after, _, _) = compsize(&[&packages]);
    eprintln!(
        "after dedupe: {} on disk, unique {} ({:.3}x), freed {} in {:.2}s",
        mib(after),
        mib(unique),
        after as f64 / unique as f64,
        mib(r.freed_bytes),
        r.seconds
    );
    assert!(
        after as f64 <= unique as f64 * 1.05,
        "compsize {after} is not within 5% of the unique content {unique}"
    );
    // Freed counts packages and views together; the view still holds the
    // extents the packages had before they were copied, and says so.
    let (view_disk, _, _) = compsize(&[pool.join("views")]);
    let (all_after, _, _) = compsize(&[pool.join("packages"), pool.join("views")]);
    assert_eq!(r.disk_after, all_after);
    assert!(r.held_by_views > 0 && r.held_by_views <= view_disk);
    assert_eq!(
        r.disk_after - r.held_by_views,
        after,
        "packages as compsize counts"
    );
    ok(&pool, &["verify", "old"]);
    // The same bytes.
    for (p, h) in &digests {
        let now = blake3::hash(&std::fs::read(p).unwrap())
            .to_hex()
            .to_string();
        assert_eq!(&now, h, "{} changed", p.display());
    }
    // An unchanged pool: nothing to do, at once.
    let again = storage::dedupe(
        &p,
        &DedupeOptions {
            dry_run: false,
            wait: true,
        },
        &Silent,
    )
    .unwrap();
    assert!(again.unchanged, "{again:?}");
    assert!(again.seconds < 0.5, "second run took {:.2}s", again.seconds);
    // Without the state file: everything is found already shared.
    std::fs::remove_file(pool.join("index/dedupe.json")).unwrap();
    let cold = storage::dedupe(
        &p,
        &DedupeOptions {
            dry_run: false,
            wait: true,
        },
        &Silent,
    )
    .unwrap();
    assert!(cold.rebuilt.is_empty(), "{:?}", cold.rebuilt);
    assert_eq!(cold.deduped_bytes, 0);
    assert!(cold.already_shared_bytes > 0);
    assert_eq!(compsize(&[&packages]).0, after);
}

/// FIDEDUPERANGE without rebuilding: packages stored as file-sized extents
/// (as import writes them) whose shared content was replaced by private
/// copies of the same bytes get shared again, and the copies are freed.
#[test]
fn dedupe_shares_file_sized_extents() {
    require_root!();
    let (_dir, pool) = btrfs_pool("dedupe-ranges");
    let v1 = realistic("v1");
    let v2 = realistic("v2");
    // Two pools' worth: import v1 and v2 with no sharing between them by
    // importing v2 into a second pool and moving the files over.
    import(&pool, &v1);
    let other = pool.parent().unwrap().join("other");
    ok(&other, &["init"]);
    import(&other, &v2);
    for p in files_in(&other.join("packages")) {
        let dst = pool.join("packages").join(p.file_name().unwrap());
        if !dst.exists() {
            std::fs::rename(&p, &dst).unwrap();
        }
    }
    let packages = pool.join("packages");
    let unique = unique_content(&packages);
    let (before, _, _) = compsize(&[&packages]);
    let r = storage::dedupe(
        &Pool::open(&pool).unwrap(),
        &DedupeOptions {
            dry_run: false,
            wait: true,
        },
        &Silent,
    )
    .unwrap();
    let (after, _, _) = compsize(&[&packages]);
    eprintln!(
        "file-sized: before {} after {} unique {}: deduped {}, rebuilt {:?}",
        mib(before),
        mib(after),
        mib(unique),
        mib(r.deduped_bytes),
        r.rebuilt
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.rebuilt.is_empty(), "import writes file-sized extents");
    assert!(r.deduped_bytes > 0);
    assert!(after as f64 <= unique as f64 * 1.05);
}

/// Dedupe of copied packages must leave the pool sharing (as `usage` counts
/// it: packages whose extents another package references), and a second run
/// over the result, without the state file, must find nothing to do: no
/// rebuild, no FIDEDUPERANGE, the same usage. Fails if dedupe stops sharing
/// or redoes its work.
#[test]
fn dedupe_leaves_sharing_and_a_second_run_is_a_no_op() {
    require_root!();
    let (_dir, pool) = btrfs_pool("dedupe-usage");
    import(&pool, &realistic("v1"));
    import(&pool, &realistic("v2"));
    let packages = pool.join("packages");
    unshare(&packages);
    let p = Pool::open(&pool).unwrap();
    let before = storage::usage(&p).unwrap();
    assert_eq!(
        before.totals.shared, 0,
        "plain copies share nothing: {:?}",
        before.totals
    );
    let opts = DedupeOptions {
        dry_run: false,
        wait: true,
    };
    let r = storage::dedupe(&p, &opts, &Silent).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(!r.rebuilt.is_empty() && r.rebuilt_cloned_bytes > 0, "{r:?}");
    let after = storage::usage(&p).unwrap();
    eprintln!("usage before {:?}\nafter {:?}", before.totals, after.totals);
    assert!(
        after.totals.shared >= r.rebuilt_cloned_bytes / 2,
        "dedupe shared {} bytes but usage counts {} shared",
        r.rebuilt_cloned_bytes,
        after.totals.shared
    );
    assert!(after.totals.disk < before.totals.disk);
    assert!(after.packages.iter().filter(|row| row.shared > 0).count() >= 2);
    ok(&pool, &["fsck", "--full"]);

    std::fs::remove_file(pool.join("index/dedupe.json")).unwrap();
    let again = storage::dedupe(&p, &opts, &Silent).unwrap();
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert!(
        again.rebuilt.is_empty(),
        "rebuilt again: {:?}",
        again.rebuilt
    );
    assert_eq!(again.deduped_bytes, 0, "shared again: {again:?}");
    assert_eq!(again.differing_ranges, 0);
    assert!(again.already_shared_bytes > 0);
    assert_eq!(again.disk_before, again.disk_after);
    assert_eq!(storage::usage(&p).unwrap().totals, after.totals);
    // And with the state file: not even looked at.
    let third = storage::dedupe(&p, &opts, &Silent).unwrap();
    assert!(third.unchanged && third.groups == 0, "{third:?}");
}

/// `btrfs filesystem df -b`: metadata bytes used.
fn metadata_used(mount: &Path) -> u64 {
    Command::new("btrfs")
        .args(["filesystem", "sync"])
        .arg(mount)
        .status()
        .unwrap();
    let out = Command::new("btrfs")
        .args(["filesystem", "df", "-b"])
        .arg(mount)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Metadata"))
        .unwrap_or_else(|| panic!("no Metadata line:\n{text}"));
    line.split("used=").nth(1).unwrap().trim().parse().unwrap()
}

/// Issue 6, done-when 2: ten views of overlapping package sets cost less
/// than 1.1x the data of one (by compsize); metadata per view reported.
#[test]
fn ten_views_cost_little_more_than_one() {
    require_root!();
    // Its own filesystem, so the metadata figures are this test's alone.
    let fs = reimage_testkit::ScratchFs::new(reimage_testkit::FsType::Btrfs, 2 << 30).unwrap();
    let pool = fs.path().join("pool");
    ok(&pool, &["init"]);
    let v1 = realistic("v1");
    import(&pool, &v1);
    let all = names(&v1);
    let meta0 = metadata_used(fs.path());
    for k in 0..10 {
        // View k: every package but the k-th.
        let mut args = vec!["-q".to_string(), "compose".to_string(), format!("v{k}")];
        args.extend(
            all.iter()
                .enumerate()
                .filter(|(i, _)| *i != k)
                .map(|(_, n)| n.clone()),
        );
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        ok(&pool, &args);
    }
    let meta10 = metadata_used(fs.path());
    let views: Vec<PathBuf> = (0..10).map(|k| pool.join(format!("views/v{k}"))).collect();
    let (one, _, one_ref) = compsize(&views[..1]);
    let (ten, _, ten_ref) = compsize(&views);
    let (pkgs, _, _) = compsize(&[pool.join("packages")]);
    let mut everything = views.clone();
    everything.push(pool.join("packages"));
    let (with_views, _, _) = compsize(&everything);
    let per_view = (meta10 - meta0) / 10;
    eprintln!(
        "one view: {} data ({} referenced); ten views: {} data ({} referenced), {:.3}x; \
         packages {} -> packages + views {}; metadata {} per view",
        mib(one),
        mib(one_ref),
        mib(ten),
        mib(ten_ref),
        ten as f64 / one as f64,
        mib(pkgs),
        mib(with_views),
        mib(per_view)
    );
    assert!(
        ten_ref > one_ref * 9,
        "ten views reference ten times the data"
    );
    assert!(
        (ten as f64) < one as f64 * 1.1,
        "ten views take {ten} bytes, one {one}"
    );
    // Views hold no file data of their own beyond the few files compose
    // writes (view.json, tmpfiles.d): under 1 MiB each.
    let own = with_views - pkgs;
    eprintln!("data the ten views add beyond the packages: {own} bytes");
    assert!(own < 10 << 20, "views add {own} bytes of data");
    // And usage says the same.
    let u = storage::usage(&Pool::open(&pool).unwrap()).unwrap();
    assert_eq!(u.totals.disk, with_views);
    assert_eq!(u.totals.views_only, own);
    for v in &u.views {
        assert!(
            v.exclusive < 1 << 20,
            "removing {} frees {}",
            v.name,
            v.exclusive
        );
    }
    drop(fs);
}

/// Issue 6, done-when 3: gc racing compose never removes a package the
/// compose uses; every view composed is complete and verifies.
#[test]
fn gc_racing_compose_never_removes_what_compose_uses() {
    require_root!();
    let (_dir, pool) = btrfs_pool("gc-race");
    // A few small packages, so each round is quick.
    let small: Vec<PathBuf> = realistic("v1")
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            [
                "zlib1g", "gzip", "tar", "libzstd1", "liblzma5", "libcap2", "sudo",
            ]
            .iter()
            .any(|x| n.starts_with(&format!("{x}-")))
        })
        .collect();
    assert_eq!(small.len(), 7);
    let all = names(&small);
    let p = Pool::open(&pool).unwrap();
    let (mut composed, mut refused) = (0, 0);
    for round in 0..20 {
        import(&pool, &small);
        let view = format!("r{round}");
        // Alternate subsets so each gc has something unreferenced.
        let set: Vec<&String> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + round) % 2 == 0 || *i == round % all.len())
            .map(|(_, n)| n)
            .collect();
        // Who starts first varies: gc first, compose first, both at once.
        let ms = |n: u64| std::time::Duration::from_millis(n);
        let (gc_delay, compose_delay) = match round % 3 {
            0 => (ms(0), ms(30)),
            1 => (ms(round as u64 * 3 % 25), ms(0)),
            _ => (ms(0), ms(0)),
        };
        let gc = {
            let p = p.clone();
            std::thread::spawn(move || {
                std::thread::sleep(gc_delay);
                storage::gc(
                    &p,
                    &GcOptions {
                        dry_run: false,
                        wait: true,
                    },
                )
                .unwrap()
            })
        };
        std::thread::sleep(compose_delay);
        let mut args = vec!["-q", "compose", view.as_str()];
        args.extend(set.iter().map(|s| s.as_str()));
        let out = reimage(&pool, &args);
        let gcr = gc.join().unwrap();
        let vdir = pool.join("views").join(&view);
        if out.status.success() {
            composed += 1;
            // Every package of the view is still in the pool, and the view verifies.
            let meta = sysimage::meta::ViewMeta::read(&vdir).unwrap().unwrap();
            for f in &meta.packages {
                assert!(
                    pool.join("packages").join(f).is_file(),
                    "round {round}: gc removed {f}, used by view {view} ({gcr:?})"
                );
            }
            ok(&pool, &["verify", &view]);
            // Every file readable.
            let _ = listing(&vdir);
        } else {
            // gc went first and removed a package the compose then lacked.
            refused += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!vdir.exists(), "a failed compose leaves no view");
            assert!(
                !gcr.removed.is_empty() && err.contains("pool"),
                "round {round}: compose failed for another reason: {err}"
            );
        }
        // Next round starts from a view that gc must keep; then drop it.
        let again = storage::gc(
            &p,
            &GcOptions {
                dry_run: true,
                wait: true,
            },
        )
        .unwrap();
        if out.status.success() {
            let kept: BTreeSet<String> = again.removed.iter().map(|r| r.file.clone()).collect();
            for s in &set {
                assert!(!kept.contains(*s), "{s} is used by {view}");
            }
            ok(&pool, &["rm-view", &view]);
        }
    }
    eprintln!("{composed} composes won, {refused} lost the race to gc (clean errors)");
    assert!(composed > 0);
}

/// gc keeps what views and image manifests reference, removes the rest,
/// cleans tmp/; a dry run changes nothing; an unreadable view makes it refuse.
#[test]
fn gc_keeps_referenced_removes_the_rest() {
    require_root!();
    let (_dir, pool) = btrfs_pool("gc-keep");
    let v1 = realistic("v1");
    let small: Vec<PathBuf> = v1
        .iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            ["zlib1g", "gzip", "tar", "libzstd1", "liblzma5"]
                .iter()
                .any(|x| n.starts_with(&format!("{x}-")))
        })
        .cloned()
        .collect();
    import(&pool, &small);
    let n = names(&small);
    ok(&pool, &["-q", "compose", "a", &n[0], &n[1]]);
    std::fs::create_dir_all(pool.join("images/os")).unwrap();
    std::fs::write(
        pool.join("images/os/1.json"),
        format!(
            r#"{{"format": 1, "packages": [{{"file": "{}", "sha256": "x"}}, {{"nevra": "{}"}}]}}"#,
            n[2], n[3]
        ),
    )
    .unwrap();
    std::fs::write(pool.join("tmp/leftover"), b"x").unwrap();
    std::fs::write(pool.join("images/os/1.json.asc"), b"not json, ignored").unwrap();
    let p = Pool::open(&pool).unwrap();
    let before = files_in(&pool.join("packages"));

    let dry = storage::gc(
        &p,
        &GcOptions {
            dry_run: true,
            wait: true,
        },
    )
    .unwrap();
    assert_eq!(
        files_in(&pool.join("packages")),
        before,
        "dry run removes nothing"
    );
    assert!(pool.join("tmp/leftover").exists());
    assert_eq!(
        dry.removed
            .iter()
            .map(|r| r.file.clone())
            .collect::<Vec<_>>(),
        vec![n[4].clone()]
    );
    assert_eq!(dry.tmp_removed, vec!["leftover".to_string()]);
    assert!(dry.freed_bytes.unwrap() > 0);

    let r = storage::gc(
        &p,
        &GcOptions {
            dry_run: false,
            wait: true,
        },
    )
    .unwrap();
    assert_eq!(r.kept, 4);
    assert_eq!((r.views, r.manifests), (1, 1));
    let left: Vec<String> = files_in(&pool.join("packages"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, n[..4].to_vec());
    assert!(!pool.join("tmp/leftover").exists());
    ok(&pool, &["verify", "a"]);

    // A view whose view.json is unreadable: refuse, remove nothing.
    let b = pool.join("views/b");
    std::fs::create_dir_all(b.join("lib/reimage")).unwrap();
    std::fs::write(b.join("lib/reimage/view.json"), b"{broken").unwrap();
    std::fs::remove_file(pool.join("images/os/1.json")).unwrap();
    let err = storage::gc(
        &p,
        &GcOptions {
            dry_run: false,
            wait: true,
        },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("views/b"), "{err:#}");
    assert_eq!(files_in(&pool.join("packages")).len(), 4);
    // A view without view.json: the same.
    std::fs::remove_file(b.join("lib/reimage/view.json")).unwrap();
    assert!(storage::gc(&p, &GcOptions::default()).is_err());
    std::fs::remove_dir_all(&b).unwrap();
    // A manifest gc cannot understand: refuse.
    std::fs::write(pool.join("images/os/2.json"), br#"{"pkgs": []}"#).unwrap();
    assert!(storage::gc(&p, &GcOptions::default()).is_err());
    assert_eq!(files_in(&pool.join("packages")).len(), 4);
}

/// usage agrees with compsize: per package, per view, and in total.
#[test]
fn usage_agrees_with_compsize() {
    require_root!();
    let (_dir, pool) = btrfs_pool("usage");
    let v1 = realistic("v1");
    let v2 = realistic("v2");
    import(&pool, &v1);
    import(&pool, &v2);
    let mut args = vec!["-q".to_string(), "compose".into(), "one".into()];
    args.extend(names(&v1));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ok(&pool, &a);
    let mut args = vec!["-q".to_string(), "compose".into(), "two".into()];
    args.extend(names(&v2));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ok(&pool, &a);
    // Some data only a view holds: a package copied over (old extents stay
    // with the views).
    // bsdutils: in v1 only, so view one alone keeps its old extents.
    let victim = pool.join("packages").join(&names(&v1)[2]);
    let tmp = victim.with_extension("copy");
    assert!(Command::new("cp")
        .arg("--reflink=never")
        .arg(&victim)
        .arg(&tmp)
        .status()
        .unwrap()
        .success());
    std::fs::rename(&tmp, &victim).unwrap();

    let u = storage::usage(&Pool::open(&pool).unwrap()).unwrap();
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    for row in &u.packages {
        let (disk, _, refd) = compsize(&[pool.join("packages").join(&row.name)]);
        assert_eq!(
            (row.disk, row.referenced),
            (disk, refd),
            "package {}",
            row.name
        );
        assert_eq!(row.shared + row.exclusive, row.disk);
    }
    for row in &u.views {
        let (disk, _, refd) = compsize(&[pool.join("views").join(&row.name)]);
        assert_eq!(row.disk, disk, "view {}", row.name);
        eprintln!(
            "view {}: referenced {} (compsize {}), disk {}, exclusive {}",
            row.name,
            mib(row.referenced),
            mib(refd),
            mib(row.disk),
            mib(row.exclusive)
        );
    }
    let (total, _, _) = compsize(&[pool.join("packages"), pool.join("views")]);
    assert_eq!(u.totals.disk, total);
    let (pkgs, _, _) = compsize(&[pool.join("packages")]);
    assert_eq!(u.totals.packages_disk, pkgs);
    // The copied package's old extents are held by the view alone.
    assert!(u.totals.views_only > 0);
    let one = u.views.iter().find(|v| v.name == "one").unwrap();
    assert!(one.exclusive > 0);
    // Removing view one frees what usage said, as compsize counts.
    ok(&pool, &["rm-view", "one"]);
    Command::new("sync").status().unwrap();
    let (after, _, _) = compsize(&[pool.join("packages"), pool.join("views")]);
    assert_eq!(total - after, one.exclusive);
}

/// The CLI functions (until `cli.rs` wires them): text and JSON both run.
#[test]
fn storage_commands_through_the_binary() {
    require_root!();
    let (_dir, pool) = btrfs_pool("storage-cli");
    let small: Vec<PathBuf> = realistic("v1")
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("zlib1g-") || n.starts_with("gzip-")
        })
        .collect();
    import(&pool, &small);
    // The view keeps gzip; zlib1g is referenced by nothing.
    let gzip = names(&small)
        .into_iter()
        .find(|n| n.starts_with("gzip"))
        .unwrap();
    ok(&pool, &["-q", "compose", "z", &gzip]);
    let u = json(&pool, &["usage"]);
    assert!(u.to_string().contains("gzip"), "{u}");
    let human = ok(&pool, &["usage"]);
    assert!(human.contains("gzip"), "{human}");
    let d = json(&pool, &["dedupe", "--dry-run", "--no-wait"]);
    assert!(d.is_object(), "{d}");
    ok(&pool, &["dedupe", "--no-wait"]);
    let g = json(&pool, &["gc", "--dry-run"]);
    assert!(
        g.to_string().contains("zlib1g"),
        "gc --dry-run should name zlib1g: {g}"
    );
    assert_eq!(
        files_in(&pool.join("packages")).len(),
        2,
        "dry-run gc removed something"
    );
    ok(&pool, &["gc"]);
    let left: Vec<String> = files_in(&pool.join("packages"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("gzip"), "{left:?}");
    // The view still verifies after gc.
    ok(&pool, &["verify", "z"]);
}
