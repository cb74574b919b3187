// About 450 lines on purpose: the module docs state every rule the credential follows (single
// flight, stale-on-failure, throttle memory, the probe, a changed environment: ~110 lines) next
// to the one struct that keeps that state; call options, claims and the shared-cache side are
// the submodules.
//! The long-lived credential: validation, detection, the cache, single flight, throttle
//! memory, the IMDS probe and claims, around one [`Acquisition`] per fetch.
//!
//! # One call
//!
//! 1. The scope and the selector are validated ([`crate::proto::scope`],
//!    [`crate::proto::selector`]); bad input is `invalid-argument` and nothing is sent.
//! 2. [`ManagedIdentity::cached`] answers from the cache without reading the environment or
//!    allocating: hosts give an instance one environment for its life (see "A changed
//!    environment").
//! 3. Otherwise [`ManagedIdentity::start`] detects the source from a fresh environment
//!    snapshot ([`crate::proto::source`] has the precedence table), looks in the cache again,
//!    refuses a selector the source cannot honour, refuses Arc and workload identity on a host
//!    without file access (never falling back to IMDS: the platform said it is something
//!    else), builds the request ([`crate::proto::request`]) and returns an [`Acquisition`] for
//!    the host to drive ([`crate::drive`] is that loop, written once). The fetch ends in an
//!    [`crate::proto::Outcome`] that carries what the credential must remember (the probe
//!    answered, the federated token read, the throttle wait, the token being refreshed);
//!    [`ManagedIdentity::finish`] absorbs it and caches the token.
//!
//! # A changed environment
//!
//! A cache key holds the selector and the resource, not the tenant, authority, endpoint or
//! client id the environment names, so that a hit reads no variable. Every host therefore
//! gives an instance an environment that does not change: wasmtime, Spin and Envoy fix it at
//! instantiation, and the Node example snapshots `process.env` once. Should a fetch still see
//! different identity variables ([`crate::proto::env::IdentityEnv`]) than the fetch before
//! it, it is another identity and nothing learned applies: the cache, remembered failures,
//! the probe result and the federated token are dropped, and every key carries the new
//! generation, so a fetch still in flight for the old environment can never fill the new
//! cache. The shared store's key includes those values too.
//!
//! # Single flight
//!
//! At most one fetch is in flight per cache key. While a proactive refresh runs, other callers
//! for that key get the cached token; with nothing usable cached they get [`Start::Wait`] and
//! ask again once the fetch finishes. This is MSAL Go's behaviour (one goroutine refreshes,
//! the others get the cached token); msal-node and MSAL Python do not coordinate, so every
//! concurrent caller sends its own request.
//!
//! # A failed proactive refresh keeps the cached token
//!
//! When a proactive refresh fails for *any* reason — an error response, a transport failure,
//! an Arc key-file error — the caller gets the cached token while it is still usable, and the
//! next refresh attempt waits 30 s ([`crate::proto::cache`]). A refresh never holds the caller
//! past the cached token's usable time, nor longer than [`REFRESH_MAX_WAIT_MS`]: the fetch's
//! deadline is capped there (and every request's timeouts with it). The SDKs refresh in the
//! background (MSAL's `refresh_in`), so their callers never wait for a refresh; a component
//! serves one call at a time and must refresh inline, so it bounds the wait instead — 5 s is
//! far above a healthy endpoint's answer (milliseconds), and a hanging endpoint costs one
//! caller 5 s every 30 s instead of a 30 s request timeout per refresh. MSAL Go and MSAL
//! Python do the same; msal-node swallows error *responses* but fails the call on thrown
//! errors (network, timeout, Arc file errors) although its cached token is still valid.
//!
//! # Throttle memory
//!
//! When a fetch gives up on a retryable status that carried `Retry-After` (typically 429 or
//! 503), the credential remembers the failure for that key until the `Retry-After` window ends
//! (capped at 60 s, [`crate::proto::retry`]): calls for the key within the window get the same
//! error at once, marked "remembered", without a request — or the cached token, if one is
//! still usable. A host may also hold *every* failure for a short time
//! ([`ManagedIdentity::with_failure_hold`]: the Envoy filter asks a failing endpoint about once
//! a second per worker, whatever the request rate). This is MSAL Python's throttle cache (`msal/throttled_http_client.py`, which
//! memoizes 429, ≥ 500 and any response with `Retry-After`, default 5 s, at most 3600 s); the
//! other SDKs send every call.
//!
//! # The IMDS availability probe (opt-in, for credential chains)
//!
//! The probe request and its answer are handled in the acquisition's probe leg; the
//! credential decides when to send it.
//!
//! Off Azure, `169.254.169.254` usually drops packets, so a full IMDS token request with its
//! retries takes long to fail; a credential chain wants to move on quickly. With
//! `probe: true`, before the first IMDS token request the credential sends
//! `GET <imds base>/metadata/identity/oauth2/token` with **no query and no `Metadata` header**
//! (IMDS answers such a request with a 400 at once, without minting a token), with a 1 s
//! budget and no retries:
//!
//! * any HTTP response means IMDS is there — except a 403 whose body contains `unreachable`
//!   (Docker Desktop's proxy answering for the address), which is *unavailable*;
//! * no response is *unavailable* ("no managed identity is reachable here");
//! * once IMDS has answered (a probe or a token), this credential never probes again: a
//!   failed probe after a success would wrongly report "unavailable" for a passing hiccup (Go
//!   azidentity probes until the first answer; @azure/identity probes on every call, Python
//!   until one succeeds);
//! * never for AAD Pod Identity (`AZURE_POD_IDENTITY_AUTHORITY_HOST` set: @azure/identity and
//!   Python skip it too), and never unless asked: a caller that selected managed identity
//!   explicitly wants the real request and its retries (@azure/identity and Python skip the
//!   probe then; Go does not).
//!
//! The 1 s timeout is the value all three SDKs converged on (Python went from 0.3 s, .NET from
//! 0.5 s); it applies to the probe only, never to real token requests.
//!
//! Claims and Service Fabric revocation, and the workload-identity leg's federated token:
//! [`prepare`].

