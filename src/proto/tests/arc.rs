// Over 350 lines on purpose: one file per source, one scenario per test (the Arc key-file
// rules alone are a dozen).
//! Azure Arc ([`crate::proto::arc`]): the 401 challenge, key-file validation before any
//! read, exactly one round trip, and the fail-closed user-assigned echo check.

use serde_json::{Value, json};

use super::harness::{
    ARC_KEY, ARC_KEY_PATH, Expect, Run, Scenario, Scripted, T0_SECS, TOKEN, arc_challenge,
    assert_request, challenge, json, respond,
};
use crate::proto::arc::ARC_KEY_MAX_BYTES;
use crate::proto::detect::ARC_DEFAULT_ENDPOINT;
use crate::proto::{
    ARC_KEY_DIR, Error, ErrorClass, ErrorKind, FileErrorKind, FileRead, HttpRequest,
    IdentitySelector, Method, Scheme, Source,
};

const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";
const OBJECT: &str = "0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60";
const RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-id";

const NOT_CONFIRMED: &str = "Azure Arc did not confirm the requested user-assigned identity in its token response; the agent likely does not support user-assigned identities and returned the system-assigned identity; update the agent";

/// The one read every challenge must produce: the named key, capped, no symlinks.
fn key_read() -> FileRead {
    FileRead {
        path: ARC_KEY_PATH.into(),
        max_len: 4096,
        follow_symlinks: false,
    }
}

/// An Arc token response, with extra fields (the identity echo).
fn arc_token(extra: Value) -> Scripted {
    let mut body = json!({
        "access_token": TOKEN,
        "expires_in": "86399",
        "expires_on": (T0_SECS + 86_399).to_string(),
        "ext_expires_in": "86399",
        "not_before": T0_SECS.to_string(),
        "resource": "https://management.azure.com",
        "token_type": "Bearer",
    });
    body.as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    json(200, body)
}

fn first_leg<'a>(query: &'a [(&'a str, &'a str)]) -> Expect<'a> {
    Expect {
        method: Method::Get,
        scheme: Scheme::Http,
        authority: "localhost:40342",
        path: "/metadata/identity/oauth2/token",
        query,
        headers: &[("Metadata", "true")],
    }
}

/// Asserts the second leg is the first plus `Authorization: Basic <key>`, marked sensitive.
#[track_caller]
fn assert_second_leg(first: &HttpRequest, second: &HttpRequest, key: &str) {
    let mut expected = first.clone();
    let authorization = second.headers.last().expect("headers").clone();
    assert_eq!(authorization.name, "Authorization");
    assert_eq!(authorization.value, format!("Basic {key}"));
    assert!(authorization.sensitive, "the key is a secret");
    expected.headers.push(authorization);
    assert_eq!(second, &expected, "same URL, headers and request id");
}

/// No byte of the key in the message, code, correlation id or `Debug` of `e`.
#[track_caller]
fn assert_no_key(e: &Error, key: &str) {
    for text in [
        e.to_string(),
        format!("{e:?}"),
        e.code().unwrap_or_default().to_string(),
        e.correlation_id().unwrap_or_default().to_string(),
    ] {
        assert!(!text.contains(key), "the key leaked: {text}");
    }
}

#[test]
fn challenge_reads_the_named_key_once_and_retries_with_basic_authorization() {
    let mut s = Scenario::arc()
        .reply(arc_challenge())
        .reply(arc_token(json!({})));
    let run = s.run();
    assert_eq!(run.steps(), ["send", "read", "send"]);
    assert_eq!(run.file_reads, [key_read()]);
    assert_request(
        &run.requests[0],
        &first_leg(&[
            ("api-version", "2020-06-01"),
            ("resource", "https://management.azure.com"),
        ]),
    );
    assert_eq!(run.requests[0].header("Authorization"), None);
    assert_second_leg(&run.requests[0], &run.requests[1], ARC_KEY);
    let token = run.token();
    assert_eq!(token.secret(), TOKEN);
    assert_eq!(token.source(), Source::AzureArc);
    assert_eq!(token.expires_on(), T0_SECS + 86_399);
    // Cached: the next call neither challenges nor reads the key again.
    let again = s.run();
    again.assert_untouched();
    assert_eq!(again.token().secret(), TOKEN);
}

