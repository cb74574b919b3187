// Over 350 lines on purpose: one file per source, one scenario per test.
//! IMDS: exact requests, parsing, classification of failures, transport errors, deadline.

use serde_json::json;

use super::harness::{
    Expect, Scenario, T0, T0_SECS, TOKEN, assert_request, assert_request_id, json, respond,
    token_expiring_at, transport,
};
use crate::proto::retry::IMDS_RETRY;
use crate::proto::{
    ErrorClass, ErrorKind, IdentitySelector, Method, Scheme, Source, Timeouts, TransportErrorKind,
    UnixMillis,
};

const IMDS: &str = "169.254.169.254";
const PATH: &str = "/metadata/identity/oauth2/token";
const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";
const OBJECT: &str = "0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60";

const TIMED_OUT: &str = "IMDS: http://169.254.169.254 (the IMDS default) did not answer in time; no managed identity is reachable here";

/// IMDS' per-attempt timeouts plus the core's 1 s slack.
const IMDS_DEADLINE_MS: u64 = 2_000 + 30_000 + 10_000 + 1_000;

fn imds_request<'a>(query: &'a [(&'a str, &'a str)]) -> Expect<'a> {
    Expect {
        method: Method::Get,
        scheme: Scheme::Http,
        authority: IMDS,
        path: PATH,
        query,
        headers: &[("Metadata", "true")],
    }
}

fn fetch(selector: IdentitySelector) -> super::harness::Run {
    Scenario::imds()
        .selector(selector)
        .reply(token_expiring_at(T0_SECS + 3600))
        .run()
}

#[test]
fn system_assigned_request_is_exact() {
    let run = fetch(IdentitySelector::SystemAssigned);
    let request = run.request();
    assert_request(
        request,
        &imds_request(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://management.azure.com"),
        ]),
    );
    assert_eq!(
        request.path_and_query,
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com"
    );
    assert_eq!(request.timeouts, Timeouts::phases(2_000, 30_000, 10_000));
    assert_eq!(request.header("X-IDENTITY-HEADER"), None);
    assert_eq!(request.header("X-Forwarded-For"), None);
}

#[test]
fn client_id_selector_is_sent_as_client_id() {
    let run = fetch(IdentitySelector::ClientId(CLIENT.into()));
    assert_request(
        run.request(),
        &imds_request(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://management.azure.com"),
            ("client_id", CLIENT),
        ]),
    );
}

#[test]
fn object_id_selector_is_sent_as_object_id() {
    let run = fetch(IdentitySelector::ObjectId(OBJECT.into()));
    assert_request(
        run.request(),
        &imds_request(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://management.azure.com"),
            ("object_id", OBJECT),
        ]),
    );
}

#[test]
fn resource_id_selector_is_sent_as_msi_res_id_percent_encoded() {
    let id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-id_1.x~";
    let run = fetch(IdentitySelector::ResourceId(id.into()));
    let request = run.request();
    assert_request(
        request,
        &imds_request(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://management.azure.com"),
            ("msi_res_id", id),
        ]),
    );
    // RFC 3986: `/` is encoded, unreserved `-._~` are not.
    assert!(
        request.path_and_query.ends_with(
            "&msi_res_id=%2Fsubscriptions%2F00000000-0000-0000-0000-000000000000%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.ManagedIdentity%2FuserAssignedIdentities%2Fmy-id_1.x~"
        ),
        "{}",
        request.path_and_query
    );
}

#[test]
fn reserved_and_non_ascii_characters_in_the_resource_are_percent_encoded() {
    let mut s = Scenario::imds()
        .scope("https://example.com/path?odd&chars=1+2%3B#frag/ä/.default")
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    let request = run.request();
    assert_eq!(
        request.path_and_query,
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fexample.com%2Fpath%3Fodd%26chars%3D1%2B2%253B%23frag%2F%C3%A4"
    );
    assert_request(
        request,
        &imds_request(&[
            ("api-version", "2018-02-01"),
            (
                "resource",
                "https://example.com/path?odd&chars=1+2%3B#frag/ä",
            ),
        ]),
    );
}

