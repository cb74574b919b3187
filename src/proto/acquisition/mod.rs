// About 390 lines, on purpose: the fetch's one `Stage` enum, its fields and the dispatch of
// every input live together so the state machine reads in one place; the legs, attempts,
// outcome and timers are the submodules.

//! One token fetch as a state machine. The host performs what it is asked for and feeds back
//! what happened; the fetch never touches the network, a clock, a file or an RNG itself.
//!
//! ```text
//!                         ┌──────────── Backoff (retryable failure, time left) ◄──────┐
//!                         ▼                                                           │
//!   new ──► [Probe] ──► begin ──► Token ─────────────── 2xx ──► Done(token)           │
//!            IMDS,          │       │                    other ─► Done(error) or ─────┤
//!            asked once     │       │                                                 │
//!                           ├──► ArcChallenge ─ 401 ─► ArcKey ─ key ─► ArcAuthorized ─┤
//!                           │    (Azure Arc)           (read the      (second 401 =   │
//!                           │                           key file)      Done(error))   │
//!                           └──► Assertion ─ read ─► Token (workload identity) ───────┘
//!                                (skipped while the credential holds a recent one)
//! ```
//!
//! * **Legs.** Every source sends one request ([`Stage::Token`]), except two: Azure Arc answers
//!   a first request with a 401 challenge naming a key file, and the key authorizes a second
//!   request ([`arc`]); workload identity first reads the federated token file, which completes
//!   the form body ([`workload`]). IMDS inside a credential chain is probed first ([`probe`]).
//! * **Retries** ([`attempt`]). A retryable failure (the source's [`crate::proto::retry::RetryPolicy`]) schedules
//!   the next attempt after a jittered backoff, or the server's `Retry-After` when longer, and
//!   restarts at `begin`; the attempt that would pass the call's deadline is not made.
//! * **Time.** Each request runs against a [`timer::Timer::Attempt`] backstop; the call as a
//!   whole against the call deadline. A response reported at or after its deadline counts as
//!   the timeout, and a response with nothing in flight is ignored.
//! * **Outcome.** [`Acquisition::poll_outcome`] hands over the result together with what the
//!   credential must remember (the probe answered, the federated token read, the throttle
//!   wait, the token being refreshed): [`crate::proto::ManagedIdentity::finish`] absorbs it.
//!
//! Secrets the fetch uses are scrubbed from everything it reports ([`crate::proto::secret`]).
//!
//! Call order (quinn style): [`Acquisition::poll`] until it says `Done`, performing each
//! action and reporting it with the matching `handle_*`; every `handle_*` takes the current
//! wall-clock time. The finer polls (`poll_action`, `poll_timeout`, `poll_outcome`) are there
//! for tests that step a fetch by hand.

mod arc;
mod attempt;
mod outcome;
mod probe;
mod timer;
mod workload;

pub use outcome::Outcome;
pub(crate) use outcome::Report;
pub(crate) use probe::probe_request;
#[cfg(feature = "client-certificate")]
pub(crate) use workload::CertificateLeg;
pub(crate) use workload::{AssertionRead, WorkloadLeg};

use super::cache::CacheKey;
use super::error::Error;
use super::files::{FileError, FileRead};
use super::http::{HttpRequest, HttpResponse};
use super::response::{classify_failure, parse_token};
use super::retry::{Jitter, RetryPolicy, retry_after_ms};
use super::secret::{Secret, scrub};
use super::selector::IdentitySelector;
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;
use timer::{Timer, Timers};

/// Slack on top of the per-attempt timeouts before the core gives up on its own (the host
/// enforces the real timeouts; this backstop catches a host that does not).
const DEADLINE_SLACK_MS: u64 = 1_000;
/// A fetch makes at most a few dozen requests (retries included) and polls a few times per
/// request; past this many polls it is a bug, reported instead of spinning.
pub(super) const MAX_POLLS: u32 = 1_024;

/// What the host must do next.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// Send this request and report the result with [`Acquisition::handle_response`] or
    /// [`Acquisition::handle_transport_error`].
    Send(HttpRequest),
    /// Read this file and report it with [`Acquisition::handle_file`].
    ReadFile(FileRead),
}

/// The answer of [`Acquisition::poll`].
#[derive(Debug)]
#[must_use]
pub enum Poll {
    /// Perform this action and report its result.
    Act(Action),
    /// Nothing to do until this instant (or until the response in flight arrives): then poll
    /// again.
    Wait(UnixMillis),
    /// Finished: hand this to [`crate::proto::ManagedIdentity::finish`].
    Done(Outcome),
}

