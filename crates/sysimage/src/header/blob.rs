//! The structure of an RPM file's lead and header blobs, checked the way rpm
//! 4.18 loads a package file (`lib/rpmlead.c` `rpmLeadCheck`, `lib/header.c`
//! `hdrblobRead`, `hdrblobVerifyRegion`, `hdrblobVerifyInfo`,
//! `hdrblobImport`), and a little stricter where rpm's rules leave room for
//! bytes that nothing reads (docs/reliability.md, "Header rules").
//!
//! ```text
//! lead        96 bytes: magic ed ab ee db, major 3|4, ..., signature type 5
//! signature   magic 8e ad e8 01 00 00 00 00 | il | dl | il * 16-byte index | dl bytes of data
//!             then zero padding to a multiple of 8
//! main header the same structure
//!
//! index[0]    the region tag (62 signature, 63 main), BIN, count 16, offset = where
//!             its trailer lies in the data
//! index[1..]  tag >= 100, a known type, data at an aligned offset, in index order,
//!             packed: each entry starts where the previous one ends (plus alignment)
//! trailer     the last 16 bytes of the data: the region tag again, BIN, count 16,
//!             offset -16 * il (the region covers every entry: no "dribbles")
//! ```
//!
//! Every function here is pure: bytes in, entries or a reason out.
use super::tagtypes::{self, TagType};

/// Lead size, fixed by the format.
pub const LEAD_SIZE: usize = 96;
pub const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
/// Header magic, version 1, and four reserved bytes that must be zero (rpm
/// compares all eight).
pub const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// `RPMSIGTYPE_HEADERSIG`: the only signature type rpm reads.
pub const SIGTYPE_HEADERSIG: u16 = 5;

pub const TAG_HEADERIMAGE: u32 = 61;
pub const TAG_HEADERSIGNATURES: u32 = 62;
pub const TAG_HEADERIMMUTABLE: u32 = 63;
/// Tags below this are reserved for regions (`hdrchkTag`).
pub const TAG_I18NTABLE: u32 = 100;

/// The two header structures of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signature,
    Main,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Signature => "signature header",
            Kind::Main => "main header",
        }
    }
    fn region_tag(self) -> u32 {
        match self {
            Kind::Signature => TAG_HEADERSIGNATURES,
            Kind::Main => TAG_HEADERIMMUTABLE,
        }
    }
    /// rpm's limits (`hdrblobVerifyLengths`): a signature header holds at
    /// most 32 tags and 64 MiB; a main header 65535 tags and 256 MiB.
    pub fn max_tags(self) -> u32 {
        match self {
            Kind::Signature => 32,
            Kind::Main => 0xffff,
        }
    }
    pub fn max_data(self) -> u32 {
        match self {
            Kind::Signature => 64 << 20,
            Kind::Main => 0x0fff_ffff,
        }
    }
}

/// The parsed lead (only what rpm checks and reimage uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lead {
    pub major: u8,
    pub minor: u8,
    /// 0 binary, 1 source.
    pub kind: u16,
    pub signature_type: u16,
}

/// Why a lead is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadError {
    /// No lead magic: not an RPM at all.
    NotRpm,
    Refused(String),
}

/// Checks a lead as `rpmLeadCheck` does: magic, major version 3 or 4, and
/// the header-style signature type.
pub fn check_lead(b: &[u8; LEAD_SIZE]) -> Result<Lead, LeadError> {
    if b[..4] != LEAD_MAGIC {
        return Err(LeadError::NotRpm);
    }
    let be16 = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let lead = Lead {
        major: b[4],
        minor: b[5],
        kind: be16(6),
        signature_type: be16(78),
    };
    if !(3..=4).contains(&lead.major) {
        return Err(LeadError::Refused(format!(
            "lead: unsupported RPM package version {} (rpm reads 3 and 4)",
            lead.major
        )));
    }
    if lead.signature_type != SIGTYPE_HEADERSIG {
        return Err(LeadError::Refused(format!(
            "lead: illegal signature type {} (rpm reads only {SIGTYPE_HEADERSIG}, a header)",
            lead.signature_type
        )));
    }
    Ok(lead)
}

