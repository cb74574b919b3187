// Over 350 lines on purpose: one scenario per proactive-refresh rule, on virtual time.
//! Proactive refresh and cache bypass ([`crate::proto::token`], [`crate::proto::cache`]): when the
//! refresh happens, what a failed refresh returns, no request storms, force refresh, claims
//! and Service Fabric's revocation parameters.

use serde_json::json;

use super::harness::{
    Call, Scenario, Scripted, T0, T0_SECS, TOKEN, json, query_pairs, split_path, transport,
};
use crate::proto::cache::REFRESH_RETRY_MS;
use crate::proto::{ErrorKind, Source, TransportErrorKind, UnixMillis};

const SEED: u64 = 7;

/// App Service retry gaps for seed 7 (see `retry.rs`).
const LOCAL_GAPS: [u64; 3] = [870, 1_680, 4_240];
/// IMDS retry gaps for seed 7.
const IMDS_GAPS: [u64; 6] = [2_340, 5_040, 17_640, 24_900, 25_000, 25_000];

/// Lowercase hex SHA-256 of [`TOKEN`] (computed with `sha256sum`, not with the code under test).
const TOKEN_SHA256: &str = "a8ba2a2002125c011eb60c79a16c39b0be701f3be4818e0631e96529eb9c7c79";
/// SHA-256 of `second`.
const SHA256_OF_SECOND: &str = "16367aacb67a4a017c8da8ab95682ccb390863780f7114dda0a0e0c55644c7c4";
/// SHA-256 of `third`.
const SHA256_OF_THIRD: &str = "b1e99324505bd32da0e1f85dcf5e19a09db0481e8a15f62c41eb320304a8e927";

/// A token named `value` living `lifetime` seconds from its arrival.
fn token(value: &str, lifetime: u64) -> Scripted {
    json(200, json!({"access_token": value, "expires_in": lifetime}))
}

/// As [`token`], with the server's `refresh_in`.
fn token_refresh_in(value: &str, lifetime: u64, refresh_in: u64) -> Scripted {
    json(
        200,
        json!({"access_token": value, "expires_in": lifetime, "refresh_in": refresh_in}),
    )
}

fn server_error() -> Scripted {
    json(
        500,
        json!({"error": "server_error", "error_description": "boom"}),
    )
}

fn secs(s: u64) -> UnixMillis {
    UnixMillis::from_secs(T0_SECS + s)
}

/// Asserts that a call at `refresh_at − 1 ms` is served from the cache and that one at
/// `refresh_at` sends exactly one request and returns the new token.
#[track_caller]
fn assert_refreshes_exactly_at(mut s: Scenario, refresh_at: UnixMillis) {
    s.advance_to(UnixMillis(refresh_at.0 - 1));
    let before = s.run();
    before.assert_nothing_sent();
    assert_eq!(before.token().secret(), "old");
    s.advance_to(refresh_at);
    s.push(token("new", 86_400));
    let at = s.run();
    assert_eq!(at.sent_at, [refresh_at]);
    assert_eq!(at.token().secret(), "new");
    assert_eq!(s.identity().cached_tokens(), 1);
    s.run().assert_nothing_sent();
}

#[test]
fn a_thousand_calls_make_one_request() {
    let mut s = Scenario::imds().reply(token("t", 86_400));
    let mut requests = 0;
    for _ in 0..1_000 {
        let run = s.run();
        requests += run.requests.len();
        assert_eq!(run.token().secret(), "t");
        s.advance(1_000);
    }
    assert_eq!(requests, 1);
}

#[test]
fn refresh_happens_exactly_at_refresh_in() {
    let s = Scenario::app_service().reply(token_refresh_in("old", 86_400, 1_800));
    let mut s = s;
    s.run().token();
    assert_refreshes_exactly_at(s, secs(1_800));
}

#[test]
fn refresh_happens_exactly_at_half_life_for_two_hour_tokens() {
    let mut s = Scenario::imds().reply(token("old", 7_200));
    s.run().token();
    assert_refreshes_exactly_at(s, secs(3_600));
}

#[test]
fn refresh_happens_exactly_five_minutes_before_expiry_for_shorter_tokens() {
    let mut s = Scenario::imds().reply(token("old", 3_600));
    s.run().token();
    assert_refreshes_exactly_at(s, secs(3_300));
    // A 10-minute token: five minutes before expiry, while its last quarter is still served.
    let mut s = Scenario::imds().reply(token("old", 600));
    s.run().token();
    assert_refreshes_exactly_at(s, secs(300));
}

