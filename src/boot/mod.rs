//! Boot: the ESP (a mounted directory or a FAT image written with mtools,
//! never mounted), Boot Loader Specification entries per deployment, and
//! boot counting.
//!
//! ```text
//! ESP/loader/loader.conf                     timeout; no `default` line (see entries.rs)
//! ESP/loader/entries/reimage-ID[+LEFT[-DONE]].conf
//! ESP/reimage/vmlinuz-SHA16, initrd-SHA16    kernels and initrds by content, shared by deployments
//! ESP/EFI/BOOT/BOOTX64.EFI, EFI/systemd/     systemd-boot
//! ```

pub mod entries;
pub mod esp;
