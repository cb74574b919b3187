//! IMDS (reached through AZURE_POD_IDENTITY_AUTHORITY_HOST): exact requests and outcomes.

use crate::util::*;
use azmi_host_test::emulator::{Config, Fault};
use azmi_host_test::{IdentitySelector, Source, TokenError};

fn query<'a>(selector: Option<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    let mut q = vec![("api-version", "2018-02-01"), ("resource", VAULT)];
    q.extend(selector);
    q
}

async fn token_for(selector: IdentitySelector, param: Option<(&str, &str)>, expect_client: &str) {
    let mut rig = rig(&imds_env()).await;
    let token = rig
        .guest
        .get_token(VAULT_SCOPE, &selector)
        .await
        .unwrap()
        .expect("token");
    assert_eq!(token.source, Source::Imds);
    assert_eq!(token.token_type, "Bearer");
    let issued = rig
        .emulator
        .issued(&token.token)
        .expect("minted by the emulator");
    assert_eq!(issued.client_id, expect_client);
    assert_eq!(issued.resource, VAULT);
    assert_eq!(token.expires_on, issued.expires_on);
    let requests = rig.emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_request(
        &requests[0],
        "GET",
        "/metadata/identity/oauth2/token",
        &query(param),
        &[("metadata", "true")],
    );
}

#[tokio::test]
async fn imds_system_assigned_exact_request() {
    let system = Config::default().system.unwrap();
    token_for(IdentitySelector::SystemAssigned, None, &system.client_id).await;
}

#[tokio::test]
async fn imds_client_id_sends_client_id() {
    let ua = Config::default().user_assigned[0].clone();
    token_for(
        IdentitySelector::ClientId(ua.client_id.clone()),
        Some(("client_id", &ua.client_id)),
        &ua.client_id,
    )
    .await;
}

#[tokio::test]
async fn imds_object_id_sends_object_id() {
    let ua = Config::default().user_assigned[1].clone();
    token_for(
        IdentitySelector::ObjectId(ua.object_id.clone()),
        Some(("object_id", &ua.object_id)),
        &ua.client_id,
    )
    .await;
}

#[tokio::test]
async fn imds_resource_id_sends_msi_res_id() {
    let ua = Config::default().user_assigned[0].clone();
    token_for(
        IdentitySelector::ResourceId(ua.resource_id.clone()),
        Some(("msi_res_id", &ua.resource_id)),
        &ua.client_id,
    )
    .await;
}

#[tokio::test]
async fn imds_repeat_calls_hit_the_cache() {
    let mut rig = rig(&imds_env()).await;
    let first = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap();
    for _ in 0..5 {
        let again = rig
            .guest
            .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.token, first.token);
    }
    assert_eq!(rig.emulator.token_requests(), 1);
    // A different resource is a different key.
    rig.guest
        .get_token(
            "https://storage.azure.com/.default",
            &IdentitySelector::SystemAssigned,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rig.emulator.token_requests(), 2);
}

#[tokio::test]
async fn imds_unknown_user_assigned_identity_is_authentication_failed() {
    let mut rig = rig(&imds_env()).await;
    let id = "99999999-9999-9999-9999-999999999999";
    let error = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::ClientId(id.into()))
        .await
        .unwrap()
        .unwrap_err();
    let TokenError::AuthenticationFailed(info) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(info.status, Some(400));
    assert_eq!(info.code.as_deref(), Some("invalid_request"));
    assert_eq!(info.source, Some(Source::Imds));
    assert!(info.message.contains(id), "{}", info.message);
    assert!(info.message.contains("not assigned"), "{}", info.message);
}

#[tokio::test]
async fn imds_without_system_identity_is_unavailable() {
    let config = Config {
        system: None,
        ..Config::default()
    };
    let mut rig = rig_with(config, &imds_env()).await;
    let error = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap_err();
    let TokenError::CredentialUnavailable(info) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(info.status, Some(400));
    assert!(
        info.message.contains("no system-assigned identity"),
        "{}",
        info.message
    );
}

#[tokio::test]
async fn imds_unknown_resource_is_not_reported_as_missing_identity() {
    let mut rig = rig(&imds_env()).await;
    let error = rig
        .guest
        .get_token(
            "https://unknown.example/.default",
            &IdentitySelector::SystemAssigned,
        )
        .await
        .unwrap()
        .unwrap_err();
    let TokenError::AuthenticationFailed(info) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(info.code.as_deref(), Some("invalid_resource"));
    assert!(
        info.message.contains("https://unknown.example"),
        "{}",
        info.message
    );
    assert!(!info.message.contains("not assigned"), "{}", info.message);
}

#[tokio::test]
async fn imds_500_keeps_status_and_is_not_cached() {
    let mut rig = rig(&imds_env()).await;
    rig.emulator.push_fault(Fault::Status {
        status: 500,
        times: 1,
        retry_after: None,
        body: Some(r#"{"error":"server_error","error_description":"boom"}"#.into()),
    });
    let error = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap_err();
    let TokenError::AuthenticationFailed(info) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(info.status, Some(500));
    assert_eq!(info.code.as_deref(), Some("server_error"));
    assert!(info.message.contains("boom"), "{}", info.message);
    // The failure is not remembered: the next call asks again and succeeds.
    rig.guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .expect("token after the fault");
    assert_eq!(rig.emulator.token_requests(), 2);
}

#[tokio::test]
async fn invalid_scope_sends_nothing() {
    let mut rig = rig(&imds_env()).await;
    for scope in ["", "https://a/.default https://b/.default", "/.default"] {
        let error = rig
            .guest
            .get_token(scope, &IdentitySelector::SystemAssigned)
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(error, TokenError::InvalidArgument(_)),
            "{scope:?}: {error:?}"
        );
    }
    let error = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::ClientId(String::new()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, TokenError::InvalidArgument(_)), "{error:?}");
    assert!(rig.emulator.requests().is_empty());
}

#[tokio::test]
async fn default_imds_address_is_refused_by_the_test_host() {
    // No variables at all: the component targets 169.254.169.254, which this host refuses.
    let mut rig = rig(&[]).await;
    let error = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(error, TokenError::CredentialUnavailable(_)),
        "{error:?}"
    );
    let refused = rig.guest.refused();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]
            .url
            .starts_with("http://169.254.169.254/metadata/identity/oauth2/token?"),
        "{refused:?}"
    );
    assert!(rig.emulator.requests().is_empty());
}

#[tokio::test]
async fn platform_source_wins_over_pod_identity() {
    let mut rig = rig(&[
        ("MSI_ENDPOINT", "http://127.0.0.1:4010/oauth2/token"),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU),
    ])
    .await;
    let token = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.source, Source::CloudShell);
    let requests = rig.emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/oauth2/token");
}
