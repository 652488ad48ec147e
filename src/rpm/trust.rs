//! What makes a package's headers trustworthy, in one place: import, sync
//! (packages rebuilt from deltas or rsync) and fsck all go through
//! [`check`].
//!
//! The headers were read by the one header reader (`sysimage::header`),
//! which enforces rpm's own header loading rules. On top of that a package
//! must be:
//! - a binary package (a `SOURCERPM` tag, no `SOURCEPACKAGE`, a binary lead);
//! - named: NAME, VERSION, RELEASE and ARCH present, UTF-8, usable as a file
//!   name;
//! - verified by **every** header digest it carries (SHA3-256, SHA256, SHA1:
//!   a wrong one next to a right one is refused, as rpm refuses it), or at
//!   least by the legacy MD5 over header and payload, checked with the payload;
//! - signed, if at all, by well-formed OpenPGP signature packets (rpm refuses
//!   to load a package whose signature tag does not parse);
//! - honest about its payload: format cpio (or no format tag, as in rpm 3),
//!   a compressor rpm reads (gzip, bzip2, xz, lzma, zstd) that matches the
//!   data's magic (no tag: rpm reads gzip, and rpmbuild writes no tag for an
//!   uncompressed payload), and every payload digest and size it states;
//! - self-consistent in its file list ([`crate::rpm::files::files`]).
//!
//! The extra refusals (beyond what rpm 4.18 refuses) are listed, with their
//! reasons, in docs/reliability.md ("Header rules").
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use sysimage::header::{sigtag, tag, Header, Headers};

use crate::rpm::files::PkgFile;
use crate::rpm::stream::{digest_hex, Compression, DigestAlgo, Hasher};

/// A package's headers after every header-level check.
#[derive(Debug, Clone)]
pub struct Trusted {
    pub headers: Headers,
    /// NEVRA as reimage prints it everywhere ([`sysimage::Nevra`]'s Display).
    pub nevra: String,
    /// The extent package's file name: `NAME-VERSION-RELEASE.ARCH`.
    pub file_name: String,
    pub files: Vec<PkgFile>,
    pub algo: DigestAlgo,
    /// SHA256 of the main header: the package's identity with its NEVRA.
    pub header_sha256: [u8; 32],
    pub payload: PayloadWords,
}

impl Trusted {
    /// The main header's bytes.
    pub fn main_header(&self) -> &[u8] {
        self.headers.main_bytes()
    }
    /// Lead + signature + main header bytes, unchanged.
    pub fn prefix_bytes(&self) -> &[u8] {
        &self.headers.bytes
    }
}

/// Runs every header-level check (see the module doc).
pub fn check(headers: Headers) -> Result<Trusted> {
    binary_package(&headers)?;
    let (nevra, file_name) = identity(&headers.main)?;
    check_header_digests(&headers)?;
    check_signature_packets(&headers.signature)?;
    let payload = PayloadWords::read(&headers)?;
    let (files, algo) = crate::rpm::files::files(&headers.main)?;
    let header_sha256: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(headers.main_bytes()).into()
    };
    Ok(Trusted {
        headers,
        nevra,
        file_name,
        files,
        algo,
        header_sha256,
        payload,
    })
}

/// Reads the headers of `r` (a package positioned at its start) and checks
/// them; `path` names it in errors.
pub fn read(r: &mut impl std::io::Read, path: &Path) -> Result<Trusted> {
    let headers = Headers::read(r, path)?;
    check(headers)
}

fn binary_package(h: &Headers) -> Result<()> {
    if h.lead.kind != 0 {
        bail!(
            "its lead says it is a source package (type {}); only binary packages can be imported",
            h.lead.kind
        );
    }
    if h.main.has(tag::SOURCEPACKAGE) {
        bail!("is a source package (SOURCEPACKAGE tag); only binary packages can be imported");
    }
    match h.main.utf8_string(tag::SOURCERPM) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => bail!(
            "has no SOURCERPM tag, which is how rpm tells a binary package from a source one; \
             only binary packages can be imported"
        ),
        Err(e) => Err(e.into()),
    }
}

/// NEVRA (rendered the one way, [`sysimage::Nevra`]'s: the epoch whenever
/// the header has one, as rpm's `%{NEVRA}`) and the extent package's file
/// name (`NAME-VERSION-RELEASE.ARCH`).
pub fn identity(main: &Header) -> Result<(String, String)> {
    for (t, what) in [
        (tag::NAME, "name"),
        (tag::VERSION, "version"),
        (tag::RELEASE, "release"),
        (tag::ARCH, "architecture"),
    ] {
        match main.utf8_string(t)? {
            None => bail!("the header has no {what}"),
            Some("") => bail!("the header's {what} is empty"),
            Some(_) => {}
        }
    }
    let nevra = main.nevra()?;
    let file_name = nevra.nvra();
    if file_name.contains('/')
        || file_name.starts_with('.')
        || file_name.chars().any(|c| c.is_control())
        || file_name.len() > crate::rpm::files::NAME_MAX
    {
        bail!("package name {file_name:?} cannot be a file name");
    }
    Ok((nevra.to_string(), file_name))
}

