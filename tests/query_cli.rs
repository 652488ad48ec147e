//! `reimage list/query/diff/verify` through the real binary on views composed
//! on a real btrfs, checked against rpm itself: `rpm -qp` on the same header
//! files, `rpm -qpl`, rpm's own file attributes for `diff --files`, and
//! `rpm -Vp --root` (a chroot whose `/usr` is a writable snapshot of the
//! view) for `verify`.
mod common;

use common::*;
use reimage_testkit::require_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The packages of a test set that compose together: without the generated
/// `filesystem` (it conflicts with base-files on /var/lock), the unmappable
/// and the second version of the update package.
fn set(sub: &str) -> Vec<PathBuf> {
    rpms(&testdata(sub))
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            !n.starts_with("filesystem-")
                && !n.starts_with("edge-unmapped")
                && !n.starts_with("edge-update-1.1")
        })
        .collect()
}

fn import(pool: &Path, rpms: &[PathBuf]) {
    let mut a = vec!["-q", "import"];
    a.extend(rpms.iter().map(|p| p.to_str().unwrap()));
    ok(pool, &a);
}

/// Composes NAME from a `--list` file naming `rpms`; returns the view.
fn compose(pool: &Path, name: &str, rpms: &[PathBuf]) -> PathBuf {
    let list = pool.join(format!("../{name}.list"));
    let text: String = rpms
        .iter()
        .map(|p| format!("{}\n", p.file_name().unwrap().to_str().unwrap()))
        .collect();
    std::fs::write(&list, text).unwrap();
    ok(pool, &["compose", name, "--list", list.to_str().unwrap()]);
    pool.join("views").join(name)
}

