//! Reading Debian packages: the `ar` container, the control fields and `conffiles`,
//! and the data tarball (xz, zstd, gzip or uncompressed).
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Read;

/// The members of an `ar` archive, in order: (name, bytes).
pub fn ar_members(bytes: &[u8]) -> Result<Vec<(String, &[u8])>> {
    if !bytes.starts_with(b"!<arch>\n") {
        bail!("not an ar archive");
    }
    let mut pos = 8;
    let mut out = Vec::new();
    while pos + 60 <= bytes.len() {
        let h = &bytes[pos..pos + 60];
        let name = String::from_utf8_lossy(&h[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: usize = String::from_utf8_lossy(&h[48..58])
            .trim()
            .parse()
            .with_context(|| format!("bad ar member size for {name}"))?;
        let start = pos + 60;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= bytes.len())
            .context("ar member runs past the end")?;
        out.push((name, &bytes[start..end]));
        pos = end + (size & 1);
    }
    Ok(out)
}

/// A decompressing reader for a member named `*.tar[.xz|.zst|.gz]`.
pub fn tar_reader<'a>(name: &str, data: &'a [u8]) -> Result<Box<dyn Read + 'a>> {
    Ok(if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(data))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(data)?)
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(data))
    } else if name.ends_with(".tar") {
        Box::new(data)
    } else {
        bail!("unsupported deb member compression: {name}")
    })
}

/// What the converter needs from `control.tar`.
pub struct Control {
    /// Field name -> value (continuation lines joined with '\n').
    pub fields: BTreeMap<String, String>,
    /// Paths listed in `conffiles` (without `remove-on-upgrade` entries).
    pub conffiles: Vec<String>,
}

/// Parses a deb822 paragraph.
pub fn parse_fields(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(k) = &last {
                let v: &mut String = fields.entry(k.clone()).or_default();
                v.push('\n');
                v.push_str(line.trim_start());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.trim().to_string(), v.trim().to_string());
            last = Some(k.trim().to_string());
        }
    }
    fields
}

/// Reads `control` and `conffiles` from the control tarball.
pub fn read_control(name: &str, data: &[u8]) -> Result<Control> {
    let mut ar = tar::Archive::new(tar_reader(name, data)?);
    let mut fields = None;
    let mut conffiles = Vec::new();
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut s = String::new();
        match path.as_str() {
            "control" => {
                entry.read_to_string(&mut s)?;
                fields = Some(parse_fields(&s));
            }
            "conffiles" => {
                entry.read_to_string(&mut s)?;
                for line in s.lines() {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    match words.as_slice() {
                        [path] => conffiles.push(path.to_string()),
                        [flag, _] if *flag == "remove-on-upgrade" => {}
                        [path, ..] if path.starts_with('/') => conffiles.push(path.to_string()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Control {
        fields: fields.context("control.tar has no control file")?,
        conffiles,
    })
}