/// The header-only digests of the signature header, strongest first.
pub fn header_digests(sig: &Header) -> Result<Vec<(DigestAlgo, String)>> {
    let mut v = Vec::new();
    for (t, algo) in [
        (sigtag::SHA3_256, DigestAlgo::Sha3_256),
        (sigtag::SHA256, DigestAlgo::Sha256),
        (sigtag::SHA1, DigestAlgo::Sha1),
    ] {
        if let Some(s) = sig.utf8_string(t)? {
            v.push((algo, s.to_ascii_lowercase()));
        }
    }
    Ok(v)
}

/// Every header digest present must match (rpm checks them all).
pub fn check_header_digests(h: &Headers) -> Result<()> {
    let digests = header_digests(&h.signature)?;
    for (algo, want) in &digests {
        let got = digest_hex(*algo, h.main_bytes());
        if &got != want {
            bail!(
                "header {} digest mismatch (the header is corrupt or was altered): expected {want}, got {got}",
                algo.name()
            );
        }
    }
    if digests.is_empty() && !h.signature.has(sigtag::MD5) {
        bail!("has no header digest (SHA3-256, SHA256, SHA1 or MD5): it cannot be verified");
    }
    Ok(())
}

/// The OpenPGP signatures of the signature header, as raw packets:
/// the v6 `OPENPGP` tag (base64 strings), else RSA/DSA header signatures.
/// With `all`, the header+payload ones (PGP, GPG) too.
pub fn signature_packets(sig: &Header, all: bool) -> Result<Vec<(&'static str, Vec<u8>)>> {
    use base64::Engine;
    let mut out = Vec::new();
    if let Some(v) = sig.utf8_strings(sigtag::OPENPGP)? {
        for s in v {
            let b = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| anyhow!("the OpenPGP signature tag is not base64: {e}"))?;
            out.push(("OpenPGP", b));
        }
    }
    let mut tags = vec![(sigtag::RSA, "RSA header"), (sigtag::DSA, "DSA header")];
    if all {
        tags.extend([(sigtag::PGP, "PGP"), (sigtag::GPG, "GPG")]);
    }
    for (t, what) in tags {
        if let Some(b) = sig.bin(t)? {
            out.push((what, b.to_vec()));
        }
    }
    Ok(out)
}

/// Each signature must be one well-formed OpenPGP signature packet.
fn check_signature_packets(sig: &Header) -> Result<()> {
    for (what, bytes) in signature_packets(sig, true)? {
        let mut packets = pgp::packet::PacketParser::new(std::io::Cursor::new(&bytes[..]));
        let ok = match packets.next() {
            Some(Ok(pgp::packet::Packet::Signature(s))) => s.config().is_some(),
            _ => false,
        };
        if !ok || packets.next().is_some() {
            bail!("its {what} signature is not one OpenPGP signature packet (rpm: invalid OpenPGP signature)");
        }
    }
    Ok(())
}

/// What the headers say about the payload.
#[derive(Debug, Clone)]
pub struct PayloadWords {
    /// The compressor the header names; `None`: no tag (rpm reads gzip,
    /// and an uncompressed payload has no tag).
    pub compressor: Option<Compression>,
    /// Digests of the compressed payload.
    pub digests: Vec<(DigestAlgo, String)>,
    /// Digests of the uncompressed payload.
    pub alt_digests: Vec<(DigestAlgo, String)>,
    /// The legacy MD5 over main header and compressed payload.
    pub legacy_md5: Option<String>,
    /// Main header + compressed payload, in bytes.
    pub size: Option<u64>,
    /// Uncompressed payload, in bytes.
    pub archive_size: Option<u64>,
}

