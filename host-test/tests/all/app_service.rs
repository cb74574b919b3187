//! App Service 2019-08-01: exact requests and outcomes.

use crate::util::*;
use azmi_host_test::emulator::{Config, Fault};
use azmi_host_test::{IdentitySelector, Source, TokenError};

const SECRET: &str = "emulator-identity-header";

async fn token_for(selector: IdentitySelector, param: Option<(&str, &str)>, expect_client: &str) {
    let mut rig = rig(&app_service_env(SECRET)).await;
    let token = rig
        .guest
        .get_token(VAULT_SCOPE, &selector)
        .await
        .unwrap()
        .expect("token");
    assert_eq!(token.source, Source::AppService);
    let issued = rig
        .emulator
        .issued(&token.token)
        .expect("minted by the emulator");
    assert_eq!(issued.client_id, expect_client);
    assert_eq!(token.expires_on, issued.expires_on);
    let mut query = vec![("api-version", "2019-08-01"), ("resource", VAULT)];
    query.extend(param);
    let requests = rig.emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_request(
        &requests[0],
        "GET",
        "/msi/token",
        &query,
        &[("x-identity-header", SECRET)],
    );
}

#[tokio::test]
async fn app_service_system_assigned_exact_request() {
    let system = Config::default().system.unwrap();
    token_for(IdentitySelector::SystemAssigned, None, &system.client_id).await;
}

#[tokio::test]
async fn app_service_client_id() {
    let ua = Config::default().user_assigned[0].clone();
    token_for(
        IdentitySelector::ClientId(ua.client_id.clone()),
        Some(("client_id", &ua.client_id)),
        &ua.client_id,
    )
    .await;
}

#[tokio::test]
async fn app_service_object_id() {
    let ua = Config::default().user_assigned[1].clone();
    token_for(
        IdentitySelector::ObjectId(ua.object_id.clone()),
        Some(("object_id", &ua.object_id)),
        &ua.client_id,
    )
    .await;
}

#[tokio::test]
async fn app_service_resource_id_sends_mi_res_id() {
    let ua = Config::default().user_assigned[1].clone();
    token_for(
        IdentitySelector::ResourceId(ua.resource_id.clone()),
        Some(("mi_res_id", &ua.resource_id)),
        &ua.client_id,
    )
    .await;
}

#[tokio::test]
async fn app_service_wrong_secret_is_authentication_failed_without_leaking_it() {
    let wrong = "stale-identity-header-value";
    let mut rig = rig(&app_service_env(wrong)).await;
    let error = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap_err();
    let TokenError::AuthenticationFailed(info) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(info.status, Some(401));
    assert_eq!(info.source, Some(Source::AppService));
    assert!(info.message.contains("IDENTITY_HEADER"), "{}", info.message);
    assert!(!format!("{error:?}").contains(wrong));
    assert!(!format!("{error:?}").contains(SECRET));
}

#[tokio::test]
async fn app_service_unknown_identity_keeps_correlation_id() {
    let mut rig = rig(&app_service_env(SECRET)).await;
    let error = rig
        .guest
        .get_token(
            VAULT_SCOPE,
            &IdentitySelector::ClientId("99999999-9999-9999-9999-999999999999".into()),
        )
        .await
        .unwrap()
        .unwrap_err();
    let TokenError::AuthenticationFailed(info) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(info.status, Some(400));
    assert!(
        info.correlation_id
            .as_deref()
            .is_some_and(|c| !c.is_empty()),
        "{info:?}"
    );
    assert!(
        info.message
            .contains("Unable to load requested managed identity"),
        "{}",
        info.message
    );
}

#[tokio::test]
async fn app_service_500_is_authentication_failed() {
    let mut rig = rig(&app_service_env(SECRET)).await;
    rig.emulator.push_fault(Fault::Status {
        status: 500,
        times: 1,
        retry_after: None,
        body: None,
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
    assert!(info.correlation_id.is_some(), "{info:?}");
}

#[tokio::test]
async fn app_service_wins_over_pod_identity() {
    let mut env = app_service_env(SECRET);
    env.push(("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU));
    let mut rig = rig(&env).await;
    let token = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.source, Source::AppService);
    assert_eq!(rig.emulator.requests()[0].path, "/msi/token");
}
