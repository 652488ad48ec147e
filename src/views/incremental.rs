//! Incremental planning for a compose from a base view (`--from`, or the
//! base compose picks itself): the plan of only the paths the changed
//! packages touch, for the base's package list and for the new one, so a
//! 10-of-300-package update reads and assembles what those 10 packages
//! (and their neighbours at the same paths) place, not the 35k entries of
//! both views.
//!
//! Why the result equals a full compose (docs/compose.md, "How --from stays
//! cheap"). Let A be every path a removed or added package places, their
//! header files, the generated files, the owner tables' sources
//! (`etc/passwd`, `etc/group`, `lib/sysusers.d/`), all closed under parents.
//! Both lists are assembled, by the same [`assemble`] as a full plan, from
//! every package's entries inside A (a kept package's entries come out of
//! the stored plan without allocating the ones outside A). Then:
//! - a path outside A has the same claimers in both lists, in the same order
//!   (kept packages must keep their relative order, else this gives up), so
//!   the same node; its owner ids are the same because the new owner tables
//!   give every name the base uses the base's id (else this gives up);
//! - a path inside A has all its claimers in the restricted input, so the
//!   same winner and the same conflicts as in the full plan;
//! - what the restricted input cannot see is whether a path in A has
//!   entries below it outside A: the scan of the kept packages records, for
//!   every entry it leaves out, its nearest ancestor in A. Such an ancestor
//!   exists in both plans (an implicit directory if nobody claims it), and
//!   is refused if the new list makes it a non-directory.
//!
//! The difference of the two restricted plans is then the difference of
//! the two full ones, and the new view's counts and owner tables are the
//! base's stored [`Summary`] minus the old restricted plan plus the new one.
//!
//! Whenever a condition does not hold (no usable stored plan, the kept
//! packages reordered, owner ids that change, most entries changing) it
//! says why at `-v` and compose plans whole as before.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use rayon::prelude::*;
use sysimage::meta::{ViewMeta, VIEW_META};
use sysimage::relocate::{self, Policy};

use super::model::{load_package, Data, LoadedPkg, Node};
use super::plan::{
    assemble, diff_plans, ids, parent_of, place_package, OwnerSources, Plan, HEADER_DIR,
};
use super::planstore::{self, FileId, PkgPlacement, StoredPlan, Summary};
use crate::store::pool::Pool;

/// Both restricted plans, and what the new view holds in all.
pub(super) struct Incremental {
    /// The base view's plan, restricted to the changed paths.
    pub old: Plan,
    /// The new plan, restricted the same way; its owner tables, `users`,
    /// `groups` and `unknown_owners` are the whole view's.
    pub new: Plan,
    /// The whole new plan counted (without view.json).
    pub summary: Summary,
    /// Packages taken from the stored plan.
    pub kept: usize,
}

/// Packages already read and placed (by file name), for a whole plan.
pub(super) type Fresh = HashMap<String, (Arc<LoadedPkg>, PkgPlacement)>;

pub(super) enum Outcome {
    Done(Box<Incremental>),
    /// Plan whole instead, for the reason given; with what was read.
    Whole(String, Fresh),
}

/// A package read and placed now: its position in the new list, it, its placement.
type Placed = (usize, Arc<LoadedPkg>, PkgPlacement);

