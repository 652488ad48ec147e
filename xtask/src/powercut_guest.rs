//! The power-cut guest: the installed view's kernel and an initramfs of
//! static busybox, the modules for virtio, btrfs and vfat (dependencies
//! first, from each module's `depends=`), the host's release `reimage` with
//! the libraries `ldd` names, the workload's packages and `/init`.
use crate::cmd;
use crate::cpio::{archive, Entry};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the guest loads (with their dependencies).
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "btrfs",
    "vfat",
    "nls_cp437",
    "nls_iso8859_1",
    "nls_utf8",
    "nls_ascii",
];

/// The guest's `/init`. `powercut=control` (kernel command line): on a
/// blank disk, one block written and flushed, one written (O_DIRECT, so
/// the disk acknowledged it) and not flushed, then wait for the cut.
/// `powercut=work`: the workload, one line before and after each operation.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sysroot /efi
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "powercut: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1)); [ $i -gt 400 ] && { echo "powercut: no /dev/vda"; poweroff -f; }
    sleep 0.05
done
mode=$(sed -n 's/.*powercut=\([a-z]*\).*/\1/p' /proc/cmdline)
if [ "$mode" = control ]; then
    printf 'powercut-synced\n' | dd of=/dev/vda bs=4096 seek=1 conv=sync,fsync oflag=direct 2>/dev/null
    printf 'powercut-unsynced\n' | dd of=/dev/vda bs=4096 seek=100 conv=sync oflag=direct 2>/dev/null
    echo "powercut: control written"
    while :; do sleep 1; done
fi
i=0
while [ ! -b /dev/vda2 ]; do
    i=$((i + 1)); [ $i -gt 400 ] && { echo "powercut: no /dev/vda2"; poweroff -f; }
    sleep 0.05
done
mount -t btrfs /dev/vda2 /sysroot || { echo "powercut: cannot mount the btrfs"; poweroff -f; }
mount -t vfat /dev/vda1 /efi || { echo "powercut: cannot mount the ESP"; poweroff -f; }
P="reimage --quiet --pool /sysroot/pool"
op() {
    n=$1; shift
    echo "powercut: op $n start"
    "$@"
    echo "powercut: op $n exit $?"
}
echo "powercut: workload start"
op import $P import $(cat /imports)
op compose $P compose v2 --from system $(cat /specs)
op deploy $P deploy v2 --sysroot /sysroot --esp /efi
op rollback $P rollback --sysroot /sysroot --esp /efi
op gc $P gc
echo "powercut: workload done"
umount /efi
umount /sysroot
sync
poweroff -f
"#;

/// A module's name from its file name.
fn module_name(file: &str) -> Option<String> {
    Some(file.strip_suffix(".ko")?.replace('-', "_"))
}

fn index(dir: &Path, into: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            index(&p, into)?;
        } else if let Some(n) = module_name(&e.file_name().to_string_lossy()) {
            into.entry(n).or_insert(p);
        }
    }
    Ok(())
}

fn depends(ko: &[u8]) -> Vec<String> {
    ko.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"depends="))
        .map(|d| {
            String::from_utf8_lossy(d)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// The modules to load, dependencies first.
fn resolve(modules: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = BTreeMap::new();
    index(modules, &mut files)?;
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    fn visit(
        n: &str,
        files: &BTreeMap<String, PathBuf>,
        out: &mut Vec<(String, Vec<u8>)>,
        depth: usize,
    ) -> Result<()> {
        if out.iter().any(|(m, _)| m == n) || depth > 32 {
            return Ok(());
        }
        let Some(p) = files.get(n) else {
            // Built into the kernel.
            return Ok(());
        };
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        for d in depends(&bytes) {
            visit(&d, files, out, depth + 1)?;
        }
        if !out.iter().any(|(m, _)| m == n) {
            out.push((n.to_string(), bytes));
        }
        Ok(())
    }
    for m in MODULES {
        visit(m, &files, &mut out, 0)?;
    }
    for want in ["virtio_blk", "btrfs", "vfat"] {
        if !out.iter().any(|(m, _)| m == want) && files.is_empty() {
            bail!("no module {want} under {}", modules.display());
        }
    }
    Ok(out)
}

/// The shared libraries `ldd` names for `bin`.
fn libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = cmd::run_capture(Command::new("ldd").arg(bin))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let p = l.split("=>").last()?.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect())
}

