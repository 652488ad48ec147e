//! The processes that still use an old `/usr` after a live apply. Their
//! paths look like the new ones (`/usr/lib/x.so` either way), so they are
//! found by device: every btrfs subvolume has its own device number, and a
//! file of the old view reports the old view's. For every process, the
//! magic links of `/proc/PID/map_files` (what it has mapped: libraries,
//! programs), `fd/`, `exe`, `cwd` and `root` are stat'ed (following them
//! to the file itself); `/proc/PID/maps` alone would not do, as it shows
//! the filesystem's device, the same for every subvolume.
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

/// A process that still uses files of an old view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub command: String,
    /// Up to [`SHOWN`] of the old files it uses, as it sees their paths.
    pub files: Vec<String>,
    /// How many old files it uses in all.
    pub count: usize,
}

/// Files listed per process.
pub const SHOWN: usize = 5;

/// The processes (other than this one) using a file whose device is one of
/// `devs`, by pid. Processes that end while being read are skipped.
pub fn using(devs: &[u64]) -> Vec<Process> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&p| p != me)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let files = old_files(&Path::new("/proc").join(pid.to_string()), devs);
        if files.is_empty() {
            continue;
        }
        let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end().to_string())
            .unwrap_or_default();
        out.push(Process {
            pid,
            command,
            count: files.len(),
            files: files.into_iter().take(SHOWN).collect(),
        });
    }
    out
}

/// The distinct paths (as the process sees them) of the files of `proc`
/// on one of `devs`.
fn old_files(proc: &Path, devs: &[u64]) -> BTreeSet<String> {
    let mut links: Vec<std::path::PathBuf> = ["exe", "cwd", "root"]
        .iter()
        .map(|l| proc.join(l))
        .collect();
    for sub in ["map_files", "fd"] {
        if let Ok(d) = std::fs::read_dir(proc.join(sub)) {
            links.extend(d.flatten().map(|e| e.path()));
        }
    }
    links
        .into_iter()
        .filter(|l| std::fs::metadata(l).is_ok_and(|m| devs.contains(&m.dev())))
        .filter_map(|l| std::fs::read_link(&l).ok())
        .map(|t| t.display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_files(pid: u32, dev: u64) -> BTreeSet<String> {
        old_files(&Path::new("/proc").join(pid.to_string()), &[dev])
    }

    #[test]
    fn a_process_holding_a_file_is_found_by_its_device() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("held");
        std::fs::write(&file, b"x").unwrap();
        let dev = std::fs::metadata(&file).unwrap().dev();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3<'{}'; read _", file.display()))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The shell opens the file before it blocks reading stdin.
        let path = file.display().to_string();
        let mut found = None;
        let mut holds = false;
        for _ in 0..100 {
            found = using(&[dev]).into_iter().find(|p| p.pid == pid);
            holds = all_files(pid, dev).contains(&path);
            if found.is_some() && holds {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(child.stdin.take());
        child.wait().unwrap();
        let p = found.expect("the child holding the file is listed");
        assert_eq!(p.command, "sh");
        assert!(holds, "the held file is among its files: {p:?}");
        assert!(using(&[u64::MAX]).is_empty(), "no file has that device");
    }
}
