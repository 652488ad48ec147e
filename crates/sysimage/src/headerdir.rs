//! A header directory (`VIEW/lib/sysimage/packages/`) read as a package
//! database: every file parsed in parallel; a bad file is reported by name
//! and does not stop the others.
use crate::error::{Error, Result};
use crate::header::Package;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Where the header directory lives in a `/usr` tree.
pub const HEADER_DIR: &str = "lib/sysimage/packages";

/// The packages of a header directory, sorted by name, EVR, arch.
#[derive(Debug)]
pub struct HeaderDir {
    pub dir: PathBuf,
    pub packages: Vec<Package>,
    /// Files that could not be read as packages, one error each (naming the file).
    pub errors: Vec<Error>,
}

impl HeaderDir {
    /// Reads every `*.rpm` file of `dir`. Only an unreadable directory is an
    /// error; per-file problems (missing, truncated, foreign, misnamed) land
    /// in [`HeaderDir::errors`]. A misnamed file's package is still listed.
    pub fn read(dir: &Path) -> Result<HeaderDir> {
        let mut names = Vec::new();
        let mut errors = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rpm") {
                names.push(path);
            } else {
                errors.push(Error::NotRpm {
                    path,
                    reason: "not named NAME-VERSION-RELEASE.ARCH.rpm".into(),
                });
            }
        }
        let results: Vec<(Option<Package>, Option<Error>)> = names
            .par_iter()
            .map(|path| match Package::read_path(path) {
                Ok(p) => {
                    let want = p.nevra.file_name();
                    let misnamed = (path.file_name().and_then(|n| n.to_str())
                        != Some(want.as_str()))
                    .then(|| Error::Misnamed {
                        path: path.clone(),
                        expected: want,
                    });
                    (Some(p), misnamed)
                }
                Err(e) => (None, Some(e)),
            })
            .collect();
        let mut packages = Vec::with_capacity(results.len());
        for (p, e) in results {
            packages.extend(p);
            errors.extend(e);
        }
        packages.sort_by(|a, b| {
            a.nevra
                .name
                .cmp(&b.nevra.name)
                .then_with(|| a.nevra.cmp_evr(&b.nevra))
                .then_with(|| a.nevra.arch.cmp(&b.nevra.arch))
        });
        errors.sort_by_key(|e| e.to_string());
        Ok(HeaderDir {
            dir: dir.to_path_buf(),
            packages,
            errors,
        })
    }

    /// The packages `sel` names (NEVRA, N-V-R, N-V, name, header file name).
    pub fn select(&self, sel: &str) -> Result<Vec<&Package>> {
        let found: Vec<&Package> = self
            .packages
            .iter()
            .filter(|p| p.nevra.matches(sel))
            .collect();
        if found.is_empty() {
            return Err(Error::NoPackage(sel.to_string()));
        }
        Ok(found)
    }

    /// The packages named by any of `sels`, each once, in database order;
    /// all packages when `sels` is empty.
    pub fn select_all(&self, sels: &[String]) -> Result<Vec<&Package>> {
        if sels.is_empty() {
            return Ok(self.packages.iter().collect());
        }
        let mut keep = vec![false; self.packages.len()];
        for s in sels {
            let mut any = false;
            for (i, p) in self.packages.iter().enumerate() {
                if p.nevra.matches(s) {
                    keep[i] = true;
                    any = true;
                }
            }
            if !any {
                return Err(Error::NoPackage(s.clone()));
            }
        }
        Ok(self
            .packages
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(p, _)| p)
            .collect())
    }
}
