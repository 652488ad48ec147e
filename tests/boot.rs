//! Boot on the host side (issue 16): `install --disk` on an image file (GPT,
//! an ESP written with mtools, never mounted), the entries deploy, rollback
//! and undeploy write, the initrd's contents, and the refusals. The real
//! boot is `cargo xtask boot-test` (qemu); this needs no VM: the kernel is a
//! stand-in package and `/init` the host's static `ldconfig`.
mod common;

use common::*;
use reimage_testkit::require_root;
use std::path::{Path, PathBuf};
use std::process::Command;

const KVER: &str = "6.0.0-test";

/// A kernel package: /boot/vmlinuz-KVER and two modules (btrfs depends on
/// libcrc32c), enough for compose to place it and the initrd to resolve it.
fn kernel_package(dir: &Path, release: &str) -> PathBuf {
    let mut b = rpm::PackageBuilder::new("kernel-test", "6.0.0", "GPL", "x86_64", "boot test");
    b.using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
        .release(release);
    let mut vmlinuz = b"MZ fake kernel ".to_vec();
    vmlinuz.extend_from_slice(release.as_bytes());
    b.with_file_contents(
        vmlinuz,
        rpm::FileOptions::new(format!("/boot/vmlinuz-{KVER}")).permissions(0o644),
    )
    .unwrap();
    for (m, dep) in [("fs/btrfs/btrfs.ko", "libcrc32c"), ("lib/libcrc32c.ko", "")] {
        let data = format!("\x7fELF fake module\0license=GPL\0depends={dep}\0intree=Y\0");
        b.with_file_contents(
            data.into_bytes(),
            rpm::FileOptions::new(format!("/usr/lib/modules/{KVER}/kernel/{m}")).permissions(0o644),
        )
        .unwrap();
    }
    let p = dir.join(format!("kernel-test-6.0.0-{release}.x86_64.rpm"));
    b.build().unwrap().write_file(&p).unwrap();
    p
}

fn mtools(prog: &str, disk: &Path, off: u64) -> Command {
    let mut c = Command::new(prog);
    c.arg("-i")
        .arg(format!("{}@@{off}", disk.display()))
        .env("MTOOLS_SKIP_CHECK", "1");
    c
}

fn esp_ls(disk: &Path, off: u64, dir: &str) -> Vec<String> {
    let out = mtools("mdir", disk, off)
        .arg("-b")
        .arg(format!("::{dir}"))
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit('/').next().map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v
}

