//! A package's file list as import and compose need it, read from the header
//! and checked: every path absolute and clean, hardlink sets consistent.
use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use rpm::IndexTag;

use crate::rpmfile::DigestAlgo;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
/// `RPMFILE_CONFIG`, `RPMFILE_GHOST`.
pub const RPMFILE_CONFIG: u32 = 1;
pub const RPMFILE_GHOST: u32 = 1 << 6;

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
pub fn file_count(meta: &rpm::PackageMetadata) -> u64 {
    meta.header
        .get_entry_data_as_u16_array(IndexTag::RPMTAG_FILEMODES)
        .map(|v| v.len() as u64)
        .unwrap_or(0)
}

/// Reads the header's file list and file digest algorithm.
///
/// Read tag by tag rather than through the `rpm` crate's file entries, which
/// know fewer digest algorithms than rpm (no SHA1: a package built with
/// `%_binary_filedigest_algorithm 2` could not be read at all).
pub fn files(meta: &rpm::PackageMetadata) -> Result<(Vec<PkgFile>, DigestAlgo)> {
    let h = &meta.header;
    let algo = match h.get_entry_data_as_u32(IndexTag::RPMTAG_FILEDIGESTALGO) {
        Ok(n) => DigestAlgo::from_pgp(n)
            .ok_or_else(|| anyhow!("file digest algorithm {n} is not supported"))?,
        Err(_) => DigestAlgo::Md5,
    };
    let modes = match h.get_entry_data_as_u16_array(IndexTag::RPMTAG_FILEMODES) {
        Ok(m) => m,
        Err(rpm::Error::TagNotFound(_)) => return Ok((Vec::new(), algo)),
        Err(e) => bail!("cannot read the header's file list: {e}"),
    };
    let n = modes.len();
    let bad =
        |what: &str, e: rpm::Error| anyhow!("cannot read the header's file list: {what}: {e}");
    let strings = |tag: IndexTag, what: &str| -> Result<Vec<&str>> {
        let v = h
            .get_entry_data_as_string_array(tag)
            .map_err(|e| bad(what, e))?;
        if v.len() != n {
            bail!("the header lists {n} files but {} {what}", v.len());
        }
        Ok(v)
    };
    let u32s = |tag: IndexTag, what: &str| -> Result<Vec<u32>> {
        let v = h
            .get_entry_data_as_u32_array(tag)
            .map_err(|e| bad(what, e))?;
        if v.len() != n {
            bail!("the header lists {n} files but {} {what}", v.len());
        }
        Ok(v)
    };
    let basenames = strings(IndexTag::RPMTAG_BASENAMES, "base names")?;
    let dirindexes = u32s(IndexTag::RPMTAG_DIRINDEXES, "directory indexes")?;
    let dirnames = h
        .get_entry_data_as_string_array(IndexTag::RPMTAG_DIRNAMES)
        .map_err(|e| bad("directory names", e))?;
    let users = strings(IndexTag::RPMTAG_FILEUSERNAME, "owners")?;
    let groups = strings(IndexTag::RPMTAG_FILEGROUPNAME, "groups")?;
    let digests = strings(IndexTag::RPMTAG_FILEDIGESTS, "digests")?;
    let linktos = strings(IndexTag::RPMTAG_FILELINKTOS, "link targets")?;
    let mtimes = u32s(IndexTag::RPMTAG_FILEMTIMES, "modification times")?;
    let flags = match h.get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEFLAGS) {
        Ok(v) if v.len() == n => v,
        Ok(v) => bail!("the header lists {n} files but {} file flags", v.len()),
        Err(_) => vec![0; n],
    };
    let sizes: Vec<u64> = match h.get_entry_data_as_u64_array(IndexTag::RPMTAG_LONGFILESIZES) {
        Ok(v) => v,
        Err(_) => h
            .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILESIZES)
            .map_err(|e| bad("sizes", e))?
            .into_iter()
            .map(u64::from)
            .collect(),
    };
    if sizes.len() != n {
        bail!("the header lists {n} files but {} sizes", sizes.len());
    }
    let caps = match h.get_entry_data_as_string_array(IndexTag::RPMTAG_FILECAPS) {
        Ok(v) if v.len() == n => Some(v),
        Ok(v) => bail!("the header lists {n} files but {} capabilities", v.len()),
        Err(_) => None,
    };
    let inodes = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEINODES)
        .ok()
        .filter(|v| v.len() == n);
    let devices = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEDEVICES)
        .ok()
        .filter(|v| v.len() == n);
    let hex_len = algo.hex_len();
    let mut leaders: HashMap<(u32, u32), u32> = HashMap::new();
    let mut files = Vec::with_capacity(n);
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
        let mode = u32::from(modes[i]);
        let ghost = flags[i] & RPMFILE_GHOST != 0;
        let mut link_leader = i as u32;
        if let (Some(ino), Some(dev)) = (&inodes, &devices) {
            if mode & S_IFMT == S_IFREG && !ghost {
                link_leader = *leaders.entry((dev[i], ino[i])).or_insert(i as u32);
            }
        }
        let digest = digests[i].to_ascii_lowercase();
        if !digest.is_empty()
            && (digest.len() != hex_len || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            bail!(
                "{path}: its digest {digest:?} is not a {} digest ({hex_len} hex digits)",
                algo.name()
            );
        }
        files.push(PkgFile {
            path,
            mode,
            size: sizes[i],
            digest,
            user: users[i].to_string(),
            group: groups[i].to_string(),
            mtime: mtimes[i],
            flags: flags[i],
            linkto: linktos[i].to_string(),
            caps: caps
                .as_ref()
                .map(|c| c[i].trim().to_string())
                .unwrap_or_default(),
            link_leader,
        });
    }
    for f in &files {
        let l = &files[f.link_leader as usize];
        if f.size != l.size || f.digest != l.digest {
            bail!(
                "{} and {} are one hardlink set in the header but differ in size or digest",
                l.path,
                f.path
            );
        }
    }
    Ok((files, algo))
}

/// A header path must be absolute and clean: no empty, `.` or `..` components,
/// no NUL or newline.
pub fn check_path(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        bail!("file path {path:?} is not absolute");
    }
    if path != "/" {
        for comp in path[1..].split('/') {
            if comp.is_empty() || comp == "." || comp == ".." {
                bail!("file path {path:?} is not a clean absolute path (empty, '.' or '..' component)");
            }
        }
    }
    if path.contains('\0') || path.contains('\n') {
        bail!("file path {path:?} contains a NUL or newline");
    }
    Ok(())
}