#[test]
fn scope_with_whitespace_is_refused_before_sending() {
    let mut s = Scenario::imds().scope("https://example.com/path with?odd&chars/.default");
    let run = s.run();
    run.assert_nothing_sent();
    assert_eq!(run.error().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn scope_without_default_suffix_is_sent_unchanged() {
    let mut s = Scenario::imds()
        .scope("https://vault.azure.net/")
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert_request(
        run.request(),
        &imds_request(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://vault.azure.net/"),
        ]),
    );
}

#[test]
fn every_request_gets_a_fresh_request_id() {
    let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600));
    let first = s.run();
    s.set_scope("https://vault.azure.net/.default");
    s.push(token_expiring_at(T0_SECS + 3600));
    let second = s.run();
    let a = assert_request_id(first.request()).to_string();
    let b = assert_request_id(second.request()).to_string();
    assert_ne!(a, b);
}

#[test]
fn documented_imds_sample_is_parsed() {
    // The IMDS docs' sample, shifted to the virtual clock; numbers are strings.
    let expires_on = T0_SECS + 3599;
    let mut s = Scenario::imds().reply(json(
        200,
        json!({
            "access_token": TOKEN,
            "refresh_token": "",
            "expires_in": "3599",
            "expires_on": expires_on.to_string(),
            "not_before": (T0_SECS - 1).to_string(),
            "resource": "https://management.azure.com/",
            "token_type": "Bearer",
            "client_id": CLIENT,
            "ext_expires_in": "3599",
        }),
    ));
    let run = s.run();
    let token = run.token();
    assert_eq!(token.secret(), TOKEN);
    assert_eq!(token.expires_on(), expires_on);
    assert_eq!(token.refresh_on(), expires_on - 300);
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.source(), Source::Imds);
}

#[test]
fn numeric_expiry_and_lowercase_bearer_are_accepted() {
    let mut s = Scenario::imds().reply(json(
        200,
        json!({"access_token": TOKEN, "expires_on": T0_SECS + 600, "token_type": "bearer"}),
    ));
    assert_eq!(s.run().token().expires_on(), T0_SECS + 600);
}

#[test]
fn expires_on_wins_over_expires_in() {
    let mut s = Scenario::imds().reply(json(
        200,
        json!({"access_token": TOKEN, "expires_on": (T0_SECS + 1000).to_string(), "expires_in": "3599"}),
    ));
    assert_eq!(s.run().token().expires_on(), T0_SECS + 1000);
}

#[test]
fn expires_in_only_is_anchored_at_the_response_time() {
    // The request takes 20 s of virtual time: msal-node would be 20 s early.
    let mut s = Scenario::imds()
        .reply(json(200, json!({"access_token": TOKEN, "expires_in": "3600"})).taking(20_000));
    let run = s.run();
    assert_eq!(run.started_at, T0);
    assert_eq!(run.finished_at, T0.plus_millis(20_000));
    assert_eq!(run.token().expires_on(), T0_SECS + 20 + 3600);
    assert_eq!(run.token().refresh_on(), T0_SECS + 20 + 3600 - 300);
}

#[test]
fn unparseable_expires_on_falls_back_to_expires_in() {
    let mut s = Scenario::imds().reply(json(
        200,
        json!({"access_token": TOKEN, "expires_on": "soon", "expires_in": 120}),
    ));
    assert_eq!(s.run().token().expires_on(), T0_SECS + 120);
}

fn failure(reply: super::harness::Scripted, selector: IdentitySelector) -> crate::proto::Error {
    let mut s = Scenario::imds().selector(selector).reply(reply);
    let run = s.run();
    assert_eq!(run.requests.len(), 1);
    assert_eq!(s.identity().cached_tokens(), 0, "a failure caches nothing");
    run.error().clone()
}

