//! Deployments: bootable roots around views (docs/deploy.md). One file per
//! operation; the layout is drawn here.
//!
//! ```text
//! SYSROOT/                       top level of the system's btrfs (subvolid 5)
//!   pool/                        the pool (any path on this filesystem; the state names it)
//!     views/NAME                 read-only views: a deployment's /usr (subvol=)
//!     roots/system-UUID.json     the views deployments use (gc and rm-view keep them)
//!   reimage/
//!     state.json                 deployments, the default, retention: one atomic rename
//!     deployments/ID/            writable subvolume: the root of deployment ID
//!       etc/                     its own subvolume (etc commit = one snapshot)
//!       usr/                     empty: the view is mounted here
//!       bin -> usr/bin, ...      the view's root skeleton (reimage-root.conf)
//!     records/ID.json            how ID was made: merge decisions, first-boot steps
//!     etc-history/ID/N           read-only snapshots of ID's etc (etc commit), N.json beside
//!     tmp/                       staging: garbage after a crash
//!   shared/var, home, root, srv, opt, usr-local
//!                                subvolumes no deployment owns and no rollback touches
//! ```
pub mod boot;
pub mod bootcheck;
pub mod check;
pub mod cleanup;
pub mod etc;
pub mod finalize;
pub mod firstboot;
pub mod fstab;
pub mod health;
pub mod install;
pub mod live;
pub mod merge;
pub mod new;
pub mod pin;
pub mod record;
pub mod rollback;
pub mod skeleton;
pub mod state;
pub mod status;
pub mod sysroot;
pub mod system;
pub mod upgrade;
