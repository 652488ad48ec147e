//! `apply-live` on a real btrfs (issue 17), in a private mount namespace
//! (the test thread's own, as `unshare -m` makes one): deployment 1 is
//! mounted as a running root with its view as `/usr`, a shared subvolume on
//! `/usr/local` and a tmpfs `/run`; a process keeps a file of that `/usr`
//! open while the new views are mounted over it.
mod common;

use common::system::System;
use common::*;
use reimage_testkit::require_root;
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A package that adds a program, a user, a directory in /var and a default
/// in /etc.
fn addon(dir: &Path) -> PathBuf {
    let mut b = rpm::PackageBuilder::new("live-add", "1.0", "MIT", "noarch", "live test");
    b.using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
        .release("1");
    let files: &[(&str, &str, u32, bool)] = &[
        (
            "/usr/bin/live-add",
            "#!/bin/sh\necho live-add works\n",
            0o755,
            false,
        ),
        (
            "/usr/lib/sysusers.d/live-add.conf",
            "u liveadd - \"live add\" /var/lib/live-add\n",
            0o644,
            false,
        ),
        (
            "/usr/lib/tmpfiles.d/live-add.conf",
            "d /var/lib/live-add 0750 liveadd liveadd -\n",
            0o644,
            false,
        ),
        ("/etc/live-add.conf", "colour=blue\n", 0o644, true),
    ];
    for (path, content, mode, config) in files {
        let mut o = rpm::FileOptions::new(*path).permissions(*mode as u16);
        if *config {
            o = o.config().noreplace();
        }
        b.with_file_contents(content.as_bytes().to_vec(), o)
            .unwrap();
    }
    let p = dir.join("live-add-1.0-1.noarch.rpm");
    b.build().unwrap().write_file(&p).unwrap();
    p
}

/// A running root in this thread's mount namespace.
struct Running {
    root: PathBuf,
}

impl Running {
    fn mount(sys: &System, id: u64, view: &str) -> Running {
        reimage::sys::private_mount_namespace().expect("a private mount namespace");
        let root = sys.root().join("running");
        std::fs::create_dir_all(&root).unwrap();
        let dev = reimage::sys::mounts()
            .unwrap()
            .into_iter()
            .rev()
            .find(|m| m.mount_point == sys.root())
            .unwrap()
            .source;
        let m = |opts: String, at: &Path| {
            let st = Command::new("mount")
                .args(["-t", "btrfs", "-o", &opts, &dev])
                .arg(at)
                .status()
                .unwrap();
            assert!(st.success(), "mount {opts} {}", at.display());
        };
        m(format!("subvol=/reimage/deployments/{id}"), &root);
        m(format!("ro,subvol=/pool/views/{view}"), &root.join("usr"));
        m("subvol=/shared/usr-local".into(), &root.join("usr/local"));
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(root.join("run"))
            .status()
            .unwrap();
        assert!(st.success());
        Running { root }
    }
    fn usr_dev(&self) -> u64 {
        std::fs::metadata(self.root.join("usr")).unwrap().dev()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Everything under the running root, then the copy of the scratch
        // filesystem this namespace holds.
        let _ = Command::new("umount").arg("-R").arg(&self.root).status();
    }
}

fn view_dev(sys: &System, view: &str) -> u64 {
    std::fs::metadata(sys.pool.join("views").join(view))
        .unwrap()
        .dev()
}

/// A process that keeps `file` open until its stdin closes.
fn holder(file: &Path) -> Child {
    let mut c = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 3<'{}'; echo ready; read _", file.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    c
}

fn pids(r: &Value) -> Vec<u64> {
    r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect()
}

#[test]
fn apply_live_adds_refuses_replacements_unless_allowed_and_stacks() {
    require_root!();
    // The steps run the real tools with --root: they must be here.
    for t in ["systemd-sysusers", "systemd-tmpfiles", "ldconfig"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{t} is needed by this test (apt-get install systemd)"
        );
    }
    let sys = System::new();
    let pkgs = sys.root().join("pkgs");
    ok(&sys.pool, &["import", addon(&pkgs).to_str().unwrap()]);
    ok(
        &sys.pool,
        &[
            "compose",
            "vc",
            "etc-test-1.0-1.noarch",
            "filesystem",
            "live-add",
        ],
    );
    ok(
        &sys.pool,
        &[
            "compose",
            "vd",
            "etc-test-2.0-1.noarch",
            "filesystem",
            "live-add",
        ],
    );
    sys.json(&["deploy", "va"]);
    let s = sys.sysroot();
    // Run in a thread: its mount namespace goes with it, and the scratch
    // filesystem is unmounted from the test's own afterwards.
    std::thread::scope(|scope| {
        scope
            .spawn(|| scenario(&sys, &s))
            .join()
            .expect("the scenario passes");
    });
}

