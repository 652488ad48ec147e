//! A package's file list as import and compose need it, read from the
//! (checked) main header and checked again for what rpm leaves to the
//! installer: every path absolute, clean and one Linux can create; the
//! arrays of one length; each file's digest of its algorithm's length;
//! hardlink sets that agree with themselves (one inode: one type, mode,
//! owner, size, digest, mtime and capability set, only regular files, no
//! `%ghost`); symlink sizes that are their targets' lengths.
use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Result};
use sysimage::header::{tag, Header};

use crate::rpm::stream::DigestAlgo;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
/// `RPMFILE_CONFIG`, `RPMFILE_GHOST`.
pub const RPMFILE_CONFIG: u32 = 1;
pub const RPMFILE_GHOST: u32 = 1 << 6;
/// Linux limits: a name component (NAME_MAX) and a whole path with its NUL
/// (PATH_MAX). A header path beyond them can never be created, so import
/// refuses it rather than leave compose to fail on it.
pub const NAME_MAX: usize = 255;
pub const PATH_MAX: usize = 4096;

/// One file of a package header.
#[derive(Debug, Clone)]
pub struct PkgFile {
    /// The path as the header names it (absolute, clean).
    pub path: String,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    pub size: u64,
    /// Lowercase hex digest, empty when the header has none.
    pub digest: String,
    pub user: String,
    pub group: String,
    pub mtime: u32,
    pub flags: u32,
    /// Symlink target (empty unless a symlink).
    pub linkto: String,
    /// File capabilities in text form (`cap_net_raw=ep`), empty when none.
    pub caps: String,
    /// Index of the first file of this file's hardlink set (itself if none).
    pub link_leader: u32,
}

impl PkgFile {
    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    pub fn is_ghost(&self) -> bool {
        self.flags & RPMFILE_GHOST != 0
    }
    /// A regular file whose data the payload carries (not %ghost).
    pub fn has_data(&self) -> bool {
        self.is_reg() && !self.is_ghost()
    }
}

/// The number of files a header lists (0 when it lists none or is broken).
pub fn file_count(h: &Header) -> u64 {
    h.type_of(tag::BASENAMES).map_or(0, |(_, n)| n as u64)
}

/// The file digest algorithm a header names (MD5 when it names none).
pub fn digest_algo(h: &Header) -> Result<DigestAlgo> {
    match h.int(tag::FILEDIGESTALGO)? {
        None => Ok(DigestAlgo::Md5),
        Some(n) => DigestAlgo::from_pgp(n as u32)
            .ok_or_else(|| anyhow!("file digest algorithm {n} is not supported")),
    }
}

