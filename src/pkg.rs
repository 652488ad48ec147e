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

/// Reads the header's file list and file digest algorithm.
pub fn files(meta: &rpm::PackageMetadata) -> Result<(Vec<PkgFile>, DigestAlgo)> {
    let entries = match meta.get_file_entries() {
        Ok(e) => e,
        Err(rpm::Error::TagNotFound(_)) => Vec::new(),
        Err(e) => bail!("cannot read the header's file list: {e}"),
    };
    let algo = match meta
        .header
        .get_entry_data_as_u32(IndexTag::RPMTAG_FILEDIGESTALGO)
    {
        Ok(n) => DigestAlgo::from_pgp(n)
            .ok_or_else(|| anyhow!("file digest algorithm {n} is not supported"))?,
        Err(_) => DigestAlgo::Md5,
    };
    let n = entries.len();
    let inodes = meta
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEINODES)
        .ok()
        .filter(|v| v.len() == n);
    let devices = meta
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEDEVICES)
        .ok()
        .filter(|v| v.len() == n);
    let flags = meta
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEFLAGS)
        .ok()
        .filter(|v| v.len() == n)
        .unwrap_or_else(|| vec![0; n]);
    let mut leaders: HashMap<(u32, u32), u32> = HashMap::new();
    let mut files = Vec::with_capacity(n);
    for (i, e) in entries.iter().enumerate() {
        let path = e.path().to_string_lossy().into_owned();
        check_path(&path)?;
        let mode = e.mode().raw_mode() as u32;
        let ghost = flags[i] & RPMFILE_GHOST != 0;
        let mut link_leader = i as u32;
        if let (Some(ino), Some(dev)) = (&inodes, &devices) {
            if mode & S_IFMT == S_IFREG && !ghost {
                link_leader = *leaders.entry((dev[i], ino[i])).or_insert(i as u32);
            }
        }
        files.push(PkgFile {
            path,
            mode,
            size: e.size() as u64,
            digest: e
                .digest()
                .map(|d| d.as_hex().to_ascii_lowercase())
                .unwrap_or_default(),
            user: e.user().to_string(),
            group: e.group().to_string(),
            mtime: e.modified_at().0,
            flags: flags[i],
            linkto: e.linkto().unwrap_or("").to_string(),
            caps: e.caps().unwrap_or("").trim().to_string(),
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
