//! What the filter does with one request, and what a root callback asks the glue to do: the
//! values [`super::token_root::TokenRoot`] returns and `root.rs` / `stream.rs` perform.

use crate::error_report::{ErrorReport, class_name};
use crate::proto::{self, AccessToken, Error, ErrorClass};

/// Status of the local reply sent instead of an unauthenticated request.
pub const DENY_STATUS: u32 = 503;

/// The header value `Bearer <token>`. `Debug` never shows the token. Shared, not copied: a
/// root keeps the value of its cached token and every request's verdict points at it.
#[derive(Clone, PartialEq, Eq)]
pub struct Bearer(std::rc::Rc<str>);

impl Bearer {
    pub(crate) fn new(token: &AccessToken) -> Self {
        Self(format!("Bearer {}", token.secret()).into())
    }

    /// Whether `self` and `other` are the same value in memory (not a copy).
    #[cfg(test)]
    pub(crate) fn shares(&self, other: &Bearer) -> bool {
        std::rc::Rc::ptr_eq(&self.0, &other.0)
    }

    /// Whether this is the header value for `token`.
    pub(crate) fn carries(&self, token: &AccessToken) -> bool {
        self.0.strip_prefix("Bearer ") == Some(token.secret())
    }

    /// The header value. Treat it as a secret.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Bearer <redacted>")
    }
}

/// The `message` of every local reply. What went wrong is for the operator: it is in the
/// Envoy log, on the line that carries the reply's `request_id`.
pub const REPLY_MESSAGE: &str =
    "no token for this request; the Envoy log has the details under this request_id";

/// A local reply: status and JSON body, never containing a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status ([`DENY_STATUS`]).
    pub status: u32,
    /// `{"error": class, "message": REPLY_MESSAGE, "request_id": …}` plus `source` when
    /// known: see [`LocalReply::for_failure`].
    pub body: String,
}

impl LocalReply {
    /// The reply every client gets for `error`, reported in the log under `request_id`
    /// ([`failure_details`]).
    ///
    /// Any client can trigger it, so it says only what a client can act on: the error class
    /// (try again later, or fix the identity), the managed-identity source, and the id to find
    /// the details with. The core's message (it names the endpoint, ARM resource ids,
    /// subscription and resource group, and quotes up to 300 characters of the service's
    /// text), the status, the service's code and correlation id go to the log only.
    pub fn for_failure(error: &Error, request_id: &str) -> Self {
        let mut map = serde_json::Map::new();
        map.insert("error".into(), class_name(error.class()).into());
        map.insert("message".into(), REPLY_MESSAGE.into());
        map.insert("request_id".into(), request_id.into());
        if let Some(source) = error.mi_source() {
            map.insert("source".into(), source.id().into());
        }
        Self {
            status: DENY_STATUS,
            body: serde_json::Value::Object(map).to_string(),
        }
    }
}

/// The operator's side of a failure: `request_id <id>: ` and the core's full error report
/// (class, message, source, status, code, correlation id), as the `azmi` CLI prints it.
pub fn failure_details(error: &Error, request_id: &str) -> String {
    format!(
        "request_id {request_id}: {}",
        ErrorReport::from_error(error).to_json()
    )
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Set the configured header to this value and continue.
    Forward(Bearer),
    /// Continue without a token (fail mode `allow`).
    ForwardUnauthenticated,
    /// Answer locally instead (fail mode `deny`; an upstream with no scope, `unmapped: deny`).
    Reply(LocalReply),
    /// Continue untouched: an upstream the configuration maps to no scope (`unmapped:
    /// pass`). The filter does not own its header, so a client's value is left as it is.
    PassThrough,
    /// Pause; the stream is resumed with one of the other verdicts when the fetch ends.
    Pause,
}

/// The answer to a new request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestStep {
    /// What to do with the request.
    pub verdict: Verdict,
    /// A line to log first: the details of a failure this request is the first to be
    /// answered with (never containing a token).
    pub log: Option<(Level, String)>,
    /// The root context has work (start a fetch or a refresh): wake it with a short tick.
    pub wake: bool,
}

/// Log levels the glue maps to proxy-wasm's.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Level {
    /// The diagnostics `AZURE_LOG_LEVEL=verbose` asks for (cache hits and misses).
    Debug,
    /// A token was obtained; the diagnostics of `info` (requests, answers, waits).
    Info,
    /// A fetch or refresh failed; a host call failed.
    Warn,
    /// The filter cannot work (bad configuration, an environment refused at start).
    Error,
}

impl Level {
    /// The Envoy level of a diagnostics level (`AZURE_LOG_LEVEL`): error → error, warning →
    /// warn, info → info, verbose → debug.
    pub fn of(level: proto::Level) -> Self {
        match level {
            proto::Level::Error => Level::Error,
            proto::Level::Warning => Level::Warn,
            proto::Level::Info => Level::Info,
            proto::Level::Verbose => Level::Debug,
        }
    }
}

/// What a root callback asks the glue to do, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Paused streams to resume (context id, verdict), in arrival order.
    pub resume: Vec<(u32, Verdict)>,
    /// Lines to log (never containing a token).
    pub log: Vec<(Level, String)>,
    /// Token requests sent (the `azmi.token_requests` counter).
    pub token_requests: u64,
    /// Fetches (and proactive refreshes) that ended without a token, by class (the
    /// `azmi.token_failures.*` counters).
    pub token_failures: Vec<ErrorClass>,
}

impl Effects {
    /// Adds `other`'s effects after these.
    pub fn append(&mut self, mut other: Effects) {
        self.resume.append(&mut other.resume);
        self.log.append(&mut other.log);
        self.token_requests += other.token_requests;
        self.token_failures.append(&mut other.token_failures);
    }
}
