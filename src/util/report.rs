//! Progress reporting. The library reports through [`Reporter`]; only the CLI
//! knows about terminals and progress bars.

/// Receives progress from long-running library operations.
pub trait Reporter: Sync {
    /// A phase of known size starts (`total` items or bytes).
    fn start(&self, _what: &str, _total: u64) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// A short status shown beside the bar (e.g. "12/40 packages").
    fn message(&self, _msg: &str) {}
    /// The current phase is over.
    fn finish(&self) {}
    /// A message for people (stderr), e.g. a warning said once.
    fn note(&self, _msg: &str) {}
}

/// A reporter that drops everything (tests, `--quiet`).
pub struct Silent;
impl Reporter for Silent {}