/// Reads and checks the header's file list and file digest algorithm.
pub fn files(h: &Header) -> Result<(Vec<PkgFile>, DigestAlgo)> {
    let algo = digest_algo(h)?;
    if h.has(tag::OLDFILENAMES) {
        bail!("the header lists its files the pre-rpm-4 way (OLDFILENAMES), which is not read");
    }
    let Some(basenames) = h.utf8_strings(tag::BASENAMES)? else {
        for t in [
            tag::FILEMODES,
            tag::DIRNAMES,
            tag::DIRINDEXES,
            tag::FILESIZES,
        ] {
            if h.has(t) {
                bail!("the header has file attributes (tag {t}) but no file names");
            }
        }
        return Ok((Vec::new(), algo));
    };
    let n = basenames.len();
    let count = |t: u32, have: usize, what: &str| -> Result<()> {
        if have != n {
            bail!("the header lists {n} files but {have} {what} (tag {t})");
        }
        Ok(())
    };
    let strings = |t: u32, what: &str| -> Result<Vec<&str>> {
        let v = h
            .utf8_strings(t)?
            .ok_or_else(|| anyhow!("the header lists {n} files but no {what} (tag {t})"))?;
        count(t, v.len(), what)?;
        Ok(v)
    };
    let ints = |t: u32, what: &str| -> Result<Vec<u64>> {
        let v = h
            .ints(t)?
            .ok_or_else(|| anyhow!("the header lists {n} files but no {what} (tag {t})"))?;
        count(t, v.len(), what)?;
        Ok(v)
    };
    let optional = |t: u32, what: &str| -> Result<Option<Vec<u64>>> {
        match h.ints(t)? {
            Some(v) => count(t, v.len(), what).map(|_| Some(v)),
            None => Ok(None),
        }
    };
    let dirindexes = ints(tag::DIRINDEXES, "directory indexes")?;
    let dirnames = h
        .utf8_strings(tag::DIRNAMES)?
        .ok_or_else(|| anyhow!("the header lists files but no directory names"))?;
    let modes = ints(tag::FILEMODES, "modes")?;
    let users = strings(tag::FILEUSERNAME, "owners")?;
    let groups = strings(tag::FILEGROUPNAME, "groups")?;
    let digests = strings(tag::FILEDIGESTS, "digests")?;
    let linktos = strings(tag::FILELINKTOS, "link targets")?;
    let mtimes = ints(tag::FILEMTIMES, "modification times")?;
    let flags = optional(tag::FILEFLAGS, "file flags")?.unwrap_or_else(|| vec![0; n]);
    let sizes = match h.has(tag::LONGFILESIZES) {
        true => ints(tag::LONGFILESIZES, "sizes")?,
        false => ints(tag::FILESIZES, "sizes")?,
    };
    let caps = match h.utf8_strings(tag::FILECAPS)? {
        Some(v) => {
            count(tag::FILECAPS, v.len(), "capabilities")?;
            Some(v)
        }
        None => None,
    };
    let inodes = optional(tag::FILEINODES, "inode numbers")?;
    let devices = optional(tag::FILEDEVICES, "device numbers")?;
    let hex_len = algo.hex_len();
    let mut files = Vec::with_capacity(n);
    let mut seen: HashSet<String> = HashSet::with_capacity(n);
    for i in 0..n {
        let dir = dirnames.get(dirindexes[i] as usize).ok_or_else(|| {
            anyhow!(
                "file {i} names directory {} of {}",
                dirindexes[i],
                dirnames.len()
            )
        })?;
        let path = format!("{dir}{}", basenames[i]);
        check_path(&path)?;
        if !seen.insert(path.clone()) {
            bail!("the header lists {path} twice");
        }
        let mode = u32::try_from(modes[i]).map_err(|_| anyhow!("{path}: mode out of range"))?;
        let digest = digests[i].to_ascii_lowercase();
        if !digest.is_empty()
            && (digest.len() != hex_len || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            bail!(
                "{path}: its digest {digest:?} is not a {} digest ({hex_len} hex digits)",
                algo.name()
            );
        }
        let file = PkgFile {
            path,
            mode,
            size: sizes[i],
            digest,
            user: users[i].to_string(),
            group: groups[i].to_string(),
            mtime: mtimes[i] as u32,
            flags: flags[i] as u32,
            linkto: linktos[i].to_string(),
            caps: caps
                .as_ref()
                .map(|c| c[i].trim().to_string())
                .unwrap_or_default(),
            link_leader: i as u32,
        };
        check_entry(&file)?;
        files.push(file);
    }
    if let (Some(ino), Some(dev)) = (&inodes, &devices) {
        link_sets(&mut files, ino, dev)?;
    }
    Ok((files, algo))
}

/// What one entry's own attributes must satisfy.
fn check_entry(f: &PkgFile) -> Result<()> {
    let path = &f.path;
    if f.is_symlink() {
        if f.linkto.is_empty() {
            bail!("{path}: a symlink without a target");
        }
        if f.linkto.len() >= PATH_MAX {
            bail!(
                "{path}: its symlink target is {} bytes, beyond Linux's {PATH_MAX}",
                f.linkto.len()
            );
        }
        if f.size != f.linkto.len() as u64 {
            bail!(
                "{path}: a symlink whose size ({}) is not its target's length ({})",
                f.size,
                f.linkto.len()
            );
        }
    } else if !f.linkto.is_empty() {
        bail!("{path}: not a symlink, yet it has a link target");
    }
    if !f.is_reg() && !f.digest.is_empty() {
        bail!("{path}: not a regular file, yet it has a content digest");
    }
    Ok(())
}

/// Groups files by (device, inode) into hardlink sets, each member pointing
/// at the set's first file, and refuses sets that contradict themselves:
/// one inode has one type, mode, owner, size, content, mtime and set of
/// capabilities, and rpm links only regular files that are not `%ghost`.
/// Inode 0 means "no inode" and links nothing.
fn link_sets(files: &mut [PkgFile], ino: &[u64], dev: &[u64]) -> Result<()> {
    let mut leaders: HashMap<(u64, u64), u32> = HashMap::new();
    for i in 0..files.len() {
        if ino[i] == 0 {
            continue;
        }
        let leader = *leaders.entry((dev[i], ino[i])).or_insert(i as u32);
        if leader == i as u32 {
            continue;
        }
        let (l, f) = (&files[leader as usize], &files[i]);
        let set = format!(
            "{} and {} are one hardlink set in the header (inode {})",
            l.path, f.path, ino[i]
        );
        if !l.is_reg() || !f.is_reg() {
            bail!("{set}, but only regular files can be hardlinked");
        }
        if l.is_ghost() || f.is_ghost() {
            bail!("{set}, but a %ghost file has no data to share");
        }
        for (what, same) in [
            ("mode", l.mode == f.mode),
            ("owner", l.user == f.user && l.group == f.group),
            ("size", l.size == f.size),
            ("digest", l.digest == f.digest),
            ("mtime", l.mtime == f.mtime),
            ("capabilities", l.caps == f.caps),
        ] {
            if !same {
                bail!("{set}, but they differ in {what}");
            }
        }
        files[i].link_leader = leader;
    }
    Ok(())
}

