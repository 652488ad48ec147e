//! `reimage compose` through the real binary on a real btrfs: views against
//! rpm2cpio extraction and rpm's own header data (with the relocation policy
//! written here independently), --from against a full compose, read-only
//! publication, sharing, hostile packages, views and rm-view.
mod common;

use common::*;
use reimage_testkit::require_root;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The relocation policy of docs/compose.md, written independently of
/// sysimage::relocate: header path -> path in the view, or None when the
/// path is not materialised (root skeleton).
fn expected_place(path: &str, is_dir: bool, is_link: bool) -> Option<String> {
    let comps: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let top = comps[0];
    let rest = comps[1..].join("/");
    let join = |prefix: &str| {
        if rest.is_empty() {
            prefix.to_string()
        } else if prefix.is_empty() {
            rest.clone()
        } else {
            format!("{prefix}/{rest}")
        }
    };
    match top {
        "usr" => Some(join("")),
        "etc" => Some(join("etc")),
        "var" => Some(join("share/factory/var")),
        "bin" | "sbin" if comps.len() > 1 => Some(join(top)),
        t if t.starts_with("lib") && comps.len() > 1 => Some(join(t)),
        "boot" if comps.len() == 2 => {
            for (pre, to) in [
                ("vmlinuz-", "vmlinuz"),
                ("config-", "config"),
                ("System.map-", "System.map"),
                ("initrd.img-", "initrd"),
            ] {
                if let Some(kver) = comps[1].strip_prefix(pre) {
                    return Some(format!("lib/modules/{kver}/{to}"));
                }
            }
            panic!("unexpected /boot file {path}")
        }
        _ if comps.len() == 1 && (is_dir || is_link) => None,
        _ => panic!("the test set should not hold unplaceable {path}"),
    }
}

/// One file of a package as rpm reports it.
#[derive(Debug)]
struct RpmFile {
    path: String,
    size: u64,
    mtime: i64,
    digest: String,
    mode: u32,
    user: String,
    group: String,
    flags: u32,
    link: String,
    caps: String,
}

fn rpm_files(rpm: &Path) -> Vec<RpmFile> {
    let out = Command::new("rpm")
        .args(["-qp", "--nosignature", "--nodigest", "--qf"])
        .arg("[%{FILENAMES}\\t%{LONGFILESIZES}\\t%{FILEMTIMES}\\t%{FILEDIGESTS}\\t%{FILEMODES}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\t%{FILEFLAGS}\\t%{FILELINKTOS}\\t%{FILECAPS}\\n]")
        .arg(rpm)
        .output()
        .expect("rpm must be installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            RpmFile {
                path: f[0].to_string(),
                size: f[1].parse().unwrap(),
                mtime: f[2].parse().unwrap(),
                digest: f[3].to_string(),
                mode: (f[4].parse::<i64>().unwrap() as u32) & 0xffff,
                user: f[5].to_string(),
                group: f[6].to_string(),
                flags: f[7].parse().unwrap(),
                link: f[8].to_string(),
                caps: if f[9] == "(none)" {
                    String::new()
                } else {
                    f[9].to_string()
                },
            }
        })
        .collect()
}

fn view_tables(view: &Path) -> (BTreeMap<String, u32>, BTreeMap<String, u32>) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(view.join("lib/reimage/view.json")).unwrap())
            .unwrap();
    let t = |k: &str| -> BTreeMap<String, u32> {
        v[k].as_object()
            .unwrap()
            .iter()
            .map(|(n, id)| (n.clone(), id.as_u64().unwrap() as u32))
            .collect()
    };
    (t("users"), t("groups"))
}