/// Attempts IMDS makes for a failure that keeps coming back ([`IMDS_RETRY`]).
const ATTEMPTS: usize = 1 + IMDS_RETRY.max_retries as usize;

/// A retryable failure answered on every attempt: the error after the last one.
fn retried_failure(reply: super::harness::Scripted) -> crate::proto::Error {
    let mut s = Scenario::imds().replies(reply, ATTEMPTS);
    let run = s.run();
    assert_eq!(run.requests.len(), ATTEMPTS);
    assert_eq!(s.identity().cached_tokens(), 0, "a failure caches nothing");
    run.error().clone()
}

#[test]
fn identity_not_found_for_system_assigned_is_unavailable() {
    let e = failure(
        json(
            400,
            json!({"error": "invalid_request", "error_description": "Identity not found"}),
        ),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
    assert_eq!(e.mi_source(), Some(Source::Imds));
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), Some("invalid_request"));
    assert_eq!(e.correlation_id(), None);
    assert_eq!(
        e.message(),
        "IMDS: no system-assigned identity is enabled on this resource (400 invalid_request: Identity not found); enable it, or select a user-assigned identity"
    );
}

#[test]
fn identity_not_found_for_user_assigned_is_configuration() {
    let e = failure(
        json(
            400,
            json!({"error": "invalid_request", "error_description": "Identity not found"}),
        ),
        IdentitySelector::ClientId(CLIENT.into()),
    );
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(e.status(), Some(400));
    assert_eq!(
        e.message(),
        format!(
            "IMDS: the user-assigned identity with client id {CLIENT} is not assigned to this resource (400 invalid_request: Identity not found); assign the identity to the resource or fix the id"
        )
    );
}

#[test]
fn unknown_resource_is_configuration_not_identity_not_assigned() {
    let description = "AADSTS500011: The resource principal named https://nope.example was not found in the tenant named contoso.";
    for (code, selector) in [
        ("invalid_resource", IdentitySelector::SystemAssigned),
        (
            "invalid_resource",
            IdentitySelector::ClientId(CLIENT.into()),
        ),
        // The AADSTS code alone is enough, whatever the error code says.
        ("invalid_request", IdentitySelector::SystemAssigned),
    ] {
        let mut s = Scenario::imds()
            .scope("https://nope.example/.default")
            .selector(selector)
            .reply(json(
                400,
                json!({"error": code, "error_description": description}),
            ));
        let run = s.run();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{code}");
        assert_eq!(e.code(), Some(code));
        assert_eq!(
            e.message(),
            format!(
                "IMDS: the resource \"https://nope.example\" is not known to Entra ID (400 {code}: {description}); check the scope, e.g. https://vault.azure.net/.default"
            )
        );
    }
}

#[test]
fn forbidden_unreachable_from_docker_desktop_is_unavailable() {
    let body = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.";
    let e = failure(respond(403, body), IdentitySelector::SystemAssigned);
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), Some(403));
    assert_eq!(e.code(), None);
    assert_eq!(
        e.message(),
        format!(
            "IMDS: the endpoint is unreachable (403: {body}); a local proxy (such as Docker Desktop's) answered instead of IMDS"
        )
    );
}

