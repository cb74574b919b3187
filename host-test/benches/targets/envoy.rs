//! Row 7: what the azmi Envoy filter adds per request with a cached token, against the same
//! route without a filter and with a minimal proxy-wasm filter (the floor: Envoy's wasm
//! runtime entering a module once per request and setting one fixed `authorization` header,
//! nothing else), all in one Envoy, interleaved. The rig and the latency loop are the Envoy
//! tests' own (`host-test/tests/envoy`, compiled into this bench as [`crate::envoy_rig`]).

use crate::envoy_rig::latency::{self, Percentiles};
use crate::envoy_rig::rig::{self, Envoy, Listener, config_per_listener, filter_wasm};
use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator};
use std::path::PathBuf;
use tokio::runtime::Runtime;

/// The `authorization` value the minimal filter sets.
const FLOOR_HEADER: &str = "Bearer minimal-filter-fixed-token";

/// A proxy-wasm module (ABI 0.2.1) whose request-headers callback sets [`FLOOR_HEADER`] and
/// continues: the least a header-adding filter can do in Envoy.
fn floor_filter_wat() -> String {
    format!(
        r#"(module
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "authorization")
  (data (i32.const 64) "{FLOOR_HEADER}")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $replace (i32.const 0) (i32.const 16) (i32.const 13) (i32.const 64) (i32.const {len})))
    (i32.const 0)))"#,
        len = FLOOR_HEADER.len()
    )
}

/// What one Envoy run measured.
pub struct EnvoyLatency {
    /// Envoy's version.
    pub version: String,
    /// The route through the azmi filter (cached token).
    pub azmi: Percentiles,
    /// Through the minimal filter.
    pub floor: Percentiles,
    /// No filter.
    pub bare: Percentiles,
    /// Kept-alive requests timed per listener.
    pub rounds: usize,
}

/// One Envoy (one worker) with the three listeners, `rounds` requests each; `Err` says why it
/// could not run.
pub fn measure(rt: &Runtime, rounds: usize) -> Result<EnvoyLatency, String> {
    let (envoy, wasm) = (rig::envoy_binary(), filter_wasm());
    if let Some(why) = rig::missing(&envoy, &wasm) {
        return Err(why);
    }
    let floor = std::env::temp_dir().join(format!("azmi-bench-floor-{}.wasm", std::process::id()));
    let module = wat::parse_str(floor_filter_wat()).map_err(|e| format!("floor filter: {e}"))?;
    std::fs::write(&floor, module).map_err(|e| format!("{}: {e}", floor.display()))?;
    let measured = rt.block_on(run(wasm, floor.clone(), rounds));
    let _ = std::fs::remove_file(&floor);
    Ok(measured)
}

async fn run(azmi_wasm: PathBuf, floor_wasm: PathBuf, rounds: usize) -> EnvoyLatency {
    let emulator = Emulator::new(EmulatorConfig::default());
    let (address, _accept) = emulator.serve(0).await.expect("serving the emulator");
    let url = format!("http://{address}");
    let filter = |name, configuration: &str, env: Vec<(&'static str, String)>| Listener {
        name,
        filter: Some((configuration.to_string(), env)),
    };
    let listeners = [
        filter(
            "azmi",
            r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#,
            vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)],
        ),
        filter("floor", "{}", Vec::new()),
        Listener {
            name: "bare",
            filter: None,
        },
    ];
    let clusters = [("upstream", address.port()), ("imds", address.port())];
    let yaml = config_per_listener(&listeners, &clusters, |name| match name {
        "floor" => floor_wasm.clone(),
        _ => azmi_wasm.clone(),
    });
    let envoy = Envoy::start(&yaml, 1).await;
    let addresses = listeners.map(|l| envoy.listener(l.name));
    // The first request through azmi fetches the token; the warm-up rounds cover it.
    let measured = latency::interleaved(&addresses, "/echo/bench", 50, rounds, |i, reply| {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let authorization = reply.json()["authorization"].as_str().map(str::to_string);
        match i {
            0 => assert!(authorization.is_some_and(|a| a.starts_with("Bearer "))),
            1 => assert_eq!(authorization.as_deref(), Some(FLOOR_HEADER)),
            _ => assert_eq!(authorization, None),
        }
    })
    .await;
    assert_eq!(emulator.token_requests(), 1, "one token for every request");
    drop(envoy);
    EnvoyLatency {
        version: crate::envoy_rig::numbers::envoy_version(),
        azmi: measured[0],
        floor: measured[1],
        bare: measured[2],
        rounds,
    }
}
