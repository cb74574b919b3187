//! Azure Machine Learning: the 2017-09-01 wire format plus `Metadata: true`,
//! `clientid=$DEFAULT_IDENTITY_CLIENT_ID` for system-assigned, and integer `expires_on`.

use serde_json::json;

use super::harness::{
    Expect, ML_DEFAULT_CLIENT, SECRET, Scenario, T0, T0_SECS, TOKEN, assert_request, json,
    token_expiring_at,
};
use crate::proto::{ErrorKind, IdentitySelector, Method, Scheme, Source};

const AUTHORITY: &str = "127.0.0.1:46808";
const PATH: &str = "/MSI/auth";
const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";

fn ml_request<'a>(query: &'a [(&'a str, &'a str)]) -> Expect<'a> {
    Expect {
        method: Method::Get,
        scheme: Scheme::Http,
        authority: AUTHORITY,
        path: PATH,
        query,
        headers: &[("Metadata", "true"), ("secret", SECRET)],
    }
}

#[test]
fn system_assigned_sends_the_default_identity_client_id_as_clientid() {
    // Azure ML requires it (Azure/azure-sdk-for-js#27920); MSAL Python omits it.
    let run = Scenario::azure_ml()
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    let request = run.request();
    assert_request(
        request,
        &ml_request(&[
            ("api-version", "2017-09-01"),
            ("resource", "https://management.azure.com"),
            ("clientid", ML_DEFAULT_CLIENT),
        ]),
    );
    assert!(
        request.headers[1].sensitive,
        "the secret header is sensitive"
    );
    assert!(!request.headers[0].sensitive);
    assert_eq!(run.token().source(), Source::AzureMl);
}

#[test]
fn client_id_selector_replaces_the_default_identity_client_id() {
    let run = Scenario::azure_ml()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    assert_request(
        run.request(),
        &ml_request(&[
            ("api-version", "2017-09-01"),
            ("resource", "https://management.azure.com"),
            ("clientid", CLIENT),
        ]),
    );
}

#[test]
fn object_and_resource_ids_are_refused_before_sending_where_an_sdk_returns_the_wrong_identity() {
    for selector in [
        IdentitySelector::ObjectId(CLIENT.into()),
        IdentitySelector::ResourceId("/subscriptions/x/providers/y/id".into()),
    ] {
        let mut s = Scenario::azure_ml().selector(selector.clone());
        let run = s.run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.mi_source(), Some(Source::AzureMl));
        assert_eq!(
            e.message(),
            format!(
                "Azure ML cannot use {}: this source selects user-assigned identities by client id only; pass the identity's client id",
                selector.kind().describe()
            )
        );
        assert_eq!(s.identity().cached_tokens(), 0);
    }
}

#[test]
fn integer_expires_on_is_parsed() {
    let expires_on = T0_SECS + 3600;
    let run = Scenario::azure_ml()
        .reply(json(
            200,
            json!({"access_token": TOKEN, "expires_on": expires_on, "resource": "https://management.azure.com", "token_type": "Bearer"}),
        ))
        .run();
    let token = run.token();
    assert_eq!(token.expires_on(), expires_on);
    assert_eq!(token.refresh_on(), expires_on - 300);
    assert_eq!(token.secret(), TOKEN);
    assert_eq!(run.finished_at, T0);
}

#[test]
fn default_identity_client_id_is_read_from_the_current_snapshot() {
    let mut s = Scenario::azure_ml().reply(token_expiring_at(T0_SECS + 3600));
    s.run().token();
    s.set_env("DEFAULT_IDENTITY_CLIENT_ID", CLIENT);
    s.set_scope("https://vault.azure.net/.default");
    s.push(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert_request(
        run.request(),
        &ml_request(&[
            ("api-version", "2017-09-01"),
            ("resource", "https://vault.azure.net"),
            ("clientid", CLIENT),
        ]),
    );
}
