// Over 350 lines on purpose: every place a secret could leak, one scenario each.
//! Secrets and tokens never appear in `Debug` output or error messages.

use serde_json::json;

use super::harness::{
    ARC_KEY, ARC_KEY_PATH, ASSERTION, SECRET, Scenario, Scripted, T0, T0_SECS, TOKEN,
    arc_challenge, assert_request_id, json, respond, token_expiring_at, transport,
};
use crate::proto::{
    AccessToken, Action, EnvSnapshot, Error, IdentitySelector, Source, TransportErrorKind,
};

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} shows the token: {text}");
    assert!(
        !text.contains("secret-payload"),
        "{what} shows part of the token: {text}"
    );
    assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
}

#[track_caller]
fn assert_error_clean(what: &str, e: &Error) {
    assert_clean(what, &e.to_string());
    assert_clean(what, &format!("{e:?}"));
    assert_clean(what, &format!("{e:#?}"));
    assert_clean(what, e.code().unwrap_or_default());
    assert_clean(what, e.correlation_id().unwrap_or_default());
}

#[test]
fn http_request_debug_redacts_the_app_service_secret() {
    let mut s = Scenario::app_service();
    let mut acquisition = s.start_fetch();
    assert_clean("Acquisition before sending", &format!("{acquisition:?}"));
    let Some(Action::Send(request)) = acquisition.poll_action(T0) else {
        panic!("expected a request");
    };
    assert_eq!(
        request.header("X-IDENTITY-HEADER"),
        Some(SECRET),
        "sent as is"
    );
    let id = assert_request_id(&request);
    assert_eq!(
        format!("{request:?}"),
        format!(
            "HttpRequest {{ method: Get, url: \"http://127.0.0.1:41564/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com\", headers: [X-IDENTITY-HEADER: <redacted>, x-ms-client-request-id: {id}], body: \"\", timeouts: Timeouts {{ connect_ms: 5000, first_byte_ms: 30000, between_bytes_ms: 10000, total_ms: 45000 }} }}"
        )
    );
    assert_clean("HttpRequest {:#?}", &format!("{request:#?}"));
    assert_clean("HttpRequest::url", &request.url());
    assert_clean("Header", &format!("{:?}", request.headers[0]));
}

#[test]
fn sensitive_request_body_is_redacted() {
    let mut s = Scenario::app_service();
    let mut acquisition = s.start_fetch();
    let Some(Action::Send(mut request)) = acquisition.poll_action(T0) else {
        panic!("expected a request");
    };
    request.body = format!("client_assertion={SECRET}").into_bytes();
    request.body_sensitive = true;
    let debug = format!("{request:?}");
    assert_clean("HttpRequest with a sensitive body", &debug);
    let expected = format!("body: <{} bytes redacted>", 17 + SECRET.len());
    assert!(debug.contains(&expected), "{debug}");
}

#[test]
fn access_token_debug_redacts_the_token() {
    let token = AccessToken::new(TOKEN.into(), T0_SECS + 3600, T0, None, Source::Imds);
    assert_eq!(
        format!("{token:?}"),
        format!(
            "AccessToken {{ token: <{} bytes redacted>, expires_on: {}, refresh_on: {}, source: Imds }}",
            TOKEN.len(),
            T0_SECS + 3600,
            T0_SECS + 3300
        )
    );
    assert_clean("AccessToken {:#?}", &format!("{token:#?}"));
    assert_eq!(token.secret(), TOKEN);
}

#[test]
fn env_snapshot_debug_lists_names_only() {
    let env = EnvSnapshot::from_pairs([
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41564/msi/token"),
        ("IDENTITY_HEADER", SECRET),
        ("MSI_SECRET", SECRET),
    ]);
    assert_eq!(
        format!("{env:?}"),
        r#"{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_SECRET"}"#
    );
}

#[test]
fn credential_and_fetch_debug_never_show_the_token() {
    let mut s = Scenario::app_service().reply(token_expiring_at(T0_SECS + 3600));
    s.run().token();
    assert_clean("ManagedIdentity", &format!("{:?}", s.identity()));
    let start = s.start().expect("cached");
    assert_clean("Start::Cached", &format!("{start:?}"));

    // A finished fetch whose outcome has not been taken yet.
    s.set_scope("https://vault.azure.net/.default");
    let mut acquisition = s.start_fetch();
    let _send = acquisition.poll_action(T0);
    acquisition.handle_response(T0, token_expiring_at(T0_SECS + 3600).into_response());
    assert_clean("Acquisition with an outcome", &format!("{acquisition:?}"));
    assert_eq!(
        acquisition
            .poll_outcome()
            .expect("outcome")
            .into_result()
            .expect("token")
            .secret(),
        TOKEN
    );
}

