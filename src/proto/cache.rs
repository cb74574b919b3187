//! In-memory token cache keyed per §14 rule 24.

use super::selector::SelectorKind;
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;

/// At most this many entries; on overflow expired entries go first, then the oldest.
pub const MAX_ENTRIES: usize = 64;

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
    fn matches(&self, source: Source, kind: SelectorKind, id: &str, resource: &str) -> bool {
        self.source == source && self.kind == kind && self.id == id && self.resource == resource
    }
}

/// Tokens by key. A handful of entries per process, so a vector beats a map on size and speed.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Vec<(CacheKey, AccessToken)>,
}

impl TokenCache {
    /// The fresh token for this key at `now`, without allocating.
    pub fn get(
        &self,
        now: UnixMillis,
        source: Source,
        kind: SelectorKind,
        id: &str,
        resource: &str,
    ) -> Option<&AccessToken> {
        self.entries
            .iter()
            .find(|(k, _)| k.matches(source, kind, id, resource))
            .map(|(_, t)| t)
            .filter(|t| t.is_fresh(now))
    }

    /// Stores `token` under `key`, replacing any previous one.
    pub fn insert(&mut self, now: UnixMillis, key: CacheKey, token: AccessToken) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = token;
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|(_, t)| t.is_fresh(now));
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.remove(0);
            }
        }
        self.entries.push((key, token));
    }

    /// Number of entries, fresh or not.
    pub fn count(&self) -> usize {
        self.entries.len()
    }
}
