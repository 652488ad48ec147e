//! A deployment's `etc/fstab`: reimage's lines between two marks, every
//! other line the system's own and kept (pure functions).
//!
//! The view is named here too (`ro,subvol=`) but as a comment: initrds
//! mount `/usr` from `mount.usr=` (systemd's, dracut's, reimage's), and an
//! active line would make systemd-remount-fs remount the whole btrfs
//! read-only. Then the shared subvolumes and, once it is known, the ESP.

pub const BEGIN: &str =
    "# reimage: begin (written by reimage deploy; lines up to the end mark are replaced)";
pub const END: &str = "# reimage: end";
/// Why the `/usr` line is a comment.
pub const USR_NOTE: &str =
    "# /usr is the view, mounted read-only by the initrd from mount.usr= and\n\
# mount.usrflags= on the kernel command line. Not an active line: systemd-remount-fs\n\
# would remount it, and with it the whole btrfs, read-only.\n";

/// One mount reimage manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub what: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
    pub pass: u8,
    /// Written as a comment, after this note (a line for readers, not for
    /// mounting).
    pub inactive: Option<&'static str>,
}

impl Line {
    fn render(&self) -> String {
        format!(
            "{}{}{} {} {} {} 0 {}",
            self.inactive.unwrap_or(""),
            if self.inactive.is_some() { "#" } else { "" },
            self.what,
            escape(&self.mount_point),
            self.fs_type,
            self.options,
            self.pass
        )
    }
}

/// fstab escapes blanks in fields as octal.
fn escape(s: &str) -> String {
    s.replace(' ', "\\040").replace('\t', "\\011")
}

/// The lines of a deployment: `/usr` as the view, the shared subvolumes,
/// and the ESP when there is one (`esp`: UUID, mount point).
pub fn lines(
    uuid: &str,
    view_subvol: &str,
    shared: &[(String, String)],
    esp: Option<(&str, &str)>,
) -> Vec<Line> {
    let btrfs = |mp: &str, options: String| Line {
        what: format!("UUID={uuid}"),
        mount_point: mp.to_string(),
        fs_type: "btrfs".into(),
        options,
        pass: 0,
        inactive: None,
    };
    // An active /usr line would be remounted by systemd-remount-fs with its
    // options, and `remount,ro` of one btrfs mount makes the whole
    // filesystem read-only, / included (seen in the boot test).
    let mut v = vec![Line {
        inactive: Some(USR_NOTE),
        ..btrfs("/usr", format!("ro,subvol={view_subvol}"))
    }];
    // /usr/local after /usr: mounts are made in order.
    for (subvol, mp) in shared {
        v.push(btrfs(mp, format!("subvol={subvol}")));
    }
    if let Some((esp, mount_point)) = esp {
        v.push(Line {
            what: format!("UUID={esp}"),
            mount_point: mount_point.into(),
            fs_type: "vfat".into(),
            options: "umask=0077,nofail".into(),
            pass: 2,
            inactive: None,
        });
    }
    v
}

/// `local` (the current fstab, or empty) with reimage's block replaced by
/// `lines` (appended when there was none); every other line kept as it was.
/// A local line for a mount point reimage now manages is commented out,
/// saying so, so that nothing is mounted twice.
pub fn merge(local: &str, lines: &[Line]) -> String {
    let mut out = String::new();
    let mut inside = false;
    let managed: Vec<&str> = lines.iter().map(|l| l.mount_point.as_str()).collect();
    for l in local.lines() {
        if l == BEGIN {
            inside = true;
            continue;
        }
        if inside {
            if l == END {
                inside = false;
            }
            continue;
        }
        let mp = l.split_whitespace().nth(1);
        if !l.trim_start().starts_with('#') && mp.is_some_and(|m| managed.contains(&m)) {
            out.push_str(&format!("# (reimage manages {}) {l}\n", mp.unwrap()));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str(BEGIN);
    out.push('\n');
    for l in lines {
        out.push_str(&l.render());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Vec<(String, String)> {
        vec![
            ("/shared/var".into(), "/var".into()),
            ("/shared/usr-local".into(), "/usr/local".into()),
        ]
    }

    #[test]
    fn a_first_fstab() {
        let t = merge("", &lines("U", "/pool/views/v1", &shared(), None));
        assert_eq!(
            t,
            format!(
                "{BEGIN}\n{USR_NOTE}#UUID=U /usr btrfs ro,subvol=/pool/views/v1 0 0\n\
                 UUID=U /var btrfs subvol=/shared/var 0 0\n\
                 UUID=U /usr/local btrfs subvol=/shared/usr-local 0 0\n{END}\n"
            )
        );
    }

    #[test]
    fn local_lines_are_kept_and_the_block_replaced() {
        let first = merge(
            "# mine\n/dev/sdb1 /data ext4 defaults 0 2\n",
            &lines("U", "/pool/views/v1", &shared(), None),
        );
        let second = merge(
            &first,
            &lines("U", "/pool/views/v2", &shared(), Some(("ESP", "/boot/efi"))),
        );
        assert!(second.starts_with("# mine\n/dev/sdb1 /data ext4 defaults 0 2\n"));
        assert!(second.contains("subvol=/pool/views/v2"));
        assert!(!second.contains("views/v1"));
        assert!(second.contains("UUID=ESP /boot/efi vfat"));
        assert_eq!(second.matches(BEGIN).count(), 1);
        // Idempotent.
        assert_eq!(
            merge(
                &second,
                &lines("U", "/pool/views/v2", &shared(), Some(("ESP", "/boot/efi")))
            ),
            second
        );
    }

    #[test]
    fn a_local_line_for_a_managed_mount_is_commented_out() {
        let t = merge(
            "tmpfs /var tmpfs defaults 0 0\n",
            &lines("U", "/pool/views/v1", &shared(), None),
        );
        assert!(t.starts_with("# (reimage manages /var) tmpfs /var"));
    }
}
