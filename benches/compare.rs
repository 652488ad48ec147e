//! Side-by-side benchmarks of reimage against the tools users run today.
fn main() {
    eprintln!("benches/compare.rs: not written yet");
    std::process::exit(1);
}
