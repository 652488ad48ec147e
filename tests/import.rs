//! `reimage import` through the real binary on a real btrfs: stored bytes
//! against rpm2cpio and the header digests, determinism, idempotence, hostile
//! packages, extent sharing between versions, signatures and the pool lock.
mod common;

use common::*;
use reimage::extent::{align_up, Index, FLAG_HARDLINK_ALIAS};
use reimage_testkit::require_root;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Extracts `rpm` with `rpm2cpio | cpio -idm` into `dir`. Returns false only
/// for payloads rpm2cpio cannot write as cpio (rpm's stripped `07070X`
/// format, "files over 4GB not supported by cpio"); any other failure panics.
fn rpm2cpio(rpm: &Path, dir: &Path) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    // rpm2cpio's exit status is not reliable (it is 1 for packages whose size
    // tags it disagrees with, after writing the whole archive): judge by its
    // stderr and by cpio's exit status.
    let archive = dir.join("../payload.cpio");
    let out = Command::new("rpm2cpio")
        .arg(rpm)
        .stdout(std::fs::File::create(&archive).unwrap())
        .output()
        .expect("rpm2cpio must be installed (cargo xtask test installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("not supported by cpio") {
        return false;
    }
    assert!(err.trim().is_empty(), "rpm2cpio {}: {err}", rpm.display());
    let st = Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .current_dir(dir)
        .status()
        .expect("cpio must be installed");
    assert!(st.success(), "cpio of {} failed", rpm.display());
    true
}

