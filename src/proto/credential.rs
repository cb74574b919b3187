//! The long-lived credential: validation, detection, the cache, single flight, throttle
//! memory, the IMDS probe and claims, around one [`Acquisition`] per fetch.
//!
//! # One call
//!
//! 1. The scope and the selector are validated ([`crate::proto::scope`],
//!    [`crate::proto::selector`]); bad input is `invalid-argument` and nothing is sent.
//! 2. [`ManagedIdentity::cached`] answers from the cache without reading the environment or
//!    allocating (the environment of a running instance does not change).
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
//! past the cached token's usable time: the fetch's deadline is capped there. MSAL Go and MSAL
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
//! # Claims, force refresh and revocation
//!
//! `force-refresh` and a claims challenge skip the cache (msal-node, MSAL Go and MSAL Python
//! do; @azure/identity passes neither claims nor capabilities to msal-node, so a revocation
//! challenge cannot be answered until the cached token ages out). On **Service Fabric** a
//! claims request also names the token to replace: `token_sha256_to_refresh` = lowercase hex
//! SHA-256 of the cached access token, and `xms_cc` = the client capabilities joined with
//! commas (e.g. `cp1`) — as msal-node and MSAL Python do for Service Fabric. `xms_cc` is not
//! sent to other sources, which do not document it (msal-node sends it everywhere).
//!
//! # Workload identity's federated token
//!
//! The credential keeps the last federated token it read, with its path and time, and reuses
//! it for five minutes ([`crate::proto::workload`] has the file rules); a different path is
//! read at once. The Entra token itself is cached like any other (the scope is sent as given).

use super::acquisition::{
    Acquisition, AssertionRead, Options, Outcome, WorkloadLeg, probe_request,
};
use super::cache::{CacheKey, Lookup, TokenCache};
use super::detect::{Detection, detect};
use super::env::{EnvSnapshot, HostFacts, var};
use super::error::Error;
use super::http::HttpRequest;
use super::request::{build_request, check_selector, request_id, workload_client_id};
use super::retry::{DEFAULT_CALL_DEADLINE_MS, RETRY_AFTER_CAP_MS};
use super::scope::resource_from_scope;
use super::secret::Secret;
use super::selector::IdentitySelector;
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;
use super::workload::ASSERTION_MAX_AGE_MS;

/// One `get-token` call's options (the WIT `token-request`).
#[derive(Clone, Copy, Debug)]
pub struct TokenRequest<'a> {
    /// Exactly one scope, e.g. `https://vault.azure.net/.default`.
    pub scope: &'a str,
    /// Which identity.
    pub selector: &'a IdentitySelector,
    /// Skip the cache.
    pub force_refresh: bool,
    /// A claims challenge: skips the cache; on Service Fabric names the cached token for
    /// revocation.
    pub claims: Option<&'a str>,
    /// Client capabilities (`cp1`, …), sent as `xms_cc` to Service Fabric only.
    pub client_capabilities: &'a [String],
    /// Give up after this long, retries included (default 120 s: `DEFAULT_CALL_DEADLINE_MS`
    /// in the `retry` module).
    pub timeout_ms: Option<u64>,
    /// Probe IMDS first, once per credential until it answers (credential chains).
    pub probe: bool,
}

impl<'a> TokenRequest<'a> {
    /// The plain request: no options.
    pub fn new(scope: &'a str, selector: &'a IdentitySelector) -> Self {
        Self {
            scope,
            selector,
            force_refresh: false,
            claims: None,
            client_capabilities: &[],
            timeout_ms: None,
            probe: false,
        }
    }

    /// True when the call must not be answered from the cache.
    pub fn bypasses_cache(&self) -> bool {
        self.force_refresh || self.claims.is_some()
    }
}

