//! The store: the pool's layout and lock, `init`, the extent-package format
//! with its one layout rule, the writer, the content index, cloning, import.
pub mod clone;
pub mod extent;
pub mod import;
pub mod init;
pub mod packages;
pub mod pool;
pub mod writer;
