//! The root context's state, without any host call: the cache, the single in-flight fetch,
//! the paused streams, and what to do with each when the fetch ends. The proxy-wasm glue
//! (`root.rs`, `stream.rs`) performs what these methods return, so all of the filter's
//! decisions are unit-tested natively.

use super::config::{FailMode, FilterConfig};
use crate::proto::{
    AccessToken, Acquisition, Action, EnvSnapshot, Error, ErrorClass, FileError, FileErrorKind,
    HostFacts, HttpRequest, HttpResponse, IdentitySelector, ManagedIdentity, Start, TokenRequest,
    TransportError, UnixMillis,
};

/// After a failed fetch, requests in this window get the same answer without a new token
/// request: a failing endpoint is asked at most about once a second per worker, whatever the
/// request rate.
pub const FAILURE_HOLD_MS: u64 = 1_000;
/// Status of the local reply sent instead of an unauthenticated request.
pub const DENY_STATUS: u32 = 503;
/// Bound on actions handled in one callback: a state-machine bug fails instead of spinning.
const MAX_STEPS: usize = 64;

/// The header value `Bearer <token>`. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Bearer(String);

impl Bearer {
    fn new(token: &AccessToken) -> Self {
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
        let class = match error.class() {
            ErrorClass::CredentialUnavailable => "credential_unavailable",
            ErrorClass::AuthenticationFailed => "authentication_failed",
            ErrorClass::InvalidArgument => "invalid_argument",
        };
        let mut body = serde_json::Map::new();
        body.insert("error".into(), class.into());
        body.insert("message".into(), error.message().into());
        if let Some(source) = error.mi_source() {
            body.insert("source".into(), source.id().into());
        }
        if let Some(status) = error.status() {
            body.insert("status".into(), status.into());
        }
        if let Some(code) = error.code() {
            body.insert("code".into(), code.into());
        }
        if let Some(id) = error.correlation_id() {
            body.insert("correlation_id".into(), id.into());
        }
        Self {
            status: DENY_STATUS,
            body: serde_json::Value::Object(body).to_string(),
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

/// How the glue sends a token request: `dispatch_http_call` in Envoy, a script in tests.
pub trait Dispatch {
    /// Starts `request` with the given total timeout; returns the call id whose response (or
    /// failure) is later passed to [`TokenRoot::on_response`].
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u32) -> Result<u32, TransportError>;
}

/// The fetch in flight.
#[derive(Debug)]
struct Fetch {
    acquisition: Box<Acquisition>,
    /// The call id of the request in flight, if any.
    call: Option<u32>,
}

/// A failed fetch, answered again until `until`.
#[derive(Debug)]
struct Failure {
    error: Error,
    until: UnixMillis,
}

/// One root context's state: one scope and identity, one cache, at most one fetch.
#[derive(Debug)]
pub struct TokenRoot {
    config: FilterConfig,
    selector: IdentitySelector,
    env: EnvSnapshot,
    identity: ManagedIdentity,
    fetch: Option<Fetch>,
    /// Paused streams, in arrival order.
    waiting: Vec<u32>,
    failure: Option<Failure>,
    /// The token last obtained: still served while the core has a proactive refresh due
    /// (the core's cache answers `None` then, so that someone starts the refresh).
    current: Option<AccessToken>,
    /// A wake-up tick was asked for and has not come yet.
    wake_pending: bool,
    /// Counts fetches: with the time, the seed of the request id.
    fetches: u64,
    /// Set when the environment cannot work at all (e.g. Azure Arc needs a file).
    refused: Option<Error>,
}

impl TokenRoot {
    /// The state for `config` with the VM's managed-identity variables `env`. An environment
    /// that cannot work at all (Azure Arc and workload identity need files; a selector the
    /// source refuses) is found here, without sending anything, and every request gets it.
    pub fn new(config: FilterConfig, env: EnvSnapshot, now: UnixMillis) -> Self {
        let selector = config.selector();
        let refused = ManagedIdentity::new()
            .start(now, &config.scope, &selector, &env, host_facts(), [0; 16])
            .err();
        Self {
            config,
            selector,
            env,
            identity: ManagedIdentity::new(),
            fetch: None,
            waiting: Vec::new(),
            failure: None,
            current: None,
            wake_pending: false,
            fetches: 0,
            refused,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FilterConfig {
        &self.config
    }

    /// Why no request can get a token in this environment, if so (log it at start).
    pub fn refused(&self) -> Option<&Error> {
        self.refused.as_ref()
    }

    /// A new request (stream `context_id`) at `now`.
    pub fn on_request(&mut self, now: UnixMillis, context_id: u32) -> RequestStep {
        if let Some(error) = &self.refused {
            return self.step(self.failed(error), false);
        }
        match self
            .identity
            .cached(now, &self.config.scope, &self.selector)
        {
            Ok(Some(token)) => {
                let bearer = Bearer::new(token);
                return self.step(Verdict::Forward(bearer), false);
            }
            Ok(None) => {}
            Err(error) => return self.step(self.failed(&error), false),
        }
        // The core wants a fetch: a miss, or a proactive refresh of a token still usable.
        if let Some(token) = self.current.as_ref().filter(|t| t.is_fresh(now)) {
            let bearer = Bearer::new(token);
            let wake = self.fetch.is_none() && self.ask_wake();
            return self.step(Verdict::Forward(bearer), wake);
        }
        if self.fetch.is_none()
            && let Some(failure) = &self.failure
            && now < failure.until
        {
            return self.step(self.failed(&failure.error), false);
        }
        self.waiting.push(context_id);
        let wake = self.fetch.is_none() && self.ask_wake();
        self.step(Verdict::Pause, wake)
    }

    fn step(&self, verdict: Verdict, wake: bool) -> RequestStep {
        RequestStep { verdict, wake }
    }

    fn ask_wake(&mut self) -> bool {
        !std::mem::replace(&mut self.wake_pending, true)
    }

    /// True while stream `context_id` is paused waiting for a token (its body and trailers
    /// must pause too).
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.waiting.contains(&context_id)
    }

    /// Stream `context_id` ended (client gone): forget it.
    pub fn on_stream_done(&mut self, context_id: u32) {
        self.waiting.retain(|&id| id != context_id);
    }

    /// The root's tick at `now`: starts the fetch (or proactive refresh) that requests asked
    /// for, or passes time to the one in flight.
    pub fn on_tick(&mut self, now: UnixMillis, dispatch: &mut impl Dispatch) -> Effects {
        self.wake_pending = false;
        if let Some(fetch) = &mut self.fetch {
            if fetch.acquisition.poll_timeout().is_some_and(|t| now >= t) {
                fetch.acquisition.handle_timeout(now);
            }
            return self.pump(now, dispatch);
        }
        if self.refused.is_some() {
            return Effects::default();
        }
        let needed = match self
            .identity
            .cached(now, &self.config.scope, &self.selector)
        {
            Ok(Some(_)) => false,
            // A miss with nobody waiting is a refresh due.
            Ok(None) => !self.waiting.is_empty() || self.current.is_some(),
            Err(_) => false,
        };
        if !needed {
            return self.resume_all_with_cache(now);
        }
        self.start(now, dispatch)
    }

    /// Requests that paused while a fetch was ending find the token cached.
    fn resume_all_with_cache(&mut self, now: UnixMillis) -> Effects {
        if self.waiting.is_empty() {
            return Effects::default();
        }
        match self
            .identity
            .cached(now, &self.config.scope, &self.selector)
        {
            Ok(Some(token)) => {
                let token = token.clone();
                self.succeeded(&token)
            }
            _ => Effects::default(),
        }
    }

    /// The response to call `call` (or why none came), at `now`.
    pub fn on_response(
        &mut self,
        now: UnixMillis,
        call: u32,
        result: Result<HttpResponse, TransportError>,
        dispatch: &mut impl Dispatch,
    ) -> Effects {
        let Some(fetch) = self.fetch.as_mut().filter(|f| f.call == Some(call)) else {
            // A call the fetch gave up on (deadline passed): nothing waits for it.
            return Effects::default();
        };
        fetch.call = None;
        match result {
            Ok(response) => fetch.acquisition.handle_response(now, response),
            Err(error) => fetch.acquisition.handle_transport_error(now, error),
        }
        self.pump(now, dispatch)
    }

    /// When the root wants its next tick, in milliseconds from `now`; `None`: no tick needed
    /// (requests wake the root when they need it).
    pub fn next_tick_ms(&self, now: UnixMillis) -> Option<u64> {
        if self.wake_pending {
            return Some(1);
        }
        let deadline = self.fetch.as_ref()?.acquisition.poll_timeout()?;
        Some(now.millis_until(deadline).max(1))
    }

    /// Starts a fetch: the core decides whether it is a first fetch or a proactive refresh.
    fn start(&mut self, now: UnixMillis, dispatch: &mut impl Dispatch) -> Effects {
        self.fetches += 1;
        let request = TokenRequest {
            timeout_ms: self.config.timeout_ms.map(u64::from),
            ..TokenRequest::new(&self.config.scope, &self.selector)
        };
        let started = self.identity.start_with(
            now,
            &request,
            &self.env,
            host_facts(),
            seed(now, self.fetches),
        );
        match started {
            Ok(Start::Fetch(acquisition)) => {
                self.fetch = Some(Fetch {
                    acquisition,
                    call: None,
                });
                self.pump(now, dispatch)
            }
            Ok(Start::Cached(token)) => self.succeeded(&token),
            // Only this root starts fetches, and it has none in flight.
            Ok(Start::Wait) => Effects::default(),
            Err(error) => self.fetch_failed(now, error),
        }
    }

    /// Performs the fetch's actions until it waits for a response or a timeout, or ends.
    fn pump(&mut self, now: UnixMillis, dispatch: &mut impl Dispatch) -> Effects {
        for _ in 0..MAX_STEPS {
            let Some(fetch) = self.fetch.as_mut() else {
                return Effects::default();
            };
            if let Some(outcome) = fetch.acquisition.poll_outcome() {
                return self.finish(now, outcome);
            }
            match fetch.acquisition.poll_action(now) {
                Some(Action::Send(request)) => {
                    let t = request.timeouts;
                    let attempt = t.connect_ms + t.first_byte_ms + t.between_bytes_ms;
                    let attempt = self
                        .config
                        .timeout_ms
                        .map_or(attempt, |limit| attempt.min(u64::from(limit)));
                    let timeout = u32::try_from(attempt).unwrap_or(u32::MAX);
                    match dispatch.dispatch(&request, timeout) {
                        Ok(call) => {
                            fetch.call = Some(call);
                            return Effects::default();
                        }
                        Err(error) => fetch.acquisition.handle_transport_error(now, error),
                    }
                }
                // Cannot happen (`no_file_access` refuses the sources that read files), but
                // answer it rather than stall.
                Some(Action::ReadFile(_)) => fetch.acquisition.handle_file(
                    now,
                    Err(FileError {
                        kind: FileErrorKind::NoAccess,
                        detail: "proxy-wasm has no file access".into(),
                    }),
                ),
                None => return Effects::default(),
            }
        }
        let error = Error::new(
            crate::proto::ErrorKind::Service,
            None,
            "internal error: the token fetch did not settle; please report this",
        );
        self.finish(now, Err(error))
    }

    fn finish(&mut self, now: UnixMillis, outcome: Result<AccessToken, Error>) -> Effects {
        let Some(fetch) = self.fetch.take() else {
            return Effects::default();
        };
        match self.identity.complete(now, &fetch.acquisition, outcome) {
            Ok(token) => self.succeeded(&token),
            Err(error) => self.fetch_failed(now, error),
        }
    }

    fn succeeded(&mut self, token: &AccessToken) -> Effects {
        self.failure = None;
        let mut log = Vec::new();
        if self.current.as_ref() == Some(token) {
            // A failed proactive refresh: the core kept the current token (and retries later).
            log.push((
                Level::Warn,
                format!(
                    "proactive refresh for {} failed; the current token stays in use until it expires",
                    self.config.scope
                ),
            ));
        } else {
            log.push((
                Level::Info,
                format!(
                    "token for {} from {} (expires_on {}, refresh_on {})",
                    self.config.scope,
                    token.source(),
                    token.expires_on(),
                    token.refresh_on()
                ),
            ));
            self.current = Some(token.clone());
        }
        let bearer = Bearer::new(token);
        let resume = self
            .waiting
            .drain(..)
            .map(|id| (id, Verdict::Forward(bearer.clone())))
            .collect();
        Effects { resume, log }
    }

    fn fetch_failed(&mut self, now: UnixMillis, error: Error) -> Effects {
        let log = vec![(
            Level::Warn,
            format!(
                "no token for {}; {} paused request(s) {}: {}",
                self.config.scope,
                self.waiting.len(),
                match self.config.fail_mode {
                    FailMode::Deny => "get a 503",
                    FailMode::Allow => "go on without a token (fail_mode allow)",
                },
                error.message()
            ),
        )];
        let verdict = self.failed(&error);
        let resume = self
            .waiting
            .drain(..)
            .map(|id| (id, verdict.clone()))
            .collect();
        self.failure = Some(Failure {
            error,
            until: now.plus_millis(FAILURE_HOLD_MS),
        });
        Effects { resume, log }
    }

    /// The verdict for a request that cannot get a token because of `error`.
    fn failed(&self, error: &Error) -> Verdict {
        match self.config.fail_mode {
            FailMode::Deny => Verdict::Reply(LocalReply::from_error(error)),
            FailMode::Allow => Verdict::ForwardUnauthenticated,
        }
    }
}

/// proxy-wasm has no file access: Azure Arc and workload identity are refused up front.
fn host_facts() -> HostFacts {
    HostFacts {
        arc_agent_present: false,
        no_file_access: true,
    }
}

/// The 16 bytes behind the request id (`x-ms-client-request-id`). proxy-wasm has no random
/// source, so they mix the time and a per-root counter (SplitMix64): unique per fetch, and
/// nothing depends on them being unpredictable — they only label the request.
pub fn seed(now: UnixMillis, counter: u64) -> [u8; 16] {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let a = mix(now.0 ^ counter.rotate_left(32));
    let b = mix(a ^ counter);
    let mut out = [0; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}
