//! `cargo xtask bench [--quick] [--reps N]`: the side-by-side benchmark suite
//! (`benches/compare.rs`, issue 8).
//!
//! Makes sure the test data exists (the realistic
//! set is converted once and cached; the large set is generated and cached by
//! the bench itself under `target/bench/data/`), then runs
//! `cargo bench --bench compare -- ...`, which writes `target/bench/report.md`,
//! `report.json` and `commands.log`. Needs root (loop-mounted btrfs).
//!
//! A full run then boots the VM boot test's system once (issue 18: kernel
//! start to `boot-complete.target`) and adds a "VM boot" section to
//! `report.md` and a `boot` object to `report.json`; `--quick` leaves it
//! out and says so; `--boot-only` measures just that and updates those two
//! entries of an existing report (or starts one).
use crate::cmd::repo_root;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub struct Options {
    pub quick: bool,
    pub reps: Option<usize>,
    pub boot_only: bool,
}

pub fn run(opts: &Options) -> Result<()> {
    let t0 = Instant::now();
    let root = repo_root();
    if opts.boot_only {
        return vm_boot(&root);
    }
    let cargo = crate::cmd::cargo();
    crate::prereq::ensure("bench", crate::prereq::BENCH)?;
    if !opts.quick {
        crate::prereq::ensure("bench", crate::boot::BOOT_TOOLS)?;
    }
    let data = root.join("target/testdata");
    if !data.join("realistic/v1").is_dir() || !data.join("edge").is_dir() {
        eprintln!("bench: building test data (cargo xtask testdata --realistic)");
        crate::testdata::run(&crate::testdata::Options {
            out: data,
            realistic: true,
            boot: false,
        })?;
    }
    // `cargo bench` builds the release binary the bench runs (bench profile
    // = release; CARGO_BIN_EXE_reimage), so there is no separate build step.
    let mut c = Command::new(&cargo);
    c.args(["bench", "--bench", "compare", "--"])
        .current_dir(&root);
    if opts.quick {
        c.arg("--quick");
    }
    if let Some(n) = opts.reps {
        c.arg("--reps").arg(n.to_string());
    }
    eprintln!("bench: {c:?}");
    let st = c.status()?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "bench: {} in {secs:.0} s ({:.1} min); report: {}",
        if st.success() { "done" } else { "FAILED" },
        secs / 60.0,
        root.join("target/bench/report.md").display()
    );
    if !st.success() {
        if !opts.quick {
            let why = format!("not run: the benchmark before it failed ({st})");
            if let Err(e) = write_boot(&root, &not_measured(&root, &why)) {
                eprintln!("bench: could not add the VM boot entry to the report: {e:#}");
            }
        }
        bail!("the benchmark failed or could not measure every figure ({st}); see target/bench/report.md");
    }
    if opts.quick {
        let (commit, dirty) = commit(&root);
        write_boot(
            &root,
            &BootEntry {
                md: "Left out with `--quick` (it installs a disk image and boots it in qemu). \
                     `cargo xtask bench --boot-only` measures it and adds it to this report; \
                     a full `cargo xtask bench` includes it.\n"
                    .into(),
                json: json!({
                    "skipped": "left out with --quick; cargo xtask bench --boot-only measures it",
                    "commit": commit,
                    "src_dirty": dirty,
                }),
            },
        )?;
        return Ok(());
    }
    vm_boot(&root)
}

/// The `## VM boot` section of report.md and the `boot` object of report.json.
struct BootEntry {
    md: String,
    json: Value,
}

/// The short commit of the work tree and whether tracked files differ from it.
fn commit(root: &Path) -> (String, bool) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "?".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (commit, dirty)
}

fn not_measured(root: &Path, why: &str) -> BootEntry {
    let (commit, dirty) = commit(root);
    BootEntry {
        md: format!("NOT MEASURED: {why}\n"),
        json: json!({"error": why, "commit": commit, "src_dirty": dirty}),
    }
}

