//! Deployments on a real btrfs laid out as a system (issue 15): deploy,
//! the /etc merge on disk, status, rollback, retention, pin, undeploy,
//! finalize, the /etc history, and the refusals. Each test makes its own
//! loop-mounted btrfs whose top level is the sysroot.
mod common;

use common::system::System;
use common::*;
use reimage_testkit::{require_root, FsType, ScratchFs};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn decision<'a>(report: &'a Value, path: &str) -> Option<&'a str> {
    report["merge"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == path)
        .and_then(|d| d["rule"].as_str())
}

#[test]
fn deploy_update_merges_etc_and_rollback_and_retention_keep_what_they_must() {
    require_root!();
    let sys = System::new();
    let r1 = sys.json(&["deploy", "va"]);
    assert_eq!(r1["id"], 1);
    assert_eq!(r1["created_layout"], true);
    let etc1 = sys.etc(1);
    assert_eq!(
        std::fs::read_to_string(etc1.join("t/conf")).unwrap(),
        "c1\n"
    );
    assert!(etc1.join("machine-id").exists(), "an empty machine-id");
    let fstab = std::fs::read_to_string(etc1.join("fstab")).unwrap();
    assert!(
        fstab.contains("/usr btrfs ro,subvol=/pool/views/va"),
        "{fstab}"
    );
    assert!(fstab.contains("/var btrfs subvol=/shared/var"));
    assert!(sys.pool.join("views/va/local").is_dir());
    assert!(
        fstab.contains("/usr/local btrfs subvol=/shared/usr-local"),
        "{fstab}"
    );
    for s in ["var", "home", "root", "srv", "opt", "usr-local"] {
        assert!(reimage::sys::is_subvolume(&sys.root().join("shared").join(s)).unwrap());
    }
    sys.check_status();
    // The view a deployment uses cannot be removed under it.
    let e = fails(&sys.pool, &["rm-view", "va"]);
    assert!(e.contains("is the /usr of a deployment"), "{e}");
    assert!(sys.pool.join("views/va").exists());

    // Local changes of every kind.
    std::fs::write(etc1.join("t/conf"), "local\n").unwrap();
    std::fs::write(etc1.join("t/mine"), "m\n").unwrap();
    std::fs::remove_file(etc1.join("t/same")).unwrap();
    std::fs::write(etc1.join("t/typechg"), "local file\n").unwrap();
    std::fs::set_permissions(
        etc1.join("t/keepmode"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    rustix::fs::lsetxattr(
        etc1.join("t/keepmode"),
        "user.reimage-test",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let mut fstab_local = std::fs::read_to_string(etc1.join("fstab")).unwrap();
    fstab_local.insert_str(0, "/dev/sdb1 /data ext4 defaults 0 2\n");
    std::fs::write(etc1.join("fstab"), fstab_local).unwrap();

    let r2 = sys.json(&["deploy", "vb"]);
    assert_eq!(r2["id"], 2);
    assert_eq!(r2["against"], 1);
    assert_eq!(r2["diff"]["upgraded"][0]["name"], "etc-test");
    let etc2 = sys.etc(2);
    let read = |p: &str| std::fs::read_to_string(etc2.join(p)).unwrap();
    assert_eq!(read("t/conf"), "local\n", "local change kept");
    assert_eq!(read("t/conf.rpmnew"), "c2\n", "new default beside it");
    assert_eq!(decision(&r2, "t/conf"), Some("conflict"));
    assert_eq!(read("t/mine"), "m\n", "local addition kept");
    assert!(!etc2.join("t/same").exists(), "local removal stays");
    assert_eq!(read("t/added"), "n\n", "new default arrives");
    assert!(
        !etc2.join("t/gone").exists(),
        "untouched file follows its removal"
    );
    assert_eq!(read("t/typechg"), "local file\n", "type change: local wins");
    assert_eq!(decision(&r2, "t/typechg"), Some("type-change"));
    assert!(!etc2.join("t/typechg/inner").exists());
    assert_eq!(
        std::fs::read_link(etc2.join("t/link")).unwrap(),
        Path::new("b"),
        "untouched symlink follows"
    );
    let m = std::fs::metadata(etc2.join("t/keepmode")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o600, "local mode kept");
    let mut x = [0u8; 16];
    let n =
        rustix::fs::lgetxattr(etc2.join("t/keepmode"), "user.reimage-test", &mut x[..]).unwrap();
    assert_eq!(&x[..n], b"kept", "xattr kept");
    let fstab2 = read("fstab");
    assert!(
        fstab2.starts_with("/dev/sdb1 /data ext4"),
        "local fstab line kept: {fstab2}"
    );
    assert!(fstab2.contains("subvol=/pool/views/vb") && !fstab2.contains("views/va"));
    // The first deployment is untouched.
    assert_eq!(
        std::fs::read_to_string(etc1.join("t/conf")).unwrap(),
        "local\n"
    );
    let s = sys.check_status();
    assert_eq!(s["default"], 2);
    let d1 = &s["deployments"].as_array().unwrap()[1];
    assert_eq!(d1["id"], 1);
    assert_eq!(d1["diff"]["downgraded"][0]["name"], "etc-test");

    // Rollback, deploy again; retention keeps the default and two more,
    // a pinned one always.
    let rb = sys.json(&["rollback"]);
    assert_eq!((rb["from"].as_u64(), rb["to"].as_u64()), (Some(2), Some(1)));
    assert_eq!(sys.check_status()["default"], 1);
    sys.fails(&["rollback"]);
    let r3 = sys.json(&["deploy", "vb"]);
    assert_eq!(
        (r3["id"].as_u64(), r3["against"].as_u64()),
        (Some(3), Some(1))
    );
    sys.json(&["pin", "1"]);
    let r4 = sys.json(&["deploy", "va"]);
    assert_eq!(
        r4["removed"],
        serde_json::json!([]),
        "1 pinned, 2 and 3 the newest others"
    );
    let r5 = sys.json(&["deploy", "vb"]);
    assert_eq!(r5["removed"], serde_json::json!([2]));
    let s = sys.check_status();
    let ids: Vec<u64> = s["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![5, 4, 3, 1]);
    let c = sys.json(&["cleanup", "--keep", "0"]);
    assert_eq!(c["removed"], serde_json::json!([3, 4]));
    assert_eq!(sys.check_status()["retain"], 0);
    sys.json(&["unpin", "1"]);
    sys.json(&["undeploy", "1"]);
    assert_eq!(
        sys.check_status()["deployments"].as_array().unwrap().len(),
        1
    );
    // The pool keeps what deployments use.
    let roots = std::fs::read_dir(sys.pool.join("roots")).unwrap().count();
    assert_eq!(roots, 1);
    ok(&sys.pool, &["fsck"]);
}

#[test]
fn etc_history_commit_diff_revert_and_sync() {
    require_root!();
    let sys = System::new();
    sys.json(&["deploy", "va"]);
    sys.json(&["deploy", "vb"]);
    let etc = sys.etc(2);
    let c1 = sys.json(&["etc", "commit", "-m", "as deployed"]);
    assert_eq!(c1["commit"]["rev"], 1);
    std::fs::write(etc.join("t/conf"), "edited\n").unwrap();
    std::fs::write(etc.join("t/new-local"), "x\n").unwrap();
    let d = sys.json(&["etc", "diff"]);
    let changes: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().into(),
                c["change"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("/etc/t/conf".into(), "changed".into())),
        "{changes:?}"
    );
    assert!(changes.contains(&("/etc/t/new-local".into(), "added".into())));
    let c2 = sys.json(&["etc", "commit", "-m", "edited"]);
    assert_eq!(c2["commit"]["rev"], 2);
    let log = sys.json(&["etc", "log"]);
    assert_eq!(log["commits"].as_array().unwrap().len(), 2);
    // Revert to the first commit: one exchange, the edit gone.
    sys.json(&["etc", "revert", "1"]);
    assert_eq!(std::fs::read_to_string(etc.join("t/conf")).unwrap(), "c2\n");
    assert!(!etc.join("t/new-local").exists());
    assert!(
        reimage::sys::is_subvolume(&etc).unwrap(),
        "etc is still its own subvolume"
    );
    sys.fails(&["etc", "revert", "9"]);
    // The limit prunes the oldest.
    for _ in 0..3 {
        sys.json(&["etc", "commit", "--limit", "2"]);
    }
    let log = sys.json(&["etc", "log"]);
    let revs: Vec<u64> = log["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rev"].as_u64().unwrap())
        .collect();
    assert_eq!(revs, vec![4, 5]);
    // etc sync: a change made in the default (2) is carried into 1.
    std::fs::write(etc.join("t/passwd-like"), "rotated\n").unwrap();
    let s = sys.json(&["etc", "sync", "1"]);
    assert_eq!((s["from"].as_u64(), s["to"].as_u64()), (Some(2), Some(1)));
    assert_eq!(
        std::fs::read_to_string(sys.etc(1).join("t/passwd-like")).unwrap(),
        "rotated\n"
    );
    sys.fails(&["etc", "sync", "2"]);
}

#[test]
fn finalize_keeps_edits_made_after_deploy() {
    require_root!();
    let sys = System::new();
    sys.json(&["deploy", "va"]);
    sys.json(&["deploy", "vb"]);
    // An edit to the "booted" (here: the base) /etc after vb was staged.
    std::fs::write(sys.etc(1).join("t/after-deploy"), "late\n").unwrap();
    std::fs::write(sys.etc(1).join("t/conf"), "late conf\n").unwrap();
    assert!(!sys.etc(2).join("t/after-deploy").exists());
    let f = sys.json(&["finalize"]);
    assert_eq!(
        (f["staged"].as_u64(), f["from"].as_u64()),
        (Some(2), Some(1))
    );
    let etc2 = sys.etc(2);
    assert_eq!(
        std::fs::read_to_string(etc2.join("t/after-deploy")).unwrap(),
        "late\n"
    );
    assert_eq!(
        std::fs::read_to_string(etc2.join("t/conf")).unwrap(),
        "late conf\n"
    );
    assert_eq!(
        std::fs::read_to_string(etc2.join("t/conf.rpmnew")).unwrap(),
        "c2\n"
    );
    assert!(std::fs::read_to_string(etc2.join("fstab"))
        .unwrap()
        .contains("views/vb"));
    assert!(reimage::sys::is_subvolume(&etc2).unwrap());
    assert!(!sys.root().join("reimage/deployments/2/.etc-new").exists());
}

#[test]
fn bad_input_is_refused_clearly() {
    require_root!();
    let sys = System::new();
    let e = sys.fails(&["deploy", "nosuch"]);
    assert!(e.contains("there is no view nosuch"), "{e}");
    // Nothing made: the view is checked before the layout is.
    assert!(!sys.root().join("reimage").exists());
    let e = sys.fails(&["status"]);
    assert!(e.contains("is not a reimage system"), "{e}");
    sys.json(&["deploy", "va"]);
    let e = sys.fails(&["pin", "99"]);
    assert!(
        e.contains("there is no deployment 99 (deployments: 1)"),
        "{e}"
    );
    let e = sys.fails(&["undeploy", "1"]);
    assert!(e.contains("the default"), "{e}");
    // A sysroot that is not a top level.
    let sub = sys.root().join("reimage/deployments/1");
    let e = fails(&sys.pool, &["status", "--sysroot", sub.to_str().unwrap()]);
    assert!(e.contains("is not the top level"), "{e}");
    // A top level that holds no system.
    let other = ScratchFs::new(FsType::Btrfs, 1 << 30).unwrap();
    let e = fails(
        &sys.pool,
        &["status", "--sysroot", other.path().to_str().unwrap()],
    );
    assert!(e.contains("is not a reimage system"), "{e}");
    // A pool on another filesystem than the sysroot.
    let e = fails(
        &sys.pool,
        &["deploy", "va", "--sysroot", other.path().to_str().unwrap()],
    );
    assert!(e.contains("on another filesystem"), "{e}");
    assert!(!other.path().join("reimage/state.json").exists());
}

#[test]
fn fsck_checks_the_system_its_deployments_and_garbage() {
    require_root!();
    let sys = System::new();
    sys.json(&["deploy", "va"]);
    sys.json(&["deploy", "vb"]);
    let r = sys.json(&["fsck"]);
    assert_eq!(r["system"]["deployments"], 2);
    assert_eq!(r["system"]["problems"], serde_json::json!([]));

    // Garbage an interrupted deploy leaves is listed, not a problem, and
    // --repair removes it (and nothing the record names).
    let stray = sys.root().join("reimage/deployments/99");
    reimage::sys::subvolume_create(&stray).unwrap();
    let r = sys.json(&["fsck"]);
    assert_eq!(r["system"]["problems"], serde_json::json!([]));
    assert_eq!(r["system"]["garbage"][0], stray.to_str().unwrap());
    let r = sys.json(&["fsck", "--repair"]);
    assert_eq!(r["system"]["repaired"][0], stray.to_str().unwrap());
    assert!(!stray.exists());
    assert!(sys.root().join("reimage/deployments/2").exists());

    // A view a deployment uses that the pool's root file does not protect:
    // a problem, exit status 1.
    let problems = |sys: &System| -> Vec<String> {
        let s = sys.sysroot();
        let out = reimage(&sys.pool, &["--json", "fsck", "--sysroot", &s]);
        assert_eq!(out.status.code(), Some(1));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        r["system"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["message"].as_str().unwrap().to_string())
            .collect()
    };
    let roots = sys.pool.join("roots");
    let f = std::fs::read_dir(&roots)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good_roots = std::fs::read_to_string(&f).unwrap();
    let mut v: Value = serde_json::from_str(&good_roots).unwrap();
    v["views"] = serde_json::json!(["va"]);
    std::fs::write(&f, v.to_string()).unwrap();
    let msgs = problems(&sys);
    assert!(
        msgs.iter()
            .any(|m| m.contains("view vb is used by a deployment but not protected")),
        "{msgs:?}"
    );
    std::fs::write(&f, good_roots).unwrap();

    // A record that breaks its own rules (the default is gone): a problem.
    let state = sys.root().join("reimage/state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    st["default"] = serde_json::json!(7);
    std::fs::write(&state, st.to_string()).unwrap();
    let msgs = problems(&sys);
    assert!(
        msgs.iter().any(|m| m.contains("default deployment 7")),
        "{msgs:?}"
    );
}

/// `upgrade --check` says what would change and changes nothing; `upgrade`
/// syncs the newest version, composes it from the view in use (from its
/// stored plan) and deploys it as the default; run again it has nothing to do.
#[test]
fn upgrade_follows_the_synced_image() {
    require_root!();
    let sys = System::new();
    let pkgs = sys.root().join("pkgs");
    let rpm_of = |v: &str| pkgs.join(format!("etc-test-{v}-1.noarch.rpm"));
    let skel = testdata("edge").join("filesystem-3.18-1.x86_64.rpm");
    let repo = sys.root().join("repo");
    let repo_s = repo.display().to_string();
    // Version 2 of the image has a package the pool does not hold yet.
    let three = common::system::etc_package(
        &pkgs,
        "etc-test",
        "3.0",
        &[("/etc/t", "/"), ("/etc/t/conf", "c3\n")],
    );
    let (skel_s, one, two) = (
        skel.display().to_string(),
        rpm_of("1.0").display().to_string(),
        three.display().to_string(),
    );
    ok(&sys.pool, &["publish", &repo_s, "img", "1", &one, &skel_s]);
    ok(
        &sys.pool,
        &[
            "publish",
            &repo_s,
            "img",
            "2",
            &two,
            &skel_s,
            "--deltas-from",
            "1",
            "--delta-level",
            "3",
        ],
    );
    // A system installed from packages follows nothing.
    sys.json(&["deploy", "va"]);
    let err = sys.fails(&["upgrade"]);
    assert!(err.contains("follows no image"), "{err}");
    // Synced once: the pool remembers where from.
    ok(
        &sys.pool,
        &["sync", &repo_s, "img", "1", "--compose", "img1"],
    );
    let d = sys.json(&["deploy", "img1"]);
    assert_eq!(d["id"], 2);

    let views_before = json(&sys.pool, &["views"]).as_array().unwrap().len();
    let c = sys.json(&["upgrade", "--check"]);
    assert_eq!(c["up_to_date"], false, "{c}");
    assert_eq!(
        (c["current"].as_str(), c["version"].as_str()),
        (Some("1"), Some("2")),
        "{c}"
    );
    assert_eq!(c["changes"]["changed"][0]["name"], "etc-test.noarch", "{c}");
    assert_eq!(c["changes"]["changed"][0]["to"], "3.0-1", "{c}");
    assert_eq!(c["check"]["fetch"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["check"]["by_delta"], 1, "{c}");
    assert!(c["check"]["fetch_bytes"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(
        json(&sys.pool, &["views"]).as_array().unwrap().len(),
        views_before
    );
    assert!(
        !sys.pool.join("images/img/2.json").exists(),
        "--check synced nothing"
    );

    let u = sys.json(&["upgrade"]);
    assert_eq!(u["up_to_date"], false, "{u}");
    assert_eq!(u["sync"]["by_delta"], 1, "{u}");
    assert_eq!(u["compose"]["from"], "img1", "{u}");
    assert_eq!(
        u["compose"]["stored_placements"], 1,
        "the unchanged package: {u}"
    );
    assert_eq!(u["deploy"]["id"], 3, "{u}");
    let st = sys.check_status();
    assert_eq!(st["default"], 3, "{st}");
    let view = u["deploy"]["view"].as_str().unwrap().to_string();
    assert_eq!(view, "img-2");
    let q = ok(&sys.pool, &["list", &view]);
    assert!(q.contains("etc-test-3.0-1"), "{q}");
    ok(&sys.pool, &["verify", &view]);
    // The new deployment records what it follows.
    let dep3 = st["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == 3)
        .unwrap()
        .clone();
    assert_eq!(dep3["origin"]["image"], "img", "{dep3}");
    assert_eq!(dep3["origin"]["version"], "2", "{dep3}");

    // Nothing more to do until a new version is published.
    let again = sys.json(&["upgrade"]);
    assert_eq!(again["up_to_date"], true, "{again}");
    assert!(again.get("deploy").is_none(), "{again}");
    assert_eq!(sys.check_status()["default"], 3);
}

#[test]
fn a_view_without_usr_local_gets_no_usr_local_mount() {
    require_root!();
    let sys = System::new();
    // Without the filesystem package nothing makes /usr/local in the view,
    // and a mount there would fail the boot's local-fs.target.
    ok(&sys.pool, &["compose", "bare", "etc-test-1.0-1.noarch"]);
    assert!(!sys.pool.join("views/bare/local").exists());
    let mut a = vec!["deploy", "bare", "--sysroot"];
    let s = sys.sysroot();
    a.push(&s);
    let out = reimage(&sys.pool, &a);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("view bare has no /usr/local directory"),
        "{err}"
    );
    let fstab = std::fs::read_to_string(sys.etc(1).join("fstab")).unwrap();
    assert!(fstab.contains("subvol=/pool/views/bare"), "{fstab}");
    assert!(fstab.contains("/var btrfs subvol=/shared/var"), "{fstab}");
    assert!(!fstab.contains("/usr/local"), "{fstab}");
}
