//! The EFI system partition, reached one of two ways: a mounted FAT
//! directory (a running system's `/boot/efi`), or an image file or block
//! device written with mtools without mounting it (this host's kernel has no
//! vfat driver; `install --disk` and the host-side tests use this).
//!
//! FAT has no atomic replace: a file is written under a name that is not
//! its final one (not `*.conf`, so the boot loader ignores it), synced,
//! renamed, and the directory synced. Paths are from the ESP's root with `/`.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// statfs(2)'s type of FAT filesystems.
const MSDOS_SUPER_MAGIC: i64 = 0x4d44;

/// Where the ESP is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Esp {
    /// A mounted FAT filesystem.
    Dir(PathBuf),
    /// A FAT filesystem in an image file or on a device, at a byte offset
    /// (a partition of a disk image), written with mtools.
    Image { path: PathBuf, offset: u64 },
}

impl std::fmt::Display for Esp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Esp::Dir(p) => write!(f, "{}", p.display()),
            Esp::Image { path, offset: 0 } => write!(f, "{}", path.display()),
            Esp::Image { path, offset } => write!(f, "{}@@{offset}", path.display()),
        }
    }
}

impl Esp {
    /// `DIR` (a mounted ESP), or `FILE[@@OFFSET]` (an image or device).
    pub fn parse(s: &str) -> Result<Esp> {
        let (p, off) = match s.rsplit_once("@@") {
            Some((p, o)) => (
                p,
                Some(
                    o.parse::<u64>()
                        .with_context(|| format!("--esp {s}: {o:?} is not a byte offset"))?,
                ),
            ),
            None => (s, None),
        };
        let path = PathBuf::from(p);
        if off.is_none() && path.is_dir() {
            // A mount point with nothing mounted on it is an empty directory
            // of another filesystem: writing entries there would be lost.
            let st = rustix::fs::statfs(&path)
                .with_context(|| format!("cannot statfs the ESP {}", path.display()))?;
            if st.f_type as i64 != MSDOS_SUPER_MAGIC {
                bail!(
                    "the ESP {} is not a mounted FAT filesystem (is it mounted?)",
                    path.display()
                );
            }
            return Ok(Esp::Dir(path));
        }
        if !path.exists() {
            bail!("--esp {s}: no such directory, image or device");
        }
        Ok(Esp::Image {
            path,
            offset: off.unwrap_or(0),
        })
    }

    fn mtools(&self, prog: &str) -> Command {
        let Esp::Image { path, offset } = self else {
            unreachable!("mtools for an image ESP only")
        };
        let mut c = Command::new(prog);
        c.arg("-i")
            .arg(format!("{}@@{offset}", path.display()))
            .env("MTOOLS_SKIP_CHECK", "1")
            .env("MTOOLS_NO_VFAT", "0");
        c
    }

    fn run(mut c: Command) -> Result<String> {
        crate::util::runner::run(&mut c)
    }

    fn dir_path(root: &Path, p: &str) -> PathBuf {
        root.join(p.trim_start_matches('/'))
    }