/// A header path must be absolute and clean (no empty, `.` or `..`
/// components, no NUL or newline) and within Linux's limits (each component
/// at most NAME_MAX bytes, the whole path shorter than PATH_MAX).
pub fn check_path(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        bail!("file path {path:?} is not absolute");
    }
    if path.contains('\0') || path.contains('\n') {
        bail!("file path {path:?} contains a NUL or newline");
    }
    let short = |p: &str| -> String {
        if p.len() > 80 {
            let mut end = 80;
            while !p.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &p[..end])
        } else {
            p.to_string()
        }
    };
    if path.len() >= PATH_MAX {
        bail!(
            "file path {:?} is {} bytes, beyond Linux's limit of {}",
            short(path),
            path.len(),
            PATH_MAX - 1
        );
    }
    if path != "/" {
        for comp in path[1..].split('/') {
            if comp.is_empty() || comp == "." || comp == ".." {
                bail!("file path {path:?} is not a clean absolute path (empty, '.' or '..' component)");
            }
            if comp.len() > NAME_MAX {
                bail!(
                    "file path {:?} has a {}-byte name, beyond Linux's limit of {NAME_MAX}",
                    short(path),
                    comp.len()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_within_linux_limits() {
        assert!(check_path("/usr/bin/x").is_ok());
        assert!(check_path(&format!("/usr/{}", "a".repeat(255))).is_ok());
        assert!(check_path(&format!("/usr/{}", "a".repeat(256))).is_err());
        let deep = "/d".repeat(2047);
        assert_eq!(deep.len(), 4094);
        assert!(check_path(&deep).is_ok());
        assert!(check_path(&format!("{deep}/e")).is_err());
        assert!(check_path("usr/x").is_err());
        assert!(check_path("/usr//x").is_err());
        assert!(check_path("/usr/../x").is_err());
    }

    fn f(path: &str, mode: u32) -> PkgFile {
        PkgFile {
            path: path.into(),
            mode,
            size: 3,
            digest: "ab".repeat(32),
            user: "root".into(),
            group: "root".into(),
            mtime: 1,
            flags: 0,
            linkto: String::new(),
            caps: String::new(),
            link_leader: 0,
        }
    }

    #[test]
    fn hardlink_sets_must_agree() {
        let set = |a: PkgFile, mut b: PkgFile| {
            b.link_leader = 1;
            let mut v = vec![a, b];
            link_sets(&mut v, &[7, 7], &[1, 1]).map(|_| v)
        };
        let v = set(f("/a", 0o100644), f("/b", 0o100644)).unwrap();
        assert_eq!(v[1].link_leader, 0);
        let mut other = f("/b", 0o100755);
        assert!(set(f("/a", 0o100644), other.clone()).is_err());
        other.mode = 0o100644;
        other.user = "daemon".into();
        assert!(set(f("/a", 0o100644), other).is_err());
        let mut dir = f("/b", 0o040755);
        dir.digest.clear();
        assert!(set(f("/a", 0o100644), dir).is_err());
        let mut ghost = f("/b", 0o100644);
        ghost.flags = RPMFILE_GHOST;
        assert!(set(f("/a", 0o100644), ghost).is_err());
        let mut big = f("/b", 0o100644);
        big.size = 4;
        assert!(set(f("/a", 0o100644), big).is_err());
        // Inode 0 links nothing.
        let mut v = vec![f("/a", 0o100644), f("/b", 0o040755)];
        v[1].link_leader = 1;
        link_sets(&mut v, &[0, 0], &[1, 1]).unwrap();
        assert_eq!(v[1].link_leader, 1);
    }

    #[test]
    fn symlinks_are_their_targets() {
        let mut s = f("/l", 0o120777);
        s.digest.clear();
        s.linkto = "target".into();
        s.size = 6;
        assert!(check_entry(&s).is_ok());
        s.size = 1 << 31;
        assert!(check_entry(&s).is_err());
    }
}
