//! Reading RPM files as streams: the raw lead + signature + header bytes (kept
//! byte for byte), the payload through the matching decompressor, and the cpio
//! archive inside it (newc, crc, and rpm's stripped `07070X` form).
//!
//! Nothing here holds a whole payload in memory; limits on every size a package
//! declares keep hostile input from allocating without bound.
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

pub use sysimage::header::{Headers, LEAD_SIZE};

/// The leading bytes of an RPM (lead + signature header + padding + main
/// header), kept exactly as read, with both headers checked and indexed.
pub type RpmPrefix = Headers;

/// Reads the lead, signature header and main header from `r` with the one
/// header reader (`sysimage::header`, rpm's loading rules), leaving `r` at
/// the first byte of the payload. `path` names the source in errors.
pub fn read_prefix(r: &mut impl Read, path: &Path) -> Result<RpmPrefix, sysimage::Error> {
    Headers::read(r, path)
}

/// Payload compressions reimage reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    /// Legacy `.lzma` (lzma_alone) streams.
    Lzma,
    Zstd,
    Bzip2,
}

impl Compression {
    /// The name rpm uses in PAYLOADCOMPRESSOR (`none` for no compression).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none (an uncompressed cpio archive)",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        }
    }
}

impl Compression {
    /// Recognizes a compressed stream by its magic bytes; `None` for an
    /// uncompressed cpio archive. Packages do not always name their compressor
    /// (v6 packages omit the tag when the payload is not compressed), and the
    /// bytes cannot lie about it.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        Some(if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(b"0707") {
            Compression::None
        } else if head.starts_with(&[0x5d, 0, 0]) {
            Compression::Lzma
        } else {
            return None;
        })
    }
}

/// A reader that feeds everything read through it to a set of hashers.
pub struct HashingReader<R> {
    inner: R,
    pub hashers: Vec<Hasher>,
    pub count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, hashers: Vec<Hasher>) -> Self {
        HashingReader {
            inner,
            hashers,
            count: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for h in &mut self.hashers {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Memory the xz and lzma decoders may use: the dictionary size comes from
/// the stream, and a hostile one asks for gigabytes (found by cargo fuzz: a
/// .lzma header asking for a 3 GiB dictionary). `xz -9` needs 65 MiB.
const LZMA_MEMLIMIT: u64 = 256 << 20;

/// Wraps the compressed payload stream `r` in its decompressor.
pub fn decompressor<'a, R: BufRead + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                LZMA_MEMLIMIT,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| io::Error::other(e.to_string()))?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(r, stream))
        }
        Compression::Lzma => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT)
                .map_err(|e| io::Error::other(e.to_string()))?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(r, stream))
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(r)?;
            // rpm writes zstd with long windows at high levels; allow up to 2 GiB.
            d.window_log_max(31)?;
            Box::new(d)
        }
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
    })
}

pub use sysimage::digest::{digest_hex, DigestAlgo, Hasher};

/// One entry of a cpio archive.
#[derive(Debug, Clone)]
pub struct CpioEntry {
    /// The name as stored (`./usr/bin/x`), or empty for a stripped entry.
    pub name: String,
    /// The header file index for a stripped (`07070X`) entry.
    pub file_index: Option<u32>,
    pub mode: u32,
    pub nlink: u32,
    pub ino: u32,
    pub size: u64,
}

impl CpioEntry {
    pub fn is_trailer(&self) -> bool {
        self.file_index.is_none() && self.name == "TRAILER!!!"
    }
}

/// A streaming cpio reader. After [`CpioReader::next_entry`], read the entry's
/// data from [`CpioReader::data`] (any unread rest is skipped by the next call).
pub struct CpioReader<R> {
    inner: R,
    /// Bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
    /// Sizes for stripped entries, by file index (from the header).
    stripped_sizes: Vec<u64>,
    pub offset: u64,
}

const NEWC: &[u8; 6] = b"070701";
const CRC: &[u8; 6] = b"070702";
const STRIPPED: &[u8; 6] = b"07070X";
const MAX_NAME: usize = 4096 * 4;

fn hex_field(b: &[u8]) -> io::Result<u32> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad hex field in cpio header"))
}

