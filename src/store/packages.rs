//! `reimage packages`: what the pool holds.
use anyhow::{Context, Result};
use serde::Serialize;
use std::fs::File;
use std::os::unix::fs::MetadataExt;

use crate::store::extent::{Index, FLAG_HARDLINK_ALIAS};
use crate::store::pool::Pool;

#[derive(Debug, Serialize)]
pub struct PackageInfo {
    pub nevra: String,
    pub file: String,
    pub files: u64,
    pub content_bytes: u64,
    /// Allocated bytes of the extent package (shared extents counted in full).
    pub disk_bytes: u64,
    pub header_sha256: String,
}

#[derive(Debug, Serialize)]
pub struct PackageList {
    pub packages: Vec<PackageInfo>,
    /// Files in packages/ that could not be read, with the reason.
    pub errors: Vec<String>,
}

/// Reads one extent package's index and header.
pub fn read(path: &std::path::Path) -> Result<(Index, sysimage::header::Headers)> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (index, _) = Index::read(&f).with_context(|| format!("{}", path.display()))?;
    let mut r = std::io::BufReader::new(f);
    let prefix = crate::rpm::stream::read_prefix(&mut r, path)?;
    Ok((index, prefix))
}

pub fn list(pool: &Pool) -> Result<PackageList> {
    let dir = pool.packages_dir();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut packages = Vec::new();
    let mut errors = Vec::new();
    for path in names {
        let read = read(&path).and_then(|(index, meta)| {
            let nevra = crate::rpm::trust::identity(&meta.main)?.0;
            Ok((index, meta, nevra))
        });
        match read {
            Ok((index, meta, nevra)) => {
                let disk = std::fs::metadata(&path)?.blocks() * 512;
                packages.push(PackageInfo {
                    nevra,
                    file: path.file_name().unwrap().to_string_lossy().into_owned(),
                    files: crate::rpm::files::file_count(&meta.main),
                    content_bytes: index
                        .entries
                        .iter()
                        .filter(|e| e.flags & FLAG_HARDLINK_ALIAS == 0)
                        .map(|e| e.length)
                        .sum(),
                    disk_bytes: disk,
                    header_sha256: hex::encode(index.header_sha256),
                });
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Ok(PackageList { packages, errors })
}