struct Tree {
    entries: Vec<Entry>,
}

impl Tree {
    fn dir(&mut self, name: &str) {
        let mut acc = String::new();
        for part in name.trim_matches('/').split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            if !self.entries.iter().any(|e| e.name == acc) {
                self.push(&acc.clone(), 0o040755, Vec::new());
            }
        }
    }
    fn file(&mut self, name: &str, mode: u32, data: Vec<u8>) {
        let name = name.trim_start_matches('/');
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent);
        }
        self.push(name, 0o100000 | mode, data);
    }
    fn push(&mut self, name: &str, mode: u32, data: Vec<u8>) {
        let ino = self.entries.len() as u32 + 1;
        self.entries.push(Entry {
            name: name.to_string(),
            mode,
            ino,
            nlink: if mode & 0o040000 != 0 { 2 } else { 1 },
            mtime: 1_700_000_000,
            data,
        });
    }
}

/// The kernel (copied out of the installed view) and the initramfs.
pub fn build(
    dir: &Path,
    base: &Path,
    bin: &Path,
    imports: &[PathBuf],
    specs: &[String],
) -> Result<(PathBuf, PathBuf)> {
    let busybox = Path::new("/bin/busybox");
    let kind = cmd::run_capture(Command::new("file").arg("-L").arg(busybox))?;
    if !kind.contains("statically linked") {
        bail!(
            "{} is not statically linked ({kind}): install busybox-static",
            busybox.display()
        );
    }
    let mnt = dir.join("mnt");
    let a = super::check::Attached::new(base, &mnt, true)?;
    let mods = a.mnt.join("pool/views/system/lib/modules");
    let kver = crate::boot::file_names(&mods)?
        .into_iter()
        .find(|v| mods.join(v).join("vmlinuz").is_file())
        .with_context(|| format!("no lib/modules/KVER/vmlinuz in {}", mods.display()))?;
    let kernel = dir.join("vmlinuz");
    std::fs::copy(mods.join(&kver).join("vmlinuz"), &kernel)?;
    let modules = resolve(&mods.join(&kver))?;
    drop(a);

    let mut t = Tree {
        entries: Vec::new(),
    };
    for d in [
        "bin", "dev", "proc", "sys", "tmp", "run", "sysroot", "efi", "root", "etc",
    ] {
        t.dir(d);
    }
    t.file("bin/busybox", 0o755, std::fs::read(busybox)?);
    // Without its debug information (the release profile keeps it).
    let stripped = dir.join("reimage.stripped");
    cmd::run_capture(Command::new("strip").arg("-o").arg(&stripped).arg(bin))?;
    t.file("bin/reimage", 0o755, std::fs::read(&stripped)?);
    for lib in libraries(bin)? {
        let data = std::fs::read(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
        t.file(&lib.to_string_lossy(), 0o755, data);
    }
    for f in ["etc/passwd", "etc/group"] {
        t.file(f, 0o644, std::fs::read(Path::new("/").join(f))?);
    }
    let mut order = String::new();
    for (name, bytes) in modules {
        order.push_str(&name);
        order.push('\n');
        t.file(&format!("modules/{name}.ko"), 0o644, bytes);
    }
    t.file("modules/order", 0o644, order.into_bytes());
    let mut list = String::new();
    for p in imports {
        let name = crate::boot::file_name(p);
        t.file(&format!("pkgs/{name}"), 0o644, std::fs::read(p)?);
        list.push_str(&format!("/pkgs/{name}\n"));
    }
    t.file("imports", 0o644, list.into_bytes());
    t.file("specs", 0o644, (specs.join("\n") + "\n").into_bytes());
    t.file("init", 0o755, INIT.as_bytes().to_vec());
    let initrd = dir.join("initrd.cpio");
    std::fs::write(&initrd, archive(&t.entries))?;
    eprintln!(
        "powercut: guest: kernel {kver}, initramfs {} bytes ({} entries)",
        std::fs::metadata(&initrd)?.len(),
        t.entries.len()
    );
    Ok((kernel, initrd))
}
