//! The crate's error type: every variant names the file, package or path it
//! concerns.
use std::path::PathBuf;

/// Errors of the sysimage crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not an RPM (lead, signature header, main header).
    #[error("{}: not an RPM header file: {reason}", path.display())]
    NotRpm { path: PathBuf, reason: String },
    /// The file ends before the header does.
    #[error("{}: truncated: {reason}", path.display())]
    Truncated { path: PathBuf, reason: String },
    /// The header is structurally broken (bad tag types, offsets out of range).
    #[error("{}: corrupt header: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A header file the view's metadata lists is not there.
    #[error("{}: missing (the view's lib/reimage/view.json lists this package)", path.display())]
    MissingHeader { path: PathBuf },
    /// The header file's name does not match the NEVRA inside it.
    #[error("{}: file name does not match the package inside ({expected})", path.display())]
    Misnamed { path: PathBuf, expected: String },
    /// A string that is not a NEVRA/EVR.
    #[error("{input:?} is not a valid {what}: {reason}")]
    Parse {
        input: String,
        what: &'static str,
        reason: &'static str,
    },
    /// No package matches a selector.
    #[error("no package matches {0:?}")]
    NoPackage(String),
    /// A path a package names cannot be placed (relative, `..`, NUL, ...).
    #[error("{path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    /// A `--relocate FROM=TO` rule that the policy refuses.
    #[error("relocation rule {rule:?}: {reason}")]
    BadRule { rule: String, reason: String },
    /// The view metadata file is not valid JSON of the expected shape.
    #[error("{}: {source}", path.display())]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
