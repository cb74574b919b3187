// About 360 lines: the root context's whole state machine (one fetch, paused streams,
// callbacks) in one place; the values it returns are in `verdict.rs`.
//! The root context's state, without any host call: the credential, the one fetch in flight
//! (driven by [`crate::drive::pump`]), the paused streams, and what to do with each when the
//! fetch ends. The proxy-wasm glue (`root.rs`, `stream.rs`) performs what these methods
//! return, so all of the filter's decisions are unit-tested natively. Caching, refresh timing,
//! failure hold-down, deadlines and retries are the core's: this file only maps them onto
//! streams.

use super::config::{FailMode, FilterConfig};
use crate::drive::{self, Pumped};
use crate::proto::{
    Acquisition, Cached, EnvSnapshot, Error, FileError, FileErrorKind, FileRead, HostFacts,
    HttpRequest, HttpResponse, IdentitySelector, ManagedIdentity, Outcome, Start, TokenRequest,
    TransportError, UnixMillis, splitmix64,
};

/// After a failed fetch, requests in this window get the same answer without a new token
/// request: a failing endpoint is asked at most about once a second per worker, whatever the
/// request rate ([`ManagedIdentity::with_failure_hold`]).
pub const FAILURE_HOLD_MS: u64 = 1_000;
pub use super::verdict::{Bearer, DENY_STATUS, Effects, Level, LocalReply, RequestStep, Verdict};

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