/// Checks a composed view against each package: rpm's header data (types,
/// modes, owners, mtimes, digests, link targets, caps) and rpm2cpio's bytes
/// and hardlinks.
fn check_view(view: &Path, rpms: &[PathBuf]) -> usize {
    let (users, groups) = view_tables(view);
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for rpm in rpms {
        let x = scratch.path().join(rpm.file_name().unwrap());
        std::fs::create_dir_all(&x).unwrap();
        // rpm2cpio's exit status is unreliable (1 after writing a complete
        // archive when it disagrees with a size tag): cpio's status counts.
        let st = Command::new("bash")
            .arg("-c")
            .arg(format!("rpm2cpio '{}' | cpio -idm --quiet", rpm.display()))
            .current_dir(&x)
            .status()
            .unwrap();
        assert!(st.success(), "rpm2cpio {}", rpm.display());
        // hardlink sets in the extraction: inode -> first view path
        let mut inodes: HashMap<u64, u64> = HashMap::new();
        let header = view.join("lib/sysimage/packages").join(format!(
            "{}.rpm",
            rpm.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(".rpm")
        ));
        assert_eq!(
            std::fs::read(&header).unwrap(),
            std::fs::read(rpm).unwrap()[..std::fs::metadata(&header).unwrap().len() as usize],
            "header file of {} is not the RPM's header part",
            rpm.display()
        );
        for f in rpm_files(rpm) {
            if f.flags & 64 != 0 {
                continue; // %ghost: not created
            }
            let is_dir = f.mode & 0o170000 == 0o040000;
            let is_link = f.mode & 0o170000 == 0o120000;
            let Some(rel) = expected_place(&f.path, is_dir, is_link) else {
                let conf =
                    std::fs::read_to_string(view.join("lib/tmpfiles.d/reimage-root.conf")).unwrap();
                assert!(
                    conf.lines()
                        .any(|l| l.split_whitespace().nth(1) == Some(f.path.as_str())),
                    "{} not in reimage-root.conf",
                    f.path
                );
                continue;
            };
            let p = if rel.is_empty() {
                view.to_path_buf()
            } else {
                view.join(&rel)
            };
            let m = std::fs::symlink_metadata(&p)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", f.path, p.display()));
            let what = format!("{} ({} in {})", f.path, rel, rpm.display());
            assert_eq!(m.mode() & 0o170000, f.mode & 0o170000, "{what}: type");
            if !is_link {
                assert_eq!(
                    m.permissions().mode() & 0o7777,
                    f.mode & 0o7777,
                    "{what}: mode"
                );
            }
            assert_eq!(Some(&m.uid()), users.get(&f.user), "{what}: owner");
            assert_eq!(Some(&m.gid()), groups.get(&f.group), "{what}: group");
            if !is_dir {
                assert_eq!(m.mtime(), f.mtime, "{what}: mtime");
            }
            let extracted = x.join(f.path.trim_start_matches('/'));
            if is_link {
                assert_eq!(
                    std::fs::read_link(&p).unwrap().to_str().unwrap(),
                    f.link,
                    "{what}: target"
                );
            } else if !is_dir {
                assert_eq!(m.len(), f.size, "{what}: size");
                if !f.digest.is_empty() {
                    assert_eq!(sha256_file(&p), f.digest, "{what}: digest");
                }
                assert_eq!(
                    std::fs::read(&p).unwrap(),
                    std::fs::read(&extracted).unwrap(),
                    "{what}: bytes"
                );
                let xm = std::fs::metadata(&extracted).unwrap();
                if xm.nlink() > 1 {
                    match inodes.get(&xm.ino()) {
                        Some(&ino) => assert_eq!(m.ino(), ino, "{what}: hardlink set"),
                        None => {
                            inodes.insert(xm.ino(), m.ino());
                        }
                    }
                }
                if !f.caps.is_empty() {
                    let mut buf = [0u8; 64];
                    let n = rustix::fs::lgetxattr(&p, "security.capability", &mut buf)
                        .unwrap_or_else(|e| panic!("{what}: no capabilities: {e}"));
                    let want = reimage::caps::parse(&f.caps).unwrap().to_xattr();
                    assert_eq!(&buf[..n], &want[..], "{what}: capabilities");
                }
            }
            checked += 1;
        }
    }
    checked
}

fn args_of(paths: &[PathBuf]) -> Vec<&str> {
    paths.iter().map(|p| p.to_str().unwrap()).collect()
}

fn compose(pool: &Path, name: &str, rpms: &[PathBuf], extra: &[&str]) -> serde_json::Value {
    let mut a = vec!["compose", name];
    let names: Vec<String> = rpms
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    a.extend(names.iter().map(String::as_str));
    a.extend_from_slice(extra);
    json(pool, &a)
}

fn import_all(pool: &Path, rpms: &[PathBuf]) {
    let mut a = vec!["import"];
    a.extend(args_of(rpms));
    ok(pool, &a);
}