impl<R: Read> CpioReader<R> {
    /// `stripped_sizes`: the header's file sizes, used for `07070X` entries.
    pub fn new(inner: R, stripped_sizes: Vec<u64>) -> Self {
        CpioReader {
            inner,
            remaining: 0,
            pad: 0,
            stripped_sizes,
            offset: 0,
        }
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.inner.read_exact(&mut buf[..k])?;
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    fn read_buf(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads the next entry header; `None` at the trailer.
    pub fn next_entry(&mut self) -> io::Result<Option<CpioEntry>> {
        let rest = self.remaining + self.pad;
        self.skip(rest)?;
        self.remaining = 0;
        self.pad = 0;
        let mut magic = [0u8; 6];
        self.read_buf(&mut magic)?;
        if &magic == STRIPPED {
            let mut idx = [0u8; 8];
            self.read_buf(&mut idx)?;
            let index = hex_field(&idx)?;
            // 14 bytes of header, padded to 16.
            self.skip(2)?;
            if index == u32::MAX {
                return Ok(None);
            }
            let size = *self.stripped_sizes.get(index as usize).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("stripped cpio entry names file index {index}, beyond the header's file list"),
                )
            })?;
            self.remaining = size;
            self.pad = (4 - size % 4) % 4;
            return Ok(Some(CpioEntry {
                name: String::new(),
                file_index: Some(index),
                mode: 0,
                nlink: 0,
                ino: 0,
                size,
            }));
        }
        if &magic != NEWC && &magic != CRC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "bad cpio magic {:?} at payload offset {}",
                    String::from_utf8_lossy(&magic),
                    self.offset - 6
                ),
            ));
        }
        let mut h = [0u8; 104];
        self.read_buf(&mut h)?;
        let f = |i: usize| hex_field(&h[i * 8..i * 8 + 8]);
        let ino = f(0)?;
        let mode = f(1)?;
        let nlink = f(4)?;
        let size = f(6)? as u64;
        let namesize = f(11)? as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cpio name length {namesize} is out of range"),
            ));
        }
        let mut name = vec![0u8; namesize];
        self.read_buf(&mut name)?;
        if name.pop() != Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "cpio entry name is not NUL-terminated",
            ));
        }
        if name.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "cpio entry name contains NUL",
            ));
        }
        let name = String::from_utf8(name).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "cpio entry name is not UTF-8")
        })?;
        let hpad = (4 - (110 + namesize) % 4) % 4;
        self.skip(hpad as u64)?;
        if name == "TRAILER!!!" {
            return Ok(None);
        }
        self.remaining = size;
        self.pad = (4 - size % 4) % 4;
        Ok(Some(CpioEntry {
            name,
            file_index: None,
            mode,
            nlink,
            ino,
            size,
        }))
    }

    /// The underlying reader, positioned after the last entry read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The current entry's data.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { r: self }
    }
}

/// Reader over the data of the current cpio entry.
pub struct EntryData<'a, R> {
    r: &'a mut CpioReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.r.remaining == 0 {
            return Ok(0);
        }
        let k = buf.len().min(self.r.remaining as usize);
        let n = self.r.inner.read(&mut buf[..k])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "payload ends inside a file's data",
            ));
        }
        self.r.remaining -= n as u64;
        self.r.offset += n as u64;
        Ok(n)
    }
}

