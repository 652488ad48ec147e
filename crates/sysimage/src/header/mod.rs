//! Reading RPM headers: the lead, the signature header and the main header,
//! from a header file, a full `.rpm` or an extent package (all three start
//! the same way). Only those bytes are read, never the payload; tags are
//! decoded on demand from the raw header bytes, so listing a package costs
//! one read and a handful of tag lookups.
//!
//! This is the one header reader of reimage: import, sync, fsck and the
//! query commands all read through it. It enforces what rpm 4.18's own
//! header loading enforces, and a little more ([`blob`]), so that a header
//! reimage accepts is one rpm loads with the same value for every tag.
//!
//! ```text
//! lead (96 bytes, magic ed ab ee db)
//! signature header: intro (16) + index (16 * n) + store, padded to 8 bytes
//! main header:      intro (16) + index (16 * n) + store
//! (payload: not read)
//! ```
use crate::digest::DigestAlgo;
use crate::error::{Error, Result};
use crate::nevra::Nevra;
use serde::Serialize;
use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod blob;
pub mod tagtypes;

pub use blob::{Kind, Lead, LEAD_SIZE};
pub use tagtypes::TagType;

/// Tag numbers used here (rpmtag.h).
pub mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const LICENSE: u32 = 1014;
    pub const PACKAGER: u32 = 1015;
    pub const GROUP: u32 = 1016;
    pub const URL: u32 = 1020;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const FILESIZES: u32 = 1028;
    pub const FILEMODES: u32 = 1030;
    pub const FILERDEVS: u32 = 1033;
    pub const FILEMTIMES: u32 = 1034;
    pub const FILEDIGESTS: u32 = 1035;
    pub const FILELINKTOS: u32 = 1036;
    pub const FILEFLAGS: u32 = 1037;
    pub const FILEUSERNAME: u32 = 1039;
    pub const FILEGROUPNAME: u32 = 1040;
    pub const SOURCERPM: u32 = 1044;
    pub const FILEVERIFYFLAGS: u32 = 1045;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const REQUIREVERSION: u32 = 1050;
    pub const FILEDEVICES: u32 = 1095;
    pub const FILEINODES: u32 = 1096;
    pub const SOURCEPACKAGE: u32 = 1106;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const PAYLOADFORMAT: u32 = 1124;
    pub const PAYLOADCOMPRESSOR: u32 = 1125;
    pub const LONGFILESIZES: u32 = 5008;
    pub const LONGSIZE: u32 = 5009;
    pub const FILECAPS: u32 = 5010;
    pub const FILEDIGESTALGO: u32 = 5011;
    /// SHA256 (or PAYLOADDIGESTALGO) of the compressed payload (s[]).
    pub const PAYLOADDIGEST: u32 = 5092;
    pub const PAYLOADDIGESTALGO: u32 = 5093;
    /// The same digest of the uncompressed payload (s[]).
    pub const PAYLOADDIGESTALT: u32 = 5097;
    /// rpm 6 payload digests (s), unknown to rpm 4.18.
    pub const PAYLOAD_SHA512: u32 = 5121;
    pub const PAYLOAD_SHA512_ALT: u32 = 5122;
    pub const PAYLOAD_SHA3_256: u32 = 5123;
    pub const PAYLOAD_SHA3_256_ALT: u32 = 5124;
}

/// Signature header tag numbers (rpmtag.h `rpmSigTag_e`).
pub mod sigtag {
    pub const DSA: u32 = 267;
    pub const RSA: u32 = 268;
    pub const SHA1: u32 = 269;
    pub const LONGSIZE: u32 = 270;
    pub const LONGARCHIVESIZE: u32 = 271;
    pub const SHA256: u32 = 273;
    /// rpm 6: OpenPGP signatures (v6 keys), base64 strings.
    pub const OPENPGP: u32 = 278;
    /// rpm 6: SHA3-256 of the main header.
    pub const SHA3_256: u32 = 279;
    pub const SIZE: u32 = 1000;
    pub const PGP: u32 = 1002;
    pub const MD5: u32 = 1004;
    pub const GPG: u32 = 1005;
    pub const PAYLOADSIZE: u32 = 1007;
    pub const RESERVEDSPACE: u32 = 1008;
}

