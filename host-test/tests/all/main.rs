//! Integration tests: the real `azmi.wasm` in wasmtime against the Rust emulator, and the
//! real `azmi` binary. Nothing here sends a packet beyond 127.0.0.0/8.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

mod app_service;
mod arc;
mod certificate;
mod cli;
mod cli_cache;
mod cli_output;
mod cli_reach;
mod component;
mod deadlines;
mod default_chain;
mod doctor;
mod egress;
mod imds;
mod leaks;
mod precompiled;
mod response_cap;
mod retry;
mod shared_cache;
mod sources;
mod tls;
mod util;
