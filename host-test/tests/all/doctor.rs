//! `azmi doctor` (issue 13, part 4) against the emulator: healthy, misconfigured and
//! unreachable setups, text and `--json`, `--fetch`, and no secret or token in the output.

use crate::cli::{azmi, emulator_on_loopback};
use crate::util::closed_port;
use serde_json::Value;

fn report(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_app_service_is_ok_with_its_secret_masked_and_fetch_reports_no_token() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let secret = emulator.config().identity_header;
    let env = [
        ("IDENTITY_ENDPOINT", format!("{url}/msi/token")),
        ("IDENTITY_HEADER", secret.clone()),
    ];
    let (output, _) = azmi(&["doctor", "--json", "--fetch"], &env).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let r = report(&output);
    assert_eq!(r["source"], "app_service");
    assert_eq!(r["selected_by"], "IDENTITY_ENDPOINT and IDENTITY_HEADER");
    assert_eq!(r["reachable"]["result"], "connected");
    assert!(
        r["verdict"]
            .as_str()
            .unwrap()
            .starts_with("ok: App Service at 127.0.0.1:")
    );
    assert_eq!(
        r["selectors"],
        serde_json::json!(["system-assigned", "client id", "object id", "resource id"])
    );
    let header = r["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "IDENTITY_HEADER")
        .unwrap();
    assert_eq!(
        header["value"],
        format!("<set, {} characters>", secret.len())
    );
    assert_eq!(r["fetch"]["ok"], true);
    assert_eq!(r["fetch"]["source"], "app_service");
    assert!(r["fetch"]["lifetime_s"].as_u64().unwrap() > 80_000);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(&secret), "{text}");
    assert!(
        !text.contains("access_token") && !text.contains("eyJ"),
        "no token: {text}"
    );
    assert_eq!(emulator.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misconfigured_service_fabric_says_what_and_exits_3() {
    let env = [
        (
            "IDENTITY_ENDPOINT",
            "https://127.0.0.1:9/metadata/identity/oauth2/token".to_string(),
        ),
        ("IDENTITY_HEADER", "s3cr3t-value".to_string()),
        ("IDENTITY_SERVER_THUMBPRINT", "not-a-thumbprint".to_string()),
    ];
    let (output, _) = azmi(&["doctor"], &env).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("verdict      misconfigured: Service Fabric: IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint"), "{text}");
    assert!(!text.contains("s3cr3t-value"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_is_unreachable_and_exits_2() {
    let closed = closed_port();
    let env = [(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        format!("http://127.0.0.1:{}", closed.port),
    )];
    let (output, _) = azmi(&["doctor", "--json"], &env).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let r = report(&output);
    assert_eq!(r["source"], "imds");
    assert!(
        r["verdict"]
            .as_str()
            .unwrap()
            .starts_with("unreachable: nothing answers at 127.0.0.1:"),
        "{r}"
    );
    assert!(r["reachable"]["ms"].as_f64().unwrap() < 1_000.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_chain_with_nothing_configured_checks_managed_identity() {
    // Nothing configured: managed identity (IMDS) is the chain's last link. IMDS's address is
    // a closed loopback port here (the test never connects beyond 127.0.0.0/8), so doctor
    // says unreachable, naming the credential.
    let closed = closed_port();
    let env = [("AZMI_IMDS_ADDRESS", format!("127.0.0.1:{}", closed.port))];
    let (output, _) = azmi(&["doctor", "--credential", "default", "--json"], &env).await;
    let r = report(&output);
    assert_eq!(r["source"], "imds");
    assert_eq!(
        r["reachable"]["address"],
        format!("127.0.0.1:{}", closed.port)
    );
    assert_eq!(r["credential"], "ManagedIdentityCredential", "{r}");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_secret_is_checked_as_the_chain_would_use_it() {
    let env = [
        (
            "AZURE_TENANT_ID",
            "72f988bf-86f1-41af-91ab-2d7cd011db47".to_string(),
        ),
        (
            "AZURE_CLIENT_ID",
            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9".to_string(),
        ),
        ("AZURE_CLIENT_SECRET", "a-client-secret-value".to_string()),
        ("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9".to_string()),
    ];
    let (output, _) = azmi(&["doctor", "--credential", "default", "--json"], &env).await;
    let r = report(&output);
    assert_eq!(r["credential"], "EnvironmentCredential");
    assert_eq!(r["source"], "client_secret");
    assert_eq!(
        r["selectors"],
        serde_json::json!(["system-assigned"]),
        "the application itself"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("a-client-secret-value"));
}
