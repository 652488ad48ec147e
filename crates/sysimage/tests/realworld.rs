//! The sysimage crate against the real-world RPMs in testdata/realworld,
//! cross-checked with the real rpm tools (`rpm -qp`, `rpm -qpl`,
//! `rpm -qp --dump`, `rpm2archive`). Without rpm these tests are skipped,
//! unless `CI=true`: then they fail.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use sysimage::relocate::Kind;
use sysimage::{query, verify, Error, Header, HeaderDir, Package, Tree};

fn have_rpm() -> bool {
    let ok = Command::new("rpm").arg("--version").output().is_ok()
        && Command::new("rpm2archive").arg("--help").output().is_ok();
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("rpm/rpm2archive not installed and CI=true");
        }
        eprintln!("SKIPPED: rpm is not installed (CI=true makes this a failure)");
    }
    ok
}

fn realworld() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/realworld");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rpm") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "{out:?}");
    out
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The header part of an RPM, computed independently of the crate: lead
/// (96) + signature header padded to 8 + main header (16 + 16*n + size).
fn cut_header(rpm: &[u8]) -> &[u8] {
    let sig = 16 + 16 * be32(rpm, 96 + 8) + be32(rpm, 96 + 12);
    let main = 96 + sig.next_multiple_of(8);
    let end = main + 16 + 16 * be32(rpm, main + 8) + be32(rpm, main + 12);
    &rpm[..end]
}

fn rpm_qp(args: &[&str], files: &[PathBuf]) -> String {
    let out = Command::new("rpm")
        .arg("-qp")
        .args(args)
        .args(files)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A header directory cut from the real-world RPMs (one per NEVRA, named by
/// rpm), with the source RPM of each header file.
fn header_dir() -> (tempfile::TempDir, BTreeMap<PathBuf, PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let rpms = realworld();
    let names = rpm_qp(
        &["--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm\n"],
        &rpms,
    );
    let mut map = BTreeMap::new();
    for (rpm, name) in rpms.iter().zip(names.lines()) {
        let dest = dir.path().join(name);
        if dest.exists() {
            continue;
        }
        std::fs::write(&dest, cut_header(&std::fs::read(rpm).unwrap())).unwrap();
        map.insert(dest, rpm.clone());
    }
    (dir, map)
}

#[test]
fn list_agrees_with_rpm_qp() {
    if !have_rpm() {
        return;
    }
    let (dir, map) = header_dir();
    let db = HeaderDir::read(dir.path()).unwrap();
    assert!(db.errors.is_empty(), "{:?}", db.errors);
    let files: Vec<PathBuf> = map.keys().cloned().collect();
    let mut want: Vec<String> = rpm_qp(&["--qf", "%{NEVRA}\n"], &files)
        .lines()
        .map(String::from)
        .collect();
    let mut got: Vec<String> = query::list(&db).into_iter().map(|e| e.nevra).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), map.len());
    // Sizes and summaries too.
    for p in &db.packages {
        let s = rpm_qp(&["--qf", "%{LONGSIZE}|%{SUMMARY}"], &[p.path()]);
        assert_eq!(s, format!("{}|{}", p.size, p.summary), "{}", p.nevra);
    }
}