/// Opens `path` buffered for sequential reading.
pub fn open_buffered(path: &std::path::Path) -> io::Result<BufReader<std::fs::File>> {
    Ok(BufReader::with_capacity(
        256 * 1024,
        std::fs::File::open(path)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn cpio_newc_and_trailer() {
        let mut a = newc("./usr/a", 0o100644, b"hello");
        a.extend(newc("./usr/b", 0o100644, b""));
        a.extend(newc("TRAILER!!!", 0, b""));
        let mut r = CpioReader::new(&a[..], vec![]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.name, "./usr/a");
        assert_eq!(e.size, 5);
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.size), ("./usr/b", 0));
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn cpio_skips_unread_data() {
        let mut a = newc("./x", 0o100644, b"abcdefg");
        a.extend(newc("./y", 0o100644, b"z"));
        a.extend(newc("TRAILER!!!", 0, b""));
        let mut r = CpioReader::new(&a[..], vec![]);
        r.next_entry().unwrap();
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.name, "./y");
    }

    #[test]
    fn cpio_stripped() {
        let mut a = b"07070X00000001\0\0".to_vec();
        a.extend_from_slice(b"abc\0");
        a.extend_from_slice(b"07070Xffffffff\0\0");
        let mut r = CpioReader::new(&a[..], vec![0, 3]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.file_index, e.size), (Some(1), 3));
        let mut d = Vec::new();
        r.data().read_to_end(&mut d).unwrap();
        assert_eq!(d, b"abc");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn cpio_rejects_garbage_and_truncation() {
        let mut r = CpioReader::new(&b"070799xxxxxxxx"[..], vec![]);
        assert!(r.next_entry().is_err());
        let a = newc("./x", 0o100644, b"abcdefg");
        let mut r = CpioReader::new(&a[..a.len() - 4], vec![]);
        r.next_entry().unwrap();
        let mut d = Vec::new();
        assert!(r.data().read_to_end(&mut d).is_err());
        // stripped index beyond the header
        let a = b"07070X00000009\0\0".to_vec();
        let mut r = CpioReader::new(&a[..], vec![1]);
        assert!(r.next_entry().is_err());
    }

    /// Regression (cargo fuzz, rpm_stream): an lzma (and xz) stream may not
    /// make the decoder allocate more than LZMA_MEMLIMIT (a .lzma header asked
    /// for a 3 GiB dictionary).
    #[test]
    fn lzma_dictionary_is_bounded() {
        let mut bomb = vec![0x5d, 0xff, 0xff, 0xff, 0xbf];
        bomb.extend_from_slice(&[0xff; 8]);
        bomb.extend_from_slice(&[0; 64]);
        let mut d = decompressor(&bomb[..], Compression::Lzma).unwrap();
        assert!(d.read(&mut [0u8; 64]).is_err());
        // A real xz stream still decodes.
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 9);
        std::io::Write::write_all(&mut e, b"hello").unwrap();
        let xz = e.finish().unwrap();
        let mut out = String::new();
        decompressor(&xz[..], Compression::Xz)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
    }

    /// A corrupt bzip2 payload is an error. (Found by cargo fuzz: this input
    /// made the pure-Rust bzip2 decoder, libbz2-rs-sys 0.2.6, panic inside an
    /// `extern "C"` function, which aborts the process; bzip2 now uses the C
    /// libbz2, as rpm does. tests/hostile_fuzz.rs replays it through the fuzz
    /// target's exact read pattern, which is what reproduced the abort.)
    #[test]
    fn a_corrupt_bzip2_payload_is_an_error() {
        let crash = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/regressions/rpm_stream/bzip2-decoder-index-out-of-bounds"),
        )
        .unwrap();
        // rpm (and now the header reader) refuses this header (its data is
        // out of index order), so the payload is found by the sizes alone.
        assert!(read_prefix(&mut &crash[..], Path::new("crash")).is_err());
        let be = |at: usize| u32::from_be_bytes(crash[at..at + 4].try_into().unwrap()) as usize;
        let sig_end = 96 + 16 + 16 * be(96 + 8) + be(96 + 12);
        let main = sig_end.next_multiple_of(8);
        let r = &crash[main + 16 + 16 * be(main + 8) + be(main + 12)..];
        assert_eq!(Compression::detect(r), Some(Compression::Bzip2));
        // The cpio reader's read pattern, as import (and the fuzz target) use it.
        let mut cpio = CpioReader::new(decompressor(r, Compression::Bzip2).unwrap(), vec![]);
        let err = loop {
            match cpio.next_entry() {
                Ok(Some(_)) => {
                    if let Err(e) = cpio.data().read_to_end(&mut Vec::new()) {
                        break e;
                    }
                }
                Ok(None) => panic!("the corrupt payload was read to its end"),
                Err(e) => break e,
            }
        };
        assert!(
            err.kind() == io::ErrorKind::InvalidData || err.kind() == io::ErrorKind::InvalidInput,
            "{err}"
        );
    }

    #[test]
    fn prefix_rejects_non_rpm_and_truncation() {
        let p = Path::new("x.rpm");
        assert!(matches!(
            read_prefix(&mut &[0u8; 200][..], p),
            Err(sysimage::Error::NotRpm { .. })
        ));
        let mut lead = vec![0u8; 96];
        lead[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
        lead[4] = 3;
        lead[79] = 5;
        assert!(matches!(
            read_prefix(&mut &lead[..], p),
            Err(sysimage::Error::Truncated { .. })
        ));
        // A signature header claiming 4 Gi tags: refused before any
        // allocation of that size.
        let mut big = lead.clone();
        big.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_prefix(&mut &big[..], p),
            Err(sysimage::Error::Corrupt { .. })
        ));
    }
}