/// Where the fetch is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// The IMDS availability probe is in flight.
    Probe,
    /// The token request is in flight (every source's last request).
    Token,
    /// Azure Arc: the unauthenticated request is in flight; a 401 challenge is expected.
    ArcChallenge,
    /// Azure Arc: the key file the challenge named is being read.
    ArcKey,
    /// Azure Arc: the request carrying the key is in flight.
    ArcAuthorized,
    /// Workload identity: the federated token file is being read.
    Assertion,
    /// Waiting for [`Timer::Backoff`] before the next attempt.
    Backoff,
    /// Finished; the outcome waits to be polled (or was).
    Done,
}

/// Per-fetch settings from the credential.
#[derive(Debug)]
pub(crate) struct Options {
    /// Give up at this instant, retries included.
    pub call_deadline: UnixMillis,
    /// Seeds the jitter.
    pub seed: u64,
    /// Send this probe first.
    pub probe: Option<HttpRequest>,
    /// The source already issued a token to this credential, so no answer now is a failure,
    /// not a sign that no managed identity is here.
    pub answered_before: bool,
    /// The cached token this fetch refreshes.
    pub refreshing: Option<AccessToken>,
    /// Workload identity's leg data.
    pub workload: Option<WorkloadLeg>,
    /// Secrets the request carries besides its sensitive headers (the environment
    /// credential's client secret, in the body), scrubbed from everything reported.
    pub body_secrets: Vec<Secret>,
}

/// One token fetch. See the module documentation for its states.
#[derive(Debug)]
pub struct Acquisition {
    key: CacheKey,
    selector: IdentitySelector,
    /// `scheme://authority (VARIABLE)`, for messages.
    endpoint: String,
    /// The first request; Arc's second request and workload identity's body derive from it.
    request: HttpRequest,
    stage: Stage,
    next: Option<Action>,
    timers: Timers,
    outcome: Option<Outcome>,
    /// Secret values that must never appear in a message (service text can echo them).
    secrets: Vec<Secret>,
    policy: RetryPolicy,
    retries: u32,
    jitter: Jitter,
    call_deadline: UnixMillis,
    /// The total timeout of the request last handed out, for hosts that take one number.
    send_timeout_ms: u64,
    polls: u32,
    answered_before: bool,
    probe: Option<HttpRequest>,
    workload: Option<WorkloadLeg>,
    report: Report,
}

impl Acquisition {
    pub(crate) fn new(
        key: CacheKey,
        selector: IdentitySelector,
        request: HttpRequest,
        endpoint_variable: &str,
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
            .chain(options.body_secrets)
            .collect();
        let policy = *key.source.spec().retry;
        let mut acquisition = Self {
            report: Report {
                key: key.clone(),
                probe_answered: false,
                assertion: None,
                assertion_rejected: false,
                throttle_ms: None,
                refreshing: options.refreshing,
            },
            key,
            selector,
            endpoint,
            request,
            stage: Stage::Token,
            next: None,
            timers: Timers::default(),
            outcome: None,
            secrets,
            policy,
            retries: 0,
            jitter: Jitter::new(options.seed),
            call_deadline: options.call_deadline,
            send_timeout_ms: 0,
            polls: 0,
            answered_before: options.answered_before,
            probe: options.probe,
            workload: options.workload,
        };
        acquisition.begin();
        acquisition
    }

    /// Starts an attempt: the probe if one is pending, else the source's first leg.
    fn begin(&mut self) {
        if let Some(probe) = self.probe.take() {
            self.send(probe, Stage::Probe);
            return;
        }
        match self.key.source {
            Source::AzureArc => self.send(self.request.clone(), Stage::ArcChallenge),
            Source::WorkloadIdentity | Source::ClientCertificate => self.begin_workload(),
            _ => self.send(self.request.clone(), Stage::Token),
        }
    }

    /// The source this fetch talks to.
    pub fn source(&self) -> Source {
        self.key.source
    }

    /// The cache key the result will be stored under.
    pub(crate) fn key(&self) -> &CacheKey {
        &self.key
    }

    /// True when this fetch refreshes a cached token that is still usable.
    pub fn is_refresh(&self) -> bool {
        self.report.refreshing.is_some()
    }

    /// Retries done so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The whole next step at `now`: fires an expired timer, then hands out the outcome, the
    /// next action, or the instant to poll again.
    pub fn poll(&mut self, now: UnixMillis) -> Poll {
        if self.timers.next().is_some_and(|t| now >= t) {
            self.handle_timeout(now);
        }
        if let Some(outcome) = self.poll_outcome() {
            return Poll::Done(outcome);
        }
        self.polls += 1;
        if self.polls > MAX_POLLS {
            self.finish(Err(Error::internal("the token fetch did not settle")));
        } else if let Some(action) = self.poll_action(now) {
            return Poll::Act(action);
        } else if let Some(at) = self.poll_timeout() {
            return Poll::Wait(at);
        } else {
            self.finish(Err(Error::internal(
                "the token fetch stopped without an outcome",
            )));
        }
        match self.poll_outcome() {
            Some(outcome) => Poll::Done(outcome),
            None => unreachable!("finish sets the outcome"),
        }
    }

