//! The plugin with the real azmi.wasm in wasmtime against the Rust Azure managed-identity
//! emulator on a loopback port (real TCP through `default_send_request`). Nothing here leaves
//! 127.0.0.0/8.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator, Fault};
use azmi_wasmtime_plugin::{
    Allowlist, Config, IMDS, IdentitySelector, Plugin, Source, Timeouts, TokenError,
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