mod call;
mod checked;
mod prepare;
mod share;

pub use share::SharedSlot;

pub use call::{Cached, Start, TokenRequest};

use crate::proto::acquisition::{Acquisition, AssertionRead, Options, Outcome, probe_request};
use crate::proto::cache::{CacheKey, Lookup, TokenCache};
use crate::proto::chain::Link;
use crate::proto::detect::{Detection, detect_link};
use crate::proto::env::{EnvSnapshot, HostFacts, IdentityEnv, var};
use crate::proto::error::Error;
use crate::proto::http::HttpRequest;
use crate::proto::request::{build_request, check_selector, request_id, workload_client_id};
use crate::proto::retry::RETRY_AFTER_CAP_MS;
use crate::proto::scope::resource_from_scope;
use crate::proto::secret::Secret;
use crate::proto::selector::IdentitySelector;
use crate::proto::source::Source;
use crate::proto::time::UnixMillis;
use crate::proto::token::AccessToken;

/// The longest a proactive refresh holds its caller (the module docs, "A failed proactive
/// refresh keeps the cached token").
pub(crate) const REFRESH_MAX_WAIT_MS: u64 = 5_000;

/// The credential state a host keeps for the life of an instance.
#[derive(Debug, Default)]
pub struct ManagedIdentity {
    cache: TokenCache,
    last_source: Option<Source>,
    /// The source that last issued a token to this credential.
    answered_by: Option<Source>,
    /// The federated token last read (workload identity), reused for five minutes.
    assertion: Option<AssertionRead>,
    /// Keys with a fetch in flight.
    in_flight: Vec<CacheKey>,
    /// Keys whose last fetch failed, answered with the same error until the instant given.
    remembered: Vec<(CacheKey, UnixMillis, Error)>,
    /// Every failure is remembered at least this long (0: only throttling answers are).
    failure_hold_ms: u64,
    /// IMDS answered a probe: never probe again.
    imds_probed: bool,
    /// The identity-deciding variables the last fetch saw (`None` before the first).
    identity_env: Option<IdentityEnv>,
    /// Bumped when a fetch sees different identity variables; part of every cache key.
    generation: u32,
    /// The pair `cached` checked last (see the `checked` module).
    last_checked: checked::LastChecked,
}

