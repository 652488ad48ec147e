//! Kill points for the deployment operations (issue 15): `deploy`,
//! `rollback`, `finalize`, `cleanup`, `undeploy`, `etc commit` and
//! `etc revert` are killed (SIGKILL through `REIMAGE_FAILPOINT=NAME:N`) at
//! every hit of every failpoint an uninterrupted run passes. After each
//! kill: the state record reads; the previous default (or, once the
//! operation switched it, the new one) exists whole, with its /etc exactly
//! as one of the two complete runs leaves it; no deployment the record
//! lists is missing anything; the pool's fsck passes. Then the operation is
//! run again and the system equals the one an uninterrupted run makes.
mod common;

use common::system::System;
use common::*;
use reimage_testkit::require_root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

struct Scenario {
    op: &'static str,
    setup: fn(&System),
    args: &'static [&'static str],
}

fn deployed(sys: &System) {
    sys.json(&["deploy", "va"]);
}
fn two(sys: &System) {
    deployed(sys);
    std::fs::write(sys.etc(1).join("t/conf"), "local\n").unwrap();
    sys.json(&["deploy", "vb"]);
}
fn two_edited(sys: &System) {
    two(sys);
    std::fs::write(sys.etc(1).join("t/late"), "late\n").unwrap();
}
fn many(sys: &System) {
    two(sys);
    sys.json(&["deploy", "va"]);
    sys.json(&["deploy", "vb"]);
}
fn rolled_back(sys: &System) {
    two(sys);
    sys.json(&["rollback"]);
}
fn committed(sys: &System) {
    two(sys);
    sys.json(&["etc", "commit", "-m", "one"]);
    std::fs::write(sys.etc(2).join("t/conf"), "edited\n").unwrap();
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            op: "deploy-first",
            setup: |_| {},
            args: &["deploy", "va"],
        },
        Scenario {
            op: "deploy",
            setup: deployed,
            args: &["deploy", "vb"],
        },
        Scenario {
            op: "rollback",
            setup: two,
            args: &["rollback"],
        },
        Scenario {
            op: "finalize",
            setup: two_edited,
            args: &["finalize"],
        },
        Scenario {
            op: "cleanup",
            setup: many,
            args: &["cleanup", "--keep", "0"],
        },
        Scenario {
            op: "undeploy",
            setup: rolled_back,
            args: &["undeploy", "2"],
        },
        Scenario {
            op: "etc-commit",
            setup: committed,
            args: &["etc", "commit", "-m", "two"],
        },
        Scenario {
            op: "etc-revert",
            setup: committed,
            args: &["etc", "revert", "1"],
        },
    ]
}

/// What a system is, for comparisons: the state record (without times) and
/// every listed deployment's /etc (a walk) and history.
fn snapshot(sys: &System) -> (Value, BTreeMap<u64, BTreeMap<String, String>>) {
    let path = sys.root().join("reimage/state.json");
    let mut state: Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).expect("the state record always reads"),
        Err(_) => return (Value::Null, BTreeMap::new()),
    };
    let mut etcs = BTreeMap::new();
    let uuid = uuid_of(sys.root());
    for d in state["deployments"].as_array_mut().unwrap() {
        d["created"] = Value::Null;
        let id = d["id"].as_u64().unwrap();
        let root = sys.root().join(format!("reimage/deployments/{id}"));
        assert!(
            root.join("usr").is_dir() && root.join("etc").is_dir(),
            "deployment {id} is listed but not whole"
        );
        let mut w = tree(&root.join("etc"), &uuid);
        for (k, v) in tree(&sys.root().join(format!("reimage/etc-history/{id}")), &uuid) {
            if !k.ends_with(".json") {
                w.insert(format!("history/{k}"), v);
            }
        }
        etcs.insert(id, w);
    }
    (state, etcs)
}

type Snap = (Value, BTreeMap<u64, BTreeMap<String, String>>);

/// Two snapshots are the same system: one record (a deploy killed after it
/// took an id takes the next one when run again, so ids are compared by
/// order) and the same /etc trees in the same order.
fn same(a: &Snap, b: &Snap) -> bool {
    let norm = |v: &Value| {
        let mut v = v.clone();
        if v.is_null() {
            return v;
        }
        let ids: Vec<u64> = v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_u64().unwrap())
            .collect();
        let rank = |id: Option<u64>| id.and_then(|i| ids.iter().position(|x| *x == i));
        v["default"] = serde_json::json!(rank(v["default"].as_u64()));
        v["next_id"] = Value::Null;
        for d in v["deployments"].as_array_mut().unwrap() {
            d["base"] = serde_json::json!(rank(d["base"].as_u64()));
            d["id"] = Value::Null;
        }
        v
    };
    norm(&a.0) == norm(&b.0) && a.1.values().eq(b.1.values())
}

