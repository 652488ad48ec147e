//! Boot: the ESP (a mounted directory or a FAT image written with mtools,
//! never mounted), Boot Loader Specification entries per deployment, the
//! initrd, and boot counting (docs/boot.md).
//!
//! ```text
//! ESP/loader/loader.conf                     timeout; no `default` line (see entries.rs)
//! ESP/loader/entries/reimage-ID[+LEFT[-DONE]].conf
//! ESP/reimage/vmlinuz-SHA16, initrd-SHA16    by content, shared by deployments
//! ESP/EFI/BOOT/BOOTX64.EFI, EFI/systemd/     systemd-boot
//! ```
//!
//! [`apply`] makes the ESP hold exactly the wanted entries with the default
//! sorting first. It is idempotent: the deployment state record is the
//! commit point, and the ESP is brought in line with it after every change
//! (and again by the next writer, when a crash came in between). Until
//! then the ESP still boots the previous default, which exists.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::util::report::Reporter;

pub mod entries;
pub mod esp;
pub mod initrd;

use entries::{Counter, Entry};
use esp::Esp;

/// Where entries live on the ESP.
pub const ENTRIES_DIR: &str = "/loader/entries";
/// Where kernels and initrds live on the ESP.
pub const FILES_DIR: &str = "/reimage";

/// One wanted entry.
#[derive(Debug, Clone)]
pub struct Want {
    pub id: u64,
    pub title: String,
    /// The view (its `lib/modules/KVER/vmlinuz` is the kernel).
    pub view: PathBuf,
    /// The kernel command line.
    pub options: String,
}

/// What the ESP should hold.
#[derive(Debug, Clone)]
pub struct Plan {
    pub entries: Vec<Want>,
    /// The entry that must sort first.
    pub default: Option<u64>,
    /// Tries a new entry gets.
    pub tries: u32,
    /// An entry made the default on purpose (a rollback to it): when it has
    /// no tries left it gets a fresh count. Any other exhausted entry keeps
    /// its state: that is how a fallback is recognised (`boot check`).
    pub retry: Option<u64>,
}

/// An entry as found on the ESP.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub id: u64,
    pub file: String,
    pub counter: Counter,
    pub rank: u64,
    pub linux: String,
    pub initrd: String,
    pub options: String,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub written: Vec<String>,
    pub removed: Vec<String>,
    pub files_written: Vec<String>,
    pub files_removed: Vec<String>,
}

/// The reimage entries on the ESP, by id.
pub fn read_entries(esp: &Esp) -> Result<BTreeMap<u64, Found>> {
    let mut out = BTreeMap::new();
    for name in esp.list(ENTRIES_DIR)? {
        let Some((id, counter)) = entries::parse_name(&name) else {
            continue;
        };
        let path = format!("{ENTRIES_DIR}/{name}");
        let Some(text) = esp.read(&path)? else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        let Some(e) = Entry::parse(id, &text) else {
            bail!("{path} on the ESP ({esp}) is not an entry reimage wrote");
        };
        out.insert(
            id,
            Found {
                id,
                file: name,
                counter,
                rank: e.rank,
                linux: e.linux,
                initrd: e.initrd,
                options: e.options,
            },
        );
    }
    Ok(out)
}

/// The entry systemd-boot will boot first.
pub fn first_entry(found: &BTreeMap<u64, Found>) -> Option<u64> {
    let v: Vec<(u64, Counter, u64)> = found.values().map(|f| (f.id, f.counter, f.rank)).collect();
    entries::first(&v)
}

fn sha16(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(data)[..8])
}

/// Writes an entry under its counter's name.
fn write_entry(esp: &Esp, e: &Entry, c: Counter) -> Result<String> {
    let name = entries::file_name(e.id, c);
    esp.write(&format!("{ENTRIES_DIR}/{name}"), e.render().as_bytes())?;
    Ok(name)
}

