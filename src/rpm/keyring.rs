//! The keyring: armored OpenPGP public keys from a file, checking package
//! header signatures and detached manifest signatures.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sysimage::header::Headers;

use crate::rpm::trust::signature_packets;

/// OpenPGP public keys given with `--keyring` (one or more armored keys in
/// one file): the one keyring of reimage, for package headers (import) and
/// for manifests (sync).
pub struct Keyring {
    verifiers: Vec<rpm::signature::pgp::Verifier>,
    path: PathBuf,
}

impl Keyring {
    pub fn load(path: &Path) -> Result<Keyring> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read keyring {}", path.display()))?;
        let begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let mut verifiers = Vec::new();
        for (i, part) in text.split(begin).skip(1).enumerate() {
            let block = format!("{begin}{part}");
            let v = rpm::signature::pgp::Verifier::from_asc(&block).map_err(|e| {
                anyhow!(
                    "keyring {}: key {} cannot be read: {e}",
                    path.display(),
                    i + 1
                )
            })?;
            verifiers.push(v);
        }
        if verifiers.is_empty() {
            bail!(
                "keyring {} holds no armored OpenPGP public key",
                path.display()
            );
        }
        Ok(Keyring {
            verifiers,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the detached signature `sig` of `data` verifies with a key;
    /// `Err` carries the OpenPGP library's words for the last key tried.
    pub fn verify(&self, data: &[u8], sig: &[u8]) -> std::result::Result<(), String> {
        use rpm::signature::Verifying;
        let mut last = String::new();
        for v in &self.verifiers {
            match v.verify(data, sig) {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    /// Checks that at least one header-only signature verifies with a key.
    pub fn check(&self, headers: &Headers) -> Result<()> {
        let sigs = signature_packets(&headers.signature, false)?;
        if sigs.is_empty() {
            bail!(
                "the package is not signed (no header-only RSA/DSA/OpenPGP signature) and --keyring {} requires one",
                self.path.display()
            );
        }
        let mut last = String::new();
        for (_, sig) in &sigs {
            match self.verify(headers.main_bytes(), sig) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        bail!(
            "no signature verifies with a key in {}: {last}",
            self.path.display()
        )
    }
}
