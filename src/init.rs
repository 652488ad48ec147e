//! `reimage init`: prepare a pool on a reflink-capable filesystem, optionally in
//! a loop-mounted btrfs image made by reimage itself.
use std::path::PathBuf;

/// Options of `reimage init`.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The pool directory.
    pub pool: PathBuf,
    /// Make (or re-mount) a btrfs filesystem in this image file at the pool path.
    pub image: Option<PathBuf>,
    /// Size of a new image (bytes).
    pub size: Option<u64>,
    /// Allow a pool on a filesystem without reflinks (data is copied).
    pub allow_copy: bool,
}

/// What `init` did, for people and for `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub pool: PathBuf,
    pub filesystem: String,
    pub block_size: u64,
    pub reflink: bool,
    pub allow_copy: bool,
    /// "created", "existing" (already a pool: nothing changed), or "mounted".
    pub action: String,
    pub image: Option<PathBuf>,
}

impl InitReport {
    pub fn lines(&self) -> Vec<String> {
        vec![format!(
            "pool {} {} ({}, block size {}, reflink {})",
            self.pool.display(),
            self.action,
            self.filesystem,
            self.block_size,
            if self.reflink { "yes" } else { "no: data will be copied" }
        )]
    }
}

/// Prepares a pool. Implemented in the foundation work (issue 2).
pub fn init(_opts: &InitOptions) -> anyhow::Result<InitReport> {
    anyhow::bail!("init: not built yet")
}