/// One root context's state: one scope and identity, one credential, at most one fetch.
#[derive(Debug)]
pub struct TokenRoot {
    config: FilterConfig,
    selector: IdentitySelector,
    env: EnvSnapshot,
    identity: ManagedIdentity,
    fetch: Option<Fetch>,
    /// Paused streams, in arrival order.
    waiting: Vec<u32>,
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
    pub fn new(config: FilterConfig, env: EnvSnapshot, _now: UnixMillis) -> Self {
        let selector = config.selector();
        let refused = ManagedIdentity::check(&env, host_facts(), &config.scope, &selector).err();
        Self {
            config,
            selector,
            env,
            identity: ManagedIdentity::new().with_failure_hold(FAILURE_HOLD_MS),
            fetch: None,
            waiting: Vec::new(),
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
        let idle = self.fetch.is_none();
        let verdict = match self
            .identity
            .cached(now, &self.config.scope, &self.selector)
        {
            Ok(Cached::Fresh(token)) => {
                let verdict = Verdict::Forward(Bearer::new(token));
                return self.step(verdict, false);
            }
            // Served now; the refresh is the root's job.
            Ok(Cached::RefreshDue(token)) => Verdict::Forward(Bearer::new(token)),
            Ok(Cached::Miss) => {
                self.waiting.push(context_id);
                Verdict::Pause
            }
            // A bad scope, or a failure the core still remembers.
            Err(error) => return self.step(self.failed(&error), false),
        };
        let wake = idle && self.ask_wake();
        self.step(verdict, wake)
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

    /// The root's tick at `now`: passes time to the fetch in flight, or starts the fetch (or
    /// proactive refresh) that requests asked for.
    pub fn on_tick(&mut self, now: UnixMillis, dispatch: &mut impl Dispatch) -> Effects {
        self.wake_pending = false;
        if self.fetch.is_some() {
            return self.pump(now, dispatch);
        }
        if self.refused.is_some() {
            return Effects::default();
        }
        match self
            .identity
            .cached(now, &self.config.scope, &self.selector)
        {
            // Requests that paused while a fetch was ending find the token cached.
            Ok(Cached::Fresh(token)) => {
                let token = token.clone();
                self.resume_all(Verdict::Forward(Bearer::new(&token)))
            }
            Ok(Cached::RefreshDue(_)) => self.start(now, dispatch),
            Ok(Cached::Miss) if !self.waiting.is_empty() => self.start(now, dispatch),
            Ok(Cached::Miss) => Effects::default(),
            Err(error) => {
                let verdict = self.failed(&error);
                self.resume_all(verdict)
            }
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
        let random = seed(now, self.fetches);
        match self
            .identity
            .start(now, &request, &self.env, host_facts(), random)
        {
            Ok(Start::Fetch(acquisition)) => {
                self.fetch = Some(Fetch {
                    acquisition,
                    call: None,
                });
                self.pump(now, dispatch)
            }
            Ok(Start::Cached(token)) => self.resume_all(Verdict::Forward(Bearer::new(&token))),
            // Only this root starts fetches, and it has none in flight.
            Ok(Start::Wait) => Effects::default(),
            Err(error) => self.fetch_failed(error),
        }
    }

    /// Advances the fetch with [`drive::pump`]; absorbs its outcome when it ends.
    fn pump(&mut self, now: UnixMillis, dispatch: &mut impl Dispatch) -> Effects {
        let Some(fetch) = self.fetch.as_mut() else {
            return Effects::default();
        };
        let mut glue = Glue {
            dispatch,
            call: None,
        };
        match drive::pump(&mut fetch.acquisition, now, &mut glue) {
            Pumped::Pending(_) => {
                if glue.call.is_some() {
                    fetch.call = glue.call;
                }
                Effects::default()
            }
            Pumped::Done(outcome) => {
                self.fetch = None;
                self.finish(now, *outcome)
            }
        }
    }

    fn finish(&mut self, now: UnixMillis, outcome: Outcome) -> Effects {
        let refresh_failure = match outcome.result() {
            Err(error) if outcome.is_refresh() => Some(error.message().to_string()),
            _ => None,
        };
        match self.identity.finish(now, outcome) {
            Ok(token) => {
                let line = match refresh_failure {
                    Some(why) => (
                        Level::Warn,
                        format!(
                            "proactive refresh for {} failed; the current token stays in use until it expires: {why}",
                            self.config.scope
                        ),
                    ),
                    None => (
                        Level::Info,
                        format!(
                            "token for {} from {} (expires_on {}, refresh_on {})",
                            self.config.scope,
                            token.source(),
                            token.expires_on(),
                            token.refresh_on()
                        ),
                    ),
                };
                let mut effects = self.resume_all(Verdict::Forward(Bearer::new(&token)));
                effects.log.push(line);
                effects
            }
            Err(error) => self.fetch_failed(error),
        }
    }

    fn fetch_failed(&mut self, error: Error) -> Effects {
        let line = (
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
        );
        let mut effects = self.resume_all(self.failed(&error));
        effects.log.push(line);
        effects
    }

    /// Resumes every paused stream with `verdict`, in arrival order.
    fn resume_all(&mut self, verdict: Verdict) -> Effects {
        let resume = self
            .waiting
            .drain(..)
            .map(|id| (id, verdict.clone()))
            .collect();
        Effects {
            resume,
            log: Vec::new(),
        }
    }

    /// The verdict for a request that cannot get a token because of `error`.
    fn failed(&self, error: &Error) -> Verdict {
        match self.config.fail_mode {
            FailMode::Deny => Verdict::Reply(LocalReply::from_error(error)),
            FailMode::Allow => Verdict::ForwardUnauthenticated,
        }
    }
}

/// [`drive::Dispatch`] over the glue's [`Dispatch`], keeping the call id of what it sent.
struct Glue<'a, D> {
    dispatch: &'a mut D,
    call: Option<u32>,
}

impl<D: Dispatch> drive::Dispatch for Glue<'_, D> {
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u64) -> Result<(), TransportError> {
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        self.call = Some(self.dispatch.dispatch(request, timeout)?);
        Ok(())
    }

    /// Cannot happen (`no_file_access` refuses the sources that read files), but answered
    /// rather than stalled.
    fn read_file(&mut self, _read: &FileRead) -> Result<Vec<u8>, FileError> {
        Err(FileError {
            kind: FileErrorKind::NoAccess,
            detail: "proxy-wasm has no file access".into(),
        })
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
    let a = splitmix64(now.0 ^ counter.rotate_left(32));
    let b = splitmix64(a ^ counter);
    let mut out = [0; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}
