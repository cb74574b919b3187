//! The shared cache: tokens kept in a key-value store every instance on the machine (or every
//! replica) can read, so that one instance fetches and the others read, whatever the host's
//! instance model (Spin's instance per request, Envoy's VM per worker, a CLI process per call).
//!
//! This module is the store's format and the decisions over it; the loop that reads and writes
//! the store is [`crate::drive::get_token_shared`].
//!
//! * **Key.** `azmi/v1/` and the first 32 hex digits of the SHA-256 of everything that makes a
//!   token different: source, selector kind and value, resource, the token endpoint's
//!   scheme, authority and path, and the values of every identity-deciding variable (tenant,
//!   authority, client ids, endpoints: two instances whose environments name different
//!   identities never share a token).
//!   Nothing about the identity is readable from the key.
//! * **Entry.** JSON with a format version: the token, its expiry, refresh and usable-until
//!   times (unix seconds) and the source. Entries are secrets: whoever can read the store can
//!   use the token, so the store must be private to the workload (the hosts' docs say how).
//! * **Bad input is normal.** A value that is not valid JSON, has another version, a source
//!   this build does not know, times out of order, or a token with characters an HTTP header
//!   cannot carry is treated as absent and overwritten by the next fetch.
//! * **One fetch per refresh.** An instance that finds no usable entry (or one whose refresh
//!   is due) takes a *lease* — `<key>/lease`, written with compare-and-swap — reads the entry
//!   again (another instance may have written it and released its lease just before), fetches,
//!   writes the entry and releases the lease. Instances that find a live lease serve the entry's token
//!   when it is still usable, else wait for the entry ([`FOLLOW_POLL_MS`] between reads) until
//!   the lease ends; a lease ends by itself after [`LEASE_MS`], so a crashed instance cannot
//!   block the others for longer than that.

use serde::{Deserialize, Serialize};

use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;

/// Format version of entries and leases; anything else is ignored and overwritten.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// How long a lease holds: long enough for a fetch with a few retries; a holder that dies is
/// replaced after this.
pub const LEASE_MS: u64 = 30_000;
/// How far past `now + LEASE_MS` a lease may end and still hold: its writer read its clock
/// after we read ours (the usual case in a cold burst: a strict bound made a waiting instance
/// ignore a lease taken a few milliseconds after it started, and fetch too), or runs on
/// another machine whose clock is ahead.
pub const CLOCK_SKEW_MS: u64 = 5_000;

/// How often an instance waiting for another's fetch reads the store again.
pub const FOLLOW_POLL_MS: u64 = 25;
/// The key prefix, with the format version.
const KEY_PREFIX: &str = "azmi/v1/";

/// Everything that makes a token different, for [`shared_key`].
pub(crate) struct KeyParts<'a> {
    pub source: Source,
    pub selector_kind: &'a str,
    pub selector_value: &'a str,
    pub resource: &'a str,
    pub endpoint: &'a str,
    /// The identity-deciding variables ([`crate::proto::env::IdentityEnv::canonical`]).
    pub identity_env: &'a str,
}

