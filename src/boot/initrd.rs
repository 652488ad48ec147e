//! reimage's initrd: a newc cpio holding the static `reimage-init` as
//! `/init`, the kernel modules it needs to reach the root (from the view's
//! own `lib/modules/KVER/`, decompressed, dependencies first) and their load
//! order. The view's kernel package ships no initrd (Debian makes one in a
//! scriptlet, and reimage runs no scriptlets), so deploy builds this one; it
//! is a pure function of the init binary and the view's modules.
//!
//! ```text
//! /init                       reimage-init (static)
//! /dev/console                the console the kernel opens before /init
//! /lib/modules/load-order     one module file per line, dependencies first
//! /lib/modules/NAME.ko        decompressed
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The modules the initrd loads when the kernel has them as modules: block
/// devices (virtio, SCSI, NVMe, AHCI), btrfs and the checksum its superblock
/// needs (a soft dependency modprobe would resolve), FAT for the ESP, and
/// what systemd needs before it could load anything itself.
pub const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "nvme",
    "ahci",
    "sd_mod",
    "crc32c_generic",
    "crc32c_intel",
    "btrfs",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "nls_iso8859_1",
    // What systemd mounts before anything could load a module for it (the
    // view has no modules.dep for modprobe): efivarfs, which boot counting
    // reads (LoaderBootCountPath), and autofs for automounts.
    "efivarfs",
    "autofs4",
];

/// A kernel in a view: `lib/modules/KVER/vmlinuz`.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub version: String,
    pub vmlinuz: PathBuf,
    pub modules: PathBuf,
}

/// The view's kernel; with several, the highest version (rpm's comparison).
pub fn kernel_of(view: &Path) -> Result<Kernel> {
    let dir = view.join("lib/modules");
    let mut found: Vec<String> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if e.path().join("vmlinuz").is_file() {
                found.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found.sort_by(|a, b| sysimage::vercmp::rpmvercmp(a, b));
    let Some(version) = found.pop() else {
        bail!(
            "the view {} has no kernel (no lib/modules/KVER/vmlinuz: add a kernel package to its list)",
            view.display()
        );
    };
    Ok(Kernel {
        vmlinuz: dir.join(&version).join("vmlinuz"),
        modules: dir.join(&version),
        version,
    })
}

/// A module's name from its file name (`virtio-blk.ko.xz` -> `virtio_blk`).
fn module_name(file: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|s| file.strip_suffix(s))?;
    Some(stem.replace('-', "_"))
}

fn index_modules(dir: &Path, into: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            index_modules(&p, into)?;
        } else if let Some(n) = module_name(&e.file_name().to_string_lossy()) {
            into.entry(n).or_insert(p);
        }
    }
    Ok(())
}

/// A module file's bytes, decompressed.
fn module_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&raw[..])?.read_to_end(&mut out)
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else {
        return Ok(raw);
    }
    .with_context(|| format!("cannot decompress {}", path.display()))?;
    Ok(out)
}

/// The `depends=` of a module's `.modinfo` (NUL-separated `key=value`).
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

/// The modules to load, dependencies first, with their bytes.
pub fn resolve_modules(kernel: &Kernel, wanted: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = BTreeMap::new();
    let kdir = kernel.modules.join("kernel");
    if kdir.is_dir() {
        index_modules(&kdir, &mut files)?;
    }
    let mut order: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    fn visit(
        name: &str,
        files: &BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<(String, Vec<u8>)>,
        depth: usize,
    ) -> Result<()> {
        if depth > 64 || !seen.insert(name.to_string()) {
            return Ok(());
        }
        // Not a module: built in, or not in this kernel.
        let Some(path) = files.get(name) else {
            return Ok(());
        };
        let bytes = module_bytes(path)?;
        for d in depends(&bytes) {
            visit(&d, files, seen, order, depth + 1)?;
        }
        order.push((name.to_string(), bytes));
        Ok(())
    }
    for w in wanted {
        visit(w, &files, &mut seen, &mut order, 0)?;
    }
    Ok(order)
}

/// A newc cpio archive being written.
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
}

/// What went into an initrd.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub kernel: String,
    pub modules: Vec<String>,
    pub bytes: u64,
}

