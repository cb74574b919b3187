//! The long-lived credential: validation, detection, the cache, single flight, throttle
//! memory and the IMDS probe around [`Acquisition`].

use super::acquisition::{Acquisition, Flow, Options, Secret};
use super::cache::{CacheKey, Lookup, TokenCache};
use super::detect::{IMDS_PATH, detect};
use super::env::{EnvSnapshot, HostFacts, var};
use super::error::{Error, ErrorKind};
use super::http::{Header, HttpRequest, Method};
use super::request::{build_request, check_selector, request_id, workload_client_id};
use super::retry::{DEFAULT_CALL_DEADLINE_MS, RETRY_AFTER_CAP_MS};
use super::scope::resource_from_scope;
use super::selector::IdentitySelector;
use super::source::{Source, Timeouts};
use super::time::UnixMillis;
use super::token::AccessToken;
use super::workload::ASSERTION_MAX_AGE_MS;

/// The IMDS probe's whole budget: 1 s, no retries (§8.8, §14 rule 23).
const PROBE_TIMEOUTS: Timeouts = Timeouts {
    connect_ms: 1_000,
    first_byte_ms: 1_000,
    between_bytes_ms: 1_000,
};

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
    /// revocation (§12.3–12.4, §14 rule 28).
    pub claims: Option<&'a str>,
    /// Client capabilities (`cp1`, …), sent as `xms_cc` to Service Fabric only.
    pub client_capabilities: &'a [String],
    /// Give up after this long, retries included (default [`DEFAULT_CALL_DEADLINE_MS`]).
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

    fn bypasses_cache(&self) -> bool {
        self.force_refresh || self.claims.is_some()
    }
}

/// The credential state an adapter keeps for the life of an instance.
///
/// Per call: [`ManagedIdentity::cached`] (no environment, no allocation); on a miss
/// [`ManagedIdentity::start`] with a fresh environment snapshot, drive the returned
/// [`Acquisition`], then [`ManagedIdentity::complete`] to cache the result.
#[derive(Debug, Default)]
pub struct ManagedIdentity {
    cache: TokenCache,
    last_source: Option<Source>,
    /// The source that last issued a token to this credential (§7.3: after that, no answer
    /// is a transport failure, not "unavailable").
    answered_by: Option<Source>,
    /// The federated token last read (workload identity), re-read after five minutes.
    assertion: Option<Assertion>,
    /// Keys with a fetch in flight (single flight: one upstream request per key).
    in_flight: Vec<CacheKey>,
    /// Keys whose last fetch ended in a throttled/failed answer with `Retry-After`: repeat
    /// calls fail fast until then (§14 rule 22).
    throttled: Vec<(CacheKey, UnixMillis, Error)>,
    /// IMDS answered a probe: never probe again (Go's rule, §14 rule 23).
    imds_probed: bool,
}

/// A federated token and where and when it was read.
#[derive(Debug)]
struct Assertion {
    path: String,
    token: Secret,
    read_at: UnixMillis,
}

/// Returned by [`ManagedIdentity::start`].
#[derive(Debug)]
pub enum Start {
    /// A usable cached token.
    Cached(AccessToken),
    /// Drive this fetch.
    Fetch(Box<Acquisition>),
    /// A fetch for this key is already in flight and nothing usable is cached: wait for it
    /// to complete, then ask again.
    Wait,
}

impl ManagedIdentity {
    /// An empty credential.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cached token for `scope` and `selector` at `now` that needs no fetch, validating
    /// both first. `None` when the caller must [`ManagedIdentity::start`] (a miss, or a
    /// proactive refresh is due).
    ///
    /// Uses the source detected by the last [`ManagedIdentity::start`]: the environment of a
    /// running instance does not change, and the cache path must not re-read it.
    pub fn cached(
        &mut self,
        now: UnixMillis,
        scope: &str,
        selector: &IdentitySelector,
    ) -> Result<Option<&AccessToken>, Error> {
        let resource = resource_from_scope(scope)?;
        selector.validate()?;
        let Some(source) = self.last_source else {
            return Ok(None);
        };
        let kind = selector.kind();
        let refresh_in_flight = self
            .in_flight
            .iter()
            .any(|k| k.matches(source, kind, selector.value(), resource));
        Ok(
            match self
                .cache
                .lookup(now, source, kind, selector.value(), resource)
            {
                Lookup::Fresh(token) => Some(token),
                // Single flight: while one caller refreshes, the others get the token.
                Lookup::RefreshDue(token) if refresh_in_flight => Some(token),
                Lookup::RefreshDue(_) | Lookup::Miss => None,
            },
        )
    }

