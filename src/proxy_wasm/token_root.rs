//! The root context's state, without any host call: the credential, the one fetch in flight
//! (driven by [`crate::drive::pump`], in `token_root/fetch.rs`), the paused streams, and what
//! to do with each when the fetch ends; with the shared store, which worker fetches
//! (`token_root/shared.rs`). The proxy-wasm glue (`root.rs`, `stream.rs`) performs what these
//! methods return, so all of the filter's decisions are unit-tested natively. Caching, refresh timing,
//! failure hold-down, deadlines and retries are the core's: this file only maps them onto
//! streams.

mod fetch;
mod report;
mod shared;

use super::config::FilterConfig;
use super::link::{self, LinkChoice};
use crate::drive::SharedStore;
use crate::drive::lines;
use crate::proto::{
    self, Acquisition, Cached, EnvSnapshot, Error, HostFacts, HttpRequest, IdentitySelector,
    ManagedIdentity, SharedSlot, TokenRequest, TransportError, UnixMillis, splitmix64,
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
    /// When that request was sent.
    sent: UnixMillis,
}

/// One scope's state in a root context: one scope and identity, one credential, at most one
/// fetch ([`super::filter::Filter`] holds one per configured scope).
#[derive(Debug)]
pub struct TokenRoot {
    config: FilterConfig,
    /// The scope of every request and cache lookup.
    scope: String,
    /// The diagnostics level: `"log_level"`, else `AZURE_LOG_LEVEL` in the VM environment.
    log_level: Option<proto::Level>,
    /// The identity of every request and cache lookup (the chosen link's).
    selector: IdentitySelector,
    /// The credential every fetch uses ([`link`]).
    choice: LinkChoice,
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
    /// The token's place in the shared store; `None`: this root keeps its own cache
    /// (`"shared_cache": false`, or the store failed).
    slot: Option<SharedSlot>,
    /// Another root holds the lease and requests wait: read the store again at this time.
    follow: Option<UnixMillis>,
    /// The lease this root holds (its holder id) while it fetches for every worker.
    lease: Option<u64>,
    /// The header value of the token the cache served last, shared by every request's
    /// verdict until the token changes.
    bearer: Option<Bearer>,
    /// Lines to log with the next effects (a store failure found by a request).
    notes: Vec<(Level, String)>,
    /// The failure last reported, with the request id clients get for it.
    reported: report::Reported,
}

impl TokenRoot {
    /// The state for `config` with the VM's managed-identity variables `env`. An environment
    /// that cannot work at all (Azure Arc and workload identity need files; a selector the
    /// source refuses) is found here, without sending anything, and every request gets it.
    pub fn new(config: FilterConfig, env: EnvSnapshot, now: UnixMillis) -> Self {
        let scope = config.scope.clone().unwrap_or_default();
        Self::for_scope(config, scope, env, now)
    }

