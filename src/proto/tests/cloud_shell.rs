//! Cloud Shell: the only MI form POST, `Metadata: true`, no `api-version`, and the
//! signed-in user's identity only.

use serde_json::json;

use super::harness::{
    Expect, Scenario, T0_SECS, TOKEN, assert_form_request, json, token_expiring_at,
};
use crate::proto::{ErrorClass, ErrorKind, IdentitySelector, Method, Scheme, Source};

const FORM: &str = "application/x-www-form-urlencoded";

fn cloud_shell_post() -> Expect<'static> {
    Expect {
        method: Method::Post,
        scheme: Scheme::Http,
        authority: "localhost:50342",
        path: "/oauth2/token",
        query: &[],
        headers: &[("Metadata", "true"), ("Content-Type", FORM)],
    }
}

#[test]
fn request_is_a_form_post_with_metadata_and_no_api_version() {
    let run = Scenario::cloud_shell()
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    let request = run.request();
    assert_form_request(
        request,
        &cloud_shell_post(),
        &[("resource", "https://management.azure.com")],
        false,
    );
    assert_eq!(request.path_and_query, "/oauth2/token");
    assert_eq!(request.body, b"resource=https%3A%2F%2Fmanagement.azure.com");
    assert!(request.headers.iter().all(|h| !h.sensitive), "no secrets");
    run.assert_nothing_read();
    assert_eq!(run.token().source(), Source::CloudShell);
}

#[test]
fn resource_with_reserved_characters_is_percent_encoded_in_the_body() {
    let run = Scenario::cloud_shell()
        .scope("api://my-app/x?y=1&z=ä+/.default")
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    let request = run.request();
    assert_form_request(
        request,
        &cloud_shell_post(),
        &[("resource", "api://my-app/x?y=1&z=ä+")],
        false,
    );
    assert_eq!(
        request.body,
        b"resource=api%3A%2F%2Fmy-app%2Fx%3Fy%3D1%26z%3D%C3%A4%2B"
    );
}

#[test]
fn every_user_assigned_selector_is_refused_before_sending() {
    for selector in [
        IdentitySelector::ClientId("5e29463d-71da-4fe0-8e69-999b57db23b0".into()),
        IdentitySelector::ObjectId("0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60".into()),
        IdentitySelector::ResourceId("/subscriptions/x/providers/y/id".into()),
    ] {
        let mut s = Scenario::cloud_shell().selector(selector.clone());
        let run = s.run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{selector:?}");
        assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
        assert_eq!(e.mi_source(), Some(Source::CloudShell));
        assert_eq!(
            e.message(),
            format!(
                "Cloud Shell cannot use {}: Cloud Shell only has the signed-in user's system identity; omit the user-assigned id",
                selector.kind().describe()
            )
        );
        assert_eq!(s.identity().cached_tokens(), 0);
    }
}

#[test]
fn imds_shaped_response_with_string_numbers_is_parsed() {
    let expires_on = T0_SECS + 3599;
    let run = Scenario::cloud_shell()
        .reply(json(
            200,
            json!({
                "access_token": TOKEN,
                "expires_in": "3599",
                "expires_on": expires_on.to_string(),
                "not_before": T0_SECS.to_string(),
                "resource": "https://management.azure.com/",
                "token_type": "Bearer",
            }),
        ))
        .run();
    assert_eq!(run.token().expires_on(), expires_on);
}

#[test]
fn oauth_error_is_classified_and_keeps_the_code() {
    let run = Scenario::cloud_shell()
        .reply(json(
            400,
            json!({"error": "invalid_request", "error_description": "Malformed resource"}),
        ))
        .run();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), Some("invalid_request"));
    assert_eq!(
        e.message(),
        "Cloud Shell: the request for the system-assigned identity was refused (400 invalid_request: Malformed resource)"
    );
}
