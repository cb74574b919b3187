//! One token fetch as a state machine: the adapter performs what `poll_action` asks for and
//! feeds back what happened. Covers the one-request sources, the Azure Arc challenge (§9) and
//! workload identity's federated-token read (§10).

use super::arc;
use super::cache::CacheKey;
use super::error::{Error, ErrorKind};
use super::files::{FileError, FileErrorKind, FileRead};
use super::http::{Header, HttpRequest, HttpResponse, TransportError, TransportErrorKind};
use super::request::workload_body;
use super::response::{Echo, classify_failure, parse_token};
use super::retry::{Jitter, RetryPolicy, retry_after_ms};
use super::selector::{IdentitySelector, SelectorKind};
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;
use super::workload::{ASSERTION_MAX_BYTES, assertion};

/// A secret value (shared secret, Arc key, federated token) whose `Debug` shows only its
/// length, so that deriving `Debug` on what holds it cannot leak it (§14 rule 16).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

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
    /// Read this file and report it with [`Acquisition::handle_file`].
    ReadFile(FileRead),
}

/// How the fetch proceeds after its first request.
#[derive(Clone, Debug)]
pub(crate) enum Flow {
    /// One request, one answer.
    Single,
    /// Azure Arc: a 401 challenge names a key file whose contents authorize a second request.
    Arc,
    /// Workload identity: the federated token (cached or read from `token_file`) completes
    /// the form body.
    Workload {
        client_id: String,
        scope: String,
        token_file: String,
        cached_assertion: Option<Secret>,
    },
}

/// Where the fetch is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for the answer to the IMDS availability probe (§14 rule 23).
    Probe,
    /// Waiting for the token response.
    Token,
    /// Arc: waiting for the 401 challenge.
    ArcChallenge,
    /// Arc: waiting for the key file.
    ArcKey,
    /// Arc: waiting for the answer to the authorized request (a second 401 is a failure).
    ArcAuthorized,
    /// Workload identity: waiting for the federated token file.
    Assertion,
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
    /// The first request; Arc's second leg and workload identity's body derive from it.
    request: HttpRequest,
    flow: Flow,
    stage: Stage,
    next: Option<Action>,
    /// Set while a request is in flight; `None` before sending and once finished.
    deadline: Option<UnixMillis>,
    outcome: Option<Result<AccessToken, Error>>,
    /// This credential already got a token from this source, so no answer now is a failure,
    /// not a sign that no managed identity is here (§7.3).
    answered_before: bool,
    /// The federated token read during this fetch, with when, for the credential to keep.
    assertion_read: Option<(Secret, UnixMillis)>,
    /// Secret values that must never appear in a message (service text can echo them).
    secrets: Vec<Secret>,
    /// The source's retry rules (§8, §14 rules 17–20).
    policy: RetryPolicy,
    /// Retries done so far.
    retries: u32,
    /// Jitter, seeded from the host's randomness.
    jitter: Jitter,
    /// The whole fetch, retries included, gives up at this instant.
    call_deadline: UnixMillis,
    /// Waiting until then before retrying.
    retry_at: Option<UnixMillis>,
    /// The wait a failed final response asked for (429/5xx with `Retry-After`), for the
    /// credential's throttle memory (§14 rule 22).
    throttle_ms: Option<u64>,
    /// The availability probe to send before the token request, if any.
    probe: Option<HttpRequest>,
    /// The probe got an answer (any HTTP response): IMDS is there.
    probe_answered: bool,
    /// The cached token this fetch refreshes, served if the refresh fails (§14 rule 27).
    refreshing: Option<AccessToken>,
}

/// Per-fetch settings from the credential.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Give up at this instant, retries included.
    pub call_deadline: UnixMillis,
    /// Seeds the jitter.
    pub seed: u64,
    /// Send this probe first.
    pub probe: Option<HttpRequest>,
}

impl Acquisition {
    pub(crate) fn new(
        key: CacheKey,
        selector: IdentitySelector,
        request: HttpRequest,
        endpoint_variable: &str,
        flow: Flow,
        options: Options,
    ) -> Self {
        let endpoint = format!(
            "{}://{} ({endpoint_variable})",
            request.scheme.as_str(),
            request.authority
        );
        let secrets = request
            .headers
            .iter()
            .filter(|h| h.sensitive)
            .map(|h| Secret(h.value.clone()))
            .collect();
        let key_source = key.source;
        let mut acquisition = Self {
            key,
            selector,
            endpoint,
            request,
            flow,
            stage: Stage::Token,
            next: None,
            deadline: None,
            outcome: None,
            answered_before: false,
            assertion_read: None,
            secrets,
            policy: *key_source.spec().retry,
            retries: 0,
            jitter: Jitter::new(options.seed),
            call_deadline: options.call_deadline,
            retry_at: None,
            throttle_ms: None,
            probe: options.probe,
            probe_answered: false,
            refreshing: None,
        };
        acquisition.begin();
        acquisition
    }

