//! Man pages and shell completions are generated from the clap definitions
//! (`reimage::cli::command()`) and committed under `dist/` (the RPM of
//! reimage ships them). This test regenerates them in memory and fails when
//! a committed file is stale or missing; `cargo xtask man` (which runs this
//! test with `REIMAGE_BLESS=1`) rewrites them.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn generated() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let cmd = reimage::cli::command();
    // One page for reimage, one per subcommand (reimage-import.1, ...).
    let mut pages = vec![(String::from("reimage"), cmd.clone())];
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("reimage-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (name, c) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .date("")
            .render(&mut buf)
            .expect("render a man page");
        out.insert(PathBuf::from(format!("man/{name}.1")), buf);
    }
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "reimage.bash"),
        (Shell::Zsh, "_reimage"),
        (Shell::Fish, "reimage.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut reimage::cli::command(), "reimage", &mut buf);
        out.insert(PathBuf::from(format!("completions/{file}")), buf);
    }
    out
}

#[test]
fn man_pages_and_completions_are_current() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let bless = std::env::var_os("REIMAGE_BLESS").is_some();
    let want = generated();
    let mut stale = Vec::new();
    for (rel, bytes) in &want {
        let path = dist.join(rel);
        if std::fs::read(&path).ok().as_ref() == Some(bytes) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            stale.push(rel.display().to_string());
        }
    }
    // Pages of commands that no longer exist.
    for sub in ["man", "completions"] {
        for e in std::fs::read_dir(dist.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(&dist).unwrap().to_path_buf();
            if !want.contains_key(&rel) {
                if bless {
                    std::fs::remove_file(&p).unwrap();
                } else {
                    stale.push(format!("{} (no such command)", rel.display()));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "dist/ is stale: {} (regenerate with `cargo xtask man`)",
        stale.join(", ")
    );
    let commands = reimage::cli::command().get_subcommands().count();
    assert_eq!(
        want.len(),
        1 + commands + 3,
        "one page for reimage, one per command, three completions"
    );
}
