//! Incremental compose (`--from`, src/views/incremental.rs): the view it
//! makes equals a full compose of the same list, in the cases where only the
//! changed paths are planned and in the cases where it must plan whole.
mod common;
use common::*;
use reimage_testkit::require_root;
use std::path::{Path, PathBuf};

/// An entry of a test package: a directory (mode), a file (content, owner)
/// or a symlink.
enum E<'a> {
    Dir(&'a str, u16),
    File(&'a str, &'a str, &'a str),
    Link(&'a str, &'a str),
}

fn pkg(dir: &Path, name: &str, version: &str, entries: &[E]) -> PathBuf {
    let mut b =
        rpm::PackageBuilder::new(name, version, "MIT", "noarch", "incremental compose test");
    b.using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
        .release("1");
    for e in entries {
        match e {
            E::Dir(p, mode) => b.with_dir_entry(rpm::FileOptions::dir(*p).permissions(*mode)),
            E::File(p, content, owner) => b.with_file_contents(
                content.as_bytes().to_vec(),
                rpm::FileOptions::new(*p)
                    .permissions(0o644)
                    .user(*owner)
                    .group(*owner),
            ),
            E::Link(p, target) => b.with_symlink(rpm::FileOptions::symlink(*p, *target)),
        }
        .unwrap();
    }
    let p = dir.join(format!("{name}-{version}-1.noarch.rpm"));
    b.build().unwrap().write_file(&p).unwrap();
    p
}

fn names(pkgs: &[&PathBuf]) -> Vec<String> {
    pkgs.iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(".rpm")
                .to_string()
        })
        .collect()
}

