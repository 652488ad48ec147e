//! Reading RPM packages: the headers (through the one header reader,
//! `sysimage::header`), the payload stream and its cpio archive, digests,
//! the file list, and the rules that make a package trusted.
pub mod caps;
pub mod files;
pub mod keyring;
pub mod stream;
pub mod trust;