    /// [`ManagedIdentity::start_with`] for a plain request.
    pub fn start(
        &mut self,
        now: UnixMillis,
        scope: &str,
        selector: &IdentitySelector,
        env: &EnvSnapshot,
        facts: HostFacts,
        random: [u8; 16],
    ) -> Result<Start, Error> {
        self.start_with(now, &TokenRequest::new(scope, selector), env, facts, random)
    }

    /// Detects the source from `env` and `facts` and starts a fetch, or answers from the
    /// cache, or refuses before anything is sent. `random` seeds the request id and jitter.
    pub fn start_with(
        &mut self,
        now: UnixMillis,
        request: &TokenRequest<'_>,
        env: &EnvSnapshot,
        facts: HostFacts,
        random: [u8; 16],
    ) -> Result<Start, Error> {
        let (scope, selector) = (request.scope, request.selector);
        let resource = resource_from_scope(scope)?;
        selector.validate()?;
        let detection = detect(env, facts, selector.kind())?;
        let source = detection.source;
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
            return Ok(match usable {
                Some(token) => Start::Cached(token),
                None => Start::Wait,
            });
        }
        self.throttled.retain(|(_, until, _)| now < *until);
        if let Some((_, until, error)) = self.throttled.iter().find(|(k, _, _)| *k == key) {
            return match usable {
                Some(token) => Ok(Start::Cached(token)),
                None => {
                    let mut error = error.clone();
                    error.append(&format!(
                        " (remembered: not asking again for {} s)",
                        now.millis_until(*until).div_ceil(1000)
                    ));
                    Err(error)
                }
            };
        }
        check_selector(source, selector)?;
        let flow = match source {
            Source::AzureArc | Source::WorkloadIdentity if facts.no_file_access => {
                // Never fall back to IMDS: the platform said it is something else.
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    Some(source),
                    format!(
                        "{source} needs to read a file ({}), which this host cannot do (it has no file access); run the azmi component in a host with wasi:filesystem",
                        match source {
                            Source::AzureArc => "the Arc challenge key",
                            _ => "AZURE_FEDERATED_TOKEN_FILE",
                        }
                    ),
                ));
            }
            Source::AzureArc => Flow::Arc,
            Source::WorkloadIdentity => self.workload_flow(now, env, selector, scope)?,
            _ => Flow::Single,
        };
        let id = request_id(random);
        let mut http = build_request(&detection, env, selector, resource, &id)?;
        if source == Source::ServiceFabric && request.claims.is_some() {
            self.add_revocation(&mut http, &key, request.client_capabilities);
        }
        // §14 rule 23: not once IMDS has answered (a probe or a token: after a success a
        // failed probe would wrongly say "unavailable", §7.3), and never pod identity.
        let probe = (request.probe
            && source == Source::Imds
            && detection.endpoint_variable != var::AZURE_POD_IDENTITY_AUTHORITY_HOST
            && !self.imds_probed
            && self.answered_by != Some(Source::Imds))
        .then(|| probe_request(&http, &id));
        let call_deadline = now.plus_millis(request.timeout_ms.unwrap_or(DEFAULT_CALL_DEADLINE_MS));
        let options = Options {
            // A proactive refresh never holds the caller past the cached token's usable life:
            // the token is returned instead (§14 rule 27).
            call_deadline: usable.as_ref().map_or(call_deadline, |token| {
                call_deadline.min(UnixMillis::from_secs(token.usable_until()))
            }),
            seed: u64::from_le_bytes(random[8..].try_into().unwrap_or_default()),
            probe,
        };
        self.in_flight.push(key.clone());
        let acquisition = Acquisition::new(
            key,
            selector.clone(),
            http,
            detection.endpoint_variable,
            flow,
            options,
        )
        .with_answered_before(self.answered_by == Some(source))
        .refreshing(usable);
        Ok(Start::Fetch(Box::new(acquisition)))
    }

    /// §12.4, §14 rule 28: name the cached token for Service Fabric to revoke, and the
    /// client capabilities (`xms_cc`, documented for Service Fabric only).
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

    /// Workload identity's flow: the client id, the scope as given (§14 rule 29), and the
    /// federated token if it was read less than five minutes ago from the same file.
    fn workload_flow(
        &self,
        now: UnixMillis,
        env: &EnvSnapshot,
        selector: &IdentitySelector,
        scope: &str,
    ) -> Result<Flow, Error> {
        let client_id = workload_client_id(env, selector).ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                Some(Source::WorkloadIdentity),
                "workload identity needs a client id: set AZURE_CLIENT_ID or pass a client id",
            )
        })?;
        let token_file = env.get(var::AZURE_FEDERATED_TOKEN_FILE).unwrap_or_default();
        let cached_assertion = self
            .assertion
            .as_ref()
            .filter(|a| a.path == token_file && a.read_at.millis_until(now) < ASSERTION_MAX_AGE_MS)
            .map(|a| Secret(a.token.0.clone()));
        Ok(Flow::Workload {
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            token_file: token_file.to_string(),
            cached_assertion,
        })
    }

    /// Records the outcome of a finished fetch (`now` = when it finished) and returns what
    /// the caller gets: the new token; or, when a proactive refresh failed for any reason
    /// while the cached token is still usable, that token (§14 rule 27); or the error.
    pub fn complete(
        &mut self,
        now: UnixMillis,
        acquisition: &Acquisition,
        outcome: Result<AccessToken, Error>,
    ) -> Result<AccessToken, Error> {
        let key = acquisition.key();
        self.in_flight.retain(|k| k != key);
        if acquisition.probe_answered() {
            self.imds_probed = true;
        }
        if let Some((token, read_at)) = acquisition.assertion_read() {
            self.assertion = Some(Assertion {
                path: acquisition.token_file().unwrap_or_default().to_string(),
                token: Secret(token.0.clone()),
                read_at: *read_at,
            });
        }
        match outcome {
            Ok(token) => {
                self.answered_by = Some(acquisition.source());
                self.cache.insert(now, key.clone(), token.clone());
                Ok(token)
            }
            Err(error) => {
                if let Some(ms) = acquisition.throttle_ms().filter(|ms| *ms > 0) {
                    let until = now.plus_millis(ms.min(RETRY_AFTER_CAP_MS));
                    self.throttled.push((key.clone(), until, error.clone()));
                }
                match acquisition.refreshing_token().filter(|t| t.is_fresh(now)) {
                    Some(token) => {
                        self.cache.refresh_failed(now, key);
                        Ok(token.clone())
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// Forgets a fetch the adapter dropped without completing it.
    pub fn abandon(&mut self, acquisition: &Acquisition) {
        self.in_flight.retain(|k| k != acquisition.key());
    }

    /// Number of cached tokens.
    pub fn cached_tokens(&self) -> usize {
        self.cache.count()
    }
}

/// The IMDS probe: `GET <base>/metadata/identity/oauth2/token`, no query, no `Metadata`
/// header (so IMDS answers 400 at once without minting a token), 1 s (§8.8).
fn probe_request(token_request: &HttpRequest, request_id: &str) -> HttpRequest {
    let path = token_request
        .path_and_query
        .split('?')
        .next()
        .unwrap_or(IMDS_PATH)
        .to_string();
    HttpRequest {
        method: Method::Get,
        path_and_query: path,
        headers: vec![Header {
            name: "x-ms-client-request-id",
            value: request_id.to_string(),
            sensitive: false,
        }],
        body: Vec::new(),
        body_sensitive: false,
        timeouts: PROBE_TIMEOUTS,
        ..token_request.clone()
    }
}