/// The sizes a header's 16-byte intro declares, checked against rpm's
/// limits before anything of that size is read.
pub fn check_intro(intro: &[u8; 16], kind: Kind) -> Result<(u32, u32), String> {
    if intro[..4] != HEADER_MAGIC[..4] {
        return Err("bad header magic".into());
    }
    if intro[4..8] != HEADER_MAGIC[4..] {
        return Err(format!(
            "the reserved bytes after the header magic are {:02x?}, not zero (rpm: hdr magic: BAD)",
            &intro[4..8]
        ));
    }
    let be = |at: usize| u32::from_be_bytes(intro[at..at + 4].try_into().unwrap());
    let (il, dl) = (be(8), be(12));
    if il > kind.max_tags() {
        return Err(format!(
            "{il} tags, more than rpm's limit of {}",
            kind.max_tags()
        ));
    }
    if dl > kind.max_data() {
        return Err(format!(
            "{dl} bytes of data, more than rpm's limit of {}",
            kind.max_data()
        ));
    }
    if il == 0 {
        return Err("no tags (rpm: region: no tags)".into());
    }
    Ok((il, dl))
}

/// One index entry of a checked header (the region entry excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tag: u32,
    pub ty: TagType,
    /// Offset of the data in the store.
    pub offset: u32,
    pub count: u32,
    /// Bytes of data (strings: including their NULs).
    pub len: u32,
}

/// The length of an entry's data, if it fits in `store` from `offset`
/// (`dataLength` in rpm: strings NUL-terminated inside the store, a STRING
/// holds exactly one).
fn data_len(ty: TagType, count: u32, rest: &[u8]) -> Result<usize, String> {
    match ty {
        TagType::String | TagType::StringArray | TagType::I18nString => {
            if ty == TagType::String && count != 1 {
                return Err(format!("a STRING with count {count} (rpm allows 1)"));
            }
            let mut at = 0usize;
            for _ in 0..count {
                let nul = rest[at..]
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or("a string runs past the end of the data")?;
                at += nul + 1;
            }
            Ok(at)
        }
        _ => {
            let len = (count as usize)
                .checked_mul(ty.size())
                .filter(|&n| n <= rest.len())
                .ok_or_else(|| format!("{count} items of {} do not fit in the data", ty.name()))?;
            Ok(len)
        }
    }
}

