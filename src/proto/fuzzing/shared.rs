//! The `shared_entry` target: entries and leases read back from a shared store (Redis, Spin's
//! key-value store), which other instances, or anyone who can write the store, wrote.

use super::Input;
use super::parsers::NOW;
use crate::proto::{
    CLOCK_SKEW_MS, LEASE_MS, Shared, decode_entry, encode_entry, lease_until, read_entry,
};

/// Bytes: how far the clock is past 2025-06-15T15:06:40Z (u32 seconds), then the stored value.
///
/// A decoded entry is a token a header can carry with its timings in order, and it round
/// trips through [`encode_entry`]; [`read_entry`] serves only a usable token, as `Fresh` only
/// before its refresh is due; a lease holds only after `now` and at most one lease time (plus
/// the clock skew allowed) ahead.
pub fn shared_entry(data: &[u8]) {
    let mut input = Input::new(data);
    let now = NOW.plus_millis(u64::from(input.u32()) * 1000);
    let stored = input.rest();
    if let Some(token) = decode_entry(stored) {
        let secret = token.secret();
        assert!(
            !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic() && b != b','),
            "a stored token a header cannot carry"
        );
        assert!(
            token.refresh_on() <= token.usable_until()
                && token.usable_until() <= token.expires_on(),
            "stored timings out of order: {token:?}"
        );
        assert_eq!(decode_entry(&encode_entry(&token)).as_ref(), Some(&token));
    }
    match read_entry(Some(stored), now) {
        Shared::Fresh(token) => {
            assert!(token.is_fresh(now) && !token.refresh_due(now), "{token:?}")
        }
        Shared::RefreshDue(token) => {
            assert!(token.is_fresh(now) && token.refresh_due(now), "{token:?}")
        }
        Shared::Miss => {}
    }
    if let Some(until) = lease_until(Some(stored), now) {
        assert!(now < until, "a lease that already ended");
        assert!(
            until.0 <= now.0 + LEASE_MS + CLOCK_SKEW_MS,
            "a lease too far ahead"
        );
    }
}
