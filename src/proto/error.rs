//! Typed, classified errors that keep what the service said (§7.3, §14 rule 16).

use super::source::Source;

/// What went wrong, finely; [`ErrorKind::class`] gives the three-way WIT classification.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The scope or selector is malformed; nothing was sent.
    InvalidArgument,
    /// No usable managed identity here, or the source cannot honour the selector.
    Unavailable,
    /// The request reached the source and was refused because of how it was asked
    /// (unknown resource, identity not assigned, rejected secret).
    Configuration,
    /// The source failed (5xx, throttling, unexpected status).
    Service,
    /// No response after the source had answered before (timeout, reset, refused).
    Transport,
    /// A 2xx answer that is not a usable token (no token, unknown expiry, not `Bearer`).
    InvalidResponse,
    /// A security check failed (Arc key file, identity echo): never fall through silently.
    Security,
}

/// The three classes a caller acts on (the WIT `error` variant).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Try the next credential.
    CredentialUnavailable,
    /// A managed identity is here and failed: stop and report.
    AuthenticationFailed,
    /// Fix the arguments.
    InvalidArgument,
}

impl ErrorKind {
    /// The class a caller acts on (design.md, "Errors").
    pub fn class(self) -> ErrorClass {
        match self {
            ErrorKind::InvalidArgument => ErrorClass::InvalidArgument,
            ErrorKind::Unavailable => ErrorClass::CredentialUnavailable,
            ErrorKind::Configuration
            | ErrorKind::Service
            | ErrorKind::Transport
            | ErrorKind::InvalidResponse
            | ErrorKind::Security => ErrorClass::AuthenticationFailed,
        }
    }
}

/// A failure to get a token. `Display` is the actionable message; it never contains a token,
/// a secret or key-file contents.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    origin: Option<Source>,
    status: Option<u16>,
    code: Option<String>,
    correlation_id: Option<String>,
    message: String,
}

impl Error {
    /// A new error; `message` should say what happened and how to fix it.
    pub fn new(kind: ErrorKind, origin: Option<Source>, message: impl Into<String>) -> Self {
        Self {
            kind,
            origin,
            status: None,
            code: None,
            correlation_id: None,
            message: message.into(),
        }
    }

    /// Invalid input, rejected before anything was sent.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, None, message)
    }

    /// Adds what the service answered.
    pub fn with_service(
        mut self,
        status: Option<u16>,
        code: Option<String>,
        correlation_id: Option<String>,
    ) -> Self {
        self.status = status;
        self.code = code;
        self.correlation_id = correlation_id;
        self
    }

    /// The fine-grained kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The class a caller acts on.
    pub fn class(&self) -> ErrorClass {
        self.kind.class()
    }

    /// The source that refused or failed, when one was detected.
    pub fn mi_source(&self) -> Option<Source> {
        self.origin
    }

    /// The HTTP status, when the source answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The service's error code (`invalid_resource`, `SecretHeaderNotFound`, …).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service's correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// Adds `text` to the message.
    pub(crate) fn append(&mut self, text: &str) {
        self.message.push_str(text);
    }

    /// Replaces every occurrence of `secret` in the message (service text can echo a
    /// request's secret back). Values shorter than 4 characters are left alone.
    pub(crate) fn redact(&mut self, secret: &str) {
        if secret.len() >= 4 && self.message.contains(secret) {
            self.message = self.message.replace(secret, "<redacted>");
        }
    }

    /// The actionable message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}
