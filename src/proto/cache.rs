//! In-memory token cache keyed per §14 rule 24, with proactive-refresh bookkeeping
//! (rules 26–27) and a bounded size.

use super::selector::SelectorKind;
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;

/// At most this many entries; on overflow expired entries go first, then the least recently
/// used.
pub const MAX_ENTRIES: usize = 64;
/// After a failed proactive refresh, the next attempt waits at least this long (§14 rule 27,
/// Python's 30 s).
pub const REFRESH_RETRY_MS: u64 = 30_000;

/// The cache key: (source, selector kind, selector value, resource after `/.default`
/// stripping) — not the resource the service echoes (§14 rule 24).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
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
        source: Source,
        kind: SelectorKind,
        id: &str,
        resource: &str,
    ) -> bool {
        self.source == source && self.kind == kind && self.id == id && self.resource == resource
    }
}

/// What the cache holds for a key at some instant.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Serve this token; nothing to do.
    Fresh(&'a AccessToken),
    /// Serve this token, but a proactive refresh is due: try one, and if it fails for any
    /// reason keep serving this token (§14 rule 27).
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
pub struct TokenCache {
    entries: Vec<Entry>,
}

impl TokenCache {
    /// What the cache holds for this key at `now`, without allocating.
    pub fn lookup(
        &mut self,
        now: UnixMillis,
        source: Source,
        kind: SelectorKind,
        id: &str,
        resource: &str,
    ) -> Lookup<'_> {
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.key.matches(source, kind, id, resource))
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

    /// The stored token for `key`, usable or not (to revoke it, §12.4).
    pub fn peek(&self, key: &CacheKey) -> Option<&AccessToken> {
        self.entries
            .iter()
            .find(|e| e.key == *key)
            .map(|e| &e.token)
    }

    /// Stores `token` under `key`, replacing any previous one.
    pub fn insert(&mut self, now: UnixMillis, key: CacheKey, token: AccessToken) {
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
    pub fn refresh_failed(&mut self, now: UnixMillis, key: &CacheKey) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == *key) {
            entry.retry_refresh_at = now.plus_millis(REFRESH_RETRY_MS);
        }
    }

    /// Number of entries, fresh or not.
    pub fn count(&self) -> usize {
        self.entries.len()
    }
}