#[test]
fn forbidden_without_unreachable_is_configuration() {
    let e = failure(
        json(
            403,
            json!({"error": "forbidden", "error_description": "X-Forwarded-For not allowed"}),
        ),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(
        e.message(),
        "IMDS: the request for the system-assigned identity was refused (403 forbidden: X-Forwarded-For not allowed)"
    );
}

#[test]
fn missing_metadata_header_answer_is_configuration() {
    let e = failure(
        json(
            400,
            json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"}),
        ),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.code(), Some("bad_request_102"));
}

#[test]
fn updating_throttled_and_server_errors_are_service_faults() {
    // 404 "updating", 408, 410 "going through updates", 429 and 5xx are the service's
    // fault (retryable), not a configuration problem of the caller.
    for status in [404, 408, 410, 429, 500, 502, 503, 504] {
        let e = retried_failure(json(
            status,
            json!({"error": "unavailable", "error_description": "IMDS is going through updates"}),
        ));
        assert_eq!(e.kind(), ErrorKind::Service, "{status}");
        assert_eq!(e.class(), ErrorClass::AuthenticationFailed, "{status}");
        assert_eq!(e.status(), Some(status));
        assert_eq!(
            e.message(),
            format!(
                "IMDS: the endpoint failed ({status} unavailable: IMDS is going through updates); retry later, the platform reports this as a service fault (gave up after 7 attempts)"
            )
        );
    }
}

#[test]
fn server_error_keeps_status_code_and_correlation_id() {
    let e = retried_failure(json(
        500,
        json!({"error": "server_error", "error_description": "boom", "correlation_id": "0d4a6f1c-7c8b-4b4e-9d9f-2f7d6c5b4a39"}),
    ));
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.code(), Some("server_error"));
    assert_eq!(
        e.correlation_id(),
        Some("0d4a6f1c-7c8b-4b4e-9d9f-2f7d6c5b4a39")
    );
}

#[test]
fn non_json_success_is_unavailable_because_it_is_not_imds() {
    for body in [
        "<html>hello from a web server</html>",
        "",
        "[]",
        "\"token\"",
    ] {
        let e = failure(respond(200, body), IdentitySelector::SystemAssigned);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{body:?}");
        assert_eq!(e.status(), None);
        assert_eq!(
            e.message(),
            "IMDS: the endpoint answered with something that is not JSON, so it is not IMDS; no managed identity is reachable here"
        );
    }
}

fn invalid_response(body: serde_json::Value, what: &str) {
    let e = failure(json(200, body.clone()), IdentitySelector::SystemAssigned);
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{body}");
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(
        e.message(),
        format!(
            "IMDS: the token response is unusable: {what}; this is a platform fault, retry later or report it with the response status"
        ),
        "{body}"
    );
}

#[test]
fn missing_or_empty_access_token_is_invalid_response() {
    let on = (T0_SECS + 3600).to_string();
    invalid_response(json!({"expires_on": on}), "it has no access_token");
    invalid_response(
        json!({"access_token": "", "expires_on": on}),
        "it has no access_token",
    );
    invalid_response(
        json!({"access_token": null, "expires_on": on}),
        "it has no access_token",
    );
    invalid_response(
        json!({"access_token": 42, "expires_on": on}),
        "it has no access_token",
    );
}

#[test]
fn pop_token_type_is_invalid_response() {
    invalid_response(
        json!({"access_token": TOKEN, "expires_on": (T0_SECS + 3600).to_string(), "token_type": "pop"}),
        "token_type is \"pop\", not Bearer",
    );
}

#[test]
fn missing_expiry_is_invalid_response_not_an_expired_token() {
    invalid_response(
        json!({"access_token": TOKEN, "token_type": "Bearer"}),
        "its expiry is unknown (expires_on=absent, expires_in=absent)",
    );
    invalid_response(
        json!({"access_token": TOKEN, "expires_on": "soon", "expires_in": "later"}),
        "its expiry is unknown (expires_on=\"soon\", expires_in=\"later\")",
    );
}

#[test]
fn already_expired_token_is_rejected() {
    for expires_on in [T0_SECS, T0_SECS - 1, 1] {
        invalid_response(
            json!({"access_token": TOKEN, "expires_on": expires_on.to_string()}),
            &format!("the token expired at {expires_on}, before it arrived (check the host clock)"),
        );
    }
    // expires_in 0 expires on arrival.
    invalid_response(
        json!({"access_token": TOKEN, "expires_in": 0}),
        &format!("the token expired at {T0_SECS}, before it arrived (check the host clock)"),
    );
}

