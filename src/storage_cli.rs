//! CLI for dedupe, usage, gc.
