//! CLI for fsck.
