//! A tiny cpio "newc" writer, for crafting payloads the builder would never write
//! (hostile test packages). Entries are written exactly as given.

/// One archive entry. `name` is written as is (RPM payloads use `./usr/...`).
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub ino: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub data: Vec<u8>,
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() & 3 != 0 {
        out.push(0);
    }
}

fn header(out: &mut Vec<u8>, name: &str, mode: u32, ino: u32, nlink: u32, mtime: u32, size: usize) {
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        mtime,
        size as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

/// The whole archive, trailer included.
pub fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        header(
            &mut out,
            &e.name,
            e.mode,
            e.ino,
            e.nlink,
            e.mtime,
            e.data.len(),
        );
        out.extend_from_slice(&e.data);
        pad4(&mut out);
    }
    header(&mut out, "TRAILER!!!", 0, 0, 1, 0, 0);
    out
}
