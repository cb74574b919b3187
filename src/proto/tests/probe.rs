//! The opt-in IMDS availability probe ([`crate::proto::ManagedIdentity`]): its request, fail-fast
//! answers, and when it is (not) sent.

use serde_json::json;

use super::harness::{
    Call, Expect, Run, Scenario, Scripted, T0, T0_SECS, assert_request, json, respond,
    token_expiring_at, transport,
};
use crate::proto::{
    Action, ErrorClass, ErrorKind, Method, Scheme, Source, Start, Timeouts, TransportErrorKind,
};

const IMDS: &str = "169.254.169.254";
const PATH: &str = "/metadata/identity/oauth2/token";

fn probe() -> Call {
    Call {
        probe: true,
        ..Call::default()
    }
}

/// IMDS' answer to a request without `Metadata: true`.
fn bad_request_102() -> Scripted {
    json(
        400,
        json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"}),
    )
}

fn token() -> Scripted {
    token_expiring_at(T0_SECS + 3600)
}

#[track_caller]
fn assert_probe(run: &Run, index: usize, authority: &str) {
    let request = &run.requests[index];
    assert_request(
        request,
        &Expect {
            method: Method::Get,
            scheme: Scheme::Http,
            authority,
            path: PATH,
            query: &[],
            headers: &[],
        },
    );
    assert_eq!(request.timeouts, Timeouts::phases(1_000, 1_000, 1_000));
}

#[test]
fn probe_is_a_bare_get_of_the_token_path_then_the_real_request() {
    let mut s = Scenario::imds().reply(bad_request_102()).reply(token());
    let run = s.run_with(&probe());
    assert_eq!(run.requests.len(), 2);
    // No query, no Metadata header: IMDS answers 400 at once without minting a token.
    assert_probe(&run, 0, IMDS);
    let real = &run.requests[1];
    assert_eq!(real.header("Metadata"), Some("true"));
    assert!(
        real.path_and_query
            .starts_with(&format!("{PATH}?api-version="))
    );
    assert_eq!(run.sent_at, [T0, T0]);
    assert_eq!(run.token().source(), Source::Imds);
}

#[test]
fn probe_without_an_answer_is_unavailable_at_once() {
    for kind in [
        TransportErrorKind::ConnectionRefused,
        TransportErrorKind::ConnectTimeout,
        TransportErrorKind::Timeout,
        TransportErrorKind::Dns,
        TransportErrorKind::Other,
    ] {
        let mut s = Scenario::imds().reply(transport(kind, "simulated"));
        let run = s.run_with(&probe());
        assert_eq!(run.requests.len(), 1, "{kind:?}: no retries");
        assert!(run.sleeps.is_empty(), "{kind:?}");
        assert_eq!(run.finished_at, T0, "{kind:?}");
        assert_probe(&run, 0, IMDS);
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
        assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
        assert_eq!(
            e.message(),
            "IMDS: the availability probe got no answer from http://169.254.169.254 (the IMDS default): simulated; no managed identity is reachable here"
        );
    }
}

#[test]
fn probe_that_hangs_gives_up_after_its_own_short_deadline() {
    // The host enforces the 1 s timeouts; the core's backstop is their sum plus 1 s.
    let mut s = Scenario::imds();
    let Ok(Start::Fetch(mut acquisition)) = s.start_with(&probe()) else {
        panic!("expected a fetch");
    };
    let Some(Action::Send(request)) = acquisition.poll_action(T0) else {
        panic!("expected the probe");
    };
    assert_eq!(request.header("Metadata"), None);
    assert_eq!(acquisition.poll_timeout(), Some(T0.plus_millis(4_000)));
    acquisition.handle_timeout(T0.plus_millis(4_000));
    let e = acquisition
        .poll_outcome()
        .expect("outcome")
        .into_result()
        .expect_err("error");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(acquisition.poll_action(T0.plus_millis(4_000)).is_none());
}

#[test]
fn probe_answered_by_a_proxy_403_unreachable_is_unavailable() {
    let mut s = Scenario::imds().reply(respond(
        403,
        "A socket operation was attempted to an unreachable network.",
    ));
    let run = s.run_with(&probe());
    assert_eq!(run.requests.len(), 1);
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        "IMDS: the availability probe of http://169.254.169.254 (the IMDS default) was answered by a proxy (403 unreachable); no managed identity is reachable here"
    );
}

