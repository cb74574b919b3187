//! `just bench-peers`: Microsoft's `azure_identity` crate (`ManagedIdentityCredential`)
//! measured the way the driver (host-test/benches/peers/main.rs) measures azmi. One JSON line
//! on stdout per run.
//!
//! * `mi`: IDENTITY_ENDPOINT/IDENTITY_HEADER set: first tokens, cached calls.
//! * `no-mi`: nothing configured: the no-managed-identity answer.
//! * `one-shot`: one token, then exit (the driver times the whole process).
//!
//! Every request goes through [`LoopbackOnly`]: IMDS (169.254.169.254) is sent to
//! PEERS_IMDS_ADDRESS (a closed 127.0.0.1 port) and anything not on 127.0.0.0/8 is refused.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use azure_core::credentials::TokenCredential;
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCOPE: &str = "https://vault.azure.net/.default";

/// The SDK's own reqwest client, IMDS rerouted to `imds`, loopback destinations only.
#[derive(Debug)]
struct LoopbackOnly {
    inner: Arc<dyn HttpClient>,
    imds: Option<String>,
}

#[async_trait::async_trait]
impl HttpClient for LoopbackOnly {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut request = request.clone();
        if request.url().host_str() == Some("169.254.169.254") {
            let Some((host, port)) = self.imds.as_deref().and_then(|a| a.rsplit_once(':')) else {
                return Err(refused(
                    "PEERS_IMDS_ADDRESS is not set: refusing to contact IMDS",
                ));
            };
            let url = request.url_mut();
            url.set_host(Some(host))
                .map_err(|e| refused(&e.to_string()))?;
            url.set_port(port.parse().ok())
                .map_err(|()| refused("bad port"))?;
        }
        if !request
            .url()
            .host_str()
            .is_some_and(|h| h.starts_with("127."))
        {
            return Err(refused(&format!("{} is not loopback", request.url())));
        }
        self.inner.execute_request(&request).await
    }
}

fn refused(why: &str) -> azure_core::Error {
    azure_core::Error::with_message(azure_core::error::ErrorKind::Io, format!("refused: {why}"))
}

fn credential() -> Arc<ManagedIdentityCredential> {
    let client = LoopbackOnly {
        inner: azure_core::http::new_http_client(None),
        imds: std::env::var("PEERS_IMDS_ADDRESS").ok(),
    };
    let options = ManagedIdentityCredentialOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(client))),
            ..Default::default()
        },
        ..Default::default()
    };
    ManagedIdentityCredential::new(Some(options)).expect("a credential")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn nanos(d: Duration) -> String {
    d.as_nanos().to_string()
}

fn list(values: &[Duration]) -> String {
    let items: Vec<String> = values.iter().copied().map(nanos).collect();
    format!("[{}]", items.join(","))
}

/// Fresh credential per round, a scope no earlier round asked for; three warm-up rounds.
async fn mi() -> String {
    let rounds = env_number("PEERS_FIRST_ROUNDS", 20) as usize;
    let mut first = Vec::new();
    let mut seen = HashSet::new();
    for round in 0..rounds + 3 {
        let scope = format!("https://bench-{round}.example/.default");
        let start = Instant::now();
        let token = credential()
            .get_token(&[&scope], None)
            .await
            .expect("a token");
        let elapsed = start.elapsed();
        assert!(
            seen.insert(token.token.secret().to_string()),
            "answered from a cache"
        );
        if round >= 3 {
            first.push(elapsed);
        }
    }
    let cred = credential();
    cred.get_token(&[SCOPE], None).await.expect("a token");
    let mut cached = Vec::new();
    for _ in 0..env_number("PEERS_CACHED_CALLS", 10_000) {
        let start = Instant::now();
        cred.get_token(&[SCOPE], None).await.expect("a token");
        cached.push(start.elapsed());
    }
    format!(
        r#""first_token_ns":{},"cached_ns":{}"#,
        list(&first),
        list(&cached)
    )
}

/// No probe mode in this crate: the credential alone (its IMDS retries), given up after
/// PEERS_NO_MI_CAP_MS.
async fn no_mi() -> String {
    let cap = Duration::from_millis(env_number("PEERS_NO_MI_CAP_MS", 20_000));
    let start = Instant::now();
    let outcome = tokio::time::timeout(cap, credential().get_token(&[SCOPE], None)).await;
    let elapsed = start.elapsed();
    let (capped, error) = match outcome {
        Err(_) => (true, String::new()),
        Ok(Ok(_)) => (false, "unexpectedly got a token".to_string()),
        Ok(Err(e)) => (
            false,
            e.to_string().lines().next().unwrap_or_default().to_string(),
        ),
    };
    format!(
        r#""no_mi_probe_ns":null,"no_mi_alone_ns":{},"no_mi_alone_capped":{capped},"no_mi_alone_error":{}"#,
        nanos(elapsed),
        json_string(&error)
    )
}

fn json_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => "\\\"".chars().collect::<Vec<_>>(),
            '\\' => "\\\\".chars().collect(),
            c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = match mode.as_str() {
        "mi" => mi().await,
        "no-mi" => no_mi().await,
        "one-shot" => {
            let token = credential()
                .get_token(&[SCOPE], None)
                .await
                .expect("a token");
            format!(r#""ok":{}"#, !token.token.secret().is_empty())
        }
        _ => panic!("usage: azmi-peer-azure-identity mi|no-mi|one-shot (got {mode:?})"),
    };
    println!(
        r#"{{"peer":"rust","sdk":"azure_identity 1.0.0 (azure_core 1.0.0, reqwest)","runtime":"Rust (release profile)",{result}}}"#
    );
}
