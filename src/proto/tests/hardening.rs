//! Defects an adversarial review found, each pinned by the test that failed before its fix.

use super::harness::{Scenario, T0_SECS, json};
use crate::proto::ErrorKind;
use crate::proto::retry::parse_http_date;
use serde_json::json as j;

#[test]
fn a_token_that_cannot_be_a_header_value_is_refused_and_not_cached() {
    for bad in ["abc\r\nx-injected: 1", "abc def", "abc\u{7f}", "ab=c", "é"] {
        let mut s = Scenario::imds().reply(json(
            200,
            j!({"access_token": bad, "expires_in": 86_399, "token_type": "Bearer"}),
        ));
        let run = s.run();
        assert_eq!(run.error().kind(), ErrorKind::InvalidResponse, "{bad:?}");
        assert!(
            !run.error().message().contains(bad),
            "the token is not quoted"
        );
        // Not cached: the next call asks again.
        s.push(json(
            200,
            j!({"access_token": "eyJ.good_token-~+/==", "expires_in": 86_399, "token_type": "Bearer"}),
        ));
        assert_eq!(s.run().token().secret(), "eyJ.good_token-~+/==");
    }
}

#[test]
fn an_absurd_retry_after_date_is_ignored_without_overflow() {
    assert_eq!(
        parse_http_date("Sun, 06 Nov 999999999999 08:49:37 GMT"),
        None
    );
    assert_eq!(
        parse_http_date("Sun, 06 Nov -99999999999 08:49:37 GMT"),
        None
    );
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 -1:49:37 GMT"), None);
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
}

#[test]
fn an_expiry_beyond_any_entra_lifetime_is_refused() {
    let micros = (T0_SECS + 86_399) * 1_000_000;
    for body in [
        j!({"access_token": "t", "expires_on": micros, "token_type": "Bearer"}),
        j!({"access_token": "t", "expires_in": 1e308, "token_type": "Bearer"}),
        j!({"access_token": "t", "expires_in": 8 * 86_400, "token_type": "Bearer"}),
    ] {
        let mut s = Scenario::imds().reply(json(200, body.clone()));
        let run = s.run();
        assert_eq!(run.error().kind(), ErrorKind::InvalidResponse, "{body}");
        assert!(
            run.error()
                .message()
                .contains("longer than any Entra token"),
            "{}",
            run.error()
        );
    }
    // A day, and the 28 hours of continuous access evaluation, still work.
    for lifetime in [86_399, 28 * 3600] {
        let mut s = Scenario::imds().reply(json(
            200,
            j!({"access_token": "t", "expires_in": lifetime, "token_type": "Bearer"}),
        ));
        s.run().token();
    }
}

#[test]
fn a_json_escaped_echo_of_the_secret_is_redacted_from_code_and_correlation_id() {
    use super::harness::{SECRET, respond};
    // `\u0073` is `s`: the raw body does not contain the secret, the decoded fields do.
    let escaped = format!("\\u0073{}", &SECRET[1..]);
    let body = format!(
        r#"{{"error":"{escaped}","error_description":"bad","correlation_id":"{escaped}"}}"#
    );
    let mut s = Scenario::app_service().reply(respond(400, body));
    let run = s.run();
    let e = run.error();
    for (what, text) in [
        ("message", Some(e.message())),
        ("code", e.code()),
        ("correlation id", e.correlation_id()),
    ] {
        assert!(
            !text.unwrap_or_default().contains(SECRET),
            "{what}: {text:?}"
        );
    }
    assert_eq!(e.code(), Some("<redacted>"));
}