#[test]
fn errors_from_every_failure_path_never_contain_the_token_or_the_secret() {
    let body = |extra: serde_json::Value| {
        let mut b = json!({"access_token": TOKEN, "resource": "https://management.azure.com"});
        b.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        json(200, b)
    };
    let on = (T0_SECS + 3600).to_string();
    // Attempts: retryable statuses and timeouts are retried 3 times (non-IMDS sources).
    let replies: Vec<(&str, usize, Scripted)> = vec![
        (
            "pop token",
            1,
            body(json!({"expires_on": on, "token_type": "pop"})),
        ),
        ("no expiry", 1, body(json!({}))),
        (
            "bad expiry",
            1,
            body(json!({"expires_on": "never", "expires_in": "never"})),
        ),
        (
            "expired",
            1,
            body(json!({"expires_on": (T0_SECS - 1).to_string()})),
        ),
        (
            "empty token",
            1,
            json(200, json!({"access_token": "", "expires_on": on})),
        ),
        (
            "non-JSON 2xx with the token",
            1,
            respond(200, format!("access_token={TOKEN}")),
        ),
        (
            "400 with a token field",
            1,
            json(
                400,
                json!({"error": "invalid_request", "error_description": "Identity not found", "access_token": TOKEN}),
            ),
        ),
        (
            "400 unable to load",
            1,
            json(
                400,
                json!({"statusCode": 400, "message": "Unable to load requested managed identity.", "correlationId": "c0ffee"}),
            ),
        ),
        (
            "401",
            1,
            json(401, json!({"statusCode": 401, "message": "Unauthorized"})),
        ),
        ("403", 1, respond(403, "Forbidden")),
        ("404", 4, respond(404, "")),
        (
            "429",
            4,
            json(
                429,
                json!({"statusCode": 429, "message": "Too many requests"}),
            ),
        ),
        (
            "500 with a token field",
            4,
            json(
                500,
                json!({"statusCode": 500, "message": "boom", "access_token": TOKEN}),
            ),
        ),
        (
            "refused",
            1,
            transport(TransportErrorKind::ConnectionRefused, "connection refused"),
        ),
        (
            "timeout",
            4,
            transport(TransportErrorKind::Timeout, "timed out"),
        ),
        (
            "denied",
            1,
            transport(TransportErrorKind::Denied, "not allowed"),
        ),
        (
            "too large",
            1,
            transport(TransportErrorKind::ResponseTooLarge, "over 1 MiB"),
        ),
        (
            "late token",
            1,
            token_expiring_at(T0_SECS + 3600).taking(3_600_000),
        ),
    ];
    for selector in [
        IdentitySelector::SystemAssigned,
        IdentitySelector::ClientId("5e29463d-71da-4fe0-8e69-999b57db23b0".into()),
    ] {
        for (name, attempts, reply) in &replies {
            let mut s = Scenario::app_service()
                .selector(selector.clone())
                .replies(reply.clone(), *attempts);
            let run = s.run();
            assert_eq!(run.requests.len(), *attempts, "{name}");
            assert_error_clean(name, run.error());
        }
    }

    // After a success (the Transport paths).
    let mut s = Scenario::app_service().reply(token_expiring_at(T0_SECS + 3600));
    s.run().token();
    s.set_scope("https://vault.azure.net/.default");
    for kind in [
        TransportErrorKind::ConnectionRefused,
        TransportErrorKind::Timeout,
    ] {
        // Retried: the endpoint answered before.
        s.push_times(transport(kind, "simulated"), 4);
        assert_error_clean("transport after success", s.run().error());
    }

    // Refusals before anything is sent.
    let refusals = [
        Scenario::app_service().scope(""),
        Scenario::app_service().scope("a b"),
        Scenario::app_service().selector(IdentitySelector::ClientId(String::new())),
        Scenario::app_service().env("IDENTITY_ENDPOINT", "ftp://x"),
        Scenario::app_service().env(
            "IDENTITY_SERVER_THUMBPRINT",
            "0123456789abcdef0123456789abcdef01234567",
        ),
        Scenario::new()
            .env("MSI_ENDPOINT", "http://127.0.0.1:8911/")
            .env("MSI_SECRET", SECRET)
            .selector(IdentitySelector::ObjectId("x".into())),
    ];
    for mut s in refusals {
        let run = s.run();
        run.assert_nothing_sent();
        assert_error_clean("refusal", run.error());
    }
}

/// Neither `secret` nor its first 8 bytes (what a quote cut short leaves behind) in the
/// error's message, code, correlation id or `Debug`.
#[track_caller]
fn assert_scrubbed(what: &str, e: &Error, secret: &str) {
    for text in [
        e.to_string(),
        format!("{e:?}"),
        e.code().unwrap_or_default().to_string(),
        e.correlation_id().unwrap_or_default().to_string(),
    ] {
        assert!(!text.contains(secret), "{what}: the secret shows in {text}");
        assert!(
            !text.contains(&secret[..8]),
            "{what}: the start of the secret shows in {text}"
        );
    }
}

