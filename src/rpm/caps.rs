//! File capabilities: rpm stores them as text (`cap_net_raw=ep`, as
//! `cap_to_text` prints them); the kernel takes `security.capability` as a
//! `vfs_cap_data` revision 2 structure (linux/capability.h).
use anyhow::{bail, Result};

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// Parsed file capabilities: permitted and inheritable sets, effective bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCaps {
    pub permitted: u64,
    pub inheritable: u64,
    pub effective: bool,
}

/// Parses `cap_to_text` syntax (whitespace-separated clauses, each a comma
/// list of names, `all` or nothing, then `=`, `+`, `-` groups of `e`, `i`,
/// `p`), with the parser `verify` uses, so both read headers alike.
pub fn parse(text: &str) -> Result<FileCaps> {
    let Some(s) = sysimage::verify::caps::parse(text) else {
        bail!("file capabilities {text:?} are not in libcap's text form (e.g. cap_net_raw=ep)");
    };
    Ok(FileCaps {
        permitted: s.p,
        inheritable: s.i,
        effective: s.e != 0,
    })
}

impl FileCaps {
    /// The `security.capability` xattr value (vfs_cap_data, revision 2).
    pub fn to_xattr(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(20);
        let magic = VFS_CAP_REVISION_2
            | if self.effective {
                VFS_CAP_FLAGS_EFFECTIVE
            } else {
                0
            };
        v.extend_from_slice(&magic.to_le_bytes());
        v.extend_from_slice(&(self.permitted as u32).to_le_bytes());
        v.extend_from_slice(&(self.inheritable as u32).to_le_bytes());
        v.extend_from_slice(&((self.permitted >> 32) as u32).to_le_bytes());
        v.extend_from_slice(&((self.inheritable >> 32) as u32).to_le_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rpm_forms() {
        let c = parse("cap_net_raw=ep").unwrap();
        assert_eq!(
            c,
            FileCaps {
                permitted: 1 << 13,
                inheritable: 0,
                effective: true
            }
        );
        let c = parse("cap_net_admin,cap_net_raw+ep").unwrap();
        assert_eq!(c.permitted, (1 << 12) | (1 << 13));
        let c = parse("cap_sys_admin=eip cap_sys_admin-i").unwrap();
        assert_eq!(
            (c.permitted, c.inheritable, c.effective),
            (1 << 21, 0, true)
        );
        let c = parse("cap_bpf,cap_perfmon=p").unwrap();
        assert_eq!((c.permitted, c.effective), ((1 << 39) | (1 << 38), false));
        assert!(parse("cap_bogus=ep").is_err());
        assert!(parse("cap_net_raw").is_err());
        assert!(parse("cap_net_raw=x").is_err());
    }

    #[test]
    fn xattr_layout_matches_setcap() {
        // `setcap cap_net_raw=ep f; getfattr -n security.capability -e hex f`
        // prints 0x0100000200200000000000000000000000000000.
        let x = parse("cap_net_raw=ep").unwrap().to_xattr();
        assert_eq!(hex::encode(x), "0100000200200000000000000000000000000000");
    }
}
