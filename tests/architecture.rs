//! The tree keeps the shape docs/ARCHITECTURE.md draws (issue 14):
//! - no file under `src/` uses one that uses it back;
//! - the layers are used downwards only: `util` < `rpm` < `store` < `views`
//!   < `dist` < `maint` < `boot` < `deploy` < `live` < `cli`; the library never
//!   uses `cli`;
//! - no function in `src/` is longer than 150 lines;
//! - every folder of `src/` and `crates/` is named in docs/ARCHITECTURE.md;
//! - only `crates/sys` has `unsafe`.
//!
//! The module graph is read from the sources (`crate::a::b` paths and `use
//! super::x`), which is what a person reading them sees.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[&str] = &[
    "util", "rpm", "store", "views", "dist", "maint", "boot", "deploy", "live", "cli",
];
const MAX_FN_LINES: usize = 150;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a source file: `src/store/pool.rs` -> `store::pool`,
/// `src/store/mod.rs` -> `store`, `src/lib.rs` -> ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .filter(|c| c != "mod" && c != "lib" && c != "main")
        .collect();
    parts.join("::")
}

/// Source text without comments and string literals (so a path in a doc
/// comment or a message is not a use).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // a char literal like '"'
            out.push_str("' '");
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The modules of `known` that `text` (in module `me`) uses.
fn uses(text: &str, me: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Unit tests (`#[cfg(test)] mod tests`) are not the architecture, and
    // their `super::` is the file itself.
    let code = code_only(text);
    let code = match code.find("#[cfg(test)]\nmod tests") {
        Some(i) => code[..i].to_string(),
        None => code,
    };
    let mut paths: Vec<String> = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        paths.push(rest[..end].trim_end_matches(':').to_string());
        // `crate::a::{b, c::d}`: the braces' first-level names too.
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |k| end + k);
            for item in rest[end + 1..close].split(',') {
                let item = item.trim().split(' ').next().unwrap_or("");
                if !item.is_empty() {
                    paths.push(format!("{}::{item}", &rest[..end].trim_end_matches(':')));
                }
            }
        }
    }
    let parent = me.rsplit_once("::").map_or("", |(p, _)| p);
    for (i, _) in code.match_indices("super::") {
        let rest = &code[i + 7..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let p = rest[..end].trim_end_matches(':');
        if !parent.is_empty() {
            paths.push(format!("{parent}::{p}"));
        }
    }
    for p in paths {
        // The longest known module that is a prefix of the path.
        let mut cur = String::new();
        let mut best = None;
        for seg in p.split("::") {
            if !cur.is_empty() {
                cur.push_str("::");
            }
            cur.push_str(seg);
            if known.contains(&cur) {
                best = Some(cur.clone());
            }
        }
        if let Some(m) = best {
            if m != me {
                out.insert(m);
            }
        }
    }
    out
}

fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    LAYERS.iter().position(|l| *l == top)
}

#[test]
fn no_cycles_and_layers_used_downwards() {
    let src = root().join("src");
    let files = rust_files(&src);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, f) in &modules {
        let text = std::fs::read_to_string(f).unwrap();
        graph.insert(m.clone(), uses(&text, m, &known));
    }
    let mut bad = Vec::new();
    for (a, deps) in &graph {
        for b in deps {
            // lib.rs re-exports; `mod x;` declarations are not uses (no path).
            if a.is_empty() {
                continue;
            }
            if graph.get(b).is_some_and(|d| d.contains(a)) && a < b {
                bad.push(format!("{a} and {b} use each other"));
            }
            if let (Some(la), Some(lb)) = (layer(a), layer(b)) {
                if lb > la {
                    bad.push(format!(
                        "{a} (layer {}) uses {b} (layer {}), a higher layer",
                        LAYERS[la], LAYERS[lb]
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The check sees uses at all (a broken scanner would pass anything).
    assert!(graph["store::import"].contains("store::pool"));
    assert!(graph["cli"].len() > 5);
}

/// Function lengths, by a brace count over code without comments and strings.
fn long_functions(file: &Path) -> Vec<(String, usize)> {
    let code = code_only(&std::fs::read_to_string(file).unwrap());
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let is_fn = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn "]
            .iter()
            .any(|p| t.starts_with(p));
        if !is_fn {
            continue;
        }
        let name: String = t
            .split("fn ")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut started) = (0i64, false);
        for (k, line) in lines.iter().enumerate().skip(i) {
            if !started && line.trim_end().ends_with(';') && !line.contains('{') {
                break; // a declaration without a body
            }
            for c in line.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        started = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if started && depth <= 0 {
                if k - i + 1 > MAX_FN_LINES {
                    out.push((name.clone(), k - i + 1));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn no_function_over_150_lines() {
    let src = root().join("src");
    let mut bad = Vec::new();
    for f in rust_files(&src) {
        for (name, n) in long_functions(&f) {
            bad.push(format!("{}: fn {name} is {n} lines", f.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn architecture_md_names_every_folder() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for base in ["src", "crates"] {
        for e in std::fs::read_dir(root().join(base)).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                let name = format!("{base}/{}/", p.file_name().unwrap().to_string_lossy());
                if !doc.contains(&name) {
                    missing.push(name);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md does not name {}",
        missing.join(", ")
    );
}

#[test]
fn only_the_sys_crate_has_unsafe_code() {
    let mut bad = Vec::new();
    for base in [
        "src",
        "crates/sysimage/src",
        "crates/testkit/src",
        "xtask/src",
    ] {
        for f in rust_files(&root().join(base)) {
            let code = code_only(&std::fs::read_to_string(&f).unwrap());
            if code.contains("unsafe ") || code.contains("unsafe{") {
                bad.push(f.display().to_string());
            }
        }
    }
    assert!(
        bad.is_empty(),
        "unsafe outside crates/sys: {}",
        bad.join(", ")
    );
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("unsafe_code = \"forbid\""));
}
