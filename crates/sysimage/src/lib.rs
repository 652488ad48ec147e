//! The header directory (`lib/sysimage/packages/`) as a package database.
//!
//! This crate knows nothing of btrfs or pools: it reads RPM headers, parses and
//! compares NEVRAs with rpm's own algorithm, and answers queries over a directory
//! of header files.
//!
//! Code map:
//! - [`nevra`], [`vercmp`]: package identity and rpm's version comparison;
//! - [`header`]: reading the lead + signature + main header of a package, decoding tags;
//! - [`headerdir`]: a directory of header files, read in parallel;
//! - [`relocate`]: the pure policy placing paths outside `/usr` into a view;
//! - [`meta`]: `VIEW/lib/reimage/view.json` (written by compose) and owner tables;
//! - [`tree`]: a `/usr` tree (a view or a running system's `/usr`) with its database;
//! - [`query`], [`diff`], [`verify`]: the read commands.
//!
//! Invariant: no unsafe code, no btrfs, no writes outside what a caller asks for.

pub mod diff;
pub mod digest;
pub mod error;
pub mod header;
pub mod headerdir;
pub mod meta;
pub mod nevra;
pub mod query;
pub mod relocate;
pub mod tree;
pub mod vercmp;
pub mod verify;

pub use digest::DigestAlgo;
pub use error::{Error, Result};
pub use header::{Dep, FileEntry, FileFlags, FileType, Header, Package};
pub use headerdir::HeaderDir;
pub use meta::ViewMeta;
pub use nevra::{Evr, Nevra};
pub use tree::Tree;