/// Makes the ESP hold exactly `plan`'s entries (new ones with their kernel
/// and initrd, stored once by content), the default sorting first; removes
/// other reimage entries and the files no entry uses.
pub fn apply(esp: &Esp, plan: &Plan, reporter: &dyn Reporter) -> Result<Applied> {
    let mut done = Applied::default();
    esp.mkdir_p(ENTRIES_DIR)?;
    esp.mkdir_p(FILES_DIR)?;
    let mut found = read_entries(esp)?;
    let mut max_rank = found.values().map(|f| f.rank).max().unwrap_or(0);
    let mut present: Vec<String> = esp.list(FILES_DIR)?;

    // 1. New entries: kernel and initrd first, then the entry.
    for w in &plan.entries {
        if found.contains_key(&w.id) {
            continue;
        }
        let kernel = initrd::kernel_of(&w.view)?;
        let vmlinuz = std::fs::read(&kernel.vmlinuz)
            .with_context(|| format!("cannot read {}", kernel.vmlinuz.display()))?;
        let init = initrd::find_init(&w.view)?;
        let (image, built) = initrd::build(&kernel, &init)?;
        reporter.note(&format!(
            "deployment {}: kernel {}, initrd of {} modules ({} bytes, /init from {})",
            w.id,
            kernel.version,
            built.modules.len(),
            built.bytes,
            init.display()
        ));
        let files = [
            (format!("vmlinuz-{}", sha16(&vmlinuz)), vmlinuz),
            (format!("initrd-{}", sha16(&image)), image),
        ];
        let need: u64 = files
            .iter()
            .filter(|(n, _)| !present.iter().any(|p| p.eq_ignore_ascii_case(n)))
            .map(|(_, d)| d.len() as u64)
            .sum();
        let free = esp.free()?;
        if need + (64 << 10) > free {
            bail!(
                "the ESP ({esp}) has {free} bytes free, the kernel and initrd of deployment {} need {need}: remove old deployments (reimage cleanup) or grow the ESP",
                w.id
            );
        }
        for (name, data) in &files {
            if !present.iter().any(|p| p.eq_ignore_ascii_case(name)) {
                esp.write(&format!("{FILES_DIR}/{name}"), data)?;
                crate::util::failpoint::hit("boot.file");
                done.files_written.push(name.clone());
                present.push(name.clone());
            }
        }
        let is_default = plan.default == Some(w.id);
        let rank = if is_default { max_rank + 1 } else { 0 };
        max_rank = max_rank.max(rank);
        let e = Entry {
            id: w.id,
            title: w.title.clone(),
            rank,
            linux: format!("{FILES_DIR}/{}", files[0].0),
            initrd: format!("{FILES_DIR}/{}", files[1].0),
            options: w.options.clone(),
        };
        let c = Counter::Counting {
            left: plan.tries,
            done: 0,
        };
        let name = write_entry(esp, &e, c)?;
        crate::util::failpoint::hit("boot.entry");
        done.written.push(name.clone());
        found.insert(
            w.id,
            Found {
                id: w.id,
                file: name,
                counter: c,
                rank,
                linux: e.linux,
                initrd: e.initrd,
                options: e.options,
            },
        );
    }

    // 2. The default sorts first: its rank above every other; rolled back
    // to with no tries left, it gets a fresh count (a new try).
    if let Some(d) = plan.default {
        let f = found
            .get(&d)
            .with_context(|| format!("deployment {d} has no boot entry"))?
            .clone();
        let others = found
            .values()
            .filter(|o| o.id != d)
            .map(|o| o.rank)
            .max()
            .unwrap_or(0);
        let retry = plan.retry == Some(d) && f.counter.exhausted();
        if f.rank <= others || retry {
            let want = plan.entries.iter().find(|w| w.id == d);
            let e = Entry {
                id: d,
                title: want.map_or_else(|| format!("deployment {d}"), |w| w.title.clone()),
                rank: others.max(max_rank) + 1,
                linux: f.linux.clone(),
                initrd: f.initrd.clone(),
                options: f.options.clone(),
            };
            let c = if retry {
                Counter::Counting {
                    left: plan.tries,
                    done: 0,
                }
            } else {
                f.counter
            };
            // Under a new name, the old one goes after: never no entry.
            let name = write_entry(esp, &e, c)?;
            if name != f.file {
                esp.remove(&format!("{ENTRIES_DIR}/{}", f.file))?;
            }
            crate::util::failpoint::hit("boot.default");
            done.written.push(name.clone());
            found.insert(
                d,
                Found {
                    file: name,
                    counter: c,
                    rank: e.rank,
                    ..f
                },
            );
        }
    }

    // 3. Entries of deployments that are gone, then unused files.
    remove_unused(esp, plan, &mut found, &mut done)?;
    esp.sync()?;
    Ok(done)
}

