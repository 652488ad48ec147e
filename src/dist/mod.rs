//! Distribution: manifests, publish, static deltas, transports, sync.
pub mod bundle;
pub mod delta;
pub mod manifest;
pub mod publish;
pub mod sync;