#[test]
fn token_expiring_one_second_after_arrival_is_returned_but_not_cached_as_fresh() {
    let mut s = Scenario::imds().reply(json(200, json!({"access_token": TOKEN, "expires_in": 1})));
    assert_eq!(s.run().token().expires_on(), T0_SECS + 1);
    // Inside the 5-minute margin: the next call fetches again rather than serve it.
    s.push(token_expiring_at(T0_SECS + 3600));
    assert_eq!(s.run().requests.len(), 1);
}

fn transport_failure(kind: TransportErrorKind) -> crate::proto::Error {
    failure(
        transport(kind, "simulated"),
        IdentitySelector::SystemAssigned,
    )
}

#[test]
fn no_response_on_the_first_fetch_is_unavailable() {
    const NO_ANSWER: &str = "IMDS: no response from http://169.254.169.254 (the IMDS default): simulated; no managed identity is reachable here";
    // Nothing listens: one attempt (the fail-fast decision, tested in `retry.rs`).
    for kind in [
        TransportErrorKind::ConnectionRefused,
        TransportErrorKind::Dns,
        TransportErrorKind::ConnectTimeout,
    ] {
        let e = transport_failure(kind);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
        assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
        assert_eq!(e.status(), None);
        assert_eq!(e.message(), NO_ANSWER, "{kind:?}");
    }
    // A connection that was made but got no answer is retried, and still means unavailable.
    for kind in [TransportErrorKind::Timeout, TransportErrorKind::Other] {
        let e = retried_failure(transport(kind, "simulated"));
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{kind:?}");
        assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
        assert_eq!(e.status(), None);
        assert_eq!(
            e.message(),
            format!("{NO_ANSWER} (gave up after 7 attempts)"),
            "{kind:?}"
        );
    }
}

#[test]
fn rejected_tls_certificate_is_unavailable() {
    let e = transport_failure(TransportErrorKind::Tls);
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        "IMDS: the TLS certificate of http://169.254.169.254 (the IMDS default) was not accepted (simulated); trust its CA through the host (the azmi CLI reads SSL_CERT_FILE)"
    );
}

#[test]
fn host_egress_denial_is_unavailable() {
    let e = transport_failure(TransportErrorKind::Denied);
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        "IMDS: the host refused to connect to http://169.254.169.254 (the IMDS default): simulated; allow the endpoint in the host's outbound HTTP policy"
    );
}

#[test]
fn response_too_large_is_invalid_response() {
    let e = transport_failure(TransportErrorKind::ResponseTooLarge);
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(
        e.message(),
        "IMDS: the response was larger than the 1 MiB limit (simulated); this is not a managed-identity endpoint"
    );
}

#[test]
fn no_response_after_imds_served_a_token_is_transport_not_unavailable() {
    // Unavailable only before any successful response. Once this credential got a token
    // from IMDS, a refused connection is a (transient) failure: a chain must not move on to
    // another identity.
    let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600));
    s.run().token();
    s.set_scope("https://vault.azure.net/.default");
    for kind in [
        TransportErrorKind::ConnectionRefused,
        TransportErrorKind::Timeout,
    ] {
        // Retried now that IMDS is known to be there.
        s.push_times(transport(kind, "simulated"), ATTEMPTS);
        let run = s.run();
        assert_eq!(run.requests.len(), ATTEMPTS, "{kind:?}");
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Transport, "{kind:?}");
        assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
        assert_eq!(
            e.message(),
            "IMDS: no response from http://169.254.169.254 (the IMDS default): simulated, though it answered before; retry later (gave up after 7 attempts)"
        );
    }
    // So is the deadline backstop.
    s.push(token_expiring_at(T0_SECS + 7200).taking(IMDS_DEADLINE_MS));
    let run = s.run();
    assert_eq!(run.error().kind(), ErrorKind::Transport);
    assert_eq!(
        run.error().message(),
        "IMDS: http://169.254.169.254 (the IMDS default) did not answer in time, though it answered before; retry later"
    );
    // Policy denials and oversized answers keep their kind.
    s.push(transport(TransportErrorKind::Denied, "simulated"));
    assert_eq!(s.run().error().kind(), ErrorKind::Unavailable);
    s.push(transport(TransportErrorKind::ResponseTooLarge, "simulated"));
    assert_eq!(s.run().error().kind(), ErrorKind::InvalidResponse);
}