use blob::Entry;

/// A checked header structure (signature or main): its raw bytes (intro +
/// index + store, exactly as in the package) and its index sorted by tag.
/// Tag values are decoded on demand.
#[derive(Clone)]
pub struct Header {
    path: Arc<Path>,
    kind: Kind,
    bytes: Vec<u8>,
    index: Vec<Entry>,
    store: usize,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("bytes", &self.bytes.len())
            .field("tags", &self.index.len())
            .finish()
    }
}

/// Reads exactly `buf.len()` bytes, naming a short read as truncation.
fn read_part(r: &mut impl Read, buf: &mut [u8], path: &Path, what: &str) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Error::Truncated {
                    path: path.into(),
                    reason: format!("{what}: {got} of {} bytes", buf.len()),
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// Reads one header structure onto the end of `out`, its sizes checked
/// against rpm's limits before anything that large is read (a lying intro
/// never makes a big allocation: only what the file holds is read).
fn read_structure(r: &mut impl Read, out: &mut Vec<u8>, kind: Kind, path: &Path) -> Result<()> {
    let mut intro = [0u8; 16];
    read_part(r, &mut intro, path, kind.name())?;
    let (il, dl) = blob::check_intro(&intro, kind).map_err(|reason| {
        if intro[..4] != blob::HEADER_MAGIC[..4] {
            Error::NotRpm {
                path: path.into(),
                reason: format!("{}: {reason}", kind.name()),
            }
        } else {
            corrupt(path, kind, reason)
        }
    })?;
    let len = 16 * il as u64 + dl as u64;
    out.extend_from_slice(&intro);
    let got = r
        .take(len)
        .read_to_end(out)
        .map_err(|e| Error::io(path, e))?;
    if (got as u64) < len {
        return Err(Error::Truncated {
            path: path.into(),
            reason: format!("{}: {got} of {len} bytes", kind.name()),
        });
    }
    Ok(())
}

fn corrupt(path: &Path, kind: Kind, reason: String) -> Error {
    Error::Corrupt {
        path: path.into(),
        reason: format!("{}: {reason}", kind.name()),
    }
}

/// The byte lengths of the parts of a package's header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeaderSpan {
    /// Length of the signature header including its padding to 8 bytes.
    pub signature_len: u64,
    /// Length of the main header (intro + index + store).
    pub header_len: u64,
}

impl HeaderSpan {
    /// Bytes from the start of the file to the end of the main header: the
    /// length of a header file cut out of this package.
    pub fn end(&self) -> u64 {
        LEAD_SIZE as u64 + self.signature_len + self.header_len
    }
}

/// The lead, signature header and main header of a package, checked, with
/// their bytes exactly as read.
#[derive(Debug, Clone)]
pub struct Headers {
    /// lead + signature header + padding + main header, unchanged.
    pub bytes: Vec<u8>,
    /// Offset of the main header within `bytes`.
    pub header_start: usize,
    pub lead: Lead,
    pub signature: Header,
    pub main: Header,
}

