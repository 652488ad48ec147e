//! The merge rules as a table (the kind of table ostree's
//! `test-admin-deploy-etcmerge-cornercases.sh` and transactional-update's
//! `etc_changes.bats` hold), then the same over real directories.
use super::*;

fn file(content: &str) -> Entry {
    use sha2::Digest;
    Entry {
        kind: Kind::File {
            sha256: sha2::Sha256::digest(content.as_bytes()).into(),
            size: content.len() as u64,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        xattrs: BTreeMap::new(),
    }
}
fn dir() -> Entry {
    Entry {
        kind: Kind::Dir,
        mode: 0o755,
        ..file("")
    }
}
fn link(t: &str) -> Entry {
    Entry {
        kind: Kind::Symlink(t.into()),
        mode: 0o777,
        ..file("")
    }
}
fn tree(items: &[(&str, Entry)]) -> Tree {
    Tree {
        root: None,
        entries: items
            .iter()
            .map(|(p, e)| (PathBuf::from(p), e.clone()))
            .collect(),
    }
}

/// What the result holds at `path`: "absent" or the entry's content tag.
fn at(plan: &Plan, path: &str) -> Option<(Side, Entry)> {
    plan.result.get(Path::new(path)).cloned()
}
fn rule(plan: &Plan, path: &str) -> Option<Rule> {
    plan.decisions
        .iter()
        .find(|d| d.path == Path::new(path))
        .map(|d| d.rule)
}

#[test]
fn the_table() {
    let a = file("a");
    let b = file("b");
    let c = file("c");
    let mut a_700 = a.clone();
    a_700.mode = 0o700;
    let mut a_owner = a.clone();
    a_owner.uid = 1000;
    let mut a_cap = a.clone();
    a_cap
        .xattrs
        .insert("security.capability".into(), vec![1, 0, 0, 2]);
    type Row<'a> = (
        &'a str,
        Option<&'a Entry>,
        Option<&'a Entry>,
        Option<&'a Entry>,
        Option<(Side, &'a Entry)>,
        Option<Rule>,
    );
    let l = link("target");
    let d = dir();
    let other = link("other");
    //  what, old, local, new, result, rule
    let rows: Vec<Row> = vec![
        (
            "all equal",
            Some(&a),
            Some(&a),
            Some(&a),
            Some((Side::New, &a)),
            None,
        ),
        (
            "new default, untouched",
            Some(&a),
            Some(&a),
            Some(&b),
            Some((Side::New, &b)),
            Some(Rule::Default),
        ),
        (
            "default added",
            None,
            None,
            Some(&b),
            Some((Side::New, &b)),
            Some(Rule::Default),
        ),
        (
            "default removed, untouched",
            Some(&a),
            Some(&a),
            None,
            None,
            Some(Rule::DefaultRemoved),
        ),
        (
            "local change kept",
            Some(&a),
            Some(&b),
            Some(&a),
            Some((Side::Local, &b)),
            Some(Rule::Local),
        ),
        (
            "local addition kept",
            None,
            Some(&b),
            None,
            Some((Side::Local, &b)),
            Some(Rule::LocalAdded),
        ),
        (
            "local removal stays",
            Some(&a),
            None,
            Some(&a),
            None,
            Some(Rule::LocalRemoved),
        ),
        (
            "local removal stays, default changed",
            Some(&a),
            None,
            Some(&b),
            None,
            Some(Rule::LocalRemoved),
        ),
        (
            "same change",
            Some(&a),
            Some(&b),
            Some(&b),
            Some((Side::Local, &b)),
            Some(Rule::SameChange),
        ),
        (
            "conflict: .rpmnew",
            Some(&a),
            Some(&b),
            Some(&c),
            Some((Side::Local, &b)),
            Some(Rule::Conflict),
        ),
        (
            "both added, differ: .rpmnew",
            None,
            Some(&b),
            Some(&c),
            Some((Side::Local, &b)),
            Some(Rule::Conflict),
        ),
        (
            "local changed, default removed",
            Some(&a),
            Some(&b),
            None,
            Some((Side::Local, &b)),
            Some(Rule::LocalKeptDefaultRemoved),
        ),
        (
            "mode is a change",
            Some(&a),
            Some(&a_700),
            Some(&b),
            Some((Side::Local, &a_700)),
            Some(Rule::Conflict),
        ),
        (
            "owner is a change",
            Some(&a),
            Some(&a_owner),
            Some(&a),
            Some((Side::Local, &a_owner)),
            Some(Rule::Local),
        ),
        (
            "xattrs are a change",
            Some(&a),
            Some(&a_cap),
            Some(&a),
            Some((Side::Local, &a_cap)),
            Some(Rule::Local),
        ),
        (
            "new mode on an untouched file",
            Some(&a),
            Some(&a),
            Some(&a_700),
            Some((Side::New, &a_700)),
            Some(Rule::Default),
        ),
        (
            "type change file -> symlink locally",
            Some(&a),
            Some(&l),
            Some(&b),
            Some((Side::Local, &l)),
            Some(Rule::TypeChange),
        ),
        (
            "local symlink -> file, defaults a file too: .rpmnew",
            Some(&l),
            Some(&a),
            Some(&b),
            Some((Side::Local, &a)),
            Some(Rule::Conflict),
        ),
        (
            "type change symlink -> file in defaults, local symlink changed",
            Some(&l),
            Some(&other),
            Some(&b),
            Some((Side::Local, &other)),
            Some(Rule::TypeChange),
        ),
        (
            "local dir -> file, defaults a file too: .rpmnew",
            Some(&d),
            Some(&a),
            Some(&b),
            Some((Side::Local, &a)),
            Some(Rule::Conflict),
        ),
        (
            "type change file -> dir in defaults, local file changed",
            Some(&a),
            Some(&b),
            Some(&d),
            Some((Side::Local, &b)),
            Some(Rule::TypeChange),
        ),
        (
            "symlink retargeted in defaults",
            Some(&l),
            Some(&l),
            Some(&other),
            Some((Side::New, &other)),
            Some(Rule::Default),
        ),
    ];
    for (what, o, lo, n, want, want_rule) in rows {
        let t = |e: Option<&Entry>| tree(&e.map(|e| vec![("f", e.clone())]).unwrap_or_default());
        let plan = merge(&t(o), &t(lo), &t(n));
        assert_eq!(
            at(&plan, "f"),
            want.map(|(s, e)| (s, e.clone())),
            "{what}: result"
        );
        assert_eq!(rule(&plan, "f"), want_rule, "{what}: rule");
        let rpmnew = plan.rpmnew.get(Path::new("f.rpmnew"));
        assert_eq!(
            rpmnew.is_some(),
            want_rule == Some(Rule::Conflict),
            "{what}: .rpmnew"
        );
    }
}

#[test]
fn directories_and_their_children() {
    let (a, b) = (file("a"), file("b"));
    // A file added locally under a directory the new defaults remove: kept,
    // with its directory.
    let old = tree(&[("d", dir()), ("d/x", a.clone())]);
    let local = tree(&[("d", dir()), ("d/x", a.clone()), ("d/mine", b.clone())]);
    let new = tree(&[]);
    let p = merge(&old, &local, &new);
    assert!(at(&p, "d/mine").is_some(), "a local file is never lost");
    assert_eq!(at(&p, "d").unwrap().0, Side::Local);
    assert!(
        at(&p, "d/x").is_none(),
        "an untouched default follows its removal"
    );
    // A directory removed locally: the new defaults' new files under it are dropped.
    let old = tree(&[("d", dir()), ("d/x", a.clone())]);
    let local = tree(&[]);
    let new = tree(&[("d", dir()), ("d/x", a.clone()), ("d/y", b.clone())]);
    let p = merge(&old, &local, &new);
    assert!(at(&p, "d").is_none());
    assert!(at(&p, "d/y").is_none());
    assert_eq!(rule(&p, "d/y"), Some(Rule::DroppedUnderLocal));
    // A local file where the defaults have a directory: the directory's
    // children are dropped, the file kept.
    let old = tree(&[("d", a.clone())]);
    let local = tree(&[("d", b.clone())]);
    let new = tree(&[("d", dir()), ("d/z", a.clone())]);
    let p = merge(&old, &local, &new);
    assert_eq!(at(&p, "d").unwrap(), (Side::Local, b.clone()));
    assert!(at(&p, "d/z").is_none());
    // A local directory where the defaults had a file: kept with its content.
    let old = tree(&[("d", a.clone())]);
    let local = tree(&[("d", dir()), ("d/k", b.clone())]);
    let new = tree(&[("d", b.clone())]);
    let p = merge(&old, &local, &new);
    assert_eq!(at(&p, "d").unwrap().1.kind, Kind::Dir);
    assert!(at(&p, "d/k").is_some());
    assert_eq!(rule(&p, "d"), Some(Rule::TypeChange));
}

#[test]
fn sockets_and_fifos_are_skipped() {
    let fifo = Entry {
        kind: Kind::Special("fifo"),
        ..file("")
    };
    let p = merge(&tree(&[]), &tree(&[("p", fifo)]), &tree(&[]));
    assert!(at(&p, "p").is_none());
    assert_eq!(rule(&p, "p"), Some(Rule::SkippedSpecial));
}

#[test]
fn nasty_names() {
    let names = ["a b", "-rf", "ünïcödé", "x\ty", ".hidden", "a.rpmnew"];
    let items: Vec<(&str, Entry)> = names.iter().map(|n| (*n, file(n))).collect();
    let p = merge(&tree(&[]), &tree(&items), &tree(&[]));
    assert_eq!(p.result.len(), names.len());
}

/// The same rules over real directories: read, merge, write, read back.
#[test]
fn on_disk_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let mk = |name: &str, files: &[(&str, &str, u32)]| {
        let root = t.path().join(name);
        std::fs::create_dir(&root).unwrap();
        for (p, content, mode) in files {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            if let Some(target) = content.strip_prefix("->") {
                std::os::unix::fs::symlink(target, &path).unwrap();
            } else {
                std::fs::write(&path, content).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
        }
        root
    };
    let old = mk(
        "old",
        &[("conf", "1", 0o644), ("keep", "k", 0o644), ("l", "->a", 0)],
    );
    let local = mk(
        "local",
        &[
            ("conf", "local", 0o644),
            ("keep", "k", 0o600),
            ("mine", "m", 0o640),
            ("l", "->a", 0),
        ],
    );
    let new = mk(
        "new",
        &[
            ("conf", "2", 0o644),
            ("keep", "k", 0o644),
            ("added", "n", 0o644),
            ("l", "->b", 0),
        ],
    );
    let (o, l, n) = (
        read_tree(&old).unwrap(),
        read_tree(&local).unwrap(),
        read_tree(&new).unwrap(),
    );
    let plan = merge(&o, &l, &n);
    let dest = t.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    write(&plan, &l, &n, &dest).unwrap();
    let read = |p: &str| std::fs::read_to_string(dest.join(p)).unwrap();
    assert_eq!(read("conf"), "local");
    assert_eq!(read("conf.rpmnew"), "2");
    assert_eq!(read("mine"), "m");
    assert_eq!(read("added"), "n");
    let mode = |p: &str| {
        std::fs::metadata(dest.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("keep"), 0o600, "a local mode change is kept");
    assert_eq!(mode("mine"), 0o640);
    assert_eq!(std::fs::read_link(dest.join("l")).unwrap(), Path::new("b"));
    // Reading the result back gives the plan's entries.
    let back = read_tree(&dest).unwrap();
    for (p, (_, e)) in &plan.result {
        assert_eq!(back.entries.get(p), Some(e), "{}", p.display());
    }
    // A missing local /etc (first deployment) is an empty tree.
    assert!(read_tree(&t.path().join("nope"))
        .unwrap()
        .entries
        .is_empty());
}

/// The live form: the result brought into the local tree itself.
#[test]
fn in_place_brings_new_defaults_into_the_local_tree() {
    let t = tempfile::tempdir().unwrap();
    let mk = |name: &str, files: &[(&str, &str)]| {
        let root = t.path().join(name);
        std::fs::create_dir(&root).unwrap();
        for (p, content) in files {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            if let Some(target) = content.strip_prefix("->") {
                std::os::unix::fs::symlink(target, &path).unwrap();
            } else if content.is_empty() {
                std::fs::create_dir(&path).unwrap();
            } else {
                std::fs::write(&path, content).unwrap();
            }
        }
        root
    };
    let old = mk(
        "old",
        &[
            ("conf", "1"),
            ("same", "s"),
            ("gone", "g"),
            ("d/x", "x"),
            ("l", "->a"),
        ],
    );
    let local = mk(
        "local",
        &[
            ("conf", "mine"),
            ("same", "s"),
            ("gone", "g"),
            ("d/x", "x"),
            ("d/local", "kept"),
            ("l", "->a"),
            ("own", "o"),
        ],
    );
    let new = mk(
        "new",
        &[
            ("conf", "2"),
            ("same", "s2"),
            ("added/a", "A"),
            ("l", "->b"),
        ],
    );
    let (o, l, n) = (
        read_tree(&old).unwrap(),
        read_tree(&local).unwrap(),
        read_tree(&new).unwrap(),
    );
    let plan = merge(&o, &l, &n);
    let applied = apply_in_place(&plan, &l, &n).unwrap();
    let read = |p: &str| std::fs::read_to_string(local.join(p)).unwrap();
    assert_eq!(read("conf"), "mine", "a local change is kept");
    assert_eq!(read("conf.rpmnew"), "2");
    assert_eq!(
        read("same"),
        "s2",
        "an untouched file follows the new default"
    );
    assert_eq!(read("added/a"), "A");
    assert_eq!(read("own"), "o");
    assert_eq!(read("d/local"), "kept", "a local file keeps its directory");
    assert!(
        !local.join("gone").exists(),
        "an untouched removed default goes"
    );
    assert!(!local.join("d/x").exists());
    assert_eq!(std::fs::read_link(local.join("l")).unwrap(), Path::new("b"));
    assert!(applied.removed.contains(&PathBuf::from("gone")));
    assert_eq!(applied.rpmnew, vec![PathBuf::from("conf.rpmnew")]);
    // No temporary file is left, and the tree now equals the plan.
    let back = read_tree(&local).unwrap();
    assert!(back
        .entries
        .keys()
        .all(|p| !p.to_string_lossy().contains(".reimage-new")));
    for (p, (_, e)) in &plan.result {
        assert_eq!(back.entries.get(p), Some(e), "{}", p.display());
    }
    // Applying the same merge again changes nothing.
    let again = merge(&o, &back, &n);
    let second = apply_in_place(&again, &back, &n).unwrap();
    assert_eq!(second, Applied::default());
}
