//! File capabilities: rpm stores them as text (`cap_net_raw=ep`, as
//! `cap_to_text` prints them); the kernel takes `security.capability` as a
//! `vfs_cap_data` revision 2 structure (linux/capability.h).
use anyhow::{bail, Result};

/// Capability names by number (linux/capability.h), without the `cap_` prefix.
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

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// Parsed file capabilities: permitted and inheritable sets, effective bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCaps {
    pub permitted: u64,
    pub inheritable: u64,
    pub effective: bool,
}

/// Parses `cap_to_text` syntax: whitespace-separated clauses, each a comma
/// list of names (or `all`, or nothing) followed by operator/flag groups
/// (`=`, `+`, `-` with `e`, `i`, `p`).
pub fn parse(text: &str) -> Result<FileCaps> {
    let mut p = 0u64;
    let mut i = 0u64;
    let mut e = 0u64;
    let all: u64 = (1u64 << NAMES.len()) - 1;
    for clause in text.split_whitespace() {
        let Some(op_at) = clause.find(['=', '+', '-']) else {
            bail!("file capabilities {text:?}: clause {clause:?} has no =, + or -");
        };
        let (names, mut ops) = clause.split_at(op_at);
        let mut set = 0u64;
        if names.is_empty() {
            if !ops.starts_with('=') {
                bail!("file capabilities {text:?}: {clause:?} names no capability");
            }
            set = all;
        }
        for n in names.split(',').filter(|n| !n.is_empty()) {
            let n = n.to_ascii_lowercase();
            if n == "all" {
                set = all;
                continue;
            }
            let short = n.strip_prefix("cap_").unwrap_or(&n);
            match NAMES.iter().position(|x| *x == short) {
                Some(bit) => set |= 1 << bit,
                None => bail!("file capabilities {text:?}: unknown capability {n:?}"),
            }
        }
        while !ops.is_empty() {
            let op = ops.as_bytes()[0];
            let rest = &ops[1..];
            let end = rest.find(['=', '+', '-']).unwrap_or(rest.len());
            let flags = &rest[..end];
            ops = &rest[end..];
            if op == b'=' {
                p &= !set;
                i &= !set;
                e &= !set;
            }
            for f in flags.chars() {
                let target = match f {
                    'p' => &mut p,
                    'i' => &mut i,
                    'e' => &mut e,
                    _ => bail!("file capabilities {text:?}: unknown flag {f:?}"),
                };
                if op == b'-' {
                    *target &= !set;
                } else {
                    *target |= set;
                }
            }
        }
    }
    Ok(FileCaps {
        permitted: p,
        inheritable: i,
        effective: e != 0,
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
