//! A reimage system for tests: a loop-mounted btrfs whose top level is the
//! sysroot, a pool in it holding two views (`va`, `vb`) of a package with
//! files under /etc that change between its versions.
#![allow(dead_code)]
use super::*;
use reimage_testkit::{FsType, ScratchFs};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A package with files under /etc (and one under /usr so it is a package).
pub fn etc_package(dir: &Path, name: &str, version: &str, files: &[(&str, &str)]) -> PathBuf {
    let mut b = rpm::PackageBuilder::new(name, version, "MIT", "noarch", "deploy test");
    b.using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
        .release("1");
    b.with_file_contents(
        format!("{name} {version}\n").into_bytes(),
        rpm::FileOptions::new(format!("/usr/share/{name}/version")).permissions(0o644),
    )
    .unwrap();
    for (path, content) in files {
        if let Some(target) = content.strip_prefix("->") {
            b.with_symlink(rpm::FileOptions::symlink(*path, target))
                .unwrap();
        } else if *content == "/" {
            b.with_dir_entry(rpm::FileOptions::dir(*path).permissions(0o755))
                .unwrap();
        } else {
            b.with_file_contents(
                content.as_bytes().to_vec(),
                rpm::FileOptions::new(*path)
                    .permissions(0o644)
                    .config()
                    .noreplace(),
            )
            .unwrap();
        }
    }
    let p = dir.join(format!("{name}-{version}-1.noarch.rpm"));
    b.build().unwrap().write_file(&p).unwrap();
    p
}

/// A system: a btrfs whose top level is the sysroot, a pool in it with two
/// views of the test package (va: 1.0, vb: 2.0) and the skeleton package.
pub struct System {
    pub fs: ScratchFs,
    pub pool: PathBuf,
}

impl System {
    pub fn new() -> System {
        let fs = ScratchFs::new(FsType::Btrfs, 3 << 30).expect("a scratch btrfs");
        let pool = fs.path().join("pool");
        ok(&pool, &["init"]);
        let pkgs = fs.path().join("pkgs");
        std::fs::create_dir(&pkgs).unwrap();
        let v1 = etc_package(
            &pkgs,
            "etc-test",
            "1.0",
            &[
                ("/etc/t", "/"),
                ("/etc/t/conf", "c1\n"),
                ("/etc/t/same", "s\n"),
                ("/etc/t/gone", "g\n"),
                ("/etc/t/typechg", "file\n"),
                ("/etc/t/keepmode", "k\n"),
                ("/etc/t/link", "->a"),
            ],
        );
        let v2 = etc_package(
            &pkgs,
            "etc-test",
            "2.0",
            &[
                ("/etc/t", "/"),
                ("/etc/t/conf", "c2\n"),
                ("/etc/t/same", "s2\n"),
                ("/etc/t/added", "n\n"),
                ("/etc/t/typechg", "/"),
                ("/etc/t/typechg/inner", "i\n"),
                ("/etc/t/keepmode", "k\n"),
                ("/etc/t/link", "->b"),
            ],
        );
        let skel = testdata("edge").join("filesystem-3.18-1.x86_64.rpm");
        for p in [&v1, &v2, &skel] {
            ok(&pool, &["import", p.to_str().unwrap()]);
        }
        ok(
            &pool,
            &["compose", "va", "etc-test-1.0-1.noarch", "filesystem"],
        );
        ok(
            &pool,
            &["compose", "vb", "etc-test-2.0-1.noarch", "filesystem"],
        );
        System { fs, pool }
    }
    pub fn root(&self) -> &Path {
        self.fs.path()
    }
    pub fn sysroot(&self) -> String {
        self.root().display().to_string()
    }
    /// `reimage --json ARGS --sysroot SYSROOT`.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a: Vec<&str> = args.to_vec();
        let s = self.sysroot();
        a.extend(["--sysroot", &s]);
        json(&self.pool, &a)
    }
    pub fn fails(&self, args: &[&str]) -> String {
        let mut a: Vec<&str> = args.to_vec();
        let s = self.sysroot();
        a.extend(["--sysroot", &s]);
        fails(&self.pool, &a)
    }
    pub fn etc(&self, id: u64) -> PathBuf {
        self.root().join(format!("reimage/deployments/{id}/etc"))
    }
    /// `status` and the filesystem agree: the deployments on disk are the
    /// ones the record lists; the default is one of them.
    pub fn check_status(&self) -> Value {
        let s = self.json(&["status"]);
        let mut listed: Vec<u64> = s["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_u64().unwrap())
            .collect();
        listed.sort();
        let mut on_disk: Vec<u64> = std::fs::read_dir(self.root().join("reimage/deployments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
            .collect();
        on_disk.sort();
        assert_eq!(listed, on_disk, "status lists what is on disk");
        for d in s["deployments"].as_array().unwrap() {
            let root = PathBuf::from(d["root"].as_str().unwrap());
            assert!(root.join("etc").is_dir() && root.join("usr").is_dir());
        }
        let default = s["default"].as_u64();
        assert!(default.is_none_or(|d| listed.contains(&d)));
        s
    }
}
