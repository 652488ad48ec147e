//! `reimage dedupe`, `usage`, `gc`: keeping the pool shared and small.
