//! App Service 2019-08-01: classification and secrets. Exact requests per selector: sources.rs.

use crate::util::*;
use azmi_host_test::emulator::Fault;
use azmi_host_test::{IdentitySelector, Source};

const SECRET: &str = "emulator-identity-header";
const SYSTEM: IdentitySelector = IdentitySelector::SystemAssigned;

#[tokio::test]
async fn app_service_wrong_secret_is_authentication_failed_without_leaking_it() {
    let wrong = "stale-identity-header-value";
    let mut rig = rig(&app_service_env(wrong)).await;
    let error = rig.error(VAULT_SCOPE, &SYSTEM).await;
    let info = failed(&error);
    assert_eq!(info.status, Some(401));
    assert_eq!(info.source, Some(Source::AppService));
    assert!(info.message.contains("IDENTITY_HEADER"), "{}", info.message);
    assert!(!format!("{error:?}").contains(wrong));
    assert!(!format!("{error:?}").contains(SECRET));
}

#[tokio::test]
async fn app_service_unknown_identity_keeps_correlation_id() {
    let mut rig = rig(&app_service_env(SECRET)).await;
    let unknown = IdentitySelector::ClientId("99999999-9999-9999-9999-999999999999".into());
    let error = rig.error(VAULT_SCOPE, &unknown).await;
    let info = failed(&error);
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

#[tokio::test(start_paused = true)]
async fn app_service_500_is_authentication_failed_after_retries() {
    let mut rig = rig(&app_service_env(SECRET)).await;
    rig.emulator.push_fault(Fault::Status {
        status: 500,
        times: 4,
        retry_after: None,
        body: None,
    });
    let error = rig.error(VAULT_SCOPE, &SYSTEM).await;
    let info = failed(&error);
    assert_eq!(info.status, Some(500));
    assert!(info.correlation_id.is_some(), "{info:?}");
}

#[tokio::test]
async fn app_service_wins_over_pod_identity() {
    let mut env = app_service_env(SECRET);
    env.push(("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU));
    let mut rig = rig(&env).await;
    let token = rig.token(VAULT_SCOPE, &SYSTEM).await;
    assert_eq!(token.source, Source::AppService);
    assert_eq!(rig.emulator.requests()[0].path, "/msi/token");
}
