//! Retry policy as per-source data, `Retry-After` parsing, and the jitter generator seeded by
//! the host's randomness.
//!
//! # The policies
//!
//! | | IMDS ([`IMDS_RETRY`]) | App Service, Azure ML / 2017, Cloud Shell, Arc ([`LOCAL_RETRY`]) | Service Fabric, workload identity ([`NO_404_RETRY`]) |
//! |---|---|---|---|
//! | statuses retried | 404, 408, 410, 429, every 5xx | 404, 408, 429, 500, 502, 503, 504 | 408, 429, 500, 502, 503, 504 |
//! | retries after the first attempt | 6 | 3 | 3 |
//! | delay before retry *k* | `(2^k − 1) × 2 s`, capped at 25 s | `2^(k−1) × 1 s`, capped at 10 s | as the middle column |
//! | nominal delays | 2, 6, 14, 25, 25, 25 s (≈ 97 s) | 1, 2, 4 s | 1, 2, 4 s |
//! | jitter | 80–130 % of the nominal delay | 80–120 % | 80–120 % |
//! | taken from | Go azidentity's IMDS options (azcore `RetryOptions`: 6 retries, 2 s, 25 s cap, its `calcDelay` growth and jitter) | msal-node's `DefaultManagedIdentityRetryPolicy` (3 retries, 1 s, with 404) and azcore's default status set (with 502) | the same, without 404 |
//!
//! Why, where the SDKs differ:
//!
//! * **IMDS 410 needs ≥ 70 s.** The IMDS documentation says a 410 means "IMDS is going
//!   through updates" and it will be back within 70 seconds (404: "updating"; 429: throttled;
//!   5xx: transient, retry after ≥ 1 s). The smallest total wait of the IMDS schedule, every
//!   delay at minimum jitter, is 1.6 + 4.8 + 11.2 + 24 + 25 + 25 = 91.6 s (the unit test below
//!   pins it). @azure/identity's `imdsRetryPolicy` (3 s base, doubling, 5 retries) jitters each
//!   delay down to 50 %, so its 410 budget is only nominally 93 s and can be 46.5 s; MSAL Go used
//!   directly retries twice, 1 s apart; msal-node waits a fixed 10 s × 7 only if the *first*
//!   failure of the call was a 410. Python's 0/5/10/20/40 s (75 s) would also do.
//! * **404 is retried for the local platform endpoints**, as msal-node's default policy and
//!   @azure/identity's pipeline (whose 404/410 policy runs for every source) do; Go and
//!   Python do not.
//!   **Never for Service Fabric**: its own guidance (quoted in MSAL Python's
//!   `managed_identity.py`) says not to retry 404. Entra's 404 means a wrong tenant path, not a
//!   transient state.
//! * **502 is retried** (azcore and azure-core do; msal-node's default set lacks it), 410 only
//!   for IMDS (msal-node's default policy lacks it, and only IMDS documents it).
//! * **429 without a `Retry-After`** is still retried with the backoff; @azure/identity's
//!   pipeline skips a 429 that carries none of its retry headers.
//!
//! # `Retry-After`
//!
//! [`retry_after_ms`] reads `retry-after-ms` and `x-ms-retry-after-ms` (milliseconds, as the
//! JS and Go pipelines do), else `Retry-After` as seconds or an HTTP-date (a past date means
//! "now"). The wait is capped at [`RETRY_AFTER_CAP_MS`] (60 s, so a hostile or broken server
//! cannot park a call) and is never shorter than the computed backoff: the acquisition waits
//! `max(backoff, Retry-After)`. It is honoured on every retried status, not only 429/503 (the
//! JS pipeline's set). msal-node looks the header up case-sensitively as `Retry-After` while
//! its own network client lower-cases header names, so in practice it never sees it;
//! [`crate::proto::http::HttpResponse::header`] compares names case-insensitively.
//!
//! # Transport failures and deadlines
//!
//! A response timeout or a broken connection is retried within the same budget (Go, JS and
//! Python do; msal-node never retries a thrown transport error). A connection that cannot
//! even be made (refused, unresolvable, connect timeout) to a source that has never answered
//! this credential fails at once: nothing listens there, and retrying it is why the SDKs take
//! seconds to say "no managed identity" (deliberate difference; the decision is made in the
//! acquisition state machine, [`crate::proto::Acquisition`]). Per-attempt timeouts are per
//! source ([`crate::proto::spec`], "Timeouts"); the whole call, retries included, gives up
//! after [`DEFAULT_CALL_DEADLINE_MS`] unless the caller sets its own `timeout-ms`.
//!
//! # After the last retry
//!
//! When the retries ran out on a status that carried a `Retry-After` (typically 429 or 503), the credential
//! ([`crate::proto::ManagedIdentity`]) remembers the failure for that window (capped as above)
//! and fails repeat calls for the same key at once, without a request — MSAL Python's throttle
//! cache (`msal/throttled_http_client.py`) does the same; the other SDKs send every call.

