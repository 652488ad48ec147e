//! The one module that owns unsafe code: thin, safe wrappers around the
//! ioctls reimage needs (FICLONERANGE, FIDEDUPERANGE, btrfs subvolumes, FIEMAP)
//! and syncfs, with errno mapped to typed errors.

use std::path::Path;

/// Placeholder until the ioctl layer lands (issue 2).
pub fn is_subvolume(_path: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Placeholder until the ioctl layer lands (issue 2).
pub fn subvolume_delete(path: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(path)
}
