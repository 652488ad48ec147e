//! The `reimage` command. Parsing and output live in `reimage::cli`; this file
//! only picks the exit code: 0 ok, 1 error, 2 usage.
fn main() {
    std::process::exit(reimage::cli::main());
}
