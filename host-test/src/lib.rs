//! The azmi host side: a wasmtime host for the component, the Rust Azure managed-identity
//! emulator, and the `azmi` CLI's logic. Everything here runs natively; nothing here leaves
//! the machine unless the CLI is pointed at a real endpoint.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

pub mod bindings;
pub mod cli;
pub mod egress;
pub mod emulator;
pub mod file_store;
pub mod host;
pub mod keyvalue;
pub mod precompiled;
pub mod serve;

pub use bindings::{AccessToken, Error as TokenError, IdentitySelector, Source, TokenRequest};
pub use egress::{Allowlist, Egress};
pub use host::{CERTIFICATE_COMPONENT, COMPONENT, Guest, GuestConfig, Host, SHARED_COMPONENT};
pub use keyvalue::KeyValue;
