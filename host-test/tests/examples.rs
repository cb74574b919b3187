//! examples/spin-app, composed with azmi.wasm by `wac plug`, served by the real `azmi serve`
//! (wasmtime-wasi-http, one instance per request as Spin does) against the emulator on
//! loopback ports. Needs the composition: `just examples` builds it and runs these.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use azmi_host_test::emulator::{Config, Emulator, Request};
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

/// `$AZMI_SPIN_APP`, else where `just examples` writes the composition.
fn composed() -> PathBuf {
    std::env::var_os("AZMI_SPIN_APP").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/spin-app/target/composed.wasm")
        },
        PathBuf::from,
    )
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
    let path = composed();
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
    let uri: hyper::Uri = url.parse().unwrap();
    let start = Instant::now();
    let authority = uri.authority().unwrap().as_str().to_string();
    let tcp = TcpStream::connect(&authority).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(uri.path())
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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the composed Spin app: run `just examples`"]
async fn spin_app_reads_a_secret_with_one_token_request_per_request() {
    let (emulator, imds, vault) = imds_and_vault(Config::default()).await;
    let vault_env = format!("VAULT_URL={vault}");
    let served = serve(
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)],
        &["--env", &vault_env, "--allow-outbound", &vault],
    );
    const REQUESTS: usize = 20;
    let mut secret_latency = Vec::new();
    for i in 0..REQUESTS {
        let (status, body, elapsed) = get(&format!("{}/secrets/db-password-{i}", served.url)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("secret-db-password-{i}"));
        secret_latency.push(elapsed);
    }
    // A new instance per request: azmi's cache never outlives the request.
    assert_eq!(emulator.token_requests(), REQUESTS);
    let secrets = secret_requests(&emulator);
    assert_eq!(secrets.len(), REQUESTS);
    for request in &secrets {
        let token = request
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .expect("a bearer token");
        let issued = emulator.issued(token).expect("minted by the emulator");
        assert_eq!(issued.resource, "https://vault.azure.net");
        assert_eq!(request.query_param("api-version"), Some("7.4"));
    }
    // The same instantiation and handler without a token or vault call, for comparison.
    let mut bare_latency = Vec::new();
    for _ in 0..REQUESTS {
        let (status, _, elapsed) = get(&format!("{}/health", served.url)).await;
        assert_eq!(status, 404);
        bare_latency.push(elapsed);
    }
    assert_eq!(emulator.token_requests(), REQUESTS);
    let (secret, bare) = (p50(secret_latency), p50(bare_latency));
    eprintln!(
        "spin app via azmi serve ({} build): p50 {:.2} ms per GET /secrets/<name> (new instance + 1 token request + 1 vault request), p50 {:.2} ms per request without a token (new instance only): the per-request token costs ≈ {:.2} ms",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        ms(secret),
        ms(bare),
        ms(secret.saturating_sub(bare)),
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
    let class = json["error"].as_str().unwrap_or_default();
    match status {
        502 => assert_eq!(class, "authentication_failed", "{body}"),
        503 => assert_eq!(class, "credential_unavailable", "{body}"),
        _ => panic!("status {status}: {body}"),
    }
    assert_eq!(json["status"], 400, "{body}");
    assert!(!body.contains("emu."), "no token in the answer: {body}");
    assert!(secret_requests(&emulator).is_empty());
}
