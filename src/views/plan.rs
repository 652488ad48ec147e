//! Planning a view: each package placed (the relocation policy decides
//! where each header path lands), the placements assembled in list order
//! (conflicts, first-wins, implicit parents, header files, generated
//! files), owner names resolved; and the difference of two plans, which
//! `--from` applies to a snapshot of the base. Reads only headers, extent
//! indexes and stored plans: nothing here touches a view.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use sysimage::meta::Relocation;
use sysimage::relocate::{self, Kind, PlacedEntry, Placement, Policy};

use super::model::{Data, LoadedPkg, Node};
use super::planstore::{self, PkgPlacement};

/// Where the header files live in a view.
pub const HEADER_DIR: &str = "lib/sysimage/packages";

impl Node {
    /// Same content and metadata, as far as the tree is concerned (ids
    /// resolved through the given owner tables).
    fn same_as(&self, a: &Plan, other: &Node, b: &Plan) -> bool {
        if self.mtime != other.mtime || self.perm != other.perm {
            return false;
        }
        let data_eq = match (&self.data, &other.data) {
            (
                Data::File {
                    size: s1,
                    blake3: h1,
                    link: l1,
                    ..
                },
                Data::File {
                    size: s2,
                    blake3: h2,
                    link: l2,
                    ..
                },
            ) => s1 == s2 && h1 == h2 && l1 == l2,
            (Data::Header(p), Data::Header(q)) => {
                a.pkgs[*p].header_sha256 == b.pkgs[*q].header_sha256
            }
            (x, y) => x == y,
        };
        data_eq
            && self.perm == other.perm
            && self.uid == other.uid
            && self.gid == other.gid
            && self.mtime == other.mtime
            && self.caps == other.caps
    }
}

/// A planned view.
pub struct Plan {
    pub pkgs: Vec<Arc<LoadedPkg>>,
    /// Each package's placement, encoded (the stored plan is made of them).
    pub blobs: Vec<Arc<[u8]>>,
    /// Relative path in the view -> entry; "" is the view root.
    pub nodes: BTreeMap<String, Node>,
    pub relocations: Vec<Relocation>,
    pub policy: Policy,
    /// Owner names in use -> ids.
    pub users: BTreeMap<String, u32>,
    pub groups: BTreeMap<String, u32>,
    pub unknown_owners: Vec<String>,
    /// The owner tables the names were resolved with (every name they know).
    pub tables: (BTreeMap<String, u32>, BTreeMap<String, u32>),
    /// Only the paths an incremental compose changes (see `incremental`):
    /// never materialised whole.
    pub partial: bool,
}

