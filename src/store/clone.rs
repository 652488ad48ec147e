//! Placing file data: reflink (FICLONERANGE) where the filesystem can, else a
//! copy (`copy_file_range`) when the pool allows it. The fallback is
//! deliberate, said once, and counted.
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::{self, SysError};

/// How a range of data got to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    Reflinked,
    Copied,
}

/// Clones ranges, falling back to copies when allowed.
#[derive(Debug)]
pub struct Cloner {
    allow_copy: bool,
    copying: AtomicBool,
    said: AtomicBool,
}

impl Cloner {
    pub fn new(allow_copy: bool) -> Cloner {
        Cloner {
            allow_copy,
            copying: AtomicBool::new(false),
            said: AtomicBool::new(false),
        }
    }

    /// True once the filesystem refused a reflink and we copy instead.
    pub fn is_copying(&self) -> bool {
        self.copying.load(Ordering::Relaxed)
    }

    /// Places `len` bytes (a multiple of the block size, or reaching the end of
    /// `src`) from `src` at `src_off` into `dst` at `dst_off`.
    pub fn place(
        &self,
        src: &File,
        src_off: u64,
        len: u64,
        dst: &File,
        dst_off: u64,
    ) -> Result<How, SysError> {
        if len == 0 {
            // A clone length of 0 means "to the end of the source": never ask for it.
            return Ok(How::Reflinked);
        }
        if !self.is_copying() {
            match sys::clone_range(src, src_off, len, dst, dst_off) {
                Ok(()) => return Ok(How::Reflinked),
                Err(SysError::NotSupported(_)) | Err(SysError::CrossDevice) if self.allow_copy => {
                    self.copying.store(true, Ordering::Relaxed);
                    if !self.said.swap(true, Ordering::Relaxed) {
                        crate::util::runner::log::warn(
                            "this filesystem cannot reflink: copying data (the pool allows copies)",
                        );
                    }
                }
                Err(e) => return Err(e),
            }
        }
        copy_range(src, src_off, len, dst, dst_off).map_err(|e| {
            SysError::Other(
                "copy_file_range",
                rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
            )
        })?;
        Ok(How::Copied)
    }
}

/// Copies a range with `copy_file_range`, looping until done or EOF of `src`.
pub fn copy_range(
    src: &File,
    src_off: u64,
    len: u64,
    dst: &File,
    dst_off: u64,
) -> std::io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let mut so = src_off + done;
        let mut d = dst_off + done;
        let want = (len - done).min(1 << 30) as usize;
        let n = rustix::fs::copy_file_range(src, Some(&mut so), dst, Some(&mut d), want)?;
        if n == 0 {
            break;
        }
        done += n as u64;
    }
    Ok(())
}