fn headers(view: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(view.join("lib/sysimage/packages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn rpm(args: &[&str]) -> String {
    let out = Command::new("rpm")
        .args(args)
        .output()
        .expect("rpm must be installed");
    String::from_utf8(out.stdout).unwrap()
}

fn rpm_qf(fmt: &str, files: &[PathBuf]) -> String {
    let mut a = vec!["-qp", "--nosignature", "--nodigest", "--qf", fmt];
    a.extend(files.iter().map(|p| p.to_str().unwrap()));
    rpm(&a)
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

fn view_str(view: &Path) -> &str {
    view.to_str().unwrap()
}

/// `list` agrees with rpm's `%{NEVRA}`; `query -l` with `rpm -qpl` for every
/// package; `--json` view paths exist where they say.
fn check_list_and_files(pool: &Path, view: &Path) -> usize {
    let hs = headers(view);
    assert!(!hs.is_empty());
    let want = sorted_lines(&rpm_qf("%{NEVRA}\\n", &hs));
    let got: Vec<String> = sorted_lines(
        &ok(pool, &["list", view_str(view)])
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string() + "\n")
            .collect::<String>(),
    );
    assert_eq!(got, want, "list of {}", view.display());
    let j = json(pool, &["list", view_str(view)]);
    let mut jn: Vec<String> = j["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nevra"].as_str().unwrap().to_string())
        .collect();
    jn.sort();
    assert_eq!(jn, want, "list --json of {}", view.display());
    assert_eq!(j["errors"].as_array().unwrap().len(), 0);

    let root_conf =
        std::fs::read_to_string(view.join("lib/tmpfiles.d/reimage-root.conf")).unwrap_or_default();
    let mut files = 0;
    for h in &hs {
        let stem = h.file_name().unwrap().to_str().unwrap();
        let rpm_l = rpm(&["-qpl", "--nosignature", "--nodigest", h.to_str().unwrap()]);
        let ours = ok(pool, &["query", view_str(view), "-l", stem]);
        assert_eq!(ours, rpm_l, "query -l {stem} vs rpm -qpl");
        let j = json(pool, &["query", view_str(view), "-l", stem]);
        let fl = j[0]["files"].as_array().unwrap();
        let paths: Vec<&str> = fl.iter().map(|f| f["path"].as_str().unwrap()).collect();
        let rpm_paths: Vec<&str> = rpm_l.lines().filter(|l| !l.starts_with('(')).collect();
        assert_eq!(paths, rpm_paths, "query -l --json {stem}");
        for f in fl {
            let path = f["path"].as_str().unwrap();
            let ghost = f["flags"].as_u64().unwrap() & 64 != 0;
            let place = match (f.get("view_path"), path.strip_prefix("/usr/")) {
                (Some(vp), _) => {
                    assert!(
                        !path.starts_with("/usr/"),
                        "{path} has a view_path though it is under /usr"
                    );
                    vp.as_str().unwrap().to_string()
                }
                (None, Some(rest)) => rest.to_string(),
                (None, None) if path == "/usr" => String::new(),
                // root skeleton (/home, /run/x, /bin -> usr/bin): not in the
                // view, a line in reimage-root.conf
                (None, None) => {
                    if ghost {
                        continue;
                    }
                    assert!(
                        matches!(f["type"].as_str(), Some("dir" | "symlink")),
                        "{path} has no place"
                    );
                    assert!(
                        root_conf
                            .lines()
                            .any(|l| l.split_whitespace().nth(1) == Some(path)),
                        "{path} not in reimage-root.conf"
                    );
                    continue;
                }
            };
            if !ghost {
                assert!(
                    std::fs::symlink_metadata(view.join(&place)).is_ok(),
                    "{path} ({stem}) is not at {place} in the view"
                );
            }
            files += 1;
        }
    }
    files
}

#[test]
fn list_and_query_agree_with_rpm() {
    require_root!();
    let (_d, pool) = btrfs_pool("query-list");
    let v1 = set("realistic/v1");
    let edge = set("edge");
    import(&pool, &v1);
    import(&pool, &edge);
    let view = compose(&pool, "v1", &v1);
    let eview = compose(&pool, "edge", &edge);
    let n = check_list_and_files(&pool, &view);
    assert!(n > 5000, "only {n} files of the realistic view checked");
    let n = check_list_and_files(&pool, &eview);
    assert!(n > 50, "only {n} files of the edge view checked");

    // view_path for relocated paths of edge-relocate, none under /usr.
    let j = json(&pool, &["query", "edge", "-l", "edge-relocate"]);
    let vp: BTreeMap<&str, Option<&str>> = j[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["view_path"].as_str()))
        .collect();
    for (path, want) in [
        ("/etc/edge-relocate.conf", Some("etc/edge-relocate.conf")),
        (
            "/var/lib/edge-relocate/data",
            Some("share/factory/var/lib/edge-relocate/data"),
        ),
        ("/bin/edge-bin", Some("bin/edge-bin")),
        ("/sbin/edge-sbin", Some("sbin/edge-sbin")),
        ("/lib64/edge-relocate.so", Some("lib64/edge-relocate.so")),
        (
            "/boot/vmlinuz-6.1.0-test",
            Some("lib/modules/6.1.0-test/vmlinuz"),
        ),
        ("/usr/lib/modules/6.1.0-test/modules.dep", None),
    ] {
        assert_eq!(vp.get(path), Some(&want), "view_path of {path}");
    }

    // -f: relocated paths, /usr paths, other spellings of the same place.
    for (v, path, owner) in [
        (
            "edge",
            "/etc/edge-relocate.conf",
            "edge-relocate-1.0-1.x86_64",
        ),
        (
            "edge",
            "/var/lib/edge-relocate/data",
            "edge-relocate-1.0-1.x86_64",
        ),
        ("edge", "/usr/sbin/edge-sbin", "edge-relocate-1.0-1.x86_64"),
        // regression: a relocation that renames (kernel files from /boot)
        (
            "edge",
            "/usr/lib/modules/6.1.0-test/vmlinuz",
            "edge-relocate-1.0-1.x86_64",
        ),
        (
            "edge",
            "/boot/vmlinuz-6.1.0-test",
            "edge-relocate-1.0-1.x86_64",
        ),
        ("v1", "/usr/bin/tar", "tar-1.34+dfsg-1.2+deb12u1.x86_64"),
        ("v1", "/usr/bin/bash", "bash-5.2.15-2+b13.x86_64"),
        ("v1", "/bin/bash", "bash-5.2.15-2+b13.x86_64"),
    ] {
        assert_eq!(
            ok(&pool, &["query", v, "-f", path]).trim(),
            owner,
            "query {v} -f {path}"
        );
    }
    let j = json(&pool, &["query", "edge", "-f", "/usr/sbin/edge-sbin"]);
    assert_eq!(j["owners"][0]["path"], "/sbin/edge-sbin");
    assert_eq!(j["owners"][0]["view_path"], "sbin/edge-sbin");
    let err = fails(&pool, &["query", "v1", "-f", "/usr/bin/no-such-file"]);
    assert!(
        err.contains("file /usr/bin/no-such-file is not owned by any package"),
        "{err}"
    );
    fails(&pool, &["query", "edge", "-f", "/etc/edge-relocate.conf.d"]);
    // Path to the view works as well as its name.
    assert_eq!(
        ok(&pool, &["query", view_str(&view), "-f", "/usr/bin/tar"]).trim(),
        "tar-1.34+dfsg-1.2+deb12u1.x86_64"
    );

    // --whatprovides, against rpm's own provides.
    let libc = headers(&view)
        .into_iter()
        .find(|h| {
            h.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("libc6-")
        })
        .unwrap();
    let provides = rpm(&["-qp", "--nosignature", "--provides", libc.to_str().unwrap()]);
    assert!(provides.contains("libc6 = 2.36-9+deb12u7"), "{provides}");
    for cap in ["libc6", "libc6 >= 2.30", "libc6 = 2.36-9+deb12u7"] {
        assert_eq!(
            ok(&pool, &["query", "v1", "--whatprovides", cap]).trim(),
            "libc6-2.36-9+deb12u7.x86_64",
            "--whatprovides {cap}"
        );
    }
    fails(&pool, &["query", "v1", "--whatprovides", "libc6 < 2.30"]);
    fails(
        &pool,
        &["query", "v1", "--whatprovides", "no-such-capability"],
    );
    assert_eq!(
        ok(&pool, &["query", "v1", "--whatprovides", "/usr/bin/tar"]).trim(),
        "tar-1.34+dfsg-1.2+deb12u1.x86_64"
    );
    let j = json(&pool, &["query", "v1", "--whatprovides", "libc6 >= 2.30"]);
    assert_eq!(j["providers"][0]["provides"], "libc6 = 2.36-9+deb12u7");

    // -i: the same fields as rpm -qpi (build date and host are formatted
    // differently: filtered).
    let bash = view.join("lib/sysimage/packages/bash-5.2.15-2+b13.x86_64.rpm");
    let field = |s: &str, k: &str| -> Option<String> {
        s.lines()
            .find(|l| l.starts_with(k) && l[k.len()..].trim_start().starts_with(':'))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
    };
    let ours = ok(&pool, &["query", "v1", "-i", "bash"]);
    let theirs = rpm(&["-qpi", "--nosignature", bash.to_str().unwrap()]);
    for k in [
        "Name",
        "Version",
        "Release",
        "Architecture",
        "Group",
        "Size",
        "License",
        "Packager",
        "Vendor",
        "URL",
        "Summary",
    ] {
        assert_eq!(field(&ours, k), field(&theirs, k), "-i field {k}");
    }
    assert_eq!(field(&ours, "Name").as_deref(), Some("bash"));
    assert_eq!(field(&ours, "Version").as_deref(), Some("5.2.15"));
    let desc = |s: &str| {
        s.split_once("Description :\n")
            .unwrap()
            .1
            .trim()
            .to_string()
    };
    assert_eq!(desc(&ours), desc(&theirs));
    let j = json(&pool, &["query", "v1", "-i", "bash"]);
    assert_eq!(j[0]["nevra"]["name"], "bash");
    assert_eq!(j[0]["nevra"]["version"], "5.2.15");
    // Unknown package: an error, not silence.
    let out = reimage(&pool, &["query", "v1", "-i", "no-such-package"]);
    assert!(!out.status.success());
}

