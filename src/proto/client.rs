//! The long-lived credential: validation, detection and the cache around [`Acquisition`].

use super::acquisition::{Acquisition, Flow, Secret};
use super::cache::{CacheKey, TokenCache};
use super::detect::detect;
use super::env::{EnvSnapshot, HostFacts, var};
use super::error::{Error, ErrorKind};
use super::request::{build_request, check_selector, request_id, workload_client_id};
use super::scope::resource_from_scope;
use super::selector::IdentitySelector;
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;
use super::workload::ASSERTION_MAX_AGE_MS;

/// The credential state an adapter keeps for the life of an instance.
///
/// Per call: [`ManagedIdentity::cached`] (no environment, no allocation); on a miss
/// [`ManagedIdentity::start`] with a fresh environment snapshot, drive the returned
/// [`Acquisition`], then [`ManagedIdentity::complete`] to cache the result.
#[derive(Debug, Default)]
pub struct ManagedIdentity {
    cache: TokenCache,
    last_source: Option<super::source::Source>,
    /// The source that last issued a token to this credential (§7.3: after that, no answer
    /// is a transport failure, not "unavailable").
    answered_by: Option<super::source::Source>,
    /// The federated token last read (workload identity), re-read after five minutes.
    assertion: Option<Assertion>,
}

/// A federated token and where and when it was read.
#[derive(Debug)]
struct Assertion {
    path: String,
    token: Secret,
    read_at: UnixMillis,
}

fn acquisition_token_file(acquisition: &Acquisition) -> String {
    acquisition.token_file().unwrap_or_default().to_string()
}

/// Returned by [`ManagedIdentity::start`].
#[derive(Debug)]
pub enum Start {
    /// A fresh cached token (another caller filled the cache meanwhile).
    Cached(AccessToken),
    /// Drive this fetch.
    Fetch(Box<Acquisition>),
}

impl ManagedIdentity {
    /// An empty credential.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh cached token for `scope` and `selector` at `now`, validating both first.
    ///
    /// Uses the source detected by the last [`ManagedIdentity::start`]: the environment of a
    /// running instance does not change, and the cache path must not re-read it.
    pub fn cached(
        &self,
        now: UnixMillis,
        scope: &str,
        selector: &IdentitySelector,
    ) -> Result<Option<&AccessToken>, Error> {
        let resource = resource_from_scope(scope)?;
        selector.validate()?;
        Ok(self.last_source.and_then(|source| {
            self.cache
                .get(now, source, selector.kind(), selector.value(), resource)
        }))
    }

    /// Detects the source from `env` and `facts` and starts a fetch, or refuses before
    /// anything is sent. `random` seeds the request id.
    pub fn start(
        &mut self,
        now: UnixMillis,
        scope: &str,
        selector: &IdentitySelector,
        env: &EnvSnapshot,
        facts: HostFacts,
        random: [u8; 16],
    ) -> Result<Start, Error> {
        let resource = resource_from_scope(scope)?;
        selector.validate()?;
        let detection = detect(env, facts, selector.kind())?;
        let source = detection.source;
        self.last_source = Some(source);
        if let Some(token) =
            self.cache
                .get(now, source, selector.kind(), selector.value(), resource)
        {
            return Ok(Start::Cached(token.clone()));
        }
        check_selector(source, selector)?;
        let flow = match source {
            Source::AzureArc | Source::WorkloadIdentity if facts.no_file_access => {
                // Never fall back to IMDS: the platform said it is something else.
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    Some(source),
                    format!(
                        "{source} needs to read a file ({}), which this host cannot do (proxy-wasm has no file access); run the azmi component in a host with wasi:filesystem",
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
        let request = build_request(&detection, env, selector, resource, &request_id(random))?;
        let key = CacheKey {
            source,
            kind: selector.kind(),
            id: selector.value().to_string(),
            resource: resource.to_string(),
        };
        Ok(Start::Fetch(Box::new(
            Acquisition::new(
                key,
                selector.clone(),
                request,
                detection.endpoint_variable,
                flow,
            )
            .with_answered_before(self.answered_by == Some(source)),
        )))
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
            .map(|a| a.token.clone());
        Ok(Flow::Workload {
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            token_file: token_file.to_string(),
            cached_assertion,
        })
    }

    /// Records the outcome of a finished fetch (`now` = when it finished) and returns it.
    pub fn complete(
        &mut self,
        now: UnixMillis,
        acquisition: &Acquisition,
        outcome: Result<AccessToken, Error>,
    ) -> Result<AccessToken, Error> {
        if let Some((token, read_at)) = acquisition.assertion_read() {
            self.assertion = Some(Assertion {
                path: acquisition_token_file(acquisition),
                token: token.clone(),
                read_at: *read_at,
            });
        }
        if let Ok(token) = &outcome {
            self.answered_by = Some(acquisition.source());
            self.cache
                .insert(now, acquisition.key().clone(), token.clone());
        }
        outcome
    }

    /// Number of cached tokens.
    pub fn cached_tokens(&self) -> usize {
        self.cache.count()
    }
}