    /// The names in directory `dir` (empty when it does not exist).
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        match self {
            Esp::Dir(root) => {
                let d = Self::dir_path(root, dir);
                match std::fs::read_dir(&d) {
                    Ok(rd) => Ok(rd
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                    Err(e) => Err(e).with_context(|| format!("cannot read {}", d.display())),
                }
            }
            Esp::Image { .. } => {
                let mut c = self.mtools("mdir");
                c.args(["-b", &format!("::{dir}")]);
                let out = c.output().context("cannot run mdir (install mtools)")?;
                if !out.status.success() {
                    return Ok(Vec::new()); // no such directory
                }
                Ok(String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.trim_end_matches('/').rsplit('/').next())
                    .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                    .map(String::from)
                    .collect())
            }
        }
    }

    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Esp::Dir(root) => match std::fs::read(Self::dir_path(root, path)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot read {path} on the ESP")),
            },
            Esp::Image { .. } => {
                let mut c = self.mtools("mtype");
                c.arg(format!("::{path}"));
                let out = c.output().context("cannot run mtype (install mtools)")?;
                Ok(out.status.success().then_some(out.stdout))
            }
        }
    }

    /// Creates directory `dir` and its parents.
    pub fn mkdir_p(&self, dir: &str) -> Result<()> {
        match self {
            Esp::Dir(root) => {
                let d = Self::dir_path(root, dir);
                if d.is_dir() {
                    return Ok(());
                }
                std::fs::create_dir_all(&d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
                // Durable before anything is written into them: each new
                // directory's entry in its parent.
                let mut at = root.clone();
                crate::util::atomic::fsync_dir(&at)?;
                for comp in dir.split('/').filter(|c| !c.is_empty()) {
                    at.push(comp);
                    crate::util::atomic::fsync_dir(&at)?;
                }
                Ok(())
            }
            Esp::Image { .. } => {
                let mut at = String::new();
                for comp in dir.split('/').filter(|c| !c.is_empty()) {
                    let parent = if at.is_empty() {
                        "/".to_string()
                    } else {
                        at.clone()
                    };
                    at = format!("{at}/{comp}");
                    if !self
                        .list(&parent)?
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(comp))
                    {
                        let mut c = self.mtools("mmd");
                        c.arg(format!("::{at}"));
                        Self::run(c)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Writes `path` so that it appears whole or not at all: under a
    /// temporary name, synced, renamed over, the directory synced.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let tmp = format!("{dir}/.{name}.new");
        match self {
            Esp::Dir(root) => {
                use std::io::Write;
                let t = Self::dir_path(root, &tmp);
                let mut f = std::fs::File::create(&t)
                    .with_context(|| format!("cannot write {}", t.display()))?;
                f.write_all(data)?;
                f.sync_all()?;
                drop(f);
                let dest = Self::dir_path(root, path);
                std::fs::rename(&t, &dest)
                    .with_context(|| format!("cannot rename into {path} on the ESP"))?;
                settle_renamed(
                    &dest,
                    &Self::dir_path(root, if dir.is_empty() { "/" } else { dir }),
                )
            }
            Esp::Image { .. } => {
                let local = tempfile::NamedTempFile::new()?;
                std::fs::write(local.path(), data)?;
                let mut c = self.mtools("mcopy");
                c.arg("-o").arg(local.path()).arg(format!("::{tmp}"));
                Self::run(c)?;
                self.sync()?;
                // mren does not replace: the old file goes first (a reader
                // in between finds none, never a half one).
                if self
                    .list(if dir.is_empty() { "/" } else { dir })?
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name))
                {
                    self.remove(path)?;
                }
                self.rename(&tmp, path)
            }
        }
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        match self {
            Esp::Dir(root) => {
                let dest = Self::dir_path(root, to);
                std::fs::rename(Self::dir_path(root, from), &dest)
                    .with_context(|| format!("cannot rename {from} to {to} on the ESP"))?;
                let dir = to.rsplit_once('/').map_or("/", |(d, _)| d);
                settle_renamed(&dest, &Self::dir_path(root, dir))
            }
            Esp::Image { .. } => {
                let name = to.rsplit('/').next().unwrap_or(to);
                let mut c = self.mtools("mren");
                c.arg(format!("::{from}")).arg(name);
                Self::run(c)?;
                self.sync()
            }
        }
    }

    pub fn remove(&self, path: &str) -> Result<()> {
        match self {
            Esp::Dir(root) => match std::fs::remove_file(Self::dir_path(root, path)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e).with_context(|| format!("cannot remove {path} on the ESP")),
            },
            Esp::Image { .. } => {
                let mut c = self.mtools("mdel");
                c.arg(format!("::{path}"));
                Self::run(c).map(|_| ())?;
                self.sync()
            }
        }
    }

    /// Bytes free on the ESP.
    pub fn free(&self) -> Result<u64> {
        match self {
            Esp::Dir(root) => {
                let st = rustix::fs::statvfs(root)
                    .with_context(|| format!("cannot statvfs {}", root.display()))?;
                Ok(st.f_bavail * st.f_frsize)
            }
            Esp::Image { .. } => {
                let mut c = self.mtools("mdir");
                c.arg("::/");
                let out = Self::run(c)?;
                let line = out
                    .lines()
                    .find(|l| l.contains("bytes free"))
                    .context("mdir did not say how many bytes are free")?;
                let n: String = line
                    .split("bytes free")
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_digit())
                    .collect();
                n.parse().context("mdir's free bytes")
            }
        }
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> Result<()> {
        match self {
            Esp::Dir(root) => crate::sys::syncfs(&std::fs::File::open(root)?).map_err(Into::into),
            Esp::Image { path, .. } => std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", path.display())),
        }
    }
}

/// Makes a rename on a mounted FAT durable: the file at its new name, then
/// the directory. Linux's vfat gives the new name a directory entry with no
/// cluster and size 0 (over an existing name: the replaced file's, whose
/// clusters it frees) and writes the file's real ones into it only when the
/// file's inode is written back; an fsync of the directory alone does not
/// do that. Found by `cargo xtask powercut`: after a power cut an entry
/// renamed into place and its directory fsynced was empty, or pointed at
/// freed clusters.
fn settle_renamed(file: &Path, dir: &Path) -> Result<()> {
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync {}", file.display()))?;
    crate::util::atomic::fsync_dir(dir)
}

/// Makes a FAT32 filesystem for an ESP of `size` bytes at `offset` in
/// `image` (mtools' `mformat`, which writes at an offset without a loop
/// device or a mount), labelled `ESP`.
pub fn format(image: &Path, offset: u64, size: u64) -> Result<Esp> {
    let sectors = size / 512;
    let mut c = Command::new("mformat");
    c.arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .args(["-F", "-v", "ESP", "-T"])
        .arg(sectors.to_string())
        .args(["-h", "64", "-s", "32", "-H", "0"])
        .arg("::")
        .env("MTOOLS_SKIP_CHECK", "1");
    crate::util::runner::run(&mut c).context("cannot format the ESP (mformat, from mtools)")?;
    Ok(Esp::Image {
        path: image.to_path_buf(),
        offset,
    })
}

/// The FAT volume id (what `UUID=` names for a vfat filesystem: `XXXX-XXXX`).
pub fn volume_id(esp: &Esp) -> Result<String> {
    let bytes = match esp {
        Esp::Image { path, offset } => {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::open(path)?;
            let mut b = [0u8; 4];
            // FAT32: the volume id is at byte 67 of the boot sector.
            f.read_exact_at(&mut b, offset + 67)?;
            b
        }
        Esp::Dir(root) => bail!(
            "cannot read the volume id of the mounted ESP {} here; give it as a device",
            root.display()
        ),
    };
    Ok(format!(
        "{:02X}{:02X}-{:02X}{:02X}",
        bytes[3], bytes[2], bytes[1], bytes[0]
    ))
}
