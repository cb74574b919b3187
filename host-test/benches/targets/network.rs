//! Loopback measurements against the emulator served by hyper on 127.0.0.1: a fresh
//! instance's first token vs a bare HTTP GET of the same URL, the no-managed-identity answer,
//! and a burst of calls on one instance.

use crate::rig::guest_config;
use crate::{SCOPE, timing};
use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator};
use azmi_host_test::{Egress, GuestConfig, Host, IdentitySelector, TokenError, TokenRequest};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// The IMDS token request the component sends for [`SCOPE`] (pod-identity base).
const IMDS_TARGET: &str =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

/// What the loopback runs measured.
pub struct Network {
    /// `Host::instantiate` + the first `get-token`, engine and component warm.
    pub first_token: timing::Stats,
    /// `Host::instantiate` alone.
    pub instantiate: timing::Stats,
    /// A new connection and one HTTP/1 GET of the same URL with `Metadata: true`, sent the
    /// way the host's egress sends (hyper's HTTP/1 client on a new tokio connection).
    pub bare_get: timing::Stats,
    /// A fresh instance's first `get-token` alone with the emulator answering in memory (no
    /// socket): the guest's work plus wasi-http's, without the network.
    pub in_memory: timing::Stats,
    /// `get-token-with` (`probe: true`) with the IMDS base on a closed port.
    pub no_mi: timing::Stats,
    /// Calls in the burst.
    pub burst_calls: usize,
    /// Upstream token requests the burst caused.
    pub burst_requests: usize,
    /// The whole burst.
    pub burst_time: Duration,
}

/// Runs everything with the guest on `rt` and the emulator on its own runtime thread.
pub fn measure(rt: &Runtime, host: &Host, iterations: usize) -> Network {
    let server = crate::server_runtime();
    let emulator = Emulator::new(EmulatorConfig::default());
    let (addr, accept) = server
        .block_on(emulator.serve(0))
        .expect("serving the emulator");
    let config = config(&format!("http://{addr}"));
    let [first_token, instantiate, bare_get] =
        rt.block_on(first_vs_bare(host, &config, addr, iterations));
    let in_memory = rt.block_on(in_memory_first_call(host, iterations));
    let request = emulator.requests().into_iter().last().expect("a request");
    assert_eq!(
        request.path,
        IMDS_TARGET.split('?').next().unwrap_or_default()
    );
    assert_eq!(
        request.query_param("resource"),
        Some("https://vault.azure.net")
    );
    assert_eq!(request.header("metadata"), Some("true"));
    let no_mi = rt.block_on(no_managed_identity(host, 20));
    emulator.clear_requests();
    let burst_calls = 1_000;
    let burst_time = rt.block_on(burst(host, &config, burst_calls));
    let burst_requests = emulator.token_requests();
    accept.abort();
    server.shutdown_background();
    Network {
        first_token,
        instantiate,
        bare_get,
        in_memory,
        no_mi,
        burst_calls,
        burst_requests,
        burst_time,
    }
}

/// A guest config whose IMDS base (`AZURE_POD_IDENTITY_AUTHORITY_HOST`) is `base`, with the
/// CLI's network egress (allowlist from the environment).
fn config(base: &str) -> GuestConfig {
    let env = vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        base.to_string(),
    )];
    let egress = Egress::network(&env, None).expect("egress");
    GuestConfig::new(env, egress)
}

/// First token, instantiation alone and the bare GET, alternated so background load hits
/// all alike; ten warm-up rounds first.
async fn first_vs_bare(
    host: &Host,
    config: &GuestConfig,
    addr: SocketAddr,
    iterations: usize,
) -> [timing::Stats; 3] {
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..iterations + 10 {
        let (first, _) = first_token(host, config).await;
        let start = Instant::now();
        let guest = host.instantiate(config.clone()).await;
        let instantiate = start.elapsed();
        drop(guest.expect("instantiating"));
        let bare = bare_get(addr).await;
        if round >= 10 {
            for (list, time) in times.iter_mut().zip([first, instantiate, bare]) {
                list.push(time);
            }
        }
    }
    times.map(|list| timing::of(&list))
}

/// Instantiates and gets one token: the whole time, and the `get-token` call's share. The
/// instance is dropped after the clock stops.
async fn first_token(host: &Host, config: &GuestConfig) -> (Duration, Duration) {
    let start = Instant::now();
    let mut guest = host
        .instantiate(config.clone())
        .await
        .expect("instantiating");
    let call = Instant::now();
    let token = guest
        .get_token(SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect("no trap");
    let (elapsed, call) = (start.elapsed(), call.elapsed());
    token.expect("a token");
    (elapsed, call)
}

/// A fresh instance's first `get-token` alone (instantiation untimed) with the emulator in
/// memory.
async fn in_memory_first_call(host: &Host, iterations: usize) -> timing::Stats {
    let emulator = Emulator::new(EmulatorConfig::default());
    let config = guest_config(&emulator);
    let mut times = Vec::new();
    for round in 0..iterations + 10 {
        let (_, call) = first_token(host, &config).await;
        if round >= 10 {
            times.push(call);
        }
    }
    timing::of(&times)
}

/// One GET on a new connection, body read whole, as the host's egress does.
async fn bare_get(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let tcp = TcpStream::connect(addr).await.expect("connecting");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    let driver = tokio::spawn(connection);
    let request = http::Request::get(IMDS_TARGET)
        .header("host", addr.to_string())
        .header("metadata", "true")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status();
    let body = response.into_body().collect().await.expect("body");
    let elapsed = start.elapsed();
    driver.abort();
    assert_eq!(status, 200, "{:?}", body.to_bytes());
    elapsed
}

/// `probe: true` against a closed loopback port: fresh instance each time, the call timed.
async fn no_managed_identity(host: &Host, iterations: usize) -> timing::Stats {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = config(&format!("http://127.0.0.1:{port}"));
    let request = TokenRequest {
        probe: true,
        ..TokenRequest::system_assigned(SCOPE)
    };
    let mut times = Vec::new();
    for _ in 0..iterations {
        let mut guest = host
            .instantiate(config.clone())
            .await
            .expect("instantiating");
        let start = Instant::now();
        let result = guest.get_token_with(&request).await.expect("no trap");
        times.push(start.elapsed());
        assert!(
            matches!(result, Err(TokenError::CredentialUnavailable(_))),
            "{result:?}"
        );
    }
    timing::of(&times)
}

/// `calls` sequential `get-token` calls on one fresh instance.
async fn burst(host: &Host, config: &GuestConfig, calls: usize) -> Duration {
    let mut guest = host
        .instantiate(config.clone())
        .await
        .expect("instantiating");
    let start = Instant::now();
    for _ in 0..calls {
        guest
            .get_token(SCOPE, &IdentitySelector::SystemAssigned)
            .await
            .expect("no trap")
            .expect("a token");
    }
    start.elapsed()
}
