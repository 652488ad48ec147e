//! The extent-package format (version 1), documented in `docs/FORMAT.md`.
//!
//! ```text
//! 0                 lead + signature header + padding + main header, unchanged
//! align(H)          file data: each regular file's content at a 4096-aligned
//!                   offset, in header file-index order, zero padded to the next
//!                   boundary; a hardlink set once, at its first file index
//! index_offset      index: magic "RIMGINDX", version, block size, header length,
//!                   SHA256 of the main header, entry count, entries
//! end - 48          trailer: index offset, index length, index checksum (first
//!                   16 bytes of its BLAKE3), version, magic "RIMGXPKG"
//! ```
//! All integers little-endian. The file is a pure function of the header bytes
//! and the file contents: no timestamps, no host data.
use std::fs::File;
use std::os::unix::fs::FileExt;

pub const FORMAT_VERSION: u32 = 1;
pub const BLOCK: u64 = 4096;
pub const INDEX_MAGIC: &[u8; 8] = b"RIMGINDX";
pub const TRAILER_MAGIC: &[u8; 8] = b"RIMGXPKG";
pub const TRAILER_LEN: u64 = 48;
const INDEX_HEAD_LEN: usize = 8 + 4 + 4 + 8 + 32 + 4 + 4;
const ENTRY_LEN: usize = 4 + 4 + 8 + 8 + 32;
/// How much of the tail one read fetches; most indexes fit.
const TAIL_READ: u64 = 64 * 1024;

/// Entry flag: this file is a hardlink whose data is stored at an earlier
/// entry (same offset and length).
pub const FLAG_HARDLINK_ALIAS: u32 = 1;

/// Rounds `n` up to the block size; saturates at `u64::MAX` (not aligned)
/// for sizes within a block of `u64::MAX`, so a hostile size makes the
/// callers' checked arithmetic fail instead of wrapping to 0.
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// One regular file's data in the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Index of the file in the header's file arrays.
    pub file_index: u32,
    pub flags: u32,
    /// Offset of the data (a multiple of the block size; 0 for empty files).
    pub offset: u64,
    /// Length of the content (without padding).
    pub length: u64,
    /// BLAKE3 of the content.
    pub blake3: [u8; 32],
}

/// The trailing index of an extent package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Length of lead + signature + main header at the start of the file.
    pub header_len: u64,
    /// SHA256 of the main header bytes: with the NEVRA, the package's identity.
    pub header_sha256: [u8; 32],
    /// One entry per regular file, ordered by file index.
    pub entries: Vec<Entry>,
}

/// Why an extent package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not an extent package (no trailer magic; file size {0})")]
    NoTrailer(u64),
    #[error("extent-package format version {0} is not supported (this reimage reads version {FORMAT_VERSION})")]
    Version(u32),
    #[error("extent package is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn damaged(msg: impl Into<String>) -> FormatError {
    FormatError::Damaged(msg.into())
}

impl Index {
    /// Offset where file data starts.
    pub fn data_start(&self) -> u64 {
        align_up(self.header_len)
    }

