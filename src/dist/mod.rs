//! Distribution: manifests, publish, static deltas, transports, sync.
pub mod delta;
pub mod publish;
pub mod sync;
