//! Typed, classified errors that keep what the service said.
//!
//! Every error keeps the source, the HTTP status, the service's error code and the
//! correlation id when known, so a support case can be opened from the message alone; the
//! message names the source and the fix, and never contains a token, a secret or key-file
//! contents. [`ErrorKind`] is the fine reason; [`ErrorKind::class`] maps it onto the three
//! cases of the WIT `error` variant, which is what a caller (or a credential chain) acts on:
//!
//! | kind | class | when |
//! |---|---|---|
//! | `InvalidArgument` | `invalid-argument` | empty or multiple scopes, bad characters, empty id: nothing was sent |
//! | `Unavailable` | `credential-unavailable` | no managed identity here: no response from a source that never answered, the probe failed, IMDS 403 `unreachable` (Docker Desktop), a non-JSON 2xx on the IMDS address, IMDS/App Service 400 "identity not found" for the system identity; also a selector the source cannot honour (Cloud Shell or Service Fabric with any user-assigned id, Azure ML with an object/resource id), named with the source |
//! | `Configuration` | `authentication-failed` | the source refused how it was asked: unknown resource (`invalid_resource`, `AADSTS500011`), an explicitly requested user-assigned identity not assigned, a rejected secret (401/403), other 4xx, known AADSTS failures of workload identity |
//! | `Service` | `authentication-failed` | 404, 408, 410, 429 or 5xx after the retries |
//! | `Transport` | `authentication-failed` | no response from a source that answered this credential before |
//! | `InvalidResponse` | `authentication-failed` | a 2xx that is not a usable token: no `access_token`, unknown expiry, `token_type` not `Bearer` |
//! | `Security` | `authentication-failed` | Arc key path or contents refused, a second Arc 401, an Arc user-assigned identity not echoed: never fall through to another identity |
//! | `Internal` | `authentication-failed` | a state azmi should never reach: a bug to report, never a reason to try another credential |
//!
//! The full classification of HTTP answers, with the SDK precedents, is in
//! [`crate::proto::response`]; of transport failures, in the acquisition's module docs.
//! Credential chains move on only on `credential-unavailable`. An explicitly requested
//! user-assigned identity that is not assigned is *authentication failed* (Go azidentity's
//! rule: the caller asked for that identity, a chain must not silently use another), unlike
//! @azure/identity and Python, which report it as unavailable.

mod messages;

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
    /// Something azmi itself got wrong ("cannot happen"): a bug to report, never a reason to
    /// try another credential.
    Internal,
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
    /// The class a caller acts on: the three cases of the WIT `error` variant (table in the
    /// `error` module docs).
    pub fn class(self) -> ErrorClass {
        match self {
            ErrorKind::InvalidArgument => ErrorClass::InvalidArgument,
            ErrorKind::Unavailable => ErrorClass::CredentialUnavailable,
            ErrorKind::Configuration
            | ErrorKind::Service
            | ErrorKind::Transport
            | ErrorKind::InvalidResponse
            | ErrorKind::Security
            | ErrorKind::Internal => ErrorClass::AuthenticationFailed,
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

    /// A state azmi should never reach; the message asks for a report.
    pub(crate) fn internal(what: &str) -> Self {
        Self::new(
            ErrorKind::Internal,
            None,
            format!("internal error: {what}; please report this"),
        )
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

    /// Replaces every occurrence of `secret` in the message, the code and the correlation id
    /// (service text can echo a request's secret back). Values shorter than 4 characters are
    /// left alone.
    pub(crate) fn redact(&mut self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        // The code and the correlation id come from the service too, decoded from JSON: an
        // escaped echo (`\u0073…`) survives the raw-body scrub and only shows here.
        let fields = [
            Some(&mut self.message),
            self.code.as_mut(),
            self.correlation_id.as_mut(),
        ];
        for field in fields.into_iter().flatten() {
            if field.contains(secret) {
                *field = field.replace(secret, "<redacted>");
            }
        }
    }

    /// The actionable message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}
