//! The state record of a system (`SYSROOT/reimage/state.json`): every
//! deployment, which one is the default, the retention setting. Written
//! whole to a temporary file, fsynced and renamed over the old one: changing
//! the default is that one rename (docs/deploy.md, "Atomicity").
//!
//! Once boot entries exist (docs/boot.md), the default is what the boot
//! loader will choose from the ESP; this record mirrors it, and `status` and
//! `fsck` recompute it from there.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The format version of `state.json`.
pub const STATE_FORMAT: u32 = 1;
/// Deployments kept besides the booted, the default and the pinned ones.
pub const DEFAULT_RETAIN: usize = 2;

/// What a deployment follows for updates (set by `install --from` or the
/// first `sync`; `upgrade` follows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub source: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The keyring its manifests must be signed by (`install --keyring`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<std::path::PathBuf>,
}

/// One deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// A number, never reused (`reimage/deployments/ID`, `reimage-ID.conf`).
    pub id: u64,
    /// The view that is its `/usr`.
    pub view: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The view whose `etc/` its `/etc` was last merged against (the next
    /// merge's "old defaults").
    pub merge_base: String,
    /// The deployment whose `/etc` was the local side of its merge (the
    /// booted one, offline the default then); `finalize` merges from it
    /// again when it is not booted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
    #[serde(default)]
    pub pinned: bool,
    /// Why it failed to boot, once it did (boot counting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    pub packages: usize,
    /// Extra kernel command line arguments of its boot entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
}

/// Where the system boots from (set by `install`, or `deploy --esp` once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootConfig {
    /// The ESP as the running system sees it (its mount point, e.g.
    /// `/boot/efi`); offline tools name theirs with `--esp`.
    pub esp: String,
    /// The ESP's FAT volume id (fstab's `UUID=`).
    pub esp_uuid: String,
    /// Tries a new entry gets (boot counting).
    pub tries: u32,
}

/// The whole record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// The pool, relative to the sysroot (it lives on the same filesystem).
    pub pool: PathBuf,
    pub next_id: u64,
    pub retain: usize,
    /// The deployment the next boot starts.
    pub default: Option<u64>,
    /// In creation order.
    pub deployments: Vec<Deployment>,
    /// Boot entries are written when this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootConfig>,
}

impl State {
    pub const FILE: &'static str = "state.json";

    pub fn new(pool: PathBuf) -> State {
        State {
            format: STATE_FORMAT,
            pool,
            next_id: 1,
            retain: DEFAULT_RETAIN,
            default: None,
            deployments: Vec::new(),
            boot: None,
        }
    }

    /// Reads `dir/state.json`.
    pub fn read(dir: &Path) -> Result<State> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the state record {}", path.display()))?;
        let s: State = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid state record", path.display()))?;
        if s.format != STATE_FORMAT {
            bail!(
                "{}: state format {} is not supported (this reimage reads {STATE_FORMAT})",
                path.display(),
                s.format
            );
        }
        s.check().with_context(|| path.display().to_string())?;
        Ok(s)
    }

    /// The invariants a record must hold.
    fn check(&self) -> Result<()> {
        let mut ids: Vec<u64> = self.deployments.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            bail!("a deployment id appears twice");
        }
        if ids.last().is_some_and(|&m| m >= self.next_id) {
            bail!("next_id {} is not above every deployment id", self.next_id);
        }
        if let Some(d) = self.default {
            if self.get(d).is_none() {
                bail!("the default deployment {d} is not in the record");
            }
        }
        Ok(())
    }

    /// Writes `dir/state.json` atomically (temporary file, fsync, rename,
    /// fsync of the directory).
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.check()?;
        let text = serde_json::to_string_pretty(self)? + "\n";
        crate::util::atomic::write_atomic(&dir.join(Self::FILE), text.as_bytes())
    }

    pub fn get(&self, id: u64) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    /// `id` or a clear error naming the ones there are.
    pub fn require(&self, id: u64) -> Result<&Deployment> {
        self.get(id).ok_or_else(|| {
            let have: Vec<String> = self.deployments.iter().map(|d| d.id.to_string()).collect();
            anyhow::anyhow!(
                "there is no deployment {id} (deployments: {})",
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )
        })
    }

    /// The deployment a rollback makes the default: the newest one older
    /// than the default that has not failed.
    pub fn previous(&self) -> Option<&Deployment> {
        let cur = self.default?;
        self.deployments
            .iter()
            .rev()
            .filter(|d| d.id < cur && d.failed.is_none())
            .max_by_key(|d| d.id)
    }

    /// The views the deployments use (gc roots, rm-view refusals).
    pub fn views(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .deployments
            .iter()
            .flat_map(|d| [d.view.clone(), d.merge_base.clone()])
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Which deployments the retention rule keeps: the booted, the default,
    /// the pinned, and the `retain` newest others.
    pub fn kept(&self, booted: Option<u64>) -> Vec<u64> {
        let mut keep: Vec<u64> = self
            .deployments
            .iter()
            .filter(|d| Some(d.id) == booted || Some(d.id) == self.default || d.pinned)
            .map(|d| d.id)
            .collect();
        let others: Vec<u64> = self
            .deployments
            .iter()
            .rev()
            .map(|d| d.id)
            .filter(|id| !keep.contains(id))
            .take(self.retain)
            .collect();
        keep.extend(others);
        keep.sort_unstable();
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: u64) -> Deployment {
        Deployment {
            id,
            view: format!("v{id}"),
            created: id,
            merge_base: format!("v{id}"),
            base: None,
            pinned: false,
            failed: None,
            origin: None,
            packages: 1,
            kernel_args: Vec::new(),
        }
    }

    #[test]
    fn previous_skips_failed_and_newer() {
        let mut s = State::new("pool".into());
        s.deployments = (1..=4).map(dep).collect();
        s.next_id = 5;
        s.default = Some(4);
        assert_eq!(s.previous().map(|d| d.id), Some(3));
        s.get_mut(3).unwrap().failed = Some("health check".into());
        assert_eq!(s.previous().map(|d| d.id), Some(2));
        s.default = Some(1);
        assert_eq!(s.previous(), None);
    }

    #[test]
    fn retention_keeps_booted_default_pinned_and_n_more() {
        let mut s = State::new("pool".into());
        s.deployments = (1..=7).map(dep).collect();
        s.next_id = 8;
        s.default = Some(7);
        s.get_mut(1).unwrap().pinned = true;
        assert_eq!(s.kept(Some(3)), vec![1, 3, 5, 6, 7]);
        s.retain = 0;
        assert_eq!(s.kept(None), vec![1, 7]);
    }

    #[test]
    fn records_that_lie_are_refused() {
        let mut s = State::new("pool".into());
        s.deployments = vec![dep(1), dep(1)];
        s.next_id = 2;
        assert!(s.check().is_err());
        s.deployments = vec![dep(3)];
        assert!(s.check().is_err(), "next_id below an id");
        s.next_id = 4;
        s.default = Some(9);
        assert!(s.check().is_err(), "a default that is not there");
    }
}