pub(super) fn parent_of(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

fn describe(plan_pkgs: &[Arc<LoadedPkg>], n: &Node) -> String {
    match n.pkg {
        Some(p) => format!("{} (from {})", n.header_path, plan_pkgs[p].nevra),
        None => "a directory reimage creates".to_string(),
    }
}

/// Plans the view of `pkgs`. Reads only headers and indexes.
pub fn plan(pkgs: Vec<Arc<LoadedPkg>>, policy: Policy, owners: &OwnerSources) -> Result<Plan> {
    let placed = place_all(&pkgs, &policy)?;
    assemble(pkgs, placed, policy, owners, &BTreeMap::new())
}

/// Places each package's files, in parallel.
pub(super) fn place_all(pkgs: &[Arc<LoadedPkg>], policy: &Policy) -> Result<Vec<PkgPlacement>> {
    use rayon::prelude::*;
    pkgs.par_iter()
        .enumerate()
        .map(|(pi, p)| place_package(pi, p, policy))
        .collect()
}

/// Assembles a plan from its packages' placements (made now, or stored with
/// a view), merging them in list order, so conflicts and the first-wins rules
/// do not depend on timing or on where a placement came from.
///
/// `below` names paths that have entries below them which the placements
/// leave out (an incremental plan, see `incremental`), each with the first
/// such entry: they are directories of the plan (implicit if no package
/// places them), or the plan is refused.
pub(super) fn assemble(
    pkgs: Vec<Arc<LoadedPkg>>,
    placed_pkgs: Vec<PkgPlacement>,
    policy: Policy,
    owners: &OwnerSources,
    below: &BTreeMap<String, String>,
) -> Result<Plan> {
    let mut blobs = Vec::with_capacity(placed_pkgs.len());
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut relocations = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut placed: Vec<PlacedEntry> = Vec::new();
    for pp in placed_pkgs {
        blobs.push(pp.blob);
        relocations.extend(pp.relocations);
        refused.extend(pp.refused);
        placed.extend(pp.placed);
        for (rel, node) in pp.nodes {
            insert(&pkgs, &mut nodes, rel, node)?;
        }
    }
    if !refused.is_empty() {
        let shown: Vec<&str> = refused.iter().take(20).map(String::as_str).collect();
        bail!(
            "{} path(s) outside /usr have no place in a view (map them with --relocate FROM=TO, see docs/compose.md):\n  {}{}",
            refused.len(),
            shown.join("\n  "),
            if refused.len() > 20 { "\n  ..." } else { "" }
        );
    }
    // Header files, generated files.
    for (pi, p) in pkgs.iter().enumerate() {
        let rel = format!("{HEADER_DIR}/{}.rpm", p.fname);
        let node = Node::by_reimage(Data::Header(pi), 0o644, p.build_time, format!("/usr/{rel}"));
        insert(&pkgs, &mut nodes, rel, node)?;
    }
    let tf = relocate::tmpfiles(&placed);
    for (rel, text) in [(relocate::ROOT_CONF, tf.root), (relocate::VAR_CONF, tf.var)] {
        if !text.is_empty() {
            insert(
                &pkgs,
                &mut nodes,
                rel.to_string(),
                generated(rel, text.into_bytes()),
            )?;
        }
    }
    // Where compose records the view's metadata (view.json, added by compose).
    if !nodes.contains_key("lib/reimage") {
        insert(
            &pkgs,
            &mut nodes,
            "lib/reimage".to_string(),
            Node::implicit_dir(),
        )?;
    }
    for (path, child) in below {
        match nodes.get(path.as_str()) {
            Some(n) if n.is_dir() => {}
            Some(n) => bail!(
                "{child} cannot be placed: its parent {} is not a directory but {}",
                if path.is_empty() { "/usr" } else { path },
                describe(&pkgs, n)
            ),
            None => {
                nodes.insert(path.clone(), Node::implicit_dir());
            }
        }
    }
    // Implicit parents, and no path under a non-directory. Walking up stops
    // at the first directory in the plan: its own ancestors get their turn.
    let mut missing: BTreeSet<String> = BTreeSet::new();
    // Siblings are neighbours in the sorted map: their parent is checked once.
    let mut checked: &str = "\0";
    for (path, node) in &nodes {
        let mut parent = parent_of(path);
        if parent == checked {
            continue;
        }
        checked = parent;
        loop {
            if missing.contains(parent) {
                break;
            }
            match nodes.get(parent) {
                Some(n) if n.is_dir() => break,
                Some(n) => bail!(
                    "{} cannot be placed: its parent {} is not a directory but {}",
                    describe(&pkgs, node),
                    if parent.is_empty() { "/usr" } else { parent },
                    describe(&pkgs, n)
                ),
                None => {
                    missing.insert(parent.to_string());
                }
            }
            if parent.is_empty() {
                break;
            }
            parent = parent_of(parent);
        }
    }
    for m in missing {
        nodes.insert(m, Node::implicit_dir());
    }
    let mut plan = Plan {
        pkgs,
        blobs,
        nodes,
        relocations,
        policy,
        users: BTreeMap::new(),
        groups: BTreeMap::new(),
        unknown_owners: Vec::new(),
        tables: Default::default(),
        partial: false,
    };
    resolve_owners(&mut plan, owners)?;
    Ok(plan)
}

/// Places one package's files in the view (see [`plan`]).
pub(super) fn place_package(pi: usize, p: &LoadedPkg, policy: &Policy) -> Result<PkgPlacement> {
    let c = p
        .content
        .as_ref()
        .ok_or_else(|| anyhow!("{}: placing a package whose header was not read", p.fname))?;
    let mut out = PkgPlacement {
        nodes: Vec::with_capacity(c.files.len()),
        relocations: Vec::new(),
        refused: Vec::new(),
        placed: Vec::new(),
        blob: Arc::from(Vec::new()),
    };
    let mut sources: Vec<planstore::TmpfilesSource> = Vec::new();
    // Sizes of hardlink sets, to tell singletons from sets.
    let mut set_size: HashMap<u32, u32> = HashMap::new();
    for f in &c.files {
        *set_size.entry(f.link_leader).or_default() += 1;
    }
    for f in &c.files {
        if f.is_ghost() {
            continue;
        }
        let kind = Kind::from_mode(f.mode);
        if kind == Kind::Other {
            bail!(
                "{}: {} is a device, fifo or socket (mode {:o}); reimage does not create those in a view",
                p.nevra,
                f.path,
                f.mode
            );
        }
        let placement = policy
            .place(&f.path, kind)
            .map_err(|e| anyhow!("{}: {e}", p.nevra))?;
        let for_tmpfiles = match &placement {
            Placement::Skeleton(_) => true,
            Placement::View(rel) => rel.starts_with("share/factory/var"),
            Placement::Refused => false,
        };
        if for_tmpfiles {
            sources.push(planstore::TmpfilesSource {
                path: &f.path,
                mode: f.mode,
                user: &f.user,
                group: &f.group,
                linkto: &f.linkto,
            });
            out.placed.push(PlacedEntry {
                path: f.path.clone(),
                kind,
                mode: f.mode,
                user: f.user.clone(),
                group: f.group.clone(),
                link_target: f.linkto.clone(),
                placement: placement.clone(),
            });
        }
        let rel = match placement {
            Placement::View(rel) => rel.to_string_lossy().into_owned(),
            Placement::Skeleton(_) => continue,
            Placement::Refused => {
                out.refused.push(format!("{} ({})", f.path, p.nevra));
                continue;
            }
        };
        let identity = f
            .path
            .strip_prefix("/usr")
            .map(|r| r.trim_start_matches('/'))
            .filter(|_| f.path == "/usr" || f.path.starts_with("/usr/"));
        if identity != Some(rel.as_str()) {
            out.relocations.push(Relocation {
                from: f.path.clone(),
                to: rel.clone(),
            });
        }
        let data = if f.is_dir() {
            Data::Dir
        } else if f.is_symlink() {
            Data::Symlink(f.linkto.clone())
        } else {
            let leader = f.link_leader;
            let entry = c.index.entry(leader).ok_or_else(|| {
                anyhow!("{}: the extent package has no data for {}", p.fname, f.path)
            })?;
            Data::File {
                pkg: pi,
                offset: entry.offset,
                size: entry.length,
                blake3: entry.blake3,
                link: (set_size[&leader] > 1).then_some((p.header_sha256, leader)),
            }
        };
        out.nodes.push((
            rel,
            Node {
                data,
                perm: f.mode & 0o7777,
                user: f.user.clone(),
                group: f.group.clone(),
                mtime: f.mtime,
                caps: f.caps.clone(),
                uid: 0,
                gid: 0,
                pkg: Some(pi),
                header_path: f.path.clone(),
            },
        ));
    }
    out.blob = planstore::encode_placement(p, &out.nodes, &out.relocations, &sources);
    Ok(out)
}

pub(super) fn generated(rel: &str, bytes: Vec<u8>) -> Node {
    Node::by_reimage(
        Data::Generated(Arc::new(bytes)),
        0o644,
        0,
        format!("/usr/{rel}"),
    )
}

pub(super) fn insert(
    pkgs: &[Arc<LoadedPkg>],
    nodes: &mut BTreeMap<String, Node>,
    rel: String,
    node: Node,
) -> Result<()> {
    match nodes.entry(rel) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(node);
        }
        std::collections::btree_map::Entry::Occupied(o) => {
            let rel = o.key();
            let old = o.get();
            let same = match (&old.data, &node.data) {
                (Data::Dir, Data::Dir) => true,
                (
                    Data::File {
                        size: a, blake3: x, ..
                    },
                    Data::File {
                        size: b, blake3: y, ..
                    },
                ) => {
                    a == b
                        && x == y
                        && old.perm == node.perm
                        && old.user == node.user
                        && old.group == node.group
                }
                (Data::Symlink(a), Data::Symlink(b)) => a == b,
                _ => false,
            };
            if !same {
                bail!(
                    "file conflict: {} and {} both claim /usr/{rel} with different content or type",
                    describe(pkgs, old),
                    describe(pkgs, &node)
                );
            }
        }
    }
    Ok(())
}

