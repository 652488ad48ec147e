//! The relocation policy: where a path a package names outside `/usr` lands
//! in a view (whose root is `/usr`), shared by compose, query and verify.
//! Pure: no filesystem access.
//!
//! | header path                         | placement                                      |
//! |-------------------------------------|------------------------------------------------|
//! | `/usr/X`                            | view `X` (`/usr` itself: the view root)        |
//! | `/etc/X`                            | view `etc/X` (vendor defaults for the /etc merge) |
//! | `/var/X`                            | view `share/factory/var/X` + `reimage-var.conf` line |
//! | `/bin/X`, `/sbin/X`, `/lib*/X`      | view `bin/X`, `sbin/X`, `lib*/X` (pre-usrmerge) |
//! | `/bin`, `/sbin`, `/lib*` directory  | skeleton symlink `/bin -> usr/bin`             |
//! | top-level symlink (`/bin -> usr/bin`) | skeleton symlink, the package's target       |
//! | `/boot/vmlinuz-K` (`config-K`, `System.map-K`, `initrd.img-K`, `initramfs-K.img`, `symvers-K.gz`, `.vmlinuz-K.hmac`) | view `lib/modules/K/vmlinuz` (`config`, `System.map`, `initrd`, `initrd`, `symvers.gz`, `.vmlinuz.hmac`) |
//! | any other directory (`/home`, `/proc`, `/boot`, `/run/lock`) | skeleton directory (`d` line)    |
//! | anything else (`/opt/foo/file`, `/boot/grub/x`) | refused, unless a `--relocate` rule maps it |
//!
//! User rules (`--relocate FROM=TO`) are applied first, longest FROM first,
//! on whole path components; TO must be a place whose contents land in the
//! view (under `/usr`, `/etc`, `/var`, `/bin`, `/sbin`, `/lib*`).
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The kind of a file, as far as placement cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

