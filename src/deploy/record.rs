//! A deployment's record (`reimage/records/ID.json`): how it was made, for
//! `status -v`/`--json` and for a person asking later why a file is what it
//! is: the merge's decisions and the first-boot steps.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::deploy::firstboot::StepResult;
use crate::deploy::merge::MergeSummary;
use crate::deploy::state::Deployment;
use crate::deploy::sysroot::Sysroot;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub view: String,
    pub created: u64,
    /// The merge decisions (JSON of `etc_merge::Decision`s) and counts.
    pub merge: serde_json::Value,
    pub steps: serde_json::Value,
    /// Later merges (finalize, etc sync) append here.
    #[serde(default)]
    pub later: Vec<serde_json::Value>,
}

impl Record {
    pub fn new(d: &Deployment, merge: &MergeSummary, steps: &[StepResult]) -> Record {
        Record {
            id: d.id,
            view: d.view.clone(),
            created: d.created,
            merge: serde_json::to_value(merge).unwrap_or_default(),
            steps: serde_json::to_value(steps).unwrap_or_default(),
            later: Vec::new(),
        }
    }
}

pub fn write(sr: &Sysroot, id: u64, r: &Record) -> Result<()> {
    std::fs::create_dir_all(sr.records_dir())?;
    let text = serde_json::to_string_pretty(r)? + "\n";
    crate::util::atomic::write_atomic(
        &sr.records_dir().join(format!("{id}.json")),
        text.as_bytes(),
    )
}

pub fn read(sr: &Sysroot, id: u64) -> Result<Option<Record>> {
    let p = sr.records_dir().join(format!("{id}.json"));
    match std::fs::read_to_string(&p) {
        Ok(t) => {
            Ok(Some(serde_json::from_str(&t).with_context(|| {
                format!("{} is not a record", p.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

/// Appends a later merge (finalize, etc sync) to a deployment's record.
pub fn append(sr: &Sysroot, id: u64, what: &str, merge: &MergeSummary) -> Result<()> {
    let Some(mut r) = read(sr, id)? else {
        return Ok(());
    };
    r.later.push(serde_json::json!({
        "what": what,
        "time": crate::deploy::system::now(),
        "merge": merge,
    }));
    write(sr, id, &r)
}
