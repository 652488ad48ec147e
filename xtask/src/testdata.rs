//! `cargo xtask testdata`: writes `edge/`, `hostile/` and (with `--realistic`)
//! `realistic/v1`, `realistic/v2` (with `--boot`, `boot/v1`, `boot/v2`: a closed,
//! bootable Debian set) under the output directory.
use crate::{edge, hostile, realistic};
use anyhow::{bail, Context, Result};
use sha2::Digest;
use std::path::PathBuf;
use std::time::Instant;

pub struct Options {
    pub out: PathBuf,
    pub realistic: bool,
    pub boot: bool,
}

/// Builds the test data; returns the output directory.
pub fn run(opts: &Options) -> Result<PathBuf> {
    let t0 = Instant::now();
    let out = &opts.out;
    let edge_dir = out.join("edge");
    let hostile_dir = out.join("hostile");
    for d in [&edge_dir, &hostile_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }

    let built = edge::all()?;
    let again = edge::all()?;
    let mut total = 0u64;
    for (a, b) in built.iter().zip(&again) {
        let (x, y) = (
            crate::surgery::to_bytes(&a.package)?,
            crate::surgery::to_bytes(&b.package)?,
        );
        if x != y {
            bail!("{} is not reproducible: two builds differ", a.file_name);
        }
        edge::write(&edge_dir, a)?;
        total += x.len() as u64;
    }
    let mut sums = String::new();
    let mut names: Vec<_> = built.iter().map(|b| b.file_name.clone()).collect();
    names.sort();
    for n in &names {
        let bytes = std::fs::read(edge_dir.join(n))?;
        sums.push_str(&format!(
            "{}  {n}\n",
            hex::encode(sha2::Sha256::digest(&bytes))
        ));
    }
    std::fs::write(edge_dir.join("SHA256SUMS"), sums)?;
    eprintln!(
        "testdata: edge: {} packages, {} bytes, reproducible (built twice, identical) -> {}",
        built.len(),
        total,
        edge_dir.display()
    );

    let fixtures = hostile::build(&hostile_dir)?;
    eprintln!(
        "testdata: hostile: {} fixtures, manifest.json and README.md -> {}",
        fixtures.len(),
        hostile_dir.display()
    );

    if opts.realistic {
        realistic::run(&out.join("realistic"))?;
    }
    if opts.boot {
        realistic::boot(&out.join("boot"))?;
    }
    eprintln!(
        "testdata: done in {:.1}s: {}",
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(out.clone())
}