/// Removes the entries `plan` does not want, then the kernels and initrds
/// no remaining entry uses.
fn remove_unused(
    esp: &Esp,
    plan: &Plan,
    found: &mut BTreeMap<u64, Found>,
    done: &mut Applied,
) -> Result<()> {
    let keep: Vec<u64> = plan.entries.iter().map(|w| w.id).collect();
    for f in found.values().filter(|f| !keep.contains(&f.id)) {
        esp.remove(&format!("{ENTRIES_DIR}/{}", f.file))?;
        done.removed.push(f.file.clone());
    }
    found.retain(|id, _| keep.contains(id));
    let used: Vec<String> = found
        .values()
        .flat_map(|f| [f.linux.clone(), f.initrd.clone()])
        .filter_map(|p| p.rsplit('/').next().map(str::to_string))
        .collect();
    for name in esp.list(FILES_DIR)? {
        let ours = name.starts_with("vmlinuz-") || name.starts_with("initrd-");
        if ours && !used.iter().any(|u| u.eq_ignore_ascii_case(&name)) {
            esp.remove(&format!("{FILES_DIR}/{name}"))?;
            done.files_removed.push(name);
        }
    }
    Ok(())
}

/// Installs systemd-boot on the ESP (`EFI/BOOT/BOOTX64.EFI`, the removable
/// media path firmware boots without a boot variable, and
/// `EFI/systemd/systemd-bootx64.efi`) and a `loader.conf` without a
/// `default` line. `efi` is the binary. Returns where it came from.
pub fn install_loader(esp: &Esp, efi: &Path, timeout: u32) -> Result<()> {
    let bin = std::fs::read(efi).with_context(|| format!("cannot read {}", efi.display()))?;
    for d in ["/EFI/BOOT", "/EFI/systemd", "/loader/entries", FILES_DIR] {
        esp.mkdir_p(d)?;
    }
    esp.write("/EFI/systemd/systemd-bootx64.efi", &bin)?;
    esp.write("/EFI/BOOT/BOOTX64.EFI", &bin)?;
    esp.write(
        "/loader/loader.conf",
        format!(
            "# Written by reimage. No `default` line: the default is the entry that sorts\n\
             # first (docs/boot.md).\ntimeout {timeout}\neditor no\n"
        )
        .as_bytes(),
    )?;
    esp.sync()
}

/// systemd-boot's EFI binary: the view's when a package ships it, else the
/// host's (`systemd-boot-efi`). Returns the path and which it is.
pub fn find_loader(view: &Path) -> Result<(PathBuf, &'static str)> {
    const REL: &str = "lib/systemd/boot/efi/systemd-bootx64.efi";
    let in_view = view.join(REL);
    if in_view.is_file() {
        return Ok((in_view, "the view"));
    }
    let host = Path::new("/usr").join(REL);
    if host.is_file() {
        return Ok((host, "the host (systemd-boot-efi)"));
    }
    bail!(
        "no systemd-boot EFI binary: neither the view ({}) nor this host ({}) has one (add systemd-boot-efi to the package list, or apt-get install systemd-boot-efi)",
        in_view.display(),
        host.display()
    )
}