/// Where owner names come from, besides the view's own files.
#[derive(Debug, Clone, Default)]
pub struct OwnerSources {
    pub passwd: Option<PathBuf>,
    pub group: Option<PathBuf>,
    /// Fixed tables (an incremental compose's base view), used instead of
    /// any lookup.
    pub fixed: Option<(BTreeMap<String, u32>, BTreeMap<String, u32>)>,
}

/// Reads `name:x:id:...` lines (passwd, group) into `into` (first wins);
/// returns the numbers (from 1) of the lines that are not such entries.
pub(super) fn parse_db(text: &str, into: &mut BTreeMap<String, u32>) -> Vec<usize> {
    let mut bad = Vec::new();
    for (i, l) in text.lines().enumerate() {
        // Comments, blank lines, and NIS compat entries (`+::::::`, `+@group`,
        // `-name`), which name no local id.
        if l.starts_with('#') || l.trim().is_empty() || l.starts_with(['+', '-']) {
            continue;
        }
        let mut f = l.split(':');
        let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else {
            bad.push(i + 1);
            continue;
        };
        match id.parse() {
            Ok(id) if !name.is_empty() => {
                into.entry(name.to_string()).or_insert(id);
            }
            _ => bad.push(i + 1),
        }
    }
    bad
}

fn parse_sysusers(
    text: &str,
    users: &mut BTreeMap<String, u32>,
    groups: &mut BTreeMap<String, u32>,
) {
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let name = f[1].to_string();
        let (uid, gid) = match f[2].split_once(':') {
            Some((u, g)) => (u.parse().ok(), g.parse().ok()),
            None => (f[2].parse().ok(), f[2].parse().ok()),
        };
        match f[0] {
            "u" | "u!" => {
                if let Some(u) = uid {
                    users.entry(name.clone()).or_insert(u);
                    if let Some(g) = gid {
                        groups.entry(name).or_insert(g);
                    }
                }
            }
            "g" => {
                if let Some(g) = uid {
                    groups.entry(name).or_insert(g);
                }
            }
            _ => {}
        }
    }
}

