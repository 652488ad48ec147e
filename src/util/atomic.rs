//! Atomic small-file writes: the new content appears whole or not at all,
//! and is durable before it is visible.
use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;

/// Writes `data` to `path` atomically: a temp file beside it, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    fsync_dir(dir)
}

/// fsyncs a directory (after a rename or unlink in it, so the change is durable).
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync {}", dir.display()))
}