fn esp_read(disk: &Path, off: u64, path: &str) -> Vec<u8> {
    let out = mtools("mtype", disk, off)
        .arg(format!("::{path}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mtype {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn parts(disk: &Path) -> (u64, u64, u64) {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(disk)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["partitiontable"]["partitions"];
    (
        p[0]["start"].as_u64().unwrap() * 512,
        p[1]["start"].as_u64().unwrap() * 512,
        p[1]["size"].as_u64().unwrap() * 512,
    )
}

/// The root btrfs of the disk on a loop device, mounted; undone on drop.
struct Root {
    dev: String,
    mnt: PathBuf,
}

impl Root {
    fn mount(disk: &Path, dir: &Path) -> Root {
        let (_, off, size) = parts(disk);
        let out = Command::new("losetup")
            .args(["--find", "--show", "--offset"])
            .arg(off.to_string())
            .arg("--sizelimit")
            .arg(size.to_string())
            .arg(disk)
            .output()
            .unwrap();
        assert!(out.status.success());
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let r = Root { dev, mnt };
        assert!(Command::new("mount")
            .arg(&r.dev)
            .arg(&r.mnt)
            .status()
            .unwrap()
            .success());
        r
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn entry_rank(disk: &Path, off: u64, name: &str) -> u64 {
    let text = String::from_utf8(esp_read(disk, off, &format!("/loader/entries/{name}"))).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("version "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn reimage_at(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reimage"))
        .args(args)
        .env("REIMAGE_INIT", "/sbin/ldconfig")
        .output()
        .unwrap()
}

#[test]
fn install_writes_a_bootable_layout_and_deploy_rollback_undeploy_keep_the_entries_right() {
    require_root!();
    let dir = tempfile::tempdir_in(repo().join("target")).unwrap();
    let k1 = kernel_package(dir.path(), "1");
    let disk = dir.path().join("disk.img");
    let out = reimage_at(&[
        "--json",
        "install",
        "--disk",
        disk.to_str().unwrap(),
        "--size",
        "1G",
        "--kernel-arg",
        "console=ttyS0",
        k1.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["deployment"], 1);
    assert!(r["loader"].as_str().unwrap().contains("the host"), "{r}");
    let (esp, _, _) = parts(&disk);

    // The ESP: systemd-boot at the removable path, loader.conf without a
    // default, one counting entry, one kernel and one initrd.
    assert!(esp_ls(&disk, esp, "/EFI/BOOT").contains(&"BOOTX64.EFI".to_string()));
    let loader = String::from_utf8(esp_read(&disk, esp, "/loader/loader.conf")).unwrap();
    assert!(
        !loader.lines().any(|l| l.starts_with("default")),
        "{loader}"
    );
    assert_eq!(esp_ls(&disk, esp, "/loader/entries"), ["reimage-1+3.conf"]);
    let e1 = String::from_utf8(esp_read(&disk, esp, "/loader/entries/reimage-1+3.conf")).unwrap();
    let uuid = r["root_uuid"].as_str().unwrap();
    for want in [
        format!("root=UUID={uuid} rootflags=subvol=/reimage/deployments/1 rw"),
        format!("mount.usr=UUID={uuid} mount.usrflags=subvol=/pool/views/system,ro"),
        "console=ttyS0".to_string(),
        "sort-key reimage".to_string(),
    ] {
        assert!(e1.contains(&want), "entry lacks {want:?}:\n{e1}");
    }
    let files = esp_ls(&disk, esp, "/reimage");
    assert_eq!(files.len(), 2, "{files:?}");
    let initrd = files.iter().find(|f| f.starts_with("initrd-")).unwrap();
    // The initrd: /init, and libcrc32c loaded before btrfs.
    let packed = esp_read(&disk, esp, &format!("/reimage/{initrd}"));
    let raw = zstd::decode_all(&packed[..]).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("init\0"));
    assert!(text.contains("libcrc32c.ko\nbtrfs.ko\n"), "load order");

    // On the root: the state record names the ESP as the system mounts it,
    // and the fstab mounts it there.
    {
        let root = Root::mount(&disk, dir.path());
        let st: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.mnt.join("reimage/state.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(st["boot"]["esp"], "/efi");
        let fstab =
            std::fs::read_to_string(root.mnt.join("reimage/deployments/1/etc/fstab")).unwrap();
        assert!(
            fstab.contains(&format!(
                "UUID={} /efi vfat",
                r["esp_uuid"].as_str().unwrap()
            )),
            "{fstab}"
        );

        // An update with another kernel: a second entry that sorts first.
        let k2 = kernel_package(dir.path(), "2");
        let pool = root.mnt.join("pool");
        ok(&pool, &["import", k2.to_str().unwrap()]);
        ok(&pool, &["compose", "v2", "kernel-test-6.0.0-2.x86_64"]);
        let esp_arg = format!("{}@@{esp}", disk.display());
        let sr = root.mnt.to_str().unwrap();
        let pool_s = pool.to_str().unwrap();
        let d = reimage_at(&[
            "--pool",
            pool_s,
            "deploy",
            "v2",
            "--sysroot",
            sr,
            "--esp",
            &esp_arg,
        ]);
        assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
        assert_eq!(
            esp_ls(&disk, esp, "/loader/entries"),
            ["reimage-1+3.conf", "reimage-2+3.conf"]
        );
        assert!(
            entry_rank(&disk, esp, "reimage-2+3.conf") > entry_rank(&disk, esp, "reimage-1+3.conf")
        );
        // Another kernel, the same modules: the initrd is shared by content.
        assert_eq!(esp_ls(&disk, esp, "/reimage").len(), 3);

        // A default that used up its tries stays so when the ESP is synced
        // (by any writer): that is how `boot check` recognises a fallback.
        let ren = mtools("mren", &disk, esp)
            .arg("::/loader/entries/reimage-2+3.conf")
            .arg("reimage-2+0-3.conf")
            .status()
            .unwrap();
        assert!(ren.success());
        let bs = reimage_at(&["boot", "sync", "--sysroot", sr, "--esp", &esp_arg]);
        assert!(
            bs.status.success(),
            "{}",
            String::from_utf8_lossy(&bs.stderr)
        );
        assert_eq!(
            esp_ls(&disk, esp, "/loader/entries"),
            ["reimage-1+3.conf", "reimage-2+0-3.conf"]
        );
        let ren = mtools("mren", &disk, esp)
            .arg("::/loader/entries/reimage-2+0-3.conf")
            .arg("reimage-2+3.conf")
            .status()
            .unwrap();
        assert!(ren.success());

        // status shows which entry boots next.
        let s = reimage_at(&["--json", "status", "--sysroot", sr, "--esp", &esp_arg]);
        let s: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
        let first: Vec<u64> = s["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["entry"]["first"] == true)
            .map(|d| d["id"].as_u64().unwrap())
            .collect();
        assert_eq!(first, [2]);

        // fsck agrees with the ESP. An entry of no deployment that the loader
        // would not start is unfinished work (a cut between the record and the
        // ESP), which --repair finishes; one it would start is a problem.
        let fsck = |want_ok: bool, repair: bool| -> serde_json::Value {
            let mut args = vec![
                "--json",
                "--pool",
                pool_s,
                "fsck",
                "--sysroot",
                sr,
                "--esp",
                &esp_arg,
            ];
            if repair {
                args.push("--repair");
            }
            let o = reimage_at(&args);
            assert_eq!(
                o.status.success(),
                want_ok,
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            serde_json::from_slice(&o.stdout).unwrap()
        };
        let clean = fsck(true, false);
        assert_eq!(clean["system"]["problems"], serde_json::json!([]));
        assert_eq!(clean["system"]["unfinished"], serde_json::json!([]));
        let copy = |from: &str, to: &str| {
            let cp = mtools("mcopy", &disk, esp)
                .arg(format!("::/loader/entries/{from}"))
                .arg(format!("::/loader/entries/{to}"))
                .status()
                .unwrap();
            assert!(cp.success());
        };
        copy("reimage-1+3.conf", "reimage-9+3.conf");
        let r = fsck(true, false);
        assert_eq!(r["system"]["problems"], serde_json::json!([]), "{r}");
        assert!(
            r["system"]["unfinished"][0]["message"]
                .as_str()
                .unwrap()
                .contains("reimage-9+3.conf is the entry of no deployment"),
            "{r}"
        );
        let r = fsck(true, true);
        assert_eq!(
            r["system"]["finished"],
            serde_json::json!(["removed boot entry reimage-9+3.conf"]),
            "{r}"
        );
        assert!(!esp_ls(&disk, esp, "/loader/entries")
            .iter()
            .any(|n| n.starts_with("reimage-9")));
        assert_eq!(
            fsck(true, false)["system"]["unfinished"],
            serde_json::json!([])
        );
        // A copy of the default under a higher id sorts first: the loader
        // would start a deployment the record does not keep.
        copy("reimage-2+3.conf", "reimage-9+3.conf");
        let r = fsck(false, false);
        assert!(
            r["system"]["problems"][0]["message"]
                .as_str()
                .unwrap()
                .contains("would start deployment 9, which the record does not keep"),
            "{r}"
        );
        let rm = mtools("mdel", &disk, esp)
            .arg("::/loader/entries/reimage-9+3.conf")
            .status()
            .unwrap();
        assert!(rm.success());

        // Rollback rewrites only the old entry: it now sorts first.
        let rb = reimage_at(&["rollback", "--sysroot", sr, "--esp", &esp_arg]);
        assert!(
            rb.status.success(),
            "{}",
            String::from_utf8_lossy(&rb.stderr)
        );
        assert!(
            entry_rank(&disk, esp, "reimage-1+3.conf") > entry_rank(&disk, esp, "reimage-2+3.conf")
        );

        // Undeploy 2: its entry and its kernel and initrd go.
        let u = reimage_at(&["undeploy", "2", "--sysroot", sr, "--esp", &esp_arg]);
        assert!(u.status.success(), "{}", String::from_utf8_lossy(&u.stderr));
        assert_eq!(esp_ls(&disk, esp, "/loader/entries"), ["reimage-1+3.conf"]);
        assert_eq!(esp_ls(&disk, esp, "/reimage"), files);
    }

    // Refusals: an existing disk is not overwritten; a failed install
    // removes the disk file it made.
    let again = reimage_at(&[
        "install",
        "--disk",
        disk.to_str().unwrap(),
        k1.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists and is not empty"));
    let bad = dir.path().join("bad.img");
    let missing = dir.path().join("no-such.rpm");
    let f = reimage_at(&[
        "install",
        "--disk",
        bad.to_str().unwrap(),
        "--size",
        "1G",
        missing.to_str().unwrap(),
    ]);
    assert!(!f.status.success());
    assert!(!bad.exists(), "a failed install leaves no disk file behind");
}

#[test]
fn a_view_without_a_kernel_is_refused_with_the_reason() {
    require_root!();
    let dir = tempfile::tempdir_in(repo().join("target")).unwrap();
    let pkg = common::system::etc_package(dir.path(), "nokernel", "1.0", &[]);
    let disk = dir.path().join("disk.img");
    let out = reimage_at(&[
        "install",
        "--disk",
        disk.to_str().unwrap(),
        "--size",
        "1G",
        pkg.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no kernel"), "{err}");
    assert!(!disk.exists());
}

#[test]
fn install_from_a_published_image_records_it_as_the_origin() {
    require_root!();
    let dir = tempfile::tempdir_in(repo().join("target")).unwrap();
    let k1 = kernel_package(dir.path(), "1");
    let repo_dir = dir.path().join("repo");
    let p = reimage_at(&[
        "publish",
        repo_dir.to_str().unwrap(),
        "testos",
        "1",
        k1.to_str().unwrap(),
    ]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let disk = dir.path().join("disk.img");
    let out = reimage_at(&[
        "--json",
        "install",
        "--disk",
        disk.to_str().unwrap(),
        "--size",
        "1G",
        "--from",
        repo_dir.to_str().unwrap(),
        "testos",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["packages"], 1);
    let (esp, _, _) = parts(&disk);
    assert_eq!(esp_ls(&disk, esp, "/loader/entries"), ["reimage-1+3.conf"]);
    let root = Root::mount(&disk, dir.path());
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.mnt.join("reimage/state.json")).unwrap(),
    )
    .unwrap();
    let origin = &st["deployments"][0]["origin"];
    assert_eq!(origin["image"], "testos");
    assert_eq!(origin["version"], "1");
    assert_eq!(origin["source"], repo_dir.to_str().unwrap());
}