impl Kind {
    /// From an `st_mode`-style file mode.
    pub fn from_mode(mode: u32) -> Kind {
        match mode & 0o170000 {
            0o040000 => Kind::Dir,
            0o100000 => Kind::File,
            0o120000 => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// Something recreated at boot by `reimage-root.conf`, not materialised in the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Skeleton {
    /// An empty directory (`d` line).
    Dir { path: String },
    /// A symlink (`L` line); `target: None` means the package's own link target.
    Symlink {
        path: String,
        target: Option<String>,
    },
}

/// Where a header path goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A path relative to the view root (the view root is `/usr`; `""` is the root).
    View(PathBuf),
    /// Recreated at boot from a tmpfiles.d line; nothing in the view.
    Skeleton(Skeleton),
    /// Not placeable without a user rule.
    Refused,
}

/// The prefixes merged into the view as they are (`/bin/x` -> `bin/x`).
fn is_merged_top(c: &str) -> bool {
    matches!(c, "bin" | "sbin") || c.starts_with("lib")
}

/// Splits an absolute path into normal components, refusing what can never be
/// placed safely: relative or empty paths, NUL, `..`.
pub fn components(path: &str) -> Result<Vec<&str>> {
    let bad = |reason| Error::BadPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    if !path.starts_with('/') {
        return Err(bad("not an absolute path"));
    }
    if path.contains('\0') {
        return Err(bad("contains NUL"));
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("contains a .. component")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `/a/b` from components (`/` for none).
pub fn join_abs(comps: &[&str]) -> String {
    format!("/{}", comps.join("/"))
}

fn view(prefix: &[&str], rest: &[&str]) -> Placement {
    let mut p = PathBuf::new();
    for c in prefix.iter().chain(rest) {
        p.push(c);
    }
    Placement::View(p)
}

/// Maps `/boot/NAME` kernel files to `lib/modules/KVER/...`.
fn kernel_file(name: &str) -> Option<(String, &'static str)> {
    let rules: [(&str, &str, &'static str); 7] = [
        ("vmlinuz-", "", "vmlinuz"),
        ("config-", "", "config"),
        ("System.map-", "", "System.map"),
        ("initrd.img-", "", "initrd"),
        ("initramfs-", ".img", "initrd"),
        ("symvers-", ".gz", "symvers.gz"),
        (".vmlinuz-", ".hmac", ".vmlinuz.hmac"),
    ];
    for (pre, suf, to) in rules {
        if let Some(k) = name.strip_prefix(pre).and_then(|k| k.strip_suffix(suf)) {
            if !k.is_empty() && k != "." && k != ".." {
                return Some((k.to_string(), to));
            }
        }
    }
    None
}

fn builtin(c: &[&str], kind: Kind) -> Placement {
    match (c, kind) {
        ([], Kind::Dir) => Placement::Skeleton(Skeleton::Dir { path: "/".into() }),
        ([], _) => Placement::Refused,
        (["usr", rest @ ..], _) => view(&[], rest),
        (["etc", rest @ ..], _) => view(&["etc"], rest),
        (["var", rest @ ..], _) => view(&["share", "factory", "var"], rest),
        ([top], Kind::Dir) if is_merged_top(top) => Placement::Skeleton(Skeleton::Symlink {
            path: format!("/{top}"),
            target: Some(format!("usr/{top}")),
        }),
        ([top, rest @ ..], _) if is_merged_top(top) && !rest.is_empty() => view(&[top], rest),
        ([top], Kind::Symlink) => Placement::Skeleton(Skeleton::Symlink {
            path: format!("/{top}"),
            target: None,
        }),
        (["boot", name], Kind::File) => match kernel_file(name) {
            Some((k, to)) => view(&["lib", "modules", &k, to], &[]),
            None => Placement::Refused,
        },
        (_, Kind::Dir) => Placement::Skeleton(Skeleton::Dir { path: join_abs(c) }),
        _ => Placement::Refused,
    }
}

/// The relocation policy with the user's `--relocate FROM=TO` rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// (FROM, TO) as normalised absolute paths, longest FROM first.
    rules: Vec<(String, String)>,
}

impl Policy {
    /// The built-in policy, no user rules.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Parses `FROM=TO`.
    pub fn parse_rule(s: &str) -> Result<(String, String)> {
        match s.split_once('=') {
            Some((f, t)) => Ok((f.to_string(), t.to_string())),
            None => Err(Error::BadRule {
                rule: s.to_string(),
                reason: "expected FROM=TO".into(),
            }),
        }
    }

    /// The built-in policy plus user rules, each checked: FROM and TO are
    /// absolute and clean, FROM is not `/`, and what lands under TO lands in
    /// the view.
    pub fn with_rules<I, S, T>(rules: I) -> Result<Policy>
    where
        I: IntoIterator<Item = (S, T)>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        let mut out = Vec::new();
        for (from, to) in rules {
            let (from, to) = (from.as_ref(), to.as_ref());
            let rule = format!("{from}={to}");
            let bad = |reason: String| Error::BadRule {
                rule: rule.clone(),
                reason,
            };
            let f = components(from).map_err(|e| bad(e.to_string()))?;
            let t = components(to).map_err(|e| bad(e.to_string()))?;
            if f.is_empty() {
                return Err(bad("FROM cannot be /".into()));
            }
            let mut probe = t.clone();
            probe.push("x");
            if !matches!(builtin(&probe, Kind::File), Placement::View(_)) {
                return Err(bad(format!(
                    "TO must be under /usr, /etc, /var, /bin, /sbin or /lib*, not {}",
                    join_abs(&t)
                )));
            }
            out.push((join_abs(&f), join_abs(&t)));
        }
        out.sort_by_key(|(f, _)| std::cmp::Reverse(f.matches('/').count()));
        Ok(Policy { rules: out })
    }

    /// The user rules, normalised.
    pub fn rules(&self) -> &[(String, String)] {
        &self.rules
    }

    /// Where `path` (as a package header names it) of `kind` goes. Errors
    /// only for paths that can never be placed (relative, `..`, NUL).
    pub fn place(&self, path: &str, kind: Kind) -> Result<Placement> {
        let c = components(path)?;
        for (from, to) in &self.rules {
            let f = components(from)?;
            if c.len() >= f.len() && c[..f.len()] == f[..] {
                let mut n = components(to)?;
                n.extend_from_slice(&c[f.len()..]);
                return Ok(builtin(&n, kind));
            }
        }
        Ok(builtin(&c, kind))
    }
}

/// Where the generated tmpfiles.d snippets go, relative to the view root.
pub const ROOT_CONF: &str = "lib/tmpfiles.d/reimage-root.conf";
pub const VAR_CONF: &str = "lib/tmpfiles.d/reimage-var.conf";

/// One placed header entry, as input to [`tmpfiles`].
#[derive(Debug, Clone)]
pub struct PlacedEntry {
    /// The path as the header names it.
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub user: String,
    pub group: String,
    /// The symlink target from the header (empty unless a symlink).
    pub link_target: String,
    pub placement: Placement,
}

/// The text of the two generated tmpfiles.d snippets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tmpfiles {
    /// `reimage-root.conf`: the root skeleton.
    pub root: String,
    /// `reimage-var.conf`: `/var` recreated from `/usr/share/factory/var`.
    pub var: String,
}

/// Escapes a tmpfiles.d field: `%` doubled (specifiers), whitespace, quotes,
/// backslashes and control characters as `\xNN`.
fn tmpfiles_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '%' => out.push_str("%%"),
            c if c.is_whitespace() || c.is_control() || c == '\\' || c == '"' || c == '\'' => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn owner(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        tmpfiles_escape(s)
    }
}