#[test]
fn user_assigned_selectors_are_forwarded_and_the_echo_is_accepted_case_insensitively() {
    let cases = [
        (
            IdentitySelector::ClientId(CLIENT.into()),
            "client_id",
            json!({"client_id": CLIENT.to_ascii_uppercase()}),
        ),
        (
            IdentitySelector::ObjectId(OBJECT.into()),
            "object_id",
            json!({"object_id": OBJECT.to_ascii_uppercase()}),
        ),
        (
            IdentitySelector::ResourceId(RESOURCE_ID.into()),
            "msi_res_id",
            json!({"msi_res_id": RESOURCE_ID.to_ascii_lowercase()}),
        ),
        // Echo under mi_res_id is accepted too (msi_res_id falls back to it, as in the MSALs).
        (
            IdentitySelector::ResourceId(RESOURCE_ID.into()),
            "msi_res_id",
            json!({"mi_res_id": RESOURCE_ID}),
        ),
    ];
    for (selector, param, echo) in cases {
        let run = Scenario::arc()
            .selector(selector.clone())
            .reply(arc_challenge())
            .reply(arc_token(echo.clone()))
            .run();
        assert_eq!(run.token().secret(), TOKEN, "{echo}");
        assert_request(
            &run.requests[0],
            &first_leg(&[
                ("api-version", "2020-06-01"),
                ("resource", "https://management.azure.com"),
                (param, selector.value()),
            ]),
        );
        assert_second_leg(&run.requests[0], &run.requests[1], ARC_KEY);
    }
}

/// Runs a user-assigned fetch whose token response carries `echo`.
fn echoed(selector: IdentitySelector, echo: Value) -> Run {
    Scenario::arc()
        .selector(selector)
        .reply(arc_challenge())
        .reply(arc_token(echo))
        .run()
}

#[test]
fn missing_echo_fails_closed_as_not_confirmed() {
    for selector in [
        IdentitySelector::ClientId(CLIENT.into()),
        IdentitySelector::ObjectId(OBJECT.into()),
        IdentitySelector::ResourceId(RESOURCE_ID.into()),
    ] {
        // An old agent ignores the selector and answers for the system identity.
        let mut s = Scenario::arc()
            .selector(selector.clone())
            .reply(arc_challenge())
            .reply(arc_token(json!({})));
        let run = s.run();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Security, "{selector:?}");
        assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
        assert_eq!(e.message(), NOT_CONFIRMED);
        assert_no_key(e, ARC_KEY);
        assert_eq!(
            s.identity().cached_tokens(),
            0,
            "an unconfirmed token is not cached"
        );
    }
}

#[test]
fn different_echo_fails_closed_as_not_confirmed() {
    let other = "11111111-2222-4333-8444-555555555555";
    for (selector, echo) in [
        (
            IdentitySelector::ClientId(CLIENT.into()),
            json!({"client_id": other}),
        ),
        // The echo of another kind does not count.
        (
            IdentitySelector::ClientId(CLIENT.into()),
            json!({"object_id": CLIENT}),
        ),
        (
            IdentitySelector::ObjectId(OBJECT.into()),
            json!({"object_id": other, "client_id": OBJECT}),
        ),
        (
            IdentitySelector::ResourceId(RESOURCE_ID.into()),
            json!({"msi_res_id": format!("{RESOURCE_ID}-2")}),
        ),
        // A prefix is not a match.
        (
            IdentitySelector::ClientId(CLIENT.into()),
            json!({"client_id": &CLIENT[..8]}),
        ),
    ] {
        let run = echoed(selector, echo.clone());
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Security, "{echo}");
        assert_eq!(e.message(), NOT_CONFIRMED, "{echo}");
    }
}

#[test]
fn system_assigned_needs_no_echo() {
    let run = Scenario::arc()
        .reply(arc_challenge())
        .reply(arc_token(json!({"client_id": CLIENT})))
        .run();
    assert_eq!(run.token().secret(), TOKEN);
}

