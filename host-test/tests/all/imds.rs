//! IMDS (reached through AZURE_POD_IDENTITY_AUTHORITY_HOST): cache, classification, and the
//! test host's refusal of the real IMDS address. Exact requests per selector: sources.rs.

use crate::util::*;
use azmi_host_test::emulator::{Config, Fault};
use azmi_host_test::{IdentitySelector, Source, TokenError};

const SYSTEM: IdentitySelector = IdentitySelector::SystemAssigned;

#[tokio::test]
async fn imds_repeat_calls_hit_the_cache() {
    let mut rig = rig(&imds_env()).await;
    let first = rig.token(VAULT_SCOPE, &SYSTEM).await;
    for _ in 0..5 {
        assert_eq!(rig.token(VAULT_SCOPE, &SYSTEM).await.token, first.token);
    }
    assert_eq!(rig.emulator.token_requests(), 1);
    // A different resource is a different key.
    rig.token("https://storage.azure.com/.default", &SYSTEM)
        .await;
    assert_eq!(rig.emulator.token_requests(), 2);
}

#[tokio::test]
async fn imds_unknown_user_assigned_identity_is_authentication_failed() {
    let mut rig = rig(&imds_env()).await;
    let id = "99999999-9999-9999-9999-999999999999";
    let error = rig
        .error(VAULT_SCOPE, &IdentitySelector::ClientId(id.into()))
        .await;
    let info = failed(&error);
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
    let error = rig.error(VAULT_SCOPE, &SYSTEM).await;
    let info = unavailable(&error);
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
    let error = rig.error("https://unknown.example/.default", &SYSTEM).await;
    let info = failed(&error);
    assert_eq!(info.code.as_deref(), Some("invalid_resource"));
    assert!(
        info.message.contains("https://unknown.example"),
        "{}",
        info.message
    );
    assert!(!info.message.contains("not assigned"), "{}", info.message);
}

#[tokio::test(start_paused = true)]
async fn imds_500_keeps_status_and_is_not_cached() {
    let mut rig = rig(&imds_env()).await;
    rig.emulator.push_fault(Fault::Status {
        status: 500,
        times: 7,
        retry_after: None,
        body: Some(r#"{"error":"server_error","error_description":"boom"}"#.into()),
    });
    let error = rig.error(VAULT_SCOPE, &SYSTEM).await;
    let info = failed(&error);
    assert_eq!(info.status, Some(500));
    assert_eq!(info.code.as_deref(), Some("server_error"));
    assert!(info.message.contains("boom"), "{}", info.message);
    assert_eq!(
        rig.emulator.token_requests(),
        7,
        "1 attempt + 6 IMDS retries"
    );
    // The failure is not remembered (no Retry-After): the next call asks again and succeeds.
    rig.token(VAULT_SCOPE, &SYSTEM).await;
    assert_eq!(rig.emulator.token_requests(), 8);
}

#[tokio::test]
async fn invalid_scope_sends_nothing() {
    let mut rig = rig(&imds_env()).await;
    for scope in ["", "https://a/.default https://b/.default", "/.default"] {
        let error = rig.error(scope, &SYSTEM).await;
        assert!(
            matches!(error, TokenError::InvalidArgument(_)),
            "{scope:?}: {error:?}"
        );
    }
    let error = rig
        .error(VAULT_SCOPE, &IdentitySelector::ClientId(String::new()))
        .await;
    assert!(matches!(error, TokenError::InvalidArgument(_)), "{error:?}");
    assert!(rig.emulator.requests().is_empty());
}

#[tokio::test]
async fn default_imds_address_is_refused_by_the_test_host() {
    // No variables at all: the component targets 169.254.169.254, which this host refuses.
    let mut rig = rig(&[]).await;
    let error = rig.error(VAULT_SCOPE, &SYSTEM).await;
    unavailable(&error);
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
    let token = rig.token(VAULT_SCOPE, &SYSTEM).await;
    assert_eq!(token.source, Source::CloudShell);
    let requests = rig.emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/oauth2/token");
}
