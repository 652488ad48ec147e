//! Live apply (`reimage apply-live`, docs/live.md): the staged deployment's
//! view becomes the running `/usr` without a reboot. A view is a complete
//! read-only tree, so `/usr` is switched by mounting the new view over it,
//! at the same cost for one package or a thousand:
//!
//! 1. the package diff from the view that is `/usr` now decides: added
//!    packages only, or `--allow-replacement`;
//! 2. the deployment becomes the default (the next boot starts what runs);
//! 3. the view is mounted over `/usr` in the running system's mount
//!    namespace, carrying the mounts that were on the old one (`/usr/local`)
//!    ([`mounts`]);
//! 4. `/run/reimage/live.json` records it (src/deploy/live.rs);
//! 5. the new defaults of `/etc` are merged into the running `/etc` in
//!    place (not transactional);
//! 6. tmpfiles, sysusers, ldconfig, daemon-reload ([`steps`]);
//! 7. the processes still using files of the old `/usr` are listed
//!    ([`procs`]).
pub mod apply;
pub mod mounts;
pub mod procs;
pub mod steps;
