//! Files the core asks the adapter to read (Arc challenge key, federated token).
//!
//! The core never reads a file itself: it emits a [`FileRead`] with a path it has already
//! validated, a size cap and whether a symbolic link may be followed, and the adapter reports
//! the bytes or a [`FileError`]. The Arc key is read without following links, capped at 4096
//! bytes ([`crate::proto::arc`]); the federated token follows the link Kubernetes projects it
//! through ([`crate::proto::workload`]). Hosts without file access (proxy-wasm) refuse both
//! sources up front.

/// A file read the adapter must perform and report with `handle_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRead {
    /// Absolute path, already validated by the core.
    pub path: String,
    /// Read at most this many bytes; a larger file (by stat or by read) is [`FileErrorKind::TooLarge`].
    pub max_len: usize,
    /// Follow a symbolic link at the last component (Kubernetes projects the federated token
    /// through one); never for the Arc key (a link in the key directory could point anywhere).
    pub follow_symlinks: bool,
}

/// Why a file could not be read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileErrorKind {
    /// No such file.
    NotFound,
    /// Larger than `max_len`.
    TooLarge,
    /// A symbolic link, directory or other non-regular file where a regular file was required.
    NotRegularFile,
    /// The host gives no access to that directory (no preopen, or proxy-wasm).
    NoAccess,
    /// Anything else.
    Other,
}

/// A failed file read. `detail` never contains file contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// What went wrong.
    pub kind: FileErrorKind,
    /// Host description, for messages.
    pub detail: String,
}

impl FileError {
    /// A file error of `kind`.
    pub fn new(kind: FileErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}
