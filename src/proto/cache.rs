//! In-memory token cache with proactive-refresh bookkeeping and a bounded size.
//!
//! # Key
//!
//! ([`CacheKey`]) = (source, selector kind, selector value, requested resource after
//! `/.default` stripping). Not the resource the service echoes: Python azure-identity's own
//! client (`_internal/managed_identity_client.py`) keys by the echo and fails on a response
//! without one, and msal-node's key uses the echo when present, so a lookup by the requested
//! resource can miss. The source is part of the key because the environment is read per fetch
//! and tokens of two sources must never mix (the SDKs get away without it only because their
//! source is fixed for the process); the selector *kind* because a client id and a resource id
//! must never share a token. No trailing-slash
//! normalization of the resource: `https://management.azure.com` and
//! `https://management.azure.com/` are different entries, as in every SDK.
//!
//! # Lookups and refresh
//!
//! * A token is served while it is usable (5 minutes before expiry, see
//!   [`crate::proto::token`]); after that it is a miss, so an expired token is never returned.
//! * From its refresh time on, a lookup says [`Lookup::RefreshDue`]: the caller still gets the
//!   cached token, and the credential starts one refresh for that key (single flight: one
//!   fetch in flight per key, other callers keep getting the cached token, as MSAL Go does).
//! * If that refresh fails for **any** reason — including a transport error — the cached
//!   token keeps being served ([`TokenCache::refresh_failed`]) and the next attempt waits
//!   [`REFRESH_RETRY_MS`] (30 s, MSAL Python's pause). msal-node fails the caller when its
//!   refresh hits a network error although the cached token is still valid; MSAL Go and MSAL
//!   Python keep the old token.
//! * `force-refresh` and a claims challenge skip the lookup (the credential does it); on
//!   Service Fabric the cached token is then named for revocation ([`TokenCache::peek`]).
//!
//! # Size
//!
//! At most [`MAX_ENTRIES`] per instance. On overflow expired entries are dropped first, then
//! the least recently used one. A handful of entries is the normal case (one per resource and
//! identity), so a vector scan beats a map in both size and speed.

use super::selector::SelectorKind;
use super::source::Source;
use super::text_eq::same_text;
use super::time::UnixMillis;
use super::token::AccessToken;

/// At most this many entries; on overflow expired entries go first, then the least recently
/// used.
pub(super) const MAX_ENTRIES: usize = 64;
/// After a failed proactive refresh, the next attempt waits at least this long (MSAL Python's
/// 30 s).
pub(super) const REFRESH_RETRY_MS: u64 = 30_000;

/// The cache key: (environment generation, source, selector kind, selector value, resource
/// after `/.default` stripping) — not the resource the service echoes. The generation
/// changes when a fetch sees the identity variables change (see
/// [`crate::proto::env::IdentityEnv`]): a token of the old environment never answers for
/// the new one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// The credential's environment generation when the fetch started.
    pub generation: u32,
    /// The source that issued the token.
    pub source: Source,
    /// Selector kind.
    pub kind: SelectorKind,
    /// Selector value (`""` for system-assigned).
    pub id: String,
    /// Requested resource.
    pub resource: String,
}

impl CacheKey {
    /// True when this key is (source, kind, id, resource), compared without allocating.
    pub(crate) fn matches(
        &self,
        generation: u32,
        source: Source,
        kind: SelectorKind,
        id: &str,
        resource: &str,
    ) -> bool {
        self.generation == generation
            && self.source == source
            && self.kind == kind
            && same_text(&self.id, id)
            && same_text(&self.resource, resource)
    }
}

/// What the cache holds for a key at some instant.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup<'a> {
    /// Serve this token; nothing to do.
    Fresh(&'a AccessToken),
    /// Serve this token, but a proactive refresh is due: try one, and if it fails for any
    /// reason (transport errors included) keep serving this token.
    RefreshDue(&'a AccessToken),
    /// Nothing usable: fetch.
    Miss,
}

#[derive(Debug)]
struct Entry {
    key: CacheKey,
    token: AccessToken,
    /// No refresh attempt before this (after a failed one).
    retry_refresh_at: UnixMillis,
    last_used: UnixMillis,
}

/// Tokens by key. A handful of entries per instance, so a vector beats a map on size and
/// speed.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    entries: Vec<Entry>,
}

impl TokenCache {
    /// What the cache holds for this key at `now`, without allocating.
    pub(super) fn lookup(
        &mut self,
        now: UnixMillis,
        generation: u32,
        source: Source,
        kind: SelectorKind,
        id: &str,
        resource: &str,
    ) -> Lookup<'_> {
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.key.matches(generation, source, kind, id, resource))
        else {
            return Lookup::Miss;
        };
        if !entry.token.is_fresh(now) {
            return Lookup::Miss;
        }
        entry.last_used = now;
        if entry.token.refresh_due(now) && now >= entry.retry_refresh_at {
            Lookup::RefreshDue(&entry.token)
        } else {
            Lookup::Fresh(&entry.token)
        }
    }

    /// The stored token for `key`, usable or not (Service Fabric revocation names it by its
    /// SHA-256 in `token_sha256_to_refresh`).
    pub(super) fn peek(&self, key: &CacheKey) -> Option<&AccessToken> {
        self.entries
            .iter()
            .find(|e| e.key == *key)
            .map(|e| &e.token)
    }

    /// Stores `token` under `key`, replacing any previous one.
    pub(super) fn insert(&mut self, now: UnixMillis, key: CacheKey, token: AccessToken) {
        let entry = Entry {
            key,
            token,
            retry_refresh_at: UnixMillis(0),
            last_used: now,
        };
        if let Some(slot) = self.entries.iter_mut().find(|e| e.key == entry.key) {
            *slot = entry;
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|e| e.token.is_fresh(now));
        }
        if self.entries.len() >= MAX_ENTRIES
            && let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used)
        {
            self.entries.swap_remove(oldest);
        }
        self.entries.push(entry);
    }

    /// A proactive refresh of `key` failed at `now`: keep serving the token, try again after
    /// [`REFRESH_RETRY_MS`].
    pub(super) fn refresh_failed(&mut self, now: UnixMillis, key: &CacheKey) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == *key) {
            entry.retry_refresh_at = now.plus_millis(REFRESH_RETRY_MS);
        }
    }

    /// Number of entries, fresh or not.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(super) fn count(&self) -> usize {
        self.entries.len()
    }
}
