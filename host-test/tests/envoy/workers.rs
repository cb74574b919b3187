//! Several Envoy worker threads, one filter VM each: with the shared cache (the default) one
//! token request serves every worker, at a cold start and at a refresh; with
//! `"shared_cache": false` each worker fetches its own (the figure printed for comparison).

use super::client::{Connection, Reply};
use super::numbers::p50;
use super::rig::require_envoy;
use super::rig::{Envoy, config, filter_wasm};
use super::{echoed_authorization, envoy_version, ms, with_filter};
use azmi_host_test::emulator::{Config, Emulator};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;

const WORKERS: usize = 4;
const CONNECTIONS: usize = 40;
const PER_CONNECTION: usize = 10;
/// Emulator tokens live 20 s: the filter refreshes them 10 s after issue (half-life, at
/// whole seconds) and they are usable until 15 s.
const LIFETIME_SECS: u64 = 20;

/// `CONNECTIONS` kept-alive connections at once, `PER_CONNECTION` requests each: Envoy
/// spreads the connections over its workers. The replies and their latencies.
async fn spread(addr: SocketAddr, prefix: &str) -> Vec<(Reply, Duration)> {
    let mut tasks = JoinSet::new();
    for c in 0..CONNECTIONS {
        let path = format!("/echo/{prefix}-{c}");
        tasks.spawn(async move {
            let mut connection = Connection::open(addr).await.unwrap();
            let mut replies = Vec::new();
            for _ in 0..PER_CONNECTION {
                replies.push(connection.send("GET", &path, &[], "").await.unwrap());
            }
            replies
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

/// Token requests at a cold start and at the first refresh, and the cold p50, with
/// `configuration`.
async fn measure(configuration: &str) -> (usize, usize, Duration) {
    let emulator = Emulator::new(Config {
        token_lifetime_secs: LIFETIME_SECS,
        ..Config::default()
    });
    let (addr, _task) = emulator.serve(0).await.unwrap();
    let url = format!("http://{addr}");
    let yaml = config(
        &[with_filter(
            "with_filter",
            configuration,
            &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &url)],
        )],
        &[("upstream", addr.port()), ("imds", addr.port())],
        &filter_wasm(),
    );
    let envoy = Envoy::start(&yaml, WORKERS).await;
    let listener = envoy.listener("with_filter");

    let cold = spread(listener, "cold").await;
    assert_eq!(cold.len(), CONNECTIONS * PER_CONNECTION);
    for (reply, _) in &cold {
        let authorization = echoed_authorization(reply).expect("a bearer token upstream");
        assert!(authorization.starts_with("Bearer "));
    }
    let cold_requests = emulator.token_requests();
    let cold_p50 = p50(cold.into_iter().map(|(_, d)| d).collect());

    // Past the refresh time, before the token stops being usable: every reply still carries
    // a token, and the refresh runs in the background.
    tokio::time::sleep(Duration::from_millis(LIFETIME_SECS * 1000 / 2 + 1_200)).await;
    for (reply, _) in spread(listener, "due").await {
        assert!(echoed_authorization(&reply).is_some());
    }
    // Let the background refreshes finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refresh_requests = emulator.token_requests() - cold_requests;
    let log = envoy.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("shared token cache is unavailable"), "{log}");
    (cold_requests, refresh_requests, cold_p50)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Envoy and the built filter: run `just envoy`"]
async fn workers_share_one_token_request_at_a_cold_start_and_at_a_refresh() {
    require_envoy();
    let total = CONNECTIONS * PER_CONNECTION;
    let (own_cold, own_refresh, own_p50) = measure(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "shared_cache": false}"#,
    )
    .await;
    eprintln!(
        "envoy {}: --concurrency {WORKERS}, {total} requests, shared_cache false -> {own_cold} token request(s) cold (p50 {:.1} ms), {own_refresh} at the refresh",
        envoy_version(),
        ms(own_p50),
    );
    assert!(
        own_cold >= 2,
        "several workers saw requests (each fetched its own): {own_cold}"
    );
    let (cold, refresh, shared_p50) = measure(super::VAULT).await;
    eprintln!(
        "envoy {}: --concurrency {WORKERS}, {total} requests -> {cold} token request(s) cold (p50 {:.1} ms), {refresh} at the refresh",
        envoy_version(),
        ms(shared_p50),
    );
    assert_eq!(cold, 1, "one token request for {WORKERS} workers");
    assert_eq!(refresh, 1, "one refresh for {WORKERS} workers");
}
