// Over 350 lines on purpose: every example run for real (Spin composition, Redis), each with its
// processes, ports and cleanup.
// Long: the fixtures (emulator, `azmi serve` and redis-server processes) serve every test here.
//! examples/spin-app, composed with azmi.wasm by `wac plug`, served by the real `azmi serve`
//! (wasmtime-wasi-http, one instance per request as Spin does) against the emulator on
//! loopback ports: composed with the shared-cache build (`composed.wasm`, tokens in the
//! host's `wasi:keyvalue` store, in memory or in a real Redis) and, for comparison, with the
//! plain build (`composed-plain.wasm`). Needs the compositions: `just examples` builds them
//! and runs these; the Redis test also needs `redis-server` (`just redis`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use azmi_host_test::KeyValue;
use azmi_host_test::emulator::{Config, Emulator, Request};
use azmi_host_test::keyvalue::BUCKET;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const AZMI: &str = env!("CARGO_BIN_EXE_azmi");
const IGNORED: &str = "needs the composed Spin app: run `just examples`";

/// `$AZMI_SPIN_APP`, else where `just examples` writes the composition with the shared-cache
/// build.
fn composed() -> PathBuf {
    std::env::var_os("AZMI_SPIN_APP")
        .map_or_else(|| spin_target().join("composed.wasm"), PathBuf::from)
}

/// The composition with the plain azmi.wasm (no store: one token request per request).
fn composed_plain() -> PathBuf {
    spin_target().join("composed-plain.wasm")
}

fn spin_target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/spin-app/target")
}

/// `azmi serve` as a child process; killed on drop.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `azmi serve <composed> --port 0 args…` with exactly `env` and waits for its banner.
fn serve(env: &[(&str, &str)], args: &[&str]) -> Served {
    serve_app(composed(), env, args)
}

/// Starts `azmi serve <path> --port 0 args…` with exactly `env` and waits for its banner.
fn serve_app(path: PathBuf, env: &[(&str, &str)], args: &[&str]) -> Served {
    assert!(path.exists(), "{} is missing: {IGNORED}", path.display());
    let mut command = Command::new(AZMI);
    command
        .arg("serve")
        .arg(&path)
        .args(["--port", "0"])
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().expect("running azmi serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("azmi serve listening on ")
        .unwrap_or_else(|| panic!("azmi serve printed {first:?}"))
        .to_string();
    Served { child, url }
}

/// One GET on a fresh connection: status, body, and how long it took.
async fn get(url: &str) -> (u16, String, Duration) {
    send("GET", url).await
}

/// One POST with an empty body on a fresh connection.
async fn post(url: &str) -> (u16, String, Duration) {
    send("POST", url).await
}

/// One `method` request with an empty body on a fresh connection: status, body, and how long
/// it took.
async fn send(method: &str, url: &str) -> (u16, String, Duration) {
    let uri: hyper::Uri = url.parse().unwrap();
    let start = Instant::now();
    let authority = uri.authority().unwrap().as_str().to_string();
    let tcp = TcpStream::connect(&authority).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri.path())
        .header("host", authority)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let elapsed = start.elapsed();
    (status, String::from_utf8_lossy(&body).into_owned(), elapsed)
}

/// The emulator on two loopback ports sharing one state: one as IMDS, one as the vault
/// (which checks the tokens the first one minted).
async fn imds_and_vault(config: Config) -> (Emulator, String, String) {
    let emulator = Emulator::new(config);
    let (imds, _) = emulator.serve(0).await.unwrap();
    let (vault, _) = emulator.serve(0).await.unwrap();
    (
        emulator,
        format!("http://{imds}"),
        format!("http://{vault}"),
    )
}

