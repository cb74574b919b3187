// Over 350 lines on purpose: one scenario per retry rule and source policy, on virtual time.
//! Retries ([`crate::proto::retry`]) on the virtual clock: exact gaps for a fixed jitter seed,
//! request counts, the `Retry-After` forms, the per-call deadline, transport failures and the
//! throttle memory.
//!
//! A gap is the time between two requests being sent; replies take no virtual time unless a
//! test says so, so the gaps are exactly the sleeps the driver asked for.

use serde_json::json;

use super::harness::{
    Call, Run, Scenario, Scripted, T0, T0_SECS, arc_challenge, json, respond, transport,
};
use crate::proto::arc::ARC_KEY_MAX_BYTES;
use crate::proto::retry::{
    DEFAULT_CALL_DEADLINE_MS, IMDS_RETRY, LOCAL_RETRY, NO_404_RETRY, RETRY_AFTER_CAP_MS,
};
use crate::proto::{Action, ErrorKind, FileRead, Source, TransportErrorKind, UnixMillis};

/// The jitter seed of every test here (the host's random bytes 8..16).
const SEED: u64 = 7;

/// IMDS retry gaps for [`SEED`]: (2^k − 1) × 2 s, jittered by 117, 84, 126, 83, 104, 85 %,
/// capped at 25 s (Go azidentity's IMDS schedule).
const IMDS_GAPS: [u64; 6] = [2_340, 5_040, 17_640, 24_900, 25_000, 25_000];

/// Other sources' retry gaps for [`SEED`]: 2^(k − 1) × 1 s, jittered by 87, 84, 106 %
/// (msal-node's 3 retries from 1 s).
const LOCAL_GAPS: [u64; 3] = [870, 1_680, 4_240];

/// T0 + 7 s as an IMF-fixdate.
const T0_PLUS_7S: &str = "Sun, 15 Jun 2025 15:06:47 GMT";

fn status(code: u16) -> Scripted {
    json(
        code,
        json!({"error": format!("e{code}"), "error_description": format!("status {code}")}),
    )
}

fn imds_410() -> Scripted {
    json(
        410,
        json!({"error": "unavailable", "error_description": "IMDS is going through updates"}),
    )
}

/// A one-hour token, `expires_in` only (anchored at arrival).
fn token(value: &str) -> Scripted {
    json(200, json!({"access_token": value, "expires_in": 3600}))
}

fn at(ms: u64) -> UnixMillis {
    T0.plus_millis(ms)
}

/// Send times for requests separated by `gaps`, the first at `start`.
fn send_times(start: UnixMillis, gaps: &[u64]) -> Vec<UnixMillis> {
    let mut t = start;
    let mut out = vec![t];
    for gap in gaps {
        t = t.plus_millis(*gap);
        out.push(t);
    }
    out
}

#[track_caller]
fn assert_gaps(run: &Run, gaps: &[u64]) {
    assert_eq!(run.gaps(), gaps, "retry gaps");
    assert_eq!(run.sent_at, send_times(run.started_at, gaps), "send times");
    assert_eq!(run.requests.len(), gaps.len() + 1, "requests");
    // Replies take no time here, so every gap is exactly one sleep of the driver.
    assert_eq!(
        run.sleeps,
        run.sent_at[1..],
        "the driver slept until each retry"
    );
}

fn call() -> Call {
    Call::default()
}

// ---------------------------------------------------------------------------------------
// The schedules themselves.

#[test]
fn seeded_gaps_lie_inside_the_documented_ranges() {
    // Independent of the implementation: the numbers documented in `proto::retry`.
    for (k, gap) in (1..).zip(IMDS_GAPS) {
        let nominal = ((1u64 << k) - 1) * 2_000;
        let (low, high) = (nominal * 80 / 100, nominal * 130 / 100);
        assert!(
            low.min(25_000) <= gap && gap <= (high - 1).min(25_000),
            "IMDS retry {k}: {gap} outside [{low}, {high}) capped at 25 s"
        );
    }
    assert!(IMDS_GAPS.iter().sum::<u64>() >= 70_000);
    for (k, gap) in (1..).zip(LOCAL_GAPS) {
        let nominal = (1u64 << (k - 1)) * 1_000;
        assert!(
            (nominal * 80 / 100..nominal * 120 / 100).contains(&gap),
            "retry {k}: {gap}"
        );
    }
}

