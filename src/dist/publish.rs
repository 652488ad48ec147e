//! `reimage publish`: a repository of images that any rsync daemon, ssh
//! account or static HTTP server can serve (docs/serving.md).
//!
//! ```text
//! REPO/                     a pool directory (reimage.toml, lock, tmp/ as any pool)
//!   packages/NAME-V-R.A     extent packages (docs/FORMAT.md), written by import
//!   images/IMAGE/
//!     index.json            {"format": 1, "image": IMAGE, "versions": [...]}
//!     VERSION.json          the manifest of one version (format below)
//!     VERSION.json.sig      detached OpenPGP signature of it (with --sign)
//!     VERSION.deltas/OLD.json(.sig)  deltas from OLD published later
//!   deltas/NAME-V-R.A/KEY.rdelta   static deltas (docs/serving.md, src/delta.rs)
//! ```
//!
//! Every file is written atomically (temp, fsync, rename) and, but
//! `index.json`, never changes once written (docs/serving.md, "Mirrors and
//! CDNs"): packages, deltas, each signature, the file it signs, the index last.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::store::extent::Index;
use crate::store::pool::Pool;
use crate::util::atomic::write_atomic;
use crate::util::report::Reporter;

use crate::dist::manifest::world_readable;
pub use crate::dist::manifest::{
    check_delta_path, check_file_name, check_name, manifest_path, sha256_file, sig_path,
    sort_versions, versions, DeltaRef, DeltaSummary, ImageIndex, Manifest, ManifestPackage, Need,
    MANIFEST_FORMAT,
};

/// Options of `reimage publish`.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub repo: PathBuf,
    /// Image and version to publish; `None` with `prune` alone.
    pub target: Option<(String, String)>,
    /// `.rpm` files or directories.
    pub paths: Vec<PathBuf>,
    /// A list file of `.rpm` paths (relative to the list's directory).
    pub list: Option<PathBuf>,
    pub deltas_from: Vec<String>,
    pub prune: bool,
    /// Armored OpenPGP secret key to sign the manifest with.
    pub sign: Option<PathBuf>,
    /// zstd level for deltas.
    pub delta_level: i32,
    pub jobs: Option<usize>,
}

/// What publish did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PublishReport {
    pub repo: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub packages: usize,
    pub imported: u64,
    pub present: u64,
    pub package_bytes: u64,
    pub rpm_bytes: u64,
    pub deltas: Vec<DeltaSummary>,
    pub signed: bool,
    pub pruned_files: u64,
    pub pruned_bytes: u64,
    pub seconds: f64,
}

/// The `.rpm` files named by `--list` (relative to the list's directory) and PATHs.
fn inputs(opts: &PublishOptions) -> Result<Vec<PathBuf>> {
    let mut paths = opts.paths.clone();
    if let Some(list) = &opts.list {
        let base = list.parent().unwrap_or(Path::new("."));
        for l in crate::views::compose::read_list(list)? {
            paths.push(base.join(l));
        }
    }
    if paths.is_empty() {
        bail!("name the .rpm files to publish, or give --list FILE");
    }
    crate::store::import::expand_paths(&paths)
}

/// Opens REPO as a pool, creating it (copies allowed: a repository may live
/// on any filesystem) when it is new.
pub fn open_repo(repo: &Path) -> Result<Pool> {
    if !repo.join(crate::store::pool::Config::FILE).exists() {
        crate::store::init::init(&crate::store::init::InitOptions {
            pool: repo.to_path_buf(),
            image: None,
            size: None,
            allow_copy: true,
        })
        .with_context(|| format!("cannot create the repository {}", repo.display()))?;
    }
    Pool::open(repo)
}

