#![no_main]
//! `cargo fuzz run cpio` (see docs/reliability.md); the body is shared with
//! tests/hostile_fuzz.rs.
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::cpio(data));