/// A WI token answer from Entra.
fn entra(token: &str) -> super::harness::Scripted {
    json(
        200,
        j!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

#[test]
fn a_changed_tenant_is_another_identity_and_never_gets_the_old_token() {
    // Defect 7: the cache key held neither the tenant nor the authority nor the endpoint, so
    // after the environment changed the vault token of the old tenant was served.
    let mut s = Scenario::workload_identity()
        .scope("https://vault.azure.net/.default")
        .reply(entra("tenant-a-vault"));
    assert_eq!(s.run().token().secret(), "tenant-a-vault");
    let other = "0c0c0c0c-1111-4222-8333-444444444444";
    s.set_env("AZURE_TENANT_ID", other);
    // A call that needs a fetch sees the new environment...
    s.set_scope("https://storage.azure.com/.default");
    s.push(entra("tenant-b-storage"));
    let storage = s.run();
    assert!(
        storage
            .request()
            .path_and_query
            .starts_with(&format!("/{other}/"))
    );
    // ...and from then on nothing of tenant A answers: the vault token is fetched again.
    s.set_scope("https://vault.azure.net/.default");
    s.push(entra("tenant-b-vault"));
    let vault = s.run();
    assert_eq!(vault.token().secret(), "tenant-b-vault");
    assert!(
        vault
            .request()
            .path_and_query
            .starts_with(&format!("/{other}/"))
    );
}

#[test]
fn a_changed_endpoint_or_client_id_is_another_identity_too() {
    for (name, value) in [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41999/msi/token"),
        ("AZURE_CLIENT_ID", "99999999-8888-4777-8666-555555555555"),
    ] {
        let mut s = Scenario::app_service()
            .scope("https://management.azure.com/.default")
            .reply(json(
                200,
                j!({"access_token": "first", "expires_in": 86_399}),
            ));
        s.run().token();
        s.set_env(name, value);
        s.set_scope("https://storage.azure.com/.default");
        s.push(json(
            200,
            j!({"access_token": "other", "expires_in": 86_399}),
        ));
        s.run().token();
        s.set_scope("https://management.azure.com/.default");
        s.push(json(
            200,
            j!({"access_token": "second", "expires_in": 86_399}),
        ));
        let again = s.run();
        assert_eq!(again.token().secret(), "second", "{name}");
        assert_eq!(again.requests.len(), 1, "{name}");
    }
}

#[test]
fn a_fetch_in_flight_for_the_old_environment_does_not_fill_the_new_cache() {
    use crate::proto::{Action, Poll, Start};
    let mut s = Scenario::app_service();
    let mut old = s.start_fetch();
    let now = s.now();
    assert!(matches!(old.poll(now), Poll::Act(Action::Send(_))));
    s.set_env("IDENTITY_ENDPOINT", "http://127.0.0.1:41999/msi/token");
    // The new environment's fetch for the same call is not told to wait for the old one.
    let new = s.start_fetch();
    assert_eq!(new.source(), old.source());
    s.identity().abandon(&new);
    // The old fetch ends with a token: its caller gets it, the new environment's cache not.
    let answer = json(200, j!({"access_token": "old-env", "expires_in": 86_399}));
    old.handle_response(now, answer.into_response());
    let Poll::Done(outcome) = old.poll(now) else {
        panic!("the old fetch did not finish")
    };
    assert_eq!(
        s.identity().finish(now, outcome).unwrap().secret(),
        "old-env"
    );
    assert!(
        matches!(s.start(), Ok(Start::Fetch(_))),
        "not served from the cache"
    );
}

#[test]
fn the_shared_store_key_differs_by_the_default_identity_client_id() {
    // Azure ML's system-assigned identity is DEFAULT_IDENTITY_CLIENT_ID, sent in the query,
    // which the store key (endpoint scheme, authority and path) did not cover.
    use crate::proto::{IdentitySelector, ManagedIdentity, TokenRequest};
    let a = Scenario::azure_ml();
    let b = Scenario::azure_ml().env(
        "DEFAULT_IDENTITY_CLIENT_ID",
        "0c0c0c0c-1111-4222-8333-444444444444",
    );
    let selector = IdentitySelector::SystemAssigned;
    let request = TokenRequest::new("https://vault.azure.net/.default", &selector);
    let key = |s: &Scenario| {
        ManagedIdentity::share(&s.snapshot(), Default::default(), &request)
            .unwrap()
            .key
    };
    assert_ne!(key(&a), key(&b));
}

/// The client assertion a workload-identity request carried.
fn assertion_in(request: &crate::proto::HttpRequest) -> String {
    super::harness::form_pairs(&request.body)
        .into_iter()
        .find(|(k, _)| k == "client_assertion")
        .map(|(_, v)| v)
        .expect("a client_assertion")
}

fn assertion_expired() -> super::harness::Scripted {
    json(
        400,
        j!({"error": "invalid_client", "error_description": "AADSTS700024: Client assertion is not within its valid time range.", "error_codes": [700024]}),
    )
}

#[test]
fn an_expired_kept_assertion_is_dropped_and_the_file_read_again_in_the_same_fetch() {
    // Defect 11: after AADSTS700024 the rejected assertion was sent again for 5 minutes.
    use super::harness::{ASSERTION, TOKEN_FILE};
    let rotated = "eyJhbGciOiJSUzI1NiJ9.rotated-assertion.sig";
    let mut s = Scenario::workload_identity().reply(entra("first"));
    s.run().token();
    s.set_file(TOKEN_FILE, Ok(rotated.into()));
    s.advance(60_000);
    s.set_scope("https://vault.azure.net/.default");
    s.push(assertion_expired());
    s.push(entra("second"));
    let run = s.run();
    assert_eq!(run.steps(), ["send", "read", "send"]);
    assert_eq!(assertion_in(&run.requests[0]), ASSERTION, "the kept copy");
    assert_eq!(assertion_in(&run.requests[1]), rotated, "read again");
    assert_eq!(run.token().secret(), "second");
}

#[test]
fn an_expired_assertion_read_fresh_is_an_error_and_is_not_kept() {
    let mut s = Scenario::workload_identity().reply(assertion_expired());
    let failed = s.run();
    assert_eq!(
        failed.steps(),
        ["read", "send"],
        "no second try with the same file"
    );
    assert_eq!(failed.error().kind(), ErrorKind::Configuration);
    // Within five minutes the next fetch reads the file again instead of reusing the copy.
    s.advance(1_000);
    s.push(entra("t"));
    assert_eq!(s.run().steps(), ["read", "send"]);
}

#[test]
fn a_longer_aadsts_code_is_not_the_expired_assertion() {
    let mut s = Scenario::workload_identity().reply(entra("first"));
    s.run().token();
    s.set_scope("https://vault.azure.net/.default");
    s.push(json(
        400,
        j!({"error": "invalid_client", "error_description": "AADSTS7000241: something else entirely."}),
    ));
    let run = s.run();
    assert_eq!(run.steps(), ["send"], "the kept copy is not re-read");
    // And the next fetch still uses the kept copy.
    s.set_scope("https://storage.azure.com/.default");
    s.push(entra("t"));
    assert_eq!(s.run().steps(), ["send"]);
}
