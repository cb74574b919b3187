//! The token handed back to callers, its expiry margin and refresh time; its `Debug` never
//! shows the secret.
//!
//! # Expiry margin
//!
//! A token is *usable* until 5 minutes before `expires_on` ([`EXPIRY_MARGIN_SECS`]: msal-node's
//! `tokenRenewalOffsetSeconds`, MSAL Go and MSAL Python all use 5 minutes), so a caller never
//! gets a token that expires in flight, and the cache never returns an expired token. One
//! deliberate difference: a token that lives less than 20 minutes keeps its last quarter as the
//! margin instead (a 1-minute token is served for 45 s), so short-lived tokens do not turn
//! into one request per call.
//!
//! # Proactive refresh
//!
//! [`AccessToken::refresh_on`] is when the cache starts refreshing in the background of calls
//! that still get this token:
//!
//! | the response had | refresh at | precedent |
//! |---|---|---|
//! | `refresh_in` | receipt + `refresh_in`, at least [`MIN_REFRESH_IN_SECS`] | MSAL Go honours it (msal-node and MSAL Python drop it) |
//! | no `refresh_in`, lifetime ≥ 2 h ([`HALF_LIFE_THRESHOLD_SECS`]) | half the lifetime | all three MSALs (msal-node and MSAL Go: more than 2 h; MSAL Python: at least 2 h) |
//! | no `refresh_in`, shorter lifetime | 5 minutes before expiry, but not before half the lifetime | the MSALs simply let it expire at the margin |
//!
//! Always capped at the usable time. Managed-identity tokens typically live 24 h, so they are
//! refreshed after about 12 h; the half-life rule came in after reports of MI tokens that were
//! never refreshed (Azure/azure-sdk-for-js#24095). What happens when a refresh fails (the
//! cached token is kept and the next attempt waits) is in [`crate::proto::cache`].

use super::source::Source;
use super::time::UnixMillis;

/// Tokens are treated as expired this long before `expires_on` (all three MSALs).
pub(super) const EXPIRY_MARGIN_SECS: u64 = 300;
/// A server `refresh_in` shorter than this is raised to it (the same 30 s as the pause after a
/// failed refresh, [`crate::proto::cache::REFRESH_RETRY_MS`]), so a zero `refresh_in` cannot make
/// every call a request.
pub(super) const MIN_REFRESH_IN_SECS: u64 = 30;
/// Lifetimes at least this long refresh at half-life (two hours, as the MSALs).
pub(super) const HALF_LIFE_THRESHOLD_SECS: u64 = 7200;

/// An access token and its timing.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: String,
    expires_on: u64,
    refresh_on: u64,
    /// Treated as expired from here on (unix seconds).
    usable_until: u64,
    source: Source,
}

impl AccessToken {
    /// A token received at `received_at` that expires at `expires_on` (unix seconds).
    /// `refresh_in` is the server's suggestion (seconds after receipt), if any.
    pub fn new(
        token: String,
        expires_on: u64,
        received_at: UnixMillis,
        refresh_in: Option<u64>,
        source: Source,
    ) -> Self {
        let received = received_at.as_secs();
        let lifetime = expires_on.saturating_sub(received);
        // The MSALs' 5 minutes; a token that lives less than 20 minutes keeps its last
        // quarter instead, so a 1-minute token is served for 45 s rather than refetched on
        // every call (the request storm msal-node causes with "expired at issue" tokens).
        let usable_until = expires_on - EXPIRY_MARGIN_SECS.min(lifetime / 4);
        // Server `refresh_in`, else half-life for long tokens, else 5 minutes before expiry;
        // never earlier than half the lifetime (short tokens) and never after
        // the token stops being usable.
        let refresh_on = match refresh_in {
            // At least 30 s: a server saying "refresh now" must not cost a request per call.
            Some(r) => received.saturating_add(r.max(MIN_REFRESH_IN_SECS)),
            None if lifetime >= HALF_LIFE_THRESHOLD_SECS => received + lifetime / 2,
            None => expires_on
                .saturating_sub(EXPIRY_MARGIN_SECS)
                .max(received + lifetime / 2),
        }
        .min(usable_until);
        Self {
            token,
            expires_on,
            refresh_on,
            usable_until,
            source,
        }
    }

    /// A token exactly as stored (shared cache entries, already validated).
    pub(crate) fn from_parts(
        token: String,
        expires_on: u64,
        refresh_on: u64,
        usable_until: u64,
        source: Source,
    ) -> Self {
        Self {
            token,
            expires_on,
            refresh_on,
            usable_until,
            source,
        }
    }

    /// The bearer token. Treat it as a secret.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// Expiry, unix seconds.
    pub fn expires_on(&self) -> u64 {
        self.expires_on
    }

    /// When a refresh is due, unix seconds (rules: module docs, "Proactive refresh").
    pub fn refresh_on(&self) -> u64 {
        self.refresh_on
    }

    /// Always `Bearer`: other token types (PoP) are refused while parsing.
    pub fn token_type(&self) -> &'static str {
        "Bearer"
    }

    /// The source that issued it.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Usable at `now`: more than `EXPIRY_MARGIN_SECS` before expiry (or, for tokens
    /// living under 20 minutes, before their last quarter).
    pub fn is_fresh(&self, now: UnixMillis) -> bool {
        now < UnixMillis::from_secs(self.usable_until)
    }

    /// When the cache stops serving it, unix seconds.
    pub fn usable_until(&self) -> u64 {
        self.usable_until
    }

    /// A proactive refresh is due at `now`.
    pub fn refresh_due(&self, now: UnixMillis) -> bool {
        now >= UnixMillis::from_secs(self.refresh_on)
    }
}

impl core::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AccessToken")
            .field(
                "token",
                &format_args!("<{} bytes redacted>", self.token.len()),
            )
            .field("expires_on", &self.expires_on)
            .field("refresh_on", &self.refresh_on)
            .field("source", &self.source)
            .finish()
    }
}
