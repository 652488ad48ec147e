#![no_main]
//! `cargo fuzz run rpm_stream` (see docs/reliability.md); the body is shared with
//! tests/hostile_fuzz.rs.
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::rpm_stream(data));
