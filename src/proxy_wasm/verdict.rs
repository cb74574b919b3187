//! What the filter does with one request, and what a root callback asks the glue to do: the
//! values [`super::token_root::TokenRoot`] returns and `root.rs` / `stream.rs` perform.

use crate::error_report::ErrorReport;
use crate::proto::{AccessToken, Error};

/// Status of the local reply sent instead of an unauthenticated request.
pub const DENY_STATUS: u32 = 503;

/// The header value `Bearer <token>`. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Bearer(String);

impl Bearer {
    pub(crate) fn new(token: &AccessToken) -> Self {
        Self(format!("Bearer {}", token.secret()))
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

/// A local reply: status and JSON body, never containing a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status ([`DENY_STATUS`]).
    pub status: u32,
    /// `{"error": …, "message": …}` plus `source`, `status`, `code`, `correlation_id` when
    /// known, as the `azmi` CLI prints them.
    pub body: String,
}

impl LocalReply {
    /// The reply that explains `error`.
    pub fn from_error(error: &Error) -> Self {
        Self {
            status: DENY_STATUS,
            body: ErrorReport::from_error(error).to_json(),
        }
    }
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Set the configured header to this value and continue.
    Forward(Bearer),
    /// Continue without a token (fail mode `allow`).
    ForwardUnauthenticated,
    /// Answer locally instead (fail mode `deny`).
    Reply(LocalReply),
    /// Pause; the stream is resumed with one of the other verdicts when the fetch ends.
    Pause,
}

/// The answer to a new request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestStep {
    /// What to do with the request.
    pub verdict: Verdict,
    /// The root context has work (start a fetch or a refresh): wake it with a short tick.
    pub wake: bool,
}

/// Log levels the glue maps to proxy-wasm's.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Level {
    /// A token was obtained.
    Info,
    /// A fetch or refresh failed.
    Warn,
}

/// What a root callback asks the glue to do, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Paused streams to resume (context id, verdict), in arrival order.
    pub resume: Vec<(u32, Verdict)>,
    /// Lines to log (never containing a token).
    pub log: Vec<(Level, String)>,
}