fn call(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

fn scenario(sys: &System, s: &str) {
    let run = Running::mount(sys, 1, "va");
    let root = run.root.display().to_string();
    assert_eq!(run.usr_dev(), view_dev(sys, "va"));
    let live = |extra: &[&str]| {
        let mut a = vec!["apply-live", "--sysroot", s, "--root", &root];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    // Nothing staged: nothing to apply.
    let e = fails(&sys.pool, &call(&live(&[])));
    assert!(e.contains("is /usr already"), "{e}");
    // A local edit of the running /etc, kept by the live merge.
    let etc = run.root.join("etc");
    std::fs::write(etc.join("t/conf"), "local\n").unwrap();

    // Only added packages: applied.
    sys.json(&["deploy", "vc"]);
    let mut hold = holder(&run.root.join("usr/share/etc-test/version"));
    let r = json(&sys.pool, &call(&live(&[])));
    assert_eq!(r["deployment"], 2);
    assert_eq!(r["from"], "va");
    assert_eq!(r["view"], "vc");
    assert_eq!(r["diff"]["added"].as_array().unwrap().len(), 1);
    assert_eq!(run.usr_dev(), view_dev(sys, "vc"), "/usr is the new view");
    assert!(run.root.join("usr/bin/live-add").is_file());
    let out = Command::new(run.root.join("usr/bin/live-add"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "live-add works\n");
    // /usr/local is still the shared subvolume, on the new /usr.
    let local = run.root.join("usr/local");
    assert!(
        reimage::sys::is_subvolume(&local).unwrap(),
        "/usr/local carried over"
    );
    assert_eq!(r["carried"][0], local.display().to_string());
    // /etc: the new default arrives, the local edit stays.
    assert_eq!(
        std::fs::read_to_string(etc.join("live-add.conf")).unwrap(),
        "colour=blue\n"
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("t/conf")).unwrap(),
        "local\n"
    );
    // sysusers, tmpfiles, ldconfig ran on the running root.
    let passwd = std::fs::read_to_string(etc.join("passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("liveadd:")),
        "{passwd}"
    );
    let vardir = run.root.join("var/lib/live-add");
    assert!(vardir.is_dir(), "tmpfiles made {}", vardir.display());
    for step in ["sysusers", "tmpfiles", "ldconfig"] {
        let st = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["step"] == step);
        assert_eq!(
            st.map(|x| x["outcome"].clone()),
            Some("done".into()),
            "{step}: {r}"
        );
    }
    // The holder still uses the old /usr, and is found by its device.
    assert!(pids(&r).contains(&(hold.id() as u64)), "{r}");
    // The live state, and status.
    let st = json(&sys.pool, &["status", "--sysroot", s, "--root", &root]);
    assert_eq!(st["live"]["view"], "vc");
    assert_eq!(st["live"]["previous"], serde_json::json!(["va"]));
    assert_eq!(st["booted"], 1);
    assert_eq!(st["default"], 2);

    // Again: /etc and the steps only.
    let again = json(&sys.pool, &call(&live(&[])));
    assert_eq!(again["again"], true);
    assert_eq!(again["etc"]["written"], serde_json::json!([]));
    assert_eq!(run.usr_dev(), view_dev(sys, "vc"));

    // An upgrade is refused, and nothing changes.
    sys.json(&["deploy", "vd"]);
    let e = fails(&sys.pool, &call(&live(&[])));
    assert!(
        e.contains("--allow-replacement") && e.contains("etc-test"),
        "{e}"
    );
    assert_eq!(run.usr_dev(), view_dev(sys, "vc"));
    // Allowed: stacked over the two before; the holder is listed.
    let r = json(&sys.pool, &call(&live(&["--allow-replacement"])));
    assert_eq!(r["view"], "vd");
    assert_eq!(r["live"]["previous"], serde_json::json!(["va", "vc"]));
    assert_eq!(run.usr_dev(), view_dev(sys, "vd"));
    assert_eq!(
        std::fs::read_to_string(run.root.join("usr/share/etc-test/version")).unwrap(),
        "etc-test 2.0\n"
    );
    assert!(pids(&r).contains(&(hold.id() as u64)), "{r}");
    assert_eq!(
        std::fs::read_to_string(etc.join("t/conf")).unwrap(),
        "local\n"
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("t/conf.rpmnew")).unwrap(),
        "c2\n"
    );
    assert_eq!(std::fs::read_to_string(etc.join("t/added")).unwrap(), "n\n");
    let st = json(&sys.pool, &["status", "--sysroot", s, "--root", &root]);
    assert_eq!(st["live"]["deployment"], 3);
    assert_eq!(st["default"], 3, "the next boot starts what runs");
    // A view mounted beneath the live one is kept when no deployment names
    // it any more (btrfs would delete a mounted subvolume).
    sys.json(&["undeploy", "2"]);
    let e = fails(&sys.pool, &["rm-view", "vc"]);
    assert!(e.contains("view vc is mounted at"), "{e}");
    assert!(sys.pool.join("views/vc").is_dir());
    drop(hold.stdin.take());
    hold.wait().unwrap();

    // Refusals that name what is wrong.
    let e = fails(&sys.pool, &["apply-live", "--sysroot", s, "--root", "/tmp"]);
    assert!(e.contains("/tmp is not a booted deployment"), "{e}");
    let e = fails(&sys.pool, &call(&live(&["--deployment", "99"])));
    assert!(e.contains("there is no deployment 99"), "{e}");
    drop(run);
}

#[test]
fn diskless_is_a_kernel_argument_that_updates_inherit() {
    require_root!();
    let sys = System::new();
    sys.json(&["deploy", "va", "--kernel-arg", "console=ttyS0"]);
    sys.json(&["deploy", "vb", "--diskless"]);
    sys.json(&["deploy", "va"]);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(sys.root().join("reimage/state.json")).unwrap(),
    )
    .unwrap();
    let args = |id: u64| {
        state["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| d["kernel_args"].clone())
            .unwrap()
    };
    assert_eq!(args(1), serde_json::json!(["console=ttyS0"]));
    assert_eq!(
        args(2),
        serde_json::json!(["console=ttyS0", "reimage.toram"]),
        "--diskless adds to the inherited arguments"
    );
    assert_eq!(
        args(3),
        serde_json::json!(["console=ttyS0", "reimage.toram"]),
        "an update of a diskless deployment stays diskless"
    );
}
