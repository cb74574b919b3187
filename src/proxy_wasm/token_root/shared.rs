//! The shared-store steps of [`TokenRoot`]: the rules of [`crate::drive::get_token_shared`]
//! (the core's `shared` module), without blocking. Envoy runs one VM per worker thread; with
//! the store, one worker fetches and the others read its token.
//!
//! ```text
//! root cache ── Fresh ───────────────────────────────────────────► serve
//!      │ else (a request reads the entry too, and serves a usable one at once)
//!      ▼
//! store entry ── Fresh ──── adopt ───────────────────────────────► resume every request
//!      │ RefreshDue / Miss
//!      ▼
//! store lease ── held ── RefreshDue: adopt, serve it ────────────► resume every request
//!      │            └─── Miss: keep requests paused, tick again in FOLLOW_POLL_MS
//!      │ free                 (at most until the lease ends)
//!      ▼
//! swap in our lease ── lost ── tick again in FOLLOW_POLL_MS
//!      │ won
//!      ▼
//! start + pump (one fetch) ── done ── write the entry, release the lease
//!                                └─── failed refresh, token kept: hold the lease
//!                                     FAILED_REFRESH_HOLD_MS so the others keep it too
//! ```
//!
//! A store that fails is dropped for the rest of the root's life with one warning, and the
//! root goes on with its own cache: a broken store never fails a request.

use super::{Bearer, Dispatch, Effects, Level, TokenRoot, Verdict, seed};
use crate::drive::{FAILED_REFRESH_HOLD_MS, SharedStore, StoreError};
use crate::proto::{
    AccessToken, FOLLOW_POLL_MS, LEASE_MS, Shared, UnixMillis, encode_entry, encode_lease,
    lease_key, lease_until, read_entry,
};

/// What the store says this root should do.
enum Next {
    /// Serve this token (another worker's).
    Serve(AccessToken),
    /// Another worker fetches: read again at this time.
    Follow(UnixMillis),
    /// This root holds the lease (holder id): fetch for everyone, refreshing this token if
    /// there is one.
    Lead(u64, Option<AccessToken>),
}

impl TokenRoot {
    /// For a request that found nothing in the root's cache: the store's usable token, adopted
    /// into the cache, and whether its refresh is due.
    pub(super) fn adopt_stored(
        &mut self,
        now: UnixMillis,
        store: &mut impl SharedStore,
    ) -> Option<(Bearer, bool)> {
        let slot = self.slot.as_ref()?;
        let read = store.get(&slot.key);
        let (token, due) = match read {
            Ok((bytes, _)) => match read_entry(bytes.as_deref(), now) {
                Shared::Fresh(token) => (token, false),
                Shared::RefreshDue(token) => (token, true),
                Shared::Miss => return None,
            },
            Err(failure) => {
                self.store_failed(&failure);
                return None;
            }
        };
        let bearer = Bearer::new(&token);
        self.identity.adopt(now, slot, token);
        Some((bearer, due))
    }

    /// The root needs a token (requests wait) or a refresh: through the store when there is
    /// one, else a fetch of its own.
    pub(super) fn acquire(
        &mut self,
        now: UnixMillis,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        let next = match self.consult(now, store) {
            Ok(Some(next)) => next,
            Ok(None) => return self.start(now, dispatch, store),
            Err(failure) => {
                self.store_failed(&failure);
                return self.start(now, dispatch, store);
            }
        };
        match next {
            Next::Serve(token) => {
                let verdict = Verdict::Forward(Bearer::new(&token));
                if let Some(slot) = &self.slot {
                    self.identity.adopt(now, slot, token);
                }
                self.resume_all(verdict)
            }
            Next::Follow(at) => {
                self.follow = Some(at);
                Effects::default()
            }
            Next::Lead(holder, refreshing) => {
                if let (Some(slot), Some(token)) = (&self.slot, refreshing) {
                    // The fetch becomes a refresh that keeps this token if it fails.
                    self.identity.adopt(now, slot, token);
                }
                self.lease = Some(holder);
                self.start(now, dispatch, store)
            }
        }
    }

    /// Reads the entry, then the lease, and takes the lease when it is free. `Ok(None)`: no
    /// store.
    fn consult(
        &mut self,
        now: UnixMillis,
        store: &mut impl SharedStore,
    ) -> Result<Option<Next>, StoreError> {
        let Some(slot) = &self.slot else {
            return Ok(None);
        };
        let entry = read_entry(store.get(&slot.key)?.0.as_deref(), now);
        if let Shared::Fresh(token) = entry {
            return Ok(Some(Next::Serve(token)));
        }
        let lease = lease_key(&slot.key);
        let (held, version) = store.get(&lease)?;
        if let Some(until) = lease_until(held.as_deref(), now) {
            return Ok(Some(match entry {
                // Someone refreshes: serve the still-usable token meanwhile.
                Shared::RefreshDue(token) => Next::Serve(token),
                _ => Next::Follow(now.plus_millis(FOLLOW_POLL_MS).min(until)),
            }));
        }
        // The holder id only labels the lease (the swap decides who holds it).
        let id = seed(now, !self.fetches);
        let holder = u64::from_le_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]]);
        let ours = encode_lease(now.plus_millis(LEASE_MS), holder);
        if !store.swap(&lease, version, &ours)? {
            // Another worker was first (or the lease key was only just created).
            return Ok(Some(Next::Follow(now.plus_millis(FOLLOW_POLL_MS))));
        }
        let refreshing = match entry {
            Shared::RefreshDue(token) => Some(token),
            _ => None,
        };
        Ok(Some(Next::Lead(holder, refreshing)))
    }

    /// Ends the lease this root holds, if any: writes `token` as the entry first; holds the
    /// lease on for [`FAILED_REFRESH_HOLD_MS`] when `hold` (a failed refresh kept the token).
    pub(super) fn end_lease(
        &mut self,
        now: UnixMillis,
        store: &mut impl SharedStore,
        token: Option<&AccessToken>,
        hold: bool,
    ) {
        let (Some(holder), Some(slot)) = (self.lease.take(), &self.slot) else {
            return;
        };
        let until = if hold {
            now.plus_millis(FAILED_REFRESH_HOLD_MS.min(LEASE_MS))
        } else {
            UnixMillis(0)
        };
        let written = match token {
            Some(token) => store.set(&slot.key, &encode_entry(token)),
            None => Ok(()),
        };
        let result =
            written.and_then(|()| store.set(&lease_key(&slot.key), &encode_lease(until, holder)));
        if let Err(failure) = result {
            self.store_failed(&failure);
        }
    }

    /// The store failed: from now on this root keeps its own cache; one warning.
    fn store_failed(&mut self, failure: &StoreError) {
        self.slot = None;
        self.follow = None;
        self.lease = None;
        self.notes.push((
            Level::Warn,
            format!(
                "the shared token cache is unavailable ({}); this worker keeps its own cache from now on",
                failure.0
            ),
        ));
    }

    /// `effects` with the lines noted since the last ones first.
    pub(super) fn with_notes(&mut self, mut effects: Effects) -> Effects {
        if !self.notes.is_empty() {
            let mut log = std::mem::take(&mut self.notes);
            log.append(&mut effects.log);
            effects.log = log;
        }
        effects
    }
}