#[test]
fn error_answer_to_a_user_assigned_request_is_the_service_error_not_not_confirmed() {
    // msal-node's test: an unknown identity is a plain service error.
    let run = Scenario::arc()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(arc_challenge())
        .reply(json(
            400,
            json!({"error": "invalid_request", "error_description": "Identity not found"}),
        ))
        .run();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.status(), Some(400));
    assert_eq!(
        e.message(),
        format!(
            "Azure Arc: the user-assigned identity with client id {CLIENT} is not assigned to this resource (400 invalid_request: Identity not found); assign the identity to the resource or fix the id"
        )
    );
    assert_no_key(e, ARC_KEY);
}

/// A challenge whose realm (or whole header) is refused: one request, no read, Security.
#[track_caller]
fn refused_challenge(reply: Scripted) -> Error {
    let mut s = Scenario::arc().reply(reply);
    let run = s.run();
    assert_eq!(run.requests.len(), 1, "exactly one request");
    run.assert_nothing_read();
    let e = run.error().clone();
    assert_eq!(e.kind(), ErrorKind::Security, "{e}");
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(e.mi_source(), Some(Source::AzureArc));
    assert_no_key(&e, ARC_KEY);
    e
}

fn refusal(realm: &str, why: &str) -> String {
    format!(
        "Azure Arc: refusing the challenge key path \"{realm}\": {why}; a genuine agent names a .key file in {ARC_KEY_DIR}"
    )
}

#[test]
fn key_path_outside_the_directory_is_refused_before_any_read() {
    for realm in [
        "/etc/shadow",
        "/etc/azcmagent/x.key",
        "/var/opt/azcmagent/x.key",
        "/var/opt/azcmagent/tokens/sub/x.key",
        "/var/opt/azcmagent/tokens2/x.key",
        "/var/opt/azcmagent//tokens/x.key",
    ] {
        let e = refused_challenge(challenge(&format!("Basic realm={realm}")));
        assert_eq!(
            e.message(),
            refusal(realm, "it is outside the Arc key directory"),
            "{realm}"
        );
    }
}

#[test]
fn dot_dot_traversal_is_refused_before_any_read() {
    // CVE-2024-35255: the realm made SDKs read and send any local file.
    for realm in [
        "/var/opt/azcmagent/tokens/../../../../etc/shadow.key",
        "/var/opt/azcmagent/tokens/../tokens/x.key",
        "/var/opt/azcmagent/tokens/./x.key",
    ] {
        let e = refused_challenge(challenge(&format!("Basic realm={realm}")));
        assert_eq!(
            e.message(),
            refusal(realm, "it is outside the Arc key directory"),
            "{realm}"
        );
    }
}

#[test]
fn relative_and_windows_paths_are_refused_before_any_read() {
    for realm in [
        "var/opt/azcmagent/tokens/x.key",
        "x.key",
        "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\x.key",
        "/var/opt/azcmagent/tokens\\..\\x.key",
    ] {
        let e = refused_challenge(challenge(&format!("Basic realm={realm}")));
        assert_eq!(
            e.message(),
            refusal(realm, "it is not an absolute Linux path"),
            "{realm}"
        );
    }
}

#[test]
fn non_key_file_name_is_refused_before_any_read() {
    for realm in [
        "/var/opt/azcmagent/tokens/x.txt",
        "/var/opt/azcmagent/tokens/x.key.bak",
        "/var/opt/azcmagent/tokens/x.KEY",
        "/var/opt/azcmagent/tokens/.key",
        "/var/opt/azcmagent/tokens/",
    ] {
        let e = refused_challenge(challenge(&format!("Basic realm={realm}")));
        assert_eq!(
            e.message(),
            refusal(realm, "it is not a .key file"),
            "{realm}"
        );
    }
}

#[test]
fn missing_www_authenticate_header_is_a_security_error() {
    let e = refused_challenge(respond(401, ""));
    assert_eq!(
        e.message(),
        "Azure Arc: the 401 challenge has no WWW-Authenticate header; the agent is not answering as Azure Arc does, check IDENTITY_ENDPOINT"
    );
}

#[test]
fn non_basic_www_authenticate_is_a_security_error() {
    for value in [
        format!("Bearer realm={ARC_KEY_PATH}"),
        format!("Digest realm={ARC_KEY_PATH}"),
        format!("realm={ARC_KEY_PATH}"),
        "Basic".to_string(),
    ] {
        let e = refused_challenge(challenge(&value));
        assert_eq!(
            e.message(),
            format!(
                "Azure Arc: unsupported WWW-Authenticate value \"{value}\"; expected Basic realm=<key file>"
            ),
            "{value}"
        );
    }
}