/// Plans `fnames` against the base view `from` and its stored plan.
pub(super) fn plan(
    pool: &Pool,
    from: &str,
    stored: &StoredPlan,
    fnames: &[String],
    policy: &Policy,
    owners: &OwnerSources,
) -> Result<Outcome> {
    let whole = |why: String| Ok(Outcome::Whole(why, Fresh::new()));
    let Ok(Some(meta)) = ViewMeta::read(&pool.views_dir().join(from)) else {
        return whole(format!("cannot read the {VIEW_META} of view {from}"));
    };
    let rules: Vec<(String, String)> = meta
        .rules
        .iter()
        .map(|r| (r.from.clone(), r.to.clone()))
        .collect();
    if stored.pkgs.len() != meta.packages.len()
        || stored
            .pkgs
            .iter()
            .zip(&meta.packages)
            .any(|(p, f)| &p.0 != f)
        || stored.rules != rules
        || rules != policy.rules()
    {
        return whole(format!(
            "the stored plan of {from} does not match its view or the relocation rules"
        ));
    }
    let (kept, added) = classify(pool, stored, fnames);
    let fresh: Vec<Placed> = added
        .par_iter()
        .map(|&ni| {
            let p = load_package(&pool.packages_dir().join(&fnames[ni]))?;
            let pl = place_package(ni, &p, policy)?;
            Ok((ni, Arc::new(p), pl))
        })
        .collect::<Result<_>>()?;
    let give_up = |why: String, fresh: Vec<Placed>| {
        Ok(Outcome::Whole(
            why,
            fresh
                .into_iter()
                .map(|(ni, p, pl)| (fnames[ni].clone(), (p, pl)))
                .collect(),
        ))
    };
    if !kept.windows(2).all(|w| w[0].1 < w[1].1) {
        return give_up("the kept packages are in another order".into(), fresh);
    }
    let kept_old: HashSet<usize> = kept.iter().map(|k| k.1).collect();
    let gone = (0..stored.pkgs.len())
        .filter(|oi| !kept_old.contains(oi))
        .collect::<Vec<_>>()
        .par_iter()
        .map(|&oi| {
            let (fname, _, blob) = &stored.pkgs[oi];
            planstore::decode_placement(blob, oi, pool.packages_dir().join(fname), fname, policy)
                .map(|(p, pl)| (oi, Arc::new(p), pl))
        })
        .collect::<Result<Vec<_>>>();
    let gone = match gone {
        Ok(g) => g,
        Err(e) => return give_up(format!("{e:#}"), fresh),
    };
    let a = changed_paths(fresh.iter().chain(&gone));
    let (scanned, below) = match scan_kept(pool, stored, &kept, policy, &a) {
        Ok(s) => s,
        Err(e) => return give_up(format!("{e:#}"), fresh),
    };

    // The two restricted inputs, in list order.
    let mut new_in: Vec<Option<(Arc<LoadedPkg>, PkgPlacement)>> =
        (0..fnames.len()).map(|_| None).collect();
    let mut old_in: Vec<Option<(Arc<LoadedPkg>, PkgPlacement)>> =
        (0..stored.pkgs.len()).map(|_| None).collect();
    for (ni, p, pl) in fresh {
        new_in[ni] = Some((p, pl));
    }
    for (oi, p, pl) in gone {
        old_in[oi] = Some((p, pl));
    }
    for ((ni, oi), (p, pl)) in kept.iter().zip(scanned) {
        old_in[*oi] = Some((p.clone(), reindex(&pl, *oi)));
        new_in[*ni] = Some((p, pl));
    }
    let (new_pkgs, new_placed): (Vec<_>, Vec<_>) = new_in.into_iter().flatten().unzip();
    let (old_pkgs, old_placed): (Vec<_>, Vec<_>) = old_in.into_iter().flatten().unzip();
    let base_owners = OwnerSources {
        fixed: Some((meta.users.clone(), meta.groups.clone())),
        ..Default::default()
    };
    let (old, new) = rayon::join(
        || assemble(old_pkgs, old_placed, policy.clone(), &base_owners, &below),
        || assemble(new_pkgs, new_placed, policy.clone(), owners, &below),
    );
    // From here a reason to plan whole costs reading the added packages
    // again (they went into the restricted plan): all rare.
    match (old, new) {
        (Ok(old), Ok(new)) => Ok(finish(from, &meta, stored, old, new, kept.len())
            .map_or_else(|why| Outcome::Whole(why, Fresh::new()), Outcome::Done)),
        // The whole plan says what is wrong, in its own words.
        (Err(e), _) | (_, Err(e)) => whole(format!("{e:#}")),
    }
}

/// The packages of the new list that the base has too, the same file
/// (new position, base position), and the others (new positions).
fn classify(
    pool: &Pool,
    stored: &StoredPlan,
    fnames: &[String],
) -> (Vec<(usize, usize)>, Vec<usize>) {
    let old_pos: HashMap<&str, usize> = stored
        .pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.0.as_str(), i))
        .collect();
    let mut kept = Vec::new();
    let mut added = Vec::new();
    for (ni, f) in fnames.iter().enumerate() {
        match old_pos.get(f.as_str()) {
            Some(&oi)
                if FileId::of(&pool.packages_dir().join(f)).ok().as_ref()
                    == Some(&stored.pkgs[oi].1) =>
            {
                kept.push((ni, oi))
            }
            _ => added.push(ni),
        }
    }
    (kept, added)
}

/// A: the paths the added and removed packages place, their header files,
/// the generated files and the owner tables' sources, closed under parents.
fn changed_paths<'a>(changed: impl Iterator<Item = &'a Placed>) -> HashSet<String> {
    let mut a: HashSet<String> = HashSet::new();
    let mut add = |rel: &str| {
        let mut r = rel;
        while a.insert(r.to_string()) && !r.is_empty() {
            r = parent_of(r);
        }
    };
    for (_, p, pl) in changed {
        for (rel, _) in &pl.nodes {
            add(rel);
        }
        add(&format!("{HEADER_DIR}/{}.rpm", p.fname));
    }
    for rel in [
        relocate::ROOT_CONF,
        relocate::VAR_CONF,
        VIEW_META,
        "lib/reimage",
        "etc/passwd",
        "etc/group",
        "lib/sysusers.d",
        HEADER_DIR,
    ] {
        add(rel);
    }
    a
}

