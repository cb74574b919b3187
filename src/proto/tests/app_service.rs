// Over 350 lines on purpose: one file per source, one scenario per test.
//! App Service 2019-08-01: exact requests, parsing, classification of failures, deadline.

use serde_json::json;

use super::harness::{
    Expect, Run, SECRET, Scenario, Scripted, T0, T0_SECS, TOKEN, assert_request, json, respond,
    token_expiring_at, transport,
};
use crate::proto::retry::LOCAL_RETRY;
use crate::proto::{
    Error, ErrorClass, ErrorKind, IdentitySelector, Method, Scheme, Source, Timeouts,
    TransportErrorKind,
};

const AUTHORITY: &str = "127.0.0.1:41564";
const PATH: &str = "/msi/token";
const CLIENT: &str = "5E29463D-71DA-4FE0-8E69-999B57DB23B0";
const OBJECT: &str = "0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60";
const RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-id";
const CORRELATION: &str = "7f3c2a1b-0d9e-4c8b-a7f6-5e4d3c2b1a09";

/// App Service's per-attempt timeouts plus the core's 1 s slack.
const DEADLINE_MS: u64 = 5_000 + 30_000 + 10_000 + 1_000;

fn app_request<'a>(query: &'a [(&'a str, &'a str)]) -> Expect<'a> {
    Expect {
        method: Method::Get,
        scheme: Scheme::Http,
        authority: AUTHORITY,
        path: PATH,
        query,
        headers: &[("X-IDENTITY-HEADER", SECRET)],
    }
}

fn fetch(selector: IdentitySelector) -> Run {
    Scenario::app_service()
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
        &app_request(&[
            ("api-version", "2019-08-01"),
            ("resource", "https://management.azure.com"),
        ]),
    );
    assert_eq!(
        request.path_and_query,
        "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com"
    );
    assert_eq!(
        request.header("Metadata"),
        None,
        "Metadata is IMDS-only here"
    );
    assert!(
        request.headers[0].sensitive,
        "the secret header is marked sensitive"
    );
    assert_eq!(request.timeouts, Timeouts::phases(5_000, 30_000, 10_000));
}