#[test]
fn realm_is_matched_case_insensitively_and_may_be_quoted() {
    for value in [
        format!("basic REALM={ARC_KEY_PATH}"),
        format!("Basic realm=\"{ARC_KEY_PATH}\""),
        format!("  Basic realm= {ARC_KEY_PATH} "),
    ] {
        let run = Scenario::arc()
            .reply(challenge(&value))
            .reply(arc_token(json!({})))
            .run();
        assert_eq!(run.token().secret(), TOKEN, "{value}");
        assert_eq!(run.file_reads, [key_read()], "{value}");
    }
}

/// A challenge whose key file read fails with `kind`: one request, one read, then `kind`'s error.
#[track_caller]
fn failed_key_read(kind: FileErrorKind) -> Error {
    let mut s = Scenario::arc()
        .file_error(ARC_KEY_PATH, kind)
        .reply(arc_challenge());
    let run = s.run();
    assert_eq!(run.steps(), ["send", "read"], "{kind:?}");
    assert_eq!(run.file_reads, [key_read()]);
    let e = run.error().clone();
    assert_eq!(e.mi_source(), Some(Source::AzureArc));
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_no_key(&e, ARC_KEY);
    e
}

#[test]
fn missing_key_file_is_a_security_error() {
    let e = failed_key_read(FileErrorKind::NotFound);
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(
        e.message(),
        format!("Azure Arc: the Arc key file does not exist (NotFound: {ARC_KEY_PATH})")
    );
}

#[test]
fn oversized_key_file_is_a_security_error() {
    let e = failed_key_read(FileErrorKind::TooLarge);
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(
        e.message(),
        "Azure Arc: the Arc key file is larger than allowed; refusing it"
    );
}

#[test]
fn symlinked_key_file_is_refused_because_symlinks_are_not_followed() {
    // The read asks the host not to follow links; a link is then not a regular file.
    let e = failed_key_read(FileErrorKind::NotRegularFile);
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(
        e.message(),
        "Azure Arc: the Arc key file is not a regular file (an Arc key must not be a symbolic link)"
    );
}

#[test]
fn no_access_to_the_key_directory_is_configuration_naming_the_preopen() {
    let e = failed_key_read(FileErrorKind::NoAccess);
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(
        e.message(),
        "Azure Arc: the host gives no read access to the Arc key file; preopen /var/opt/azcmagent/tokens read-only (the azmi CLI does when it exists)"
    );
}

#[test]
fn host_that_returns_more_than_max_len_is_still_refused() {
    // The cap is enforced by the read *and* by the core (even if the host's stat lied).
    let big = "k".repeat(ARC_KEY_MAX_BYTES + 1);
    let mut s = Scenario::arc()
        .file(ARC_KEY_PATH, big.clone())
        .reply(arc_challenge());
    let run = s.run();
    assert_eq!(run.steps(), ["send", "read"]);
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(
        e.message(),
        "Azure Arc: the key file is larger than 4096 bytes; refusing it"
    );
    assert_no_key(e, &big[..64]);

    // Exactly 4096 bytes is accepted.
    let max = "k".repeat(ARC_KEY_MAX_BYTES);
    let run = Scenario::arc()
        .file(ARC_KEY_PATH, max.clone())
        .reply(arc_challenge())
        .reply(arc_token(json!({})))
        .run();
    run.token();
    assert_second_leg(&run.requests[0], &run.requests[1], &max);
}

#[test]
fn key_that_cannot_be_a_header_value_is_refused_without_quoting_it() {
    let key = "arc-key-injected";
    for contents in [
        format!("{key}\r\nX-Evil: 1"),
        format!("{key}\n"),
        format!("{key} two"),
        String::new(),
    ] {
        let mut s = Scenario::arc()
            .file(ARC_KEY_PATH, contents.clone())
            .reply(arc_challenge());
        let run = s.run();
        assert_eq!(
            run.steps(),
            ["send", "read"],
            "{contents:?}: no second request"
        );
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Security, "{contents:?}");
        assert_eq!(
            e.message(),
            "Azure Arc: the key file is empty or holds characters a header cannot carry; refusing it"
        );
        assert_no_key(e, key);
    }
    let mut s = Scenario::arc()
        .file(ARC_KEY_PATH, b"\xff\xfe-not-utf8".to_vec())
        .reply(arc_challenge());
    assert_eq!(s.run().error().kind(), ErrorKind::Security);
}

