//! `cargo xtask TASK`: developer tasks for reimage (test data, tests, demo).
//!
//! The task table below is the whole interface; each task lives in its own module.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod boot;
mod cmd;
mod corpus;
mod cpio;
mod deb;
mod demo;
mod edge;
mod faults;
mod fleet;
mod fuzz;
mod hostile;
mod powercut;
mod prereq;
mod realistic;
mod surgery;
mod test;
mod testdata;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Developer tasks for reimage")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the test packages (edge cases, hostile set, optionally realistic).
    Testdata {
        /// Also convert real Debian packages (downloads with apt-get; cached).
        #[arg(long)]
        realistic: bool,
        /// Also convert the closed, bootable Debian set of testdata/boot.list.
        #[arg(long)]
        boot: bool,
        /// Output directory (default: target/testdata).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Install prerequisites (as root), build test data, run fmt, clippy and tests.
    Test,
    /// Build the static reimage-init (the initrd's /init).
    Init,
    /// Build target/rpm/reimage-VERSION-1.x86_64.rpm (binary, reimage-init, units, man pages).
    Rpm,
    /// Install the closed Debian set on a disk image and boot it in qemu: update, fallback.
    BootTest,
    /// Cut power in a VM (qemu and nbdkit's write cache killed) during import, compose --from, deploy, rollback, gc; check every cut.
    Powercut {
        /// How many cuts.
        #[arg(long, default_value_t = 20)]
        cuts: u64,
        /// Seed of the cut moments (default: from the clock; the report says it).
        #[arg(long)]
        seed: Option<u64>,
        /// Boot the disk after every this many cuts (0: never).
        #[arg(long, default_value_t = 5)]
        boot_every: u64,
    },
    /// Make a loop-image pool under target/demo and walk through what is built so far.
    Demo,
    /// Run the benchmark suite (benches/compare.rs) and write target/bench/report.{md,json}.
    Bench {
        /// Fewer reps and no minutes-long figures (under 5 minutes).
        #[arg(long)]
        quick: bool,
        /// Repetitions per figure (default 5, or 3 with --quick).
        #[arg(long)]
        reps: Option<usize>,
        /// Only the VM boot (kernel start to boot-complete.target, one TCG
        /// boot): update its entries in target/bench/report.{md,json}.
        #[arg(long, conflicts_with_all = ["quick", "reps"])]
        boot_only: bool,
    },
    /// One mirror and N client machines in network namespaces: v1 -> v2 by static
    /// delta over HTTP and by live rsync; bytes, times and server CPU in target/fleet/report.{md,json} (as root).
    Fleet {
        /// Client machines (each its own network namespace and pool).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Clients syncing at the same time (one wave).
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// zstd level of the published static deltas (publish's default).
        #[arg(long, default_value_t = 19)]
        delta_level: u32,
        /// Seconds one sync may take before it is killed and the run fails.
        #[arg(long, default_value_t = 600)]
        sync_timeout: u64,
        /// Minutes the client waves may take; no new wave starts after that.
        #[arg(long, default_value_t = 30)]
        max_minutes: u64,
    },
    /// Kill import, compose, compose --from, dedupe and gc at every failpoint (as root).
    Faults {
        /// The CI form: first, middle and last hit of each failpoint, then
        /// ENOSPC, two writers and fsck.
        #[arg(long)]
        quick: bool,
        /// At most this many hits per failpoint (spread evenly).
        #[arg(long)]
        max_per_name: Option<u64>,
        /// Random-time kills per operation (default 5).
        #[arg(long)]
        random: Option<u64>,
        /// Seed of the random-time kills.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run each fuzz target for a bounded time (cargo fuzz, else property tests).
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Only this target (index_read, rpm_stream, cpio).
        #[arg(long)]
        target: Option<String>,
        /// Run the property tests on stable instead of libFuzzer.
        #[arg(long)]
        stable: bool,
    },
    /// Regenerate the man pages and shell completions under dist/ from the clap definitions.
    Man,
    /// Write the hostile corpus (malformed and malicious RPMs) to a directory.
    Corpus {
        /// Output directory (default: target/testdata/corpus).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Testdata {
            realistic,
            boot,
            out,
        } => testdata::run(&testdata::Options {
            out: out.unwrap_or_else(|| cmd::repo_root().join("target/testdata")),
            realistic,
            boot,
        })
        .map(|_| ()),
        Task::Test => test::run(),
        Task::Init => boot::init().map(|_| ()),
        Task::Rpm => boot::rpm().map(|_| ()),
        Task::BootTest => boot::boot_test(),
        Task::Powercut {
            cuts,
            seed,
            boot_every,
        } => powercut::run(&powercut::Options {
            cuts,
            seed,
            boot_every,
        }),
        Task::Demo => demo::run(),
        Task::Bench {
            quick,
            reps,
            boot_only,
        } => bench::run(&bench::Options {
            quick,
            reps,
            boot_only,
        }),
        Task::Fleet {
            clients,
            parallel,
            delta_level,
            sync_timeout,
            max_minutes,
        } => fleet::run(&fleet::Options {
            clients,
            parallel,
            delta_level,
            sync_timeout,
            max_minutes,
        }),
        Task::Faults {
            quick,
            max_per_name,
            random,
            seed,
        } => faults::run(&faults::Options {
            quick,
            max_per_name,
            random,
            seed,
        }),
        Task::Fuzz {
            seconds,
            target,
            stable,
        } => fuzz::run(&fuzz::Options {
            seconds,
            target,
            stable,
        }),
        Task::Man => cmd::run_visible(
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["test", "-p", "reimage", "--test", "cli_docs"])
                .env("REIMAGE_BLESS", "1")
                .current_dir(cmd::repo_root()),
        ),
        Task::Corpus { out } => {
            let out = out.unwrap_or_else(|| cmd::repo_root().join("target/testdata/corpus"));
            corpus::write(&out).map(|n| println!("{n} hostile packages in {}", out.display()))
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}
