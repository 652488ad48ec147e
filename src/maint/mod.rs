//! Maintenance of a pool: usage, dedupe, gc, fsck.
pub mod fsck;
pub mod storage;