#[test]
fn second_401_is_a_security_error_after_exactly_one_round_trip() {
    let mut s = Scenario::arc()
        .reply(arc_challenge())
        .reply(arc_challenge());
    let run = s.run();
    assert_eq!(
        run.steps(),
        ["send", "read", "send"],
        "no second challenge round"
    );
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(e.status(), Some(401));
    assert_eq!(
        e.message(),
        "Azure Arc: the agent refused the key from its own challenge (a second 401); restart the Arc agent (himds)"
    );
    assert_no_key(e, ARC_KEY);
}

#[test]
fn first_response_200_is_accepted_as_the_token() {
    // As msal-node: an agent that answers without a challenge is taken at its word.
    let run = Scenario::arc().reply(arc_token(json!({}))).run();
    assert_eq!(run.token().secret(), TOKEN);
    assert_eq!(run.requests.len(), 1);
    run.assert_nothing_read();
    assert_eq!(run.request().header("Authorization"), None);
}

#[test]
fn first_response_200_for_a_user_assigned_request_still_needs_the_echo() {
    let run = Scenario::arc()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(arc_token(json!({})))
        .run();
    assert_eq!(run.error().kind(), ErrorKind::Security);
    assert_eq!(run.error().message(), NOT_CONFIRMED);
    run.assert_nothing_read();
}

#[test]
fn first_response_500_is_classified_normally() {
    // Retried (like any 500) but never mistaken for a challenge: no key is read.
    let run = Scenario::arc()
        .replies(
            json(
                500,
                json!({"error": "server_error", "error_description": "himds failed", "correlation_id": "c-1"}),
            ),
            4,
        )
        .run();
    assert_eq!(run.requests.len(), 4);
    run.assert_nothing_read();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Service);
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.code(), Some("server_error"));
    assert_eq!(e.correlation_id(), Some("c-1"));
    assert_eq!(
        e.message(),
        "Azure Arc: the endpoint failed (500 server_error: himds failed); retry later, the platform reports this as a service fault (gave up after 4 attempts)"
    );
}

#[test]
fn host_without_file_access_refuses_arc_before_any_request() {
    for mut s in [Scenario::arc(), Scenario::new().arc_agent()] {
        s = s.no_file_access();
        let run = s.run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.mi_source(), Some(Source::AzureArc), "never IMDS");
        assert_eq!(
            e.message(),
            "Azure Arc needs to read a file (the Arc challenge key), which this host cannot do (it has no file access); run the azmi component in a host with wasi:filesystem"
        );
    }
}

#[test]
fn agent_binary_detection_uses_the_loopback_default_endpoint() {
    assert_eq!(
        ARC_DEFAULT_ENDPOINT,
        "http://127.0.0.1:40342/metadata/identity/oauth2/token"
    );
    let run = Scenario::new()
        .arc_agent()
        .file(ARC_KEY_PATH, ARC_KEY)
        .reply(arc_challenge())
        .reply(arc_token(json!({})))
        .run();
    assert_eq!(run.token().source(), Source::AzureArc);
    let first = &run.requests[0];
    assert_eq!(first.scheme, Scheme::Http);
    assert_eq!(first.authority, "127.0.0.1:40342");
    assert_eq!(
        first.path_and_query,
        "/metadata/identity/oauth2/token?api-version=2020-06-01&resource=https%3A%2F%2Fmanagement.azure.com"
    );
    assert_second_leg(first, &run.requests[1], ARC_KEY);
}

#[test]
fn identity_endpoint_variable_is_used_as_given() {
    let run = Scenario::arc()
        .env("IDENTITY_ENDPOINT", "http://127.0.0.1:40343/custom/token")
        .reply(arc_challenge())
        .reply(arc_token(json!({})))
        .run();
    assert_eq!(run.requests[0].authority, "127.0.0.1:40343");
    assert_eq!(run.requests[1].authority, "127.0.0.1:40343");
    assert!(run.requests[0].path_and_query.starts_with("/custom/token?"));
}