/// name.arch -> NEVRA of each package file, from rpm.
fn nevras_by_name(rpms: &[PathBuf]) -> BTreeMap<String, String> {
    rpm_qf("%{NAME}.%{ARCH} %{NEVRA}\\n", rpms)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Header path -> its attributes as rpm reports them (type and mode, digest,
/// size, owner, link, caps), first package wins (packages in NEVRA order).
fn rpm_file_attrs(rpms: &[PathBuf]) -> BTreeMap<String, (String, String)> {
    let mut by_nevra: Vec<(String, &PathBuf)> = rpms
        .iter()
        .map(|p| (rpm_qf("%{NEVRA}", std::slice::from_ref(p)), p))
        .collect();
    by_nevra.sort();
    let mut m = BTreeMap::new();
    for (nevra, p) in by_nevra {
        let out = rpm_qf(
            "[%{FILENAMES}\\t%{FILEMODES:octal}\\t%{FILEDIGESTS}\\t%{LONGFILESIZES}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\t%{FILELINKTOS}\\t%{FILECAPS}\\n]",
            std::slice::from_ref(p),
        );
        for l in out.lines().filter(|l| !l.is_empty()) {
            let (path, attrs) = l.split_once('\t').unwrap();
            m.entry(path.to_string())
                .or_insert_with(|| (attrs.to_string(), nevra.clone()));
        }
    }
    m
}

#[test]
fn diff_of_realistic_versions_names_the_updated_packages() {
    require_root!();
    let (_d, pool) = btrfs_pool("query-diff");
    let v1 = set("realistic/v1");
    let v2 = set("realistic/v2");
    import(&pool, &v1);
    import(&pool, &v2);
    compose(&pool, "v1", &v1);
    compose(&pool, "v2", &v2);

    // Expected, from rpm on the package files: same name.arch, other NEVRA.
    let (a, b) = (nevras_by_name(&v1), nevras_by_name(&v2));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the two sets hold the same names"
    );
    let want: BTreeSet<String> = a
        .iter()
        .filter(|(k, from)| &b[*k] != *from)
        .map(|(k, from)| format!("{from} -> {}", b[k]))
        .collect();
    assert!(want.len() > 20, "{want:?}");
    assert!(want.len() < a.len(), "some packages are unchanged");

    let text = ok(&pool, &["diff", "v1", "v2"]);
    let got: BTreeSet<String> = text
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("upgraded    ");
            assert!(rest.is_some(), "not an upgrade: {l}");
            rest.unwrap().to_string()
        })
        .collect();
    assert_eq!(got, want);
    let j = json(&pool, &["diff", "v1", "v2"]);
    let p = &j["packages"];
    for k in ["added", "removed", "downgraded", "rebuilt"] {
        assert_eq!(p[k].as_array().unwrap().len(), 0, "{k}: {p}");
    }
    let got: BTreeSet<String> = p["upgraded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(
                a[&format!(
                    "{}.{}",
                    c["name"].as_str().unwrap(),
                    c["arch"].as_str().unwrap()
                )],
                c["from"].as_str().unwrap()
            );
            format!(
                "{} -> {}",
                c["from"].as_str().unwrap(),
                c["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, want);
    // Backwards: the same packages, downgraded.
    let j = json(&pool, &["diff", "v2", "v1"]);
    assert_eq!(
        j["packages"]["downgraded"].as_array().unwrap().len(),
        want.len()
    );
    assert_eq!(j["packages"]["upgraded"].as_array().unwrap().len(), 0);
    // A view against itself: nothing.
    assert_eq!(ok(&pool, &["diff", "v1", "v1"]), "");

    // --files: exactly the file differences rpm's headers show, and only
    // paths of the updated packages.
    let changed_names: BTreeSet<&String> = a.keys().filter(|k| b[*k] != a[*k]).collect();
    let pick = |rpms: &[PathBuf], m: &BTreeMap<String, String>| -> Vec<PathBuf> {
        let by: BTreeMap<String, PathBuf> = rpms
            .iter()
            .map(|p| {
                (
                    rpm_qf("%{NAME}.%{ARCH}", std::slice::from_ref(p)),
                    p.clone(),
                )
            })
            .collect();
        m.keys()
            .filter(|k| changed_names.contains(k))
            .map(|k| by[k].clone())
            .collect()
    };
    let (fa, fb) = (rpm_file_attrs(&v1), rpm_file_attrs(&v2));
    let mut updated_paths: BTreeSet<String> = BTreeSet::new();
    for p in pick(&v1, &a).iter().chain(pick(&v2, &b).iter()) {
        updated_paths.extend(
            rpm_qf("[%{FILENAMES}\\n]", std::slice::from_ref(p))
                .lines()
                .map(String::from),
        );
    }
    let mut want_files: BTreeSet<String> = BTreeSet::new();
    for (path, (attrs, _)) in &fa {
        match fb.get(path) {
            None => want_files.insert(format!("R {path}")),
            Some((b_attrs, _)) if b_attrs != attrs => want_files.insert(format!("M {path}")),
            _ => false,
        };
    }
    for path in fb.keys().filter(|p| !fa.contains_key(*p)) {
        want_files.insert(format!("A {path}"));
    }
    let got_files: BTreeSet<String> = ok(&pool, &["diff", "v1", "v2", "--files"])
        .lines()
        .filter(|l| !l.contains("  "))
        .map(|l| match l.split_once(" (") {
            Some((head, _)) if l.starts_with("M ") => head.to_string(),
            _ => l.to_string(),
        })
        .collect();
    assert!(got_files.len() > 100, "{}", got_files.len());
    for l in &got_files {
        assert!(
            updated_paths.contains(&l[2..]),
            "{l} is not a file of an updated package"
        );
    }
    let missing: Vec<_> = want_files.difference(&got_files).collect();
    let extra: Vec<_> = got_files.difference(&want_files).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "diff --files vs rpm: missing {missing:?}, extra {extra:?}"
    );
    let j = json(&pool, &["diff", "v1", "v2", "--files"]);
    let f = &j["files"];
    assert_eq!(
        f["added"].as_array().unwrap().len()
            + f["removed"].as_array().unwrap().len()
            + f["changed"].as_array().unwrap().len(),
        got_files.len()
    );
    for c in f["changed"].as_array().unwrap() {
        assert!(!c["what"].as_array().unwrap().is_empty(), "{c}");
    }
}