/// Reads a planned regular file's content from its extent package.
fn read_planned(plan: &Plan, rel: &str) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let n = plan.nodes.get(rel)?;
    let Data::File {
        pkg, offset, size, ..
    } = &n.data
    else {
        return None;
    };
    if *size > 16 << 20 {
        return None;
    }
    let f = File::open(&plan.pkgs[*pkg].path).ok()?;
    let mut buf = vec![0u8; *size as usize];
    f.read_exact_at(&mut buf, *offset).ok()?;
    Some(buf)
}

/// Owner names -> ids: the view's own etc/passwd and etc/group, then its
/// lib/sysusers.d, then --passwd/--group, else root (said once).
fn resolve_owners(plan: &mut Plan, src: &OwnerSources) -> Result<()> {
    let mut users = BTreeMap::new();
    let mut groups = BTreeMap::new();
    if let Some((u, g)) = &src.fixed {
        users = u.clone();
        groups = g.clone();
    } else {
        for (rel, into) in [("etc/passwd", &mut users), ("etc/group", &mut groups)] {
            if let Some(b) = read_planned(plan, rel) {
                parse_db(&String::from_utf8_lossy(&b), into);
            }
        }
        let sysusers: Vec<String> = plan
            .nodes
            .range("lib/sysusers.d/".to_string().."lib/sysusers.d0".to_string())
            .filter(|(k, _)| k.ends_with(".conf"))
            .map(|(k, _)| k.clone())
            .collect();
        for rel in sysusers {
            if let Some(b) = read_planned(plan, &rel) {
                parse_sysusers(&String::from_utf8_lossy(&b), &mut users, &mut groups);
            }
        }
        for (path, into, what) in [
            (&src.passwd, &mut users, "passwd"),
            (&src.group, &mut groups, "group"),
        ] {
            if let Some(p) = path {
                let t = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let bad = parse_db(&t, into);
                if let Some(first) = bad.first() {
                    bail!(
                        "--{what} {}: line {first}{} is not a {what} entry (NAME:x:ID:...)",
                        p.display(),
                        if bad.len() > 1 {
                            format!(" (and {} more)", bad.len() - 1)
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
    }
    users.insert("root".into(), 0);
    groups.insert("root".into(), 0);
    let mut unknown = BTreeSet::new();
    let names = |f: fn(&Node) -> &str| -> BTreeSet<String> {
        plan.nodes.values().map(|n| f(n).to_string()).collect()
    };
    let (un, gn) = (names(|n| &n.user), names(|n| &n.group));
    let used_u = ids(un.iter(), &users, "user", &mut unknown);
    let used_g = ids(gn.iter(), &groups, "group", &mut unknown);
    for n in plan.nodes.values_mut() {
        n.uid = used_u[&n.user];
        n.gid = used_g[&n.group];
    }
    plan.users = used_u;
    plan.groups = used_g;
    plan.tables = (users, groups);
    plan.unknown_owners = unknown.into_iter().collect();
    Ok(())
}

/// Owner name -> id for the names in use; names the table lacks map to 0
/// (root) and are noted in `unknown` ("user NAME", "group NAME").
pub(super) fn ids<'a>(
    used: impl Iterator<Item = &'a String>,
    table: &BTreeMap<String, u32>,
    what: &str,
    unknown: &mut BTreeSet<String>,
) -> BTreeMap<String, u32> {
    used.map(|k| {
        let id = table.get(k).copied().unwrap_or_else(|| {
            unknown.insert(format!("{what} {k}"));
            0
        });
        (k.clone(), id)
    })
    .collect()
}

/// What turns a base view's tree into a new plan's, found by one merge walk
/// of the two (sorted) plans.
pub(super) struct PlanDiff {
    /// Entries of the base to remove (is a directory), deepest first.
    pub(super) remove: Vec<(String, bool)>,
    /// Entries of the new plan to create, parents first.
    pub(super) create: Vec<String>,
    /// Directories of the new plan that are new or whose metadata changed.
    pub(super) dirs_changed: Vec<String>,
}

pub(super) fn diff_plans(old: &Plan, new: &Plan) -> PlanDiff {
    let mut d = PlanDiff {
        remove: Vec::new(),
        create: Vec::new(),
        dirs_changed: Vec::new(),
    };
    let mut a = old.nodes.iter().peekable();
    let mut b = new.nodes.iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ra, _)), Some((rb, _))) => ra.cmp(rb),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (rel, on) = a.next().expect("peeked");
                d.remove.push((rel.clone(), on.is_dir()));
            }
            std::cmp::Ordering::Greater => {
                let (rel, nn) = b.next().expect("peeked");
                d.create.push(rel.clone());
                if nn.is_dir() {
                    d.dirs_changed.push(rel.clone());
                }
            }
            std::cmp::Ordering::Equal => {
                let (rel, on) = a.next().expect("peeked");
                let (_, nn) = b.next().expect("peeked");
                if on.is_dir() && nn.is_dir() {
                    if !on.same_as(old, nn, new) {
                        d.dirs_changed.push(rel.clone());
                    }
                } else if !kept(on, old, nn, new) {
                    d.remove.push((rel.clone(), on.is_dir()));
                    d.create.push(rel.clone());
                    if nn.is_dir() {
                        d.dirs_changed.push(rel.clone());
                    }
                }
            }
        }
    }
    d.remove.reverse();
    d
}

/// An entry of the base view stays as it is (generated files are always rewritten).
fn kept(on: &Node, old: &Plan, nn: &Node, new: &Plan) -> bool {
    on.same_as(old, nn, new) && !matches!(on.data, Data::Generated(_))
}
