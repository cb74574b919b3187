//! One call's inputs and the credential's answers to it: [`TokenRequest`], [`Cached`],
//! [`Start`].

use crate::proto::acquisition::Acquisition;
use crate::proto::chain::Link;
use crate::proto::retry::DEFAULT_CALL_DEADLINE_MS;
use crate::proto::selector::IdentitySelector;
use crate::proto::token::AccessToken;

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
    /// Which credential of the default chain serves the call ([`Link::ManagedIdentity`]
    /// unless a chain drives it: [`crate::proto::DefaultChain`]).
    pub credential: Link,
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
            credential: Link::ManagedIdentity,
        }
    }

    /// How long the call may take, retries included: `timeout_ms`, else
    /// `DEFAULT_CALL_DEADLINE_MS` (120 s).
    pub fn call_timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(DEFAULT_CALL_DEADLINE_MS)
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
    /// Serve this token, and start a proactive refresh ([`ManagedIdentity::start`](crate::proto::ManagedIdentity::start)) when you
    /// can; if you serve callers one at a time, refresh now.
    RefreshDue(&'a AccessToken),
    /// Nothing usable: [`ManagedIdentity::start`](crate::proto::ManagedIdentity::start) a fetch.
    Miss,
}

/// Returned by [`ManagedIdentity::start`](crate::proto::ManagedIdentity::start).
#[derive(Debug)]
pub enum Start {
    /// A usable cached token.
    Cached(AccessToken),
    /// Drive this fetch, then hand its outcome to [`ManagedIdentity::finish`](crate::proto::ManagedIdentity::finish).
    Fetch(Box<Acquisition>),
    /// A fetch for this key is already in flight and nothing usable is cached: wait for it
    /// to finish, then ask again.
    Wait,
}