#[test]
fn service_error_that_echoes_the_app_service_secret_is_redacted() {
    // With the attempts each takes (500 is retried 3 times).
    let echoes = [
        (
            1,
            json(
                401,
                json!({"statusCode": 401, "message": format!("X-IDENTITY-HEADER '{SECRET}' is not valid"), "correlationId": "c-1"}),
            ),
        ),
        (
            1,
            json(
                400,
                json!({"error": SECRET, "error_description": "bad", "correlation_id": SECRET}),
            ),
        ),
        (4, respond(500, format!("<html>bad header {SECRET}</html>"))),
        // Cut by the 300-character quote limit in the middle of the secret.
        (
            4,
            json(
                500,
                json!({"statusCode": 500, "message": format!("{}{SECRET}", "x".repeat(290))}),
            ),
        ),
    ];
    for (attempts, reply) in echoes {
        let run = Scenario::app_service().replies(reply, attempts).run();
        assert_eq!(run.requests.len(), attempts);
        let e = run.error();
        assert_scrubbed("App Service error", e, SECRET);
        assert_error_clean("App Service error", e);
    }
    let run = Scenario::app_service()
        .reply(json(
            401,
            json!({"statusCode": 401, "message": format!("X-IDENTITY-HEADER '{SECRET}' is not valid")}),
        ))
        .run();
    assert_eq!(
        run.error().message(),
        "App Service: the endpoint rejected the secret from IDENTITY_ENDPOINT and IDENTITY_HEADER (401: X-IDENTITY-HEADER '<redacted>' is not valid); restart the process so it gets the platform's current value"
    );
}

#[test]
fn msi_secret_and_service_fabric_secret_echoes_are_redacted() {
    for mut s in [
        Scenario::app_service_2017(),
        Scenario::azure_ml(),
        Scenario::service_fabric(),
    ] {
        s.push(json(
            401,
            json!({"error": {"code": "SecretHeaderNotFound", "message": format!("secret {SECRET} unknown")}}),
        ));
        let run = s.run();
        assert_scrubbed("secret echo", run.error(), SECRET);
    }
}

#[test]
fn arc_key_echoed_by_the_agent_is_redacted() {
    for description in [
        format!("key {ARC_KEY} expired"),
        format!("Authorization: Basic {ARC_KEY} rejected"),
        format!("{}{ARC_KEY}", "x".repeat(290)),
    ] {
        // Each of the 4 attempts is a fresh challenge round trip with a new key.
        let mut s = Scenario::arc();
        for _ in 0..4 {
            s.push(arc_challenge());
            s.push(json(
                500,
                json!({"error": "server_error", "error_description": description}),
            ));
        }
        let run = s.run();
        assert_eq!(run.requests.len(), 8);
        assert_eq!(run.file_reads.len(), 4);
        let e = run.error();
        assert_scrubbed("Arc key echo", e, ARC_KEY);
        assert!(e.message().contains("<redacted>"), "{e}");
    }
}

#[test]
fn arc_key_never_appears_in_debug_output() {
    let mut s = Scenario::arc();
    let mut acquisition = s.start_fetch();
    let _challenge = acquisition.poll_action(T0);
    acquisition.handle_response(T0, arc_challenge().into_response());
    let Some(Action::ReadFile(read)) = acquisition.poll_action(T0) else {
        panic!("expected the key read");
    };
    assert_eq!(read.path, ARC_KEY_PATH);
    acquisition.handle_file(T0, Ok(ARC_KEY.into()));
    let Some(Action::Send(request)) = acquisition.poll_action(T0) else {
        panic!("expected the authorized request");
    };
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Basic {ARC_KEY}").as_str())
    );
    for (what, text) in [
        ("HttpRequest", format!("{request:?}")),
        ("HttpRequest {:#?}", format!("{request:#?}")),
        ("Acquisition", format!("{acquisition:?}")),
        ("Acquisition {:#?}", format!("{acquisition:#?}")),
    ] {
        assert!(!text.contains(ARC_KEY), "{what} shows the Arc key: {text}");
    }
}

#[test]
fn federated_assertion_echoed_by_entra_is_redacted() {
    for description in [
        format!("AADSTS50027: JWT token is invalid or malformed: {ASSERTION}"),
        format!("{}{ASSERTION}", "x".repeat(280)),
    ] {
        let run = Scenario::workload_identity()
            .reply(json(
                400,
                json!({"error": "invalid_request", "error_description": description, "correlation_id": "c"}),
            ))
            .run();
        let e = run.error();
        assert_scrubbed("assertion echo", e, ASSERTION);
    }
}
