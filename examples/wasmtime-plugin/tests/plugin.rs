//! The plugin with the real azmi.wasm in wasmtime against the Rust Azure managed-identity
//! emulator on a loopback port (real TCP through `default_send_request`). Nothing here leaves
//! 127.0.0.0/8.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator, Fault};
use azmi_wasmtime_plugin::{
    Allowlist, Config, Credential, ENTRA, IMDS, IdentitySelector, Plugin, Source, Timeouts,
    TokenError,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Built by azmi-host-test's build script (a dev-dependency), the same file `just component`
/// produces.
const COMPONENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/component/wasm32-wasip2/component/azmi.wasm"
);
const SCOPE: &str = "https://vault.azure.net/.default";

/// An emulator on 127.0.0.1 and its base URL; the server stops with the test's runtime.
async fn emulator() -> (Emulator, String) {
    let emulator = Emulator::new(EmulatorConfig::default());
    let (address, _server) = emulator.serve(0).await.expect("binding the emulator");
    (emulator, format!("http://{address}"))
}

/// IMDS reached through the emulator, with the allowlist the plugin derives from that.
fn imds_at(url: &str) -> Config {
    let env = vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        url.to_string(),
    )];
    Config {
        allow: Allowlist::for_managed_identity(&env),
        env,
        timeouts: Timeouts::default(),
        credential: Credential::ManagedIdentity,
    }
}