/// Boots the boot test's v1 once (`boot::measure_v1_boot`) and writes the
/// report entries; fails (after writing `NOT MEASURED`) when it cannot.
fn vm_boot(root: &Path) -> Result<()> {
    let dir = root.join("target/bench/boot");
    eprintln!("bench: VM boot: installing the boot set's v1 and booting it once (qemu, TCG)");
    let qemu = format!("qemu-system-x86_64 {}", crate::boot::QEMU_MACHINE.join(" "));
    let entry = match crate::boot::measure_v1_boot(&dir) {
        Ok(b) => {
            let (commit, dirty) = commit(root);
            let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
            let cpu = crate::cmd::cpu_model();
            let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
            let mut md = String::new();
            let _ = writeln!(md, "| boot of the boot set's v1 (deployment 1) | seconds |");
            let _ = writeln!(md, "|---|---:|");
            let _ = writeln!(
                md,
                "| kernel start to `boot-complete.target` (guest clock) | {:.1} |",
                b.boot_complete_s
            );
            let _ = writeln!(md, "| qemu start to `reimage-health: healthy` on the console (firmware and systemd-boot included, host clock) | {:.1} |", b.healthy_s);
            let _ = writeln!(md);
            let _ = writeln!(md, "- command: `cargo xtask bench --boot-only` (also the last step of a full `cargo xtask bench`): `reimage install --disk` of `testdata/boot.list` v1 ({:.1} s), then one boot of it; the guest's probe prints `systemctl show -P ActiveEnterTimestampMonotonic boot-complete.target`", b.install_s);
            let _ = writeln!(md, "- machine: `{qemu}` (software emulation, no KVM) with OVMF and systemd-boot, on {cores} host cores ({cpu}); not a hardware figure");
            let _ = writeln!(
                md,
                "- commit `{commit}`{}; serial log `{}`",
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                },
                rel(&b.log)
            );
            BootEntry {
                md,
                json: json!({
                    "boot_complete_seconds": b.boot_complete_s,
                    "healthy_seconds": b.healthy_s,
                    "install_seconds": b.install_s,
                    "set": "testdata/boot.list v1, deployment 1",
                    "qemu": qemu,
                    "command": "cargo xtask bench --boot-only",
                    "install_command": b.install_cmd,
                    "serial_log": rel(&b.log),
                    "commit": commit,
                    "src_dirty": dirty,
                }),
            }
        }
        Err(e) => not_measured(root, &format!("{e:#}").replace('\n', " ")),
    };
    let failed = entry
        .json
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string);
    write_boot(root, &entry)?;
    eprintln!("bench: VM boot:\n{}", entry.md);
    if let Some(e) = failed {
        bail!("the VM boot was NOT MEASURED ({e}); see target/bench/report.md");
    }
    Ok(())
}

/// Replaces (or adds) the `## VM boot` section of report.md and the `boot`
/// object of report.json; starts either file when it is not there.
fn write_boot(root: &Path, entry: &BootEntry) -> Result<()> {
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let md_path = out.join("report.md");
    let md = std::fs::read_to_string(&md_path).unwrap_or_else(|_| {
        "# reimage compare: report\n\nOnly the VM boot (`cargo xtask bench --boot-only`); `cargo xtask bench` measures the rest.\n".into()
    });
    let mut md = with_section(&md, "VM boot", &entry.md);
    if let Some(secs) = entry.json["boot_complete_seconds"].as_f64() {
        md = with_headline_boot(&md, secs);
    }
    std::fs::write(&md_path, md)?;
    let js_path = out.join("report.json");
    let mut js = match std::fs::read_to_string(&js_path) {
        Ok(t) => serde_json::from_str::<Value>(&t)
            .with_context(|| format!("{} is not JSON", js_path.display()))?,
        Err(_) => json!({}),
    };
    let Some(obj) = js.as_object_mut() else {
        bail!("{} is not a JSON object", js_path.display());
    };
    obj.insert("boot".into(), entry.json.clone());
    std::fs::write(&js_path, serde_json::to_string_pretty(&js)?)?;
    Ok(())
}

/// The headline table's VM boot row (`benches/compare.rs` writes it, from
/// the last `cargo xtask boot-test` if any) with the figure just measured.
fn with_headline_boot(md: &str, secs: f64) -> String {
    let row = format!(
        "| VM boot: kernel start to boot-complete.target, seconds (one TCG boot, see VM boot) | {secs:.1} | (info) | - |"
    );
    md.lines()
        .map(|l| {
            if l.starts_with("| VM boot") {
                row.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `md` with its `## TITLE` section (up to the next `## `) replaced by
/// `body`, or with the section added at the end.
fn with_section(md: &str, title: &str, body: &str) -> String {
    let head = format!("## {title}\n");
    let mut md = md.to_string();
    let start = md
        .find(&format!("\n{head}"))
        .map(|i| i + 1)
        .or(md.starts_with(&head).then_some(0));
    if let Some(start) = start {
        let from = start + head.len();
        let end = md[from..].find("\n## ").map_or(md.len(), |i| from + i + 1);
        md.replace_range(start..end, "");
    }
    let md = md.trim_end();
    if md.is_empty() {
        format!("{head}\n{body}")
    } else {
        format!("{md}\n\n{head}\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::with_section;

    #[test]
    fn the_headline_row_gets_the_boot_figure() {
        let md = "| a | 1 |\n| VM boot test: x (last cargo xtask boot-test) | not measured | (info) | - |\n| b | 2 |\n";
        let out = super::with_headline_boot(md, 8.24);
        assert_eq!(
            out,
            "| a | 1 |\n| VM boot: kernel start to boot-complete.target, seconds (one TCG boot, see VM boot) | 8.2 | (info) | - |\n| b | 2 |\n"
        );
    }

    #[test]
    fn the_boot_section_is_added_once_and_replaced() {
        let md = "# r\n\n## A\n\na\n";
        let one = with_section(md, "VM boot", "x\n");
        assert_eq!(one, "# r\n\n## A\n\na\n\n## VM boot\n\nx\n");
        assert_eq!(
            with_section(&one, "VM boot", "y\n"),
            "# r\n\n## A\n\na\n\n## VM boot\n\ny\n"
        );
        let mid = "# r\n\n## VM boot\n\nold\n\n## Notes\n\n- n\n";
        assert_eq!(
            with_section(mid, "VM boot", "new\n"),
            "# r\n\n## Notes\n\n- n\n\n## VM boot\n\nnew\n"
        );
        assert_eq!(with_section("", "VM boot", "z\n"), "## VM boot\n\nz\n");
    }
}