/// Builds the initrd for `kernel` with `init` (a static `reimage-init`) as
/// `/init`; returns the archive (zstd-compressed: the kernel unpacks it).
pub fn build(kernel: &Kernel, init: &Path) -> Result<(Vec<u8>, Built)> {
    let init_bytes =
        std::fs::read(init).with_context(|| format!("cannot read {}", init.display()))?;
    check_static(&init_bytes)
        .with_context(|| format!("{} cannot be the initrd's /init", init.display()))?;
    let mods = resolve_modules(kernel, MODULES)?;
    let mut c = Cpio {
        out: Vec::new(),
        ino: 0,
    };
    for d in ["dev", "proc", "sys", "run", "sysroot", "lib", "lib/modules"] {
        c.entry(d, 0o040755, (0, 0), &[]);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.entry("init", 0o100755, (0, 0), &init_bytes);
    let mut order = String::new();
    for (name, bytes) in &mods {
        let f = format!("{name}.ko");
        c.entry(&format!("lib/modules/{f}"), 0o100644, (0, 0), bytes);
        order.push_str(&f);
        order.push('\n');
    }
    c.entry("lib/modules/load-order", 0o100644, (0, 0), order.as_bytes());
    c.entry("TRAILER!!!", 0, (0, 0), &[]);
    let raw = c.out;
    let packed = zstd::bulk::compress(&raw, 3).context("cannot compress the initrd")?;
    let built = Built {
        kernel: kernel.version.clone(),
        modules: mods.iter().map(|(n, _)| n.clone()).collect(),
        bytes: packed.len() as u64,
    };
    Ok((packed, built))
}

/// An initrd's `/init` must run with nothing else present: an ELF
/// executable without a program interpreter (statically linked).
pub fn check_static(elf: &[u8]) -> Result<()> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        bail!("it is not a 64-bit ELF executable");
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&elf[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > elf.len() {
            bail!("its program headers are truncated");
        }
        // PT_INTERP
        if u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]) == 3 {
            bail!(
                "it is dynamically linked (it names a program interpreter); build it static: cargo xtask init"
            );
        }
    }
    Ok(())
}

/// Where the `reimage-init` binary is: `$REIMAGE_INIT`, the view's own
/// (`lib/reimage/reimage-init`, from the reimage package), next to this
/// executable, or `/usr/lib/reimage/reimage-init`.
pub fn find_init(view: &Path) -> Result<PathBuf> {
    let mut tried = Vec::new();
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("REIMAGE_INIT") {
        cands.push(PathBuf::from(p));
    }
    cands.push(view.join("lib/reimage/reimage-init"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            cands.push(d.join("reimage-init"));
        }
    }
    cands.push(PathBuf::from("/usr/lib/reimage/reimage-init"));
    for c in cands {
        if c.is_file() {
            return Ok(c);
        }
        tried.push(c.display().to_string());
    }
    bail!(
        "no reimage-init for the initrd (tried {}); build it with cargo xtask init, or set REIMAGE_INIT",
        tried.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_and_depends() {
        assert_eq!(
            module_name("virtio-blk.ko.xz").as_deref(),
            Some("virtio_blk")
        );
        assert_eq!(module_name("btrfs.ko").as_deref(), Some("btrfs"));
        assert_eq!(module_name("modules.dep"), None);
        let modinfo = b"license=GPL\0depends=libcrc32c,xor,raid6_pq,zstd-compress\0intree=Y\0";
        assert_eq!(
            depends(modinfo),
            ["libcrc32c", "xor", "raid6_pq", "zstd_compress"]
        );
        assert!(depends(b"depends=\0").is_empty());
    }

    #[test]
    fn cpio_is_newc_that_cpio_reads() {
        let mut c = Cpio {
            out: Vec::new(),
            ino: 0,
        };
        c.entry("lib", 0o040755, (0, 0), &[]);
        c.entry("lib/a", 0o100644, (0, 0), b"hello");
        c.entry("TRAILER!!!", 0, (0, 0), &[]);
        assert!(c.out.starts_with(b"070701"));
        assert_eq!(c.out.len() % 4, 0);
        let text = String::from_utf8_lossy(&c.out);
        assert!(text.contains("lib/a\0"));
        assert!(text.contains("hello"));
    }

    #[test]
    fn static_check() {
        assert!(check_static(b"#!/bin/sh\n").is_err());
        let exe = std::fs::read("/proc/self/exe").unwrap();
        // The test binary is dynamically linked.
        let e = check_static(&exe).unwrap_err().to_string();
        assert!(e.contains("dynamically linked"), "{e}");
    }
}