/// A root for `rpm --root` whose `/usr` is a writable snapshot of `view`, with
/// the merged-/usr links, `/var` at the factory copy and the view's owner
/// table as `/etc/passwd` and `/etc/group`.
fn rpm_root(dir: &Path, view: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let usr = root.join("usr");
    let st = Command::new("btrfs")
        .args(["-q", "subvolume", "snapshot"])
        .arg(view)
        .arg(&usr)
        .status()
        .unwrap();
    assert!(st.success(), "btrfs subvolume snapshot");
    for l in ["etc", "bin", "sbin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l)).unwrap();
    }
    std::os::unix::fs::symlink("usr/share/factory/var", root.join("var")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(usr.join("lib/reimage/view.json")).unwrap())
            .unwrap();
    for (file, key) in [("passwd", "users"), ("group", "groups")] {
        let p = usr.join("etc").join(file);
        if p.exists() {
            continue;
        }
        let text: String = meta[key]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, id)| {
                if file == "passwd" {
                    format!("{n}:x:{id}:{id}::/:/bin/false\n")
                } else {
                    format!("{n}:x:{id}:\n")
                }
            })
            .collect();
        std::fs::write(p, text).unwrap();
    }
    root
}

/// `rpm -Vp --root ROOT` on every header file of the view in ROOT/usr:
/// its problem lines, without the root skeleton (top-level directories,
/// which a view does not hold).
fn rpm_verify(root: &Path) -> BTreeSet<String> {
    let mut args = vec![
        "-Vp".to_string(),
        "--nodeps".into(),
        "--nosignature".into(),
        "--nodigest".into(),
        "--root".into(),
        root.to_str().unwrap().into(),
    ];
    for h in headers(&root.join("usr")) {
        args.push(format!(
            "/usr/lib/sysimage/packages/{}",
            h.file_name().unwrap().to_str().unwrap()
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    rpm(&args)
        .lines()
        .filter(|l| l.len() > 13 && l[13..].matches('/').count() > 1)
        .map(String::from)
        .collect()
}

fn verify_lines(pool: &Path, view: &str) -> (Option<i32>, BTreeSet<String>) {
    let out = reimage(pool, &["verify", view]);
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (out.status.code(), lines)
}

fn set_mtime_as(p: &Path, like: &Path) {
    let t = std::fs::metadata(like).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn verify_passes_fresh_views_and_names_tampering_like_rpm() {
    require_root!();
    let (d, pool) = btrfs_pool("query-verify");
    let v1 = set("realistic/v1");
    let edge = set("edge");
    import(&pool, &v1);
    import(&pool, &edge);
    let view = compose(&pool, "v1", &v1);
    compose(&pool, "edge", &edge);
    for v in ["v1", "edge"] {
        let t = Instant::now();
        let j = json(&pool, &["verify", v]);
        eprintln!(
            "verify {v}: {} packages, {} files ({} skipped) in {:.2?}",
            j["packages"],
            j["files"],
            j["skipped"],
            t.elapsed()
        );
        assert_eq!(j["problems"].as_array().unwrap().len(), 0, "{j}");
        assert_eq!(ok(&pool, &["verify", v]), "");
    }
    assert_eq!(ok(&pool, &["verify", "v1", "bash", "tar"]), "");

    // A writable snapshot, which rpm -V checks too.
    let root = rpm_root(d.path(), &view);
    let w = root.join("usr");
    let ws = w.to_str().unwrap();
    let fresh_rpm = rpm_verify(&root);
    assert!(
        fresh_rpm.is_empty(),
        "rpm -V on a fresh view: {fresh_rpm:?}"
    );
    assert_eq!(verify_lines(&pool, ws), (Some(0), BTreeSet::new()));

    // content (same size and mtime), content and size, mode, symlink
    // target, missing file
    let tar = w.join("bin/tar");
    let mut data = std::fs::read(&tar).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&tar, data).unwrap();
    set_mtime_as(&tar, &view.join("bin/tar"));
    let rc = w.join("etc/bash.bashrc");
    let mut data = std::fs::read(&rc).unwrap();
    data.extend_from_slice(b"# changed\n");
    std::fs::write(&rc, data).unwrap();
    std::fs::set_permissions(
        w.join("bin/gzip"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::remove_file(w.join("bin/i386")).unwrap();
    std::os::unix::fs::symlink("elsewhere", w.join("bin/i386")).unwrap();
    std::fs::remove_file(w.join("bin/lastb")).unwrap();
    let want: BTreeSet<String> = [
        "S.5....T.  c /etc/bash.bashrc",
        "..5......    /usr/bin/tar",
        ".M.......    /usr/bin/gzip",
        "....L....    /usr/bin/i386",
        "missing     /usr/bin/lastb",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let t = Instant::now();
    let (code, got) = verify_lines(&pool, ws);
    eprintln!("verify of the tampered copy: {:.2?}", t.elapsed());
    assert_eq!(code, Some(1));
    assert_eq!(got, want);
    assert_eq!(rpm_verify(&root), want, "rpm -V on the tampered copy");
    let out = reimage(&pool, &["--json", "verify", ws]);
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in j["problems"].as_array().unwrap() {
        assert_eq!(
            keys(p),
            set_of(&["package", "path", "fs_path", "attrs", "line"])
        );
    }
    let attrs: BTreeMap<&str, Vec<&str>> = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap(),
                p["attrs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(attrs["/usr/bin/tar"], ["digest"]);
    assert_eq!(attrs["/usr/bin/gzip"], ["mode"]);
    assert_eq!(attrs["/usr/bin/i386"], ["link"]);
    assert_eq!(attrs["/usr/bin/lastb"], ["missing"]);
    assert!(attrs["/etc/bash.bashrc"].contains(&"size"));
    // Naming packages limits the check to them.
    let out = reimage(&pool, &["verify", ws, "tar"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "..5......    /usr/bin/tar\n"
    );
    assert_eq!(ok(&pool, &["verify", ws, "sudo"]), "");

    // Relocated files of the edge view, by their header paths.
    let e = d.join("edge-copy");
    let st = Command::new("btrfs")
        .args(["-q", "subvolume", "snapshot"])
        .arg(pool.join("views/edge"))
        .arg(&e)
        .status()
        .unwrap();
    assert!(st.success());
    let data_file = e.join("share/factory/var/lib/edge-relocate/data");
    let mut data = std::fs::read(&data_file).unwrap();
    data.push(b'!');
    std::fs::write(&data_file, data).unwrap();
    std::fs::set_permissions(
        e.join("lib/modules/6.1.0-test/vmlinuz"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::remove_file(e.join("sbin/edge-sbin")).unwrap();
    let (code, got) = verify_lines(&pool, e.to_str().unwrap());
    assert_eq!(code, Some(1));
    let want: BTreeSet<String> = [
        "S.5....T.    /var/lib/edge-relocate/data",
        ".M.......    /boot/vmlinuz-6.1.0-test",
        "missing     /sbin/edge-sbin",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}

#[test]
fn broken_header_files_are_named_and_the_rest_still_listed() {
    require_root!();
    let (d, pool) = btrfs_pool("query-headers");
    let edge = set("edge");
    import(&pool, &edge);
    let view = compose(&pool, "edge", &edge);
    let all = sorted_lines(&ok(&pool, &["list", "edge"]));
    let copy = d.join("copy");
    let st = Command::new("btrfs")
        .args(["-q", "subvolume", "snapshot"])
        .arg(&view)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let hd = copy.join("lib/sysimage/packages");
    // truncated in the signature header, truncated in the main header, a
    // foreign file under a package-like name, an empty file
    let links = hd.join("edge-links-1.0-1.x86_64.rpm");
    let bytes = std::fs::read(&links).unwrap();
    std::fs::write(&links, &bytes[..300]).unwrap();
    let names = hd.join("edge-names-1.0-1.x86_64.rpm");
    let bytes = std::fs::read(&names).unwrap();
    std::fs::write(&names, &bytes[..bytes.len() - 10]).unwrap();
    std::fs::write(hd.join("foreign-1-1.x86_64.rpm"), vec![b'#'; 4096]).unwrap();
    std::fs::write(hd.join("empty-1-1.noarch.rpm"), b"").unwrap();
    // deleted: view.json still lists it
    std::fs::remove_file(hd.join("edge-modes-1.0-1.x86_64.rpm")).unwrap();
    let bad = [
        "edge-links-1.0-1.x86_64.rpm",
        "edge-names-1.0-1.x86_64.rpm",
        "foreign-1-1.x86_64.rpm",
        "empty-1-1.noarch.rpm",
        "edge-modes-1.0-1.x86_64.rpm",
    ];
    let cs = copy.to_str().unwrap();

    let out = reimage(&pool, &["list", cs]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for b in bad {
        assert!(
            stderr.contains(&format!("warning: {}", hd.join(b).display())),
            "{b} not reported: {stderr}"
        );
    }
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(stderr.contains("missing (the view's"), "{stderr}");
    let want: Vec<String> = all
        .iter()
        .filter(|l| {
            !l.starts_with("edge-links-")
                && !l.starts_with("edge-names-")
                && !l.starts_with("edge-modes-")
        })
        .cloned()
        .collect();
    assert_eq!(sorted_lines(&String::from_utf8_lossy(&out.stdout)), want);
    assert_eq!(want.len(), all.len() - 3);
    let j = json(&pool, &["list", cs]);
    assert_eq!(j["packages"].as_array().unwrap().len(), want.len());
    let errors: Vec<&str> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), bad.len(), "{errors:?}");
    for b in bad {
        assert!(
            errors.iter().any(|e| e.contains(b)),
            "{b} not in {errors:?}"
        );
    }
    // The other packages still answer queries and verify; the broken
    // database makes verify fail.
    assert_eq!(
        ok(&pool, &["query", cs, "-f", "/etc/edge-relocate.conf"]).trim(),
        "edge-relocate-1.0-1.x86_64"
    );
    let out = reimage(&pool, &["verify", cs, "edge-relocate"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable header file fails verify"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let out = reimage(&pool, &["verify", cs]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("edge-links-1.0-1.x86_64.rpm"));
}

fn keys(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set_of<'a>(k: &[&'a str]) -> BTreeSet<&'a str> {
    k.iter().copied().collect()
}

/// The `--json` shapes of docs/query.md, key by key (values filtered: paths,
/// sizes and times vary).
#[test]
fn json_shapes_are_the_documented_ones() {
    require_root!();
    let (_d, pool) = btrfs_pool("query-json");
    let edge = set("edge");
    let u2 = testdata("edge").join("edge-update-1.1-1.x86_64.rpm");
    import(&pool, &edge);
    import(&pool, std::slice::from_ref(&u2));
    compose(&pool, "a", &edge);
    let mut with2: Vec<PathBuf> = edge
        .iter()
        .filter(|p| !p.to_str().unwrap().contains("edge-update-1.0"))
        .cloned()
        .collect();
    with2.push(u2);
    compose(&pool, "b", &with2);

    let l = json(&pool, &["list", "a"]);
    assert_eq!(keys(&l), set_of(&["packages", "errors"]));
    assert_eq!(
        keys(&l["packages"][0]),
        set_of(&["nevra", "name", "version", "release", "arch", "summary", "size"])
    );
    let f = json(&pool, &["query", "a", "-f", "/etc/edge-relocate.conf"]);
    assert_eq!(keys(&f), set_of(&["path", "owners"]));
    assert_eq!(
        keys(&f["owners"][0]),
        set_of(&["nevra", "path", "view_path"])
    );
    let q = json(&pool, &["query", "a", "-l", "edge-relocate"]);
    assert_eq!(keys(&q[0]), set_of(&["package", "files"]));
    let file_keys = [
        "path",
        "mode",
        "type",
        "size",
        "user",
        "group",
        "mtime",
        "digest",
        "link",
        "flags",
        "verify_flags",
        "rdev",
        "inode",
    ];
    for f in q[0]["files"].as_array().unwrap() {
        let mut want = set_of(&file_keys);
        if f.get("view_path").is_some() {
            want.insert("view_path");
        }
        if f.get("caps").is_some() {
            want.insert("caps");
        }
        assert_eq!(keys(f), want, "{f}");
        assert!(matches!(
            f["type"].as_str().unwrap(),
            "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket"
        ));
    }
    let i = json(&pool, &["query", "a", "-i", "edge-relocate"]);
    assert_eq!(
        keys(&i[0]),
        set_of(&[
            "nevra",
            "summary",
            "description",
            "size",
            "license",
            "group",
            "url",
            "vendor",
            "packager",
            "build_time",
            "build_host",
            "source_rpm",
            "file_digest_algo"
        ])
    );
    for flag in ["--provides", "--requires"] {
        let p = json(&pool, &["query", "a", flag, "edge-update"]);
        assert_eq!(keys(&p[0]), set_of(&["package", "deps"]), "{flag}");
        for d in p[0]["deps"].as_array().unwrap() {
            assert!(keys(d).contains("name"), "{d}");
            assert!(
                keys(d).is_subset(&set_of(&["name", "op", "version"])),
                "{d}"
            );
        }
    }
    let w = json(&pool, &["query", "a", "--whatprovides", "edge-update"]);
    assert_eq!(keys(&w), set_of(&["capability", "providers"]));
    assert_eq!(keys(&w["providers"][0]), set_of(&["nevra", "provides"]));

    let d = json(&pool, &["diff", "a", "b"]);
    assert_eq!(keys(&d), set_of(&["packages"]));
    assert_eq!(
        keys(&d["packages"]),
        set_of(&["added", "removed", "upgraded", "downgraded", "rebuilt"])
    );
    let up = &d["packages"]["upgraded"];
    assert_eq!(up.as_array().unwrap().len(), 1, "{up}");
    assert_eq!(keys(&up[0]), set_of(&["name", "arch", "from", "to"]));
    assert_eq!(up[0]["from"], "edge-update-1.0-1.x86_64");
    assert_eq!(up[0]["to"], "edge-update-1.1-1.x86_64");
    assert_eq!(
        ok(&pool, &["diff", "a", "b"]),
        "upgraded    edge-update-1.0-1.x86_64 -> edge-update-1.1-1.x86_64\n"
    );
    let d = json(&pool, &["diff", "a", "b", "--files"]);
    assert_eq!(keys(&d["files"]), set_of(&["added", "removed", "changed"]));
    let changed = d["files"]["changed"].as_array().unwrap();
    assert!(!changed.is_empty(), "{d}");
    for c in changed {
        assert_eq!(keys(c), set_of(&["path", "what", "from", "to"]));
        assert!(c["path"].as_str().unwrap().contains("edge-update"), "{c}");
    }

    let v = json(&pool, &["verify", "a"]);
    assert_eq!(
        keys(&v),
        set_of(&["packages", "files", "skipped", "problems"])
    );
}