/// Describes one extent package of the repository for a manifest.
fn describe(pool: &Pool, rpm: &Path) -> Result<ManifestPackage> {
    let mut r = crate::rpm::stream::open_buffered(rpm)?;
    let prefix = crate::rpm::stream::read_prefix(&mut r, rpm)?;
    let (nevra, file) = crate::rpm::trust::identity(&prefix.main)?;
    let path = pool.packages_dir().join(&file);
    let f = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let (index, _) = Index::read(&f).with_context(|| path.display().to_string())?;
    let header_sha256: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(prefix.main_bytes()).into()
    };
    if index.header_sha256 != header_sha256 {
        bail!(
            "{} holds another package than {} (another main header)",
            path.display(),
            rpm.display()
        );
    }
    world_readable(&path)?;
    Ok(ManifestPackage {
        nevra,
        file,
        header_sha256: hex::encode(header_sha256),
        sha256: hex::encode(sha256_file(&path)?),
        size: f.metadata()?.len(),
        rpm_size: std::fs::metadata(rpm)?.len(),
        deltas: Vec::new(),
    })
}

/// Publishes an image version (and/or prunes) in a repository.
pub fn publish(opts: &PublishOptions, reporter: &dyn Reporter) -> Result<PublishReport> {
    let started = std::time::Instant::now();
    let mut report = PublishReport {
        repo: opts.repo.clone(),
        ..Default::default()
    };
    if opts.target.is_none() && !opts.prune {
        bail!("name IMAGE and VERSION to publish, or give --prune");
    }
    let pool = open_repo(&opts.repo)?;
    if let Some((image, version)) = &opts.target {
        check_name("image", image)?;
        check_name("version", version)?;
        for old in &opts.deltas_from {
            check_name("version", old)?;
            if old == version {
                bail!("--deltas-from {old} is the version being published");
            }
        }
        let signer = opts
            .sign
            .as_deref()
            .map(|p| {
                rpm::signature::pgp::Signer::from_asc_file(p)
                    .map_err(|e| anyhow!("cannot read the signing key {}: {e}", p.display()))
            })
            .transpose()?;
        if let (Some(signer), Some(p)) = (&signer, &opts.sign) {
            // Before anything is imported or written: a key that cannot sign.
            use rpm::signature::Signing;
            signer
                .sign(
                    &b"reimage: checking the signing key"[..],
                    rpm::Timestamp::now(),
                )
                .map_err(|e| {
                    anyhow!(
                        "cannot sign with {}: {e} (a passphrase-protected key cannot be used: \
                         export it without a passphrase, e.g. for a key kept only for this)",
                        p.display()
                    )
                })?;
        }
        let rpms = inputs(opts)?;
        // One writer lock from import to manifest: a failed publish removes
        // what it added before any other writer can take it as present.
        let lock = pool.lock(true)?;
        let imported = crate::store::import::import_locked(
            &pool,
            &crate::store::import::ImportOptions {
                paths: rpms.clone(),
                jobs: opts.jobs,
                keyring: None,
                wait: true,
                replace: false,
            },
            reporter,
            &lock,
        )?;
        // Packages this run added: removed again if nothing gets published
        // (no manifest can name them yet).
        let added: Vec<String> = imported
            .packages
            .iter()
            .filter(|p| p.status == crate::store::import::Status::Imported)
            .filter_map(|p| p.file.clone())
            .collect();
        let mut publish_version = || -> Result<Manifest> {
            if imported.refused > 0 {
                let errs: Vec<String> = imported
                    .packages
                    .iter()
                    .filter_map(|p| p.error.clone())
                    .collect();
                bail!(
                    "{} package(s) refused, nothing published:\n  {}",
                    imported.refused,
                    errs.join("\n  ")
                );
            }
            publish_manifest(&pool, opts, &rpms, signer.as_ref(), &mut report, reporter)
        };
        let manifest = match publish_version() {
            Ok(m) => m,
            Err(e) => {
                // (A manifest that cannot be read: keep everything.)
                if let Ok((referenced, _)) = referenced(&pool.root) {
                    for f in added.iter().filter(|f| !referenced.contains(*f)) {
                        let _ = std::fs::remove_file(pool.packages_dir().join(f));
                    }
                }
                return Err(e);
            }
        };
        report.imported = imported.imported;
        report.present = imported.present;
        report.image = Some(image.clone());
        report.version = Some(version.clone());
        report.packages = manifest.packages.len();
        report.package_bytes = manifest.packages.iter().map(|p| p.size).sum();
        report.rpm_bytes = manifest.packages.iter().map(|p| p.rpm_size).sum();
    }
    if opts.prune {
        let _lock = pool.lock(true)?;
        let (n, bytes) = prune(&pool.root)?;
        report.pruned_files = n;
        report.pruned_bytes = bytes;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes the manifest of `image` `version` (and its deltas, its signature)
/// for packages already in the repository.
fn publish_manifest(
    pool: &Pool,
    opts: &PublishOptions,
    rpms: &[PathBuf],
    signer: Option<&rpm::signature::pgp::Signer>,
    report: &mut PublishReport,
    reporter: &dyn Reporter,
) -> Result<Manifest> {
    let Some((image, version)) = &opts.target else {
        bail!("no image and version to publish");
    };
    {
        let mut by_file: BTreeMap<String, ManifestPackage> = BTreeMap::new();
        for rpm in rpms {
            let p = describe(pool, rpm).with_context(|| rpm.display().to_string())?;
            by_file.insert(p.file.clone(), p);
        }
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT,
            image: image.to_string(),
            version: version.to_string(),
            packages: by_file.into_values().collect(),
        };
        let path = manifest_path(&pool.root, image, version);
        let published = match std::fs::read(&path) {
            Ok(bytes) => Some(Manifest::parse(&bytes).with_context(|| path.display().to_string())?),
            Err(_) => None,
        };
        if let Some(old) = &published {
            let key = |m: &Manifest| -> Vec<(String, String)> {
                m.packages
                    .iter()
                    .map(|p| (p.file.clone(), p.sha256.clone()))
                    .collect()
            };
            if key(old) != key(&manifest) {
                bail!(
                    "{image} {version} is already published with other packages ({}): publish a new version",
                    path.display()
                );
            }
            // A published manifest never changes (caches keep it forever).
            manifest = old.clone();
        }
        // Files to write once every delta is in place: (path, bytes, signed?).
        let mut pending: Vec<(PathBuf, String)> = Vec::new();
        for old_version in &opts.deltas_from {
            let old = read_manifest(&pool.root, image, old_version)?;
            if published.is_none() {
                let summary = crate::dist::delta::publish_deltas(
                    pool,
                    &old,
                    &mut manifest,
                    opts.delta_level,
                    reporter,
                )?;
                report.deltas.push(summary);
                continue;
            }
            let rel = crate::dist::manifest::delta_file_rel(image, version, old_version);
            let dpath = pool.root.join(&rel);
            let embedded = manifest
                .packages
                .iter()
                .any(|p| p.deltas.iter().any(|d| &d.from == old_version));
            if embedded || dpath.exists() {
                crate::util::runner::log::info(&format!(
                    "deltas of {image} {version} from {old_version} are already published                      ({}): kept as they are",
                    if embedded { path.display() } else { dpath.display() }
                ));
                continue;
            }
            let mut scratch = manifest.clone();
            for p in &mut scratch.packages {
                p.deltas.clear();
            }
            let summary = crate::dist::delta::publish_deltas(
                pool,
                &old,
                &mut scratch,
                opts.delta_level,
                reporter,
            )?;
            report.deltas.push(summary);
            let file = crate::dist::manifest::DeltaFile {
                format: MANIFEST_FORMAT,
                image: image.clone(),
                version: version.clone(),
                from: old_version.clone(),
                deltas: scratch
                    .packages
                    .into_iter()
                    .filter(|p| !p.deltas.is_empty())
                    .map(|p| (p.file, p.deltas))
                    .collect(),
            };
            pending.push((dpath, file.to_json()));
        }
        if published.is_none() {
            pending.push((path.clone(), manifest.to_json()));
        } else if signer.is_some() && !sig_path(&path).exists() {
            // The manifest stays as it is; only its signature is new.
            let bytes = std::fs::read(&path)?;
            let sig = sign(signer, &bytes)?.expect("a signer");
            write_atomic(&sig_path(&path), &sig)?;
            world_readable(&sig_path(&path))?;
        }
        // Signed before anything is written: a failed signature publishes nothing.
        let mut signed = Vec::new();
        for (p, json) in pending {
            let sig = sign(signer, json.as_bytes())?;
            signed.push((p, json, sig));
        }
        // Each file's signature before it, the version index last: a mirror
        // copied (or a cache filled) at any moment never names a file whose
        // deltas, packages or signature are not there yet.
        for (p, json, sig) in signed {
            std::fs::create_dir_all(p.parent().unwrap())?;
            if let Some(sig) = sig {
                write_atomic(&sig_path(&p), &sig)?;
                world_readable(&sig_path(&p))?;
            }
            write_atomic(&p, json.as_bytes())?;
            world_readable(&p)?;
        }
        report.signed = sig_path(&path).exists();
        write_image_index(&pool.root, image)?;
        Ok(manifest)
    }
}

fn sign(signer: Option<&rpm::signature::pgp::Signer>, data: &[u8]) -> Result<Option<Vec<u8>>> {
    signer
        .map(|signer| {
            use rpm::signature::Signing;
            signer
                .sign(data, rpm::Timestamp::now())
                .map(|s| AsRef::<[u8]>::as_ref(&s).to_vec())
                .map_err(|e| anyhow!("cannot sign the manifest: {e}"))
        })
        .transpose()
}

fn read_manifest(root: &Path, image: &str, version: &str) -> Result<Manifest> {
    let old_path = manifest_path(root, image, version);
    Manifest::parse(&std::fs::read(&old_path).with_context(|| {
        format!(
            "--deltas-from {version}: cannot read {}",
            old_path.display()
        )
    })?)
    .with_context(|| old_path.display().to_string())
}

/// The packages the repository's manifests name (and how many manifests).
fn referenced(root: &Path) -> Result<(BTreeSet<String>, usize)> {
    let mut keep = BTreeSet::new();
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(root.join("images")) {
        for img in rd {
            let img = img?.file_name().to_string_lossy().into_owned();
            if check_name("image", &img).is_err() {
                continue;
            }
            for v in versions(root, &img)? {
                let path = manifest_path(root, &img, &v);
                let m = Manifest::parse(&std::fs::read(&path)?)
                    .with_context(|| path.display().to_string())?;
                keep.extend(m.packages.into_iter().map(|p| p.file));
                n += 1;
            }
        }
    }
    Ok((keep, n))
}

fn write_image_index(root: &Path, image: &str) -> Result<()> {
    let versions = versions(root, image)?;
    let mut later = std::collections::BTreeMap::new();
    for v in &versions {
        let mut olds: Vec<String> = later_delta_files(root, image, v)
            .into_iter()
            .map(|(old, _)| old)
            .filter(|o| check_name("version", o).is_ok())
            .collect();
        if !olds.is_empty() {
            sort_versions(&mut olds);
            later.insert(v.clone(), olds);
        }
    }
    let idx = ImageIndex {
        format: MANIFEST_FORMAT,
        image: image.to_string(),
        versions,
        later_deltas: Some(later),
    };
    let mut s = serde_json::to_string_pretty(&idx)?;
    s.push('\n');
    let path = root.join("images").join(image).join("index.json");
    write_atomic(&path, s.as_bytes())?;
    world_readable(&path)
}

/// The later delta files of `image` `version`
/// (`images/IMAGE/VERSION.deltas/OLD.json`): (OLD, path); none when there
/// is no such directory.
fn later_delta_files(root: &Path, image: &str, version: &str) -> Vec<(String, PathBuf)> {
    let dir = root
        .join("images")
        .join(image)
        .join(format!("{version}.deltas"));
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = name.strip_suffix(".json")?.to_string();
            Some((old, e.path()))
        })
        .collect()
}