#[test]
fn realistic_view_matches_rpm2cpio_and_headers() {
    require_root!();
    let (_d, pool) = btrfs_pool("compose-realistic");
    let rpms = rpms(&testdata("realistic/v1"));
    import_all(&pool, &rpms);
    let r = compose(&pool, "v1", &rpms, &[]);
    assert_eq!(r["readonly"], true);
    let view = pool.join("views/v1");
    let n = check_view(&view, &rpms);
    assert!(n > 5000, "only {n} entries checked");
    // rpm reads every header file.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "rpm -qp --nosignature --qf '%{{NEVRA}}\\n' {}/lib/sysimage/packages/*.rpm | wc -l",
            view.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        rpms.len().to_string()
    );
    // Read-only, and the data is shared with the pool.
    let ro = Command::new("btrfs")
        .args(["property", "get"])
        .arg(&view)
        .arg("ro")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ro.stdout).trim(), "ro=true");
    let du = Command::new("btrfs")
        .args(["filesystem", "du", "-s", "--raw"])
        .arg(&view)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&du.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let f: Vec<u64> = line
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().unwrap())
        .collect();
    let (total, exclusive) = (f[0], f[1]);
    eprintln!("btrfs filesystem du: total {total} exclusive {exclusive}");
    assert!(
        exclusive < total / 100,
        "view data not shared: {exclusive} of {total} exclusive"
    );
    assert!(
        std::fs::write(view.join("lib/x"), b"x").is_err(),
        "view is writable"
    );
}

#[test]
fn edge_view_matches_and_relocates() {
    require_root!();
    let (_d, pool) = btrfs_pool("compose-edge");
    let all = rpms(&testdata("edge"));
    let rpms: Vec<PathBuf> = all
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            !n.starts_with("edge-unmapped") && !n.starts_with("edge-update-1.1")
        })
        .collect();
    import_all(&pool, &rpms);
    let r = compose(&pool, "edge", &rpms, &[]);
    let view = pool.join("views/edge");
    assert!(check_view(&view, &rpms) > 50);
    // Every relocation is reported and recorded.
    let rel = r["relocations"].as_array().unwrap();
    assert!(
        rel.iter().any(|x| x["from"] == "/boot/vmlinuz-6.1.0-test"
            && x["to"] == "lib/modules/6.1.0-test/vmlinuz"),
        "{rel:?}"
    );
    assert!(rel
        .iter()
        .any(|x| x["from"] == "/var/lib/edge-relocate/data"));
    let var = std::fs::read_to_string(view.join("lib/tmpfiles.d/reimage-var.conf")).unwrap();
    assert!(var.contains("/var/lib/edge-relocate"), "{var}");
    let meta = std::fs::read_to_string(view.join("lib/reimage/view.json")).unwrap();
    assert!(meta.contains("/boot/vmlinuz-6.1.0-test"));
}

