//! Service Fabric: HTTPS only, `Secret` header, api-version 2019-07-01-preview, no
//! runtime selector, the thumbprint format, and its nested error body.

use serde_json::json;

use super::harness::{
    Expect, SECRET, Scenario, T0_SECS, TOKEN, assert_request, json, token_expiring_at,
};
use crate::proto::{
    ErrorClass, ErrorKind, IdentitySelector, Method, Scheme, Source, UnixMillis,
    normalize_thumbprint,
};

const CORRELATION: &str = "7f3c2a1b-0d9e-4c8b-a7f6-5e4d3c2b1a09";
const BAD_THUMBPRINT: &str = "Service Fabric: IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint (40 hex digits)";

fn sf_request<'a>(query: &'a [(&'a str, &'a str)]) -> Expect<'a> {
    Expect {
        method: Method::Get,
        scheme: Scheme::Https,
        authority: "10.0.0.4:2377",
        path: "/metadata/identity/oauth2/token",
        query,
        headers: &[("Secret", SECRET)],
    }
}

#[test]
fn request_is_an_https_get_with_the_secret_header_and_no_selector() {
    let run = Scenario::service_fabric()
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    let request = run.request();
    assert_request(
        request,
        &sf_request(&[
            ("api-version", "2019-07-01-preview"),
            ("resource", "https://management.azure.com"),
        ]),
    );
    assert!(
        request.headers[0].sensitive,
        "the secret header is sensitive"
    );
    assert_eq!(request.header("Metadata"), None);
    run.assert_nothing_read();
    assert_eq!(run.token().source(), Source::ServiceFabric);
}

#[test]
fn user_assigned_selectors_are_refused_before_sending_where_msal_node_returns_the_cluster_identity()
{
    for selector in [
        IdentitySelector::ClientId("5e29463d-71da-4fe0-8e69-999b57db23b0".into()),
        IdentitySelector::ObjectId("0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60".into()),
        IdentitySelector::ResourceId("/subscriptions/x/providers/y/id".into()),
    ] {
        let mut s = Scenario::service_fabric().selector(selector.clone());
        let run = s.run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{selector:?}");
        assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
        assert_eq!(e.mi_source(), Some(Source::ServiceFabric));
        assert_eq!(
            e.message(),
            format!(
                "Service Fabric cannot use {}: the identity is set by the cluster's resource configuration (https://aka.ms/servicefabricmi); omit the user-assigned id",
                selector.kind().describe()
            )
        );
    }
}

#[test]
fn plain_http_endpoint_is_configuration_before_sending() {
    let run = Scenario::service_fabric()
        .env(
            "IDENTITY_ENDPOINT",
            "http://10.0.0.4:2377/metadata/identity/oauth2/token",
        )
        .run();
    run.assert_untouched();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(e.mi_source(), Some(Source::ServiceFabric));
    assert_eq!(
        e.message(),
        "Service Fabric: IDENTITY_ENDPOINT must be an https:// URL"
    );
}

#[test]
fn malformed_thumbprint_is_configuration_before_sending() {
    for thumbprint in [
        "0123456789ABCDEF0123456789ABCDEF0123456",
        "0123456789ABCDEF0123456789ABCDEF012345678",
        "0123456789ABCDEF0123456789ABCDEF0123456G",
        "SHA1:0123456789ABCDEF0123456789ABCDEF01234567",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "not a thumbprint",
    ] {
        let run = Scenario::service_fabric()
            .env("IDENTITY_SERVER_THUMBPRINT", thumbprint)
            .run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{thumbprint}");
        assert_eq!(e.mi_source(), Some(Source::ServiceFabric), "{thumbprint}");
        assert_eq!(e.message(), BAD_THUMBPRINT, "{thumbprint}");
    }
}

#[test]
fn thumbprint_with_colons_spaces_and_lower_case_is_accepted_and_normalized() {
    const NORMAL: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
    for thumbprint in [
        "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
        "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67",
        " 0123456789abcdef0123456789abcdef01234567\n",
    ] {
        assert_eq!(
            normalize_thumbprint(thumbprint).as_deref(),
            Some(NORMAL),
            "{thumbprint:?}"
        );
        let run = Scenario::service_fabric()
            .env("IDENTITY_SERVER_THUMBPRINT", thumbprint)
            .reply(token_expiring_at(T0_SECS + 3600))
            .run();
        assert_eq!(
            run.token().source(),
            Source::ServiceFabric,
            "{thumbprint:?}"
        );
        assert_eq!(run.request().scheme, Scheme::Https);
    }
}

#[test]
fn error_body_code_message_and_correlation_id_are_kept() {
    let run = Scenario::service_fabric()
        .reply(json(
            401,
            json!({"error": {"correlationId": CORRELATION, "code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers."}}),
        ))
        .run();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.code(), Some("SecretHeaderNotFound"));
    assert_eq!(e.correlation_id(), Some(CORRELATION));
    assert_eq!(
        e.message(),
        "Service Fabric: the endpoint rejected the secret from IDENTITY_ENDPOINT, IDENTITY_HEADER and IDENTITY_SERVER_THUMBPRINT (401 SecretHeaderNotFound: Secret is not found in the request headers.); restart the process so it gets the platform's current value"
    );
}

#[test]
fn managed_identity_not_found_is_configuration_with_its_code() {
    let run = Scenario::service_fabric()
        .reply(json(
            400,
            json!({"error": {"correlationId": CORRELATION, "code": "ManagedIdentityNotFound", "message": "No managed identity is configured for the application."}}),
        ))
        .run();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.code(), Some("ManagedIdentityNotFound"));
    assert_eq!(e.correlation_id(), Some(CORRELATION));
    assert_eq!(
        e.message(),
        "Service Fabric: the request for the system-assigned identity was refused (400 ManagedIdentityNotFound: No managed identity is configured for the application.)"
    );
}

#[test]
fn documented_sample_with_numeric_expires_on_is_parsed() {
    // The Service Fabric docs' sample: expires_on is a JSON number (dated 2019-08-08).
    let expires_on = 1_565_244_611;
    let run = Scenario::service_fabric()
        .at(UnixMillis::from_secs(expires_on - 3600))
        .reply(json(
            200,
            json!({"token_type": "Bearer", "access_token": TOKEN, "expires_on": expires_on, "resource": "https://vault.azure.net/"}),
        ))
        .run();
    assert_eq!(run.token().expires_on(), expires_on);
    assert_eq!(run.token().secret(), TOKEN);
}
