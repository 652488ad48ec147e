//! The fuzz targets (`fuzz/bodies.rs`) as deterministic property tests, so
//! they run in CI on the stable toolchain: every body over a generated
//! corpus of mutated inputs (seeds: the hostile corpus, its good packages,
//! valid extent-package indexes), plus every saved crash input in
//! `fuzz/regressions/TARGET/`. A panic anywhere fails the test.
//!
//! `REIMAGE_FUZZ_ITERATIONS` scales the number of mutations (default 3000
//! per target); `REIMAGE_FUZZ_SECONDS` runs each target for that long
//! instead (what `cargo xtask fuzz` uses when `cargo fuzz` cannot run).
#[path = "../fuzz/bodies.rs"]
mod bodies;
#[path = "../xtask/src/corpus.rs"]
mod corpus;

use corpus::Rng;
use reimage::extent::{Entry, Index};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long or how many: (iterations, deadline).
fn budget() -> (u64, Option<Duration>) {
    let secs = std::env::var("REIMAGE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let iters = std::env::var("REIMAGE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    match secs {
        Some(s) => (u64::MAX, Some(Duration::from_secs(s))),
        None => (iters, None),
    }
}

/// One mutation of `seed`: bit flips, boundary values over bytes and
/// big-endian or little-endian u32/u64 fields, truncation, chunk
/// duplication or removal.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    if v.is_empty() {
        return vec![rng.next() as u8; rng.below(64) as usize];
    }
    for _ in 0..1 + rng.below(4) {
        let len = v.len() as u64;
        match rng.below(8) {
            0 | 1 => {
                let at = rng.below(len) as usize;
                v[at] ^= 1 << rng.below(8);
            }
            2 => {
                let at = rng.below(len) as usize;
                v[at] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5) as usize];
            }
            3 | 4 => {
                let at = rng.below(len.saturating_sub(3).max(1)) as usize;
                let x: u32 = [0, 1, 0xffff, 0x1_0000, 0x7fff_ffff, 0xffff_ffff, 4096, 16]
                    [rng.below(8) as usize];
                let b = if rng.below(2) == 0 {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                };
                for (i, byte) in b.iter().enumerate() {
                    if at + i < v.len() {
                        v[at + i] = *byte;
                    }
                }
            }
            5 => {
                let at = rng.below(len.saturating_sub(7).max(1)) as usize;
                let x: u64 = [0, u64::MAX, 1 << 40, 1 << 63, 4095, 4097][rng.below(6) as usize];
                for (i, byte) in x.to_le_bytes().iter().enumerate() {
                    if at + i < v.len() {
                        v[at + i] = *byte;
                    }
                }
            }
            6 => v.truncate(rng.below(len) as usize),
            _ => {
                let a = rng.below(len) as usize;
                let b = (a + rng.below(256) as usize).min(v.len());
                if rng.below(2) == 0 {
                    let chunk = v[a..b].to_vec();
                    v.splice(a..a, chunk);
                } else {
                    v.drain(a..b);
                }
            }
        }
        if v.is_empty() {
            break;
        }
    }
    v
}

/// Runs `body` over the saved regressions and `iterations` mutations of the seeds.
fn run(target: &str, seeds: &[Vec<u8>], body: fn(&[u8]), seed: u64) -> u64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_file() {
                body(&std::fs::read(&p).unwrap());
                n += 1;
            }
        }
    }
    for s in seeds {
        body(s);
    }
    let (iterations, deadline) = budget();
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut i = 0;
    while i < iterations && deadline.is_none_or(|d| started.elapsed() < d) {
        let s = &seeds[rng.below(seeds.len() as u64) as usize];
        body(&mutate(s, &mut rng));
        i += 1;
    }
    eprintln!(
        "{target}: {n} saved regressions, {} seeds, {i} mutations in {:.1?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(i > 0 && !seeds.is_empty(), "{target}: nothing ran");
    i
}

fn rpm_seeds() -> Vec<Vec<u8>> {
    let cases = corpus::generate();
    let mut v: Vec<Vec<u8>> = cases
        .iter()
        .filter(|c| c.bytes.len() < 1 << 20)
        .map(|c| c.bytes.clone())
        .collect();
    v.extend(
        cases
            .iter()
            .flat_map(|c| c.companions.iter().map(|x| x.1.clone())),
    );
    // The edge packages when generated (every compression, links, modes).
    let edge = std::env::var_os("REIMAGE_TESTDATA")
        .map(|t| Path::new(&t).join("edge"))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/testdata/edge"));
    if let Ok(rd) = std::fs::read_dir(edge) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rpm") && p.metadata().unwrap().len() < 1 << 20 {
                v.push(std::fs::read(&p).unwrap());
            }
        }
    }
    v
}

fn index_seeds() -> Vec<Vec<u8>> {
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for n in [0usize, 1, 3, 17] {
        let mut entries = Vec::new();
        let mut off = 8192u64;
        for i in 0..n {
            let length = [0, 1, 4095, 4096, 4097, 10_000][rng.below(6) as usize];
            entries.push(Entry {
                file_index: (i * 2) as u32,
                flags: 0,
                offset: if length == 0 { 0 } else { off },
                length,
                blake3: *blake3::hash(&[i as u8]).as_bytes(),
            });
            off += reimage::extent::align_up(length);
        }
        let idx = Index {
            header_len: 5000,
            header_sha256: [n as u8; 32],
            entries,
        };
        // The data area is not read by the index reader: keep it small.
        let mut v = vec![0u8; off as usize];
        v.extend(idx.encode(off));
        out.push(v);
    }
    out
}

#[test]
fn fuzz_index_read() {
    let seeds = index_seeds();
    for s in &seeds {
        let f = {
            use std::io::Write;
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(s).unwrap();
            f
        };
        assert!(Index::read(&f).is_ok(), "seeds are valid");
    }
    run("index_read", &seeds, bodies::index_read, 0x1de7);
}

#[test]
fn fuzz_rpm_stream() {
    run("rpm_stream", &rpm_seeds(), bodies::rpm_stream, 0x4e11);
}

#[test]
fn fuzz_cpio() {
    // Seeds: the payloads of the corpus's packages, decompressed.
    let mut seeds = Vec::new();
    for c in corpus::generate().iter().take(400) {
        let mut r = &c.bytes[..];
        if reimage::stream::read_prefix(&mut r, std::path::Path::new(&c.name)).is_ok() {
            if let Ok(raw) = zstd::decode_all(r) {
                if raw.len() < 1 << 20 {
                    seeds.push(raw);
                }
            }
        }
    }
    seeds.push(b"07070X00000001\0\0abc\x0007070Xffffffff\0\0".to_vec());
    run("cpio", &seeds, bodies::cpio, 0xc910);
}