/// Builds the tmpfiles.d snippets from placed entries. Lines are sorted by
/// path (parents first); the first entry for a path wins.
pub fn tmpfiles(entries: &[PlacedEntry]) -> Tmpfiles {
    let mut root = BTreeMap::new();
    let mut var = BTreeMap::new();
    for e in entries {
        match &e.placement {
            Placement::Skeleton(Skeleton::Dir { path }) if path != "/" => {
                root.entry(path.clone()).or_insert_with(|| {
                    format!(
                        "d {} {:04o} {} {} -",
                        tmpfiles_escape(path),
                        e.mode & 0o7777,
                        owner(&e.user),
                        owner(&e.group)
                    )
                });
            }
            Placement::Skeleton(Skeleton::Symlink { path, target }) => {
                let target = target.as_deref().unwrap_or(&e.link_target);
                root.entry(path.clone()).or_insert_with(|| {
                    format!(
                        "L {} - - - - {}",
                        tmpfiles_escape(path),
                        tmpfiles_escape(target)
                    )
                });
            }
            Placement::View(v) => {
                let Ok(rest) = v.strip_prefix("share/factory/var") else {
                    continue;
                };
                let rest = rest.to_string_lossy();
                let runtime = if rest.is_empty() {
                    "/var".to_string()
                } else {
                    format!("/var/{rest}")
                };
                let p = tmpfiles_escape(&runtime);
                let line = match e.kind {
                    Kind::Dir => format!(
                        "d {p} {:04o} {} {} -",
                        e.mode & 0o7777,
                        owner(&e.user),
                        owner(&e.group)
                    ),
                    Kind::File => format!(
                        "C {p} - - - - {}",
                        tmpfiles_escape(&format!("/usr/{}", v.display()))
                    ),
                    Kind::Symlink => {
                        format!("L {p} - - - - {}", tmpfiles_escape(&e.link_target))
                    }
                    Kind::Other => continue,
                };
                var.entry(runtime).or_insert(line);
            }
            _ => {}
        }
    }
    let text = |m: BTreeMap<String, String>| {
        let mut s = String::from("# Generated by reimage compose; do not edit.\n");
        for line in m.into_values() {
            s.push_str(&line);
            s.push('\n');
        }
        s
    };
    Tmpfiles {
        root: text(root),
        var: text(var),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &str) -> Placement {
        Placement::View(PathBuf::from(p))
    }
    fn sd(p: &str) -> Placement {
        Placement::Skeleton(Skeleton::Dir { path: p.into() })
    }
    fn sl(p: &str, t: Option<&str>) -> Placement {
        Placement::Skeleton(Skeleton::Symlink {
            path: p.into(),
            target: t.map(Into::into),
        })
    }

    #[test]
    fn builtin_table() {
        use Kind::*;
        let p = Policy::new();
        let cases: Vec<(&str, Kind, Placement)> = vec![
            ("/usr", Dir, v("")),
            ("/usr/bin/bash", File, v("bin/bash")),
            ("/usr/lib64/libc.so.6", Symlink, v("lib64/libc.so.6")),
            ("//usr//./bin/x", File, v("bin/x")),
            ("/usr/bin/", Dir, v("bin")),
            ("/etc", Dir, v("etc")),
            ("/etc/passwd", File, v("etc/passwd")),
            (
                "/etc/pki/tls/certs/ca-bundle.crt",
                Symlink,
                v("etc/pki/tls/certs/ca-bundle.crt"),
            ),
            ("/var", Dir, v("share/factory/var")),
            ("/var/lib/rpm", Dir, v("share/factory/var/lib/rpm")),
            ("/var/run", Symlink, v("share/factory/var/run")),
            ("/var/log/wtmp", File, v("share/factory/var/log/wtmp")),
            // pre-usrmerge
            ("/bin/bash", File, v("bin/bash")),
            ("/sbin/ldconfig", File, v("sbin/ldconfig")),
            ("/lib/ld-linux.so.2", Symlink, v("lib/ld-linux.so.2")),
            ("/lib64/libc.so.6", File, v("lib64/libc.so.6")),
            ("/lib/modules/5.1/kernel", Dir, v("lib/modules/5.1/kernel")),
            ("/lib64", Dir, sl("/lib64", Some("usr/lib64"))),
            ("/bin", Dir, sl("/bin", Some("usr/bin"))),
            // top-level symlinks (Fedora's filesystem package)
            ("/bin", Symlink, sl("/bin", None)),
            ("/lib64", Symlink, sl("/lib64", None)),
            ("/sbin", Symlink, sl("/sbin", None)),
            // skeleton directories
            ("/", Dir, sd("/")),
            ("/home", Dir, sd("/home")),
            ("/proc", Dir, sd("/proc")),
            ("/tmp", Dir, sd("/tmp")),
            ("/boot", Dir, sd("/boot")),
            ("/run/lock", Dir, sd("/run/lock")),
            ("/opt/foo", Dir, sd("/opt/foo")),
            // kernels
            (
                "/boot/vmlinuz-6.1.0-1.fc38.x86_64",
                File,
                v("lib/modules/6.1.0-1.fc38.x86_64/vmlinuz"),
            ),
            ("/boot/config-6.1.0", File, v("lib/modules/6.1.0/config")),
            (
                "/boot/System.map-6.1.0",
                File,
                v("lib/modules/6.1.0/System.map"),
            ),
            (
                "/boot/initrd.img-6.1.0",
                File,
                v("lib/modules/6.1.0/initrd"),
            ),
            (
                "/boot/initramfs-6.1.0.img",
                File,
                v("lib/modules/6.1.0/initrd"),
            ),
            (
                "/boot/symvers-6.1.0.gz",
                File,
                v("lib/modules/6.1.0/symvers.gz"),
            ),
            (
                "/boot/.vmlinuz-6.1.0.hmac",
                File,
                v("lib/modules/6.1.0/.vmlinuz.hmac"),
            ),
            // refused
            ("/boot/vmlinuz-", File, Placement::Refused),
            ("/boot/vmlinuz-..", File, Placement::Refused),
            ("/boot/grub/grub.cfg", File, Placement::Refused),
            ("/boot/vmlinuz", Symlink, Placement::Refused),
            ("/opt/foo/file", File, Placement::Refused),
            ("/opt/foo/link", Symlink, Placement::Refused),
            ("/srv/x", File, Placement::Refused),
            ("/dev/null", Other, Placement::Refused),
            ("/foo", File, Placement::Refused),
            ("/", File, Placement::Refused),
            ("/lib", File, Placement::Refused),
        ];
        for (path, kind, want) in cases {
            assert_eq!(p.place(path, kind).unwrap(), want, "{path} ({kind:?})");
        }
    }

    #[test]
    fn invalid_paths() {
        let p = Policy::new();
        for bad in [
            "",
            "usr/bin/x",
            "/usr/../etc/x",
            "/usr/bin/x\0y",
            "/..",
            "./x",
        ] {
            assert!(p.place(bad, Kind::File).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_rules() {
        let p = Policy::with_rules([
            ("/opt/foo", "/usr/lib/foo"),
            ("/opt/foo/share", "/usr/share/foo"),
            ("/srv/www", "/var/www"),
            ("/boot/grub", "/usr/lib/grub-files"),
        ])
        .unwrap();
        let cases = [
            ("/opt/foo", Kind::Dir, v("lib/foo")),
            ("/opt/foo/bin/x", Kind::File, v("lib/foo/bin/x")),
            ("/opt/foo/share/doc", Kind::File, v("share/foo/doc")),
            ("/opt/foobar/x", Kind::File, Placement::Refused),
            (
                "/srv/www/index.html",
                Kind::File,
                v("share/factory/var/www/index.html"),
            ),
            (
                "/boot/grub/grub.cfg",
                Kind::File,
                v("lib/grub-files/grub.cfg"),
            ),
            ("/boot/vmlinuz-1", Kind::File, v("lib/modules/1/vmlinuz")),
            ("/usr/bin/x", Kind::File, v("bin/x")),
        ];
        for (path, kind, want) in cases {
            assert_eq!(p.place(path, kind).unwrap(), want, "{path}");
        }
        assert_eq!(p.rules()[0].0, "/opt/foo/share");
    }

    #[test]
    fn forbidden_rules() {
        for (from, to) in [
            ("/opt", "/opt2"),
            ("/opt", "/boot"),
            ("/opt", "/home/x"),
            ("/opt", "usr/lib"),
            ("/opt", "/usr/../etc"),
            ("/", "/usr/root"),
            ("opt", "/usr/opt"),
            ("/opt", "/"),
            ("/opt", ""),
        ] {
            assert!(
                Policy::with_rules([(from, to)]).is_err(),
                "{from}={to} accepted"
            );
        }
        assert!(Policy::with_rules([("/opt", "/bin")]).is_ok());
        assert!(Policy::with_rules([("/opt", "/usr")]).is_ok());
        assert_eq!(
            Policy::parse_rule("/a=/usr/b").unwrap(),
            ("/a".into(), "/usr/b".into())
        );
        assert!(Policy::parse_rule("/a").is_err());
    }

    #[test]
    fn tmpfiles_text() {
        let p = Policy::new();
        let e = |path: &str, kind, mode, link: &str| PlacedEntry {
            path: path.into(),
            kind,
            mode,
            user: "root".into(),
            group: if path == "/var/log/btmp" {
                "utmp".into()
            } else {
                "root".into()
            },
            link_target: link.into(),
            placement: p.place(path, kind).unwrap(),
        };
        let entries = vec![
            e("/home", Kind::Dir, 0o40755, ""),
            e("/tmp", Kind::Dir, 0o41777, ""),
            e("/bin", Kind::Symlink, 0o120777, "usr/bin"),
            e("/lib64", Kind::Dir, 0o40755, ""),
            e("/", Kind::Dir, 0o40555, ""),
            e("/usr/bin/x", Kind::File, 0o100755, ""),
            e("/var", Kind::Dir, 0o40755, ""),
            e("/var/log", Kind::Dir, 0o40755, ""),
            e("/var/log/btmp", Kind::File, 0o100600, ""),
            e("/var/run", Kind::Symlink, 0o120777, "../run"),
            e("/var/lib/my dir%", Kind::Dir, 0o40700, ""),
            e("/home", Kind::Dir, 0o40700, ""),
        ];
        let t = tmpfiles(&entries);
        assert_eq!(
            t.root,
            "# Generated by reimage compose; do not edit.\n\
             L /bin - - - - usr/bin\n\
             d /home 0755 root root -\n\
             L /lib64 - - - - usr/lib64\n\
             d /tmp 1777 root root -\n"
        );
        assert_eq!(
            t.var,
            "# Generated by reimage compose; do not edit.\n\
             d /var 0755 root root -\n\
             d /var/lib/my\\x20dir%% 0700 root root -\n\
             d /var/log 0755 root root -\n\
             C /var/log/btmp - - - - /usr/share/factory/var/log/btmp\n\
             L /var/run - - - - ../run\n"
        );
    }
}