#[test]
fn refresh_point_counts_from_the_answer() {
    // The answer arrives 10 s after the request: half-life is 10 s + 1 h.
    let mut s = Scenario::imds().reply(token("old", 7_200).taking(10_000));
    s.run().token();
    assert_refreshes_exactly_at(s, secs(10 + 3_600));
}

#[test]
fn failed_refresh_returns_the_cached_token_and_waits_thirty_seconds() {
    // App Service, a one-day token: refresh due at 12 h; every failure kind, each retried as
    // usual within the 5 s refresh bound (attempts at 0, 0.87 and 2.55 s; the next, at
    // 6.79 s, would pass it), still returns the cached token.
    let failures: [(&str, Scripted, usize); 6] = [
        ("persistent 500", server_error(), 3),
        (
            "refused (retried: it answered before)",
            transport(TransportErrorKind::ConnectionRefused, "refused"),
            3,
        ),
        (
            "timeout",
            transport(TransportErrorKind::Timeout, "timed out"),
            3,
        ),
        (
            "400 (not retried)",
            json(400, json!({"error": "invalid_request"})),
            1,
        ),
        ("unusable 200", json(200, json!({"access_token": "x"})), 1),
        (
            "egress denied",
            transport(TransportErrorKind::Denied, "no"),
            1,
        ),
    ];
    for (what, failure, attempts) in failures {
        let mut s = Scenario::app_service()
            .seed(SEED)
            .reply(token("old", 86_400));
        s.run().token();
        s.advance_to(secs(43_200));
        s.push_times(failure, attempts);
        let refresh = s.run();
        assert_eq!(refresh.requests.len(), attempts, "{what}");
        assert_eq!(refresh.gaps(), LOCAL_GAPS[..attempts - 1], "{what}");
        assert_eq!(refresh.token().secret(), "old", "{what}");
        let failed_at = refresh.finished_at;

        // No new attempt for 30 s after the failure ended: the old token.
        s.advance_to(failed_at.plus_millis(REFRESH_RETRY_MS - 1));
        let quiet = s.run();
        quiet.assert_nothing_sent();
        assert_eq!(quiet.token().secret(), "old", "{what}");

        // Then one.
        s.advance_to(failed_at.plus_millis(REFRESH_RETRY_MS));
        s.push(token("new", 86_400));
        let retry = s.run();
        assert_eq!(retry.requests.len(), 1, "{what}");
        assert_eq!(retry.token().secret(), "new", "{what}");
    }
    assert_eq!(REFRESH_RETRY_MS, 30_000);
}

#[test]
fn failed_imds_refresh_gives_up_at_the_refresh_bound_and_returns_the_cached_token() {
    // IMDS retries 2.34 s after the first failure; the third attempt (7.38 s) would pass the
    // 5 s refresh bound, so the refresh gives up after two and the caller gets the old token.
    let mut s = Scenario::imds().seed(SEED).reply(token("old", 86_400));
    s.run().token();
    s.advance_to(secs(43_200));
    s.push_times(server_error(), 2);
    let run = s.run();
    assert_eq!(run.gaps(), IMDS_GAPS[..1]);
    assert_eq!(run.token().secret(), "old");
    // A second failed refresh 30 s later: again the old token, again 30 s of quiet.
    s.advance(REFRESH_RETRY_MS);
    s.push_times(transport(TransportErrorKind::Timeout, "t"), 2);
    let again = s.run();
    assert_eq!(again.requests.len(), 2);
    assert_eq!(again.token().secret(), "old");
    s.advance(REFRESH_RETRY_MS - 1);
    s.run().assert_nothing_sent();
}

#[test]
fn expired_token_is_never_returned_even_when_its_refresh_fails() {
    // One hour, refresh_in 3297 s: served until 3300 s (expiry − 5 min).
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(token_refresh_in("old", 3_600, 3_297));
    assert_eq!(s.run().token().usable_until(), T0_SECS + 3_300);
    // The refresh starts with the token usable; its retries (Retry-After: 2) may not run past
    // 3300 s, where the token stops being usable (sooner than the 5 s refresh bound): it gives
    // up at 3299 s and the caller gets the old token while it still may, never a refresh that
    // holds it past that point.
    s.advance_to(secs(3_297));
    s.push_times(
        json(503, json!({"error": "busy"})).header("Retry-After", "2"),
        2,
    );
    let run = s.run();
    assert_eq!(run.requests.len(), 2);
    assert_eq!(run.finished_at, secs(3_299));
    assert_eq!(run.token().secret(), "old");

    // And past usability a call is a plain fetch whose failure is the caller's.
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(token("old", 3_600));
    s.run().token();
    s.advance_to(secs(3_300));
    s.push_times(server_error(), 4);
    assert_eq!(s.run().error().status(), Some(500));
    s.advance_to(secs(3_600 + 1));
    s.push_times(transport(TransportErrorKind::Timeout, "t"), 4);
    assert_eq!(s.run().error().kind(), ErrorKind::Transport);
}