#[test]
fn files_agree_with_rpm_qpl_and_dump() {
    if !have_rpm() {
        return;
    }
    let (dir, _) = header_dir();
    let db = HeaderDir::read(dir.path()).unwrap();
    let mut total = 0;
    for p in &db.packages {
        let header_file = p.path();
        let qpl = rpm_qp(&["-l"], std::slice::from_ref(&header_file));
        let want: Vec<&str> = qpl
            .lines()
            .filter(|l| *l != "(contains no files)")
            .collect();
        let ours = p.file_paths().unwrap();
        assert_eq!(ours, want, "{}", p.nevra);
        let files = p.files().unwrap();
        let dump = rpm_qp(&["--dump"], &[header_file]);
        for (f, line) in files.iter().zip(dump.lines()) {
            // path size mtime digest mode owner group isconfig isdoc rdev symlink
            let fields: Vec<&str> = line.rsplitn(11, ' ').collect();
            let [link, rdev, doc, config, group, owner, mode, digest, mtime, size, path] =
                fields[..]
            else {
                panic!("dump line {line:?}");
            };
            assert_eq!(f.path, path);
            assert_eq!(f.size.to_string(), size, "{path}");
            assert_eq!(f.mtime.to_string(), mtime, "{path}");
            if digest.bytes().all(|b| b == b'0') {
                assert!(f.digest.bytes().all(|b| b == b'0'), "{path}: {}", f.digest);
            } else {
                assert_eq!(f.digest, digest, "{path}");
            }
            assert_eq!(format!("0{:o}", f.mode), mode, "{path}");
            assert_eq!(
                (f.user.as_str(), f.group.as_str()),
                (owner, group),
                "{path}"
            );
            assert_eq!(f.flags.is_config(), config == "1", "{path}");
            assert_eq!(f.flags.is_doc(), doc == "1", "{path}");
            assert_eq!(f.rdev.to_string(), rdev, "{path}");
            assert_eq!(
                if f.link.is_empty() { "X" } else { &f.link },
                link,
                "{path}"
            );
            total += 1;
        }
        assert_eq!(files.len(), dump.lines().count(), "{}", p.nevra);
        // Provides and requires as rpm prints them.
        let prov = rpm_qp(&["--provides"], &[p.path()]);
        let ours: Vec<String> = p
            .provides()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(ours, prov.lines().collect::<Vec<_>>(), "{}", p.nevra);
        let req = rpm_qp(&["--requires"], &[p.path()]);
        let ours: Vec<String> = p
            .requires()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(ours, req.lines().collect::<Vec<_>>(), "{}", p.nevra);
    }
    assert!(total > 100, "{total}");
}

#[test]
fn full_rpm_and_header_file_read_the_same() {
    for rpm in realworld() {
        let bytes = std::fs::read(&rpm).unwrap();
        let cut = cut_header(&bytes);
        let (h, span) = Header::read_path(&rpm).unwrap();
        assert_eq!(span.end() as usize, cut.len(), "{}", rpm.display());
        let (h2, _) = Header::read(&mut &cut[..], Path::new("cut")).unwrap();
        assert_eq!(h.bytes(), h2.bytes());
        assert_eq!(h.bytes(), &cut[cut.len() - h.bytes().len()..]);
        // Cross-check with the rpm crate's own parser.
        let meta = rpm::PackageMetadata::parse(&mut &bytes[..]).unwrap();
        let p = Package::from_header(h).unwrap();
        assert_eq!(p.nevra.name, meta.get_name().unwrap());
        assert_eq!(p.nevra.version, meta.get_version().unwrap());
        assert_eq!(
            p.files().unwrap().len(),
            meta.get_file_entries().unwrap().len()
        );
    }
}

#[test]
fn bad_files_are_named_and_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let rpms = realworld();
    let good = cut_header(&std::fs::read(&rpms[0]).unwrap()).to_vec();
    let good_name = Package::read_path(&rpms[0]).unwrap().nevra.file_name();
    std::fs::write(dir.path().join(&good_name), &good).unwrap();
    std::fs::write(
        dir.path().join("trunc-1-1.noarch.rpm"),
        &good[..good.len() / 2],
    )
    .unwrap();
    std::fs::write(dir.path().join("tiny-1-1.noarch.rpm"), &good[..50]).unwrap();
    std::fs::write(dir.path().join("empty-1-1.noarch.rpm"), b"").unwrap();
    std::fs::write(dir.path().join("foreign-1-1.noarch.rpm"), vec![b'x'; 500]).unwrap();
    std::fs::write(dir.path().join("misnamed-1-1.noarch.rpm"), &good).unwrap();
    std::fs::write(dir.path().join("README"), b"hello").unwrap();
    std::os::unix::fs::symlink("/nonexistent", dir.path().join("dangling-1-1.noarch.rpm")).unwrap();
    let mut bad_sig = good.clone();
    bad_sig[96 + 8..96 + 12].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    std::fs::write(dir.path().join("badsig-1-1.noarch.rpm"), &bad_sig).unwrap();
    let db = HeaderDir::read(dir.path()).unwrap();
    // The good package and the misnamed copy are listed.
    assert_eq!(db.packages.len(), 2);
    let msgs: Vec<String> = db.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 8, "{msgs:#?}");
    for name in [
        "trunc-",
        "tiny-",
        "empty-",
        "foreign-",
        "misnamed-",
        "README",
        "dangling-",
        "badsig-",
    ] {
        assert!(
            msgs.iter().any(|m| m.contains(name)),
            "{name} not named in {msgs:#?}"
        );
    }
    assert!(db
        .errors
        .iter()
        .any(|e| matches!(e, Error::Truncated { .. })));
    assert!(db.errors.iter().any(|e| matches!(e, Error::NotRpm { .. })));
    assert!(db
        .errors
        .iter()
        .any(|e| matches!(e, Error::Misnamed { .. })));
}

