//! Failpoints for fault-injection tests: `REIMAGE_FAILPOINT=NAME:N` kills the
//! process with SIGKILL (as `kill -9` would: no destructors, no flush, no
//! cleanup) at the Nth time execution passes the failpoint `NAME`;
//! `REIMAGE_FAILPOINT=*:N` at the Nth failpoint passed, whatever its name.
//! `REIMAGE_FAILPOINT_LOG=FILE` appends the name of every failpoint passed
//! to FILE, one per line (how the fault suite learns how many hits an
//! uninterrupted run makes).
//!
//! The environment is read once; when neither variable is set a failpoint
//! costs one atomic load of an initialised `OnceLock` and a branch.
//!
//! Names are `OPERATION.STEP`; [`NAMES`] lists every one in the code (a unit
//! test keeps the list and the sources in step). `cargo xtask faults` and
//! `tests/faults.rs` kill each operation at every hit of every name.
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every failpoint in the code.
pub const NAMES: &[&str] = &[
    "import.staged",
    "import.placed",
    "import.synced",
    "import.renamed",
    "import.done",
    "compose.subvolume",
    "compose.snapshot-base",
    "compose.removed",
    "compose.created",
    "compose.synced",
    "compose.published",
    "compose.done",
    "dedupe.rebuilt",
    "dedupe.renamed",
    "dedupe.shared",
    "dedupe.state",
    "gc.removed",
    "gc.done",
    "sync.manifest",
    "sync.fetched",
    "sync.placed",
    "sync.synced",
    "sync.renamed",
    "sync.recorded",
    "deploy.staged",
    "deploy.merged",
    "deploy.firstboot",
    "deploy.renamed",
    "deploy.state",
    "live.etc",
    "live.mounted",
    "rollback.state",
    "boot.file",
    "boot.entry",
    "boot.default",
    "boot.check",
    "cleanup.state",
    "cleanup.removed",
    "finalize.merged",
    "finalize.exchanged",
    "etc.snapshot",
    "etc.revert-staged",
    "etc.revert-exchanged",
];

struct Config {
    /// `None`: any name (`*`).
    name: Option<String>,
    nth: u64,
    hits: AtomicU64,
    log: Option<Mutex<std::fs::File>>,
}

fn config() -> Option<&'static Config> {
    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let spec = std::env::var("REIMAGE_FAILPOINT").ok();
            let log = std::env::var_os("REIMAGE_FAILPOINT_LOG").map(|p| {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .unwrap_or_else(|e| {
                        panic!("REIMAGE_FAILPOINT_LOG={}: {e}", p.to_string_lossy())
                    });
                Mutex::new(f)
            });
            let (name, nth) = match spec.as_deref() {
                None | Some("") => (None, 0),
                Some(s) => parse(s).unwrap_or_else(|| {
                    panic!("REIMAGE_FAILPOINT={s:?}: expected NAME:N or *:N with N >= 1")
                }),
            };
            if nth == 0 && log.is_none() {
                return None;
            }
            Some(Config {
                name,
                nth,
                hits: AtomicU64::new(0),
                log,
            })
        })
        .as_ref()
}

/// `NAME:N` or `*:N` -> (name or None for any, N).
pub fn parse(spec: &str) -> Option<(Option<String>, u64)> {
    let (name, n) = spec.rsplit_once(':')?;
    let n: u64 = n.parse().ok().filter(|n| *n >= 1)?;
    match name {
        "" => None,
        "*" => Some((None, n)),
        _ => Some((Some(name.to_string()), n)),
    }
}

/// Passes the failpoint `name`: logs it when asked to, and kills the
/// process when this is the configured hit.
#[inline]
pub fn hit(name: &'static str) {
    if let Some(c) = config() {
        hit_slow(c, name);
    }
}

#[cold]
fn hit_slow(c: &Config, name: &'static str) {
    if let Some(log) = &c.log {
        let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{name}");
    }
    if c.nth == 0 || c.name.as_deref().is_some_and(|n| n != name) {
        return;
    }
    let n = c.hits.fetch_add(1, Ordering::SeqCst) + 1;
    if n == c.nth {
        eprintln!("failpoint {name} (hit {n}): killing the process");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // Not reached; in case the signal could not be sent:
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            parse("import.renamed:3"),
            Some((Some("import.renamed".into()), 3))
        );
        assert_eq!(parse("*:1"), Some((None, 1)));
        assert_eq!(parse("import.renamed:0"), None);
        assert_eq!(parse("import.renamed"), None);
        assert_eq!(parse(":2"), None);
        assert_eq!(parse("x:y"), None);
    }

    /// Every name in [`NAMES`] is used in the sources, and every
    /// `failpoint::hit("...")` in the sources is in [`NAMES`].
    #[test]
    fn names_match_the_sources() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut used = std::collections::BTreeSet::new();
        let mut files = Vec::new();
        let mut dirs = vec![src];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("failpoint.rs") {
                    files.push(p);
                }
            }
        }
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            for part in text.split("failpoint::hit(\"").skip(1) {
                used.insert(part.split('"').next().unwrap().to_string());
            }
        }
        let listed: std::collections::BTreeSet<String> =
            NAMES.iter().map(|s| s.to_string()).collect();
        assert_eq!(used, listed, "failpoint::NAMES and the sources disagree");
    }
}