    /// The state of `scope` (one of the configuration's) as [`TokenRoot::new`] makes it.
    pub fn for_scope(
        config: FilterConfig,
        scope: String,
        env: EnvSnapshot,
        now: UnixMillis,
    ) -> Self {
        let configured = config.selector();
        let (choice, refused) =
            match link::choose(config.credential, &env, host_facts(), &scope, &configured) {
                Ok(choice) => (choice, None),
                Err(error) => (LinkChoice::refused(configured), Some(error)),
            };
        let selector = choice.selector.clone();
        let slot = (config.shared_cache && refused.is_none())
            .then(|| {
                let request = TokenRequest {
                    credential: choice.link,
                    probe: choice.probe,
                    ..TokenRequest::new(&scope, &selector)
                };
                ManagedIdentity::share(&env, host_facts(), &request).ok()
            })
            .flatten();
        let reported = report::Reported::refused(now, refused.as_ref());
        let log_level = config
            .log_level
            .map(proto::Level::from)
            .or_else(|| proto::Level::from_env(&env));
        Self {
            config,
            scope,
            log_level,
            selector,
            choice,
            env,
            identity: ManagedIdentity::new().with_failure_hold(FAILURE_HOLD_MS),
            fetch: None,
            waiting: Vec::new(),
            wake_pending: false,
            fetches: 0,
            refused,
            slot,
            follow: None,
            lease: None,
            bearer: None,
            notes: Vec::new(),
            reported,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FilterConfig {
        &self.config
    }

    /// The scope this state gets tokens for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Seconds until the cached token expires at `now` (`None`: no token).
    pub fn expires_in(&mut self, now: UnixMillis) -> Option<u64> {
        match self.identity.cached(now, &self.scope, &self.selector) {
            Ok(Cached::Fresh(token) | Cached::RefreshDue(token)) => {
                Some(token.expires_on().saturating_sub(now.as_secs()))
            }
            _ => None,
        }
    }

    /// Whether the diagnostics level allows `level`.
    fn logs(&self, level: proto::Level) -> bool {
        self.log_level.is_some_and(|at| level <= at)
    }

    /// The credential the filter chose when it started.
    pub fn choice(&self) -> &LinkChoice {
        &self.choice
    }

    /// Why no request can get a token in this environment, if so (log it at start).
    pub fn refused(&self) -> Option<&Error> {
        self.refused.as_ref()
    }

    /// A new request (stream `context_id`) at `now`: the root's cache, else the shared store
    /// (another worker's token), else pause.
    pub fn on_request(
        &mut self,
        now: UnixMillis,
        context_id: u32,
        store: &mut impl SharedStore,
    ) -> RequestStep {
        if let Some(error) = self.refused.clone() {
            let (verdict, log) = self.failed(now, &error, 1);
            return RequestStep {
                verdict,
                wake: false,
                log,
            };
        }
        let (verdict, source) = match self.identity.cached(now, &self.scope, &self.selector) {
            Ok(Cached::Fresh(token)) => {
                // The header value is built once per token, not per request.
                let bearer = match &self.bearer {
                    Some(kept) if kept.carries(token) => kept.clone(),
                    _ => self.bearer.insert(Bearer::new(token)).clone(),
                };
                let source = token.source();
                return self.step(Verdict::Forward(bearer), false, Some(source));
            }
            // Served now; the refresh is the root's job.
            Ok(Cached::RefreshDue(token)) => {
                (Verdict::Forward(Bearer::new(token)), Some(token.source()))
            }
            Ok(Cached::Miss) => match self.adopt_stored(now, store) {
                // Fresh: the root resumes any requests still waiting.
                Some((bearer, false)) => {
                    let wake = !self.waiting.is_empty() && self.fetch.is_none() && self.ask_wake();
                    return self.step(Verdict::Forward(bearer), wake, None);
                }
                // Refresh due: served, and the root refreshes through the store.
                Some((bearer, true)) => (Verdict::Forward(bearer), None),
                None => {
                    self.waiting.push(context_id);
                    (Verdict::Pause, None)
                }
            },
            // A bad scope, or a failure the core still remembers (the hold-down: the same
            // request id as the requests the failure answered first).
            Err(error) => {
                let (verdict, log) = self.failed(now, &error, 1);
                return RequestStep {
                    verdict,
                    wake: false,
                    log,
                };
            }
        };
        // Read after the store: a store that failed just now stopped any following.
        let idle = self.fetch.is_none() && self.follow.is_none();
        let wake = idle && self.ask_wake();
        self.step(verdict, wake, source)
    }

    /// The step, with its cache hit (`source`: the token's) or miss line at `verbose`.
    fn step(&self, verdict: Verdict, wake: bool, source: Option<proto::Source>) -> RequestStep {
        let log = self.logs(proto::Level::Verbose).then(|| {
            let line = match source {
                Some(source) => lines::hit(&self.scope, source),
                None => lines::miss(&self.scope),
            };
            (Level::Debug, line)
        });
        RequestStep { verdict, wake, log }
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

    /// The root's tick at `now`: passes time to the fetch in flight, or reads the shared store
    /// again for a fetch another worker makes, or starts the fetch (or proactive refresh) that
    /// requests asked for.
    pub fn on_tick(
        &mut self,
        now: UnixMillis,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        self.wake_pending = false;
        let effects = self.tick(now, dispatch, store);
        self.with_notes(effects)
    }

    fn tick(
        &mut self,
        now: UnixMillis,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        if self.fetch.is_some() {
            return self.pump(now, dispatch, store);
        }
        self.follow = None;
        if self.refused.is_some() {
            return Effects::default();
        }
        match self.identity.cached(now, &self.scope, &self.selector) {
            // Requests that paused while a fetch was ending find the token cached.
            Ok(Cached::Fresh(token)) => {
                let token = token.clone();
                self.resume_all(Verdict::Forward(Bearer::new(&token)))
            }
            Ok(Cached::RefreshDue(_)) => self.acquire(now, dispatch, store),
            Ok(Cached::Miss) if !self.waiting.is_empty() => self.acquire(now, dispatch, store),
            Ok(Cached::Miss) => Effects::default(),
            Err(error) => {
                let (verdict, line) = self.failed(now, &error, self.waiting.len());
                let mut effects = self.resume_all(verdict);
                effects.log.extend(line);
                effects
            }
        }
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
            ..Effects::default()
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
    let a = splitmix64(now.0 ^ counter.rotate_left(32));
    let b = splitmix64(a ^ counter);
    let mut out = [0; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}