fn extract(rpm: &Path, root: &Path) {
    let st = Command::new("sh")
        .arg("-c")
        .arg("rpm2archive - < \"$1\" | tar xzf - -C \"$2\" --numeric-owner")
        .arg("sh")
        .arg(rpm)
        .arg(root)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A plain tree (no view.json) made from the packages the way rpm would
/// install them, owners and capabilities included.
fn installed_tree() -> (tempfile::TempDir, PathBuf) {
    let (hdrs, map) = header_dir();
    let root = tempfile::tempdir().unwrap();
    for rpm in map.values() {
        extract(rpm, root.path());
    }
    let usr = root.path().join("usr");
    let db_dir = usr.join("lib/sysimage/packages");
    std::fs::create_dir_all(&db_dir).unwrap();
    for h in map.keys() {
        std::fs::copy(h, db_dir.join(h.file_name().unwrap())).unwrap();
    }
    drop(hdrs);
    // The owners the headers name, in the tree's own /etc (ROOT/usr/../etc).
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\njane:x:1001:1001::/:/bin/sh\nbob:x:1002:1002::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("etc/group"),
        "root:x:0:\njane:x:1001:\nbob:x:1002:\n",
    )
    .unwrap();
    let tree = Tree::open(&usr).unwrap();
    let db = tree.packages().unwrap();
    for p in &db.packages {
        for f in p.files().unwrap() {
            let Some(fs) = tree.fs_path(&f.path, Kind::from_mode(f.mode)) else {
                continue;
            };
            if std::fs::symlink_metadata(&fs).is_err() {
                continue;
            }
            let (u, g) = (
                tree.owners.uid(&f.user).unwrap(),
                tree.owners.gid(&f.group).unwrap(),
            );
            std::os::unix::fs::lchown(&fs, Some(u), Some(g)).unwrap();
            if let Some(caps) = &f.caps {
                if !caps.is_empty() {
                    let s = verify::caps::parse(caps).unwrap();
                    let eff = if s.e != 0 { 1 } else { 0 };
                    let mut v = Vec::new();
                    for w in [
                        0x0200_0000u32 | eff,
                        s.p as u32,
                        s.i as u32,
                        (s.p >> 32) as u32,
                        (s.i >> 32) as u32,
                    ] {
                        v.extend_from_slice(&w.to_le_bytes());
                    }
                    rustix::fs::setxattr(
                        &fs,
                        "security.capability",
                        &v,
                        rustix::fs::XattrFlags::empty(),
                    )
                    .unwrap();
                }
            }
        }
    }
    (root, usr)
}

