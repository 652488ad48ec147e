//! Views: compose (plan, owners, materialisation, `--from`) and the
//! catalogue of views in a pool.
pub mod compose;
mod incremental;
pub mod model;
pub mod plan;
pub(crate) mod planstore;
