//! `cargo xtask fuzz [--seconds N] [--target T]`: runs each fuzz target
//! (`fuzz/`, bodies in `fuzz/bodies.rs`) for a bounded time.
//!
//! With `cargo fuzz` installed it runs libFuzzer (`cargo fuzz run`, with
//! `RUSTC_BOOTSTRAP=1` so the stable toolchain accepts the sanitizer
//! flags), seeded with `fuzz/regressions/T/`; a crash stops the run and
//! libFuzzer's reproducer under `fuzz/artifacts/T/` names the input: copy
//! it into `fuzz/regressions/T/`, where `tests/hostile_fuzz.rs` replays it
//! on every test run. Without `cargo fuzz` (or with `--stable`) it runs
//! the same bodies as deterministic property tests for the same time.
use crate::cmd::{have, repo_root, run_visible};
use anyhow::{bail, Result};
use std::process::Command;

pub const TARGETS: &[&str] = &["index_read", "rpm_stream", "cpio"];

pub struct Options {
    pub seconds: u64,
    pub target: Option<String>,
    /// Property tests instead of libFuzzer.
    pub stable: bool,
}

pub fn run(o: &Options) -> Result<()> {
    let root = repo_root();
    let targets: Vec<&str> = match &o.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("unknown fuzz target {t} (targets: {})", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let libfuzzer = !o.stable && have("cargo-fuzz");
    if !libfuzzer {
        eprintln!(
            "xtask fuzz: {}: running the targets as property tests (tests/hostile_fuzz.rs), {}s each",
            if o.stable { "--stable" } else { "cargo-fuzz is not installed (cargo install cargo-fuzz)" },
            o.seconds
        );
        let mut c = Command::new("cargo");
        c.current_dir(&root)
            .args([
                "test",
                "--release",
                "-p",
                "reimage",
                "--test",
                "hostile_fuzz",
                "--",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env("REIMAGE_FUZZ_SECONDS", o.seconds.to_string());
        for t in &targets {
            c.arg(format!("fuzz_{t}"));
        }
        return run_visible(&mut c);
    }
    let fuzz = root.join("fuzz");
    for t in targets {
        let corpus = fuzz.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        seed(t, &corpus)?;
        let regressions = fuzz.join("regressions").join(t);
        run_visible(
            Command::new("cargo")
                .current_dir(&fuzz)
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", "-O", t])
                .arg(&corpus)
                .arg(&regressions)
                .arg("--")
                .arg(format!("-max_total_time={}", o.seconds))
                .arg("-rss_limit_mb=1024")
                .arg("-print_final_stats=1"),
        )?;
    }
    Ok(())
}

/// Seeds an empty libFuzzer corpus: the hostile corpus and the edge packages
/// (rpm_stream), their payloads as uncompressed cpio (cpio), and index
/// blocks in the structure-aware form of `fuzz/bodies.rs` (index_read).
fn seed(target: &str, dir: &std::path::Path) -> Result<()> {
    if std::fs::read_dir(dir)?.next().is_some() {
        return Ok(());
    }
    let cases = crate::corpus::generate();
    let mut n = 0;
    let mut put = |bytes: &[u8]| -> Result<()> {
        std::fs::write(dir.join(format!("seed-{n:04}")), bytes)?;
        n += 1;
        Ok(())
    };
    match target {
        "rpm_stream" => {
            for c in cases.iter().filter(|c| c.bytes.len() < 1 << 20) {
                put(&c.bytes)?;
            }
            let edge = repo_root().join("target/testdata/edge");
            if let Ok(rd) = std::fs::read_dir(edge) {
                for e in rd.flatten() {
                    let b = std::fs::read(e.path())?;
                    if b.len() < 1 << 20 {
                        put(&b)?;
                    }
                }
            }
        }
        "cpio" => {
            for c in cases.iter().take(120) {
                if let Some(raw) = payload(&c.bytes) {
                    put(&raw)?;
                }
            }
        }
        _ => {
            // (blocks, index block): a header of 5000 bytes, N entries.
            for entries in [0u32, 1, 3] {
                let mut v = vec![1u8];
                v.extend_from_slice(b"RIMGINDX");
                v.extend_from_slice(&1u32.to_le_bytes());
                v.extend_from_slice(&4096u32.to_le_bytes());
                v.extend_from_slice(&100u64.to_le_bytes());
                v.extend_from_slice(&[7u8; 32]);
                v.extend_from_slice(&entries.to_le_bytes());
                v.extend_from_slice(&0u32.to_le_bytes());
                for i in 0..entries {
                    v.extend_from_slice(&(i * 2).to_le_bytes());
                    v.extend_from_slice(&0u32.to_le_bytes());
                    v.extend_from_slice(&0u64.to_le_bytes());
                    v.extend_from_slice(&0u64.to_le_bytes());
                    v.extend_from_slice(&[i as u8; 32]);
                }
                put(&v)?;
            }
        }
    }
    eprintln!("xtask fuzz: seeded {} with {n} inputs", dir.display());
    Ok(())
}

/// The uncompressed payload of a zstd-compressed package (its cpio archive).
fn payload(rpm: &[u8]) -> Option<Vec<u8>> {
    let be32 = |a: usize| -> Option<usize> {
        Some(u32::from_be_bytes(rpm.get(a..a + 4)?.try_into().ok()?) as usize)
    };
    let s_end = 96 + 16 + 16 * be32(104)? + be32(108)?;
    let h = s_end + (8 - (s_end - 96) % 8) % 8;
    let p = h + 16 + 16 * be32(h + 8)? + be32(h + 12)?;
    zstd::decode_all(rpm.get(p..)?).ok()
}