#[test]
fn retry_policies_per_source() {
    // The retry policies, as data.
    assert_eq!(Source::Imds.spec().retry, &IMDS_RETRY);
    for source in [
        Source::AppService,
        Source::AppService2017,
        Source::AzureMl,
        Source::CloudShell,
        Source::AzureArc,
    ] {
        assert_eq!(source.spec().retry, &LOCAL_RETRY, "{source}");
    }
    for source in [Source::ServiceFabric, Source::WorkloadIdentity] {
        assert_eq!(source.spec().retry, &NO_404_RETRY, "{source}");
    }
    assert_eq!(
        (
            IMDS_RETRY.max_retries,
            IMDS_RETRY.base_ms,
            IMDS_RETRY.cap_ms,
            IMDS_RETRY.jitter_percent
        ),
        (6, 2_000, 25_000, (80, 130))
    );
    assert_eq!(
        (
            LOCAL_RETRY.max_retries,
            LOCAL_RETRY.base_ms,
            LOCAL_RETRY.jitter_percent
        ),
        (3, 1_000, (80, 120))
    );
    assert_eq!(NO_404_RETRY.max_retries, 3);
    assert_eq!(RETRY_AFTER_CAP_MS, 60_000);
    assert_eq!(DEFAULT_CALL_DEADLINE_MS, 120_000);
}

#[test]
fn jitter_comes_from_the_hosts_random_bytes() {
    // The same seed gives the same gap although the request ids (all 16 bytes) differ; another
    // seed gives another gap.
    let gap = |seed: u64| {
        let mut s = Scenario::imds()
            .seed(seed)
            .reply(imds_410())
            .reply(token("t"));
        let run = s.run();
        run.token();
        run.gaps()[0]
    };
    assert_eq!(gap(SEED), IMDS_GAPS[0]);
    assert_eq!(gap(SEED), IMDS_GAPS[0]);
    assert_eq!(gap(42), 1_860, "seed 42: 93 % of 2 s");
}

// ---------------------------------------------------------------------------------------
// IMDS 410 (the IMDS docs: "available within 70 seconds").

#[test]
fn imds_410_once_then_200_retries_after_one_jittered_backoff() {
    let mut s = Scenario::imds()
        .seed(SEED)
        .reply(imds_410())
        .reply(token("t"));
    let run = s.run();
    assert_gaps(&run, &[2_340]);
    assert_eq!(run.token().secret(), "t");
    // The retry is the same request (same id).
    assert_eq!(run.requests[0], run.requests[1]);
    // `expires_in` counts from the answer, not the first attempt.
    assert_eq!(run.token().expires_on(), T0_SECS + 2 + 3600);
}

#[test]
fn imds_410_six_times_then_200_waits_out_the_seventy_second_window() {
    let mut s = Scenario::imds()
        .seed(SEED)
        .replies(imds_410(), 6)
        .reply(token("t"));
    let run = s.run();
    assert_gaps(&run, &IMDS_GAPS);
    assert_eq!(run.token().secret(), "t");
    let waited: u64 = run.gaps().iter().sum();
    assert_eq!(waited, 99_920);
    assert!(waited >= 70_000, "{waited} ms");
    assert_eq!(run.finished_at, at(99_920));
}

#[test]
fn imds_410_that_never_ends_gives_up_after_seven_attempts_with_the_last_status() {
    let mut s = Scenario::imds().seed(SEED).replies(imds_410(), 7);
    let run = s.run();
    assert_gaps(&run, &IMDS_GAPS);
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.status(), Some(410));
    assert_eq!(e.code(), Some("unavailable"));
    assert_eq!(
        e.message(),
        "IMDS: the endpoint failed (410 unavailable: IMDS is going through updates); retry later, the platform reports this as a service fault (gave up after 7 attempts)"
    );
    assert_eq!(
        run.finished_at,
        at(99_920),
        "no sleep after the last attempt"
    );
    assert_eq!(s.identity().cached_tokens(), 0);
}

// ---------------------------------------------------------------------------------------
// Retry-After.

#[test]
fn retry_after_seconds_is_waited_when_longer_than_the_backoff() {
    // IMDS backoff 2.34 s < 3 s; App Service backoff 0.87 s < 3 s.
    for mut s in [Scenario::imds(), Scenario::app_service()] {
        s = s
            .seed(SEED)
            .reply(status(429).header("Retry-After", "3"))
            .reply(token("t"));
        let run = s.run();
        assert_gaps(&run, &[3_000]);
        run.token();
    }
}