impl Headers {
    /// Reads and checks the lead, signature header and main header from a
    /// stream positioned at the start of a package, leaving it at the first
    /// byte after the main header (the payload). `path` names the source in
    /// errors.
    pub fn read(r: &mut impl Read, path: &Path) -> Result<Headers> {
        let mut bytes = vec![0u8; LEAD_SIZE];
        // The magic first: a short file that is not an RPM is "not an RPM",
        // not "truncated".
        let mut got = 0;
        while got < LEAD_SIZE {
            match r.read(&mut bytes[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got >= 4 && bytes[..4] != blob::LEAD_MAGIC {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        if got < 4 || bytes[..4] != blob::LEAD_MAGIC {
            return Err(Error::NotRpm {
                path: path.into(),
                reason: "no RPM lead magic".into(),
            });
        }
        if got < LEAD_SIZE {
            return Err(Error::Truncated {
                path: path.into(),
                reason: format!("lead: {got} of {LEAD_SIZE} bytes"),
            });
        }
        let lead_bytes: &[u8; LEAD_SIZE] = bytes[..LEAD_SIZE].try_into().unwrap();
        let lead = blob::check_lead(lead_bytes).map_err(|e| match e {
            blob::LeadError::NotRpm => Error::NotRpm {
                path: path.into(),
                reason: "no RPM lead magic".into(),
            },
            blob::LeadError::Refused(reason) => Error::Corrupt {
                path: path.into(),
                reason,
            },
        })?;
        read_structure(r, &mut bytes, Kind::Signature, path)?;
        let sig_end = bytes.len();
        let pad = (8 - (sig_end - LEAD_SIZE) % 8) % 8;
        bytes.resize(sig_end + pad, 0);
        read_part(r, &mut bytes[sig_end..], path, "signature header padding")?;
        if bytes[sig_end..].iter().any(|&b| b != 0) {
            return Err(corrupt(
                path,
                Kind::Signature,
                "its padding to 8 bytes is not zero".into(),
            ));
        }
        let header_start = bytes.len();
        read_structure(r, &mut bytes, Kind::Main, path)?;
        let signature = Header::parse(bytes[LEAD_SIZE..sig_end].to_vec(), Kind::Signature, path)?;
        signature.check_signature_tags()?;
        let main = Header::parse(bytes[header_start..].to_vec(), Kind::Main, path)?;
        Ok(Headers {
            bytes,
            header_start,
            lead,
            signature,
            main,
        })
    }

    /// Reads the headers of the package or header file at `path`.
    pub fn read_path(path: &Path) -> Result<Headers> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Headers::read(&mut std::io::BufReader::with_capacity(64 << 10, f), path)
    }

    /// The main header's bytes (what header digests and signatures cover).
    pub fn main_bytes(&self) -> &[u8] {
        &self.bytes[self.header_start..]
    }

    pub fn span(&self) -> HeaderSpan {
        HeaderSpan {
            signature_len: (self.header_start - LEAD_SIZE) as u64,
            header_len: (self.bytes.len() - self.header_start) as u64,
        }
    }
}

impl Header {
    /// Reads and checks the lead and both headers from a stream positioned
    /// at the start of a package; reads nothing beyond the main header.
    pub fn read(r: &mut impl Read, path: &Path) -> Result<(Header, HeaderSpan)> {
        let h = Headers::read(r, path)?;
        let span = h.span();
        Ok((h.main, span))
    }

    /// Reads the main header of the package or header file at `path`.
    pub fn read_path(path: &Path) -> Result<(Header, HeaderSpan)> {
        let h = Headers::read_path(path)?;
        let span = h.span();
        Ok((h.main, span))
    }

    /// Checks main header bytes (intro + index + store) held in memory.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Header> {
        Header::parse(bytes, Kind::Main, path)
    }

    /// Checks a header structure (see [`blob::check`]) and indexes it.
    pub fn parse(bytes: Vec<u8>, kind: Kind, path: &Path) -> Result<Header> {
        let mut index = blob::check(&bytes, kind).map_err(|r| corrupt(path, kind, r))?;
        let il = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        index.sort_by_key(|e| e.tag);
        Ok(Header {
            path: path.into(),
            kind,
            bytes,
            index,
            store: 16 + 16 * il,
        })
    }

    /// The file this header was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw header bytes (intro + index + store).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn entry(&self, tag: u32) -> Option<Entry> {
        self.index
            .binary_search_by_key(&tag, |e| e.tag)
            .ok()
            .map(|i| self.index[i])
    }

    /// Whether the header has `tag`.
    pub fn has(&self, tag: u32) -> bool {
        self.entry(tag).is_some()
    }

    /// The type and count of `tag`, if present.
    pub fn type_of(&self, tag: u32) -> Option<(TagType, u32)> {
        self.entry(tag).map(|e| (e.ty, e.count))
    }

    /// Every tag of the header with its type and count, by tag.
    pub fn tags(&self) -> impl Iterator<Item = (u32, TagType, u32)> + '_ {
        self.index.iter().map(|e| (e.tag, e.ty, e.count))
    }

