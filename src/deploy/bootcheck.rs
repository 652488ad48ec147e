//! `reimage boot check`, at boot (`reimage-boot-check.service`): when
//! systemd-boot fell back because the default used up its tries, the
//! default is marked failed and the booted deployment becomes the default.
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::boot::{self, entries};
use crate::deploy::boot::{esp_of, sync};
use crate::util::report::Reporter;

/// What `boot check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub booted: Option<u64>,
    pub default: Option<u64>,
    /// The deployment marked failed now, when the boot was a fallback.
    pub failed: Option<u64>,
    pub applied: Option<boot::Applied>,
}

/// At boot: was this a fallback? If the default's entry has no tries left
/// and another deployment booted, the default failed: mark it so, and make
/// the booted deployment the default. Then bring the ESP in line.
pub fn check(sysroot: Option<&Path>, wait: bool, reporter: &dyn Reporter) -> Result<CheckReport> {
    let (sr, pool, _lock, mut state, _) =
        crate::deploy::system::open_locked(sysroot, None, false, wait)?;
    let mut report = CheckReport {
        booted: sr.booted,
        default: state.default,
        failed: None,
        applied: None,
    };
    let (Some(booted), Some(default)) = (sr.booted, state.default) else {
        report.applied = sync(&sr, &pool, &state, reporter)?;
        return Ok(report);
    };
    if booted != default {
        if let Some(esp) = esp_of(&state)? {
            let found = boot::read_entries(&esp)?;
            if let Some(f) = found.get(&default).filter(|f| f.counter.exhausted()) {
                let tries = match f.counter {
                    entries::Counter::Counting { done, .. } => done,
                    entries::Counter::Blessed => 0,
                };
                let why = format!(
                    "boot counting: {tries} boots did not reach boot-complete.target; deployment {booted} booted instead"
                );
                reporter.note(&format!(
                    "deployment {default} failed ({why}): deployment {booted} is the default again"
                ));
                if let Some(d) = state.get_mut(default) {
                    d.failed = Some(why);
                }
                state.default = Some(booted);
                crate::deploy::system::commit_state(&sr, &pool, &state)?;
                crate::util::failpoint::hit("boot.check");
                report.failed = Some(default);
                report.default = Some(booted);
            }
        }
    }
    report.applied = sync(&sr, &pool, &state, reporter)?;
    Ok(report)
}
