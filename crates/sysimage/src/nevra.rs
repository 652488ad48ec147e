//! NEVRA and EVR: parsing, formatting, ordering, header file names.
use crate::error::{Error, Result};
use crate::vercmp::{evr_cmp, evr_cmp_dep};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// `[EPOCH:]VERSION[-RELEASE]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}

impl Evr {
    /// Parses `[E:]V[-R]` (the last `-` separates the release).
    pub fn parse(s: &str) -> Result<Evr> {
        let bad = |reason| Error::Parse {
            input: s.to_string(),
            what: "EVR",
            reason,
        };
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => (
                Some(e.parse::<u32>().map_err(|_| bad("epoch is not a number"))?),
                rest,
            ),
            None => (None, s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err(bad("empty version"));
        }
        if release == Some("") {
            return Err(bad("empty release"));
        }
        Ok(Evr {
            epoch,
            version: version.to_string(),
            release: release.map(str::to_string),
        })
    }

    /// rpm's EVR ordering, `rpmverCmp` (see [`crate::vercmp::evr_cmp`]).
    pub fn cmp_rpm(&self, other: &Evr) -> Ordering {
        evr_cmp(
            (self.epoch, &self.version, self.release.as_deref()),
            (other.epoch, &other.version, other.release.as_deref()),
        )
    }