#[test]
fn retry_after_shorter_than_the_backoff_never_shortens_it() {
    let mut s = Scenario::imds()
        .seed(SEED)
        .reply(status(503).header("Retry-After", "1"))
        .reply(status(503).header("retry-after-ms", "0"))
        .reply(token("t"));
    let run = s.run();
    assert_gaps(&run, &IMDS_GAPS[..2]);
}

#[test]
fn retry_after_ms_headers_are_milliseconds_and_win_over_retry_after() {
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(status(429).header("retry-after-ms", "4500"))
        .reply(status(429).header("x-ms-retry-after-ms", "3300"))
        .reply(
            status(503)
                .header("retry-after-ms", "5100")
                .header("Retry-After", "10"),
        )
        .reply(token("t"));
    let run = s.run();
    assert_gaps(&run, &[4_500, 3_300, 5_100]);
    run.token();
}

#[test]
fn http_date_retry_after_is_an_instant_not_a_duration() {
    // The 503 arrives 1 s after it was asked for; the date says T0 + 7 s: the retry goes out
    // at T0 + 7 s, 6 s after the answer.
    let mut s = Scenario::imds()
        .seed(SEED)
        .reply(status(503).header("Retry-After", T0_PLUS_7S).taking(1_000))
        .reply(token("t"));
    let run = s.run();
    assert_eq!(run.sent_at, [T0, at(7_000)]);
    assert_eq!(run.sleeps, [at(7_000)]);
    run.token();
    // A date in the past means "now": the backoff decides.
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(status(503).header("Retry-After", "Sun, 15 Jun 2025 15:06:00 GMT"))
        .reply(token("t"));
    assert_gaps(&s.run(), &LOCAL_GAPS[..1]);
}

#[test]
fn retry_after_is_capped_at_sixty_seconds() {
    for value in ["3600", "Mon, 16 Jun 2025 15:06:40 GMT"] {
        let mut s = Scenario::app_service()
            .seed(SEED)
            .reply(status(503).header("Retry-After", value))
            .reply(token("t"));
        assert_gaps(&s.run(), &[60_000]);
    }
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(status(429).header("retry-after-ms", "600000"))
        .reply(token("t"));
    assert_gaps(&s.run(), &[60_000]);
}

// ---------------------------------------------------------------------------------------
// Other sources.

#[test]
fn app_service_503_twice_then_200() {
    let mut s = Scenario::app_service()
        .seed(SEED)
        .replies(status(503), 2)
        .reply(token("t"));
    let run = s.run();
    assert_gaps(&run, &LOCAL_GAPS[..2]);
    assert_eq!(run.token().secret(), "t");
    assert_eq!(run.token().source(), Source::AppService);
}

#[test]
fn every_retried_status_of_the_other_sources() {
    for code in [404, 408, 429, 500, 502, 503, 504] {
        let mut s = Scenario::app_service()
            .seed(SEED)
            .reply(status(code))
            .reply(token("t"));
        let run = s.run();
        assert_eq!(run.requests.len(), 2, "{code}");
        run.token();
    }
    // Not retried: other 4xx, and 5xx outside the list (501, 505).
    for code in [400, 401, 403, 405, 409, 410, 501, 505] {
        let mut s = Scenario::app_service().seed(SEED).reply(status(code));
        let run = s.run();
        assert_eq!(run.requests.len(), 1, "{code}");
        assert_eq!(run.error().status(), Some(code));
        assert!(!run.error().message().contains("gave up"), "{code}");
    }
}

#[test]
fn every_retried_status_of_imds() {
    for code in [404, 408, 410, 429, 500, 501, 505, 599] {
        let mut s = Scenario::imds()
            .seed(SEED)
            .reply(status(code))
            .reply(token("t"));
        assert_eq!(s.run().requests.len(), 2, "{code}");
    }
    for code in [400, 401, 403, 405, 409] {
        let mut s = Scenario::imds().seed(SEED).reply(status(code));
        assert_eq!(s.run().requests.len(), 1, "{code}");
    }
}

