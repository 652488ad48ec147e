//! What a live apply (`reimage apply-live`, src/live/) leaves on a running
//! system, read by `status` and `finalize`: the record
//! `ROOT/run/reimage/live.json` (on the tmpfs `/run`, so it goes with the
//! reboot) and the truth it is checked against, the view mounted at
//! `ROOT/usr` now. btrfs gives every subvolume its own device number, the
//! same in every mount of it, so the view at `/usr` is the pool's view with
//! that device number: a record a crash left stale never misleads.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::deploy::state::State;
use crate::store::pool::Pool;

/// The record, relative to the running root.
pub const FILE: &str = "run/reimage/live.json";
const FORMAT: u32 = 1;

/// One live apply's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub format: u32,
    /// The deployment `/` is (booted), which the view is live over.
    pub booted: u64,
    /// The deployment whose view is `/usr` now (the default for the next boot).
    pub deployment: u64,
    pub view: String,
    /// The views that were `/usr` before, oldest (the booted one's) first;
    /// they stay mounted beneath for the processes that still use them.
    pub previous: Vec<String>,
    /// Seconds since the Unix epoch.
    pub applied: u64,
}

impl Live {
    pub fn new(booted: u64, deployment: u64, view: String, previous: Vec<String>) -> Live {
        Live {
            format: FORMAT,
            booted,
            deployment,
            view,
            previous,
            applied: crate::deploy::system::now(),
        }
    }
}

pub fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

/// The record under `root`, if there is one (an unreadable one is an error).
pub fn read(root: &Path) -> Result<Option<Live>> {
    let p = path(root);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    let l: Live = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a live-apply record", p.display()))?;
    if l.format != FORMAT {
        anyhow::bail!("{}: format {} is not supported", p.display(), l.format);
    }
    Ok(Some(l))
}

pub fn write(root: &Path, live: &Live) -> Result<()> {
    let p = path(root);
    let dir = p.parent().expect("a file under run/reimage");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::util::atomic::write_atomic(&p, (serde_json::to_string_pretty(live)? + "\n").as_bytes())
}

/// The device number of a view of the pool.
pub fn view_dev(pool: &Pool, view: &str) -> Option<u64> {
    std::fs::metadata(pool.views_dir().join(view))
        .ok()
        .map(|m| m.dev())
}

/// Which of `candidates` is mounted at `root/usr` now.
pub fn usr_view(pool: &Pool, root: &Path, candidates: &[String]) -> Option<String> {
    let dev = std::fs::metadata(root.join("usr")).ok()?.dev();
    candidates
        .iter()
        .find(|v| view_dev(pool, v) == Some(dev))
        .cloned()
}

/// The live state of the running root `root` booted from deployment
/// `booted`: the record, when the view it names is what `root/usr` is now.
/// `None` when nothing was applied live (or the record is stale).
pub fn current(pool: &Pool, state: &State, root: &Path, booted: u64) -> Option<Live> {
    let live = read(root).ok().flatten()?;
    if live.booted != booted {
        return None;
    }
    let mut candidates = state.views();
    candidates.push(live.view.clone());
    (usr_view(pool, root, &candidates).as_deref() == Some(live.view.as_str())).then_some(live)
}