/// What a fetch for a call will be, decided from the environment without touching the
/// credential.
struct Plan {
    resource_len: usize,
    detection: Detection,
    workload_client_id: Option<String>,
}

impl ManagedIdentity {
    /// An empty credential.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers every failed fetch for `ms` and answers calls for the same key with it in
    /// the meantime (Envoy: a failing endpoint is asked about once a second per worker,
    /// whatever the request rate).
    pub fn with_failure_hold(mut self, ms: u64) -> Self {
        self.failure_hold_ms = ms;
        self
    }

    /// What the cache holds for `scope` and `selector` at `now`, validating both first; a
    /// remembered failure is returned as the error. Reads no environment and allocates nothing
    /// on a hit: it uses the source detected by the last [`ManagedIdentity::start`] (the
    /// environment of a running instance does not change).
    pub fn cached(
        &mut self,
        now: UnixMillis,
        scope: &str,
        selector: &IdentitySelector,
    ) -> Result<Cached<'_>, Error> {
        let resource = self.last_checked.resource(scope, selector)?;
        let Some(source) = self.last_source else {
            return Ok(Cached::Miss);
        };
        let (kind, id, generation) = (selector.kind(), selector.value(), self.generation);
        let matches = |k: &CacheKey| k.matches(generation, source, kind, id, resource);
        let remembered =
            |(k, until, _): &&(CacheKey, UnixMillis, Error)| now < *until && matches(k);
        // A hit reads nothing but the cache; the fetches in flight and the remembered failures
        // matter only when it is not fresh.
        Ok(
            match self
                .cache
                .lookup(now, generation, source, kind, id, resource)
            {
                Lookup::Fresh(token) => Cached::Fresh(token),
                Lookup::RefreshDue(token) => {
                    // Single flight, or a refresh that must wait: serve the token meanwhile.
                    let wait = self.in_flight.iter().any(matches)
                        || self.remembered.iter().any(|r| remembered(&r));
                    if wait {
                        Cached::Fresh(token)
                    } else {
                        Cached::RefreshDue(token)
                    }
                }
                Lookup::Miss => match self.remembered.iter().find(remembered) {
                    Some((_, until, error)) => {
                        return Err(error
                            .clone()
                            .remembered(now.millis_until(*until).div_ceil(1000)));
                    }
                    None => Cached::Miss,
                },
            },
        )
    }

    /// Whether a call for `scope` and `selector` can work in `env` at all, without sending
    /// anything or changing the credential: the error [`ManagedIdentity::start`] would refuse
    /// it with before any request (a bad scope or selector, a selector the source cannot
    /// honour, a source this host cannot serve, incomplete configuration).
    pub fn check(
        env: &EnvSnapshot,
        facts: HostFacts,
        scope: &str,
        selector: &IdentitySelector,
    ) -> Result<(), Error> {
        Self::check_link(env, facts, scope, selector, Link::ManagedIdentity)
    }

    /// [`ManagedIdentity::check`] for one link of the default chain ([`crate::proto::Link`]):
    /// whether `link` can serve the call in `env` at all (unavailable when it is not
    /// configured there), without sending anything. Hosts that pick one link up front use it
    /// (the Envoy filter's `"credential": "default"`).
    pub fn check_link(
        env: &EnvSnapshot,
        facts: HostFacts,
        scope: &str,
        selector: &IdentitySelector,
        link: Link,
    ) -> Result<(), Error> {
        Self::dry_run(env, facts, scope, selector, link).map(drop)
    }

    /// Validation, detection and the request as it would be built (without a request id):
    /// everything that can refuse a call before anything is sent.
    fn dry_run(
        env: &EnvSnapshot,
        facts: HostFacts,
        scope: &str,
        selector: &IdentitySelector,
        link: Link,
    ) -> Result<(Plan, HttpRequest), Error> {
        let plan = Self::plan(env, facts, scope, selector, link)?;
        let resource = &scope[..plan.resource_len];
        let http = build_request(&plan.detection, env, selector, scope, resource, "")?;
        Ok((plan, http))
    }

    /// Validation and detection, shared by [`ManagedIdentity::check`] and
    /// [`ManagedIdentity::start`].
    fn plan(
        env: &EnvSnapshot,
        facts: HostFacts,
        scope: &str,
        selector: &IdentitySelector,
        link: Link,
    ) -> Result<Plan, Error> {
        let resource_len = resource_from_scope(scope)?.len();
        selector.validate()?;
        let detection = detect_link(link, env, facts, selector.kind())?;
        let source = detection.source;
        check_selector(source, selector)?;
        if facts.no_file_access
            && matches!(
                source,
                Source::AzureArc | Source::WorkloadIdentity | Source::ClientCertificate
            )
        {
            return Err(Error::needs_files(source));
        }
        let workload_client_id = match source {
            Source::ClientCertificate => env.get(var::AZURE_CLIENT_ID).map(str::to_string),
            Source::WorkloadIdentity => Some(
                workload_client_id(env, selector)
                    .ok_or_else(Error::workload_needs_client_id)?
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Plan {
            resource_len,
            detection,
            workload_client_id,
        })
    }

    /// Detects the source from `env` and `facts` and starts a fetch, or answers from the
    /// cache, or refuses before anything is sent. `random` seeds the request id and jitter.
    pub fn start(
        &mut self,
        now: UnixMillis,
        request: &TokenRequest<'_>,
        env: &EnvSnapshot,
        facts: HostFacts,
        random: [u8; 16],
    ) -> Result<Start, Error> {
        let (scope, selector) = (request.scope, request.selector);
        let plan = Self::plan(env, facts, scope, selector, request.credential)?;
        let resource = &scope[..plan.resource_len];
        let source = plan.detection.source;
        self.observe(IdentityEnv::of(env));
        self.last_source = Some(source);
        let key = CacheKey {
            generation: self.generation,
            source,
            kind: selector.kind(),
            id: selector.value().to_string(),
            resource: resource.to_string(),
        };
        let usable = if request.bypasses_cache() {
            None
        } else {
            match self
                .cache
                .lookup(now, key.generation, source, key.kind, &key.id, resource)
            {
                Lookup::Fresh(token) => return Ok(Start::Cached(token.clone())),
                Lookup::RefreshDue(token) => Some(token.clone()),
                Lookup::Miss => None,
            }
        };
        if self.in_flight.contains(&key) {
            return Ok(usable.map_or(Start::Wait, Start::Cached));
        }
        self.remembered.retain(|(_, until, _)| now < *until);
        if let Some((_, until, error)) = self.remembered.iter().find(|(k, _, _)| *k == key) {
            return match usable {
                Some(token) => Ok(Start::Cached(token)),
                None => Err(error
                    .clone()
                    .remembered(now.millis_until(*until).div_ceil(1000))),
            };
        }
        let id = request_id(random);
        let mut http = build_request(&plan.detection, env, selector, scope, resource, &id)?;
        if source == Source::ServiceFabric && request.claims.is_some() {
            self.add_revocation(&mut http, &key, request.client_capabilities);
        }
        let probe = (request.probe
            && source == Source::Imds
            && plan.detection.endpoint_variable != var::AZURE_POD_IDENTITY_AUTHORITY_HOST
            && !self.imds_probed
            && self.answered_by != Some(Source::Imds))
        .then(|| probe_request(&http, &id));
        let call_deadline = now.plus_millis(request.call_timeout_ms());
        let workload = plan.workload_client_id.map(|client_id| match source {
            #[cfg(feature = "client-certificate")]
            Source::ClientCertificate => {
                Self::certificate_leg(env, client_id, scope, http.url(), random)
            }
            _ => self.workload_leg(now, env, client_id, scope),
        });
        let options = Options {
            // A proactive refresh never holds the caller past the cached token's usable life,
            // nor longer than the refresh bound: the token is returned instead.
            call_deadline: usable.as_ref().map_or(call_deadline, |token| {
                // (The last instant the token is usable, so a refresh that fails at its
                // deadline still returns it.)
                let last_usable = UnixMillis::from_secs(token.usable_until())
                    .0
                    .saturating_sub(1);
                call_deadline
                    .min(UnixMillis(last_usable))
                    .min(now.plus_millis(REFRESH_MAX_WAIT_MS))
            }),
            seed: u64::from_le_bytes(random[8..].try_into().unwrap_or_default()),
            probe,
            answered_before: self.answered_by == Some(source),
            refreshing: usable,
            workload,
            body_secrets: env
                .get(var::AZURE_CLIENT_SECRET)
                .filter(|_| source == Source::ClientSecret)
                .map(|secret| Secret(secret.to_string()))
                .into_iter()
                .collect(),
        };
        self.in_flight.push(key.clone());
        let endpoint_variable = plan.detection.endpoint_variable;
        let acquisition = Acquisition::new(key, selector.clone(), http, endpoint_variable, options);
        Ok(Start::Fetch(Box::new(acquisition)))
    }

    /// Notes the identity variables a fetch (or an adopted shared token) saw. When they differ
    /// from the last ones, this is another identity: the cache, remembered failures, the probe
    /// result and the federated token are dropped, and the generation in every key moves on,
    /// so a fetch still in flight for the old environment can never fill the new cache.
    fn observe(&mut self, identity_env: IdentityEnv) {
        match &self.identity_env {
            Some(seen) if *seen == identity_env => {}
            None => self.identity_env = Some(identity_env),
            Some(_) => {
                self.identity_env = Some(identity_env);
                self.generation = self.generation.wrapping_add(1);
                self.cache.clear();
                self.remembered.clear();
                self.assertion = None;
                self.answered_by = None;
                self.imds_probed = false;
            }
        }
    }

    /// Absorbs a finished fetch (`now` = when it finished) and returns what the caller gets:
    /// the new token; or, when a proactive refresh failed for any reason while the cached
    /// token is still usable, that token; or the error.
    pub fn finish(&mut self, now: UnixMillis, outcome: Outcome) -> Result<AccessToken, Error> {
        let (result, report) = outcome.into_parts();
        let key = report.key;
        self.in_flight.retain(|k| *k != key);
        if report.probe_answered {
            self.imds_probed = true;
        }
        if report.assertion_rejected {
            self.assertion = None;
        }
        if let Some(read) = report.assertion {
            self.assertion = Some(read);
        }
        match result {
            Ok(token) => {
                self.answered_by = Some(key.source);
                self.cache.insert(now, key, token.clone());
                Ok(token)
            }
            Err(error) => {
                let throttle = report.throttle_ms.unwrap_or(0).min(RETRY_AFTER_CAP_MS);
                let hold = throttle.max(self.failure_hold_ms);
                match report.refreshing.filter(|t| t.is_fresh(now)) {
                    Some(token) => {
                        if throttle > 0 {
                            self.remember(now, key.clone(), throttle, &error);
                        }
                        self.cache.refresh_failed(now, &key);
                        Ok(token)
                    }
                    None => {
                        if hold > 0 {
                            self.remember(now, key, hold, &error);
                        }
                        Err(error)
                    }
                }
            }
        }
    }

    fn remember(&mut self, now: UnixMillis, key: CacheKey, ms: u64, error: &Error) {
        self.remembered.retain(|(k, _, _)| *k != key);
        self.remembered
            .push((key, now.plus_millis(ms), error.clone()));
    }

    /// Forgets a fetch the host dropped without finishing it.
    pub fn abandon(&mut self, acquisition: &Acquisition) {
        self.in_flight.retain(|k| k != acquisition.key());
    }

    /// Number of cached tokens.
    pub fn cached_tokens(&self) -> usize {
        self.cache.count()
    }
}