    /// Index block + trailer, to be written at `index_offset`.
    pub fn encode(&self, index_offset: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(INDEX_HEAD_LEN + self.entries.len() * ENTRY_LEN + 48);
        v.extend_from_slice(INDEX_MAGIC);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&(BLOCK as u32).to_le_bytes());
        v.extend_from_slice(&self.header_len.to_le_bytes());
        v.extend_from_slice(&self.header_sha256);
        v.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        for e in &self.entries {
            v.extend_from_slice(&e.file_index.to_le_bytes());
            v.extend_from_slice(&e.flags.to_le_bytes());
            v.extend_from_slice(&e.offset.to_le_bytes());
            v.extend_from_slice(&e.length.to_le_bytes());
            v.extend_from_slice(&e.blake3);
        }
        let index_len = v.len() as u64;
        let sum = blake3::hash(&v);
        v.extend_from_slice(&index_offset.to_le_bytes());
        v.extend_from_slice(&index_len.to_le_bytes());
        v.extend_from_slice(&sum.as_bytes()[..16]);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(TRAILER_MAGIC);
        v
    }

    /// Reads and checks the index of an extent package (one read of the tail
    /// for all but very large indexes).
    pub fn read(file: &File) -> Result<(Index, u64), FormatError> {
        let size = file.metadata()?.len();
        if size < TRAILER_LEN {
            return Err(FormatError::NoTrailer(size));
        }
        let want = size.min(TAIL_READ);
        let mut tail = vec![0u8; want as usize];
        file.read_exact_at(&mut tail, size - want)?;
        let t = &tail[tail.len() - TRAILER_LEN as usize..];
        if &t[40..48] != TRAILER_MAGIC {
            return Err(FormatError::NoTrailer(size));
        }
        let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let version = u32_at(t, 32);
        if version != FORMAT_VERSION {
            return Err(FormatError::Version(version));
        }
        if u32_at(t, 36) != 0 {
            return Err(damaged("trailer reserved field is not 0"));
        }
        let index_offset = u64_at(t, 0);
        let index_len = u64_at(t, 8);
        if index_offset
            .checked_add(index_len)
            .and_then(|x| x.checked_add(TRAILER_LEN))
            != Some(size)
        {
            return Err(damaged(format!(
                "index at {index_offset} of length {index_len} does not end at the trailer (file size {size})"
            )));
        }
        if index_len < INDEX_HEAD_LEN as u64 || index_offset % BLOCK != 0 {
            return Err(damaged("index is misplaced or too short"));
        }
        let index_bytes: Vec<u8> = if index_len + TRAILER_LEN <= want {
            let start = (want - TRAILER_LEN - index_len) as usize;
            tail[start..start + index_len as usize].to_vec()
        } else {
            let mut b = vec![0u8; index_len as usize];
            file.read_exact_at(&mut b, index_offset)?;
            b
        };
        if blake3::hash(&index_bytes).as_bytes()[..16] != t[16..32] {
            return Err(damaged("index checksum does not match"));
        }
        let b = &index_bytes;
        if &b[..8] != INDEX_MAGIC {
            return Err(damaged("index magic is wrong"));
        }
        let iversion = u32_at(b, 8);
        if iversion != FORMAT_VERSION {
            return Err(FormatError::Version(iversion));
        }
        let block = u32_at(b, 12) as u64;
        if block != BLOCK {
            return Err(damaged(format!("block size {block} is not {BLOCK}")));
        }
        let header_len = u64_at(b, 16);
        let mut header_sha256 = [0u8; 32];
        header_sha256.copy_from_slice(&b[24..56]);
        let count = u32_at(b, 56) as usize;
        if u32_at(b, 60) != 0 {
            return Err(damaged("index reserved field is not 0"));
        }
        if INDEX_HEAD_LEN as u64 + count as u64 * ENTRY_LEN as u64 != index_len {
            return Err(damaged(format!(
                "index claims {count} entries but is {index_len} bytes long"
            )));
        }
        let data_start = align_up(header_len);
        if data_start > index_offset {
            return Err(damaged("header length runs past the index"));
        }
        let mut entries = Vec::with_capacity(count);
        let mut last_index: Option<u32> = None;
        for i in 0..count {
            let e = &b[INDEX_HEAD_LEN + i * ENTRY_LEN..INDEX_HEAD_LEN + (i + 1) * ENTRY_LEN];
            let mut blake = [0u8; 32];
            blake.copy_from_slice(&e[24..56]);
            let entry = Entry {
                file_index: u32_at(e, 0),
                flags: u32_at(e, 4),
                offset: u64_at(e, 8),
                length: u64_at(e, 16),
                blake3: blake,
            };
            if last_index.is_some_and(|l| entry.file_index <= l) {
                return Err(damaged("index entries are not ordered by file index"));
            }
            last_index = Some(entry.file_index);
            if entry.flags & !FLAG_HARDLINK_ALIAS != 0 {
                return Err(damaged(format!("unknown entry flags {:#x}", entry.flags)));
            }
            if entry.length > 0
                && (entry.offset % BLOCK != 0
                    || entry.offset < data_start
                    || entry
                        .offset
                        .checked_add(align_up(entry.length))
                        .is_none_or(|end| end > index_offset))
            {
                return Err(damaged(format!(
                    "entry for file {} lies outside the data area",
                    entry.file_index
                )));
            }
            entries.push(entry);
        }
        Ok((
            Index {
                header_len,
                header_sha256,
                entries,
            },
            index_offset,
        ))
    }

    /// The entry of a header file index.
    pub fn entry(&self, file_index: u32) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&file_index, |e| e.file_index)
            .ok()
            .map(|i| &self.entries[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Index {
        Index {
            header_len: 5000,
            header_sha256: [7; 32],
            entries: vec![
                Entry {
                    file_index: 0,
                    flags: 0,
                    offset: 8192,
                    length: 4097,
                    blake3: [1; 32],
                },
                Entry {
                    file_index: 2,
                    flags: 0,
                    offset: 0,
                    length: 0,
                    blake3: *blake3::hash(b"").as_bytes(),
                },
                Entry {
                    file_index: 3,
                    flags: FLAG_HARDLINK_ALIAS,
                    offset: 8192,
                    length: 4097,
                    blake3: [1; 32],
                },
            ],
        }
    }

    fn write_pkg(idx: &Index, index_offset: u64) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0u8; index_offset as usize]).unwrap();
        f.write_all(&idx.encode(index_offset)).unwrap();
        f
    }

    #[test]
    fn roundtrip() {
        let idx = sample();
        let f = write_pkg(&idx, 16384);
        let (back, off) = Index::read(&f).unwrap();
        assert_eq!(back, idx);
        assert_eq!(off, 16384);
        assert_eq!(back.entry(3).unwrap().flags, FLAG_HARDLINK_ALIAS);
        assert!(back.entry(1).is_none());
    }

    /// Regression (hostile corpus): a header file size of u64::MAX made
    /// `align_up` overflow (a panic in debug builds, 0 in release).
    #[test]
    fn align_up_saturates() {
        assert_eq!(align_up(0), 0);
        assert_eq!(align_up(1), 4096);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_up(u64::MAX - 4095), u64::MAX - 4095);
        assert_eq!(align_up(u64::MAX), u64::MAX);
        assert_eq!(align_up(u64::MAX - 1), u64::MAX);
    }

    #[test]
    fn encoding_is_pinned() {
        // A format change must be deliberate: this digest changes with it.
        let bytes = sample().encode(16384);
        assert_eq!(bytes.len(), INDEX_HEAD_LEN + 3 * ENTRY_LEN + 48);
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            "4e9912d6ba1e422912d72abeff0b67692b00ee080eccdc6559c5712d6217da22"
        );
    }

    #[test]
    fn rejects_damage() {
        let idx = sample();
        let good = {
            let mut v = vec![0u8; 16384];
            v.extend(idx.encode(16384));
            v
        };
        let load = |v: &[u8]| {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(v).unwrap();
            Index::read(&f)
        };
        assert!(load(&good).is_ok());
        // flipped byte in an entry: checksum
        let mut v = good.clone();
        v[16384 + INDEX_HEAD_LEN + 10] ^= 1;
        assert!(matches!(load(&v), Err(FormatError::Damaged(_))));
        // unknown version
        let mut v = good.clone();
        let n = v.len();
        v[n - 16] = 9;
        assert!(matches!(load(&v), Err(FormatError::Version(9))));
        // not a package
        assert!(matches!(load(b"hello"), Err(FormatError::NoTrailer(5))));
        assert!(matches!(
            load(&[0u8; 100]),
            Err(FormatError::NoTrailer(100))
        ));
        // truncated in front
        assert!(load(&good[4096..]).is_err());
        // Regression (fuzzing): reserved fields must be 0, so that an
        // accepted index is the one encoding of its contents.
        for at in [good.len() - 12, 16384 + 60] {
            let mut v = good.clone();
            v[at] = 1;
            if at > 16384 + 60 {
                // the trailer is not covered by the index checksum
            } else {
                let idx_len = v.len() - 48 - 16384;
                let sum = blake3::hash(&v[16384..16384 + idx_len]);
                let n = v.len();
                v[n - 32..n - 16].copy_from_slice(&sum.as_bytes()[..16]);
            }
            assert!(
                matches!(load(&v), Err(FormatError::Damaged(_))),
                "reserved byte at {at}"
            );
        }
        // entry outside the data area
        let mut bad = sample();
        bad.entries[0].offset = 4096; // inside the header
        let mut v = vec![0u8; 16384];
        v.extend(bad.encode(16384));
        assert!(matches!(load(&v), Err(FormatError::Damaged(_))));
    }
}
