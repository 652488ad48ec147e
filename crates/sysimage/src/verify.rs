//! `verify`: every file of some packages against its header, like `rpm -V`,
//! with rpm's checks (`rpmfilesVerify`) and rpm's output format.
use crate::digest::DigestAlgo;
use crate::error::Result;
use crate::header::{FileEntry, FileFlags, FileType, Package};
use crate::relocate::Kind;
use crate::tree::Tree;
use rayon::prelude::*;
use serde::Serialize;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// RPMVERIFY_* bits (rpmvf.h), as in `FILEVERIFYFLAGS`.
pub mod attr {
    pub const DIGEST: u32 = 1 << 0;
    pub const SIZE: u32 = 1 << 1;
    pub const LINKTO: u32 = 1 << 2;
    pub const USER: u32 = 1 << 3;
    pub const GROUP: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const MODE: u32 = 1 << 6;
    pub const RDEV: u32 = 1 << 7;
    pub const CAPS: u32 = 1 << 8;
    pub const LSTATFAIL: u32 = 1 << 28;
    pub const READFAIL: u32 = 1 << 29;
    pub const READLINKFAIL: u32 = 1 << 30;
    pub const FAILURES: u32 = LSTATFAIL | READFAIL | READLINKFAIL;
}

/// rpm's `rpmVerifyString`: `SM5DLUGTP`, `.` where the attribute is fine,
/// `?` where it could not be read.
pub fn verify_string(v: u32) -> String {
    let f = |bit: u32, c: char| if v & bit != 0 { c } else { '.' };
    let mut s = String::with_capacity(9);
    s.push(f(attr::SIZE, 'S'));
    s.push(f(attr::MODE, 'M'));
    s.push(if v & attr::READFAIL != 0 {
        '?'
    } else {
        f(attr::DIGEST, '5')
    });
    s.push(f(attr::RDEV, 'D'));
    s.push(if v & attr::READLINKFAIL != 0 {
        '?'
    } else {
        f(attr::LINKTO, 'L')
    });
    s.push(f(attr::USER, 'U'));
    s.push(f(attr::GROUP, 'G'));
    s.push(f(attr::MTIME, 'T'));
    s.push(f(attr::CAPS, 'P'));
    s
}

/// The line `rpm -V` prints for a file with result `v` (non-zero).
pub fn verify_line(v: u32, flags: FileFlags, path: &str) -> String {
    if v & attr::LSTATFAIL != 0 {
        format!("missing   {} {path}", flags.verify_marker())
    } else {
        format!("{}  {} {path}", verify_string(v), flags.verify_marker())
    }
}

fn attr_names(v: u32) -> Vec<&'static str> {
    [
        (attr::LSTATFAIL, "missing"),
        (attr::SIZE, "size"),
        (attr::MODE, "mode"),
        (attr::DIGEST, "digest"),
        (attr::RDEV, "rdev"),
        (attr::LINKTO, "link"),
        (attr::USER, "user"),
        (attr::GROUP, "group"),
        (attr::MTIME, "mtime"),
        (attr::CAPS, "caps"),
        (attr::READFAIL, "unreadable"),
        (attr::READLINKFAIL, "unreadable-link"),
    ]
    .into_iter()
    .filter(|&(b, _)| v & b != 0)
    .map(|(_, n)| n)
    .collect()
}

/// One file that does not match its header.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub package: String,
    /// The path as the header names it.
    pub path: String,
    /// Where it was looked for.
    pub fs_path: String,
    /// What mismatched: `missing`, `size`, `mode`, `digest`, `rdev`, `link`,
    /// `user`, `group`, `mtime`, `caps`, `unreadable`, `unreadable-link`.
    pub attrs: Vec<&'static str>,
    /// The line `rpm -V` would print.
    pub line: String,
}

/// The result of verifying packages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub packages: usize,
    /// Files checked.
    pub files: usize,
    /// Header entries with no place in the tree (root skeleton, refused).
    pub skipped: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether everything matched.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies every file of `pkgs` in `tree`, reading contents in parallel.