#[test]
fn verify_passes_on_an_installed_tree_and_names_tampering() {
    if !have_rpm() {
        return;
    }
    let (_root, usr) = installed_tree();
    let tree = Tree::open(&usr).unwrap();
    let db = tree.packages().unwrap();
    let all: Vec<&Package> = db.packages.iter().collect();
    let t = std::time::Instant::now();
    let r = verify::verify(&tree, &all).unwrap();
    eprintln!(
        "verify: {} packages, {} files in {:?}",
        r.packages,
        r.files,
        t.elapsed()
    );
    let lines: Vec<&str> = r.problems.iter().map(|p| p.line.as_str()).collect();
    assert!(r.ok(), "{lines:#?}");
    assert!(r.files > 100);

    // Tamper: content (same size), mode of a config file, symlink target, a missing file.
    let attrs = usr.join("../opt/rpm-file-attrs");
    let normal = attrs.join("normal");
    let mtime = std::fs::metadata(&normal).unwrap().modified().unwrap();
    std::fs::write(&normal, b"NORMAL\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&normal)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::set_permissions(attrs.join("config"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(attrs.join("symlink")).unwrap();
    std::os::unix::fs::symlink("elsewhere", attrs.join("symlink")).unwrap();
    std::fs::remove_file(attrs.join("readme")).unwrap();
    std::fs::remove_file(usr.join("bin/rpmsign")).unwrap();
    std::fs::write(attrs.join("verify_none"), b"anything at all").unwrap();
    let r = verify::verify(&tree, &all).unwrap();
    let mut lines: Vec<&str> = r.problems.iter().map(|p| p.line.as_str()).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "....L....    /opt/rpm-file-attrs/symlink",
            "..5......    /opt/rpm-file-attrs/normal",
            ".M.......  c /opt/rpm-file-attrs/config",
            "missing     /usr/bin/rpmsign",
            "missing   r /opt/rpm-file-attrs/readme",
        ]
    );
    // Selecting one package verifies only it.
    let one = db.select("rpm-sign").unwrap();
    let r = verify::verify(&tree, &one).unwrap();
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].attrs, ["missing"]);
}

#[test]
fn queries_on_real_headers() {
    if !have_rpm() {
        return;
    }
    let (_root, usr) = installed_tree();
    let tree = Tree::open(&usr).unwrap();
    let db = tree.packages().unwrap();
    let owners = query::owner_of(&tree, &db, "/usr/bin/rpmsign").unwrap();
    assert_eq!(owners.len(), 1);
    assert!(owners[0].nevra.starts_with("rpm-sign-4.15.1"));
    // A pre-usrmerge spelling lands at the same place.
    let owners = query::owner_of(&tree, &db, "/bin/rpmsign").unwrap();
    assert!(
        owners.is_empty(),
        "plain trees map /bin through the host, not the view"
    );
    let p = query::whatprovides(&tree, &db, "rpm-sign").unwrap();
    assert_eq!(p.len(), 1);
    let p = query::whatprovides(&tree, &db, "rpm-sign >= 4.0").unwrap();
    assert_eq!(p.len(), 1);
    assert!(query::whatprovides(&tree, &db, "rpm-sign > 5")
        .unwrap()
        .is_empty());
    let p = query::whatprovides(&tree, &db, "/usr/bin/rpmsign").unwrap();
    assert_eq!(p.len(), 1);
    let info = query::info_text(db.select("rpm-sign").unwrap()[0]).unwrap();
    assert!(
        info.starts_with("Name        : rpm-sign\nVersion     : 4.15.1\n"),
        "{info}"
    );
    assert!(matches!(db.select("nonexistent"), Err(Error::NoPackage(_))));
    assert_eq!(
        db.select("rpm-basic-1:2.3.4-5.el9.noarch").unwrap().len(),
        1
    );
}

/// Renames a header's package in place (same length), so copies of real
/// headers become distinct packages.
fn rename(header_file: &mut [u8], suffix: &str) -> String {
    patch_tag(header_file, 1000, suffix)
}