    fn corrupt(&self, tag: u32, what: &str) -> Error {
        Error::Corrupt {
            path: self.path.to_path_buf(),
            reason: format!("{}: tag {tag}: {what}", self.kind.name()),
        }
    }

    fn data(&self, e: &Entry) -> &[u8] {
        let at = self.store + e.offset as usize;
        &self.bytes[at..at + e.len as usize]
    }

    /// The raw strings of a string tag (one for STRING), without their NULs.
    fn raw_strings(&self, tag: u32) -> Result<Option<Vec<&[u8]>>> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if !e.ty.is_string() {
            return Err(self.corrupt(tag, "not a string"));
        }
        // The data was checked to hold `count` NUL-terminated strings exactly.
        let data = self.data(&e);
        Ok(Some(
            data[..data.len() - 1]
                .split(|&b| b == 0)
                .take(e.count as usize)
                .collect(),
        ))
    }

    /// The first string of a STRING, I18NSTRING or STRING_ARRAY tag (bytes
    /// that are not UTF-8 shown as U+FFFD: for descriptive text).
    pub fn string(&self, tag: u32) -> Result<Option<Cow<'_, str>>> {
        Ok(self.strings(tag)?.and_then(|v| v.into_iter().next()))
    }

    /// All strings of a string tag (one for STRING), lossily decoded.
    pub fn strings(&self, tag: u32) -> Result<Option<Vec<Cow<'_, str>>>> {
        Ok(self
            .raw_strings(tag)?
            .map(|v| v.into_iter().map(String::from_utf8_lossy).collect()))
    }

    /// All strings of a string tag, which must be UTF-8: for names, paths and
    /// owners, which reimage uses as they are (a lossy rendering would make
    /// reimage and rpm read different values).
    pub fn utf8_strings(&self, tag: u32) -> Result<Option<Vec<&str>>> {
        let Some(v) = self.raw_strings(tag)? else {
            return Ok(None);
        };
        v.into_iter()
            .map(|s| {
                std::str::from_utf8(s).map_err(|_| self.corrupt(tag, "a string that is not UTF-8"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The first string of a tag, which must be UTF-8.
    pub fn utf8_string(&self, tag: u32) -> Result<Option<&str>> {
        Ok(self.utf8_strings(tag)?.and_then(|v| v.into_iter().next()))
    }

    /// An integer array tag widened to u64 (INT8/16/32/64, CHAR).
    pub fn ints(&self, tag: u32) -> Result<Option<Vec<u64>>> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let width = match e.ty {
            TagType::Char | TagType::Int8 => 1,
            TagType::Int16 => 2,
            TagType::Int32 => 4,
            TagType::Int64 => 8,
            _ => return Err(self.corrupt(tag, "not an integer")),
        };
        Ok(Some(
            self.data(&e)
                .chunks_exact(width)
                .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
                .collect(),
        ))
    }

    /// The first value of an integer tag.
    pub fn int(&self, tag: u32) -> Result<Option<u64>> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let width = match e.ty {
            TagType::Char | TagType::Int8 => 1,
            TagType::Int16 => 2,
            TagType::Int32 => 4,
            TagType::Int64 => 8,
            _ => return Err(self.corrupt(tag, "not an integer")),
        };
        Ok(Some(
            self.data(&e)[..width]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | b as u64),
        ))
    }

    /// The raw bytes of a BIN tag.
    pub fn bin(&self, tag: u32) -> Result<Option<&[u8]>> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.ty != TagType::Bin {
            return Err(self.corrupt(tag, "not binary"));
        }
        Ok(Some(self.data(&e)))
    }

    /// A tag that must have one type and one value (or be absent).
    fn expect(&self, tag: u32, ty: TagType, count: Option<u32>, what: &str) -> Result<()> {
        if let Some(e) = self.entry(tag) {
            if e.ty != ty || count.is_some_and(|c| c != e.count) {
                return Err(self.corrupt(
                    tag,
                    &format!(
                        "{what} is {} with {} items, not {}{} (rpm: invalid type or count)",
                        e.ty.name(),
                        e.count,
                        ty.name(),
                        count.map(|c| format!(" with {c}")).unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The signature header tags rpm verifies must have the types, counts
    /// and forms rpm's verifier requires (`rpmvfytags` in `lib/rpmvs.c`): a
    /// header that fails them is one rpm refuses to load. Digests must be
    /// hex of their algorithm's length.
    fn check_signature_tags(&self) -> Result<()> {
        use TagType::*;
        self.expect(sigtag::MD5, Bin, Some(16), "the MD5 digest")?;
        for (t, w) in [
            (sigtag::PGP, "the PGP signature"),
            (sigtag::GPG, "the GPG signature"),
            (sigtag::DSA, "the DSA header signature"),
            (sigtag::RSA, "the RSA header signature"),
            (sigtag::RESERVEDSPACE, "the reserved space"),
        ] {
            self.expect(t, Bin, None, w)?;
        }
        self.expect(sigtag::SIZE, Int32, Some(1), "the size")?;
        self.expect(sigtag::PAYLOADSIZE, Int32, Some(1), "the payload size")?;
        self.expect(sigtag::LONGSIZE, Int64, Some(1), "the size")?;
        self.expect(sigtag::LONGARCHIVESIZE, Int64, Some(1), "the payload size")?;
        for (t, len, w) in [
            (sigtag::SHA1, 40, "the SHA1 header digest"),
            (sigtag::SHA256, 64, "the SHA256 header digest"),
            (sigtag::SHA3_256, 64, "the SHA3-256 header digest"),
        ] {
            self.expect(t, String, Some(1), w)?;
            if let Some(s) = self.raw_strings(t)?.and_then(|v| v.into_iter().next()) {
                if s.len() != len || !s.iter().all(u8::is_ascii_hexdigit) {
                    return Err(self.corrupt(t, &format!("{w} is not {len} hex digits")));
                }
            }
        }
        Ok(())
    }

    /// A required UTF-8 string.
    fn req_string(&self, tag: u32, what: &str) -> Result<String> {
        self.utf8_string(tag)?
            .map(str::to_string)
            .ok_or_else(|| Error::Corrupt {
                path: self.path.to_path_buf(),
                reason: format!("no {what}"),
            })
    }

    /// The package's NEVRA.
    pub fn nevra(&self) -> Result<Nevra> {
        Ok(Nevra {
            name: self.req_string(tag::NAME, "name")?,
            epoch: self.int(tag::EPOCH)?.map(|e| e as u32),
            version: self.req_string(tag::VERSION, "version")?,
            release: self.req_string(tag::RELEASE, "release")?,
            arch: self
                .utf8_string(tag::ARCH)?
                .map(str::to_string)
                .unwrap_or_else(|| "noarch".into()),
        })
    }
}

/// A file's attribute flags (`%config`, `%doc`, `%ghost`, ...), rpmfiles.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct FileFlags(pub u32);

impl FileFlags {
    pub const CONFIG: u32 = 1 << 0;
    pub const DOC: u32 = 1 << 1;
    pub const MISSINGOK: u32 = 1 << 3;
    pub const NOREPLACE: u32 = 1 << 4;
    pub const SPECFILE: u32 = 1 << 5;
    pub const GHOST: u32 = 1 << 6;
    pub const LICENSE: u32 = 1 << 7;
    pub const README: u32 = 1 << 8;
    pub const PUBKEY: u32 = 1 << 11;
    pub const ARTIFACT: u32 = 1 << 12;

    pub fn has(self, f: u32) -> bool {
        self.0 & f != 0
    }
    pub fn is_config(self) -> bool {
        self.has(Self::CONFIG)
    }
    pub fn is_ghost(self) -> bool {
        self.has(Self::GHOST)
    }
    pub fn is_doc(self) -> bool {
        self.has(Self::DOC)
    }

    /// The one-letter marker `rpm -V` prints before the path.
    pub fn verify_marker(self) -> char {
        if self.has(Self::CONFIG) {
            'c'
        } else if self.has(Self::DOC) {
            'd'
        } else if self.has(Self::GHOST) {
            'g'
        } else if self.has(Self::LICENSE) {
            'l'
        } else if self.has(Self::PUBKEY) {
            'P'
        } else if self.has(Self::README) {
            'r'
        } else {
            ' '
        }
    }

    /// The flag names, for JSON and `--dump`-like output.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::CONFIG, "config"),
            (Self::DOC, "doc"),
            (Self::MISSINGOK, "missingok"),
            (Self::NOREPLACE, "noreplace"),
            (Self::SPECFILE, "specfile"),
            (Self::GHOST, "ghost"),
            (Self::LICENSE, "license"),
            (Self::README, "readme"),
            (Self::PUBKEY, "pubkey"),
            (Self::ARTIFACT, "artifact"),
        ]
        .into_iter()
        .filter(|&(f, _)| self.has(f))
        .map(|(_, n)| n)
        .collect()
    }
}

/// The kind of a file, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
    Unknown,
}

impl FileType {
    pub fn from_mode(mode: u32) -> FileType {
        match mode & 0o170000 {
            0o100000 => FileType::File,
            0o040000 => FileType::Dir,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::Char,
            0o060000 => FileType::Block,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => FileType::Unknown,
        }
    }
}

/// One file as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The path as the header names it (`/usr/bin/x`, `/etc/x`, `/bin/x`).
    pub path: String,
    pub mode: u32,
    #[serde(rename = "type")]
    pub file_type: FileType,
    pub size: u64,
    pub user: String,
    pub group: String,
    pub mtime: u32,
    /// Hex digest of the content (empty for non-regular files).
    pub digest: String,
    /// Symlink target (empty unless a symlink).
    pub link: String,
    pub flags: FileFlags,
    /// Which attributes `verify` checks (`%verify(...)`), RPMVERIFY_* bits.
    pub verify_flags: u32,
    pub rdev: u32,
    pub inode: u32,
    /// File capabilities in text form (`cap_net_raw=ep`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caps: Option<String>,
}

/// A dependency (provide or require): `name [op version]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dep {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl std::fmt::Display for Dep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.op.is_empty() {
            write!(f, " {} {}", self.op, self.version)?;
        }
        Ok(())
    }
}