/// Paths map through the tree's relocations, owners through its owner table.
/// Missing `%ghost` and `%missingok` files are not problems.
pub fn verify(tree: &Tree, pkgs: &[&Package]) -> Result<VerifyReport> {
    let mut work = Vec::new();
    for p in pkgs {
        let algo = p.digest_algo()?;
        for f in p.files()? {
            work.push((p.nevra.to_string(), algo, f));
        }
    }
    let results: Vec<(bool, Option<Problem>)> = work
        .par_iter()
        .map(|(nevra, algo, f)| {
            let Some(fs) = tree.fs_path(&f.path, Kind::from_mode(f.mode)) else {
                return (false, None);
            };
            let v = verify_file(tree, &fs, f, *algo);
            let problem = (v != 0).then(|| Problem {
                package: nevra.clone(),
                path: f.path.clone(),
                fs_path: fs.display().to_string(),
                attrs: attr_names(v),
                line: verify_line(v, f.flags, &f.path),
            });
            (true, problem)
        })
        .collect();
    let mut report = VerifyReport {
        packages: pkgs.len(),
        ..Default::default()
    };
    for (checked, p) in results {
        if checked {
            report.files += 1;
        } else {
            report.skipped += 1;
        }
        report.problems.extend(p);
    }
    Ok(report)
}

/// The hex digest of a file's content with `algo` (`None` for an unknown algorithm).
pub fn file_digest(path: &Path, algo: Option<DigestAlgo>) -> std::io::Result<Option<String>> {
    let Some(algo) = algo else {
        return Ok(None);
    };
    let mut f = std::fs::File::open(path)?;
    let mut h = algo.hasher();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(h.hex()))
}

/// Checks one file at `fs` against its header entry; returns RPMVERIFY_* bits
/// (0: matches). Follows rpm 4.18's `rpmfilesVerify`.
pub fn verify_file(tree: &Tree, fs: &Path, f: &FileEntry, algo: Option<DigestAlgo>) -> u32 {
    let ghost = f.flags.is_ghost();
    let mut sb = match std::fs::symlink_metadata(fs) {
        Ok(m) => m,
        Err(_) if ghost || f.flags.has(FileFlags::MISSINGOK) => return 0,
        Err(_) => return attr::LSTATFAIL,
    };
    // Expected a directory, found a symlink to one owned by root or the file's owner.
    if f.file_type == FileType::Dir && sb.file_type().is_symlink() {
        if let Ok(d) = std::fs::metadata(fs) {
            if d.is_dir() && (sb.uid() == 0 || tree.owners.uid(&f.user) == Some(sb.uid())) {
                sb = d;
            }
        }
    }
    let mut flags = f.verify_flags;
    let ft = sb.file_type();
    if ft.is_symlink() {
        flags &= !attr::MODE;
    } else {
        flags &= !attr::LINKTO;
    }
    if !ft.is_file() {
        flags &= !(attr::DIGEST | attr::SIZE | attr::MTIME | attr::CAPS);
    }
    if ghost {
        flags &= !(attr::DIGEST | attr::SIZE | attr::MTIME | attr::LINKTO);
    }
    flags &= !attr::FAILURES;
    let mut v = 0;
    if flags & attr::DIGEST != 0 {
        if f.digest.is_empty() {
            v |= attr::DIGEST;
        } else {
            match file_digest(fs, algo) {
                Ok(Some(d)) => {
                    if !d.eq_ignore_ascii_case(&f.digest) {
                        v |= attr::DIGEST;
                    }
                }
                Ok(None) => v |= attr::DIGEST,
                Err(_) => v |= attr::READFAIL | attr::DIGEST,
            }
        }
    }
    if flags & attr::LINKTO != 0 {
        match std::fs::read_link(fs) {
            Ok(t) => {
                if t.as_os_str().as_encoded_bytes() != f.link.as_bytes() {
                    v |= attr::LINKTO;
                }
            }
            Err(_) => v |= attr::READLINKFAIL | attr::LINKTO,
        }
    }
    if flags & attr::SIZE != 0 && sb.len() != f.size {
        v |= attr::SIZE;
    }
    if flags & attr::MODE != 0 {
        let (mut meta, mut file) = (f.mode & 0xffff, sb.mode() & 0xffff);
        if ghost {
            meta &= !0xf000;
            file &= !0xf000;
        }
        if meta != file {
            v |= attr::MODE;
        }
    }
    if flags & attr::RDEV != 0 {
        let want = FileType::from_mode(f.mode);
        let (is_chr, is_blk) = (ft.is_char_device(), ft.is_block_device());
        let type_differs =
            (want == FileType::Char) != is_chr || (want == FileType::Block) != is_blk;
        let dev_differs = (is_chr || is_blk) && (sb.rdev() & 0xffff) as u32 != (f.rdev & 0xffff);
        if type_differs || dev_differs {
            v |= attr::RDEV;
        }
    }
    if flags & attr::CAPS != 0 && !caps::matches(f.caps.as_deref(), fs) {
        v |= attr::CAPS;
    }
    if flags & attr::MTIME != 0 && sb.mtime() != f.mtime as i64 {
        v |= attr::MTIME;
    }
    if flags & attr::USER != 0 {
        let name = tree.owners.user_name(sb.uid()) == Some(f.user.as_str());
        let id = tree.owners.uid(&f.user) == Some(sb.uid());
        if !(name || id) {
            v |= attr::USER;
        }
    }
    if flags & attr::GROUP != 0 {
        let name = tree.owners.group_name(sb.gid()) == Some(f.group.as_str());
        let id = tree.owners.gid(&f.group) == Some(sb.gid());
        if !(name || id) {
            v |= attr::GROUP;
        }
    }
    v
}

