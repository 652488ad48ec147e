//! The one place external programs (mkfs.btrfs, mount, losetup, rsync, ...) are run:
//! logs the command line and puts the tail of stderr into the error.
use anyhow::{bail, Context, Result};
use std::process::Command;

/// Runs `cmd`, returns its stdout; on failure the error names the command line,
/// the exit status and the last lines of stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    log::debug(&line);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{line}` (is it installed?)"))?;
    stdout_of(&line, out)
}

/// stdout of a finished command; on failure an error naming the command
/// line, the exit status and the last lines of stderr.
fn stdout_of(line: &str, out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("`{line}` failed ({}): {}", out.status, tail.join("\n"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with `input` on its stdin, as [`run`] does.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Result<String> {
    use std::io::Write;
    use std::process::Stdio;
    let line = describe(cmd);
    log::debug(&line);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{line}` (is it installed?)"))?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(input)
        .with_context(|| format!("cannot write to `{line}`"))?;
    stdout_of(&line, child.wait_with_output()?)
}

/// The command line as a person would type it.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
            s.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Minimal verbosity-aware logging to stderr, set once by the CLI.
pub mod log {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(1);
    /// 0 quiet, 1 normal, 2 verbose.
    pub fn set_level(l: u8) {
        LEVEL.store(l, Ordering::Relaxed);
    }
    pub fn level() -> u8 {
        LEVEL.load(Ordering::Relaxed)
    }
    pub fn debug(msg: &str) {
        if level() >= 2 {
            eprintln!("+ {msg}");
        }
    }
    pub fn info(msg: &str) {
        if level() >= 1 {
            eprintln!("{msg}");
        }
    }
    pub fn warn(msg: &str) {
        eprintln!("warning: {msg}");
    }
}
