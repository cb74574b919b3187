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

/// Variables whose values `azmi doctor` must never print.
const SECRET_VARIABLES: [&str; 4] = [
    "IDENTITY_HEADER",
    "MSI_SECRET",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
];

/// `--credential default` for a service principal (the chain's environment link), else the
/// managed-identity credential.
fn doctor_args(source: &str, fetch: bool) -> Vec<&'static str> {
    let mut args = vec!["doctor", "--json"];
    if fetch {
        args.push("--fetch");
    }
    if source.starts_with("client_") {
        args.extend(["--credential", "default"]);
    }
    args
}

/// Every source the emulator serves, healthy: doctor names it, reaches it, fetches a token
/// from it (reporting its lifetime, never the token) and prints no secret.
#[tokio::test(flavor = "multi_thread")]
async fn every_source_against_the_emulator_is_ok_and_fetches_without_printing_secrets() {
    let (_emulator, banner) = crate::cli::emulator_process();
    for source in crate::cli::EVERY_SOURCE {
        let owned = crate::cli::source_env(&banner, source);
        let env: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let (output, _) = azmi(&doctor_args(source, true), &env).await;
        let r = report(&output);
        assert_eq!(output.status.code(), Some(0), "{source}: {r}");
        assert_eq!(r["source"], source, "{r}");
        assert_eq!(r["reachable"]["result"], "connected", "{source}: {r}");
        assert!(
            r["verdict"].as_str().unwrap().starts_with("ok: "),
            "{source}: {r}"
        );
        assert_eq!(r["fetch"]["ok"], true, "{source}: {r}");
        assert_eq!(r["fetch"]["source"], source, "{source}: {r}");
        let text = String::from_utf8_lossy(&output.stdout);
        for (name, value) in &owned {
            if SECRET_VARIABLES.contains(&name.as_str()) {
                assert!(
                    !text.contains(value.as_str()),
                    "{source}: {name} printed: {text}"
                );
            }
        }
        assert!(!text.contains("emu."), "{source}: no token: {text}");
    }
}

/// Every source with its endpoint moved to a closed loopback port: doctor says unreachable,
/// names the address, and exits 2.
#[tokio::test(flavor = "multi_thread")]
async fn every_source_with_nothing_listening_is_unreachable_and_exits_2() {
    let (_emulator, banner) = crate::cli::emulator_process();
    let http = banner[0]
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_string();
    let https = banner[0]
        .rsplit("https://")
        .next()
        .unwrap()
        .trim()
        .to_string();
    let closed = closed_port();
    let nowhere = format!("127.0.0.1:{}", closed.port);
    for source in crate::cli::EVERY_SOURCE {
        let owned: Vec<(String, String)> = crate::cli::source_env(&banner, source)
            .into_iter()
            .map(|(k, v)| (k, v.replace(&http, &nowhere).replace(&https, &nowhere)))
            .collect();
        let env: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let (output, _) = azmi(&doctor_args(source, false), &env).await;
        let r = report(&output);
        assert_eq!(output.status.code(), Some(2), "{source}: {r}");
        assert_eq!(r["source"], source, "{r}");
        assert_eq!(r["reachable"]["address"], nowhere, "{source}: {r}");
        assert!(
            r["verdict"]
                .as_str()
                .unwrap()
                .starts_with(&format!("unreachable: nothing answers at {nowhere}")),
            "{source}: {r}"
        );
    }
}

/// The text report labels each line once: the endpoint's URL, then whether it is reachable.
#[tokio::test(flavor = "multi_thread")]
async fn the_text_report_names_the_endpoint_and_its_reachability_on_distinct_lines() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let env = [
        ("IDENTITY_ENDPOINT", format!("{url}/msi/token")),
        ("IDENTITY_HEADER", emulator.config().identity_header),
    ];
    let (output, _) = azmi(&["doctor"], &env).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let label = |l: &str| l.split_whitespace().next().unwrap_or_default().to_string();
    let labels: Vec<String> = text.lines().map(label).collect();
    assert_eq!(
        labels.iter().filter(|l| *l == "endpoint").count(),
        1,
        "{text}"
    );
    let reachable = text
        .lines()
        .find(|l| label(l) == "reachable")
        .expect("a reachable line");
    assert!(
        reachable.ends_with(" ms") && reachable.contains("connected"),
        "{reachable}"
    );
}