/// The deltas named by the later delta files of `m`.
fn later_delta_paths(root: &Path, m: &Manifest) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (from, path) in later_delta_files(root, &m.image, &m.version) {
        let f = crate::dist::manifest::DeltaFile::parse(&std::fs::read(&path)?, m, &from)
            .with_context(|| format!("{} (fix or remove it before pruning)", path.display()))?;
        out.extend(f.deltas.into_values().flatten().map(|d| d.path));
    }
    Ok(out)
}

/// Removes packages and deltas no manifest (or later delta file) uses. Returns (files, bytes).
fn prune(root: &Path) -> Result<(u64, u64)> {
    let mut keep_pkgs = BTreeSet::new();
    let mut keep_deltas = BTreeSet::new();
    let images = root.join("images");
    if let Ok(rd) = std::fs::read_dir(&images) {
        for img in rd {
            let img = img?.file_name().to_string_lossy().into_owned();
            if check_name("image", &img).is_err() {
                continue;
            }
            write_image_index(root, &img)?;
            for v in versions(root, &img)? {
                let path = manifest_path(root, &img, &v);
                let m = Manifest::parse(&std::fs::read(&path)?).with_context(|| {
                    format!("{} (fix or remove it before pruning)", path.display())
                })?;
                keep_deltas.extend(later_delta_paths(root, &m)?);
                for p in m.packages {
                    keep_pkgs.insert(p.file);
                    for d in p.deltas {
                        keep_deltas.insert(d.path);
                    }
                }
            }
        }
    }
    let mut n = 0;
    let mut bytes = 0;
    // Signatures of manifests that were removed.
    if let Ok(rd) = std::fs::read_dir(&images) {
        for img in rd.flatten() {
            let Ok(files) = std::fs::read_dir(img.path()) else {
                continue;
            };
            for e in files.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // Later deltas of a removed version.
                if let Some(v) = name.strip_suffix(".deltas") {
                    if !img.path().join(format!("{v}.json")).exists() {
                        for f in std::fs::read_dir(e.path())?.flatten() {
                            bytes += f.metadata()?.len();
                            n += 1;
                        }
                        std::fs::remove_dir_all(e.path())?;
                    }
                    continue;
                }
                if let Some(json) = name.strip_suffix(".sig") {
                    if json.ends_with(".json") && !img.path().join(json).exists() {
                        bytes += e.metadata()?.len();
                        std::fs::remove_file(e.path())?;
                        n += 1;
                    }
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(root.join("packages")) {
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep_pkgs.contains(&name) {
                bytes += e.metadata()?.len();
                std::fs::remove_file(e.path())?;
                n += 1;
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(root.join("deltas")) {
        for dir in rd {
            let dir = dir?;
            let dname = dir.file_name().to_string_lossy().into_owned();
            for e in std::fs::read_dir(dir.path())? {
                let e = e?;
                let rel = format!("deltas/{dname}/{}", e.file_name().to_string_lossy());
                if !keep_deltas.contains(&rel) {
                    bytes += e.metadata()?.len();
                    std::fs::remove_file(e.path())?;
                    n += 1;
                }
            }
            let _ = std::fs::remove_dir(dir.path()); // only when empty
        }
    }
    Ok((n, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("v", "10").is_ok());
        assert!(check_name("v", "2024.05-1+b2~rc1").is_ok());
        for bad in ["", ".x", "a/b", "a b", "..", "x\n"] {
            assert!(check_name("v", bad).is_err(), "{bad:?}");
        }
        assert!(check_delta_path("deltas/bash-1-1.x86_64/0123.rdelta").is_ok());
        for bad in [
            "deltas/../x/y",
            "packages/a/b",
            "deltas/a",
            "deltas/a/b/c",
            "deltas/.a/b",
        ] {
            assert!(check_delta_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn newest_by_rpm_order() {
        let mut v: Vec<String> = ["9", "10", "1.0", "9.1", "10~rc1"]
            .map(String::from)
            .to_vec();
        sort_versions(&mut v);
        assert_eq!(v, ["1.0", "9", "9.1", "10~rc1", "10"]);
    }

    #[test]
    fn package_name_from_nevra() {
        let p = ManifestPackage {
            nevra: "lib-foo-1:2.3-4.el9.x86_64".into(),
            file: "x".into(),
            header_sha256: String::new(),
            sha256: String::new(),
            size: 0,
            rpm_size: 0,
            deltas: vec![],
        };
        assert_eq!(p.name(), "lib-foo");
    }
}