#[test]
fn client_id_selector_is_sent_as_client_id() {
    let run = fetch(IdentitySelector::ClientId(CLIENT.into()));
    assert_request(
        run.request(),
        &app_request(&[
            ("api-version", "2019-08-01"),
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
        &app_request(&[
            ("api-version", "2019-08-01"),
            ("resource", "https://management.azure.com"),
            ("object_id", OBJECT),
        ]),
    );
}

#[test]
fn resource_id_selector_is_sent_as_mi_res_id_percent_encoded() {
    let run = fetch(IdentitySelector::ResourceId(RESOURCE_ID.into()));
    let request = run.request();
    assert_request(
        request,
        &app_request(&[
            ("api-version", "2019-08-01"),
            ("resource", "https://management.azure.com"),
            ("mi_res_id", RESOURCE_ID),
        ]),
    );
    assert!(
        request
            .path_and_query
            .ends_with("&mi_res_id=%2Fsubscriptions%2F00000000-0000-0000-0000-000000000000%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.ManagedIdentity%2FuserAssignedIdentities%2Fmy-id"),
        "{}",
        request.path_and_query
    );
}

#[test]
fn endpoint_query_is_kept_and_parameters_are_appended() {
    let mut s = Scenario::app_service()
        .env(
            "IDENTITY_ENDPOINT",
            "http://LOCALHOST:8081/msi/token?stamp=abc",
        )
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert_eq!(run.request().authority, "localhost:8081");
    assert_eq!(
        run.request().path_and_query,
        "/msi/token?stamp=abc&api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com"
    );
}

#[test]
fn secret_is_read_from_the_current_snapshot_for_every_request() {
    // A rotated IDENTITY_HEADER is used by the next request (msal-node keeps the
    // first one for the life of the process).
    let mut s = Scenario::app_service().reply(token_expiring_at(T0_SECS + 3600));
    assert_eq!(s.run().request().header("X-IDENTITY-HEADER"), Some(SECRET));
    s.set_env("IDENTITY_HEADER", "rotated-secret");
    s.set_scope("https://vault.azure.net/.default");
    s.push(token_expiring_at(T0_SECS + 3600));
    assert_eq!(
        s.run().request().header("X-IDENTITY-HEADER"),
        Some("rotated-secret")
    );
}

#[test]
fn documented_app_service_sample_is_parsed() {
    // The App Service docs' shape: expires_on as a string, no expires_in, upper-case client id.
    let expires_on = T0_SECS + 86_399;
    let mut s = Scenario::app_service().reply(json(
        200,
        json!({
            "access_token": TOKEN,
            "expires_on": expires_on.to_string(),
            "resource": "https://vault.azure.net",
            "token_type": "Bearer",
            "client_id": CLIENT,
        }),
    ));
    let run = s.run();
    let token = run.token();
    assert_eq!(token.secret(), TOKEN);
    assert_eq!(token.expires_on(), expires_on);
    assert_eq!(token.refresh_on(), T0_SECS + 86_399 / 2);
    assert_eq!(token.source(), Source::AppService);
}

fn failure(reply: Scripted, selector: IdentitySelector) -> Error {
    let mut s = Scenario::app_service().selector(selector).reply(reply);
    let run = s.run();
    assert_eq!(run.requests.len(), 1);
    assert_eq!(s.identity().cached_tokens(), 0);
    run.error().clone()
}

/// A retryable failure answered on every attempt (3 retries): the error after the last one.
fn retried_failure(reply: Scripted) -> Error {
    let attempts = 1 + LOCAL_RETRY.max_retries as usize;
    let mut s = Scenario::app_service().replies(reply, attempts);
    let run = s.run();
    assert_eq!(run.requests.len(), attempts);
    assert_eq!(s.identity().cached_tokens(), 0);
    run.error().clone()
}

fn unable_to_load() -> Scripted {
    json(
        400,
        json!({"statusCode": 400, "message": "Unable to load requested managed identity.", "correlationId": CORRELATION}),
    )
}

#[test]
fn unable_to_load_identity_with_a_selector_is_configuration() {
    let e = failure(
        unable_to_load(),
        IdentitySelector::ResourceId(RESOURCE_ID.into()),
    );
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(e.mi_source(), Some(Source::AppService));
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), None);
    assert_eq!(e.correlation_id(), Some(CORRELATION));
    assert_eq!(
        e.message(),
        format!(
            "App Service: the user-assigned identity {RESOURCE_ID} is not assigned to this resource (400: Unable to load requested managed identity.); assign the identity to the resource or fix the id"
        )
    );
}

#[test]
fn unable_to_load_identity_without_a_selector_is_unavailable() {
    let e = failure(unable_to_load(), IdentitySelector::SystemAssigned);
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
    assert_eq!(e.correlation_id(), Some(CORRELATION));
    assert_eq!(
        e.message(),
        "App Service: no system-assigned identity is enabled on this resource (400: Unable to load requested managed identity.); enable it, or select a user-assigned identity"
    );
}

#[test]
fn rejected_secret_is_an_authentication_failure() {
    for status in [401, 403] {
        let e = failure(
            json(
                status,
                json!({"statusCode": status, "message": "Unauthorized"}),
            ),
            IdentitySelector::SystemAssigned,
        );
        assert_eq!(e.kind(), ErrorKind::Configuration, "{status}");
        assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
        assert_eq!(e.status(), Some(status));
        assert_eq!(
            e.message(),
            format!(
                "App Service: the endpoint rejected the secret from IDENTITY_ENDPOINT and IDENTITY_HEADER ({status}: Unauthorized); restart the process so it gets the platform's current value"
            )
        );
    }
}

#[test]
fn forbidden_unreachable_is_only_special_on_imds() {
    let e = failure(
        respond(
            403,
            "A socket operation was attempted to an unreachable network",
        ),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::Configuration);
}