#[test]
fn persistent_500_gives_up_after_all_retries_with_the_last_status_and_code() {
    // App Service: 1 + 3 attempts; the error carries the last answer (500 server_error), not
    // the first (503 busy).
    let mut s = Scenario::app_service()
        .seed(SEED)
        .replies(
            json(
                503,
                json!({"error": "busy", "error_description": "first", "correlation_id": "c-first"}),
            ),
            3,
        )
        .reply(json(
            500,
            json!({"error": "server_error", "error_description": "last", "correlation_id": "c-last"}),
        ));
    let run = s.run();
    assert_gaps(&run, &LOCAL_GAPS);
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.code(), Some("server_error"));
    assert_eq!(e.correlation_id(), Some("c-last"));
    assert_eq!(
        e.message(),
        "App Service: the endpoint failed (500 server_error: last); retry later, the platform reports this as a service fault (gave up after 4 attempts)"
    );
    assert_eq!(run.finished_at, at(LOCAL_GAPS.iter().sum()));

    // IMDS: 1 + 6 attempts, well inside the default 120 s deadline.
    let mut s = Scenario::imds().seed(SEED).replies(status(500), 7);
    let run = s.run();
    assert_gaps(&run, &IMDS_GAPS);
    assert_eq!(run.error().status(), Some(500));
    assert_eq!(run.error().code(), Some("e500"));
    assert!(
        run.error()
            .message()
            .ends_with(" (gave up after 7 attempts)")
    );
}

// ---------------------------------------------------------------------------------------
// The per-call deadline (`timeout-ms`, default 120 s).

#[test]
fn call_deadline_stops_retrying_early() {
    // 10 s: attempts at 0, 2.34 s and 7.38 s; the next would be at 25.02 s.
    let mut s = Scenario::imds().seed(SEED).replies(status(500), 3);
    let run = s.run_with(&Call {
        timeout_ms: Some(10_000),
        ..call()
    });
    assert_gaps(&run, &IMDS_GAPS[..2]);
    assert_eq!(run.error().status(), Some(500));
    assert!(
        run.error()
            .message()
            .ends_with(" (gave up after 3 attempts: the next one would pass the call's deadline)"),
        "{}",
        run.error()
    );
    assert_eq!(
        run.finished_at,
        at(7_380),
        "gives up at once, without sleeping"
    );
}

#[test]
fn call_deadline_counts_retry_after_too() {
    // A Retry-After that ends past the deadline ends the call now.
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(status(503).header("Retry-After", "30"));
    let run = s.run_with(&Call {
        timeout_ms: Some(20_000),
        ..call()
    });
    assert_eq!(run.requests.len(), 1);
    assert!(run.sleeps.is_empty());
    assert!(
        run.error()
            .message()
            .ends_with(" (gave up after 1 attempt: the next one would pass the call's deadline)"),
        "{}",
        run.error()
    );
}

#[test]
fn default_call_deadline_is_two_minutes() {
    // Each 500 takes 5 s to arrive: attempts at 0, 7.34, 17.38, 40.02, 69.92 and 99.92 s; the
    // seventh would start at 129.92 s, past 120 s.
    let mut s = Scenario::imds()
        .seed(SEED)
        .replies(status(500).taking(5_000), 6);
    let run = s.run();
    assert_eq!(
        run.sent_at,
        [
            T0,
            at(7_340),
            at(17_380),
            at(40_020),
            at(69_920),
            at(99_920)
        ]
    );
    assert!(
        run.error()
            .message()
            .ends_with(" (gave up after 6 attempts: the next one would pass the call's deadline)")
    );
    assert_eq!(run.finished_at, at(104_920));
}

#[test]
fn call_deadline_cuts_a_hanging_attempt() {
    // Stepped by hand: the attempt's own deadline (46 s for App Service) is cut to the call's.
    let mut s = Scenario::app_service().seed(SEED);
    let start = s
        .start_with(&Call {
            timeout_ms: Some(5_000),
            ..call()
        })
        .expect("starts");
    let crate::proto::Start::Fetch(mut acquisition) = start else {
        panic!("expected a fetch, got {start:?}");
    };
    let Some(Action::Send(_)) = acquisition.poll_action(T0) else {
        panic!("expected a request");
    };
    assert_eq!(acquisition.poll_timeout(), Some(at(5_000)));
    acquisition.handle_timeout(at(4_999));
    assert!(acquisition.poll_outcome().is_none());
    acquisition.handle_timeout(at(5_000));
    let e = acquisition
        .poll_outcome()
        .expect("outcome")
        .into_result()
        .expect_err("error");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        "App Service: http://127.0.0.1:41564 (IDENTITY_ENDPOINT) did not answer in time; no managed identity is reachable here"
    );
}

// ---------------------------------------------------------------------------------------
// 404 (Service Fabric's guidance: never retry it).

