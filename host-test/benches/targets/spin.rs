//! Row 6: the composed Spin app (examples/spin-app + the shared-cache azmi.wasm, made by
//! `just spin-app`) served in process by `azmi serve`'s server, one fresh instance per
//! request, with a warm shared cache: `GET /token` (the request's only work is the token)
//! against the same app's `GET /health` (a 404 that needs no token), interleaved on two
//! kept-alive connections.

use crate::envoy_rig::client::Connection;
use crate::envoy_rig::latency::Percentiles;
use azmi_host_test::Egress;
use azmi_host_test::KeyValue;
use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator};
use azmi_host_test::serve::{ServeConfig, Server};
use std::path::{Path, PathBuf};
use tokio::runtime::Runtime;

/// What the Spin run measured.
pub struct SpinRequests {
    /// `GET /token`, token from the shared cache.
    pub token: Percentiles,
    /// `GET /health`, no token.
    pub health: Percentiles,
    /// Token requests the emulator saw (1: the cache was shared).
    pub token_requests: usize,
}

/// Where `just spin-app` writes the composition.
fn composed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/spin-app/target/composed.wasm")
}

/// `rounds` requests of each kind; `Err` says why it could not run.
pub fn measure(rt: &Runtime, rounds: usize) -> Result<SpinRequests, String> {
    let path = composed();
    let wasm = std::fs::read(&path)
        .map_err(|e| format!("no {} ({e}): run `just spin-app`", path.display()))?;
    let emulator = Emulator::new(EmulatorConfig::default());
    rt.block_on(async {
        let (imds, _) = emulator.serve(0).await.expect("serving the emulator");
        let env = vec![(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
            format!("http://{imds}"),
        )];
        let egress = Egress::network(&env, None).map_err(|e| e.to_string())?;
        let config = ServeConfig {
            env,
            egress,
            keyvalue: KeyValue::new(),
        };
        let server = Server::new(&wasm, config).map_err(|e| format!("{e:#}"))?;
        let (address, accept) = server.serve(0).await.map_err(|e| e.to_string())?;
        let mut token = Connection::open(address).await.map_err(|e| e.to_string())?;
        let mut health = Connection::open(address).await.map_err(|e| e.to_string())?;
        let (mut token_times, mut health_times) = (Vec::new(), Vec::new());
        for round in 0..rounds + 20 {
            let (reply, token_time) = token.send("GET", "/token", &[], "").await.unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
            let (reply, health_time) = health.send("GET", "/health", &[], "").await.unwrap();
            assert_eq!(reply.status, 404, "{}", reply.body);
            if round >= 20 {
                token_times.push(token_time);
                health_times.push(health_time);
            }
        }
        accept.abort();
        Ok(SpinRequests {
            token: Percentiles::of(token_times),
            health: Percentiles::of(health_times),
            token_requests: emulator.token_requests(),
        })
    })
}
