//! reimage: image-like, atomic OS updates for RPM systems, built from packages.
//!
//! See `docs/ARCHITECTURE.md` for the bird's-eye view and the code map. The
//! folders are the architecture, lowest layer first:
//!
//! - [`sys`] (the `reimage-sys` crate): the only unsafe code, the ioctls;
//! - `util`: the runner, failpoints, the [`Reporter`] trait;
//! - `rpm`: reading RPMs (headers through `sysimage`, payload streams, cpio,
//!   file lists, the trust rules);
//! - `store`: the pool, the extent format, import;
//! - `views`: compose and the view catalogue;
//! - `maint`: usage, dedupe, gc, fsck;
//! - `dist`: manifests, publish, deltas, transports, sync;
//! - `boot`: the ESP, boot entries, the initrd, boot counting;
//! - `deploy`: deployments around views, the /etc merge, rollback, and
//!   their boot entries (through `boot`);
//! - `live`: switching a running system's `/usr` to a new view (apply-live);
//! - `cli`: clap and printing, on top of everything else.
//!
//! A layer uses only layers above it in this list; the library never uses
//! `cli`. This crate forbids unsafe code (`Cargo.toml` lints).

pub use reimage_sys as sys;

mod boot;
pub mod cli;
mod deploy;
mod dist;
mod live;
mod maint;
mod rpm;
mod store;
mod util;
mod views;

// The public API: the operations, their options and reports, and the
// formats, by the area they belong to. Everything else is private.
pub use boot::{entries, esp};
pub use dist::{bundle, delta, publish, sync};
pub use maint::{fsck, storage};
pub use rpm::{caps, files, stream, trust};
pub use store::{extent, import, init, packages, pool};
pub use util::failpoint;
pub use util::report::{self, Reporter, Silent};
pub use views::compose;
