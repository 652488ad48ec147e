//! reimage reads every header exactly as rpm 4.18 reads it, or refuses it
//! (issue 13). For every fixture there is (edge, hostile, realistic,
//! real-world, the generated hostile corpus, and packages the real
//! `rpmbuild` makes here), two rules are checked against the real rpm:
//!
//! 1. when reimage accepts a package's headers (`trust::read`: rpm's header
//!    rules, every header digest, the payload words, the file list), rpm
//!    loads it (`rpm -qp`), and every tag reimage uses has the same value in
//!    both readings;
//! 2. when rpm refuses to load a package, reimage refuses it.
//!
//! The values compared are what reimage uses: its identity, the payload
//! words, the sizes and digests, the file list as import reads it
//! (`pkg::files`) and as the query commands read it (`sysimage`), and the
//! dependencies `query` prints.
mod common;
#[path = "../xtask/src/corpus.rs"]
mod corpus;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use sysimage::header::{sigtag, tag, Headers};

/// The query format: one `KEY=value` line per scalar, one line per file.
const QF: &str = concat!(
    "NAME=%{NAME}\\nEPOCH=%{EPOCH}\\nVERSION=%{VERSION}\\nRELEASE=%{RELEASE}\\nARCH=%{ARCH}\\n",
    "SOURCERPM=%{SOURCERPM}\\nPAYLOADFORMAT=%{PAYLOADFORMAT}\\n",
    "PAYLOADCOMPRESSOR=%{PAYLOADCOMPRESSOR}\\nFILEDIGESTALGO=%{FILEDIGESTALGO}\\n",
    "SUMMARY=%{SUMMARY}\\nLICENSE=%{LICENSE}\\nBUILDTIME=%{BUILDTIME}\\n",
    "LONGSIZE=%{LONGSIZE}\\n",
    "[FILE=%{FILENAMES}\\t%{FILEMODES}\\t%{LONGFILESIZES}\\t%{FILEDIGESTS}\\t%{FILEUSERNAME}\\t",
    "%{FILEGROUPNAME}\\t%{FILEMTIMES}\\t%{FILEFLAGS}\\t%{FILELINKTOS}\\t%{FILECAPS}\\t",
    "%{FILEINODES}\\t%{FILEDEVICES}\\t%{FILEVERIFYFLAGS}\\t%{FILERDEVS}\\n]",
    "[REQUIRE=%{REQUIRENAME}\\t%{REQUIREFLAGS}\\t%{REQUIREVERSION}\\n]",
    "[PROVIDE=%{PROVIDENAME}\\t%{PROVIDEFLAGS}\\t%{PROVIDEVERSION}\\n]",
);