#[test]
fn unmapped_paths_are_refused_unless_relocated() {
    require_root!();
    let (_d, pool) = btrfs_pool("compose-unmapped");
    let pkg = testdata("edge").join("edge-unmapped-1.0-1.x86_64.rpm");
    import_all(&pool, std::slice::from_ref(&pkg));
    let err = fails(&pool, &["compose", "bad", "edge-unmapped"]);
    assert!(
        err.contains("/opt/edge-unmapped/file (edge-unmapped-1.0-1.x86_64)"),
        "{err}"
    );
    assert!(err.contains("--relocate"), "{err}");
    assert!(!pool.join("views/bad").exists());
    let r = json(
        &pool,
        &[
            "compose",
            "ok",
            "edge-unmapped",
            "--relocate",
            "/opt/edge-unmapped=/usr/lib/edge-unmapped",
        ],
    );
    assert!(r["relocations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["to"] == "lib/edge-unmapped/file"));
    assert!(pool.join("views/ok/lib/edge-unmapped/file").is_file());
    let err = fails(
        &pool,
        &[
            "compose",
            "bad2",
            "edge-unmapped",
            "--relocate",
            "/opt/edge-unmapped=/home/x",
        ],
    );
    assert!(err.contains("TO must be under"), "{err}");
}

fn walk(root: &Path) -> BTreeMap<String, String> {
    common::walk(root, ViewJson::Skip)
}

#[test]
fn from_compose_equals_full_compose() {
    require_root!();
    let (_d, pool) = btrfs_pool("compose-from");
    let v1 = rpms(&testdata("realistic/v1"));
    let v2 = rpms(&testdata("realistic/v2"));
    import_all(&pool, &v1);
    import_all(&pool, &v2);
    let first = compose(&pool, "v1", &v1, &[]);
    assert_eq!(
        first["from"],
        serde_json::Value::Null,
        "the first view has no base"
    );
    assert!(
        pool.join("index/plans/v1").is_file(),
        "compose stores the plan"
    );
    // The pool's own files keep the usual modes (compose runs with umask 0
    // while it builds the view).
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(pool.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("index/plans"), 0o755, "index/plans mode");
        assert_eq!(mode("index/plans/v1"), 0o644, "stored plan mode");
    }
    let inc = compose(&pool, "v2inc", &v2, &["--from", "v1"]);
    let full = compose(&pool, "v2full", &v2, &["--no-base"]);
    assert_eq!(full["from"], serde_json::Value::Null);
    assert!(!inc["added"].as_array().unwrap().is_empty());
    assert_eq!(
        inc["added"].as_array().unwrap().len(),
        inc["removed"].as_array().unwrap().len()
    );
    // The kept packages' placements came from v1's stored plan.
    let kept = v2.len() - inc["added"].as_array().unwrap().len();
    assert_eq!(
        inc["stored_placements"].as_u64(),
        Some(kept as u64),
        "{inc}"
    );
    for k in ["files", "dirs", "symlinks", "hardlinks", "unknown_owners"] {
        assert_eq!(inc[k], full[k], "{k}");
    }
    let a = walk(&pool.join("views/v2inc"));
    let b = walk(&pool.join("views/v2full"));
    assert!(a.len() > 5000);
    for (k, v) in &b {
        assert_eq!(
            a.get(k),
            Some(v),
            "{k} differs between --from and full compose"
        );
    }
    assert_eq!(a.len(), b.len(), "--from has extra entries");
    // A one-package update touches only that package's entries.
    let edge = testdata("edge");
    let u1 = edge.join("edge-update-1.0-1.x86_64.rpm");
    let u2 = edge.join("edge-update-1.1-1.x86_64.rpm");
    import_all(&pool, &[u1.clone(), u2.clone()]);
    let mut with1 = v2.clone();
    with1.push(u1);
    let mut with2 = v2.clone();
    with2.push(u2);
    compose(&pool, "u1", &with1, &["--no-base"]);
    let small = compose(&pool, "u2inc", &with2, &["--from", "u1"]);
    let u2full = compose(&pool, "u2full", &with2, &["--no-base"]);
    // Only the paths the changed package touches were planned; the counts
    // are the whole view's all the same.
    assert!(
        small["planned_entries"].as_u64().unwrap() * 10
            < u2full["planned_entries"].as_u64().unwrap(),
        "{small}"
    );
    for k in ["files", "dirs", "symlinks", "hardlinks", "unknown_owners"] {
        assert_eq!(small[k], u2full[k], "{k}");
    }
    assert_eq!(small["added"].as_array().unwrap().len(), 1);
    assert_eq!(small["stored_placements"].as_u64(), Some(v2.len() as u64));
    let created = small["created_entries"].as_u64().unwrap();
    assert!(
        created < 50,
        "a one-package update created {created} entries"
    );
    let want = walk(&pool.join("views/u2full"));
    assert_eq!(walk(&pool.join("views/u2inc")), want);

    // Without --from, compose starts from the view sharing most packages.
    let auto = compose(&pool, "u2auto", &with2, &[]);
    assert_eq!(auto["auto_base"], true, "{auto}");
    let base = auto["from"].as_str().expect("a base was chosen");
    assert!(["u2inc", "u2full"].contains(&base), "chose {base}");
    assert!(auto["added"].as_array().unwrap().is_empty(), "{auto}");
    assert!(
        auto["created_entries"].as_u64().unwrap() <= 3,
        "only generated files: {auto}"
    );
    assert_eq!(walk(&pool.join("views/u2auto")), want);

    // A damaged or missing stored plan is ignored: the same view, planned
    // from the packages.
    let plan = pool.join("index/plans/u1");
    let mut bytes = std::fs::read(&plan).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&plan, &bytes).unwrap();
    let damaged = compose(&pool, "u2damaged", &with2, &["--from", "u1"]);
    assert_eq!(damaged["stored_placements"].as_u64(), Some(0));
    assert_eq!(walk(&pool.join("views/u2damaged")), want);
    std::fs::remove_file(&plan).unwrap();
    let missing = compose(&pool, "u2missing", &with2, &["--from", "u1"]);
    assert_eq!(missing["stored_placements"].as_u64(), Some(0));
    assert_eq!(walk(&pool.join("views/u2missing")), want);
    // rm-view takes the plan with it.
    assert!(pool.join("index/plans/u2missing").is_file());
    ok(&pool, &["rm-view", "u2missing"]);
    assert!(!pool.join("index/plans/u2missing").exists());
}