    fn begin(&mut self) {
        if let Some(probe) = self.probe.take() {
            self.send(probe, Stage::Probe);
            return;
        }
        match &self.flow {
            Flow::Single => self.send(self.request.clone(), Stage::Token),
            Flow::Arc => self.send(self.request.clone(), Stage::ArcChallenge),
            Flow::Workload {
                cached_assertion: Some(assertion),
                ..
            } => {
                let assertion = assertion.0.clone();
                self.send_workload(&assertion);
            }
            Flow::Workload { token_file, .. } => {
                self.stage = Stage::Assertion;
                self.next = Some(Action::ReadFile(FileRead {
                    path: token_file.clone(),
                    max_len: ASSERTION_MAX_BYTES,
                    follow_symlinks: true,
                }));
            }
        }
    }

    /// Marks this fetch as the proactive refresh of `token` (still usable).
    pub(crate) fn refreshing(mut self, token: Option<AccessToken>) -> Self {
        self.refreshing = token;
        self
    }

    /// The token this fetch refreshes, if it is a proactive refresh.
    pub(crate) fn refreshing_token(&self) -> Option<&AccessToken> {
        self.refreshing.as_ref()
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

    /// The federated token file of a workload-identity fetch.
    pub(crate) fn token_file(&self) -> Option<&str> {
        match &self.flow {
            Flow::Workload { token_file, .. } => Some(token_file),
            _ => None,
        }
    }

    /// The federated token this fetch read, and when (workload identity only).
    pub(crate) fn assertion_read(&self) -> Option<&(Secret, UnixMillis)> {
        self.assertion_read.as_ref()
    }

    /// The next thing to do, if any. `now` starts a request's deadline.
    pub fn poll_action(&mut self, now: UnixMillis) -> Option<Action> {
        let action = self.next.take()?;
        if let Action::Send(request) = &action {
            let t = request.timeouts;
            let attempt = now.plus_millis(
                t.connect_ms + t.first_byte_ms + t.between_bytes_ms + DEADLINE_SLACK_MS,
            );
            self.deadline = Some(attempt.min(self.call_deadline.max(now.plus_millis(1))));
        }
        Some(action)
    }

    /// When the core wants `handle_timeout` called, if ever: the retry time while waiting to
    /// retry, else the in-flight request's deadline.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        if self.outcome.is_some() {
            return None;
        }
        self.retry_at.or(self.deadline)
    }

    /// Retries done so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The probe got an answer, so IMDS is there (the credential stops probing).
    pub(crate) fn probe_answered(&self) -> bool {
        self.probe_answered
    }

    /// The server's requested wait of a final 429/5xx, for the throttle memory.
    pub(crate) fn throttle_ms(&self) -> Option<u64> {
        self.throttle_ms
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
        self.deadline = None;
        let source = self.key.source;
        let success = (200..300).contains(&response.status);
        match self.stage {
            // §14 rule 23: any HTTP answer means IMDS is there, except a proxy's
            // "unreachable" 403 (Docker Desktop).
            Stage::Probe => {
                let unreachable = response.status == 403
                    && String::from_utf8_lossy(&response.body).contains("unreachable");
                if unreachable {
                    self.finish(Err(Error::new(
                        ErrorKind::Unavailable,
                        Some(source),
                        format!("IMDS: the availability probe of {} was answered by a proxy (403 unreachable); no managed identity is reachable here", self.endpoint),
                    )));
                } else {
                    self.probe_answered = true;
                    self.begin();
                }
            }
            // §9.1: the challenge names the key file; validate before asking to read it.
            Stage::ArcChallenge if response.status == 401 => {
                match arc::key_path(response.header("www-authenticate")) {
                    Ok(path) => {
                        self.stage = Stage::ArcKey;
                        self.next = Some(Action::ReadFile(FileRead {
                            path,
                            max_len: arc::ARC_KEY_MAX_BYTES,
                            follow_symlinks: false,
                        }));
                    }
                    Err(error) => self.finish(Err(error)),
                }
            }
            // §14 rule 12: exactly one challenge round trip.
            Stage::ArcAuthorized if response.status == 401 => self.finish(Err(Error::new(
                ErrorKind::Security,
                Some(source),
                "Azure Arc: the agent refused the key from its own challenge (a second 401); restart the Arc agent (himds)",
            ).with_service(Some(401), None, None))),
            _ if success => {
                let echo = self.echo();
                let outcome = parse_token(source, &response.body, now, echo.as_ref());
                self.finish(outcome);
            }
            _ => {
                let response = HttpResponse {
                    body: self.scrub(response.body),
                    ..response
                };
                let error = classify_failure(source, &self.selector, &self.key.resource, &response);
                if self.policy.retries_status(response.status) {
                    let wait = retry_after_ms(&response, now);
                    self.retry_or_finish(now, error, wait);
                } else {
                    self.finish(Err(error));
                }
            }
        }
    }

    /// The file asked for by [`Action::ReadFile`], read at `now`.
    pub fn handle_file(&mut self, now: UnixMillis, result: Result<Vec<u8>, FileError>) {
        let source = self.key.source;
        match (self.stage, result) {
            (Stage::ArcKey, Ok(contents)) => match arc::authorization(&contents) {
                Ok(value) => {
                    let mut request = self.request.clone();
                    // The key itself: an agent may echo it without the `Basic ` prefix.
                    let key = value.strip_prefix("Basic ").unwrap_or(&value);
                    self.secrets.push(Secret(key.to_string()));
                    request.headers.push(Header {
                        name: "Authorization",
                        value,
                        sensitive: true,
                    });
                    self.send(request, Stage::ArcAuthorized);
                }
                Err(error) => self.finish(Err(error)),
            },
            (Stage::Assertion, Ok(contents)) => match assertion(&contents) {
                Ok(assertion) => {
                    self.assertion_read = Some((Secret(assertion.clone()), now));
                    self.send_workload(&assertion);
                }
                Err(error) => self.finish(Err(error)),
            },
            (Stage::ArcKey | Stage::Assertion, Err(error)) => {
                let error = self.file_error(source, error);
                self.finish(Err(error));
            }
            // No file read is outstanding: ignore.
            _ => {}
        }
    }

    /// The last request got no response. Ignored when no request is in flight; a report at or
    /// after the deadline counts as the timeout.
    pub fn handle_transport_error(&mut self, now: UnixMillis, error: TransportError) {
        if !self.in_time(now) {
            return;
        }
        let source = self.key.source;
        let endpoint = &self.endpoint;
        if self.stage == Stage::Probe {
            // §14 rule 23: no retries; no answer means no managed identity here.
            let message = format!(
                "IMDS: the availability probe got no answer from {endpoint}: {}; no managed identity is reachable here",
                error.detail
            );
            self.finish(Err(Error::new(
                ErrorKind::Unavailable,
                Some(source),
                message,
            )));
            return;
        }
        // §14 rule 20: retry timeouts and broken connections. A connection that cannot even
        // be made (refused, unresolvable, connect timeout) to a source that never answered
        // proves nothing listens there: waiting 90 s for it helps nobody (deliberate; Go and
        // Python retry it, which is why their "no managed identity" answer takes seconds).
        let retryable = match error.kind {
            TransportErrorKind::Timeout | TransportErrorKind::Other => true,
            TransportErrorKind::ConnectionRefused
            | TransportErrorKind::Dns
            | TransportErrorKind::ConnectTimeout => self.answered_before,
            _ => false,
        };
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
        let error = Error::new(kind, Some(source), message);
        if retryable {
            self.retry_or_finish(now, error, None);
        } else {
            self.finish(Err(error));
        }
    }

    /// Time passed: retries when the retry time has come; gives up when a request's deadline
    /// is reached.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        if self.outcome.is_some() {
            return;
        }
        if let Some(at) = self.retry_at {
            if now >= at {
                self.retry_at = None;
                self.begin();
            }
            return;
        }
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        let source = self.key.source;
        let (kind, tail) = if self.answered_before {
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
        let message = format!("{source}: {} did not answer in time{tail}", self.endpoint);
        self.finish(Err(Error::new(kind, Some(source), message)));
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

    /// Schedules the next attempt after a retryable failure, or gives up with `error` when the
    /// retries or the call's deadline are used up. The wait is the policy's jittered backoff,
    /// or the server's `Retry-After` when longer (never shorter, §14 rule 19).
    fn retry_or_finish(&mut self, now: UnixMillis, mut error: Error, server_wait: Option<u64>) {
        let next = self.retries + 1;
        let attempts = match next {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        if next > self.policy.max_retries {
            error.append(&format!(" (gave up after {attempts})"));
            self.throttle_ms = server_wait;
            self.finish(Err(error));
            return;
        }
        let backoff = self.policy.backoff_ms(next, self.jitter.next_u64());
        let wait = backoff.max(server_wait.unwrap_or(0));
        let at = now.plus_millis(wait);
        if at >= self.call_deadline {
            error.append(&format!(
                " (gave up after {attempts}: the next one would pass the call's deadline)"
            ));
            self.throttle_ms = server_wait;
            self.finish(Err(error));
            return;
        }
        self.retries = next;
        self.retry_at = Some(at);
        self.deadline = None;
        self.next = None;
    }

    fn send(&mut self, request: HttpRequest, stage: Stage) {
        self.stage = stage;
        self.next = Some(Action::Send(request));
    }

    fn send_workload(&mut self, assertion: &str) {
        let Flow::Workload {
            client_id, scope, ..
        } = &self.flow
        else {
            return;
        };
        let mut request = self.request.clone();
        request.body = workload_body(client_id, scope, assertion);
        self.secrets.push(Secret(assertion.to_string()));
        self.send(request, Stage::Token);
    }

    /// `body` with every secret replaced by `<redacted>` before it is parsed and quoted: a
    /// service may echo a secret in any field (code, correlation id), and quoting cuts long
    /// text, which could leave a prefix that [`Error::redact`] no longer recognizes.
    fn scrub(&self, mut body: Vec<u8>) -> Vec<u8> {
        for secret in &self.secrets {
            let needle = secret.0.as_bytes();
            // The same floor as `Error::redact`.
            if needle.len() < 4 || !body.windows(needle.len()).any(|w| w == needle) {
                continue;
            }
            let mut out = Vec::with_capacity(body.len());
            let mut rest = body.as_slice();
            while !rest.is_empty() {
                if rest.starts_with(needle) {
                    out.extend_from_slice(b"<redacted>");
                    rest = &rest[needle.len()..];
                } else {
                    out.push(rest[0]);
                    rest = &rest[1..];
                }
            }
            body = out;
        }
        body
    }

    /// Arc user-assigned requests must be echoed back (§9.4, §14 rule 13).
    fn echo(&self) -> Option<Echo<'_>> {
        if !matches!(self.flow, Flow::Arc) {
            return None;
        }
        let fields: &'static [&'static str] = match self.selector.kind() {
            SelectorKind::SystemAssigned => return None,
            SelectorKind::ClientId => &["client_id"],
            SelectorKind::ObjectId => &["object_id"],
            SelectorKind::ResourceId => &["msi_res_id", "mi_res_id"],
        };
        Some(Echo {
            fields,
            expected: self.selector.value(),
        })
    }

    fn file_error(&self, source: Source, error: FileError) -> Error {
        let arc = self.stage == Stage::ArcKey;
        let (what, directory) = if arc {
            ("the Arc key file", arc::ARC_KEY_DIR)
        } else {
            ("AZURE_FEDERATED_TOKEN_FILE", "its directory")
        };
        let (kind, why) = match error.kind {
            FileErrorKind::NotFound => (
                if arc {
                    ErrorKind::Security
                } else {
                    ErrorKind::Configuration
                },
                format!("{what} does not exist ({})", error.detail),
            ),
            FileErrorKind::TooLarge => (
                if arc {
                    ErrorKind::Security
                } else {
                    ErrorKind::Configuration
                },
                format!("{what} is larger than allowed; refusing it"),
            ),
            FileErrorKind::NotRegularFile => (
                if arc {
                    ErrorKind::Security
                } else {
                    ErrorKind::Configuration
                },
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
        Error::new(kind, Some(source), format!("{source}: {why}"))
    }

    fn finish(&mut self, outcome: Result<AccessToken, Error>) {
        self.deadline = None;
        self.retry_at = None;
        self.next = None;
        let outcome = outcome.map_err(|mut error| {
            for secret in &self.secrets {
                error.redact(&secret.0);
            }
            error
        });
        self.outcome = Some(outcome);
    }
}
