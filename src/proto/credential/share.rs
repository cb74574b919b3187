//! The shared cache's side of the credential: where a call's token lives in a shared store
//! ([`SharedSlot`], the core's `shared` module has the format and the lease), and adopting a
//! token read from it.

use super::ManagedIdentity;
use super::TokenRequest;
use crate::proto::cache::CacheKey;
use crate::proto::env::{EnvSnapshot, HostFacts, IdentityEnv};
use crate::proto::error::Error;
use crate::proto::shared::{KeyParts, shared_key};
use crate::proto::time::UnixMillis;
use crate::proto::token::AccessToken;

/// Where one call's token lives in a shared store.
#[derive(Clone, Debug)]
pub struct SharedSlot {
    /// The entry's store key (its lease is [`crate::proto::lease_key`] of it).
    pub key: String,
    pub(super) cache_key: CacheKey,
    pub(super) identity_env: IdentityEnv,
}

impl ManagedIdentity {
    /// Where a call's token lives in a shared store (the core's `shared` module), decided like
    /// [`ManagedIdentity::check`]: the same refusals, nothing sent, nothing changed.
    pub fn share(
        env: &EnvSnapshot,
        facts: HostFacts,
        request: &TokenRequest<'_>,
    ) -> Result<SharedSlot, Error> {
        let (scope, selector) = (request.scope, request.selector);
        let (plan, http) = Self::dry_run(env, facts, scope, selector, request.credential)?;
        let resource = &scope[..plan.resource_len];
        let path = http.path_and_query.split('?').next().unwrap_or_default();
        let endpoint = format!("{}://{}{path}", http.scheme.as_str(), http.authority);
        let kind = selector.kind();
        let identity_env = IdentityEnv::of(env);
        let key = shared_key(&KeyParts {
            source: plan.detection.source,
            selector_kind: kind.describe(),
            selector_value: selector.value(),
            resource,
            endpoint: &endpoint,
            identity_env: &identity_env.canonical(),
        });
        Ok(SharedSlot {
            key,
            identity_env,
            cache_key: CacheKey {
                generation: 0,
                source: plan.detection.source,
                kind,
                id: selector.value().to_string(),
                resource: resource.to_string(),
            },
        })
    }

    /// Keeps `token`, read from the shared store at `now`, in this instance's cache too.
    pub fn adopt(&mut self, now: UnixMillis, slot: &SharedSlot, token: AccessToken) {
        self.observe(slot.identity_env.clone());
        self.last_source = Some(slot.cache_key.source);
        let key = CacheKey {
            generation: self.generation,
            ..slot.cache_key.clone()
        };
        self.cache.insert(now, key, token);
    }
}