/// The kept packages' entries inside `a` (and under `lib/sysusers.d/` and
/// the header directory), placed at their new positions; and for the
/// entries left out, their nearest ancestor in `a` ("" is always in it)
/// with a description of the first entry below it.
#[allow(clippy::type_complexity)]
fn scan_kept(
    pool: &Pool,
    stored: &StoredPlan,
    kept: &[(usize, usize)],
    policy: &Policy,
    a: &HashSet<String>,
) -> Result<(
    Vec<(Arc<LoadedPkg>, PkgPlacement)>,
    BTreeMap<String, String>,
)> {
    let header_prefix = format!("{HEADER_DIR}/");
    let pick = |rel: &str| {
        a.contains(rel) || rel.starts_with("lib/sysusers.d/") || rel.starts_with(&header_prefix)
    };
    type Scanned = (Arc<LoadedPkg>, PkgPlacement, Vec<(String, String)>);
    let scanned = kept
        .par_iter()
        .map(|&(ni, oi)| -> Result<Scanned> {
            let (fname, _, blob) = &stored.pkgs[oi];
            let mut marks: Vec<(String, String)> = Vec::new();
            let mut last_parent: Option<String> = None;
            let (p, pl) = planstore::decode_some(
                blob,
                ni,
                pool.packages_dir().join(fname),
                fname,
                policy,
                &pick,
                &mut |rel| {
                    let parent = parent_of(rel);
                    if last_parent.as_deref() == Some(parent) {
                        return;
                    }
                    let mut q = parent;
                    while !a.contains(q) {
                        q = parent_of(q);
                    }
                    if !marks.iter().any(|(m, _)| m == q) {
                        marks.push((q.to_string(), rel.to_string()));
                    }
                    last_parent = Some(parent.to_string());
                },
            )?;
            Ok((Arc::new(p), pl, marks))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut below: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(scanned.len());
    for (p, pl, marks) in scanned {
        for (q, rel) in marks {
            below
                .entry(q)
                .or_insert_with(|| format!("/usr/{rel} (from {})", p.nevra));
        }
        out.push((p, pl));
    }
    Ok((out, below))
}

/// The whole new view's summary and owner tables from the base's and the
/// two restricted plans; Err: why to plan whole instead.
fn finish(
    from: &str,
    meta: &ViewMeta,
    stored: &StoredPlan,
    mut old: Plan,
    mut new: Plan,
    kept: usize,
) -> std::result::Result<Box<Incremental>, String> {
    old.partial = true;
    new.partial = true;
    let minus = Summary::of(old.nodes.values());
    let plus = Summary::of(new.nodes.values());
    let summary = stored.summary.apply(&minus, &plus).ok_or_else(|| {
        format!("the stored plan of {from} does not count what its packages place")
    })?;
    // Owner ids: every name the whole view uses, from the new tables; the
    // entries outside the changed paths keep the base's ids, so those must
    // not change.
    let (tu, tg) = new.tables.clone();
    for (names, table, base, what) in [
        (&summary.users, &tu, &meta.users, "user"),
        (&summary.groups, &tg, &meta.groups, "group"),
    ] {
        for (name, id) in base {
            if names.contains_key(name) && table.get(name).copied().unwrap_or(0) != *id {
                return Err(format!("{what} {name} has another id than in {from}"));
            }
        }
    }
    let mut unknown = BTreeSet::new();
    new.users = ids(summary.users.keys(), &tu, "user", &mut unknown);
    new.groups = ids(summary.groups.keys(), &tg, "group", &mut unknown);
    new.unknown_owners = unknown.into_iter().collect();
    // Most of the view changing: composing whole is cheaper (the same
    // rule as for a whole plan, view.json counted on both sides).
    let changed = diff_plans(&old, &new).create.len() + 1;
    if changed * 2 > summary.entries as usize + 1 {
        return Err(format!(
            "{changed} of {} entries change",
            summary.entries + 1
        ));
    }
    Ok(Box::new(Incremental {
        old,
        new,
        summary,
        kept,
    }))
}

/// A copy of a placement for package number `pi` of another list.
fn reindex(pl: &PkgPlacement, pi: usize) -> PkgPlacement {
    PkgPlacement {
        nodes: pl
            .nodes
            .iter()
            .map(|(rel, n)| {
                let mut n: Node = n.clone();
                n.pkg = Some(pi);
                if let Data::File { pkg, .. } = &mut n.data {
                    *pkg = pi;
                }
                (rel.clone(), n)
            })
            .collect(),
        relocations: pl.relocations.clone(),
        refused: pl.refused.clone(),
        placed: pl.placed.clone(),
        blob: pl.blob.clone(),
    }
}