#[test]
fn hostile_compose_inputs_are_refused_and_nothing_escapes() {
    require_root!();
    let (d, pool) = btrfs_pool("compose-hostile");
    let h = testdata("hostile");
    let outside = d.join("outside");
    std::fs::create_dir_all(outside.join("etc")).unwrap();
    std::fs::write(outside.join("etc/passwd"), b"precious").unwrap();
    for f in [
        "conflict-a-1.0-1.x86_64.rpm",
        "conflict-b-1.0-1.x86_64.rpm",
        "symlink-escape-absolute.rpm",
        "symlink-escape-relative.rpm",
    ] {
        ok(&pool, &["import", h.join(f).to_str().unwrap()]);
    }
    let before_outside = listing(d.path());
    let err = fails(&pool, &["compose", "c", "conflict-a", "conflict-b"]);
    assert!(
        err.contains("conflict-a-1.0-1.x86_64")
            && err.contains("conflict-b-1.0-1.x86_64")
            && err.contains("/usr/share/conflict/file"),
        "{err}"
    );
    let pkgs = json(&pool, &["packages"]);
    let mut escapes = 0;
    for p in pkgs["packages"].as_array().unwrap() {
        let n = p["file"].as_str().unwrap();
        if n.contains("symlink") || n.contains("escape") {
            let err = fails(&pool, &["compose", "s", n]);
            assert!(err.contains("is not a directory"), "{err}");
            escapes += 1;
        }
    }
    assert_eq!(escapes, 2, "symlink-escape fixtures not found among {pkgs}");
    assert!(
        listing(&pool.join("views")).is_empty(),
        "a refused compose left a view"
    );
    let after = listing(d.path());
    let strip = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|l| !l.contains("pool/tmp") && !l.contains("pool/lock"))
            .collect()
    };
    assert_eq!(
        strip(after),
        strip(before_outside),
        "something changed outside the pool's tmp/"
    );
    assert_eq!(
        std::fs::read(outside.join("etc/passwd")).unwrap(),
        b"precious"
    );
}

#[test]
fn views_rm_view_and_name_checks() {
    require_root!();
    let (_d, pool) = btrfs_pool("compose-views");
    let pkg = realworld().join("rpm-sign-4.15.1-1.fc31.x86_64.rpm");
    import_all(&pool, &[pkg]);
    ok(&pool, &["compose", "a", "rpm-sign"]);
    let err = fails(&pool, &["compose", "a", "rpm-sign"]);
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&pool, &["compose", "../x", "rpm-sign"]);
    assert!(err.contains("not valid"), "{err}");
    let err = fails(&pool, &["compose", "b", "no-such-package"]);
    assert!(err.contains("not in the pool"), "{err}");
    let v = json(&pool, &["views"]);
    assert_eq!(v[0]["name"], "a");
    assert_eq!(v[0]["packages"], 1);
    assert_eq!(v[0]["readonly"], true);
    ok(&pool, &["rm-view", "a"]);
    assert!(!pool.join("views/a").exists());
    assert!(fails(&pool, &["rm-view", "a"]).contains("no view a"));
    // list files, comments, bare names and .rpm names
    let list = pool.join("../list.txt");
    std::fs::write(
        &list,
        "# the set\nrpm-sign-4.15.1-1.fc31.x86_64.rpm  # by file name\n\n",
    )
    .unwrap();
    ok(&pool, &["compose", "l", "--list", list.to_str().unwrap()]);
    assert!(pool
        .join("views/l/lib/sysimage/packages/rpm-sign-4.15.1-1.fc31.x86_64.rpm")
        .is_file());
    // A bad entry is named with its file and line.
    let bad = pool.join("../bad.list");
    std::fs::write(&bad, "# the set\nrpm-sign\n\nno-such-pkg  # typo\n").unwrap();
    let err = fails(&pool, &["compose", "m", "--list", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.list line 4")
            && err.contains("no-such-pkg")
            && err.contains("not in the pool"),
        "{err}"
    );
    assert!(!pool.join("views/m").exists());
}

