//! The call's deadline holds on the wire (issue 11, defect 2): every request is handed out with
//! timeouts cut to what is left of the call, and a proactive refresh never holds its caller
//! longer than the refresh bound or the cached token's usable life.
//!
//! [`hang`] models an endpoint that never answers behind a host that enforces the timeouts it
//! is handed: the fake host waits the request's whole `total_ms`, then reports a timeout.

use super::harness::{Call, Scenario, Scripted, T0, T0_SECS, hang, json};
use crate::proto::credential::REFRESH_MAX_WAIT_MS;
use crate::proto::{ErrorKind, Timeouts, UnixMillis};
use serde_json::json as j;

fn token(value: &str, lifetime: u64) -> Scripted {
    json(200, j!({"access_token": value, "expires_in": lifetime}))
}

fn secs(s: u64) -> UnixMillis {
    UnixMillis::from_secs(T0_SECS + s)
}

#[test]
fn a_hanging_endpoint_with_a_two_second_limit_answers_at_two_seconds() {
    // App Service hands out 5/30/10 s timeouts (45 s whole); a 2 s call must not wait 30 s.
    let mut s = Scenario::app_service().fallback(hang());
    let run = s.run_with(&Call {
        timeout_ms: Some(2_000),
        ..Call::default()
    });
    assert_eq!(
        run.requests[0].timeouts,
        Timeouts::phases(5_000, 30_000, 10_000).cut_to(2_000)
    );
    assert_eq!(run.requests[0].timeouts.total_ms, 2_000);
    assert!(
        run.finished_at <= T0.plus_millis(2_000),
        "answered after {} ms",
        T0.millis_until(run.finished_at)
    );
    assert_eq!(run.error().kind(), ErrorKind::Unavailable);
}

#[test]
fn each_retry_gets_only_what_is_left_of_the_call() {
    // A 503 at once, then hangs: the retry after the backoff gets the rest of the 3 s, not a
    // fresh 45 s.
    let mut s = Scenario::app_service()
        .seed(7)
        .reply(json(503, j!({"error": "busy"})))
        .fallback(hang());
    let run = s.run_with(&Call {
        timeout_ms: Some(3_000),
        ..Call::default()
    });
    assert!(run.requests.len() >= 2, "{:#?}", run.requests);
    for (request, sent) in run.requests.iter().zip(&run.sent_at) {
        let left = sent.millis_until(T0.plus_millis(3_000));
        assert_eq!(request.timeouts.total_ms, left, "sent at {sent:?}");
        assert!(request.timeouts.first_byte_ms <= left);
        assert!(request.timeouts.connect_ms <= left);
        assert!(request.timeouts.between_bytes_ms <= left);
    }
    assert!(run.finished_at <= T0.plus_millis(3_000));
    assert_eq!(run.error().kind(), ErrorKind::Unavailable);
}

#[test]
fn without_a_limit_the_source_timeouts_are_handed_out_unchanged() {
    let mut s = Scenario::imds().reply(token("t", 86_400));
    let run = s.run();
    assert_eq!(
        run.request().timeouts,
        Timeouts::phases(2_000, 30_000, 10_000)
    );
    assert_eq!(run.request().timeouts.total_ms, 42_000);
}

#[test]
fn a_refresh_against_a_hanging_endpoint_returns_the_cached_token_within_the_refresh_bound() {
    // A one-day token, refresh due at 12 h; the endpoint hangs. The caller gets the cached token
    // after at most the refresh bound (not after a 30 s first-byte timeout), and the next
    // refresh attempt waits 30 s.
    let mut s = Scenario::app_service().reply(token("old", 86_400));
    s.run().token();
    let due = secs(43_200);
    s.advance_to(due);
    s.push(hang());
    let refresh = s.run();
    assert_eq!(refresh.token().secret(), "old");
    assert_eq!(refresh.requests.len(), 1);
    assert_eq!(refresh.requests[0].timeouts.total_ms, REFRESH_MAX_WAIT_MS);
    assert_eq!(refresh.finished_at, due.plus_millis(REFRESH_MAX_WAIT_MS));
    assert_eq!(REFRESH_MAX_WAIT_MS, 5_000);
    s.advance(29_999);
    s.run().assert_nothing_sent();
}

#[test]
fn a_refresh_near_the_end_of_usable_life_returns_the_cached_token_by_then() {
    // One hour, refresh_in 3298 s: usable until 3300 s (expiry − 5 min), so the refresh at
    // 3298 s may hold the caller until the token's last usable millisecond, not the 5 s
    // refresh bound, and then returns it.
    let mut s = Scenario::app_service().reply(json(
        200,
        j!({"access_token": "old", "expires_in": 3_600, "refresh_in": 3_298}),
    ));
    assert_eq!(s.run().token().usable_until(), T0_SECS + 3_300);
    s.advance_to(secs(3_298));
    s.push(hang());
    let refresh = s.run();
    assert_eq!(refresh.token().secret(), "old");
    assert_eq!(refresh.requests[0].timeouts.total_ms, 1_999);
    assert_eq!(refresh.finished_at, UnixMillis(secs(3_300).0 - 1));
}