fn dep_op(flags: u64) -> &'static str {
    match flags & 0xe {
        2 => "<",
        4 => ">",
        8 => "=",
        10 => "<=",
        12 => ">=",
        _ => "",
    }
}

/// Package description fields for `info` (like `rpm -qi`).
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub nevra: Nevra,
    pub summary: String,
    pub description: String,
    pub size: u64,
    pub license: String,
    pub group: String,
    pub url: String,
    pub vendor: String,
    pub packager: String,
    pub build_time: u64,
    pub build_host: String,
    pub source_rpm: String,
    pub file_digest_algo: &'static str,
}

/// A package of a header directory: its identity and list fields, decoded
/// at read time; files and dependencies are decoded from the kept header
/// on demand.
#[derive(Debug, Clone)]
pub struct Package {
    pub nevra: Nevra,
    pub summary: String,
    /// Installed size in bytes (`LONGSIZE`, else `SIZE`).
    pub size: u64,
    header: Header,
}

impl Package {
    /// Decodes the list fields of a header.
    pub fn from_header(header: Header) -> Result<Package> {
        let nevra = header.nevra()?;
        let summary = header
            .string(tag::SUMMARY)?
            .map(Cow::into_owned)
            .unwrap_or_default();
        let size = match header.int(tag::LONGSIZE)? {
            Some(s) => s,
            None => header.int(tag::SIZE)?.unwrap_or(0),
        };
        Ok(Package {
            nevra,
            summary,
            size,
            header,
        })
    }