/// Overwrites the end of a string tag in place (same length).
fn patch_tag(header_file: &mut [u8], tag: usize, suffix: &str) -> String {
    let sig = 16 + 16 * be32(header_file, 96 + 8) + be32(header_file, 96 + 12);
    let main = 96 + sig.next_multiple_of(8);
    let n = be32(header_file, main + 8);
    let store = main + 16 + 16 * n;
    for i in 0..n {
        let e = main + 16 + 16 * i;
        if be32(header_file, e) == tag {
            let off = store + be32(header_file, e + 8);
            let len = header_file[off..].iter().position(|&b| b == 0).unwrap();
            let at = off + len - suffix.len();
            header_file[at..off + len].copy_from_slice(suffix.as_bytes());
            return String::from_utf8(header_file[off..off + len].to_vec()).unwrap();
        }
    }
    panic!("no tag {tag}");
}

#[test]
fn list_of_300_headers_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let rpms = realworld();
    let mut total = 0;
    for i in 0..300 {
        let mut h = cut_header(&std::fs::read(&rpms[i % rpms.len()]).unwrap()).to_vec();
        rename(&mut h, &format!("{i:03}"));
        let p = Package::from_header(Header::read(&mut &h[..], Path::new("x")).unwrap().0).unwrap();
        total += h.len();
        std::fs::write(dir.path().join(p.nevra.file_name()), &h).unwrap();
    }
    let mut best = std::time::Duration::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let db = HeaderDir::read(dir.path()).unwrap();
        let list = query::list(&db);
        best = best.min(t.elapsed());
        assert_eq!(list.len(), 300);
        assert!(db.errors.is_empty(), "{:?}", db.errors);
    }
    eprintln!("list of 300 headers ({total} bytes): {best:?}");
    let limit = if cfg!(debug_assertions) { 1000 } else { 100 };
    assert!(best.as_millis() < limit, "{best:?}");
}

#[test]
fn diff_names_exactly_the_changed_packages() {
    let rpms = realworld();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let write = |dir: &Path, h: &[u8]| {
        let p = Package::from_header(Header::read(&mut &h[..], Path::new("x")).unwrap().0).unwrap();
        std::fs::write(dir.join(p.nevra.file_name()), h).unwrap();
        p.nevra.to_string()
    };
    let header = |i: usize| cut_header(&std::fs::read(&rpms[i]).unwrap()).to_vec();
    // Find the packages by name.
    let idx = |name: &str| {
        rpms.iter()
            .position(|p| p.to_string_lossy().contains(name))
            .unwrap()
    };
    let (sign, ds, udev, ima, types) = (
        idx("rpm-sign-4"),
        idx("389-ds"),
        idx("freesrp"),
        idx("ima_signed"),
        idx("rpm-file-types"),
    );
    for i in [sign, ds, udev, ima] {
        write(a.path(), &header(i));
    }
    // B: rpm-sign upgraded (4.15.1 -> 4.15.2), 389-ds downgraded (release 15 -> 14),
    // freesrp-udev unchanged, ima_signed removed, rpm-file-types added.
    let mut up = header(sign);
    patch_tag(&mut up, 1001, "2");
    let up = write(b.path(), &up);
    let mut down = header(ds);
    patch_tag(&mut down, 1002, "14.el7");
    let down = write(b.path(), &down);
    write(b.path(), &header(udev));
    let added = write(b.path(), &header(types));
    let (da, db) = (
        HeaderDir::read(a.path()).unwrap(),
        HeaderDir::read(b.path()).unwrap(),
    );
    let d = sysimage::diff::diff(&da, &db);
    assert_eq!(d.added, [added]);
    assert_eq!(d.removed, ["testpkg-1.0-1.x86_64"]);
    assert_eq!(d.upgraded.len(), 1);
    assert_eq!(d.upgraded[0].to, up);
    assert_eq!(d.upgraded[0].from, "rpm-sign-4.15.1-1.fc31.x86_64");
    assert_eq!(d.downgraded.len(), 1);
    assert_eq!(d.downgraded[0].to, down);
    assert!(d.rebuilt.is_empty());
    // Files: those of the added and removed packages; none changed (headers
    // differ only in version).
    let f = sysimage::diff::diff_files(&da, &db).unwrap();
    assert!(
        f.added.iter().all(|p| p.starts_with("/opt/rpm-file-types")),
        "{:?}",
        f.added
    );
    assert_eq!(f.removed, ["/tmp/test1", "/tmp/test2", "/tmp/test3"]);
    assert!(f.changed.is_empty(), "{:?}", f.changed);
}

