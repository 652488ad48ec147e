//! reimage: image-like, atomic OS updates for RPM systems, built from packages.
//!
//! See `docs/ARCHITECTURE.md` for the bird's-eye view and the code map.
//! Invariant: only [`sys`] contains unsafe code.

pub mod caps;
pub mod cli;
pub mod clone;
pub mod compose;
pub mod delta;
pub mod extent;
pub mod extent_writer;
pub mod failpoint;
pub mod fsck;
pub mod fsck_cli;
pub mod import;
pub mod init;
pub mod packages;
pub mod pkg;
pub mod pool;
pub mod progress;
pub mod publish;
pub mod query_cli;
pub mod report;
pub mod rmtree;
pub mod rpmfile;
pub mod runner;
pub mod storage;
pub mod storage_cli;
pub mod sync;
pub mod sync_cli;
#[allow(unsafe_code)]
pub mod sys;
pub mod testing;
pub mod trust;