#[test]
fn killed_compose_leaves_no_partial_view() {
    require_root!();
    let (_d, pool) = btrfs_pool("compose-kill");
    let rpms = rpms(&testdata("realistic/v1"));
    import_all(&pool, &rpms);
    let names: Vec<String> = rpms
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    for (i, delay_ms) in [5u64, 30, 80, 150, 300].into_iter().enumerate() {
        let name = format!("k{i}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_reimage"))
            .arg("--pool")
            .arg(&pool)
            .args(["-q", "compose", &name])
            .args(&names)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let view = pool.join("views").join(&name);
        if view.exists() {
            // Published: then it is complete and read-only.
            assert!(
                view.join("lib/reimage/view.json").is_file(),
                "{name} is half-visible"
            );
            let ro = Command::new("btrfs")
                .args(["property", "get"])
                .arg(&view)
                .arg("ro")
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&ro.stdout).trim(), "ro=true");
        } else {
            // Not published: a rerun succeeds and cleans tmp/.
            let mut a = vec!["compose", name.as_str()];
            a.extend(names.iter().map(String::as_str));
            ok(&pool, &a);
            assert!(
                std::fs::read_dir(pool.join("tmp"))
                    .unwrap()
                    .next()
                    .is_none(),
                "tmp/ not cleaned"
            );
        }
    }
}

#[test]
fn xfs_views_are_plain_directories_and_ext4_copies_when_allowed() {
    require_root!();
    let pkg = realworld().join("rpm-sign-4.15.1-1.fc31.x86_64.rpm");
    let x = reimage_testkit::xfs_dir("compose-xfs");
    let pool = x.join("pool");
    ok(&pool, &["init"]);
    import_all(&pool, std::slice::from_ref(&pkg));
    let r = json(&pool, &["compose", "v", "rpm-sign"]);
    assert_eq!(r["readonly"], false);
    assert_eq!(r["copied"], false);
    check_view(&pool.join("views/v"), std::slice::from_ref(&pkg));
    let e = reimage_testkit::ext4_dir("compose-ext4");
    let pool = e.join("pool");
    ok(&pool, &["init", "--allow-copy"]);
    import_all(&pool, std::slice::from_ref(&pkg));
    let r = json(&pool, &["compose", "v", "rpm-sign"]);
    assert_eq!(r["copied"], true);
    check_view(&pool.join("views/v"), &[pkg]);
}

/// A bare name picks the newest version of the machine's own arch (multilib
/// pools hold several); NAME.ARCH picks that arch; older versions lose.
#[test]
fn bare_names_prefer_the_native_arch_and_name_arch_selects() {
    require_root!();
    let (d, pool) = btrfs_pool("compose-multilib");
    let mk_named = |name: &str, version: &str, arch: &str| -> PathBuf {
        let pkg = rpm::PackageBuilder::new(name, version, "MIT", arch, "multilib test")
            .using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
            .release("1")
            .with_file_contents(
                format!("{version} {arch}\n").into_bytes(),
                rpm::FileOptions::new(format!("/usr/lib/{name}-{arch}/file")).permissions(0o644),
            )
            .unwrap()
            .build()
            .unwrap();
        let path = d.join(format!("{name}-{version}-1.{arch}.rpm"));
        pkg.write_file(&path).unwrap();
        path
    };
    let mk = |version: &str, arch: &str| mk_named("multi", version, arch);
    // A package whose name extends the other's: never taken for it.
    let rpms = vec![
        mk("0.9", "x86_64"),
        mk("1.0", "x86_64"),
        mk("1.0", "i686"),
        mk_named("multi-tool", "2.0", "x86_64"),
    ];
    import_all(&pool, &rpms);
    let r = json(&pool, &["compose", "native", "multi", "--no-base"]);
    assert_eq!(r["added"][0], "multi-1.0-1.x86_64", "{r}");
    let r = json(&pool, &["compose", "other", "multi.i686", "--no-base"]);
    assert_eq!(r["added"][0], "multi-1.0-1.i686", "{r}");
    let r = json(
        &pool,
        &["compose", "old", "multi-0.9-1.x86_64", "--no-base"],
    );
    assert_eq!(r["added"][0], "multi-0.9-1.x86_64", "{r}");
    let r = json(&pool, &["compose", "tool", "multi-tool", "--no-base"]);
    assert_eq!(r["added"][0], "multi-tool-2.0-1.x86_64", "{r}");
    let r = json(
        &pool,
        &["compose", "epoch", "multi-0:1.0-1.i686", "--no-base"],
    );
    assert_eq!(r["added"][0], "multi-1.0-1.i686", "{r}");
    let err = fails(&pool, &["compose", "both", "multi-1.0-1"]);
    assert!(err.contains("matches several"), "{err}");
    let err = fails(&pool, &["compose", "none", "multi-t"]);
    assert!(err.contains("not in the pool"), "{err}");
}

