//! The command-line interface: clap lives here only. Every command turns its
//! flags into the library's plain option structs, calls the library, and prints
//! data to stdout (human text, or JSON with `--json`) and messages to stderr.
pub mod boot;
pub mod common;
pub mod deploy;
pub mod dist;
pub mod fsck;
pub mod live;
pub mod progress;
pub mod query;
pub mod storage;

pub mod store;
pub mod upgrade;
pub mod views;

use anyhow::Result;
use clap::{Parser, Subcommand};

use common::{Global, Out, UsageError};
use store::{cmd_import, cmd_packages, ImportArgs, InitArgs};
use views::{cmd_compose, cmd_views, ComposeArgs, RmViewArgs};

use crate::util::runner::log;

#[derive(Parser, Debug)]
#[command(name = "reimage", version, about = "Image-like, atomic OS updates built from RPM packages on btrfs", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The clap definition of the whole command line (for man pages and shell
/// completions, generated from it: `dist/man/`, `dist/completions/`).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Prepare a pool (optionally inside a loop-mounted btrfs image).
    Init(InitArgs),
    /// Transcode RPM files into extent packages in the pool.
    Import(ImportArgs),
    /// List the extent packages in the pool.
    Packages,
    /// Compose a read-only /usr view from a package list.
    Compose(ComposeArgs),
    /// List the views in the pool.
    Views,
    /// Delete a view.
    RmView(RmViewArgs),
    /// List the packages of a view (or any /usr tree), like rpm -qa.
    List(crate::cli::query::ListArgs),
    /// Query a view's packages: -f PATH, -l PKG, -i PKG, --provides/--requires PKG, --whatprovides CAP.
    Query(crate::cli::query::QueryArgs),
    /// Package (and with --files, file) differences between two views.
    Diff(crate::cli::query::DiffArgs),
    /// Check every file of a view against its package header, like rpm -V (exit 1 on mismatch).
    Verify(crate::cli::query::VerifyArgs),
    /// Share identical content across extent packages (FIDEDUPERANGE; rebuilds big-extent packages).
    Dedupe(crate::cli::storage::DedupeArgs),
    /// Bytes referenced, shared and exclusive per package and view, counted like compsize.
    Usage(crate::cli::storage::UsageArgs),
    /// Remove extent packages no view or image manifest references; clean tmp/.
    Gc(crate::cli::storage::GcArgs),
    /// Publish an image version into a repository (or --prune it).
    Publish(crate::cli::dist::PublishArgs),
    /// Write one file with a published version for offline machines (`reimage sync FILE IMAGE`).
    Bundle(crate::cli::dist::BundleArgs),
    /// Bring the pool to an image version from a repository (rsync, ssh, path, http).
    Sync(crate::cli::dist::SyncArgs),
    /// Check the pool: every package against its index and header, every view complete.
    Fsck(crate::cli::fsck::FsckArgs),
    /// Make a bootable deployment of a view, the default for the next boot.
    Deploy(crate::cli::deploy::DeployArgs),
    /// The deployments of a system: booted, default, pinned, package diffs.
    Status(crate::cli::deploy::StatusArgs),
    /// Sync the image the system follows, compose its new version from the view in use, deploy it.
    Upgrade(crate::cli::upgrade::UpgradeArgs),
    /// Make the default (staged) deployment's view the running /usr now, without a reboot.
    ApplyLive(crate::cli::live::ApplyLiveArgs),
    /// Make the previous deployment the default again.
    Rollback(crate::cli::deploy::SysrootArg),
    /// Keep a deployment whatever the retention setting.
    Pin(crate::cli::deploy::IdArgs),
    /// Let retention remove a deployment again.
    Unpin(crate::cli::deploy::IdArgs),
    /// Remove one deployment (not the booted one, not the default, not a pinned one).
    Undeploy(crate::cli::deploy::IdArgs),
    /// Remove the deployments retention does not keep.
    Cleanup(crate::cli::deploy::CleanupArgs),
    /// Merge /etc into the staged deployment again (at shutdown, from reimage-finalize.service).
    Finalize(crate::cli::deploy::SysrootArg),
    /// The history of /etc: commit, log, diff, revert; sync into another deployment.
    Etc(crate::cli::deploy::EtcArgs),
    /// Make a bootable disk from packages: GPT, ESP with systemd-boot, btrfs with the pool and deployment 1.
    Install(crate::cli::boot::InstallArgs),
    /// Boot entries: check for a fallback at boot, or sync the ESP with the state record.
    Boot(crate::cli::boot::BootArgs),
    /// Run the health checks of /etc/reimage/health.d (boot assessment); exit 1 when a required one fails.
    Health(crate::cli::boot::HealthArgs),
}