use super::expiry::days_from_civil;
use super::http::HttpResponse;
use super::splitmix::SplitMix64;
use super::time::UnixMillis;

/// How the delay grows with the retry number `k` (1-based).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Growth {
    /// `(2^k − 1) × base` (Go azidentity's IMDS schedule: 2, 6, 14, 30 → capped, …).
    MersenneTimesBase,
    /// `2^(k−1) × base` (1, 2, 4 s for the other sources).
    Doubling,
}

/// One source's retry rules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retry 5xx responses (all of 500–599).
    pub server_errors: bool,
    /// Other statuses retried.
    pub statuses: &'static [u16],
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Base delay.
    pub base_ms: u64,
    /// Largest delay (after jitter).
    pub cap_ms: u64,
    /// Delay growth.
    pub growth: Growth,
    /// Jitter range, percent of the nominal delay: `[low, high)`.
    pub jitter_percent: (u64, u64),
}

/// IMDS: 404 ("updating"), 408, 410 ("available within 70 seconds"), 429 and 5xx; Go
/// azidentity's schedule, whose smallest total wait with jitter is 91.6 s, so a run of 410s is
/// covered for ≥ 70 s — unlike @azure/identity's 50 % jitter (46.5 s worst case).
pub(super) const IMDS_RETRY: RetryPolicy = RetryPolicy {
    server_errors: true,
    statuses: &[404, 408, 410, 429],
    max_retries: 6,
    base_ms: 2_000,
    cap_ms: 25_000,
    growth: Growth::MersenneTimesBase,
    jitter_percent: (80, 130),
};

/// App Service, Azure ML / 2017, Cloud Shell, Arc: 404 retried as msal-node and
/// JS do, plus 408, 429, 500, 502, 503, 504; 3 retries from 1 s.
pub(super) const LOCAL_RETRY: RetryPolicy = RetryPolicy {
    server_errors: false,
    statuses: &[404, 408, 429, 500, 502, 503, 504],
    max_retries: 3,
    base_ms: 1_000,
    cap_ms: 10_000,
    growth: Growth::Doubling,
    jitter_percent: (80, 120),
};

/// Service Fabric and Entra ID: as [`LOCAL_RETRY`] but never 404 (Service Fabric's guidance,
/// quoted by MSAL Python; Entra's 404 is a wrong tenant path, not a transient state).
pub(super) const NO_404_RETRY: RetryPolicy = RetryPolicy {
    statuses: &[408, 429, 500, 502, 503, 504],
    ..LOCAL_RETRY
};

/// `Retry-After` and friends are honoured up to this long.
pub(super) const RETRY_AFTER_CAP_MS: u64 = 60_000;

/// Default overall deadline for one `get-token` call: the IMDS schedule's nominal 97 s of
/// waiting plus attempts.
pub(super) const DEFAULT_CALL_DEADLINE_MS: u64 = 120_000;

impl RetryPolicy {
    /// Whether a response with `status` is worth retrying.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.server_errors && (500..600).contains(&status)) || self.statuses.contains(&status)
    }

    /// The delay before retry `k` (1-based), jittered by `random`, capped.
    pub fn backoff_ms(&self, k: u32, random: u64) -> u64 {
        let k = k.clamp(1, 30);
        let factor = match self.growth {
            Growth::MersenneTimesBase => (1u64 << k) - 1,
            Growth::Doubling => 1u64 << (k - 1),
        };
        let nominal = self.base_ms.saturating_mul(factor);
        let (low, high) = self.jitter_percent;
        let percent = low + random % (high - low).max(1);
        (nominal.saturating_mul(percent) / 100).min(self.cap_ms)
    }
}

