//! Prerequisites: every `cargo xtask` command that the README or docs tell a
//! person to run installs what it needs on a fresh Debian machine (as root,
//! with one `apt-get update` and `apt-get install -y`), or names what to
//! install (not root). Each task declares its own list; nothing assumes
//! another task ran first.
use crate::cmd;
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::process::Command;

/// A program a task runs, and the Debian package that provides it.
pub type Tool = (&'static str, &'static str);

/// What the demo runs: the loop-mounted btrfs pool, publish/sync (rsync),
/// and the realistic set's conversion (apt-get download, dpkg).
pub const DEMO: &[Tool] = &[
    ("mkfs.btrfs", "btrfs-progs"),
    ("losetup", "mount"),
    ("rsync", "rsync"),
    ("dpkg-deb", "dpkg"),
];

/// What `cargo xtask fleet` runs: namespaces and veths (iproute2), the
/// mirror's servers, the loop-mounted btrfs, and the realistic set's conversion.
pub const FLEET: &[Tool] = &[
    ("ip", "iproute2"),
    ("ss", "iproute2"),
    ("nginx", "nginx"),
    ("rsync", "rsync"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("btrfs", "btrfs-progs"),
    ("losetup", "mount"),
    ("mountpoint", "util-linux"),
    ("dpkg-deb", "dpkg"),
    ("git", "git"),
];

/// What `cargo xtask test` runs: the integration tests' tools and peers.
pub const TEST: &[Tool] = &[
    ("gpg", "gnupg"),
    ("gpgconf", "gnupg"),
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("mkfs.xfs", "xfsprogs"),
    ("compsize", "btrfs-compsize"),
    ("rsync", "rsync"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("rpm2cpio", "rpm2cpio"),
    ("cpio", "cpio"),
    ("zstd", "zstd"),
    // tests/boot.rs: install --disk on an image file.
    ("sfdisk", "fdisk"),
    ("mformat", "mtools"),
    ("mkfs.vfat", "dosfstools"),
    (
        "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        "systemd-boot-efi",
    ),
    // tests/live.rs: the live steps run the real tools with --root.
    ("systemd-sysusers", "systemd"),
    ("systemd-tmpfiles", "systemd"),
    ("ldconfig", "libc-bin"),
    // tests/serving.rs: HTTP resume against nginx (honours Range) and
    // Python's http.server (answers 200 to a Range request).
    ("nginx", "nginx-light"),
    ("python3", "python3"),
];

/// What the benchmark compares against (benches/compare.rs `TOOLS`).
pub const BENCH: &[Tool] = &[
    ("rpm", "rpm"),
    ("rpm2cpio", "rpm2cpio"),
    ("cpio", "cpio"),
    ("zstd", "zstd"),
    ("btrfs", "btrfs-progs"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("compsize", "btrfs-compsize"),
    ("ostree", "ostree"),
    ("rsync", "rsync"),
    ("git", "git"),
];

fn have_tool(bin: &str) -> bool {
    cmd::have(bin)
        || ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(bin).is_file())
}

/// Installs what `task` needs and is missing (root), or explains it (not root).
pub fn ensure(task: &str, tools: &[Tool]) -> Result<()> {
    let missing: BTreeSet<&str> = tools
        .iter()
        .filter(|(b, _)| !have_tool(b))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        eprintln!("xtask {task}: prerequisites: all present");
        return Ok(());
    }
    let list: Vec<&str> = missing.into_iter().collect();
    if !cmd::is_root() {
        bail!(
            "missing prerequisites: {} (install them: `sudo apt-get install -y {}`, or run as root)",
            list.join(", "),
            list.join(" ")
        );
    }
    eprintln!("xtask {task}: prerequisites: installing {}", list.join(" "));
    cmd::run_visible(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    cmd::run_visible(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&list)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still: Vec<&str> = tools
        .iter()
        .filter(|(b, _)| !have_tool(b))
        .map(|(b, _)| *b)
        .collect();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The bench's own list of the tools it runs is covered here, so a tool
    /// added to the bench is installed by `cargo xtask bench` too.
    #[test]
    fn bench_tools_are_installed_by_the_task() {
        let src = include_str!("../../benches/compare.rs");
        let start = src.find("const TOOLS: &[&str] = &[").unwrap();
        let end = start + src[start..].find("];").unwrap();
        let base = ["cp", "xargs", "bash", "losetup", "cat", "diff", "sort"];
        for line in src[start..end].lines().skip(1) {
            let t = line.trim().trim_matches(|c| c == '"' || c == ',');
            if t.is_empty() || base.contains(&t) {
                continue;
            }
            assert!(
                super::BENCH.iter().any(|(b, _)| *b == t),
                "benches/compare.rs runs {t}, which `cargo xtask bench` does not install"
            );
        }
    }
}
