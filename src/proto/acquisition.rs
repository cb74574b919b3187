//! One token fetch as a state machine: the adapter sends what `poll_action` asks for and
//! feeds back what happened.

use super::cache::CacheKey;
use super::error::{Error, ErrorKind};
use super::http::{HttpRequest, HttpResponse, TransportError, TransportErrorKind};
use super::response::{classify_failure, parse_token};
use super::selector::IdentitySelector;
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;

/// Slack on top of the per-attempt timeouts before the core gives up on its own (the host
/// enforces the real timeouts; this backstop catches a host that does not).
const DEADLINE_SLACK_MS: u64 = 1_000;

/// What the adapter must do next.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// Send this request and report the result with [`Acquisition::handle_response`] or
    /// [`Acquisition::handle_transport_error`].
    Send(HttpRequest),
}

/// One token fetch.
///
/// Call order (quinn style): loop { `poll_outcome` → done; `poll_action` → perform it and call
/// the matching `handle_*`; otherwise wait until `poll_timeout` and call `handle_timeout` }.
/// Every `handle_*` takes the current wall-clock time.
#[derive(Debug)]
pub struct Acquisition {
    key: CacheKey,
    selector: IdentitySelector,
    /// `scheme://authority (VARIABLE)`, for messages.
    endpoint: String,
    next: Option<HttpRequest>,
    /// Set while a request is in flight; `None` before sending and once finished.
    deadline: Option<UnixMillis>,
    outcome: Option<Result<AccessToken, Error>>,
    /// This credential already got a token from this source, so no answer now is a failure,
    /// not a sign that no managed identity is here (§7.3).
    answered_before: bool,
}

impl Acquisition {
    pub(crate) fn new(
        key: CacheKey,
        selector: IdentitySelector,
        request: HttpRequest,
        endpoint_variable: &str,
    ) -> Self {
        let endpoint = format!(
            "{}://{} ({endpoint_variable})",
            request.scheme.as_str(),
            request.authority
        );
        Self {
            key,
            selector,
            endpoint,
            next: Some(request),
            deadline: None,
            outcome: None,
            answered_before: false,
        }
    }

    /// Marks that the source already issued a token to this credential (see §7.3).
    pub(crate) fn with_answered_before(mut self, answered_before: bool) -> Self {
        self.answered_before = answered_before;
        self
    }

    /// The source this fetch talks to.
    pub fn source(&self) -> Source {
        self.key.source
    }

    /// The cache key the result will be stored under.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// The next thing to do, if any. `now` starts the attempt's deadline.
    pub fn poll_action(&mut self, now: UnixMillis) -> Option<Action> {
        let request = self.next.take()?;
        let t = request.timeouts;
        self.deadline =
            Some(now.plus_millis(
                t.connect_ms + t.first_byte_ms + t.between_bytes_ms + DEADLINE_SLACK_MS,
            ));
        Some(Action::Send(request))
    }

    /// When the core wants `handle_timeout` called, if ever.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.outcome.is_none().then_some(self.deadline).flatten()
    }

    /// The finished result, once there is one (taken once).
    pub fn poll_outcome(&mut self) -> Option<Result<AccessToken, Error>> {
        self.outcome.take()
    }

    /// The response to the last request, received at `now`. Ignored when no request is in
    /// flight; an answer at or after the deadline counts as the timeout.
    pub fn handle_response(&mut self, now: UnixMillis, response: HttpResponse) {
        if !self.in_time(now) {
            return;
        }
        let source = self.key.source;
        let outcome = if (200..300).contains(&response.status) {
            parse_token(source, &response.body, now)
        } else {
            Err(classify_failure(
                source,
                &self.selector,
                &self.key.resource,
                &response,
            ))
        };
        self.finish(outcome);
    }

    /// The last request got no response. Ignored when no request is in flight; a report at or
    /// after the deadline counts as the timeout.
    pub fn handle_transport_error(&mut self, now: UnixMillis, error: TransportError) {
        if !self.in_time(now) {
            return;
        }
        let source = self.key.source;
        let endpoint = &self.endpoint;
        let (kind, message) = match error.kind {
            TransportErrorKind::ResponseTooLarge => (
                ErrorKind::InvalidResponse,
                format!(
                    "{source}: the response was larger than the 1 MiB limit ({}); this is not a managed-identity endpoint",
                    error.detail
                ),
            ),
            TransportErrorKind::Tls => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: the TLS certificate of {endpoint} was not accepted ({}); trust its CA through the host (the azmi CLI reads SSL_CERT_FILE)",
                    error.detail
                ),
            ),
            TransportErrorKind::Denied => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: the host refused to connect to {endpoint}: {}; allow the endpoint in the host's outbound HTTP policy",
                    error.detail
                ),
            ),
            _ if self.answered_before => (
                // §7.3: Unavailable only before any successful response.
                ErrorKind::Transport,
                format!(
                    "{source}: no response from {endpoint}: {}, though it answered before; retry later",
                    error.detail
                ),
            ),
            _ => (
                // §7.3: no response from the source at all means it is not here.
                ErrorKind::Unavailable,
                format!(
                    "{source}: no response from {endpoint}: {}; no managed identity is reachable here",
                    error.detail
                ),
            ),
        };
        self.finish(Err(Error::new(kind, Some(source), message)));
    }

    /// Time passed; gives up when the deadline is reached.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        if self.outcome.is_some() || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        let source = self.key.source;
        let error = if self.answered_before {
            Error::new(
                ErrorKind::Transport,
                Some(source),
                format!(
                    "{source}: {} did not answer in time, though it answered before; retry later",
                    self.endpoint
                ),
            )
        } else {
            Error::new(
                ErrorKind::Unavailable,
                Some(source),
                format!(
                    "{source}: {} did not answer in time; no managed identity is reachable here",
                    self.endpoint
                ),
            )
        };
        self.finish(Err(error));
    }

    /// True when a request is in flight and `now` is before its deadline. A late answer
    /// triggers the backstop instead (a blocking host that ignores the timeouts can only
    /// report late, so this is where `drive` sees the deadline), and an answer with nothing in
    /// flight (after the outcome) must not replace or resurrect the outcome.
    fn in_time(&mut self, now: UnixMillis) -> bool {
        match self.deadline {
            None => false,
            Some(deadline) if now >= deadline => {
                self.handle_timeout(now);
                false
            }
            Some(_) => true,
        }
    }

    fn finish(&mut self, outcome: Result<AccessToken, Error>) {
        self.deadline = None;
        self.outcome = Some(outcome);
    }
}