fn uuid_of(root: &Path) -> String {
    reimage::sys::btrfs_uuid(&std::fs::File::open(root).unwrap()).unwrap()
}

/// A tree's entries: type, mode, owner, content (the filesystem's UUID,
/// which differs between test systems, replaced) or link target; no times.
fn tree(root: &Path, uuid: &str) -> BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).replace(uuid, "UUID")
            } else if m.is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                stack.push(p.clone());
                String::new()
            };
            use sha2::Digest;
            let h = hex::encode(sha2::Sha256::digest(content.as_bytes()));
            out.insert(rel, format!("{:o} {} {} {h}", m.mode(), m.uid(), m.gid()));
        }
    }
    out
}

fn run(sys: &System, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reimage"));
    c.arg("--pool")
        .arg(&sys.pool)
        .arg("--quiet")
        .arg("--json")
        .args(args);
    c.arg("--sysroot").arg(sys.root());
    c.env_remove("REIMAGE_POOL").env_remove("REIMAGE_FAILPOINT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn deployment_operations_killed_at_every_failpoint() {
    require_root!();
    let mut total = 0;
    for sc in scenarios() {
        // The reference run.
        let sys = System::new();
        (sc.setup)(&sys);
        let before = snapshot(&sys);
        let log = sys.root().join("hits.log");
        let out = run(
            &sys,
            sc.args,
            &[("REIMAGE_FAILPOINT_LOG", log.display().to_string())],
        );
        assert!(
            out.status.success(),
            "{}: {}",
            sc.op,
            String::from_utf8_lossy(&out.stderr)
        );
        let after = snapshot(&sys);
        let mut hits: BTreeMap<String, u64> = BTreeMap::new();
        for l in std::fs::read_to_string(&log).unwrap_or_default().lines() {
            if !l.starts_with("import.") && !l.starts_with("compose.") {
                *hits.entry(l.to_string()).or_default() += 1;
            }
        }
        assert!(!hits.is_empty(), "{}: passed no failpoint", sc.op);
        drop(sys);
        for (name, &count) in &hits {
            for n in 1..=count {
                let what = format!("{} killed at {name}:{n}", sc.op);
                let sys = System::new();
                (sc.setup)(&sys);
                let out = run(
                    &sys,
                    sc.args,
                    &[("REIMAGE_FAILPOINT", format!("{name}:{n}"))],
                );
                assert_eq!(
                    out.status.signal(),
                    Some(9),
                    "{what}: not killed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // Right after the kill: the record reads, every listed
                // deployment is whole, the default is one of them, and each
                // /etc is as one of the complete states has it.
                let now = snapshot(&sys);
                if now.0 != Value::Null {
                    let default = now.0["default"].as_u64();
                    assert!(
                        default.is_none_or(|d| now.1.contains_key(&d)),
                        "{what}: default {default:?} missing"
                    );
                    for (id, etc) in &now.1 {
                        let was = before.1.get(id).or(after.1.get(id));
                        let ok = before.1.get(id) == Some(etc) || after.1.get(id) == Some(etc);
                        assert!(
                            ok || was.is_none(),
                            "{what}: /etc of deployment {id} is neither as before nor as after"
                        );
                    }
                }
                ok(&sys.pool, &["fsck"]);
                // Done before the kill (the switch was its last step): that
                // is the end state already. Else rerun: the same end state
                // as an uninterrupted run.
                let end = if same(&now, &after) {
                    now
                } else {
                    let out = run(&sys, sc.args, &[]);
                    assert!(
                        out.status.success(),
                        "{what}: rerun failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let end = snapshot(&sys);
                    assert!(
                        same(&end, &after),
                        "{what}: after the rerun the system differs:\n{:#?}\nvs\n{:#?}",
                        end.0,
                        after.0
                    );
                    ok(&sys.pool, &["fsck"]);
                    end
                };
                drop(end);
                assert!(
                    std::fs::read_dir(sys.root().join("reimage/tmp"))
                        .unwrap()
                        .next()
                        .is_none(),
                    "{what}: tmp not empty"
                );
                total += 1;
            }
        }
        eprintln!("{}: {hits:?}", sc.op);
    }
    eprintln!("{total} deployment kill points, 0 failures");
    assert!(total >= 15, "only {total} kill points");
    let _ = Path::new("");
}