/// Checks a whole header blob (16-byte intro, index, data) and returns its
/// entries in index order, the region entry excluded.
///
/// What rpm checks (and refuses): the intro limits, a region tag first with a
/// sane trailer inside the data, covering the whole header (`exact_size`, as
/// rpm requires of package files; rpm also requires it of the main header
/// only, reimage of both), every entry's tag (>= 100), type, count, aligned
/// offset inside the data, data that fits, offsets in order without overlap,
/// nothing overlapping the trailer, and for the main header a known tag's
/// type. What reimage adds: no tag twice, and the data packed as rpm writes
/// it (each entry where the previous one ends plus zero alignment padding,
/// the trailer right after the last entry), so no byte of the header is
/// outside what the entries say and no header means two things.
pub fn check(blob: &[u8], kind: Kind) -> Result<Vec<Entry>, String> {
    let intro: &[u8; 16] = blob
        .get(..16)
        .and_then(|b| b.try_into().ok())
        .ok_or("shorter than its intro")?;
    let (il, dl) = check_intro(intro, kind)?;
    let (il, dl) = (il as usize, dl as usize);
    if blob.len() != 16 + 16 * il + dl {
        return Err(format!(
            "is {} bytes, its intro says {}",
            blob.len(),
            16 + 16 * il + dl
        ));
    }
    let index = &blob[16..16 + 16 * il];
    let store = &blob[16 + 16 * il..];
    let raw = |i: usize| {
        let e = &index[16 * i..16 * i + 16];
        let be = |k: usize| u32::from_be_bytes(e[k..k + 4].try_into().unwrap());
        (be(0), be(4), be(8), be(12))
    };

    // The region (hdrblobVerifyRegion).
    let region = kind.region_tag();
    let (tag0, ty0, off0, count0) = raw(0);
    if tag0 != region {
        return Err(format!(
            "its first tag is {tag0}, not the region tag {region}: a header without an immutable \
             region (a v3 or hand-made package) is not read"
        ));
    }
    if ty0 != TagType::Bin as u32 || count0 != 16 {
        return Err(format!(
            "region tag of type {ty0} and count {count0} (rpm: region tag: BAD)"
        ));
    }
    let trailer_at = off0 as usize;
    if (off0 as i32) < 0 || trailer_at + 16 > dl {
        return Err(format!(
            "region trailer at offset {off0} is outside the {dl}-byte data (rpm: region offset: BAD)"
        ));
    }
    let t = &store[trailer_at..trailer_at + 16];
    let be = |k: usize| u32::from_be_bytes(t[k..k + 4].try_into().unwrap());
    let (ttag, tty, toff, tcount) = (be(0), be(4), be(8) as i32, be(12));
    // Old packages name HEADERIMAGE in the signature's trailer; rpm fixes that up.
    let ttag = if kind == Kind::Signature && ttag == TAG_HEADERIMAGE {
        TAG_HEADERSIGNATURES
    } else {
        ttag
    };
    if ttag != region || tty != TagType::Bin as u32 || tcount != 16 {
        return Err(format!(
            "region trailer names tag {ttag}, type {tty}, count {tcount}; the region is tag \
             {region}, type 7, count 16 (rpm: region trailer: BAD)"
        ));
    }
    // The trailer's offset is minus the region's index size.
    let covered = toff.checked_neg().filter(|&n| n >= 0 && n % 16 == 0);
    let Some(covered) = covered else {
        return Err(format!(
            "region trailer offset {toff} is not minus a multiple of 16 (rpm: region size: BAD)"
        ));
    };
    let ril = covered as usize / 16;
    let rdl = trailer_at + 16;
    if ril > il {
        return Err(format!(
            "region covers {ril} entries of {il} (rpm: region size: BAD)"
        ));
    }
    if ril != il || rdl != dl {
        return Err(format!(
            "the immutable region covers {ril} of {il} entries and {rdl} of {dl} data bytes: \
             entries outside it (\"dribbles\") are covered by no digest or signature \
             (rpm: region: tag number mismatch)"
        ));
    }

    // The entries (hdrblobVerifyInfo, hdrblobImport).
    let mut entries = Vec::with_capacity(il - 1);
    let mut end = 0usize; // where the previous entry's data ends
    for i in 1..il {
        let (tag, ty, offset, count) = raw(i);
        let bad = |why: String| format!("tag {tag} (index entry {i}): {why}");
        if tag < TAG_I18NTABLE {
            return Err(bad("a tag number below 100 (reserved for regions)".into()));
        }
        let Some(ty) = TagType::from_u32(ty) else {
            return Err(bad(format!("unknown type {ty}")));
        };
        if count == 0 || count as usize > dl {
            return Err(bad(format!("count {count}")));
        }
        if ty != TagType::Bin && count > 0x000f_ffff {
            return Err(bad(format!("count {count}, beyond rpm's array limit")));
        }
        let off = offset as usize;
        if (offset as i32) < 0 || off > dl {
            return Err(bad(format!("offset {offset} beyond the {dl}-byte data")));
        }
        if off % ty.align() != 0 {
            return Err(bad(format!(
                "offset {offset} is not aligned for {}",
                ty.name()
            )));
        }
        if off < end {
            return Err(bad(format!(
                "its data at {offset} overlaps or precedes the previous entry's (which ends at {end})"
            )));
        }
        if kind == Kind::Main && !tagtypes::type_ok(tag, ty) {
            return Err(bad(format!(
                "type {} where rpm expects {}",
                ty.name(),
                tagtypes::known_type(tag).map(TagType::name).unwrap_or("?")
            )));
        }
        let len = data_len(ty, count, &store[off..]).map_err(bad)?;
        if off + len > rdl - 16 {
            return Err(bad("its data overlaps the region trailer".into()));
        }
        // Stricter than rpm: nothing between entries but zero alignment padding.
        let expected = end.next_multiple_of(ty.align());
        if off != expected || store[end..off].iter().any(|&b| b != 0) {
            return Err(bad(format!(
                "{} unreferenced bytes before its data (at {offset}; the previous entry ends at \
                 {end}): a header holds nothing but its entries' data",
                off - end
            )));
        }
        end = off + len;
        entries.push(Entry {
            tag,
            ty,
            offset,
            count,
            len: len as u32,
        });
    }
    if end != trailer_at {
        return Err(format!(
            "{} unreferenced bytes between the last entry's data (ends at {end}) and the region \
             trailer (at {trailer_at})",
            trailer_at.saturating_sub(end)
        ));
    }
    let mut tags: Vec<u32> = entries.iter().map(|e| e.tag).collect();
    tags.sort_unstable();
    if let Some(w) = tags.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "tag {} appears twice: rpm would read one of them, reimage cannot know which",
            w[0]
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob written the way rpm writes one: region entry first,
    /// entries' data packed in index order, the trailer last.
    pub(crate) fn blob(kind: Kind, entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let region = kind.region_tag();
        let il = entries.len() + 1;
        let mut index = Vec::new();
        let mut store: Vec<u8> = Vec::new();
        let push = |v: u32, idx: &mut Vec<u8>| idx.extend_from_slice(&v.to_be_bytes());
        push(region, &mut index);
        push(7, &mut index);
        let trailer_pos = index.len();
        push(0, &mut index);
        push(16, &mut index);
        for (tag, ty, count, data) in entries {
            let align = TagType::from_u32(*ty).map(|t| t.align()).unwrap_or(1);
            while store.len() % align != 0 {
                store.push(0);
            }
            push(*tag, &mut index);
            push(*ty, &mut index);
            push(store.len() as u32, &mut index);
            push(*count, &mut index);
            store.extend_from_slice(data);
        }
        let toff = store.len() as u32;
        index[trailer_pos..trailer_pos + 4].copy_from_slice(&toff.to_be_bytes());
        for v in [region, 7, (-(16 * il as i32)) as u32, 16] {
            store.extend_from_slice(&v.to_be_bytes());
        }
        let mut b = HEADER_MAGIC.to_vec();
        b.extend_from_slice(&(il as u32).to_be_bytes());
        b.extend_from_slice(&(store.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(store);
        b
    }

    fn good() -> Vec<(u32, u32, u32, Vec<u8>)> {
        vec![
            (1000, 6, 1, b"name\0".to_vec()),
            (1001, 6, 1, b"1.0\0".to_vec()),
            (1003, 4, 1, 7u32.to_be_bytes().to_vec()),
            (1030, 3, 2, vec![0x81, 0xa4, 0x41, 0xed]),
            (1117, 8, 2, b"a\0b\0".to_vec()),
        ]
    }

    fn set_index(b: &mut [u8], i: usize, field: usize, v: u32) {
        let at = 16 + 16 * i + 4 * field;
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn a_packed_header_is_read() {
        let b = blob(Kind::Main, &good());
        let e = check(&b, Kind::Main).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!((e[2].tag, e[2].offset, e[2].len), (1003, 12, 4));
    }

    #[test]
    fn lead_rules() {
        let mut l = [0u8; LEAD_SIZE];
        l[..4].copy_from_slice(&LEAD_MAGIC);
        l[4] = 3;
        l[79] = 5;
        assert!(check_lead(&l).is_ok());
        for major in [2, 9] {
            let mut m = l;
            m[4] = major;
            assert!(matches!(check_lead(&m), Err(LeadError::Refused(_))));
        }
        let mut s = l;
        s[79] = 0;
        assert!(matches!(check_lead(&s), Err(LeadError::Refused(_))));
        assert_eq!(check_lead(&[0; LEAD_SIZE]), Err(LeadError::NotRpm));
    }

    /// Each lie a hostile header told (issue 13), one at a time.
    #[test]
    fn headers_rpm_refuses_are_refused() {
        let ok = blob(Kind::Main, &good());
        let refused = |b: &[u8], want: &str| {
            let e = check(b, Kind::Main).expect_err(want);
            assert!(e.contains(want), "{e:?} should say {want:?}");
        };
        // reserved bytes
        let mut b = ok.clone();
        b[5] = 1;
        refused(&b, "reserved");
        // a STRING with count 2
        let mut b = ok.clone();
        set_index(&mut b, 1, 3, 2);
        refused(&b, "count 2");
        // EPOCH as a STRING (and its data a string)
        let mut e = good();
        e[2] = (1003, 6, 1, b"7\0\0\0".to_vec());
        refused(&blob(Kind::Main, &e), "type STRING where rpm expects INT32");
        // two NAME entries
        let mut e = good();
        e.insert(1, (1000, 6, 1, b"other\0".to_vec()));
        refused(&blob(Kind::Main, &e), "appears twice");
        // hidden bytes after a string's NUL
        let mut e = good();
        e[0].3 = b"name\0hid".to_vec();
        refused(&blob(Kind::Main, &e), "unreferenced bytes");
        // decreasing offsets: swap the data of two string entries
        let mut b = ok.clone();
        set_index(&mut b, 1, 2, 5);
        set_index(&mut b, 2, 2, 0);
        assert!(check(&b, Kind::Main).is_err());
        // overlapping data: the second entry points into the first
        let mut b = ok.clone();
        set_index(&mut b, 2, 2, 1);
        refused(&b, "overlaps or precedes");
        // a dribble: the trailer covers one entry less
        let mut b = ok.clone();
        let dl = u32::from_be_bytes(b[12..16].try_into().unwrap()) as usize;
        let tr = b.len() - 16;
        assert_eq!(tr, 16 + 16 * 6 + dl - 16);
        b[tr + 8..tr + 12].copy_from_slice(&(-(16 * 5i32)).to_be_bytes());
        refused(&b, "dribbles");
        // trailer naming another tag, or a positive offset
        let mut b = ok.clone();
        b[tr..tr + 4].copy_from_slice(&62u32.to_be_bytes());
        refused(&b, "region trailer names tag 62");
        let mut b = ok.clone();
        b[tr + 8..tr + 12].copy_from_slice(&96u32.to_be_bytes());
        refused(&b, "not minus a multiple of 16");
        // no region at all
        let mut b = ok.clone();
        set_index(&mut b, 0, 0, 1000);
        refused(&b, "without an immutable region");
        // a signature header whose trailer names the main region
        let s = blob(Kind::Signature, &[(269, 6, 1, [b'a'; 41].to_vec())]);
        let mut s2 = s.clone();
        let n = s2.len();
        s2[n - 16..n - 12].copy_from_slice(&63u32.to_be_bytes());
        assert!(check(&s2, Kind::Signature).is_err());
    }

    #[test]
    fn misaligned_and_out_of_range_entries_are_refused() {
        let ok = blob(Kind::Main, &good());
        for (i, field, v) in [
            (3, 2, 13),          // INT32 at an odd offset
            (3, 1, 99),          // unknown type
            (3, 1, 0),           // NULL type
            (3, 3, 0),           // count 0
            (3, 2, 0x7fff_0000), // offset beyond the data
            (4, 3, 0x0010_0000), // array too long
            (5, 3, 3),           // strings past the end
            (1, 0, 50),          // tag below 100
        ] {
            let mut b = ok.clone();
            set_index(&mut b, i, field, v);
            assert!(
                check(&b, Kind::Main).is_err(),
                "entry {i} field {field} = {v}"
            );
        }
    }

    #[test]
    fn intro_limits() {
        let mut i = [0u8; 16];
        i[..8].copy_from_slice(&HEADER_MAGIC);
        i[8..12].copy_from_slice(&33u32.to_be_bytes());
        assert!(check_intro(&i, Kind::Signature).is_err());
        assert!(check_intro(&i, Kind::Main).is_ok());
        i[12..16].copy_from_slice(&((64u32 << 20) + 1).to_be_bytes());
        assert!(check_intro(&i, Kind::Main).is_ok());
        i[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert!(check_intro(&i, Kind::Signature).is_err());
    }
}