/// What rpm says of a package: its reading, or its refusal.
fn rpm_reading(file: &Path, db: &Path) -> Result<String, String> {
    let out = Command::new("rpm")
        .arg("-qp")
        .arg("--dbpath")
        .arg(db)
        .arg("--qf")
        .arg(QF)
        .arg(file)
        .env("LC_ALL", "C")
        .output()
        .expect("rpm must be installed (Debian package rpm; cargo xtask test installs it)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// rpm's rendering of an optional value.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("(none)".into(), |v| v.to_string())
}

/// reimage's reading of the same tags, rendered like [`QF`]; `Err` when
/// reimage refuses the package.
fn reimage_reading(file: &Path) -> Result<String, String> {
    let f = std::fs::File::open(file).unwrap();
    let t = reimage::trust::read(&mut std::io::BufReader::new(f), file)
        .map_err(|e| format!("{e:#}"))?;
    let h: &Headers = &t.headers;
    let m = &h.main;
    let s = |tg: u32| opt(m.string(tg).unwrap());
    let i = |tg: u32| opt(m.int(tg).unwrap());
    let mut out = String::new();
    let nevra = m.nevra().unwrap();
    out += &format!("NAME={}\nEPOCH={}\n", nevra.name, opt(nevra.epoch));
    out += &format!(
        "VERSION={}\nRELEASE={}\nARCH={}\n",
        nevra.version, nevra.release, nevra.arch
    );
    out += &format!(
        "SOURCERPM={}\nPAYLOADFORMAT={}\nPAYLOADCOMPRESSOR={}\nFILEDIGESTALGO={}\n",
        s(tag::SOURCERPM),
        s(tag::PAYLOADFORMAT),
        s(tag::PAYLOADCOMPRESSOR),
        i(tag::FILEDIGESTALGO)
    );
    out += &format!(
        "SUMMARY={}\nLICENSE={}\nBUILDTIME={}\n",
        s(tag::SUMMARY),
        s(tag::LICENSE),
        i(tag::BUILDTIME)
    );
    // rpm's LONGSIZE falls back to SIZE (a tag extension).
    out += &format!(
        "LONGSIZE={}\n",
        opt(m.int(tag::LONGSIZE).unwrap().or(m.int(tag::SIZE).unwrap()))
    );
    // The file list, as import reads it and as query reads it.
    let pkg = sysimage::Package::from_header(m.clone()).unwrap();
    let q = pkg.files().unwrap();
    assert_eq!(q.len(), t.files.len(), "{}: file counts", file.display());
    let raw_caps = m.utf8_strings(tag::FILECAPS).unwrap();
    let ints = |tg: u32| m.ints(tg).unwrap();
    let (inodes, devices) = (ints(tag::FILEINODES), ints(tag::FILEDEVICES));
    let (vflags, rdevs) = (ints(tag::FILEVERIFYFLAGS), ints(tag::FILERDEVS));
    for (k, (f, qf)) in t.files.iter().zip(&q).enumerate() {
        assert_eq!(
            (&f.path, f.mode, f.size, &f.digest, &f.user, &f.group),
            (&qf.path, qf.mode, qf.size, &qf.digest, &qf.user, &qf.group),
            "{}: import and query read file {k} alike",
            file.display()
        );
        assert_eq!((&f.linkto, f.mtime), (&qf.link, qf.mtime));
        let dev = |v: &Option<Vec<u64>>| opt(v.as_ref().map(|v| v[k]));
        out += &format!(
            "FILE={}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            f.path,
            f.mode,
            f.size,
            f.digest,
            f.user,
            f.group,
            f.mtime,
            f.flags,
            f.linkto,
            raw_caps.as_ref().map_or("(none)", |c| c[k]),
            dev(&inodes),
            dev(&devices),
            dev(&vflags),
            dev(&rdevs),
        );
        // query reads the same (its defaults for missing tags aside).
        if let Some(v) = &vflags {
            assert_eq!(v[k], qf.verify_flags as u64);
        }
        if let Some(v) = &rdevs {
            assert_eq!(v[k], qf.rdev as u64);
        }
    }
    for (prefix, deps) in [
        (
            "REQUIRE",
            (tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION),
        ),
        (
            "PROVIDE",
            (tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION),
        ),
    ] {
        let names = m.strings(deps.0).unwrap().unwrap_or_default();
        let flags = m.ints(deps.1).unwrap().unwrap_or_default();
        let vers = m.strings(deps.2).unwrap().unwrap_or_default();
        for (k, n) in names.iter().enumerate() {
            out += &format!(
                "{prefix}={n}\t{}\t{}\n",
                opt(flags.get(k)),
                vers.get(k).map_or("(none)", |v| v.as_ref())
            );
        }
    }
    // The digests reimage checks are what rpm checked: present and well-formed.
    let _ = h.signature.utf8_string(sigtag::SHA256).unwrap();
    Ok(out)
}

/// Packages built by the real rpmbuild: a hardlink pair, a symlink, a
/// directory, `%config`, `%ghost`, a capability, an epoch, requires.
fn rpmbuild_packages(dir: &Path) -> Vec<PathBuf> {
    let top = dir.join("rpmbuild");
    let spec = r#"
Name: diff-rpmbuild
Version: 2.1
Release: 3
Epoch: 4
Summary: made by rpmbuild for the differential test
License: MIT
BuildArch: noarch
Requires: bash >= 5
Provides: diff-thing = 1.0
%description
made by rpmbuild
%install
mkdir -p %{buildroot}/usr/share/d/sub %{buildroot}/etc %{buildroot}/usr/bin
echo hello > %{buildroot}/usr/share/d/a
ln %{buildroot}/usr/share/d/a %{buildroot}/usr/share/d/sub/b
ln -s ../a %{buildroot}/usr/share/d/sub/link
echo conf > %{buildroot}/etc/diff.conf
printf '#!/bin/sh\n' > %{buildroot}/usr/bin/diff-tool
chmod 4755 %{buildroot}/usr/bin/diff-tool
%files
/usr/share/d
%config(noreplace) /etc/diff.conf
%ghost /etc/diff.state
%caps(cap_net_raw=ep) /usr/bin/diff-tool
"#;
    let mut out = Vec::new();
    for (algo, comp) in [("8", "w9.gzdio"), ("2", "w.ufdio"), ("1", "w19.zstdio")] {
        let specf = dir.join(format!("diff-{algo}.spec"));
        std::fs::write(&specf, spec).unwrap();
        let o = Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_binary_filedigest_algorithm {algo}"))
            .arg("--define")
            .arg(format!("_binary_payload {comp}"))
            .arg("--define")
            .arg(format!("_rpmfilename diff-{algo}.rpm"))
            .arg(&specf)
            .output()
            .expect("rpmbuild must be installed (Debian package rpm)");
        assert!(
            o.status.success(),
            "rpmbuild: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.push(top.join("RPMS").join(format!("diff-{algo}.rpm")));
    }
    out
}

#[test]
fn reimage_reads_headers_as_rpm_does_or_refuses_them() {
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("rpmdb");
    std::fs::create_dir_all(&db).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for set in ["edge", "hostile", "realistic"] {
        files.extend(rpms(&testdata(set)));
    }
    files.extend(rpms(&realworld()));
    let corpus_dir = scratch.path().join("corpus");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    for c in corpus::generate() {
        for (name, bytes) in std::iter::once((c.name.clone(), c.bytes.clone())).chain(c.companions)
        {
            let p = corpus_dir.join(&name);
            if !p.exists() {
                std::fs::write(&p, bytes).unwrap();
                files.push(p);
            }
        }
    }
    files.extend(rpmbuild_packages(scratch.path()));

    let (mut both_accept, mut both_refuse, mut only_reimage_refuses) = (0, 0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let ours = reimage_reading(file);
        let theirs = rpm_reading(file, &db);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                both_accept += 1;
                if a != b {
                    let diff: Vec<String> = a
                        .lines()
                        .zip(b.lines())
                        .filter(|(x, y)| x != y)
                        .take(3)
                        .map(|(x, y)| format!("reimage {x:?}\n    rpm {y:?}"))
                        .collect();
                    failures.push(format!(
                        "{}: rule 1: the readings differ ({} vs {} lines):\n    {}",
                        file.display(),
                        a.lines().count(),
                        b.lines().count(),
                        diff.join("\n    ")
                    ));
                }
            }
            (Ok(_), Err(why)) => failures.push(format!(
                "{}: rule 1: reimage accepts a header rpm refuses: {why}",
                file.display()
            )),
            (Err(_), Err(_)) => both_refuse += 1,
            (Err(why), Ok(_)) => {
                only_reimage_refuses += 1;
                eprintln!("only reimage refuses {}: {why}", file.display());
            }
        }
    }
    eprintln!(
        "{} packages: both read {both_accept} alike, both refuse {both_refuse}, \
         only reimage refuses {only_reimage_refuses} (payload checks, stricter header rules)",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The sets are what they should be: real packages read, hostile ones refused.
    assert!(
        both_accept >= 100,
        "only {both_accept} packages read by both"
    );
    assert!(
        both_refuse >= 50,
        "only {both_refuse} packages refused by both"
    );
}