/// The server's requested wait, in ms: `retry-after-ms` / `x-ms-retry-after-ms`
/// (milliseconds), else `Retry-After` (seconds or an HTTP-date relative to `now`), capped at
/// [`RETRY_AFTER_CAP_MS`].
pub(super) fn retry_after_ms(response: &HttpResponse, now: UnixMillis) -> Option<u64> {
    let millis = ["retry-after-ms", "x-ms-retry-after-ms"]
        .iter()
        .find_map(|h| response.header(h)?.trim().parse::<u64>().ok());
    let wait = millis.or_else(|| {
        let value = response.header("retry-after")?.trim();
        match value.parse::<u64>() {
            Ok(seconds) => Some(seconds.saturating_mul(1000)),
            Err(_) => {
                let at = parse_http_date(value)?;
                Some(now.millis_until(UnixMillis::from_secs(at)))
            }
        }
    })?;
    Some(wait.min(RETRY_AFTER_CAP_MS))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 section 5.6.7) in unix seconds.
pub(super) fn parse_http_date(value: &str) -> Option<u64> {
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (h, m, s): (i64, i64, i64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    // Years are bounded before any arithmetic: an absurd date must not overflow.
    if parts.next()? != "GMT"
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&m)
        || !(0..=60).contains(&s)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(secs).ok()
}

/// The generator behind retry jitter ([`SplitMix64`]), seeded from host randomness so the
/// core itself holds no RNG (tests seed it to get exact gaps).
pub(super) type Jitter = SplitMix64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_schedule_covers_seventy_seconds_of_410_even_at_minimum_jitter() {
        let min_total: u64 = (1..=IMDS_RETRY.max_retries)
            .map(|k| IMDS_RETRY.backoff_ms(k, 0))
            .sum();
        assert_eq!(min_total, 1_600 + 4_800 + 11_200 + 24_000 + 25_000 + 25_000);
        assert!(min_total >= 70_000);
        let nominal: Vec<u64> = (1..=6).map(|k| IMDS_RETRY.backoff_ms(k, 20)).collect();
        assert_eq!(nominal, [2_000, 6_000, 14_000, 25_000, 25_000, 25_000]);
    }

    #[test]
    fn local_schedule_doubles_from_one_second() {
        let nominal: Vec<u64> = (1..=3).map(|k| LOCAL_RETRY.backoff_ms(k, 20)).collect();
        assert_eq!(nominal, [1_000, 2_000, 4_000]);
        assert_eq!(LOCAL_RETRY.backoff_ms(1, 0), 800);
        assert_eq!(LOCAL_RETRY.backoff_ms(1, 39), 1_190);
    }

    #[test]
    fn statuses() {
        for s in [404, 408, 410, 429, 500, 503, 599] {
            assert!(IMDS_RETRY.retries_status(s), "{s}");
        }
        for s in [400, 401, 403, 409] {
            assert!(!IMDS_RETRY.retries_status(s), "{s}");
        }
        assert!(LOCAL_RETRY.retries_status(404));
        assert!(!LOCAL_RETRY.retries_status(410));
        assert!(!NO_404_RETRY.retries_status(404));
        assert!(NO_404_RETRY.retries_status(503));
    }

    fn with(headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status: 429,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = UnixMillis::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after_ms(&with(&[("Retry-After", "3")]), now),
            Some(3_000)
        );
        assert_eq!(
            retry_after_ms(&with(&[("retry-after-ms", "250")]), now),
            Some(250)
        );
        assert_eq!(
            retry_after_ms(&with(&[("x-ms-retry-after-ms", "40")]), now),
            Some(40)
        );
        assert_eq!(
            retry_after_ms(
                &with(&[("Retry-After", "Sun, 06 Nov 1994 08:49:47 GMT")]),
                now
            ),
            Some(10_000)
        );
        assert_eq!(
            retry_after_ms(
                &with(&[("Retry-After", "Sun, 06 Nov 1994 08:49:30 GMT")]),
                now
            ),
            Some(0),
            "a past date means now"
        );
        assert_eq!(
            retry_after_ms(&with(&[("Retry-After", "3600")]), now),
            Some(60_000)
        );
        assert_eq!(retry_after_ms(&with(&[("Retry-After", "soon")]), now), None);
        assert_eq!(retry_after_ms(&with(&[]), now), None);
    }

    #[test]
    fn jitter_is_deterministic_per_seed() {
        let (mut a, mut b) = (Jitter::new(7), Jitter::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Jitter::new(7).next_u64(), Jitter::new(8).next_u64());
    }
}