#[test]
fn status_404_is_retried_on_imds_and_the_local_sources() {
    for mut s in [
        Scenario::imds(),
        Scenario::app_service(),
        Scenario::app_service_2017(),
        Scenario::azure_ml(),
        Scenario::cloud_shell(),
    ] {
        s = s.seed(SEED).reply(status(404)).reply(token("t"));
        let run = s.run();
        assert_eq!(run.requests.len(), 2);
        let source = run.token().source();
        let first = if source == Source::Imds {
            IMDS_GAPS[0]
        } else {
            LOCAL_GAPS[0]
        };
        assert_gaps(&run, &[first]);
    }
    // Arc: the retry starts over with a fresh challenge.
    let mut s = Scenario::arc()
        .seed(SEED)
        .reply(status(404))
        .reply(arc_challenge())
        .reply(token("t"));
    let run = s.run();
    assert_eq!(run.steps(), ["send", "send", "read", "send"]);
    assert_eq!(run.sent_at, [T0, at(870), at(870)]);
    assert_eq!(
        run.file_reads,
        [FileRead {
            path: super::harness::ARC_KEY_PATH.into(),
            max_len: ARC_KEY_MAX_BYTES,
            follow_symlinks: false,
        }]
    );
    assert_eq!(run.token().source(), Source::AzureArc);
}

#[test]
fn status_404_is_not_retried_on_service_fabric_or_entra() {
    for mut s in [Scenario::service_fabric(), Scenario::workload_identity()] {
        s = s.seed(SEED).reply(status(404));
        let run = s.run();
        assert_eq!(run.requests.len(), 1);
        assert!(run.sleeps.is_empty());
        let e = run.error();
        assert_eq!(e.status(), Some(404));
        assert!(!e.message().contains("gave up"), "{e}");
    }
    // Their other transient statuses are retried.
    let mut s = Scenario::service_fabric()
        .seed(SEED)
        .reply(status(503))
        .reply(token("t"));
    assert_gaps(&s.run(), &LOCAL_GAPS[..1]);
}

// ---------------------------------------------------------------------------------------
// Transport failures and the fail-fast decision.

#[test]
fn response_timeout_is_retried() {
    for (mut s, gap) in [
        (Scenario::imds(), IMDS_GAPS[0]),
        (Scenario::app_service(), LOCAL_GAPS[0]),
    ] {
        s = s
            .seed(SEED)
            .reply(transport(TransportErrorKind::Timeout, "no answer in 30 s"))
            .reply(transport(TransportErrorKind::Other, "connection reset"))
            .reply(token("t"));
        let run = s.run();
        let second = if gap == IMDS_GAPS[0] {
            IMDS_GAPS[1]
        } else {
            LOCAL_GAPS[1]
        };
        assert_gaps(&run, &[gap, second]);
        run.token();
    }
}

#[test]
fn response_timeout_that_persists_gives_up_as_unavailable() {
    let mut s = Scenario::app_service()
        .seed(SEED)
        .replies(transport(TransportErrorKind::Timeout, "no answer"), 4);
    let run = s.run();
    assert_gaps(&run, &LOCAL_GAPS);
    assert_eq!(run.error().kind(), ErrorKind::Unavailable);
    assert_eq!(
        run.error().message(),
        "App Service: no response from http://127.0.0.1:41564 (IDENTITY_ENDPOINT): no answer; no managed identity is reachable here (gave up after 4 attempts)"
    );
}

#[test]
fn connection_refused_before_any_answer_fails_fast_without_retrying() {
    // Deliberate (unlike Go and Python): nothing listens, so waiting ~100 s helps nobody.
    for mut s in [
        Scenario::imds(),
        Scenario::app_service(),
        Scenario::cloud_shell(),
    ] {
        for kind in [
            TransportErrorKind::ConnectionRefused,
            TransportErrorKind::Dns,
            TransportErrorKind::ConnectTimeout,
        ] {
            s.push(transport(kind, "refused"));
            let run = s.run();
            assert_eq!(run.requests.len(), 1, "{kind:?}");
            assert!(run.sleeps.is_empty(), "{kind:?}");
            assert_eq!(run.finished_at, run.started_at, "{kind:?}: at once");
            let e = run.error();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
            assert!(
                e.message()
                    .ends_with("no managed identity is reachable here")
            );
        }
    }
}