#[test]
fn one_minute_tokens_cause_one_request_per_thirty_seconds() {
    // Every answer is a fresh 1-minute token: refresh due after 30 s, served for 45 s. A call
    // every second for 10 minutes makes a request every 30 s, not one per call.
    let mut s = Scenario::imds().fallback(token("short", 60));
    let mut sent = Vec::new();
    for second in 0..=600 {
        s.advance_to(secs(second));
        let run = s.run();
        let token = run.token();
        assert!(
            s.now() < UnixMillis::from_secs(token.usable_until()),
            "at {second} s: served a token past its usability"
        );
        sent.extend(run.sent_at.iter().copied());
    }
    let expected: Vec<UnixMillis> = (0..=20).map(|i| secs(30 * i)).collect();
    assert_eq!(sent, expected);
}

#[test]
fn one_minute_token_whose_refresh_fails_still_serves_until_its_last_quarter() {
    // Refresh due at 30 s fails (App Service, 3 attempts within the 5 s refresh bound, the
    // last at 2.55 s): the token is served until 45 s without another request, then the next
    // call fetches.
    let mut s = Scenario::app_service().seed(SEED).reply(token("short", 60));
    s.run().token();
    s.advance_to(secs(30));
    s.push_times(server_error(), 3);
    let refresh = s.run();
    assert_eq!(refresh.token().secret(), "short");
    assert_eq!(refresh.finished_at, secs(30).plus_millis(2_550));
    for ms in [37_000, 40_000, 44_999] {
        s.advance_to(T0.plus_millis(ms));
        s.run().assert_nothing_sent();
    }
    s.advance_to(secs(45));
    s.push(token("next", 60));
    let refetch = s.run();
    assert_eq!(refetch.sent_at, [secs(45)]);
    assert_eq!(refetch.token().secret(), "next");
}

#[test]
fn force_refresh_bypasses_the_cache_and_updates_it() {
    let mut s = Scenario::imds().reply(token("a", 86_400));
    s.run().token();
    s.push(token("b", 86_400));
    let forced = s.run_with(&Call {
        force_refresh: true,
        ..Call::default()
    });
    assert_eq!(forced.requests.len(), 1);
    assert_eq!(forced.token().secret(), "b");
    let cached = s.run();
    cached.assert_nothing_sent();
    assert_eq!(cached.token().secret(), "b");
    assert_eq!(s.identity().cached_tokens(), 1);
}

#[test]
fn claims_bypass_the_cache() {
    let mut s = Scenario::app_service().reply(token("a", 86_400));
    s.run().token();
    s.push(token("b", 86_400));
    let run = s.run_with(&Call {
        claims: Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#.into()),
        ..Call::default()
    });
    assert_eq!(run.token().secret(), "b");
    // Claims are not sent to App Service, nor capabilities.
    let query = query_pairs(run.request());
    assert_eq!(
        query.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["api-version", "resource"]
    );
    s.run().assert_nothing_sent();
}

#[test]
fn failed_forced_refresh_is_the_callers_error_and_keeps_the_cached_token() {
    let mut s = Scenario::app_service().seed(SEED).reply(token("a", 86_400));
    s.run().token();
    s.push(json(400, json!({"error": "invalid_request"})));
    let run = s.run_with(&Call {
        force_refresh: true,
        ..Call::default()
    });
    assert_eq!(run.error().status(), Some(400));
    assert_eq!(s.run().token().secret(), "a");
}

const CLAIMS: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;

fn claims(capabilities: &[&str]) -> Call {
    Call {
        claims: Some(CLAIMS.into()),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        ..Call::default()
    }
}

