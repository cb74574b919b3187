//! The long-lived credential: validation, detection and the cache around [`Acquisition`].

use super::acquisition::Acquisition;
use super::cache::{CacheKey, TokenCache};
use super::detect::detect;
use super::env::{EnvSnapshot, HostFacts};
use super::error::{Error, ErrorKind};
use super::request::{build_request, check_selector, request_id};
use super::scope::resource_from_scope;
use super::selector::IdentitySelector;
use super::time::UnixMillis;
use super::token::AccessToken;

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
        if !source.spec().implemented {
            // Never fall back to IMDS silently: the platform said it is something else.
            return Err(Error::new(
                ErrorKind::Unavailable,
                Some(source),
                format!(
                    "{source} detected ({} set) but this azmi version does not support it yet; use a host with IMDS or App Service, or unset those variables",
                    source.spec().variables
                ),
            ));
        }
        let request = build_request(&detection, env, selector, resource, &request_id(random))?;
        let key = CacheKey {
            source,
            kind: selector.kind(),
            id: selector.value().to_string(),
            resource: resource.to_string(),
        };
        Ok(Start::Fetch(Box::new(
            Acquisition::new(key, selector.clone(), request, detection.endpoint_variable)
                .with_answered_before(self.answered_by == Some(source)),
        )))
    }

    /// Records the outcome of a finished fetch (`now` = when it finished) and returns it.
    pub fn complete(
        &mut self,
        now: UnixMillis,
        acquisition: &Acquisition,
        outcome: Result<AccessToken, Error>,
    ) -> Result<AccessToken, Error> {
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