#[test]
fn any_other_http_answer_to_the_probe_means_imds_is_there() {
    for answer in [
        bad_request_102(),
        respond(403, "Forbidden"),
        respond(404, ""),
        respond(500, "oops"),
        respond(200, "{}"),
    ] {
        let mut s = Scenario::imds().reply(answer.clone()).reply(token());
        let run = s.run_with(&probe());
        assert_eq!(run.requests.len(), 2, "{answer:?}");
        run.token();
    }
}

#[test]
fn retried_answers_after_the_probe_follow_the_token_schedule() {
    // The probe is not an attempt: a 410 right after it waits the first IMDS backoff.
    let mut s = Scenario::imds()
        .seed(7)
        .reply(bad_request_102())
        .reply(json(410, json!({"error": "unavailable"})))
        .reply(token());
    let run = s.run_with(&probe());
    assert_eq!(run.sent_at, [T0, T0, T0.plus_millis(2_340)]);
    assert_probe(&run, 0, IMDS);
    assert_eq!(run.requests[1], run.requests[2], "the token request again");
    run.token();
}

#[test]
fn a_credential_whose_probe_was_answered_never_probes_again() {
    let mut s = Scenario::imds().reply(bad_request_102()).reply(token());
    s.run_with(&probe()).token();
    for scope in [
        "https://vault.azure.net/.default",
        "https://storage.azure.com/.default",
    ] {
        s.set_scope(scope);
        s.push(token());
        let run = s.run_with(&probe());
        assert_eq!(run.request().header("Metadata"), Some("true"), "{scope}");
    }
    // Even when the token request then failed: the probe was answered.
    let mut s = Scenario::imds()
        .reply(bad_request_102())
        .reply(json(400, json!({"error": "invalid_request"})));
    s.run_with(&probe()).error();
    s.push(token());
    assert_eq!(s.run_with(&probe()).requests.len(), 1);
}

#[test]
fn a_probe_that_got_no_answer_is_sent_again_next_time() {
    let mut s = Scenario::imds().reply(transport(TransportErrorKind::ConnectTimeout, "t"));
    s.run_with(&probe()).error();
    s.push(bad_request_102());
    s.push(token());
    let run = s.run_with(&probe());
    assert_eq!(run.requests.len(), 2);
    assert_probe(&run, 0, IMDS);
    run.token();
}

#[test]
fn a_credential_that_already_got_an_imds_token_does_not_probe() {
    // IMDS is proven there; a probe now could only turn a passing hiccup into "unavailable"
    // (unavailable only before any success).
    let mut s = Scenario::imds().reply(token());
    s.run().token();
    s.set_scope("https://vault.azure.net/.default");
    s.push(token());
    let run = s.run_with(&probe());
    assert_eq!(run.request().header("Metadata"), Some("true"));
}

#[test]
fn without_the_option_there_is_no_probe() {
    let mut s = Scenario::imds().reply(transport(TransportErrorKind::ConnectionRefused, "r"));
    let run = s.run();
    assert_eq!(run.request().header("Metadata"), Some("true"));
}

#[test]
fn pod_identity_endpoint_is_not_probed() {
    // Skip the probe when AZURE_POD_IDENTITY_AUTHORITY_HOST is set (JS, Python).
    let mut s = Scenario::imds()
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.0.0.9:2579")
        .reply(token());
    let run = s.run_with(&probe());
    let request = run.request();
    assert_eq!(request.authority, "10.0.0.9:2579");
    assert_eq!(request.header("Metadata"), Some("true"));
}

#[test]
fn non_imds_sources_never_probe() {
    for mut s in [
        Scenario::app_service(),
        Scenario::app_service_2017(),
        Scenario::azure_ml(),
        Scenario::cloud_shell(),
        Scenario::service_fabric(),
        Scenario::workload_identity(),
    ] {
        s.push(token());
        let run = s.run_with(&probe());
        let source = run.token().source();
        assert_ne!(source, Source::Imds);
        assert_ne!(run.request().timeouts.connect_ms, 1_000, "{source}");
    }
    let mut s = Scenario::arc()
        .reply(super::harness::arc_challenge())
        .reply(token());
    let run = s.run_with(&probe());
    assert_eq!(run.steps(), ["send", "read", "send"]);
    assert_eq!(run.token().source(), Source::AzureArc);
}