/// Composes `name` from `list`, with `extra` arguments; returns the report
/// and what `-v` said.
fn compose(
    pool: &Path,
    name: &str,
    list: &[&PathBuf],
    extra: &[&str],
) -> (serde_json::Value, String) {
    let n = names(list);
    let mut args: Vec<&str> = vec!["-v", "--json", "compose", name];
    args.extend(n.iter().map(String::as_str));
    args.extend(extra);
    let out = reimage(pool, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "compose {name}: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// The `--from` view `inc` equals the full compose `full`: the tree, the
/// counts in the report, and the owner tables and relocations of view.json.
fn assert_same(pool: &Path, inc: &serde_json::Value, full: &serde_json::Value) {
    let (a, b) = (
        inc["view"].as_str().unwrap(),
        full["view"].as_str().unwrap(),
    );
    assert_eq!(
        walk(&pool.join("views").join(a), ViewJson::Skip),
        walk(&pool.join("views").join(b), ViewJson::Skip),
        "{a} (--from) and {b} (full) differ"
    );
    for k in [
        "packages",
        "files",
        "dirs",
        "symlinks",
        "hardlinks",
        "relocations",
        "unknown_owners",
    ] {
        assert_eq!(inc[k], full[k], "{k} of {a} and {b}");
    }
    let meta = |v: &str| -> serde_json::Value {
        let p = pool.join("views").join(v).join("lib/reimage/view.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let (ma, mb) = (meta(a), meta(b));
    for k in ["packages", "users", "groups", "relocations", "rules"] {
        assert_eq!(ma[k], mb[k], "view.json {k} of {a} and {b}");
    }
}

const INCREMENTAL: &str = "planned the changed paths";

#[test]
fn only_the_changed_paths_are_planned_and_the_view_equals_a_full_compose() {
    require_root!();
    let (d, pool) = btrfs_pool("compose-from-paths");
    let dir = d.join("rpms");
    std::fs::create_dir_all(&dir).unwrap();
    // a-1 is the first to claim /usr/share/shared (0750); b claims it too
    // (0755) and keeps a file in it. a-1's file in adir/deep makes deep an
    // implicit directory; c keeps adir alive with a file of its own.
    let a1 = pkg(
        &dir,
        "a",
        "1",
        &[
            E::Dir("/usr/share/shared", 0o750),
            E::File("/usr/share/adir/deep/x.txt", "x", "root"),
            E::File("/usr/share/a/old.txt", "old", "root"),
            E::Link("/usr/share/a/link", "old.txt"),
        ],
    );
    let b = pkg(
        &dir,
        "b",
        "1",
        &[
            E::Dir("/usr/share/shared", 0o755),
            E::File("/usr/share/shared/b.txt", "b", "root"),
        ],
    );
    let c = pkg(
        &dir,
        "c",
        "1",
        &[E::File("/usr/share/adir/other.txt", "c", "root")],
    );
    // a-2 leaves /usr/share/shared (b's 0755 takes over), leaves adir/deep
    // (it goes, adir stays for c), and adds a file and a directory.
    let a2 = pkg(
        &dir,
        "a",
        "2",
        &[
            E::File("/usr/share/a/new.txt", "new", "root"),
            E::Dir("/usr/lib/a", 0o700),
            E::File("/usr/lib/a/data", "data", "root"),
        ],
    );
    for p in [&a1, &b, &c, &a2] {
        ok(&pool, &["import", p.to_str().unwrap()]);
    }
    compose(&pool, "v1", &[&a1, &b, &c], &["--no-base"]);
    let (inc, said) = compose(&pool, "v2inc", &[&a2, &b, &c], &["--from", "v1"]);
    assert!(said.contains(INCREMENTAL), "{said}");
    assert_eq!(inc["stored_placements"], 2, "{inc}");
    let (full, _) = compose(&pool, "v2full", &[&a2, &b, &c], &["--no-base"]);
    assert_same(&pool, &inc, &full);
    let view = pool.join("views/v2inc");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(view.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("share/shared"), 0o755, "b's directory took over");
    assert!(
        !view.join("share/adir/deep").exists(),
        "the emptied implicit directory went"
    );
    assert!(view.join("share/adir/other.txt").is_file());
    assert_eq!(mode("lib/a"), 0o700);
    // Fewer entries planned than the view holds.
    let planned = inc["planned_entries"].as_u64().unwrap();
    let all = full["planned_entries"].as_u64().unwrap();
    assert!(planned < all, "planned {planned} of {all}");

    // And back: a-1 again from v2inc (a-1 first claimer of shared again).
    let (back, said) = compose(&pool, "v3inc", &[&a1, &b, &c], &["--from", "v2inc"]);
    assert!(said.contains(INCREMENTAL), "{said}");
    let (v1, _) = compose(&pool, "v3full", &[&a1, &b, &c], &["--no-base"]);
    assert_same(&pool, &back, &v1);
    assert_eq!(
        std::fs::metadata(pool.join("views/v3inc/share/shared"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o750
    );
}

#[test]
fn a_file_over_a_kept_packages_directory_is_refused_as_a_full_compose_refuses_it() {
    require_root!();
    let (d, pool) = btrfs_pool("compose-from-parent");
    let dir = d.join("rpms");
    std::fs::create_dir_all(&dir).unwrap();
    // k keeps /usr/share/x/y/z.txt (x and x/y implicit); m-2 puts a file at
    // /usr/share/x/y.
    let k = pkg(
        &dir,
        "k",
        "1",
        &[E::File("/usr/share/x/y/z.txt", "z", "root")],
    );
    let m1 = pkg(&dir, "m", "1", &[E::File("/usr/share/m.txt", "m", "root")]);
    let m2 = pkg(
        &dir,
        "m",
        "2",
        &[
            E::File("/usr/share/m.txt", "m", "root"),
            E::File("/usr/share/x/y", "not a directory", "root"),
        ],
    );
    for p in [&k, &m1, &m2] {
        ok(&pool, &["import", p.to_str().unwrap()]);
    }
    compose(&pool, "v1", &[&k, &m1], &["--no-base"]);
    let n = names(&[&k, &m2]);
    let mut args = vec!["compose", "v2", "--from", "v1"];
    args.extend(n.iter().map(String::as_str));
    let err = fails(&pool, &args);
    let mut args = vec!["compose", "v2full", "--no-base"];
    args.extend(n.iter().map(String::as_str));
    let full_err = fails(&pool, &args);
    for e in [&err, &full_err] {
        assert!(e.contains("is not a directory"), "{e}");
        assert!(
            e.contains("k-1-1.noarch") && e.contains("m-2-1.noarch"),
            "{e}"
        );
    }
    assert!(!pool.join("views/v2").exists(), "nothing published");
    assert_eq!(
        std::fs::read_dir(pool.join("tmp")).unwrap().count(),
        0,
        "nothing left in tmp"
    );
}

#[test]
fn owner_ids_that_change_and_kept_packages_in_another_order_plan_whole() {
    require_root!();
    let (d, pool) = btrfs_pool("compose-from-whole");
    let dir = d.join("rpms");
    std::fs::create_dir_all(&dir).unwrap();
    // s ships the sysusers.d entry for svc; t owns a file as svc.
    let s1 = pkg(
        &dir,
        "s",
        "1",
        &[E::File(
            "/usr/lib/sysusers.d/s.conf",
            "u svc 700 - -\n",
            "root",
        )],
    );
    let s2 = pkg(
        &dir,
        "s",
        "2",
        &[E::File(
            "/usr/lib/sysusers.d/s.conf",
            "u svc 701 - -\n",
            "root",
        )],
    );
    let t = pkg(&dir, "t", "1", &[E::File("/usr/share/t/owned", "t", "svc")]);
    let u1 = pkg(&dir, "u", "1", &[E::File("/usr/share/u/f", "1", "root")]);
    let u2 = pkg(&dir, "u", "2", &[E::File("/usr/share/u/f", "2", "root")]);
    for p in [&s1, &s2, &t, &u1, &u2] {
        ok(&pool, &["import", p.to_str().unwrap()]);
    }
    compose(&pool, "v1", &[&s1, &t, &u1], &["--no-base"]);
    // svc gets another id: t's kept file must change owner.
    let (inc, said) = compose(&pool, "ids", &[&s2, &t, &u1], &["--from", "v1"]);
    assert!(said.contains("user svc has another id"), "{said}");
    assert!(!said.contains(INCREMENTAL), "{said}");
    let (full, _) = compose(&pool, "ids-full", &[&s2, &t, &u1], &["--no-base"]);
    assert_same(&pool, &inc, &full);
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(pool.join("views/ids/share/t/owned"))
        .unwrap()
        .uid();
    assert_eq!(uid, 701);
    // An owner no table knew (so root), then named by --passwd: the same.
    let w = pkg(&dir, "w", "1", &[E::File("/usr/share/w/owned", "w", "web")]);
    ok(&pool, &["import", w.to_str().unwrap()]);
    let (v1w, _) = compose(&pool, "v1w", &[&s1, &w, &u1], &["--no-base"]);
    assert_eq!(
        v1w["unknown_owners"],
        serde_json::json!(["group web", "user web"])
    );
    let passwd = d.join("passwd");
    std::fs::write(&passwd, "web:x:900:900::/:/sbin/nologin\n").unwrap();
    let group = d.join("group");
    std::fs::write(&group, "web:x:900:\n").unwrap();
    let (p, g) = (passwd.to_str().unwrap(), group.to_str().unwrap());
    let named = ["--passwd", p, "--group", g];
    let (inc, said) = compose(
        &pool,
        "pw",
        &[&s1, &w, &u2],
        &[&["--from", "v1w"][..], &named].concat(),
    );
    assert!(said.contains("user web has another id"), "{said}");
    let (full, _) = compose(
        &pool,
        "pw-full",
        &[&s1, &w, &u2],
        &[&["--no-base"][..], &named].concat(),
    );
    assert_same(&pool, &inc, &full);
    assert_eq!(
        std::fs::metadata(pool.join("views/pw/share/w/owned"))
            .unwrap()
            .uid(),
        900
    );
    // The same tables: only the changed paths.
    let (inc, said) = compose(&pool, "same", &[&s1, &t, &u2], &["--from", "v1"]);
    assert!(said.contains(INCREMENTAL), "{said}");
    let (full, _) = compose(&pool, "same-full", &[&s1, &t, &u2], &["--no-base"]);
    assert_same(&pool, &inc, &full);
    // Kept packages in another order: the first claimer may change.
    let (inc, said) = compose(&pool, "order", &[&u2, &t, &s1], &["--from", "v1"]);
    assert!(said.contains("in another order"), "{said}");
    let (full, _) = compose(&pool, "order-full", &[&u2, &t, &s1], &["--no-base"]);
    assert_same(&pool, &inc, &full);
}