/// The query keys and values after `api-version` and `resource`.
fn extra_query(run: &super::harness::Run) -> Vec<(String, String)> {
    let query = query_pairs(run.request());
    assert_eq!(query[0].0, "api-version");
    assert_eq!(query[1].0, "resource");
    query[2..].to_vec()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn service_fabric_claims_name_the_cached_token_for_revocation() {
    let mut s = Scenario::service_fabric().reply(token(TOKEN, 86_400));
    assert_eq!(s.run().token().source(), Source::ServiceFabric);

    // Claims without capabilities: the hash only.
    s.push(token("second", 86_400));
    let run = s.run_with(&claims(&[]));
    assert_eq!(
        extra_query(&run),
        pairs(&[("token_sha256_to_refresh", TOKEN_SHA256)])
    );
    // The hash is of the token cached when the call was made (now `second`).
    s.push(token("third", 86_400));
    let run = s.run_with(&claims(&["cp1"]));
    assert_eq!(
        extra_query(&run),
        pairs(&[
            ("token_sha256_to_refresh", SHA256_OF_SECOND),
            ("xms_cc", "cp1")
        ])
    );
    // Several capabilities: comma-joined (encoded on the wire).
    s.push(token("fourth", 86_400));
    let run = s.run_with(&claims(&["cp1", "cp2"]));
    assert_eq!(
        extra_query(&run),
        pairs(&[
            ("token_sha256_to_refresh", SHA256_OF_THIRD),
            ("xms_cc", "cp1,cp2")
        ])
    );
    assert!(split_path(run.request()).1.contains("&xms_cc=cp1%2Ccp2"));
}

#[test]
fn service_fabric_sends_revocation_parameters_only_with_claims() {
    // No cached token: no hash; capabilities still go with the claims.
    let mut s = Scenario::service_fabric().reply(token("a", 86_400));
    let run = s.run_with(&claims(&["cp1"]));
    assert_eq!(extra_query(&run), pairs(&[("xms_cc", "cp1")]));
    // Capabilities without claims: nothing extra (a forced refresh is not a challenge).
    s.push(token("b", 86_400));
    let run = s.run_with(&Call {
        force_refresh: true,
        capabilities: vec!["cp1".into()],
        ..Call::default()
    });
    assert_eq!(extra_query(&run), []);
    let run = s.run_with(&Call {
        capabilities: vec!["cp1".into()],
        ..Call::default()
    });
    run.assert_nothing_sent();
}

#[test]
fn other_sources_never_send_revocation_parameters() {
    for mut s in [
        Scenario::imds(),
        Scenario::app_service(),
        Scenario::app_service_2017(),
        Scenario::azure_ml(),
        Scenario::cloud_shell(),
        Scenario::workload_identity(),
    ] {
        s.push(token(TOKEN, 86_400));
        s.run().token();
        s.push(token("second", 86_400));
        let run = s.run_with(&claims(&["cp1"]));
        let request = run.request();
        let text = format!(
            "{} {}",
            request.path_and_query,
            String::from_utf8_lossy(&request.body)
        );
        assert!(!text.contains("xms_cc"), "{text}");
        assert!(!text.contains("token_sha256"), "{text}");
        assert!(!text.contains(TOKEN_SHA256), "{text}");
        assert_eq!(run.token().secret(), "second", "claims bypassed the cache");
    }
    // Arc too (two requests: the challenge and the authorized one).
    let mut s = Scenario::arc()
        .reply(super::harness::arc_challenge())
        .reply(token(TOKEN, 86_400));
    s.run().token();
    s.push(super::harness::arc_challenge());
    s.push(token("second", 86_400));
    let run = s.run_with(&claims(&["cp1"]));
    for request in &run.requests {
        assert!(!request.path_and_query.contains("xms_cc"));
        assert!(!request.path_and_query.contains("token_sha256"));
    }
}

#[test]
fn throttled_refresh_keeps_serving_the_cached_token_without_asking() {
    // The refresh at 12 h meets 429 Retry-After: 60 (a second attempt would pass the 5 s
    // refresh bound): the old token, and no request until the throttle window ends, even
    // though the 30 s refresh pause ends first.
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(token("old", 86_400));
    s.run().token();
    let due = secs(43_200);
    s.advance_to(due);
    s.push(json(429, json!({"error": "throttled"})).header("Retry-After", "60"));
    let refresh = s.run();
    assert_eq!(refresh.sent_at, [due]);
    assert_eq!(refresh.token().secret(), "old");
    let ended = refresh.finished_at;
    s.advance_to(ended.plus_millis(REFRESH_RETRY_MS));
    let quiet = s.run();
    quiet.assert_nothing_sent();
    assert_eq!(quiet.token().secret(), "old");
    s.advance_to(ended.plus_millis(59_999));
    s.run().assert_nothing_sent();
    s.advance_to(ended.plus_millis(60_000));
    s.push(token("new", 86_400));
    assert_eq!(s.run().token().secret(), "new");
}

#[test]
fn zero_refresh_in_is_raised_to_thirty_seconds_not_a_request_per_call() {
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(token_refresh_in("a", 3_600, 0));
    let first = s.run();
    assert_eq!(first.token().refresh_on(), T0_SECS + 30);
    for _ in 0..29 {
        s.advance(1_000);
        s.run().assert_nothing_sent();
    }
    s.advance(1_000);
    s.push_times(token("b", 3_600), 1);
    assert_eq!(s.run().token().secret(), "b");
}
