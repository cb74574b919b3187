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

use super::files::{FileError, FileErrorKind};
use super::http::{TransportError, TransportErrorKind};
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

/// The messages of a token fetch: written once here, so the state machine says *what*
/// happened and this says it to the user, with the fix. `endpoint` is
/// `scheme://authority (VARIABLE)`, naming the variable that chose it.
impl Error {
    /// The IMDS probe was answered by a proxy's "unreachable" 403 (Docker Desktop does this):
    /// no managed identity behind it.
    pub(crate) fn probe_proxy_unreachable(source: Source, endpoint: &str) -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Some(source),
            format!(
                "IMDS: the availability probe of {endpoint} was answered by a proxy (403 unreachable); no managed identity is reachable here"
            ),
        )
    }

    /// The IMDS probe got no HTTP answer at all.
    pub(crate) fn probe_no_answer(source: Source, endpoint: &str, detail: &str) -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Some(source),
            format!(
                "IMDS: the availability probe got no answer from {endpoint}: {detail}; no managed identity is reachable here"
            ),
        )
    }

    /// The Arc agent answered the request carrying its own challenge key with a second 401.
    pub(crate) fn arc_second_challenge(source: Source) -> Self {
        Self::new(
            ErrorKind::Security,
            Some(source),
            "Azure Arc: the agent refused the key from its own challenge (a second 401); restart the Arc agent (himds)",
        )
        .with_service(Some(401), None, None)
    }

    /// A request got no response. Before the source ever answered this credential, that means
    /// no managed identity is here (unavailable); after, it is a transport failure.
    pub(crate) fn no_response(
        source: Source,
        endpoint: &str,
        error: &TransportError,
        answered_before: bool,
    ) -> Self {
        let detail = &error.detail;
        let (kind, message) = match error.kind {
            TransportErrorKind::ResponseTooLarge => (
                ErrorKind::InvalidResponse,
                format!(
                    "{source}: the response was larger than the 1 MiB limit ({detail}); this is not a managed-identity endpoint"
                ),
            ),
            TransportErrorKind::Tls => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: the TLS certificate of {endpoint} was not accepted ({detail}); trust its CA through the host (the azmi CLI reads SSL_CERT_FILE)"
                ),
            ),
            TransportErrorKind::Denied => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: the host refused to connect to {endpoint}: {detail}; allow the endpoint in the host's outbound HTTP policy"
                ),
            ),
            _ if answered_before => (
                ErrorKind::Transport,
                format!(
                    "{source}: no response from {endpoint}: {detail}, though it answered before; retry later"
                ),
            ),
            _ => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: no response from {endpoint}: {detail}; no managed identity is reachable here"
                ),
            ),
        };
        Self::new(kind, Some(source), message)
    }

    /// A request's deadline passed without an answer (same classification as
    /// [`Error::no_response`]).
    pub(crate) fn timed_out(source: Source, endpoint: &str, answered_before: bool) -> Self {
        let (kind, tail) = if answered_before {
            (
                ErrorKind::Transport,
                ", though it answered before; retry later",
            )
        } else {
            (
                ErrorKind::Unavailable,
                "; no managed identity is reachable here",
            )
        };
        Self::new(
            kind,
            Some(source),
            format!("{source}: {endpoint} did not answer in time{tail}"),
        )
    }

    /// A file the fetch needs could not be read: the Arc key (`arc_key_dir` is then the
    /// directory it must come from) or the federated token. A missing, oversized or
    /// non-regular Arc key is a security failure.
    pub(crate) fn file(source: Source, arc_key_dir: Option<&str>, error: FileError) -> Self {
        let (what, directory) = match arc_key_dir {
            Some(dir) => ("the Arc key file", dir),
            None => ("AZURE_FEDERATED_TOKEN_FILE", "its directory"),
        };
        let suspicious = if arc_key_dir.is_some() {
            ErrorKind::Security
        } else {
            ErrorKind::Configuration
        };
        let (kind, why) = match error.kind {
            FileErrorKind::NotFound => (
                suspicious,
                format!("{what} does not exist ({})", error.detail),
            ),
            FileErrorKind::TooLarge => (
                suspicious,
                format!("{what} is larger than allowed; refusing it"),
            ),
            FileErrorKind::NotRegularFile => (
                suspicious,
                format!("{what} is not a regular file (an Arc key must not be a symbolic link)"),
            ),
            FileErrorKind::NoAccess => (
                ErrorKind::Configuration,
                format!(
                    "the host gives no read access to {what}; preopen {directory} read-only (the azmi CLI does when it exists)"
                ),
            ),
            FileErrorKind::Other => (
                ErrorKind::Configuration,
                format!("{what} could not be read ({})", error.detail),
            ),
        };
        Self::new(kind, Some(source), format!("{source}: {why}"))
    }

    /// The source needs a file, and the host (proxy-wasm) has no file access. Never falls
    /// back to IMDS: the platform said it is something else.
    pub(crate) fn needs_files(source: Source) -> Self {
        let what = match source {
            Source::AzureArc => "the Arc challenge key",
            _ => "AZURE_FEDERATED_TOKEN_FILE",
        };
        Self::new(
            ErrorKind::Unavailable,
            Some(source),
            format!(
                "{source} needs to read a file ({what}), which this host cannot do (it has no file access); run the azmi component in a host with wasi:filesystem"
            ),
        )
    }

    /// Workload identity is configured without a client id.
    pub(crate) fn workload_needs_client_id() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Some(Source::WorkloadIdentity),
            "workload identity needs a client id: set AZURE_CLIENT_ID or pass a client id",
        )
    }

    /// Adds why the retries stopped: `retries_used + 1` attempts were made, and either the
    /// policy allows no more or the next one would pass the call's deadline.
    pub(crate) fn gave_up(mut self, attempts: u32, past_deadline: bool) -> Self {
        let attempts = match attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        if past_deadline {
            self.append(&format!(
                " (gave up after {attempts}: the next one would pass the call's deadline)"
            ));
        } else {
            self.append(&format!(" (gave up after {attempts})"));
        }
        self
    }

    /// Adds that this answer is remembered and repeated for `seconds` more.
    pub(crate) fn remembered(mut self, seconds: u64) -> Self {
        self.append(&format!(" (remembered: not asking again for {seconds} s)"));
        self
    }
}