    /// The next thing to do, if any. `now` starts a request's deadline.
    pub fn poll_action(&mut self, now: UnixMillis) -> Option<Action> {
        let mut action = self.next.take()?;
        if let Action::Send(request) = &mut action {
            // The deadline holds on the wire: no phase, and not the whole exchange, may take
            // longer than what is left of the call.
            let left = now.millis_until(self.call_deadline);
            request.timeouts = request.timeouts.cut_to(left);
            self.send_timeout_ms = request.timeouts.total_ms;
            let backstop = now.plus_millis(request.timeouts.total_ms + DEADLINE_SLACK_MS);
            self.timers.set(
                Timer::Attempt,
                backstop.min(self.call_deadline.max(now.plus_millis(1))),
            );
        }
        Some(action)
    }

    /// The total time the request last handed out by [`Acquisition::poll_action`] may take,
    /// in milliseconds (its `timeouts.total_ms`, already cut to what is left of the call's
    /// deadline). For hosts that take one timeout per request (proxy-wasm's
    /// `dispatch_http_call`).
    pub fn send_timeout_ms(&self) -> u64 {
        self.send_timeout_ms
    }

    /// When the core wants `handle_timeout` called, if ever.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.timers.next()
    }

    /// The finished result, once there is one (taken once).
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }

    /// The response to the last request, received at `now`. Ignored when no request is in
    /// flight; an answer at or after the deadline counts as the timeout.
    pub fn handle_response(&mut self, now: UnixMillis, response: HttpResponse) {
        if !self.in_time(now) {
            return;
        }
        self.timers.stop(Timer::Attempt);
        let success = (200..300).contains(&response.status);
        match self.stage {
            Stage::Probe => self.on_probe_answer(&response),
            Stage::ArcChallenge if response.status == 401 => self.on_arc_challenge(&response),
            Stage::ArcAuthorized if response.status == 401 => {
                self.finish(Err(Error::arc_second_challenge(self.key.source)))
            }
            _ if success => {
                let echo = self.arc_echo();
                let outcome = parse_token(
                    self.key.source,
                    &response.body,
                    now,
                    echo.as_ref(),
                    &self.secrets,
                );
                self.finish(outcome);
            }
            _ => {
                if self.stale_assertion_refused(&response) {
                    return self.begin_workload();
                }
                let response = HttpResponse {
                    body: scrub(response.body, &self.secrets),
                    ..response
                };
                let error = classify_failure(
                    self.key.source,
                    &self.selector,
                    &self.key.resource,
                    &response,
                    &self.secrets,
                );
                if self.policy.retries_status(response.status) {
                    let wait = retry_after_ms(&response, now);
                    self.retry_or_finish(now, error, wait);
                } else {
                    self.finish(Err(error));
                }
            }
        }
    }

    /// The file asked for by [`Action::ReadFile`], read at `now`. Ignored when no read is
    /// outstanding.
    pub fn handle_file(&mut self, now: UnixMillis, result: Result<Vec<u8>, FileError>) {
        match (self.stage, result) {
            (Stage::ArcKey, Ok(contents)) => self.on_arc_key(&contents),
            (Stage::Assertion, Ok(contents)) => self.on_assertion(now, &contents),
            (Stage::ArcKey, Err(error)) => self.finish(Err(Error::file(
                self.key.source,
                Some(super::arc::ARC_KEY_DIR),
                error,
            ))),
            (Stage::Assertion, Err(error)) => {
                self.finish(Err(Error::file(self.key.source, None, error)))
            }
            _ => {}
        }
    }

    fn send(&mut self, request: HttpRequest, stage: Stage) {
        self.stage = stage;
        self.next = Some(Action::Send(request));
    }

    fn read(&mut self, read: FileRead, stage: Stage) {
        self.stage = stage;
        self.next = Some(Action::ReadFile(read));
    }

    fn finish(&mut self, result: Result<AccessToken, Error>) {
        self.stage = Stage::Done;
        self.timers.clear();
        self.next = None;
        let result = result.map_err(|mut error| {
            for secret in &self.secrets {
                error.redact(&secret.0);
            }
            error
        });
        let report = Report {
            key: self.key.clone(),
            probe_answered: self.report.probe_answered,
            assertion: self.report.assertion.take(),
            assertion_rejected: self.report.assertion_rejected,
            throttle_ms: self.report.throttle_ms,
            refreshing: self.report.refreshing.take(),
        };
        self.outcome = Some(Outcome { result, report });
    }
}
