//! `reimage fsck`.
