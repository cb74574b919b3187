//! The Envoy tests' rig, client and latency loop (`host-test/tests/envoy`), compiled into the
//! bench from the tests' own files: one code path runs Envoy for both.

#[path = "../../tests/envoy/client.rs"]
pub mod client;
#[path = "../../tests/envoy/latency.rs"]
pub mod latency;
#[path = "../../tests/envoy/numbers.rs"]
pub mod numbers;
#[path = "../../tests/envoy/rig.rs"]
pub mod rig;
