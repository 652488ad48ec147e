//! CLI for publish and sync.
