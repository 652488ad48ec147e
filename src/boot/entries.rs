//! Boot Loader Specification Type 1 entries, one per deployment (pure).
//!
//! ```text
//! loader/entries/reimage-ID+LEFT-DONE.conf    LEFT tries left, DONE used (systemd-boot renames it before each try)
//! loader/entries/reimage-ID+3.conf            a new entry: three tries
//! loader/entries/reimage-ID.conf              blessed: it booted well once, no counting any more
//! ```
//! systemd-boot 252 sorts entries with no tries left last, then by
//! `sort-key` ascending, then `version` descending. Every reimage entry has
//! the same `sort-key`; `version` is a rank the default gets higher than any
//! other, so the default sorts first: a rollback or a fallback rewrites one
//! entry (the new default's), never a `default` line (measured here: a
//! `default` that matches a bad entry still boots it, and one that names an
//! old entry means a new `+3` entry is never tried).

/// The `sort-key` of every reimage entry.
pub const SORT_KEY: &str = "reimage";
/// Tries a new entry starts with.
pub const TRIES: u32 = 3;

/// An entry's boot-counting state, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Counter {
    /// No counter: blessed (or never counted).
    Blessed,
    /// `+LEFT-DONE`.
    Counting { left: u32, done: u32 },
}

impl Counter {
    /// No tries left: systemd-boot will not choose it while another exists.
    pub fn exhausted(self) -> bool {
        matches!(self, Counter::Counting { left: 0, .. })
    }
    fn suffix(self) -> String {
        match self {
            Counter::Blessed => String::new(),
            Counter::Counting { left, done: 0 } => format!("+{left}"),
            Counter::Counting { left, done } => format!("+{left}-{done}"),
        }
    }
}

/// The file name of deployment `id`'s entry in state `c`.
pub fn file_name(id: u64, c: Counter) -> String {
    format!("reimage-{id}{}.conf", c.suffix())
}

/// Parses `reimage-ID[+LEFT[-DONE]].conf`; `None` for other names.
pub fn parse_name(name: &str) -> Option<(u64, Counter)> {
    let stem = name.strip_prefix("reimage-")?.strip_suffix(".conf")?;
    let (id, counter) = match stem.split_once('+') {
        None => (stem, Counter::Blessed),
        Some((id, c)) => {
            let (left, done) = match c.split_once('-') {
                Some((l, d)) => (l.parse().ok()?, d.parse().ok()?),
                None => (c.parse().ok()?, 0),
            };
            (id, Counter::Counting { left, done })
        }
    };
    Some((id.parse().ok()?, counter))
}

/// What an entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub title: String,
    /// The rank: higher sorts first (the default has the highest).
    pub rank: u64,
    /// ESP paths of the kernel and initrd (from its root, `/reimage/...`).
    pub linux: String,
    pub initrd: String,
    pub options: String,
}

impl Entry {
    pub fn render(&self) -> String {
        format!(
            "title {}\nversion {}\nsort-key {SORT_KEY}\nlinux {}\ninitrd {}\noptions {}\n",
            self.title, self.rank, self.linux, self.initrd, self.options
        )
    }

    /// Reads an entry's text back (only what reimage writes).
    pub fn parse(id: u64, text: &str) -> Option<Entry> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
                .map(|s| s.trim().to_string())
        };
        Some(Entry {
            id,
            title: get("title")?,
            rank: get("version")?.parse().ok()?,
            linux: get("linux")?,
            initrd: get("initrd")?,
            options: get("options").unwrap_or_default(),
        })
    }
}

/// The kernel command line of a deployment: the root by UUID and subvolume,
/// `/usr` as the view the way systemd names it (`mount.usr=`,
/// `mount.usrflags=`; reimage's initrd reads the same words), then the
/// deployment's own arguments.
pub fn options(uuid: &str, root_subvol: &str, usr_subvol: &str, extra: &[String]) -> String {
    let mut o = format!(
        "root=UUID={uuid} rootflags=subvol={root_subvol} rw mount.usr=UUID={uuid} \
         mount.usrflags=subvol={usr_subvol},ro"
    );
    for a in extra {
        o.push(' ');
        o.push_str(a);
    }
    o
}

/// The entry systemd-boot boots first among `entries` (id, counter, rank):
/// the highest rank among those with tries left, else the highest rank.
pub fn first(entries: &[(u64, Counter, u64)]) -> Option<u64> {
    let best =
        |pool: Vec<&(u64, Counter, u64)>| pool.into_iter().max_by_key(|e| (e.2, e.0)).map(|e| e.0);
    best(entries.iter().filter(|e| !e.1.exhausted()).collect())
        .or_else(|| best(entries.iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (id, c, name) in [
            (3, Counter::Blessed, "reimage-3.conf"),
            (
                3,
                Counter::Counting { left: 3, done: 0 },
                "reimage-3+3.conf",
            ),
            (
                12,
                Counter::Counting { left: 2, done: 1 },
                "reimage-12+2-1.conf",
            ),
            (
                4,
                Counter::Counting { left: 0, done: 3 },
                "reimage-4+0-3.conf",
            ),
        ] {
            assert_eq!(file_name(id, c), name);
            assert_eq!(parse_name(name), Some((id, c)));
        }
        assert_eq!(parse_name("other-1.conf"), None);
        assert_eq!(parse_name("reimage-x.conf"), None);
        assert_eq!(parse_name("reimage-1.conf.new"), None);
    }

    #[test]
    fn entries_render_and_parse() {
        let e = Entry {
            id: 2,
            title: "reimage 2 (v2)".into(),
            rank: 7,
            linux: "/reimage/vmlinuz-ab".into(),
            initrd: "/reimage/initrd-cd".into(),
            options: options(
                "U",
                "/reimage/deployments/2",
                "/pool/views/v2",
                &["console=ttyS0".into()],
            ),
        };
        let t = e.render();
        assert!(t.contains("sort-key reimage\n"));
        assert!(t.contains("mount.usrflags=subvol=/pool/views/v2,ro console=ttyS0"));
        assert!(!t.contains("default"));
        assert_eq!(Entry::parse(2, &t), Some(e));
    }

    /// The order systemd-boot 252 boots in: tries left first, then rank.
    #[test]
    fn the_default_and_the_fallback() {
        let c3 = Counter::Counting { left: 3, done: 0 };
        let dead = Counter::Counting { left: 0, done: 3 };
        assert_eq!(first(&[(1, Counter::Blessed, 1), (2, c3, 2)]), Some(2));
        assert_eq!(first(&[(1, Counter::Blessed, 1), (2, dead, 2)]), Some(1));
        assert_eq!(first(&[(2, dead, 2)]), Some(2));
    }
}