async fn load(config: Config) -> Plugin {
    Plugin::load(Path::new(COMPONENT), config)
        .await
        .expect("loading azmi.wasm")
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_100_calls_make_one_upstream_request() {
    let (emulator, url) = emulator().await;
    let mut plugin = load(imds_at(&url)).await;
    let mut tokens = Vec::new();
    for _ in 0..100 {
        let token = plugin
            .get_token(SCOPE, &IdentitySelector::SystemAssigned)
            .await
            .expect("a token");
        tokens.push(token.token);
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one cached token");
    assert_eq!(emulator.token_requests(), 1);
    assert_eq!(plugin.upstream_requests(), 1);
    let issued = emulator.issued(&tokens[0]).expect("minted by the emulator");
    assert_eq!(issued.resource, "https://vault.azure.net");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_empty_client_id_is_a_typed_invalid_argument() {
    let (emulator, url) = emulator().await;
    let mut plugin = load(imds_at(&url)).await;
    let error = plugin
        .get_token(SCOPE, &IdentitySelector::ClientId(String::new()))
        .await
        .expect_err("an empty client id is refused");
    assert!(matches!(error, TokenError::InvalidArgument(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("invalid argument: "),
        "{error}"
    );
    assert!(emulator.requests().is_empty(), "nothing was sent");
    // The instance is still usable after a refused call.
    let token = plugin
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect("a token");
    assert_eq!(token.source, Source::Imds);
}

/// The first answer's body comes one byte every 200 ms: no between-bytes timer ever fires, so
/// only the plugin's whole-response bound (1 s here) ends it; the guest retries and the second
/// answer is whole. Before the bound the call sat reading the trickle (minutes).
#[tokio::test(flavor = "multi_thread")]
async fn plugin_bounds_a_trickled_response_as_a_whole() {
    let (emulator, url) = emulator().await;
    emulator.push_fault(Fault::Trickle {
        every: Duration::from_millis(200),
        times: 1,
    });
    let mut config = imds_at(&url);
    config.timeouts.whole_response = Duration::from_secs(1);
    let mut plugin = load(config).await;
    let start = Instant::now();
    let token = plugin
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect("a token from the retry");
    let took = start.elapsed();
    assert!(emulator.issued(&token.token).is_some());
    assert_eq!(
        emulator.token_requests(),
        2,
        "the trickled answer, then a whole one"
    );
    // 1 s bound + IMDS's first backoff (≤ 2.4 s with jitter) + slack; the trickle is minutes.
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_refuses_endpoints_outside_its_allowlist() {
    let (emulator, url) = emulator().await;
    let mut config = imds_at(&url);
    // The guest is told about the emulator, but the host only lets IMDS through.
    config.allow = Allowlist::default();
    config.allow.allow(IMDS);
    let mut plugin = load(config).await;
    let error = plugin
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect_err("the endpoint is not allowed");
    assert!(
        matches!(error, TokenError::CredentialUnavailable(_)),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("credential unavailable: "),
        "{error}"
    );
    assert_eq!(error.info().and_then(|i| i.source), Some(Source::Imds));
    assert!(emulator.requests().is_empty(), "refused in the host");
    assert_eq!(plugin.upstream_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_cached_calls_per_second() {
    let (emulator, url) = emulator().await;
    let mut plugin = load(imds_at(&url)).await;
    plugin
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect("first token");
    const CALLS: u32 = 5_000;
    let start = Instant::now();
    for _ in 0..CALLS {
        plugin
            .get_token(SCOPE, &IdentitySelector::SystemAssigned)
            .await
            .expect("cached token");
    }
    let elapsed = start.elapsed();
    assert_eq!(emulator.token_requests(), 1);
    eprintln!(
        "wasmtime plugin: {CALLS} cached get-token calls in {:.1} ms = {:.0} calls/s ({:.1} µs/call, {} build)",
        elapsed.as_secs_f64() * 1e3,
        f64::from(CALLS) / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / f64::from(CALLS),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_binary_runs_as_the_readme_says() {
    let (emulator, url) = emulator().await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_azmi-wasmtime-plugin"))
            .args(["--component", COMPONENT, "--calls", "100"])
            .env_clear()
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)
            .output()
            .expect("running azmi-wasmtime-plugin")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.starts_with("token emu."), "{stdout}");
    assert!(
        stdout.contains("100 get-token calls on one instance")
            && stdout.contains(": 1 request(s) left the host"),
        "{stdout}"
    );
    assert_eq!(emulator.token_requests(), 1);
}

/// A user-assigned identity the emulator knows (`azmi-ua-1`).
const USER_ASSIGNED: &str = "22222222-2222-2222-2222-222222222222";

/// `Credential::Default` calls azmi's `default-credential`: with no service principal and no
/// workload identity configured, the chain reaches managed identity, which takes
/// `AZURE_CLIENT_ID` as its user-assigned identity (the `credential` export does not).
#[tokio::test(flavor = "multi_thread")]
async fn plugin_default_chain_reaches_managed_identity_with_azure_client_id() {
    let (emulator, url) = emulator().await;
    let mut config = imds_at(&url);
    config
        .env
        .push(("AZURE_CLIENT_ID".to_string(), USER_ASSIGNED.to_string()));
    let mut chain = load(config.clone().with_credential(Credential::Default)).await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        let token = chain
            .get_token(SCOPE, &IdentitySelector::SystemAssigned)
            .await
            .expect("a token from the chain");
        assert_eq!(token.source, Source::Imds);
        tokens.push(token.token);
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one cached token");
    assert_eq!(emulator.token_requests(), 1);
    let issued = emulator.issued(&tokens[0]).expect("minted by the emulator");
    assert_eq!(
        issued.client_id, USER_ASSIGNED,
        "AZURE_CLIENT_ID in the chain"
    );

    // The same environment through `credential`: the system-assigned identity.
    let mut alone = load(config).await;
    let token = alone
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect("a token");
    let issued = emulator
        .issued(&token.token)
        .expect("minted by the emulator");
    assert_ne!(issued.client_id, USER_ASSIGNED);
}

/// The chain's own refusals reach the caller typed: `AZURE_TOKEN_CREDENTIALS=dev` names the
/// developer tools that cannot run in a component; nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_default_chain_refuses_developer_tools_with_the_reason() {
    let (emulator, url) = emulator().await;
    let mut config = imds_at(&url).with_credential(Credential::Default);
    config
        .env
        .push(("AZURE_TOKEN_CREDENTIALS".to_string(), "dev".to_string()));
    let mut plugin = load(config).await;
    let error = plugin
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect_err("dev cannot run here");
    assert!(
        error.to_string().contains("AZURE_TOKEN_CREDENTIALS=dev"),
        "{error}"
    );
    assert!(emulator.requests().is_empty());
}

#[test]
fn default_chain_lets_the_guest_reach_entra_and_only_then() {
    let env = Vec::new();
    let plain = Config {
        allow: Allowlist::for_managed_identity(&env),
        env,
        timeouts: Timeouts::default(),
        credential: Credential::ManagedIdentity,
    };
    let entra: http::Uri = format!("{ENTRA}/tenant/oauth2/v2.0/token").parse().unwrap();
    assert!(!plain.allow.permits(&entra));
    let chain = plain.with_credential(Credential::Default);
    assert!(chain.allow.permits(&entra));
    assert_eq!(chain.credential, Credential::Default);
    // A sovereign cloud's authority replaces the public one.
    let env = vec![(
        "AZURE_AUTHORITY_HOST".to_string(),
        "https://login.microsoftonline.us".to_string(),
    )];
    let gov = Config {
        allow: Allowlist::for_managed_identity(&env),
        env,
        timeouts: Timeouts::default(),
        credential: Credential::ManagedIdentity,
    }
    .with_credential(Credential::Default);
    assert!(!gov.allow.permits(&entra));
    assert!(
        gov.allow
            .permits(&"https://login.microsoftonline.us/t".parse().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_binary_credential_default_runs_the_chain() {
    let (emulator, url) = emulator().await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_azmi-wasmtime-plugin"))
            .args([
                "--component",
                COMPONENT,
                "--calls",
                "3",
                "--credential",
                "default",
            ])
            .env_clear()
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)
            .env("AZURE_CLIENT_ID", USER_ASSIGNED)
            .output()
            .expect("running azmi-wasmtime-plugin")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("source imds"), "{stdout}");
    let token = emulator.requests();
    assert_eq!(emulator.token_requests(), 1, "{token:?}");
    assert!(
        token[0]
            .query
            .iter()
            .any(|(k, v)| k == "client_id" && v == USER_ASSIGNED),
        "{:?}",
        token[0].query
    );
}