#[test]
fn server_error_keeps_the_correlation_id() {
    let e = retried_failure(json(
        500,
        json!({"statusCode": 500, "message": "An unexpected error occured", "correlationId": CORRELATION}),
    ));
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.code(), None);
    assert_eq!(e.correlation_id(), Some(CORRELATION));
    assert_eq!(
        e.message(),
        "App Service: the endpoint failed (500: An unexpected error occured); retry later, the platform reports this as a service fault (gave up after 4 attempts)"
    );
}

#[test]
fn throttling_is_a_service_fault() {
    let e = retried_failure(json(
        429,
        json!({"statusCode": 429, "message": "Too many requests"}),
    ));
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.status(), Some(429));
}

#[test]
fn empty_error_body_keeps_the_status() {
    let e = retried_failure(respond(502, ""));
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.status(), Some(502));
    assert_eq!(
        e.message(),
        "App Service: the endpoint failed (502); retry later, the platform reports this as a service fault (gave up after 4 attempts)"
    );
}

#[test]
fn non_json_success_is_invalid_response_not_unavailable() {
    let body = "<html>App Service is starting</html>";
    let e = failure(respond(200, body), IdentitySelector::SystemAssigned);
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(
        e.message(),
        format!(
            "App Service: the token response is unusable: the body is not a JSON object ({} bytes); this is a platform fault, retry later or report it with the response status",
            body.len()
        )
    );
}

#[test]
fn token_problems_are_invalid_responses() {
    let on = (T0_SECS + 3600).to_string();
    for body in [
        json!({"expires_on": on}),
        json!({"access_token": TOKEN, "expires_on": on, "token_type": "pop"}),
        json!({"access_token": TOKEN}),
        json!({"access_token": TOKEN, "expires_on": (T0_SECS - 10).to_string()}),
    ] {
        let e = failure(json(200, body.clone()), IdentitySelector::SystemAssigned);
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{body}");
    }
}

#[test]
fn expires_in_only_is_anchored_at_the_response_time() {
    let mut s = Scenario::app_service()
        .reply(json(200, json!({"access_token": TOKEN, "expires_in": 7200})).taking(30_000));
    let token = s.run().token().clone();
    assert_eq!(token.expires_on(), T0_SECS + 30 + 7200);
    assert_eq!(token.refresh_on(), T0_SECS + 30 + 3600);
}

#[test]
fn no_response_is_unavailable_naming_the_endpoint_and_its_variable() {
    let e = failure(
        transport(TransportErrorKind::ConnectionRefused, "connection refused"),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        "App Service: no response from http://127.0.0.1:41564 (IDENTITY_ENDPOINT): connection refused; no managed identity is reachable here"
    );
    let e = failure(
        transport(TransportErrorKind::Denied, "127.0.0.1:41564 is not allowed"),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = failure(
        transport(TransportErrorKind::ResponseTooLarge, "over 1048576 bytes"),
        IdentitySelector::SystemAssigned,
    );
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
}

#[test]
fn deadline_backstop_uses_app_service_timeouts() {
    let mut s = Scenario::app_service();
    let mut acquisition = s.start_fetch();
    assert_eq!(acquisition.source(), Source::AppService);
    let _send = acquisition.poll_action(T0).expect("a request");
    let deadline = T0.plus_millis(DEADLINE_MS);
    assert_eq!(acquisition.poll_timeout(), Some(deadline));
    acquisition.handle_timeout(T0.plus_millis(DEADLINE_MS - 1));
    assert!(acquisition.poll_outcome().is_none());
    acquisition.handle_timeout(deadline);
    let e = acquisition
        .poll_outcome()
        .expect("outcome")
        .into_result()
        .expect_err("timeout");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        "App Service: http://127.0.0.1:41564 (IDENTITY_ENDPOINT) did not answer in time; no managed identity is reachable here"
    );

    let mut s =
        Scenario::app_service().reply(token_expiring_at(T0_SECS + 3600).taking(DEADLINE_MS));
    let run = s.run();
    assert_eq!(run.error().kind(), ErrorKind::Unavailable);
    assert_eq!(run.finished_at, T0.plus_millis(DEADLINE_MS));
}