    /// rpm's dependency comparison, a missing release matching any
    /// (see [`crate::vercmp::evr_cmp_dep`]).
    pub fn cmp_dep(&self, other: &Evr) -> Ordering {
        evr_cmp_dep(
            (self.epoch, &self.version, self.release.as_deref()),
            (other.epoch, &other.version, other.release.as_deref()),
        )
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = self.epoch {
            write!(f, "{e}:")?;
        }
        f.write_str(&self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

/// A package's identity: name, epoch, version, release, architecture.
///
/// The epoch is `None` when the header has no epoch tag; it is printed when
/// present, even when 0, as rpm's `%{NEVRA}` does. This Display is the one
/// rendering of a package's identity in reimage (import, compose, sync,
/// publish, gc and the query commands all print it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nevra {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl Nevra {
    /// Parses `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
    pub fn parse(s: &str) -> Result<Nevra> {
        let bad = |reason| Error::Parse {
            input: s.to_string(),
            what: "NEVRA",
            reason,
        };
        let (nevr, arch) = s.rsplit_once('.').ok_or_else(|| bad("no .ARCH"))?;
        let (nev, release) = nevr.rsplit_once('-').ok_or_else(|| bad("no -RELEASE"))?;
        let (name, ev) = nev.rsplit_once('-').ok_or_else(|| bad("no -VERSION"))?;
        let (epoch, version) = match ev.split_once(':') {
            Some((e, v)) => (
                Some(e.parse::<u32>().map_err(|_| bad("epoch is not a number"))?),
                v,
            ),
            None => (None, ev),
        };
        if name.is_empty() || version.is_empty() || release.is_empty() || arch.is_empty() {
            return Err(bad("empty field"));
        }
        Ok(Nevra {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: arch.into(),
        })
    }

    /// Parses a header file name, `NAME-VERSION-RELEASE.ARCH.rpm`.
    pub fn from_file_name(file_name: &str) -> Result<Nevra> {
        let stem = file_name.strip_suffix(".rpm").ok_or_else(|| Error::Parse {
            input: file_name.to_string(),
            what: "header file name",
            reason: "does not end in .rpm",
        })?;
        Nevra::parse(stem)
    }

    /// The header file name in a view: `NAME-VERSION-RELEASE.ARCH.rpm` (no epoch).
    pub fn file_name(&self) -> String {
        format!("{}.rpm", self.nvra())
    }

    /// `NAME-VERSION-RELEASE.ARCH`, without the epoch.
    pub fn nvra(&self) -> String {
        format!("{}.{}", self.nvr(), self.arch)
    }

    /// `NAME-VERSION-RELEASE`.
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    pub fn evr(&self) -> Evr {
        Evr {
            epoch: self.epoch,
            version: self.version.clone(),
            release: Some(self.release.clone()),
        }
    }

    /// rpm's ordering of two packages' EVRs (name and arch are ignored).
    pub fn cmp_evr(&self, other: &Nevra) -> Ordering {
        evr_cmp(
            (self.epoch, &self.version, Some(&self.release)),
            (other.epoch, &other.version, Some(&other.release)),
        )
    }

    /// Whether `sel` names this package: its NEVRA (with or without the
    /// epoch), `N-V-R`, `N-V`, the bare name, or the header file name.
    pub fn matches(&self, sel: &str) -> bool {
        let sel = sel.strip_suffix(".rpm").unwrap_or(sel);
        sel == self.name
            || sel == format!("{}.{}", self.name, self.arch)
            || sel == self.nvra()
            || sel == self.nvr()
            || sel == self.to_string()
            || sel == format!("{}-{}", self.name, self.version)
            || (self.epoch.is_none()
                && sel
                    == format!(
                        "{}-0:{}-{}.{}",
                        self.name, self.version, self.release, self.arch
                    ))
    }
}

impl fmt::Display for Nevra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.name)?;
        if let Some(e) = self.epoch {
            write!(f, "{e}:")?;
        }
        write!(f, "{}-{}.{}", self.version, self.release, self.arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let cases = [
            (
                "bash-5.2.15-3.fc38.x86_64",
                "bash",
                None,
                "5.2.15",
                "3.fc38",
                "x86_64",
            ),
            (
                "rpm-basic-1:2.3.4-5.el9.noarch",
                "rpm-basic",
                Some(1),
                "2.3.4",
                "5.el9",
                "noarch",
            ),
            (
                "389-ds-base-devel-1.3.8.4-15.el7.x86_64",
                "389-ds-base-devel",
                None,
                "1.3.8.4",
                "15.el7",
                "x86_64",
            ),
            ("x-0:1-1.noarch", "x", Some(0), "1", "1", "noarch"),
        ];
        for (s, n, e, v, r, a) in cases {
            let x = Nevra::parse(s).unwrap();
            assert_eq!(
                (
                    x.name.as_str(),
                    x.epoch,
                    x.version.as_str(),
                    x.release.as_str(),
                    x.arch.as_str()
                ),
                (n, e, v, r, a)
            );
            assert_eq!(x.to_string(), s);
        }
        for bad in [
            "",
            "bash",
            "bash-1.x86_64",
            "-1-1.noarch",
            "a-x:1-1.noarch",
            "a-1-1.",
        ] {
            assert!(Nevra::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names() {
        let x = Nevra::parse("rpm-basic-1:2.3.4-5.el9.noarch").unwrap();
        assert_eq!(x.file_name(), "rpm-basic-2.3.4-5.el9.noarch.rpm");
        let y = Nevra::from_file_name("rpm-basic-2.3.4-5.el9.noarch.rpm").unwrap();
        assert_eq!(y.epoch, None);
        assert_eq!(y.nvra(), x.nvra());
        assert!(Nevra::from_file_name("rpm-basic-2.3.4-5.el9.noarch").is_err());
    }

    #[test]
    fn selectors() {
        let x = Nevra::parse("rpm-basic-1:2.3.4-5.el9.noarch").unwrap();
        for s in [
            "rpm-basic",
            "rpm-basic-2.3.4-5.el9",
            "rpm-basic-2.3.4-5.el9.noarch",
            "rpm-basic-1:2.3.4-5.el9.noarch",
            "rpm-basic-2.3.4",
            "rpm-basic-2.3.4-5.el9.noarch.rpm",
            "rpm-basic.noarch",
        ] {
            assert!(x.matches(s), "{s}");
        }
        for s in [
            "rpm",
            "rpm-basic-2.3.4-6.el9",
            "rpm-basic-2:2.3.4-5.el9.noarch",
            "rpm-basic.x86_64",
        ] {
            assert!(!x.matches(s), "{s}");
        }
        let y = Nevra::parse("a-1-1.noarch").unwrap();
        assert!(y.matches("a-0:1-1.noarch"));
    }

    #[test]
    fn evr() {
        let e = Evr::parse("2:1.0-3").unwrap();
        assert_eq!(
            (e.epoch, e.version.as_str(), e.release.as_deref()),
            (Some(2), "1.0", Some("3"))
        );
        assert_eq!(e.to_string(), "2:1.0-3");
        assert_eq!(Evr::parse("1.0").unwrap().release, None);
        assert!(Evr::parse("x:1").is_err());
        let (bare, full) = (Evr::parse("1.0").unwrap(), Evr::parse("1.0-5").unwrap());
        assert_eq!(bare.cmp_dep(&full), Ordering::Equal);
        assert_eq!(bare.cmp_rpm(&full), Ordering::Less);
        assert_eq!(
            Evr::parse("1:0.1")
                .unwrap()
                .cmp_rpm(&Evr::parse("9.9").unwrap()),
            Ordering::Greater
        );
    }
}
