//! Small utilities every layer uses: the one runner of external programs,
//! failpoints for the fault suite, [`parallel::map`] for work that waits on
//! I/O, and the [`Reporter`](report::Reporter)
//! trait the library reports progress and notes through.
pub mod atomic;
pub mod failpoint;
pub mod parallel;
pub mod report;
pub mod runner;