/// Command lines that cannot work are usage errors: exit status 2 with a
/// message, before any pool is touched (README: 0 ok, 1 error, 2 usage).
#[test]
fn usage_errors_exit_2() {
    let nowhere = Path::new("/nonexistent/reimage-pool");
    for (args, says) in [
        (&["compose", "x"][..], "name the packages"),
        (
            &["compose", "x", "bash", "--relocate", "foo"],
            "is not FROM=TO",
        ),
        (&["import", "--jobs", "0", "x.rpm"], "number of jobs"),
        (
            &["publish", "/nonexistent/repo", "demo"],
            "name both IMAGE and VERSION",
        ),
        (
            &["publish", "/nonexistent/repo", "demo", "3"],
            "no packages given",
        ),
        (&["no-such-command"], "unrecognized subcommand"),
    ] {
        let out = reimage(nowhere, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!nowhere.exists());
    // REIMAGE_POOL set but empty is unset (the default pool), not a usage error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reimage"))
        .args(["views"])
        .env("REIMAGE_POOL", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("a value is required"), "{stderr}");
}

/// `--passwd` / `--group` map owner names the view does not define; a file
/// that is not a passwd/group file is refused, naming its line.
#[test]
fn passwd_and_group_files_map_unknown_owners() {
    require_root!();
    let (d, pool) = btrfs_pool("compose-passwd");
    let modes = testdata("edge").join("edge-modes-1.0-1.x86_64.rpm");
    import_all(&pool, std::slice::from_ref(&modes));
    let r = json(&pool, &["compose", "plain", "edge-modes"]);
    let unknown = r["unknown_owners"].to_string();
    assert!(unknown.contains("reimage-nosuchuser"), "{r}");

    let passwd = d.join("passwd");
    let group = d.join("group");
    std::fs::write(
        &passwd,
        "# test\nreimage-nosuchuser:x:4321:4321::/:/bin/false\ndaemon:x:1:1::/:/bin/false\n+::::::\n",
    )
    .unwrap();
    std::fs::write(
        &group,
        "reimage-nosuchgroup:x:8765:\ndaemon:x:1:\nadm:x:4:\n",
    )
    .unwrap();
    let (p, g) = (passwd.to_str().unwrap(), group.to_str().unwrap());
    let r = json(
        &pool,
        &[
            "compose",
            "mapped",
            "edge-modes",
            "--passwd",
            p,
            "--group",
            g,
        ],
    );
    assert_eq!(
        r["unknown_owners"].as_array().map(|a| a.len()),
        Some(0),
        "{r}"
    );
    let mut ids = std::collections::BTreeSet::new();
    for e in walkdir(&pool.join("views/mapped")) {
        let m = std::fs::symlink_metadata(&e).unwrap();
        ids.insert((m.uid(), m.gid()));
    }
    assert!(ids.contains(&(4321, 8765)), "{ids:?}");
    ok(&pool, &["verify", "mapped"]);

    std::fs::write(&passwd, "reimage-nosuchuser:x:4321\nthis is not passwd\n").unwrap();
    let err = fails(&pool, &["compose", "bad", "edge-modes", "--passwd", p]);
    assert!(err.contains("line 2") && err.contains(p), "{err}");
    assert!(!pool.join("views/bad").exists());
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out
}