#[test]
fn connection_refused_after_the_source_answered_is_retried() {
    let mut s = Scenario::imds().seed(SEED).reply(token("first"));
    s.run().token();
    s.set_scope("https://vault.azure.net/.default");
    s.push(transport(TransportErrorKind::ConnectionRefused, "refused"));
    s.push(transport(TransportErrorKind::Dns, "no such host"));
    s.push(token("second"));
    let run = s.run();
    assert_gaps(&run, &IMDS_GAPS[..2]);
    assert_eq!(run.token().secret(), "second");

    // Persistent: Transport (not Unavailable: IMDS is there), after every retry.
    s.set_scope("https://storage.azure.com/.default");
    s.push_times(
        transport(TransportErrorKind::ConnectionRefused, "refused"),
        7,
    );
    let run = s.run();
    assert_gaps(&run, &IMDS_GAPS);
    assert_eq!(run.error().kind(), ErrorKind::Transport);
    assert!(
        run.error()
            .message()
            .ends_with(" (gave up after 7 attempts)")
    );
}

#[test]
fn policy_refusals_and_oversized_answers_are_never_retried() {
    for kind in [
        TransportErrorKind::Denied,
        TransportErrorKind::Tls,
        TransportErrorKind::ResponseTooLarge,
    ] {
        let mut s = Scenario::imds().seed(SEED).reply(token("first"));
        s.run().token();
        s.set_scope("https://vault.azure.net/.default");
        s.push(transport(kind, "no"));
        let run = s.run();
        assert_eq!(run.requests.len(), 1, "{kind:?}");
        assert!(!run.error().message().contains("gave up"), "{kind:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Throttle memory (MSAL Python's throttle cache).

#[test]
fn final_throttle_is_remembered_for_its_retry_after_window() {
    for code in [429, 503] {
        let mut s = Scenario::app_service()
            .seed(SEED)
            .replies(status(code).header("Retry-After", "10"), 4);
        let run = s.run();
        assert_gaps(&run, &[10_000, 10_000, 10_000]);
        let first = run.error().clone();
        assert_eq!(first.status(), Some(code));
        let ended = run.finished_at;

        // Within the window: the remembered error, no request.
        let repeat = s.run();
        repeat.assert_nothing_sent();
        let e = repeat.error();
        assert_eq!(
            (e.kind(), e.status(), e.code()),
            (first.kind(), first.status(), first.code())
        );
        assert_eq!(
            e.message(),
            format!(
                "{} (remembered: not asking again for 10 s)",
                first.message()
            )
        );
        s.advance_to(ended.plus_millis(9_999));
        let repeat = s.run();
        repeat.assert_nothing_sent();
        assert!(
            repeat
                .error()
                .message()
                .ends_with("(remembered: not asking again for 1 s)")
        );
        // Another key is not throttled.
        s.set_scope("https://vault.azure.net/.default");
        s.push(token("vault"));
        assert_eq!(s.run().requests.len(), 1);
        s.set_scope("https://management.azure.com/.default");

        // At the end of the window it asks again.
        s.advance_to(ended.plus_millis(10_000));
        s.push(token("t"));
        let again = s.run();
        assert_eq!(again.requests.len(), 1, "{code}");
        assert_eq!(again.token().secret(), "t");
    }
}

#[test]
fn failures_without_retry_after_are_not_remembered() {
    let mut s = Scenario::app_service().seed(SEED).replies(status(503), 4);
    s.run().error();
    s.push_times(status(503), 4);
    assert_eq!(s.run().requests.len(), 4, "asks again at once");
}

#[test]
fn remembered_throttle_window_is_capped_at_sixty_seconds() {
    let mut s = Scenario::app_service()
        .seed(SEED)
        .reply(status(429).header("Retry-After", "3600"));
    let run = s.run_with(&Call {
        timeout_ms: Some(30_000),
        ..call()
    });
    assert_eq!(run.requests.len(), 1);
    let ended = run.finished_at;
    s.advance_to(ended.plus_millis(59_999));
    let repeat = s.run();
    repeat.assert_nothing_sent();
    assert!(
        repeat
            .error()
            .message()
            .ends_with("not asking again for 1 s)")
    );
    s.advance_to(ended.plus_millis(60_000));
    s.push(token("t"));
    assert_eq!(s.run().requests.len(), 1);
}

#[test]
fn retries_after_an_answered_probe_follow_the_token_schedule() {
    // A retried answer right after the probe: the probe is not an attempt.
    let mut s = Scenario::imds()
        .seed(SEED)
        .reply(respond(400, "{\"error\":\"bad_request_102\"}"))
        .reply(imds_410())
        .reply(token("t"));
    let run = s.run_with(&Call {
        probe: true,
        ..call()
    });
    assert_eq!(run.sent_at, [T0, T0, at(IMDS_GAPS[0])]);
    run.token();
}