/// Entry point of the binary; returns the exit code.
pub fn main() -> i32 {
    // `REIMAGE_POOL=` (set but empty) means unset, not "--pool without a value".
    if std::env::var_os("REIMAGE_POOL").is_some_and(|v| v.is_empty()) {
        // Single-threaded here: nothing else reads the environment yet.
        std::env::remove_var("REIMAGE_POOL");
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    log::set_level(if cli.global.quiet {
        0
    } else if cli.global.verbose {
        2
    } else {
        1
    });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                eprintln!("\nFor more information, try '--help'.");
                return 2;
            }
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<i32> {
    let g = cli.global;
    match cli.command {
        Command::Init(a) => {
            let report = crate::store::init::init(&crate::store::init::InitOptions {
                pool: g.pool.clone(),
                image: a.image,
                size: a.size,
                allow_copy: a.allow_copy,
            })?;
            let mut out = Out::new();
            if g.json {
                out.json(&report)?;
            } else if !g.quiet {
                for line in report.lines() {
                    out.line(line)?;
                }
            }
        }
        Command::Import(a) => return cmd_import(&g, a),
        Command::Packages => return cmd_packages(&g),
        Command::Compose(a) => return cmd_compose(&g, a),
        Command::Views => return cmd_views(&g),
        Command::List(a) => return crate::cli::query::run_list(&g, a),
        Command::Query(a) => return crate::cli::query::run_query(&g, a),
        Command::Diff(a) => return crate::cli::query::run_diff(&g, a),
        Command::Verify(a) => return crate::cli::query::run_verify(&g, a),
        Command::Dedupe(a) => return crate::cli::storage::run_dedupe(&g, a),
        Command::Usage(a) => return crate::cli::storage::run_usage(&g, a),
        Command::Gc(a) => return crate::cli::storage::run_gc(&g, a),
        Command::Publish(a) => return crate::cli::dist::run_publish(&g, a),
        Command::Bundle(a) => return crate::cli::dist::run_bundle(&g, a),
        Command::Sync(a) => return crate::cli::dist::run_sync(&g, a),
        Command::Fsck(a) => return crate::cli::fsck::run_fsck(&g, a),
        Command::Deploy(a) => return crate::cli::deploy::run_deploy(&g, a),
        Command::Status(a) => return crate::cli::deploy::run_status(&g, a),
        Command::ApplyLive(a) => return crate::cli::live::run_apply_live(&g, a),
        Command::Upgrade(a) => return crate::cli::upgrade::run_upgrade(&g, a),
        Command::Rollback(a) => return crate::cli::deploy::run_rollback(&g, a),
        Command::Pin(a) => return crate::cli::deploy::run_pin(&g, a, true),
        Command::Unpin(a) => return crate::cli::deploy::run_pin(&g, a, false),
        Command::Cleanup(a) => return crate::cli::deploy::run_cleanup(&g, a),
        Command::Undeploy(a) => return crate::cli::deploy::run_undeploy(&g, a),
        Command::Finalize(a) => return crate::cli::deploy::run_finalize(&g, a),
        Command::Etc(a) => return crate::cli::deploy::run_etc(&g, a),
        Command::Install(a) => return crate::cli::boot::run_install(&g, a),
        Command::Boot(a) => return crate::cli::boot::run_boot(&g, a),
        Command::Health(a) => return crate::cli::boot::run_health(&g, a),
        Command::RmView(a) => {
            let pool = crate::store::pool::Pool::open(&g.pool)?;
            crate::views::compose::rm_view(&pool, &a.name, !a.no_wait)?;
            if g.json {
                Out::new().json(&serde_json::json!({ "removed": a.name }))?;
            } else if !g.quiet {
                eprintln!("removed view {}", a.name);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