/// What the cache says for a call, without fetching.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached<'a> {
    /// Serve this token; nothing else to do.
    Fresh(&'a AccessToken),
    /// Serve this token, and start a proactive refresh ([`ManagedIdentity::start`]) when you
    /// can; if you serve callers one at a time, refresh now.
    RefreshDue(&'a AccessToken),
    /// Nothing usable: [`ManagedIdentity::start`] a fetch.
    Miss,
}

/// Returned by [`ManagedIdentity::start`].
#[derive(Debug)]
pub enum Start {
    /// A usable cached token.
    Cached(AccessToken),
    /// Drive this fetch, then hand its outcome to [`ManagedIdentity::finish`].
    Fetch(Box<Acquisition>),
    /// A fetch for this key is already in flight and nothing usable is cached: wait for it
    /// to finish, then ask again.
    Wait,
}

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
        let resource = resource_from_scope(scope)?;
        selector.validate()?;
        let Some(source) = self.last_source else {
            return Ok(Cached::Miss);
        };
        let (kind, id) = (selector.kind(), selector.value());
        let matches = |k: &CacheKey| k.matches(source, kind, id, resource);
        let in_flight = self.in_flight.iter().any(matches);
        let remembered = self
            .remembered
            .iter()
            .find(|(k, until, _)| now < *until && matches(k));
        Ok(match self.cache.lookup(now, source, kind, id, resource) {
            Lookup::Fresh(token) => Cached::Fresh(token),
            // Single flight, or a refresh that must wait: serve the token meanwhile.
            Lookup::RefreshDue(token) if in_flight || remembered.is_some() => Cached::Fresh(token),
            Lookup::RefreshDue(token) => Cached::RefreshDue(token),
            Lookup::Miss => match remembered {
                Some((_, until, error)) => {
                    return Err(error
                        .clone()
                        .remembered(now.millis_until(*until).div_ceil(1000)));
                }
                None => Cached::Miss,
            },
        })
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
        let plan = Self::plan(env, facts, scope, selector)?;
        let resource = &scope[..plan.resource_len];
        build_request(&plan.detection, env, selector, resource, "").map(drop)
    }

    /// Validation and detection, shared by [`ManagedIdentity::check`] and
    /// [`ManagedIdentity::start`].
    fn plan(
        env: &EnvSnapshot,
        facts: HostFacts,
        scope: &str,
        selector: &IdentitySelector,
    ) -> Result<Plan, Error> {
        let resource_len = resource_from_scope(scope)?.len();
        selector.validate()?;
        let detection = detect(env, facts, selector.kind())?;
        let source = detection.source;
        check_selector(source, selector)?;
        if facts.no_file_access && matches!(source, Source::AzureArc | Source::WorkloadIdentity) {
            return Err(Error::needs_files(source));
        }
        let workload_client_id = match source {
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
        let plan = Self::plan(env, facts, scope, selector)?;
        let resource = &scope[..plan.resource_len];
        let source = plan.detection.source;
        self.last_source = Some(source);
        let key = CacheKey {
            source,
            kind: selector.kind(),
            id: selector.value().to_string(),
            resource: resource.to_string(),
        };
        let usable = if request.bypasses_cache() {
            None
        } else {
            match self.cache.lookup(now, source, key.kind, &key.id, resource) {
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
        let mut http = build_request(&plan.detection, env, selector, resource, &id)?;
        if source == Source::ServiceFabric && request.claims.is_some() {
            self.add_revocation(&mut http, &key, request.client_capabilities);
        }
        let probe = (request.probe
            && source == Source::Imds
            && plan.detection.endpoint_variable != var::AZURE_POD_IDENTITY_AUTHORITY_HOST
            && !self.imds_probed
            && self.answered_by != Some(Source::Imds))
        .then(|| probe_request(&http, &id));
        let call_deadline = now.plus_millis(request.timeout_ms.unwrap_or(DEFAULT_CALL_DEADLINE_MS));
        let workload = plan
            .workload_client_id
            .map(|client_id| self.workload_leg(now, env, client_id, scope));
        let options = Options {
            // A proactive refresh never holds the caller past the cached token's usable life:
            // the token is returned instead.
            call_deadline: usable.as_ref().map_or(call_deadline, |token| {
                call_deadline.min(UnixMillis::from_secs(token.usable_until()))
            }),
            seed: u64::from_le_bytes(random[8..].try_into().unwrap_or_default()),
            probe,
            answered_before: self.answered_by == Some(source),
            refreshing: usable,
            workload,
        };
        self.in_flight.push(key.clone());
        let endpoint_variable = plan.detection.endpoint_variable;
        let acquisition = Acquisition::new(key, selector.clone(), http, endpoint_variable, options);
        Ok(Start::Fetch(Box::new(acquisition)))
    }

    /// Names the cached token for Service Fabric to revoke, and the client capabilities.
    fn add_revocation(&self, http: &mut HttpRequest, key: &CacheKey, capabilities: &[String]) {
        use sha2::Digest;
        let mut extra = String::new();
        if let Some(old) = self.cache.peek(key) {
            let digest = sha2::Sha256::digest(old.secret().as_bytes());
            extra.push_str("&token_sha256_to_refresh=");
            for b in digest {
                extra.push_str(&format!("{b:02x}"));
            }
        }
        if !capabilities.is_empty() {
            extra.push_str("&xms_cc=");
            extra.push_str(&super::url::encode_value(&capabilities.join(",")));
        }
        http.path_and_query.push_str(&extra);
    }

    /// Workload identity's leg: the client id, the scope as given, and the federated token if
    /// it was read less than five minutes ago from the same file.
    fn workload_leg(
        &self,
        now: UnixMillis,
        env: &EnvSnapshot,
        client_id: String,
        scope: &str,
    ) -> WorkloadLeg {
        let token_file = env.get(var::AZURE_FEDERATED_TOKEN_FILE).unwrap_or_default();
        let cached_assertion = self
            .assertion
            .as_ref()
            .filter(|a| a.path == token_file && a.read_at.millis_until(now) < ASSERTION_MAX_AGE_MS)
            .map(|a| Secret(a.token.0.clone()));
        WorkloadLeg {
            client_id,
            scope: scope.to_string(),
            token_file: token_file.to_string(),
            cached_assertion,
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
