//! The header directory (`lib/sysimage/packages/`) as a package database.
//!
//! This crate knows nothing of btrfs or pools: it reads RPM headers, parses and
//! compares NEVRAs with rpm's own algorithm, and answers queries over a directory
//! of header files.
