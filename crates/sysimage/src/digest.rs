//! The digest algorithms rpm uses for files, headers and payloads, by their
//! OpenPGP hash numbers (`PGPHASHALGO_*`), and a running hasher of any of
//! them: the one digest type of reimage.
use serde::Serialize;

/// The digest algorithms rpm uses (`PGPHASHALGO_*` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sha224,
    Sha3_256,
    Sha3_512,
}

impl DigestAlgo {
    pub fn from_pgp(n: u32) -> Option<DigestAlgo> {
        Some(match n {
            1 => DigestAlgo::Md5,
            2 => DigestAlgo::Sha1,
            8 => DigestAlgo::Sha256,
            9 => DigestAlgo::Sha384,
            10 => DigestAlgo::Sha512,
            11 => DigestAlgo::Sha224,
            12 => DigestAlgo::Sha3_256,
            14 => DigestAlgo::Sha3_512,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgo::Md5 => "MD5",
            DigestAlgo::Sha1 => "SHA1",
            DigestAlgo::Sha256 => "SHA256",
            DigestAlgo::Sha384 => "SHA384",
            DigestAlgo::Sha512 => "SHA512",
            DigestAlgo::Sha224 => "SHA224",
            DigestAlgo::Sha3_256 => "SHA3-256",
            DigestAlgo::Sha3_512 => "SHA3-512",
        }
    }
    /// The lowercase name query output uses (`sha256`, `sha3-256`).
    pub fn id(self) -> &'static str {
        match self {
            DigestAlgo::Md5 => "md5",
            DigestAlgo::Sha1 => "sha1",
            DigestAlgo::Sha256 => "sha256",
            DigestAlgo::Sha384 => "sha384",
            DigestAlgo::Sha512 => "sha512",
            DigestAlgo::Sha224 => "sha224",
            DigestAlgo::Sha3_256 => "sha3-256",
            DigestAlgo::Sha3_512 => "sha3-512",
        }
    }
    /// Length of a digest in hex.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgo::Md5 => 32,
            DigestAlgo::Sha1 => 40,
            DigestAlgo::Sha224 => 56,
            DigestAlgo::Sha256 | DigestAlgo::Sha3_256 => 64,
            DigestAlgo::Sha384 => 96,
            DigestAlgo::Sha512 | DigestAlgo::Sha3_512 => 128,
        }
    }
    pub fn hasher(self) -> Hasher {
        use sha2::Digest;
        match self {
            DigestAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            DigestAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            DigestAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgo::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            DigestAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            DigestAlgo::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            DigestAlgo::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            DigestAlgo::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
        }
    }
}

/// A running digest of any algorithm rpm uses.
#[derive(Clone)]
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha224(sha2::Sha224),
    Sha3_256(sha3::Sha3_256),
    Sha3_512(sha3::Sha3_512),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha3_256(h) => h.update(data),
            Hasher::Sha3_512(h) => h.update(data),
        }
    }
    /// The digest as lowercase hex.
    pub fn hex(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha3_256(h) => hex::encode(h.finalize()),
            Hasher::Sha3_512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Hex digest of `data`.
pub fn digest_hex(algo: DigestAlgo, data: &[u8]) -> String {
    let mut h = algo.hasher();
    h.update(data);
    h.hex()
}