#[test]
fn deadline_is_the_sum_of_the_attempt_timeouts_plus_slack() {
    let mut s = Scenario::imds();
    let mut acquisition = s.start_fetch();
    assert_eq!(
        acquisition.poll_timeout(),
        None,
        "no deadline before the request is sent"
    );
    let _send = acquisition.poll_action(T0).expect("a request");
    assert_eq!(
        acquisition.poll_timeout(),
        Some(T0.plus_millis(IMDS_DEADLINE_MS))
    );
    assert!(
        acquisition.poll_action(T0).is_none(),
        "one request per fetch"
    );
}

#[test]
fn deadline_backstop_gives_up_when_the_host_never_answers() {
    let mut s = Scenario::imds();
    let mut acquisition = s.start_fetch();
    let _send = acquisition.poll_action(T0).expect("a request");
    let deadline = T0.plus_millis(IMDS_DEADLINE_MS);

    // Early and repeated timer calls do nothing (quinn: a spurious handle_timeout is a no-op).
    acquisition.handle_timeout(T0);
    acquisition.handle_timeout(UnixMillis(deadline.0 - 1));
    assert!(acquisition.poll_outcome().is_none());
    assert_eq!(acquisition.poll_timeout(), Some(deadline));

    acquisition.handle_timeout(deadline);
    assert_eq!(acquisition.poll_timeout(), None);
    let e = acquisition
        .poll_outcome()
        .expect("an outcome at the deadline")
        .into_result()
        .expect_err("a timeout");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.mi_source(), Some(Source::Imds));
    assert_eq!(e.message(), TIMED_OUT);
    assert!(
        acquisition.poll_outcome().is_none(),
        "the outcome is taken once"
    );

    // A late answer after the backstop fired neither replaces nor resurrects the outcome.
    acquisition.handle_response(
        deadline.plus_millis(5),
        token_expiring_at(T0_SECS + 3600).into_response(),
    );
    acquisition.handle_timeout(deadline.plus_millis(10));
    assert!(acquisition.poll_outcome().is_none());
}

#[test]
fn drive_reports_a_timeout_when_the_host_answers_after_the_deadline() {
    // A host that does not enforce the per-attempt timeouts and answers after the core's
    // deadline: the backstop wins, the late token is neither returned nor cached.
    for late_ms in [IMDS_DEADLINE_MS, IMDS_DEADLINE_MS + 60_000] {
        let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600).taking(late_ms));
        let run = s.run();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{late_ms}");
        assert_eq!(e.message(), TIMED_OUT);
        assert_eq!(run.finished_at, T0.plus_millis(late_ms));
        assert_eq!(s.now(), T0.plus_millis(late_ms));
        assert!(
            run.sleeps.is_empty(),
            "a blocking send leaves nothing to sleep for"
        );
        assert_eq!(s.identity().cached_tokens(), 0);
    }
    // Just inside the deadline, the answer counts.
    let mut s =
        Scenario::imds().reply(token_expiring_at(T0_SECS + 3600).taking(IMDS_DEADLINE_MS - 1));
    assert_eq!(s.run().token().secret(), TOKEN);
}

#[test]
fn transport_error_after_the_deadline_is_reported_as_the_timeout() {
    let mut s = Scenario::imds().reply(
        transport(TransportErrorKind::ConnectionRefused, "late").taking(IMDS_DEADLINE_MS + 1),
    );
    let run = s.run();
    assert_eq!(run.error().message(), TIMED_OUT);
}
