//! The blocking loop with a shared store: [`get_token_shared`] serves from this instance's
//! cache, else from the store, else takes the store's lease and fetches once for everyone
//! (the format and the rules are the core's `shared` module docs).
//!
//! ```text
//! local cache ── Fresh ─────────────────────────────────────────► token
//!      │ else
//!      ▼
//! store entry ── Fresh ──────────────── keep it locally ─────────► token
//!      │ RefreshDue / Miss
//!      ▼
//! store lease ── held ── RefreshDue: serve it ───────────────────► token
//!      │            └─── Miss: wait FOLLOW_POLL_MS, read again (until the lease ends)
//!      │ free
//!      ▼
//! swap in our lease ── lost ── read again
//!      │ won
//!      ▼
//! store entry again ── Fresh (written meanwhile) ── release ─────► token
//!      │ else
//!      ▼
//! fetch (get_token) ── write the entry ── release the lease ────► token or error
//! ```
//!
//! A store that fails is dropped for the rest of the instance's life with one warning, and
//! the call goes on with the in-instance cache: a broken store never fails `get-token`.

use super::{Io, get_token};
use crate::proto::{
    AccessToken, Error, ErrorKind, FOLLOW_POLL_MS, LEASE_MS, ManagedIdentity, Shared, SharedSlot,
    TokenRequest, UnixMillis, encode_entry, encode_lease, lease_key, lease_until, read_entry,
};

/// After a proactive refresh failed, the lease is kept this long so that the other instances
/// keep serving the still-usable token instead of each trying again (the in-instance rule).
pub const FAILED_REFRESH_HOLD_MS: u64 = 30_000;

/// A key-value store shared by the instances (wasi:keyvalue, proxy-wasm shared data, Redis,
/// files). Values are secrets: implementations never log them.
pub trait SharedStore {
    /// What a read remembers so that a later write can be made conditional on it.
    type Version;
    /// The value at `key` (`None`: absent) and its version.
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Self::Version), StoreError>;
    /// Writes `value` at `key` unless it changed since `version` was read; `Ok(false)` when it
    /// had (someone else wrote first).
    fn swap(&mut self, key: &str, version: Self::Version, value: &[u8])
    -> Result<bool, StoreError>;
    /// Writes `value` at `key`.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

/// Why the store could not be used; the text is for the one warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// One `get-token` call through `store`. `store` is set to `None`, with one warning through
/// `warn`, the first time it fails; the call then continues as [`get_token`].
pub fn get_token_shared<T, S: SharedStore>(
    credential: &mut ManagedIdentity,
    request: &TokenRequest<'_>,
    io: &mut impl Io,
    store: &mut Option<S>,
    warn: impl FnOnce(&str),
    map: impl FnOnce(&AccessToken) -> T,
) -> Result<T, Error> {
    let now = io.now();
    if let Some(token) = super::fresh(credential, request, now)? {
        return Ok(map(token));
    }
    let Some(shared) = store.as_mut() else {
        return get_token(credential, request, io, map);
    };
    let (env, facts) = (io.env(), io.facts());
    let slot = ManagedIdentity::share(&env, facts, request)?;
    match through_store(credential, request, io, shared, &slot) {
        Ok(result) => result.map(|token| map(&token)),
        Err(failure) => {
            *store = None;
            warn(&format!(
                "the shared token cache is unavailable ({}); this instance keeps its own cache from now on",
                failure.0
            ));
            get_token(credential, request, io, map)
        }
    }
}

/// The loop of the module diagram. `Err` only for a store failure.
fn through_store<S: SharedStore>(
    credential: &mut ManagedIdentity,
    request: &TokenRequest<'_>,
    io: &mut impl Io,
    store: &mut S,
    slot: &SharedSlot,
) -> Result<Result<AccessToken, Error>, StoreError> {
    let lease = lease_key(&slot.key);
    let started = io.now();
    let deadline = started.plus_millis(request.call_timeout_ms());
    loop {
        let now = io.now();
        let entry = if request.bypasses_cache() {
            Shared::Miss
        } else {
            read_entry(store.get(&slot.key)?.0.as_deref(), now)
        };
        if let Shared::Fresh(token) = entry {
            credential.adopt(now, slot, token.clone());
            return Ok(Ok(token));
        }
        let (held, version) = store.get(&lease)?;
        if let Some(until) = lease_until(held.as_deref(), now) {
            if let Shared::RefreshDue(token) = entry {
                // Someone refreshes: serve the still-usable token meanwhile.
                return Ok(Ok(token));
            }
            if now >= deadline {
                return Ok(Err(Error::new(
                    ErrorKind::Transport,
                    None,
                    "another instance is fetching this token and did not finish before this call's deadline; retry later",
                )));
            }
            io.sleep_until(now.plus_millis(FOLLOW_POLL_MS).min(until).min(deadline));
            continue;
        }
        let holder = u64::from_le_bytes(io.random()[..8].try_into().unwrap_or_default());
        if !store.swap(
            &lease,
            version,
            &encode_lease(now.plus_millis(LEASE_MS), holder),
        )? {
            continue;
        }
        // We hold the lease. Another instance may have written the entry and released its
        // lease between our read of the entry and our swap: read the entry again first.
        if !request.bypasses_cache()
            && let Shared::Fresh(token) = read_entry(store.get(&slot.key)?.0.as_deref(), io.now())
        {
            store.set(&lease, &encode_lease(UnixMillis(0), holder))?;
            credential.adopt(now, slot, token.clone());
            return Ok(Ok(token));
        }
        // Fetch once for everyone.
        let refreshing = match &entry {
            Shared::RefreshDue(token) => {
                credential.adopt(now, slot, token.clone());
                Some(token.secret().to_string())
            }
            _ => None,
        };
        let result = get_token(credential, request, io, AccessToken::clone);
        let end = io.now();
        let release = match &result {
            // A failed refresh served the old token: hold the lease so the others do too.
            Ok(token) if refreshing.as_deref() == Some(token.secret()) => {
                end.plus_millis(FAILED_REFRESH_HOLD_MS.min(LEASE_MS))
            }
            Ok(token) => {
                store.set(&slot.key, &encode_entry(token))?;
                UnixMillis(0)
            }
            Err(_) => UnixMillis(0),
        };
        store.set(&lease, &encode_lease(release, holder))?;
        return Ok(result);
    }
}
