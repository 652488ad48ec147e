//! The bodies of the fuzz targets, shared by `cargo fuzz` (fuzz_targets/*.rs)
//! and the deterministic property tests (`tests/hostile_fuzz.rs`, which
//! include this file with `#[path]`): each takes arbitrary bytes and must
//! return without panicking, with memory bounded, whatever they hold.
#![allow(dead_code)]
use std::io::{Read, Write};

/// Decompressed bytes the payload targets read at most (a bomb is not a bug).
pub const PAYLOAD_LIMIT: u64 = 8 << 20;

/// `extent::Index::read` on arbitrary bytes as a file; when it accepts them,
/// the index must re-encode to the same bytes and every entry must lie in
/// the data area.
pub fn index_read(data: &[u8]) {
    index_read_raw(data);
    // Structure-aware: the first byte places the index (0..3 blocks of data
    // before it), the rest is the index block; the trailer and its
    // checksum are made here, so mutations reach the checks behind them.
    if let Some((&blocks, index)) = data.split_first() {
        let off = (blocks % 4) as u64 * 4096;
        let mut v = vec![0u8; off as usize];
        v.extend_from_slice(index);
        v.extend_from_slice(&off.to_le_bytes());
        v.extend_from_slice(&(index.len() as u64).to_le_bytes());
        v.extend_from_slice(&blake3::hash(index).as_bytes()[..16]);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(b"RIMGXPKG");
        index_read_raw(&v);
    }
}

fn index_read_raw(data: &[u8]) {
    use reimage::extent::{align_up, Index};
    let mut f = tempfile::tempfile().expect("tempfile");
    f.write_all(data).expect("write");
    if let Ok((index, index_offset)) = Index::read(&f) {
        let enc = index.encode(index_offset);
        assert_eq!(
            &data[index_offset as usize..],
            &enc[..],
            "an accepted index re-encodes to the same bytes"
        );
        for e in &index.entries {
            if e.length > 0 {
                assert!(e.offset >= index.data_start());
                assert!(e.offset + align_up(e.length) <= index_offset);
            }
        }
    }
}

/// The header and payload path of import: `read_prefix` (rpm's header
/// rules), the trust checks (names, digests, payload words, file list), the
/// payload's decompressor as the header's words allow it, and the cpio
/// reader over it.
pub fn rpm_stream(data: &[u8]) {
    use reimage::stream;
    let mut r = data;
    let Ok(prefix) = stream::read_prefix(&mut r, std::path::Path::new("fuzz")) else {
        return;
    };
    let _ = reimage::trust::identity(&prefix.main);
    let _ = reimage::trust::header_digests(&prefix.signature);
    let Ok(trusted) = reimage::trust::check(prefix) else {
        return;
    };
    let sizes: Vec<u64> = trusted.files.iter().map(|f| f.size).collect();
    let no_data = trusted.files.iter().all(|f| !f.has_data());
    let Ok(compression) = trusted.payload.compression(&r[..r.len().min(16)], no_data) else {
        return;
    };
    let Ok(dec) = stream::decompressor(r, compression) else {
        return;
    };
    cpio_walk(dec.take(PAYLOAD_LIMIT), sizes);
}

/// The cpio reader alone (newc, crc, stripped), on arbitrary bytes; the
/// first 64 bytes double as stripped-entry sizes.
pub fn cpio(data: &[u8]) {
    let sizes: Vec<u64> = data
        .chunks(8)
        .take(8)
        .map(|c| c.iter().fold(0u64, |a, b| a << 8 | *b as u64) % (1 << 20))
        .collect();
    cpio_walk(data, sizes);
}

fn cpio_walk(r: impl Read, sizes: Vec<u64>) {
    let mut cpio = reimage::stream::CpioReader::new(r, sizes);
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100_000 {
        match cpio.next_entry() {
            Ok(Some(_)) => {
                let mut d = cpio.data();
                loop {
                    match d.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            _ => break,
        }
    }
}