fn secret_requests(emulator: &Emulator) -> Vec<Request> {
    emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/secrets/"))
        .collect()
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `REQUESTS` secrets read through `url` (one fresh instance each): their latencies, after
/// checking every answer.
async fn read_secrets(url: &str, requests: usize, tag: &str) -> Vec<Duration> {
    let mut latency = Vec::with_capacity(requests);
    for i in 0..requests {
        let name = format!("{tag}-{i}");
        let (status, body, elapsed) = get(&format!("{url}/secrets/{name}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("secret-{name}"));
        latency.push(elapsed);
    }
    latency
}

/// Every vault request carried a vault token the emulator minted.
fn assert_vault_tokens(emulator: &Emulator, expected: usize) {
    let secrets = secret_requests(emulator);
    assert_eq!(secrets.len(), expected);
    for request in &secrets {
        let token = request
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .expect("a bearer token");
        let issued = emulator.issued(token).expect("minted by the emulator");
        assert_eq!(issued.resource, "https://vault.azure.net");
        assert_eq!(request.query_param("api-version"), Some("7.4"));
    }
}

fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

const REQUESTS: usize = 200;
/// Concurrent requests to cold servers, racing for the store's lease.
const COLD: usize = 10;

/// `COLD` concurrent secret reads spread over `urls`, all answered.
async fn cold_burst(urls: &[&str]) {
    let burst: Vec<_> = (0..COLD)
        .map(|i| {
            let url = format!("{}/secrets/cold-{i}", urls[i % urls.len()]);
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    for (i, request) in burst.into_iter().enumerate() {
        let (status, body, _) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("secret-cold-{i}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app: run `just examples`"]
async fn spin_app_on_the_shared_cache_makes_one_token_request_for_200_requests() {
    // Before: the plain azmi.wasm, whose cache dies with each request's instance.
    let (plain_emulator, imds, vault) = imds_and_vault(Config::default()).await;
    let vault_env = format!("VAULT_URL={vault}");
    let plain = serve_app(
        composed_plain(),
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)],
        &["--env", &vault_env, "--allow-outbound", &vault],
    );
    let before = read_secrets(&plain.url, REQUESTS, "plain").await;
    assert_eq!(plain_emulator.token_requests(), REQUESTS);
    assert_vault_tokens(&plain_emulator, REQUESTS);
    drop(plain);

    // After: the shared-cache build on `azmi serve`'s in-memory wasi:keyvalue store.
    let (emulator, imds, vault) = imds_and_vault(Config::default()).await;
    let vault_env = format!("VAULT_URL={vault}");
    let served = serve(
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)],
        &["--env", &vault_env, "--allow-outbound", &vault],
    );
    cold_burst(&[&served.url]).await;
    let after = read_secrets(&served.url, REQUESTS - COLD, "db-password").await;
    assert_eq!(emulator.token_requests(), 1, "one token for every instance");
    assert_vault_tokens(&emulator, REQUESTS);

    // The same instantiation and handler without a token or vault call, for comparison.
    let mut bare_latency = Vec::new();
    for _ in 0..20 {
        let (status, _, elapsed) = get(&format!("{}/health", served.url)).await;
        assert_eq!(status, 404);
        bare_latency.push(elapsed);
    }
    assert_eq!(emulator.token_requests(), 1);
    let (before, after, bare) = (p50(before), p50(after), p50(bare_latency));
    eprintln!(
        "spin app via azmi serve ({} build), {REQUESTS} GET /secrets/<name> (new instance + vault request each): plain azmi.wasm {REQUESTS} → {REQUESTS} token requests, p50 {:.2} ms; shared cache (in-memory wasi:keyvalue, {COLD} concurrent cold then sequential) {REQUESTS} → {} token request, warm p50 {:.2} ms; p50 {:.2} ms per request without a token (new instance only)",
        build(),
        ms(before),
        emulator.token_requests(),
        ms(after),
        ms(bare),
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app: run `just examples`"]
async fn spin_app_vault_outside_the_allowlist_is_refused_by_the_host() {
    let (emulator, imds, vault) = imds_and_vault(Config::default()).await;
    let vault_env = format!("VAULT_URL={vault}");
    // No --allow-outbound: only the managed-identity endpoint is reachable.
    let served = serve(
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)],
        &["--env", &vault_env],
    );
    let (status, body, _) = get(&format!("{}/secrets/db-password", served.url)).await;
    assert_eq!(status, 502, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "vault");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{body}"
    );
    assert_eq!(emulator.token_requests(), 1);
    assert!(secret_requests(&emulator).is_empty(), "refused in the host");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app: run `just examples`"]
async fn spin_app_reports_a_token_failure_as_json_without_calling_the_vault() {
    let config = Config {
        system: None,
        ..Config::default()
    };
    let (emulator, imds, vault) = imds_and_vault(config).await;
    let vault_env = format!("VAULT_URL={vault}");
    let served = serve(
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)],
        &["--env", &vault_env, "--allow-outbound", &vault],
    );
    let (status, body, _) = get(&format!("{}/secrets/db-password", served.url)).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    // No system-assigned identity: IMDS's 400 "Identity not found" for a system-assigned
    // call means no managed identity here (credential unavailable; see
    // src/proto/response.rs), the last link of the app's default chain: the chain's one
    // unavailable error lists each credential and why, and the app answers 503.
    assert_eq!(status, 503, "{body}");
    assert_eq!(json["error"], "credential_unavailable", "{body}");
    let message = json["message"].as_str().unwrap();
    for link in [
        "EnvironmentCredential: ",
        "WorkloadIdentityCredential: ",
        "ManagedIdentityCredential: ",
    ] {
        assert!(message.contains(link), "{body}");
    }
    assert!(!body.contains("emu."), "no token in the answer: {body}");
    assert!(secret_requests(&emulator).is_empty());
}

/// The app calls azmi's `default-credential`: its managed identity takes `AZURE_CLIENT_ID` as
/// the user-assigned identity (the chain's rule; `credential` would use the system-assigned
/// one), and the vault gets that identity's token.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app: run `just examples`"]
async fn spin_app_gets_its_token_from_the_default_chain() {
    const USER_ASSIGNED: &str = "22222222-2222-2222-2222-222222222222";
    let (emulator, imds, vault) = imds_and_vault(Config::default()).await;
    let vault_env = format!("VAULT_URL={vault}");
    let served = serve(
        &[
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds),
            ("AZURE_CLIENT_ID", USER_ASSIGNED),
        ],
        &["--env", &vault_env, "--allow-outbound", &vault],
    );
    let (status, body, _) = get(&format!("{}/secrets/db-password", served.url)).await;
    assert_eq!(status, 200, "{body}");
    let secrets = secret_requests(&emulator);
    let token = secrets[0]
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .expect("a bearer token");
    let issued = emulator.issued(token).expect("minted by the emulator");
    assert_eq!(issued.client_id, USER_ASSIGNED);
}