/// File capabilities: the text form in headers against `security.capability`.
pub mod caps {
    use std::path::Path;

    const NAMES: [&str; 41] = [
        "chown",
        "dac_override",
        "dac_read_search",
        "fowner",
        "fsetid",
        "kill",
        "setgid",
        "setuid",
        "setpcap",
        "linux_immutable",
        "net_bind_service",
        "net_broadcast",
        "net_admin",
        "net_raw",
        "ipc_lock",
        "ipc_owner",
        "sys_module",
        "sys_rawio",
        "sys_chroot",
        "sys_ptrace",
        "sys_pacct",
        "sys_admin",
        "sys_boot",
        "sys_nice",
        "sys_resource",
        "sys_time",
        "sys_tty_config",
        "mknod",
        "lease",
        "audit_write",
        "audit_control",
        "setfcap",
        "mac_override",
        "mac_admin",
        "syslog",
        "wake_alarm",
        "block_suspend",
        "audit_read",
        "perfmon",
        "bpf",
        "checkpoint_restore",
    ];

    /// Effective, permitted, inheritable capability masks.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Sets {
        pub e: u64,
        pub p: u64,
        pub i: u64,
    }

    /// Parses libcap's text form (`cap_net_raw,cap_net_admin=ep`, `= cap_x+p`).
    pub fn parse(text: &str) -> Option<Sets> {
        let all: u64 = (1u64 << NAMES.len()) - 1;
        let mut s = Sets::default();
        for clause in text.split_whitespace() {
            let op_at = clause.find(['=', '+', '-'])?;
            let (list, mut rest) = clause.split_at(op_at);
            let mut mask = 0u64;
            if list.is_empty() || list == "all" {
                mask = all;
            } else {
                for name in list.split(',') {
                    let n = name.strip_prefix("cap_").unwrap_or(name);
                    let bit = match NAMES.iter().position(|&x| x.eq_ignore_ascii_case(n)) {
                        Some(b) => b,
                        None => n.parse::<usize>().ok().filter(|&b| b < 64)?,
                    };
                    mask |= 1 << bit;
                }
            }
            while let Some(op) = rest.chars().next() {
                rest = &rest[1..];
                let end = rest.find(['=', '+', '-']).unwrap_or(rest.len());
                let letters = &rest[..end];
                rest = &rest[end..];
                if op == '=' {
                    s.e &= !mask;
                    s.p &= !mask;
                    s.i &= !mask;
                }
                for l in letters.chars() {
                    let set = match l {
                        'e' => &mut s.e,
                        'p' => &mut s.p,
                        'i' => &mut s.i,
                        _ => return None,
                    };
                    if op == '-' {
                        *set &= !mask;
                    } else {
                        *set |= mask;
                    }
                }
            }
        }
        Some(s)
    }

    /// Decodes a `security.capability` value (VFS_CAP_REVISION 1, 2, 3).
    pub fn decode(b: &[u8]) -> Option<Sets> {
        let u = |i: usize| -> Option<u64> {
            Some(u32::from_le_bytes(b.get(i * 4..i * 4 + 4)?.try_into().ok()?) as u64)
        };
        let magic = u(0)?;
        let (p, i) = match magic & 0xff00_0000 {
            0x0100_0000 => (u(1)?, u(2)?),
            0x0200_0000 | 0x0300_0000 => (u(1)? | (u(3)? << 32), u(2)? | (u(4)? << 32)),
            _ => return None,
        };
        let e = if magic & 1 != 0 { p | i } else { 0 };
        Some(Sets { e, p, i })
    }

    /// Whether the file's capabilities equal the header's (none == empty set).
    pub fn matches(header: Option<&str>, path: &Path) -> bool {
        let want = match header {
            Some(t) if !t.is_empty() => match parse(t) {
                Some(s) => s,
                None => return false,
            },
            _ => Sets::default(),
        };
        let mut buf = [0u8; 64];
        let have = match rustix::fs::lgetxattr(path, "security.capability", &mut buf) {
            Ok(n) => match decode(&buf[..n]) {
                Some(s) => s,
                None => return false,
            },
            Err(_) => Sets::default(),
        };
        want == have
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn text_and_xattr() {
            let raw = 1u64 << 13;
            let admin = 1u64 << 12;
            assert_eq!(
                parse("cap_net_raw=ep"),
                Some(Sets {
                    e: raw,
                    p: raw,
                    i: 0
                })
            );
            assert_eq!(
                parse("cap_net_raw,cap_net_admin+p"),
                Some(Sets {
                    e: 0,
                    p: raw | admin,
                    i: 0
                })
            );
            assert_eq!(
                parse("= cap_net_raw+ep"),
                Some(Sets {
                    e: raw,
                    p: raw,
                    i: 0
                })
            );
            assert_eq!(parse("=ep cap_chown-e").unwrap().e, ((1u64 << 41) - 1) & !1);
            assert_eq!(parse("cap_bogus=ep"), None);
            assert_eq!(parse(""), Some(Sets::default()));
            // VFS_CAP_REVISION_2, effective flag, permitted = net_raw.
            let mut x = vec![];
            for w in [0x0200_0001u32, raw as u32, 0, 0, 0] {
                x.extend_from_slice(&w.to_le_bytes());
            }
            assert_eq!(
                decode(&x),
                Some(Sets {
                    e: raw,
                    p: raw,
                    i: 0
                })
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_line_format() {
        assert_eq!(verify_string(0), ".........");
        assert_eq!(
            verify_line(
                attr::SIZE | attr::DIGEST | attr::MTIME,
                FileFlags(FileFlags::CONFIG),
                "/etc/foo"
            ),
            "S.5....T.  c /etc/foo"
        );
        assert_eq!(
            verify_line(attr::LSTATFAIL, FileFlags(0), "/usr/bin/x"),
            "missing     /usr/bin/x"
        );
        assert_eq!(
            verify_line(
                attr::READFAIL | attr::DIGEST | attr::MODE,
                FileFlags(FileFlags::DOC),
                "/d"
            ),
            ".M?......  d /d"
        );
        assert_eq!(
            verify_line(
                attr::LINKTO | attr::USER | attr::GROUP | attr::CAPS | attr::RDEV,
                FileFlags(0),
                "/l"
            ),
            "...DLUG.P    /l"
        );
    }
}