impl PayloadWords {
    fn read(h: &Headers) -> Result<PayloadWords> {
        let main = &h.main;
        match main.utf8_string(tag::PAYLOADFORMAT)? {
            None | Some("cpio") => {}
            Some("drpm") => {
                bail!("is a delta RPM (payload format drpm), which cannot be imported as a package")
            }
            Some(f) => bail!("its payload format is {f:?}; rpm reads only cpio"),
        }
        let compressor = match main.string(tag::PAYLOADCOMPRESSOR)? {
            None => None,
            Some(name) => Some(match name.as_ref() {
                "gzip" => Compression::Gzip,
                "bzip2" => Compression::Bzip2,
                "xz" => Compression::Xz,
                "lzma" => Compression::Lzma,
                "zstd" => Compression::Zstd,
                other => bail!(
                    "its payload compressor {other:?} is not one rpm reads (gzip, bzip2, xz, lzma, zstd)"
                ),
            }),
        };
        let hex = |algo: DigestAlgo, s: &str, what: &str| -> Result<String> {
            let s = s.to_ascii_lowercase();
            if s.len() != algo.hex_len() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("its {what} {s:?} is not a {} digest", algo.name());
            }
            Ok(s)
        };
        let algo = match main.int(tag::PAYLOADDIGESTALGO)? {
            None => DigestAlgo::Sha256,
            Some(n) => DigestAlgo::from_pgp(n as u32)
                .ok_or_else(|| anyhow!("payload digest algorithm {n} is not supported"))?,
        };
        let mut digests = Vec::new();
        let mut alt_digests = Vec::new();
        for (t, into, what) in [
            (tag::PAYLOADDIGEST, &mut digests, "payload digest"),
            (
                tag::PAYLOADDIGESTALT,
                &mut alt_digests,
                "uncompressed payload digest",
            ),
        ] {
            for s in main.utf8_strings(t)?.unwrap_or_default() {
                into.push((algo, hex(algo, s, what)?));
            }
        }
        for (t, algo, alt) in [
            (tag::PAYLOAD_SHA512, DigestAlgo::Sha512, false),
            (tag::PAYLOAD_SHA512_ALT, DigestAlgo::Sha512, true),
            (tag::PAYLOAD_SHA3_256, DigestAlgo::Sha3_256, false),
            (tag::PAYLOAD_SHA3_256_ALT, DigestAlgo::Sha3_256, true),
        ] {
            for s in main.utf8_strings(t)?.unwrap_or_default() {
                let d = (algo, hex(algo, s, "payload digest")?);
                if alt {
                    alt_digests.push(d);
                } else {
                    digests.push(d);
                }
            }
        }
        let sig = &h.signature;
        Ok(PayloadWords {
            compressor,
            digests,
            alt_digests,
            legacy_md5: sig.bin(sigtag::MD5)?.map(hex::encode),
            size: match sig.int(sigtag::LONGSIZE)? {
                Some(n) => Some(n),
                None => sig.int(sigtag::SIZE)?,
            },
            archive_size: match sig.int(sigtag::LONGARCHIVESIZE)? {
                Some(n) => Some(n),
                None => sig.int(sigtag::PAYLOADSIZE)?,
            },
        })
    }

    /// The payload's compression, from its first bytes, which must be what
    /// the header names. An empty payload is accepted only for a package
    /// whose files have no data (`no_data`).
    pub fn compression(&self, head: &[u8], no_data: bool) -> Result<Compression> {
        if head.is_empty() && no_data {
            return Ok(self.compressor.unwrap_or(Compression::None));
        }
        let found = Compression::detect(head);
        match (self.compressor, found) {
            (Some(named), Some(f)) if named == f => Ok(f),
            (None, Some(f @ (Compression::Gzip | Compression::None))) => Ok(f),
            (named, found) => {
                let named = named.map_or("none (rpm reads gzip)".to_string(), |c| c.name().into());
                let found = found.map_or("no format rpm reads".into(), |c| c.name().to_string());
                bail!(
                    "its header says the payload compressor is {named}, but the payload is {found}"
                )
            }
        }
    }

    /// The hashers the compressed payload streams through: its digests,
    /// then the legacy MD5 over main header and payload.
    pub fn hashers(&self, main_header: &[u8]) -> Vec<Hasher> {
        let mut v: Vec<Hasher> = self.digests.iter().map(|(a, _)| a.hasher()).collect();
        if self.legacy_md5.is_some() {
            let mut h = DigestAlgo::Md5.hasher();
            h.update(main_header);
            v.push(h);
        }
        v
    }

    /// Checks the hashers of [`PayloadWords::hashers`] after the whole
    /// compressed payload, and the stated size of header and payload.
    pub fn check(&self, hashers: Vec<Hasher>, header_len: u64, payload_len: u64) -> Result<()> {
        let mut hashers = hashers.into_iter();
        for (algo, want) in &self.digests {
            let got = hashers.next().expect("hashers() made it").hex();
            if &got != want {
                bail!(
                    "payload {} digest mismatch (the payload is corrupt or was altered): expected {want}, got {got}",
                    algo.name()
                );
            }
        }
        if let Some(want) = &self.legacy_md5 {
            let got = hashers.next().expect("hashers() made it").hex();
            if &got != want {
                bail!(
                    "MD5 digest of header and payload does not match: expected {want}, got {got}"
                );
            }
        }
        let have = header_len + payload_len;
        if let Some(want) = self.size {
            if want != have {
                bail!("the signature header says header and payload are {want} bytes, but they are {have}");
            }
        }
        Ok(())
    }

    /// Hashers for the uncompressed payload.
    pub fn alt_hashers(&self) -> Vec<Hasher> {
        self.alt_digests.iter().map(|(a, _)| a.hasher()).collect()
    }

    /// Checks the uncompressed payload's digests and size.
    pub fn check_alt(&self, hashers: Vec<Hasher>, len: u64) -> Result<()> {
        for ((algo, want), h) in self.alt_digests.iter().zip(hashers) {
            let got = h.hex();
            if &got != want {
                bail!(
                    "uncompressed payload {} digest mismatch: expected {want}, got {got}",
                    algo.name()
                );
            }
        }
        if let Some(want) = self.archive_size {
            // The 32-bit tag wraps for archives over 4 GiB.
            if want != len && want != len & 0xffff_ffff {
                bail!("the signature header says the uncompressed payload is {want} bytes, but it is {len}");
            }
        }
        Ok(())
    }
}
