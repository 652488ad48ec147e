//! The `/etc` merge of a deployment on disk: reads the three trees, merges
//! them with the `etc-merge` crate's rules, and writes the result into a new
//! `etc` subvolume; the decisions are kept with the deployment's record.
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

pub use etc_merge::{Decision, Plan, Rule};

/// What a merge decided, as recorded and printed (`-v`, `--json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MergeSummary {
    /// Paths equal everywhere (or untouched and unchanged).
    pub unchanged: usize,
    /// Files kept locally with the new default beside them as `.rpmnew`.
    pub conflicts: Vec<String>,
    pub decisions: Vec<Decision>,
}

impl MergeSummary {
    fn of(plan: &Plan) -> MergeSummary {
        MergeSummary {
            unchanged: plan.unchanged,
            conflicts: plan
                .decisions
                .iter()
                .filter(|d| d.rule == Rule::Conflict)
                .map(|d| format!("/etc/{}", d.path.display()))
                .collect(),
            decisions: plan.decisions.clone(),
        }
    }
}

/// Merges `old` (old defaults), `local` and `new` (new defaults) into the
/// empty directory `dest`. A missing `local` or `old` is an empty tree (a
/// first deployment).
pub fn merge_into(old: &Path, local: &Path, new: &Path, dest: &Path) -> Result<MergeSummary> {
    let read = |p: &Path, what: &str| {
        etc_merge::read_tree(p).with_context(|| format!("cannot read the {what} {}", p.display()))
    };
    let (o, l, n) = (
        read(old, "old defaults")?,
        read(local, "local /etc")?,
        read(new, "new defaults")?,
    );
    let plan = etc_merge::merge(&o, &l, &n);
    etc_merge::write(&plan, &l, &n, dest)
        .with_context(|| format!("cannot write the merged /etc into {}", dest.display()))?;
    Ok(MergeSummary::of(&plan))
}
