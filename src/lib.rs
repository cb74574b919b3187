//! azmi: Azure managed-identity tokens for WebAssembly.
//!
//! [`proto`] is the sans-IO core; [`drive`] the one loop over it (blocking, with or without a
//! shared store, and non-blocking for callback hosts). With the `component` feature the crate
//! builds the WASI 0.2 component (`wasm32-wasip2`) exporting `azmi:identity/credential`; with
//! `shared-cache`, the same component sharing its tokens through `wasi:keyvalue`; with
//! `proxy-wasm`, the Envoy filter (`wasm32-wasip1`).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(all(feature = "component", feature = "proxy-wasm"))]
compile_error!(
    "features `component` and `proxy-wasm` are exclusive: build one per artifact (-p azmi --features component --target wasm32-wasip2)"
);

pub mod drive;
pub mod error_report;
pub mod proto;
#[cfg(any(test, feature = "proxy-wasm"))]
pub mod proxy_wasm;

#[cfg(feature = "component")]
mod component;
#[cfg(feature = "component")]
mod wasi_fs;
#[cfg(feature = "component")]
mod wasi_http;
