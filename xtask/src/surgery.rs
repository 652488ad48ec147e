//! Byte-level surgery on built packages: replace the payload and edit main-header
//! tags, then fix up every digest that covers them (payload digests in the main
//! header, header digests and size in the signature header), so that only the check
//! a hostile fixture targets fails.
use anyhow::{bail, Context, Result};
use rpm::{HeaderEntry, IndexData, IndexTag, Package, SignatureHeaderBuilder};
use sha2::Digest;
use std::io::Write;

const TAG_BASENAMES: u32 = 1117;
pub const TAG_DIRNAMES: u32 = 1118;
const TAG_REGION: u32 = 63;
const TAG_PAYLOADCOMPRESSOR: u32 = 1125;
const TAG_PAYLOADSHA256: u32 = 5092;
const TAG_PAYLOADSHA256ALT: u32 = 5097;
const TAG_PAYLOADSIZE: u32 = 5112;
const TAG_PAYLOADSIZEALT: u32 = 5113;
const TAG_PAYLOAD_SHA512: u32 = 5121;
const TAG_PAYLOAD_SHA512_ALT: u32 = 5122;
const TAG_PAYLOAD_SHA3_256: u32 = 5123;
const TAG_PAYLOAD_SHA3_256_ALT: u32 = 5124;

/// The main header's entries (region tag excluded), ready to edit.
pub fn entries(pkg: &Package) -> Result<Vec<(u32, IndexData)>> {
    Ok(pkg
        .metadata
        .header
        .get_all_entries()?
        .into_iter()
        .filter(|(t, _)| *t != TAG_REGION)
        .collect())
}

fn set_digest(entries: &mut [(u32, IndexData)], tag: u32, hex: String) {
    for (t, d) in entries.iter_mut() {
        if *t == tag {
            *d = match d {
                IndexData::StringArray(_) => IndexData::StringArray(vec![hex.clone()]),
                _ => IndexData::StringTag(hex.clone()),
            };
        }
    }
}

fn set_u64(entries: &mut [(u32, IndexData)], tag: u32, v: u64) {
    for (t, d) in entries.iter_mut() {
        if *t == tag {
            *d = match d {
                IndexData::Int32(_) => IndexData::Int32(vec![v as u32]),
                _ => IndexData::Int64(vec![v]),
            };
        }
    }
}

fn compress(compressor: &str, raw: &[u8]) -> Result<Vec<u8>> {
    Ok(match compressor {
        "zstd" => zstd::encode_all(raw, 3)?,
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(raw)?;
            e.finish()?
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(raw)?;
            e.finish()?
        }
        "" | "none" | "identity" => raw.to_vec(),
        other => bail!("surgery cannot compress with {other:?}"),
    })
}

/// Rebuilds `pkg` with edited header entries and, if given, a new uncompressed cpio
/// payload (compressed like the original). All digests are recomputed.
pub fn rebuild(
    pkg: &mut Package,
    mut entries: Vec<(u32, IndexData)>,
    new_cpio: Option<Vec<u8>>,
) -> Result<()> {
    if let Some(raw) = new_cpio {
        let compressor = entries
            .iter()
            .find(|(t, _)| *t == TAG_PAYLOADCOMPRESSOR)
            .and_then(|(_, d)| match d {
                IndexData::StringTag(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let payload = compress(&compressor, &raw).context("compressing crafted payload")?;
        set_digest(
            &mut entries,
            TAG_PAYLOADSHA256,
            hex::encode(sha2::Sha256::digest(&payload)),
        );
        set_digest(
            &mut entries,
            TAG_PAYLOADSHA256ALT,
            hex::encode(sha2::Sha256::digest(&raw)),
        );
        set_digest(
            &mut entries,
            TAG_PAYLOAD_SHA512,
            hex::encode(sha2::Sha512::digest(&payload)),
        );
        set_digest(
            &mut entries,
            TAG_PAYLOAD_SHA512_ALT,
            hex::encode(sha2::Sha512::digest(&raw)),
        );
        set_digest(
            &mut entries,
            TAG_PAYLOAD_SHA3_256,
            hex::encode(sha3::Sha3_256::digest(&payload)),
        );
        set_digest(
            &mut entries,
            TAG_PAYLOAD_SHA3_256_ALT,
            hex::encode(sha3::Sha3_256::digest(&raw)),
        );
        set_u64(&mut entries, TAG_PAYLOADSIZE, payload.len() as u64);
        set_u64(&mut entries, TAG_PAYLOADSIZEALT, raw.len() as u64);
        pkg.payload = payload;
    }
    let header = rpm::Header::<IndexTag>::from_entries(
        entries.into_iter().map(|(t, d)| HeaderEntry::new(t, d)),
        IndexTag::RPMTAG_HEADERIMMUTABLE,
    );
    pkg.metadata.header = header;
    let header_bytes = pkg.metadata.header_bytes()?;
    let sig = SignatureHeaderBuilder::from_existing(&pkg.metadata.signature)?
        .calculate_digests(&header_bytes)
        .set_content_length((header_bytes.len() + pkg.payload.len()) as u64)
        .build()?;
    pkg.metadata.signature = sig;
    Ok(())
}

/// The file paths of the header, in header order (`dirname + basename`).
pub fn paths(entries: &[(u32, IndexData)]) -> Vec<String> {
    let get = |tag: u32| -> Vec<String> {
        entries
            .iter()
            .find(|(t, _)| *t == tag)
            .and_then(|(_, d)| match d {
                IndexData::StringArray(v) => Some(v.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let dirs = get(TAG_DIRNAMES);
    let bases = get(TAG_BASENAMES);
    let idx: Vec<u32> = entries
        .iter()
        .find(|(t, _)| *t == 1116)
        .and_then(|(_, d)| match d {
            IndexData::Int32(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default();
    bases
        .iter()
        .zip(idx)
        .map(|(b, i)| format!("{}{}", dirs[i as usize], b))
        .collect()
}

/// Serializes a package.
pub fn to_bytes(pkg: &Package) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    pkg.write(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpm::{CompressionWithLevel, FileOptions};

    /// Rebuilding without changes must give the same bytes: surgery only changes what it is asked to.
    #[test]
    fn rebuild_roundtrip_is_identity() {
        let mut b = crate::edge::builder("roundtrip", "1.0", "1", CompressionWithLevel::Zstd(3));
        b.with_file_contents(
            b"x".to_vec(),
            FileOptions::new("/usr/share/x").permissions(0o644),
        )
        .unwrap();
        let mut pkg = b.build().unwrap();
        let before = to_bytes(&pkg).unwrap();
        let e = entries(&pkg).unwrap();
        rebuild(&mut pkg, e, None).unwrap();
        assert_eq!(before, to_bytes(&pkg).unwrap());
    }
}
