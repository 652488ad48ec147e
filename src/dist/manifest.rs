//! The published formats: manifests (one per image version), the image
//! index, delta references, and the names they may hold. Publish writes
//! them, delta and sync read them; the rules live here once.
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// `images/IMAGE/VERSION.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub image: String,
    pub version: String,
    /// Sorted by file name.
    pub packages: Vec<ManifestPackage>,
}

/// One package of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestPackage {
    pub nevra: String,
    /// File name in `packages/` (`NAME-VERSION-RELEASE.ARCH`).
    pub file: String,
    /// SHA256 of the main header (hex): with the NEVRA, the identity.
    pub header_sha256: String,
    /// SHA256 of the whole extent package (hex), and its size.
    pub sha256: String,
    pub size: u64,
    /// Size of the original `.rpm` (what dnf would download).
    pub rpm_size: u64,
    /// Static deltas that rebuild this package from older versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<DeltaRef>,
}

/// A static delta of a manifest package.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeltaRef {
    /// The version it was computed from.
    pub from: String,
    /// Path in the repository (`deltas/FILE/KEY.rdelta`).
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// The old packages whose content it uses (all must be in the pool).
    pub needs: Vec<Need>,
}

/// An old package a delta uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub file: String,
    pub header_sha256: String,
}

/// `images/IMAGE/index.json`: the versions published (for clients that
/// cannot list directories, e.g. over HTTP).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageIndex {
    pub format: u32,
    pub image: String,
    pub versions: Vec<String>,
    /// Version -> the older versions it has a later delta file from
    /// (`VERSION.deltas/OLD.json`), so a client fetches exactly those with
    /// the manifest instead of asking for each it could use. Absent
    /// (written before reimage listed them): the client asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub later_deltas: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// An image name or version: one plain path component of safe characters.
pub fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~^-".contains(c));
    if !ok {
        bail!("{what} {s:?} is not valid (letters, digits and ._+~^- only, not starting with '.')");
    }
    Ok(())
}

/// A package file name from a manifest: one component, no leading dot.
pub fn check_file_name(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 400 || s.starts_with('.') || s.contains(['/', '\0', '\n', '\r']) {
        bail!("package file name {s:?} is not valid");
    }
    Ok(())
}

fn check_hex32(what: &str, s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| anyhow!("{what} {s:?} is not 64 hex digits"))?;
    Ok(out)
}

impl ManifestPackage {
    pub fn sha256_bytes(&self) -> Result<[u8; 32]> {
        check_hex32("sha256", &self.sha256)
    }
    pub fn header_sha256_bytes(&self) -> Result<[u8; 32]> {
        check_hex32("header_sha256", &self.header_sha256)
    }
    /// The rpm name (NEVRA without version, release, arch).
    pub fn name(&self) -> &str {
        let mut s = self.nevra.as_str();
        for _ in 0..2 {
            if let Some(i) = s.rfind('-') {
                s = &s[..i];
            }
        }
        s
    }
}

impl Manifest {
    /// Parses and checks a manifest (untrusted input).
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).context("the manifest is not valid")?;
        if m.format != MANIFEST_FORMAT {
            bail!(
                "manifest format {} is not supported (this reimage reads {MANIFEST_FORMAT})",
                m.format
            );
        }
        check_name("image", &m.image)?;
        check_name("version", &m.version)?;
        let mut seen = BTreeSet::new();
        for p in &m.packages {
            check_file_name(&p.file)?;
            p.sha256_bytes()?;
            p.header_sha256_bytes()?;
            if !seen.insert(&p.file) {
                bail!("the manifest names {} twice", p.file);
            }
            for d in &p.deltas {
                check_delta_path(&d.path)?;
                check_hex32("delta sha256", &d.sha256)?;
                for n in &d.needs {
                    check_file_name(&n.file)?;
                    check_hex32("header_sha256", &n.header_sha256)?;
                }
            }
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("serializable");
        s.push('\n');
        s
    }
}

/// A delta path: `deltas/` then plain components.
pub fn check_delta_path(p: &str) -> Result<()> {
    let mut comps = p.split('/');
    let ok = comps.next() == Some("deltas")
        && p.split('/').count() == 3
        && comps.all(|c| check_file_name(c).is_ok());
    if !ok {
        bail!("delta path {p:?} is not valid");
    }
    Ok(())
}