/// `GET /token` (the app's request whose only work is the token, `just bench` row 6) answers
/// the token's source and expiry, never the token; the second request is served from the
/// shared cache, and a POST is refused before any token is asked for.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app: run `just examples`"]
async fn spin_app_token_route_names_source_and_expiry_never_the_token() {
    let (emulator, imds, _) = imds_and_vault(Config::default()).await;
    let served = serve(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)], &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for _ in 0..2 {
        let (status, body, _) = get(&format!("{}/token", served.url)).await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["source"], "imds", "{body}");
        let expires_on = json["expires_on"].as_u64().expect("expires_on in seconds");
        assert!(expires_on > now, "{body}");
        assert_eq!(
            json.as_object().unwrap().len(),
            2,
            "only source and expiry: {body}"
        );
        assert!(!body.contains("emu."), "no token in the answer: {body}");
    }
    assert_eq!(
        emulator.token_requests(),
        1,
        "the second from the shared cache"
    );
    let (status, body, _) = post(&format!("{}/token", served.url)).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(emulator.token_requests(), 1);
}

/// A throwaway `redis-server` on 127.0.0.1 (no persistence); killed on drop.
struct RedisServer {
    child: Child,
    url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    fn start() -> RedisServer {
        // A port free a moment ago; redis-server fails at once if someone took it since.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e} (run `just redis`, which installs it)"));
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let store = KeyValue::redis(&server.url).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = store.reachable() {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered: {e}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app and redis-server: run `just redis`"]
async fn redis_pair_of_servers_makes_one_token_request_for_200_requests() {
    let redis = RedisServer::start();
    let (emulator, imds, vault) = imds_and_vault(Config::default()).await;
    let vault_env = format!("VAULT_URL={vault}");
    let args = [
        "--env",
        &vault_env,
        "--allow-outbound",
        &vault,
        "--keyvalue",
        &redis.url,
    ];
    let env = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.as_str())];
    let servers = [serve(&env, &args), serve(&env, &args)];

    // Cold: concurrent requests, half to each process, race for the lease in Redis.
    cold_burst(&[&servers[0].url, &servers[1].url]).await;
    // Warm: the rest alternate between the two processes.
    let mut latency = Vec::new();
    for i in COLD..REQUESTS {
        let url = &servers[i % 2].url;
        latency.extend(read_secrets(url, 1, &format!("warm-{i}")).await);
    }
    assert_eq!(emulator.token_requests(), 1, "one token for both processes");
    assert_vault_tokens(&emulator, REQUESTS);
    // The entry lives in Redis under the bucket's prefix (its value is a secret: not shown).
    let store = KeyValue::redis(&redis.url).unwrap();
    assert!(
        !store.keys(BUCKET).is_empty(),
        "azmi-tokens:* keys in Redis"
    );
    eprintln!(
        "spin app via two azmi serve processes on one Redis ({} build): {REQUESTS} GET /secrets/<name> ({COLD} concurrent cold, then alternating) → {} token request, warm p50 {:.2} ms",
        build(),
        emulator.token_requests(),
        ms(p50(latency)),
    );
    drop(servers);
}