    /// Reads a package from a header file, `.rpm` or extent package.
    pub fn read_path(path: &Path) -> Result<Package> {
        Package::from_header(Header::read_path(path)?.0)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file this package was read from.
    pub fn path(&self) -> PathBuf {
        self.header.path.to_path_buf()
    }

    /// The digest algorithm of the package's file digests (MD5 when the
    /// header names none; `None` for one this build does not know).
    pub fn digest_algo(&self) -> Result<Option<DigestAlgo>> {
        Ok(match self.header.int(tag::FILEDIGESTALGO)? {
            None => Some(DigestAlgo::Md5),
            Some(n) => u32::try_from(n).ok().and_then(DigestAlgo::from_pgp),
        })
    }

    /// The package's files, in header order.
    pub fn files(&self) -> Result<Vec<FileEntry>> {
        let h = &self.header;
        let paths: Vec<String> = match h.strings(tag::BASENAMES)? {
            Some(base) => {
                let dirs = h.strings(tag::DIRNAMES)?.unwrap_or_default();
                let idx = h.ints(tag::DIRINDEXES)?.unwrap_or_default();
                if idx.len() != base.len() {
                    return Err(h.corrupt(tag::DIRINDEXES, "count differs from BASENAMES"));
                }
                base.iter()
                    .zip(&idx)
                    .map(|(b, &i)| {
                        dirs.get(i as usize)
                            .map(|d| format!("{d}{b}"))
                            .ok_or_else(|| h.corrupt(tag::DIRINDEXES, "index out of range"))
                    })
                    .collect::<Result<_>>()?
            }
            None => match h.strings(tag::OLDFILENAMES)? {
                Some(v) => v.into_iter().map(Cow::into_owned).collect(),
                None => return Ok(Vec::new()),
            },
        };
        let n = paths.len();
        let ints = |t: u32| -> Result<Vec<u64>> {
            let v = h.ints(t)?.unwrap_or_default();
            if !v.is_empty() && v.len() != n {
                return Err(h.corrupt(t, "count differs from the file count"));
            }
            Ok(v)
        };
        let strs = |t: u32| -> Result<Vec<Cow<'_, str>>> {
            let v = h.strings(t)?.unwrap_or_default();
            if !v.is_empty() && v.len() != n {
                return Err(h.corrupt(t, "count differs from the file count"));
            }
            Ok(v)
        };
        let sizes = match h.has(tag::LONGFILESIZES) {
            true => ints(tag::LONGFILESIZES)?,
            false => ints(tag::FILESIZES)?,
        };
        let modes = ints(tag::FILEMODES)?;
        let rdevs = ints(tag::FILERDEVS)?;
        let mtimes = ints(tag::FILEMTIMES)?;
        let digests = strs(tag::FILEDIGESTS)?;
        let links = strs(tag::FILELINKTOS)?;
        let flags = ints(tag::FILEFLAGS)?;
        let users = strs(tag::FILEUSERNAME)?;
        let groups = strs(tag::FILEGROUPNAME)?;
        let vflags = ints(tag::FILEVERIFYFLAGS)?;
        let inodes = ints(tag::FILEINODES)?;
        let caps = strs(tag::FILECAPS)?;
        let get = |v: &Vec<u64>, i: usize| v.get(i).copied().unwrap_or(0);
        let gets =
            |v: &Vec<Cow<'_, str>>, i: usize| v.get(i).map(|s| s.to_string()).unwrap_or_default();
        Ok(paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| {
                let mode = get(&modes, i) as u32;
                FileEntry {
                    path,
                    mode,
                    file_type: FileType::from_mode(mode),
                    size: get(&sizes, i),
                    user: gets(&users, i),
                    group: gets(&groups, i),
                    mtime: get(&mtimes, i) as u32,
                    digest: gets(&digests, i),
                    link: gets(&links, i),
                    flags: FileFlags(get(&flags, i) as u32),
                    verify_flags: vflags.get(i).map(|&v| v as u32).unwrap_or(u32::MAX),
                    rdev: get(&rdevs, i) as u32,
                    inode: get(&inodes, i) as u32,
                    caps: caps.get(i).filter(|c| !c.is_empty()).map(|c| c.to_string()),
                }
            })
            .collect())
    }

    /// Only the file paths (cheaper than [`Package::files`]).
    pub fn file_paths(&self) -> Result<Vec<String>> {
        let h = &self.header;
        match h.strings(tag::BASENAMES)? {
            Some(base) => {
                let dirs = h.strings(tag::DIRNAMES)?.unwrap_or_default();
                let idx = h.ints(tag::DIRINDEXES)?.unwrap_or_default();
                base.iter()
                    .zip(&idx)
                    .map(|(b, &i)| {
                        dirs.get(i as usize)
                            .map(|d| format!("{d}{b}"))
                            .ok_or_else(|| h.corrupt(tag::DIRINDEXES, "index out of range"))
                    })
                    .collect()
            }
            None => Ok(h
                .strings(tag::OLDFILENAMES)?
                .unwrap_or_default()
                .into_iter()
                .map(Cow::into_owned)
                .collect()),
        }
    }

    fn deps(&self, name: u32, flags: u32, version: u32) -> Result<Vec<Dep>> {
        let h = &self.header;
        let names = h.strings(name)?.unwrap_or_default();
        let flags = h.ints(flags)?.unwrap_or_default();
        let versions = h.strings(version)?.unwrap_or_default();
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v = versions.get(i).map(|s| s.to_string()).unwrap_or_default();
                let op = if v.is_empty() {
                    ""
                } else {
                    dep_op(flags.get(i).copied().unwrap_or(0))
                };
                Dep {
                    name: n.to_string(),
                    op: op.into(),
                    version: if op.is_empty() { String::new() } else { v },
                }
            })
            .collect())
    }

    /// What the package provides (`rpm -q --provides`).
    pub fn provides(&self) -> Result<Vec<Dep>> {
        self.deps(tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION)
    }

    /// What the package requires (`rpm -q --requires`).
    pub fn requires(&self) -> Result<Vec<Dep>> {
        self.deps(tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION)
    }

    /// Descriptive fields (`rpm -qi`).
    pub fn info(&self) -> Result<Info> {
        let h = &self.header;
        let s = |t: u32| -> Result<String> {
            Ok(h.string(t)?.map(Cow::into_owned).unwrap_or_default())
        };
        Ok(Info {
            nevra: self.nevra.clone(),
            summary: self.summary.clone(),
            description: s(tag::DESCRIPTION)?,
            size: self.size,
            license: s(tag::LICENSE)?,
            group: s(tag::GROUP)?,
            url: s(tag::URL)?,
            vendor: s(tag::VENDOR)?,
            packager: s(tag::PACKAGER)?,
            build_time: h.int(tag::BUILDTIME)?.unwrap_or(0),
            build_host: s(tag::BUILDHOST)?,
            source_rpm: s(tag::SOURCERPM)?,
            file_digest_algo: self.digest_algo()?.map_or("unknown", DigestAlgo::id),
        })
    }
}