/// Where a manifest lives in a repository or pool.
pub fn manifest_path(root: &Path, image: &str, version: &str) -> PathBuf {
    root.join("images")
        .join(image)
        .join(format!("{version}.json"))
}

/// Deltas written from one old version.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DeltaSummary {
    pub from: String,
    /// Packages new or changed since `from`.
    pub changed: usize,
    /// Their extent packages' size, and their `.rpm` size.
    pub package_bytes: u64,
    pub rpm_bytes: u64,
    /// Bytes of all deltas.
    pub delta_bytes: u64,
    /// Files and bytes by encoding (copy, zstd against an old file, bsdiff,
    /// whole, header) and by kind of file (ELF, kernel module, compressed,
    /// other, header, unchanged).
    pub encodings: std::collections::BTreeMap<String, OpStat>,
    pub kinds: std::collections::BTreeMap<String, OpStat>,
}

/// Files and bytes of one kind in the deltas.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpStat {
    pub files: u64,
    pub bytes: u64,
}

/// SHA256 of a whole file.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    use sha2::Digest;
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Published files are world-readable: the rsync daemon or web server that
/// serves them runs as another user (`uid = nobody`).
pub fn world_readable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// `VERSION.json.sig` beside `VERSION.json`.
pub fn sig_path(manifest: &Path) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// The versions of an image that have a manifest under `root/images/IMAGE`.
pub fn versions(root: &Path, image: &str) -> Result<Vec<String>> {
    let dir = root.join("images").join(image);
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for e in rd {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(ver) = name.strip_suffix(".json") {
            if ver != "index" && check_name("version", ver).is_ok() {
                v.push(ver.to_string());
            }
        }
    }
    sort_versions(&mut v);
    Ok(v)
}

/// Sorts versions oldest first by rpm's version comparison (10 after 9).
pub fn sort_versions(v: &mut [String]) {
    v.sort_by(|a, b| sysimage::vercmp::rpmvercmp(a, b).then_with(|| a.cmp(b)));
}

/// Deltas added to a published version later (a second `publish
/// --deltas-from OLD`): `images/IMAGE/VERSION.deltas/OLD.json`, signed as a
/// manifest is (`.sig` beside it). The manifest itself never changes once
/// published, so a cache serving it stays right forever.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeltaFile {
    pub format: u32,
    pub image: String,
    pub version: String,
    /// The older version these deltas start from.
    pub from: String,
    /// Package file (as the manifest names it) -> its deltas.
    pub deltas: std::collections::BTreeMap<String, Vec<DeltaRef>>,
}

impl DeltaFile {
    /// Parses and checks a delta file against the manifest it extends.
    pub fn parse(bytes: &[u8], manifest: &Manifest, from: &str) -> Result<DeltaFile> {
        let d: DeltaFile = serde_json::from_slice(bytes).context("the delta file is not valid")?;
        if d.format != MANIFEST_FORMAT {
            bail!(
                "delta file format {} is not supported (this reimage reads {MANIFEST_FORMAT})",
                d.format
            );
        }
        if d.image != manifest.image || d.version != manifest.version || d.from != from {
            bail!(
                "it holds deltas of {} {} from {}, not of {} {} from {from}",
                d.image,
                d.version,
                d.from,
                manifest.image,
                manifest.version
            );
        }
        for (file, refs) in &d.deltas {
            if !manifest.packages.iter().any(|p| &p.file == file) {
                bail!("it names {file}, which the manifest does not");
            }
            for r in refs {
                check_delta_path(&r.path)?;
                check_hex32("delta sha256", &r.sha256)?;
                for n in &r.needs {
                    check_file_name(&n.file)?;
                    check_hex32("header_sha256", &n.header_sha256)?;
                }
            }
        }
        Ok(d)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("serializable");
        s.push('\n');
        s
    }

    /// Adds these deltas to the manifest's packages (each path once).
    pub fn merge_into(self, manifest: &mut Manifest) {
        for (file, refs) in self.deltas {
            if let Some(p) = manifest.packages.iter_mut().find(|p| p.file == file) {
                for r in refs {
                    if !p.deltas.iter().any(|d| d.path == r.path) {
                        p.deltas.push(r);
                    }
                }
            }
        }
    }
}

/// `images/IMAGE/VERSION.deltas/FROM.json` (a directory, so never taken
/// for a version by [`versions`]).
pub fn delta_file_rel(image: &str, version: &str, from: &str) -> String {
    format!("images/{image}/{version}.deltas/{from}.json")
}