/// The store key for a token.
pub(crate) fn shared_key(parts: &KeyParts<'_>) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for field in [
        parts.source.id(),
        parts.selector_kind,
        parts.selector_value,
        parts.resource,
        parts.endpoint,
        parts.identity_env,
    ] {
        hash.update(field.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut key = String::with_capacity(KEY_PREFIX.len() + 32);
    key.push_str(KEY_PREFIX);
    for b in &digest[..16] {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    key
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The lease key of entry `key`.
pub fn lease_key(key: &str) -> String {
    format!("{key}/lease")
}

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    v: u32,
    access_token: &'a str,
    expires_on: u64,
    refresh_on: u64,
    usable_until: u64,
    source: &'a str,
}

/// The stored form of `token`.
pub fn encode_entry(token: &AccessToken) -> Vec<u8> {
    let entry = Entry {
        v: FORMAT_VERSION,
        access_token: token.secret(),
        expires_on: token.expires_on(),
        refresh_on: token.refresh_on(),
        usable_until: token.usable_until(),
        source: token.source().id(),
    };
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// The token in a stored value, or `None` when the value is not one this build wrote.
pub fn decode_entry(bytes: &[u8]) -> Option<AccessToken> {
    let entry: Entry<'_> = serde_json::from_slice(bytes).ok()?;
    let source = Source::from_id(entry.source)?;
    let ordered = entry.refresh_on <= entry.usable_until && entry.usable_until <= entry.expires_on;
    let header_safe = !entry.access_token.is_empty()
        && entry
            .access_token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',');
    (entry.v == FORMAT_VERSION && ordered && header_safe).then(|| {
        AccessToken::from_parts(
            entry.access_token.to_string(),
            entry.expires_on,
            entry.refresh_on,
            entry.usable_until,
            source,
        )
    })
}

#[derive(Serialize, Deserialize)]
struct Lease {
    v: u32,
    until: u64,
    holder: u64,
}

/// A lease held by `holder` until `until`.
pub fn encode_lease(until: UnixMillis, holder: u64) -> Vec<u8> {
    serde_json::to_vec(&Lease {
        v: FORMAT_VERSION,
        until: until.0,
        holder,
    })
    .unwrap_or_default()
}

/// What the store says about a key at some instant.
#[derive(Debug, PartialEq, Eq)]
pub enum Shared {
    /// A usable token, no refresh due: serve it.
    Fresh(AccessToken),
    /// A usable token whose refresh is due: serve it, and refresh unless someone holds the
    /// lease.
    RefreshDue(AccessToken),
    /// Nothing usable.
    Miss,
}

/// Reads an entry at `now`.
pub fn read_entry(bytes: Option<&[u8]>, now: UnixMillis) -> Shared {
    match bytes.and_then(decode_entry) {
        Some(token) if token.is_fresh(now) && token.refresh_due(now) => Shared::RefreshDue(token),
        Some(token) if token.is_fresh(now) => Shared::Fresh(token),
        _ => Shared::Miss,
    }
}

/// Until when a stored lease holds at `now`; `None` when there is none, it ended, or it is not
/// one this build wrote (then it may be taken).
pub fn lease_until(bytes: Option<&[u8]>, now: UnixMillis) -> Option<UnixMillis> {
    let lease: Lease = serde_json::from_slice(bytes?).ok()?;
    let until = UnixMillis(lease.until);
    // A lease further away than one lease time (plus the skew allowed) was not written by a
    // sane clock: ignore it.
    let sane = until.0 <= now.0 + LEASE_MS + CLOCK_SKEW_MS;
    (lease.v == FORMAT_VERSION && now < until && sane).then_some(until)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_on: u64) -> AccessToken {
        AccessToken::from_parts(
            "eyJ.t.s".into(),
            expires_on,
            expires_on - 600,
            expires_on - 300,
            Source::Imds,
        )
    }

    #[test]
    fn entries_round_trip() {
        let t = token(2_000_000_000);
        assert_eq!(decode_entry(&encode_entry(&t)), Some(t));
    }

    #[test]
    fn foreign_corrupt_future_or_unsafe_entries_are_ignored() {
        let good = String::from_utf8(encode_entry(&token(2_000_000_000))).unwrap();
        for bad in [
            String::new(),
            "{".to_string(),
            good[..good.len() / 2].to_string(),
            good.replace("\"v\":1", "\"v\":2"),
            good.replace("\"imds\"", "\"mars\""),
            good.replace("eyJ.t.s", "eyJ t\\r\\nx: y"),
            good.replace("eyJ.t.s", ""),
            good.replace("\"refresh_on\":1999999400", "\"refresh_on\":2999999400"),
            "[1,2,3]".to_string(),
        ] {
            assert_eq!(decode_entry(bad.as_bytes()), None, "accepted {bad:?}");
        }
    }

    #[test]
    fn keys_differ_by_every_part_and_reveal_nothing() {
        let base = KeyParts {
            source: Source::Imds,
            selector_kind: "client_id",
            selector_value: "c1",
            resource: "https://vault.azure.net",
            endpoint: "http://169.254.169.254/metadata/identity/oauth2/token",
            identity_env: "AZURE_TENANT_ID=t1\n",
        };
        let key = shared_key(&base);
        assert!(key.starts_with("azmi/v1/") && key.len() == 8 + 32, "{key}");
        assert!(!key.contains("c1") && !key.contains("vault"));
        let variants = [
            KeyParts {
                source: Source::AppService,
                ..base
            },
            KeyParts {
                selector_kind: "object_id",
                ..base
            },
            KeyParts {
                selector_value: "c2",
                ..base
            },
            KeyParts {
                resource: "https://storage.azure.com",
                ..base
            },
            KeyParts {
                endpoint: "http://127.0.0.1:8080/metadata/identity/oauth2/token",
                ..base
            },
            KeyParts {
                identity_env: "AZURE_TENANT_ID=t2\n",
                ..base
            },
        ];
        for other in variants {
            assert_ne!(shared_key(&other), key);
        }
    }

    #[test]
    fn a_lease_holds_until_it_ends_and_a_foreign_one_does_not_hold() {
        let now = UnixMillis(1_000_000);
        let lease = encode_lease(now.plus_millis(LEASE_MS), 7);
        assert_eq!(
            lease_until(Some(&lease), now),
            Some(now.plus_millis(LEASE_MS))
        );
        assert_eq!(lease_until(Some(&lease), now.plus_millis(LEASE_MS)), None);
        assert_eq!(lease_until(Some(b"garbage"), now), None);
        assert_eq!(lease_until(None, now), None);
        let later = now.plus_millis(LEASE_MS + 10);
        assert_eq!(
            lease_until(Some(&encode_lease(later, 7)), now),
            Some(later),
            "taken a little after our clock read"
        );
        let far = encode_lease(now.plus_millis(10 * LEASE_MS), 7);
        assert_eq!(
            lease_until(Some(&far), now),
            None,
            "a lease from a wrong clock"
        );
    }

    #[test]
    fn entries_say_fresh_refresh_due_or_miss() {
        let t = token(2_000_000_000);
        let bytes = encode_entry(&t);
        assert_eq!(
            read_entry(Some(&bytes), UnixMillis::from_secs(1_999_999_000)),
            Shared::Fresh(t.clone())
        );
        assert_eq!(
            read_entry(Some(&bytes), UnixMillis::from_secs(1_999_999_500)),
            Shared::RefreshDue(t)
        );
        assert_eq!(
            read_entry(Some(&bytes), UnixMillis::from_secs(1_999_999_800)),
            Shared::Miss
        );
        assert_eq!(read_entry(None, UnixMillis(0)), Shared::Miss);
    }
}
