//! A 1 GiB package imports in well under 200 MiB of memory: the payload is
//! streamed, never held whole.
mod common;

use common::*;
use reimage_testkit::require_root;
use std::path::Path;
use std::process::Command;

/// Peak resident memory of a process, from /proc (VmHWM, KiB).
fn hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn build_big(path: &Path) {
    // 1 GiB of content: a 4 MiB pseudo-random block repeated, so the zstd
    // payload (long mode) stays small but decompresses to the full size.
    let mut block = vec![0u8; 4 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut big = Vec::with_capacity(1 << 30);
    while big.len() < 1 << 30 {
        big.extend_from_slice(&block);
    }
    let pkg = rpm::PackageBuilder::new("bigpkg", "1.0", "MIT", "x86_64", "a 1 GiB file")
        .using_config(
            rpm::BuildConfig::v4()
                .source_date(1_700_000_000u32)
                .compression(rpm::CompressionWithLevel::Zstd(1)),
        )
        .release("1")
        .with_file_contents(
            big,
            rpm::FileOptions::new("/usr/share/big/blob").permissions(0o644),
        )
        .unwrap()
        .with_file_contents(
            b"small".to_vec(),
            rpm::FileOptions::new("/usr/share/big/small").permissions(0o644),
        )
        .unwrap()
        .build()
        .unwrap();
    pkg.write_file(path).unwrap();
}

#[test]
fn a_1gib_package_imports_in_bounded_memory() {
    require_root!();
    // Its own 4 GiB filesystem: the shared scratch btrfs is small.
    let fs = reimage_testkit::ScratchFs::new(reimage_testkit::FsType::Btrfs, 4 << 30).unwrap();
    let pool = fs.path().join("pool");
    ok(&pool, &["init"]);
    let rpm = fs.path().join("bigpkg-1.0-1.x86_64.rpm");
    build_big(&rpm);
    let mut child = Command::new(env!("CARGO_BIN_EXE_reimage"))
        .arg("--pool")
        .arg(&pool)
        .args(["--json", "import", rpm.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(k) = hwm_kib(pid) {
            peak = peak.max(k);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["imported"], 1);
    assert_eq!(r["packages"][0]["content_bytes"], (1u64 << 30) + 5);
    eprintln!(
        "peak RSS of `reimage import` of a 1 GiB package: {} MiB",
        peak / 1024
    );
    assert!(peak > 0, "could not read the child's memory use");
    assert!(peak < 200 * 1024, "import used {} MiB", peak / 1024);
}