#[test]
fn view_with_metadata_maps_relocated_paths() {
    if !have_rpm() {
        return;
    }
    // A view as compose would make it: /opt/rpm-file-attrs relocated by a
    // user rule, owners from the recorded table.
    let (_root, usr) = installed_tree();
    let view = tempfile::tempdir().unwrap();
    let policy = sysimage::relocate::Policy::with_rules([("/opt", "/usr/lib/opt")]).unwrap();
    let src = Tree::open(&usr).unwrap();
    let db = src.packages().unwrap();
    let mut meta = sysimage::ViewMeta {
        format: sysimage::meta::VIEW_META_FORMAT,
        rules: vec![sysimage::meta::Rule {
            from: "/opt".into(),
            to: "/usr/lib/opt".into(),
        }],
        users: [("jane".to_string(), 1001), ("bob".to_string(), 1002)].into(),
        groups: [("jane".to_string(), 1001), ("bob".to_string(), 1002)].into(),
        ..Default::default()
    };
    let pkgs: Vec<&Package> = db
        .packages
        .iter()
        .filter(|p| p.nevra.name == "rpm-file-attrs")
        .collect();
    for p in &pkgs {
        meta.packages.push(p.nevra.to_string());
        for f in p.files().unwrap() {
            let kind = Kind::from_mode(f.mode);
            let Ok(sysimage::relocate::Placement::View(rel)) = policy.place(&f.path, kind) else {
                continue;
            };
            if !f.path.starts_with("/usr/") {
                meta.relocations.push(sysimage::meta::Relocation {
                    from: f.path.clone(),
                    to: rel.to_string_lossy().into(),
                });
            }
            let from = src.fs_path(&f.path, kind).unwrap();
            let to = view.path().join(&rel);
            if std::fs::symlink_metadata(&from).is_err() {
                continue;
            }
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            let st = Command::new("cp")
                .arg("-a")
                .arg("--no-target-directory")
                .arg(&from)
                .arg(&to)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let hd = view.path().join("lib/sysimage/packages");
        std::fs::create_dir_all(&hd).unwrap();
        std::fs::copy(p.path(), hd.join(p.nevra.file_name())).unwrap();
    }
    std::fs::create_dir_all(view.path().join("lib/reimage")).unwrap();
    std::fs::write(view.path().join(sysimage::meta::VIEW_META), meta.to_json()).unwrap();
    let tree = Tree::open(view.path()).unwrap();
    let vdb = tree.packages().unwrap();
    let all: Vec<&Package> = vdb.packages.iter().collect();
    let r = verify::verify(&tree, &all).unwrap();
    let lines: Vec<&str> = r.problems.iter().map(|p| p.line.as_str()).collect();
    assert!(r.ok(), "{lines:#?}");
    let files = query::files(&tree, all[0]).unwrap();
    let normal = files
        .iter()
        .find(|f| f.file.path == "/opt/rpm-file-attrs/normal")
        .unwrap();
    assert_eq!(
        normal.view_path.as_deref(),
        Some("lib/opt/rpm-file-attrs/normal")
    );
    let json = serde_json::to_value(normal).unwrap();
    assert_eq!(json["view_path"], "lib/opt/rpm-file-attrs/normal");
    assert_eq!(json["path"], "/opt/rpm-file-attrs/normal");
    let sysusers = files
        .iter()
        .find(|f| f.file.path.starts_with("/usr/lib/sysusers.d"))
        .unwrap();
    assert_eq!(sysusers.view_path, None);
    let o = query::owner_of(&tree, &vdb, "/opt/rpm-file-attrs/normal").unwrap();
    assert_eq!(o.len(), 1);
    std::fs::remove_file(view.path().join("lib/opt/rpm-file-attrs/normal")).unwrap();
    let r = verify::verify(&tree, &all).unwrap();
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].line, "missing     /opt/rpm-file-attrs/normal");
}