/// `rpm -qp` of one tag array, one value per file.
fn rpm_q(rpm: &Path, fmt: &str) -> Vec<String> {
    let out = Command::new("rpm")
        .args(["-qp", "--nosignature", "--nodigest", "--qf", fmt])
        .arg(rpm)
        .output()
        .expect("rpm must be installed");
    assert!(
        out.status.success(),
        "rpm -qp {}: {}",
        rpm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn hex_digest(algo: &str, data: &[u8]) -> String {
    use sha2::Digest;
    match algo {
        "1" => hex::encode(md5::Md5::digest(data)),
        "2" => hex::encode(sha1::Sha1::digest(data)),
        "8" => hex::encode(sha2::Sha256::digest(data)),
        "9" => hex::encode(sha2::Sha384::digest(data)),
        "10" => hex::encode(sha2::Sha512::digest(data)),
        other => panic!("digest algorithm {other} not covered by the test"),
    }
}

/// Checks one imported package against the original RPM, independently of
/// reimage's own reader: the header part byte for byte, each regular file's
/// bytes against `rpm -qp` digests and against rpm2cpio extraction, zero
/// padding, alignment.
/// Returns whether the bytes were also compared with rpm2cpio's extraction.
fn check_package(rpm: &Path, pkg: &Path, scratch: &Path) -> bool {
    let orig = std::fs::read(rpm).unwrap();
    let f = std::fs::File::open(pkg).unwrap();
    let (index, index_offset) = Index::read(&f).unwrap();
    let hlen = index.header_len as usize;
    let mut head = vec![0u8; hlen];
    f.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(
        head,
        orig[..hlen],
        "{}: header part differs from the RPM",
        pkg.display()
    );

    let names = rpm_q(rpm, "[%{FILENAMES}\n]");
    let modes = rpm_q(rpm, "[%{FILEMODES}\n]");
    let digests = rpm_q(rpm, "[%{FILEDIGESTS}\n]");
    let sizes = rpm_q(rpm, "[%{LONGFILESIZES}\n]");
    let flags = rpm_q(rpm, "[%{FILEFLAGS}\n]");
    let algo = rpm_q(rpm, "%{FILEDIGESTALGO}\n");
    let algo = if algo[0] == "(none)" {
        "1".to_string()
    } else {
        algo[0].clone()
    };
    let extracted = scratch.join(pkg.file_name().unwrap());
    let have_cpio = rpm2cpio(rpm, &extracted);

    let mut regular = 0;
    for (i, name) in names.iter().enumerate() {
        let mode: u32 = modes[i].parse::<i64>().unwrap() as u32 & 0xffff;
        let ghost = flags[i].parse::<u32>().unwrap() & 64 != 0;
        if mode & 0o170000 != 0o100000 || ghost {
            assert!(
                index.entry(i as u32).is_none(),
                "{name}: not a stored regular file"
            );
            continue;
        }
        regular += 1;
        let e = index
            .entry(i as u32)
            .unwrap_or_else(|| panic!("{}: no entry for {name}", pkg.display()));
        let size: u64 = sizes[i].parse().unwrap();
        assert_eq!(e.length, size, "{name}: length");
        let mut data = vec![0u8; e.length as usize];
        f.read_exact_at(&mut data, e.offset).unwrap();
        if size > 0 {
            assert_eq!(e.offset % 4096, 0, "{name}: offset not aligned");
            assert_eq!(
                hex_digest(&algo, &data),
                digests[i],
                "{name}: stored bytes do not match rpm's digest"
            );
            let pad = (align_up(size) - size) as usize;
            let mut zeros = vec![1u8; pad];
            f.read_exact_at(&mut zeros, e.offset + size).unwrap();
            assert!(zeros.iter().all(|&b| b == 0), "{name}: padding is not zero");
        }
        assert_eq!(blake3::hash(&data).as_bytes(), &e.blake3, "{name}: blake3");
        if have_cpio {
            let on_disk = std::fs::read(extracted.join(name.trim_start_matches('/'))).unwrap();
            assert_eq!(on_disk, data, "{name}: differs from rpm2cpio extraction");
        }
    }
    assert_eq!(
        regular,
        index.entries.len(),
        "{}: index has extra entries",
        pkg.display()
    );
    assert!(index_offset % 4096 == 0);
    have_cpio
}

/// Imports `rpms` (one import per file, since fixture sets reuse NEVRAs in
/// different builds) and checks each stored package.
fn import_and_check(name: &str, rpms: &[PathBuf]) {
    let (dir, pool) = btrfs_pool(name);
    let scratch = tempfile::tempdir().unwrap();
    let mut by_nevra: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut compared = 0;
    for rpm in rpms {
        let out = reimage(&pool, &["--json", "import", rpm.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let p = &v["packages"][0];
        if p["status"] == "refused" {
            // Only a different build under a NEVRA already imported may be refused.
            let err = p["error"].as_str().unwrap();
            assert!(
                err.contains("different"),
                "{} refused: {err}",
                rpm.display()
            );
            continue;
        }
        assert!(out.status.success());
        by_nevra.insert(p["nevra"].as_str().unwrap().to_string(), rpm.clone());
        let pkgdir = pool.join("packages");
        let name = rpm_q(rpm, "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n")[0].clone();
        if p["status"] == "imported" && check_package(rpm, &pkgdir.join(&name), scratch.path()) {
            compared += 1;
        }
    }
    assert!(!by_nevra.is_empty());
    assert!(
        compared > 0,
        "no package was compared with rpm2cpio's extraction"
    );
    eprintln!("{name}: {compared} packages compared byte for byte with rpm2cpio");
    drop(dir);
}

#[test]
fn realworld_packages_import_and_match_rpm() {
    require_root!();
    import_and_check("import-realworld", &rpms(&realworld()));
}

#[test]
fn edge_packages_import_and_match_rpm2cpio() {
    require_root!();
    import_and_check("import-edge", &rpms(&testdata("edge")));
}

#[test]
fn realistic_packages_import_and_match_rpm2cpio() {
    require_root!();
    import_and_check("import-realistic", &rpms(&testdata("realistic/v1")));
}

/// Two pools, same packages, in different order and parallelism: byte-identical
/// extent packages; and the golden digests of a few pinned fixtures.
#[test]
fn extent_packages_are_deterministic_and_pinned() {
    require_root!();
    let inputs: Vec<PathBuf> = [
        "389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm",
        "rpm-sign-4.15.1-1.fc31.x86_64.rpm",
        "rpm-rs-assets/v6/rpm-hardlinks-1.0-1.noarch.rpm",
    ]
    .iter()
    .map(|p| realworld().join(p))
    .collect();
    let args: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    let (_a, pa) = btrfs_pool("det-a");
    let (_b, pb) = btrfs_pool("det-b");
    let mut ia = vec!["import", "--jobs", "1"];
    ia.extend(&args);
    ok(&pa, &ia);
    let mut ib = vec!["import", "--jobs", "3"];
    ib.extend(args.iter().rev());
    ok(&pb, &ib);
    let la = listing(&pa.join("packages"));
    assert_eq!(la, listing(&pb.join("packages")));
    assert_eq!(la.len(), 3);
    // Golden digests: a change here is a format change; bump FORMAT_VERSION.
    let golden = [
        (
            "389-ds-base-devel-1.3.8.4-15.el7.x86_64",
            "8cb7b2634325400a151e598f877b2c8b190f41549a9649b39244a3d82517dc1f",
        ),
        (
            "rpm-sign-4.15.1-1.fc31.x86_64",
            "45eb6e31af9de289a7545a5c6ba34d358f333b4982e103c3d1ef726f48c14f3e",
        ),
        (
            "rpm-hardlinks-1.0-1.noarch",
            "abdf869edca169e27500e2c31002f42f30dd8e42a678cc955e881509c96bb5a4",
        ),
    ];
    for (name, want) in golden {
        use sha2::Digest;
        let got = hex::encode(sha2::Sha256::digest(
            std::fs::read(pa.join("packages").join(name)).unwrap(),
        ));
        assert_eq!(got, want, "golden digest of {name}");
    }
}

#[test]
fn import_twice_is_a_noop_and_resigned_copies_are_the_same_package() {
    require_root!();
    let (_d, pool) = btrfs_pool("idem");
    let a =
        realworld().join("rpm-rs-assets/v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm");
    let b =
        realworld().join("rpm-rs-assets/v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm");
    let r = json(&pool, &["import", a.to_str().unwrap()]);
    assert_eq!(r["imported"], 1);
    let before = listing(&pool);
    let r = json(&pool, &["import", a.to_str().unwrap()]);
    assert_eq!(
        (r["imported"].as_u64(), r["present"].as_u64()),
        (Some(0), Some(1))
    );
    let r = json(&pool, &["import", b.to_str().unwrap()]);
    assert_eq!(
        r["present"], 1,
        "same main header, other signature: the same package"
    );
    assert_eq!(listing(&pool), before);
    // A different build under the same NEVRA is refused, naming it.
    let other = realworld().join("rpm-rs-assets/v6/gzip/rpm-basic-2.3.4-5.el9.noarch.rpm");
    let err = fails(&pool, &["import", other.to_str().unwrap()]);
    assert!(
        err.contains("different rpm-basic-1:2.3.4-5.el9.noarch"),
        "{err}"
    );
    assert_eq!(listing(&pool), before);
}

/// A damaged copy of a package the pool already holds is refused, not
/// taken as "already present": checked by the payload digest (el9) and by
/// the legacy MD5 over header and payload (el7, no payload digest).
#[test]
fn damaged_copies_of_present_packages_are_refused() {
    require_root!();
    let (d, pool) = btrfs_pool("present-damaged");
    for (pkg, what) in [
        (
            realworld()
                .join("rpm-rs-assets/v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm"),
            "payload SHA256",
        ),
        (
            realworld().join("389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm"),
            "MD5",
        ),
    ] {
        ok(&pool, &["import", pkg.to_str().unwrap()]);
        let before = listing(&pool);
        let bytes = std::fs::read(&pkg).unwrap();
        let truncated = d.join("truncated.rpm");
        std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
        let mut flipped = bytes.clone();
        let at = bytes.len() - 50;
        flipped[at] ^= 0x40;
        let flipped_path = d.join("flipped.rpm");
        std::fs::write(&flipped_path, &flipped).unwrap();
        for bad in [&truncated, &flipped_path] {
            let err = fails(&pool, &["import", bad.to_str().unwrap()]);
            assert!(
                err.contains("already holds this package, but this copy of it is damaged")
                    && err.contains(bad.to_str().unwrap()),
                "{what}: {err}"
            );
            assert!(
                err.contains("digest") || err.contains("bytes"),
                "{what}: {err}"
            );
        }
        assert_eq!(listing(&pool), before, "{what}");
        let r = json(&pool, &["import", pkg.to_str().unwrap()]);
        assert_eq!(r["present"], 1, "{what}: the intact copy is present");
    }
}

#[test]
fn hostile_packages_are_refused_and_leave_the_pool_unchanged() {
    require_root!();
    let dir = testdata("hostile");
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let (_d, pool) = btrfs_pool("hostile");
    ok(
        &pool,
        &[
            "import",
            realworld()
                .join("rpm-sign-4.15.1-1.fc31.x86_64.rpm")
                .to_str()
                .unwrap(),
        ],
    );
    let before = listing(&pool);
    let mut refused = 0;
    for m in &manifest {
        if !m["stage"].as_str().unwrap().starts_with("import") {
            continue;
        }
        let file = dir.join(m["file"].as_str().unwrap());
        let err = fails(&pool, &["import", file.to_str().unwrap()]);
        assert!(
            err.contains(m["file"].as_str().unwrap()),
            "error must name the file: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            listing(&pool),
            before,
            "{} changed the pool",
            file.display()
        );
        refused += 1;
    }
    assert!(refused >= 8, "only {refused} import-stage hostile fixtures");
}

#[test]
fn next_version_shares_unchanged_extents() {
    require_root!();
    let (_d, pool) = btrfs_pool("share");
    let edge = testdata("edge");
    ok(
        &pool,
        &[
            "import",
            edge.join("edge-update-1.0-1.x86_64.rpm").to_str().unwrap(),
        ],
    );
    let r = json(
        &pool,
        &[
            "import",
            edge.join("edge-update-1.1-1.x86_64.rpm").to_str().unwrap(),
        ],
    );
    assert!(
        r["cloned_bytes"].as_u64().unwrap() > 0,
        "nothing cloned: {r}"
    );
    let extents = |name: &str| -> BTreeMap<[u8; 32], Vec<u64>> {
        let f = std::fs::File::open(pool.join("packages").join(name)).unwrap();
        let (index, _) = Index::read(&f).unwrap();
        let map = reimage::sys::fiemap(&f).unwrap();
        index
            .entries
            .iter()
            .filter(|e| e.length > 0 && e.flags & FLAG_HARDLINK_ALIAS == 0)
            .map(|e| {
                let phys = map
                    .iter()
                    .filter(|x| x.logical < e.offset + e.length && x.logical + x.length > e.offset)
                    .map(|x| x.physical + (e.offset.max(x.logical) - x.logical))
                    .collect();
                (e.blake3, phys)
            })
            .collect()
    };
    let old = extents("edge-update-1.0-1.x86_64");
    let new = extents("edge-update-1.1-1.x86_64");
    let mut shared = 0;
    for (hash, phys) in &new {
        if let Some(o) = old.get(hash) {
            assert_eq!(
                o, phys,
                "unchanged content must be the same physical extent"
            );
            shared += 1;
        }
    }
    assert!(shared >= 2, "only {shared} files shared");
    // Different content is not shared.
    assert!(new.keys().any(|h| !old.contains_key(h)));
}

#[test]
fn keyring_requires_a_valid_signature() {
    require_root!();
    let (_d, pool) = btrfs_pool("keyring");
    let assets = realworld().join("rpm-rs-assets");
    let key = assets.join("rpm-testkey-v4-rsa4096.asc");
    let k = key.to_str().unwrap();
    let signed = assets.join("v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm");
    let other = assets.join("v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm");
    let unsigned = testdata("edge").join("edge-empty-1.0-1.x86_64.rpm");
    let foreign = realworld().join("freesrp-udev-0.3.0-1.25.x86_64.rpm");
    let err = fails(&pool, &["import", "--keyring", k, other.to_str().unwrap()]);
    assert!(err.contains("no signature verifies"), "{err}");
    let err = fails(
        &pool,
        &["import", "--keyring", k, unsigned.to_str().unwrap()],
    );
    assert!(err.contains("not signed"), "{err}");
    let err = fails(
        &pool,
        &["import", "--keyring", k, foreign.to_str().unwrap()],
    );
    assert!(err.contains("no signature verifies"), "{err}");
    assert!(listing(&pool.join("packages")).is_empty());
    let r = json(&pool, &["import", "--keyring", k, signed.to_str().unwrap()]);
    assert_eq!(r["imported"], 1);
}

#[test]
fn a_second_writer_waits_or_fails_clearly_and_stale_tmp_is_cleaned() {
    require_root!();
    let (_d, pool) = btrfs_pool("lock");
    let p = reimage::pool::Pool::open(&pool).unwrap();
    std::fs::write(pool.join("tmp/import-crashed.partial"), b"garbage").unwrap();
    let rpm = realworld().join("freesrp-udev-0.3.0-1.25.x86_64.rpm");
    {
        let _lock = p.lock(false).unwrap();
        let err = fails(&pool, &["import", "--no-wait", rpm.to_str().unwrap()]);
        assert!(err.contains("another reimage writer"), "{err}");
    }
    ok(&pool, &["import", "--no-wait", rpm.to_str().unwrap()]);
    assert!(
        !pool.join("tmp/import-crashed.partial").exists(),
        "stale tmp/ left"
    );
}

#[test]
fn not_a_pool_and_bad_paths_are_clear_errors() {
    require_root!();
    let dir = reimage_testkit::btrfs_dir("notapool");
    let err = fails(&dir.join("nothing"), &["import", "/nonexistent.rpm"]);
    assert!(
        err.contains("there is no pool at") && err.contains("does not exist"),
        "{err}"
    );
    let (_d, pool) = btrfs_pool("badpath");
    let err = fails(&pool, &["import", "/nonexistent.rpm"]);
    assert!(err.contains("/nonexistent.rpm"), "{err}");
    let notrpm = dir.join("x.rpm");
    std::fs::write(&notrpm, b"hello, this is not an rpm at all, but long enough to read a lead....................................................").unwrap();
    let err = fails(&pool, &["import", notrpm.to_str().unwrap()]);
    assert!(err.contains("not an RPM"), "{err}");
}

/// A package damaged in the pool: fsck names it (and the repair), its
/// damage is not passed on to a package sharing its content, and
/// `import --replace` with the RPM repairs it.
#[test]
fn damaged_pool_package_is_not_shared_and_replace_repairs_it() {
    require_root!();
    let (_d, pool) = btrfs_pool("replace");
    let v10 = testdata("edge").join("edge-update-1.0-1.x86_64.rpm");
    let v11 = testdata("edge").join("edge-update-1.1-1.x86_64.rpm");
    ok(&pool, &["import", v10.to_str().unwrap()]);
    let pkg = pool.join("packages/edge-update-1.0-1.x86_64");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pkg)
        .unwrap();
    let (index, _) = Index::read(&f).unwrap();
    // Damage every stored file (one byte each).
    for e in index.entries.iter().filter(|e| e.length > 0) {
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, e.offset).unwrap();
        b[0] ^= 0xff;
        f.write_all_at(&b, e.offset).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let out = reimage(&pool, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("import --replace"), "{stderr}");

    // 1.1 shares content with 1.0: the damaged copy is not cloned.
    // (Undamaged, 1.1 clones 324000 bytes of 1.0's files.)
    let r = json(&pool, &["import", v11.to_str().unwrap()]);
    assert_eq!(r["imported"], 1, "{r}");
    assert_eq!(r["cloned_bytes"], 0, "damaged content was shared: {r}");
    let out = reimage(&pool, &["--json", "fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let fsck: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<String> = fsck["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !problems.is_empty()
            && problems
                .iter()
                .all(|p| p.ends_with("edge-update-1.0-1.x86_64")),
        "only the damaged package has problems: {problems:?}"
    );

    // A plain import keeps the damaged copy ("present"); --replace repairs it.
    let r = json(&pool, &["import", v10.to_str().unwrap()]);
    assert_eq!(r["present"], 1, "{r}");
    let r = json(&pool, &["import", "--replace", v10.to_str().unwrap()]);
    assert_eq!(
        (r["imported"].as_u64(), r["replaced"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(r["packages"][0]["status"], "replaced", "{r}");
    ok(&pool, &["fsck", "--full"]);
    ok(&pool, &["compose", "v", "edge-update-1.0-1.x86_64"]);
    ok(&pool, &["verify", "v"]);
    // An unreadable index (the package's tail cut off): import says how to
    // repair, --replace repairs it after checking the main header.
    let len = std::fs::metadata(&pkg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pkg)
        .unwrap()
        .set_len(len - 16)
        .unwrap();
    let err = fails(&pool, &["import", v10.to_str().unwrap()]);
    assert!(err.contains("import --replace"), "{err}");
    let r = json(&pool, &["import", "--replace", v10.to_str().unwrap()]);
    assert_eq!(r["replaced"], 1, "{r}");
    ok(&pool, &["fsck", "--full"]);
    // --replace never puts another package under the same NEVRA.
    let other = realworld().join("rpm-rs-assets/v6/gzip/rpm-basic-2.3.4-5.el9.noarch.rpm");
    let signed =
        realworld().join("rpm-rs-assets/v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm");
    ok(&pool, &["import", signed.to_str().unwrap()]);
    let err = fails(&pool, &["import", "--replace", other.to_str().unwrap()]);
    assert!(err.contains("different"), "{err}");
}

/// Packages built by the real `rpmbuild` with every file digest algorithm
/// rpm 4.18 offers (`%_binary_filedigest_algorithm`: MD5, SHA1, SHA256,
/// SHA384, SHA512, SHA224) and several payload compressors, with a setuid
/// file, capabilities, a hardlink set, a symlink, `%config`, `%ghost` and
/// `%dir %attr`: each imports, composes and verifies; `fsck --full` checks
/// every file against the header's digest. (The `rpm` crate's file list
/// knows no SHA1: such packages could not be read before.)
#[test]
fn rpmbuild_packages_with_every_file_digest_algorithm() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    require_root!();
    let (d, pool) = btrfs_pool("rpmbuild-digests");
    let top = d.join("rpmbuild");
    let spec = d.join("digests.spec");
    std::fs::write(
        &spec,
        r#"Name: rb-digests
Version: 1.0
Release: %{rel}
Summary: made by rpmbuild
License: MIT
BuildArch: x86_64
%description
made by rpmbuild for reimage's tests
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/rb/sub %{buildroot}/etc/rb %{buildroot}/var/lib/rb %{buildroot}/usr/lib/rb
printf '#!/bin/sh\necho hi\n' > %{buildroot}/usr/bin/rb
chmod 755 %{buildroot}/usr/bin/rb
printf 'x' > %{buildroot}/usr/bin/rb-cap
chmod 755 %{buildroot}/usr/bin/rb-cap
seq 1 20000 > %{buildroot}/usr/share/rb/blob
ln %{buildroot}/usr/share/rb/blob %{buildroot}/usr/share/rb/sub/blob-link
echo conf > %{buildroot}/etc/rb/rb.conf
ln -s ../share/rb/blob %{buildroot}/usr/lib/rb/link
touch %{buildroot}/var/lib/rb/state
: > %{buildroot}/usr/share/rb/empty
%files
%attr(4755,root,root) /usr/bin/rb
%caps(cap_net_raw=ep) /usr/bin/rb-cap
/usr/share/rb
%dir /usr/lib/rb
/usr/lib/rb/link
%dir /etc/rb
%config(noreplace) /etc/rb/rb.conf
%ghost /var/lib/rb/state
%dir %attr(0750,root,root) /var/lib/rb
"#,
    )
    .unwrap();
    let cases = [
        (1, "MD5", "w9.gzdio"),
        (2, "SHA1", "w6.xzdio"),
        (8, "SHA256", "w19.zstdio"),
        (9, "SHA384", "w9.bzdio"),
        (10, "SHA512", "w.ufdio"),
        (11, "SHA224", "w3.zstdio"),
    ];
    let mut built = Vec::new();
    for (rel, (algo, name, payload)) in cases.iter().enumerate() {
        let out = Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("rel {}", rel + 1))
            .arg("--define")
            .arg(format!("_binary_filedigest_algorithm {algo}"))
            .arg("--define")
            .arg(format!("_binary_payload {payload}"))
            .arg(&spec)
            .output()
            .expect("rpmbuild must be installed (Debian package rpm)");
        assert!(
            out.status.success(),
            "rpmbuild {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rpm = top.join(format!("RPMS/x86_64/rb-digests-1.0-{}.x86_64.rpm", rel + 1));
        let algo_tag = Command::new("rpm")
            .args(["-qp", "--qf", "%{FILEDIGESTALGO}"])
            .arg(&rpm)
            .output()
            .unwrap();
        let tag = String::from_utf8_lossy(&algo_tag.stdout).to_string();
        // MD5, rpm's old default, leaves the tag out.
        let tag = if tag == "(none)" {
            "1".to_string()
        } else {
            tag
        };
        assert_eq!(
            tag,
            algo.to_string(),
            "{name}: rpmbuild honoured the digest algorithm"
        );
        built.push((rpm, *name));
    }
    for (rel, (rpm, name)) in built.iter().enumerate() {
        let r = json(&pool, &["import", rpm.to_str().unwrap()]);
        assert_eq!(r["imported"], 1, "{name}: {r}");
        let view = format!("v{}", rel + 1);
        ok(
            &pool,
            &[
                "compose",
                &view,
                &format!("rb-digests-1.0-{}.x86_64", rel + 1),
            ],
        );
        ok(&pool, &["verify", &view]);
        let root = pool.join("views").join(&view);
        let m = std::fs::metadata(root.join("bin/rb")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755, "{name}: setuid");
        assert_eq!(
            std::fs::metadata(root.join("share/rb/blob"))
                .unwrap()
                .nlink(),
            2,
            "{name}: hardlinks"
        );
        assert_eq!(
            std::fs::read(root.join("share/rb/blob")).unwrap(),
            std::fs::read(root.join("share/rb/sub/blob-link")).unwrap()
        );
        assert!(
            !root.join("share/factory/var/lib/rb/state").exists(),
            "%ghost"
        );
    }
    ok(&pool, &["fsck", "--full"]);
    // An incremental compose across digest algorithms.
    ok(
        &pool,
        &["compose", "v2b", "--from", "v1", "rb-digests-1.0-2.x86_64"],
    );
    ok(&pool, &["verify", "v2b"]);
}
