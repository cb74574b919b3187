//! azmi as a plugin of a native wasmtime program: load `azmi.wasm` from a file, instantiate it
//! once, and call `get-token` on that instance for the life of the program (the instance
//! holds the token cache). Outbound HTTP is limited to the managed-identity endpoints (and
//! Entra's authority with [`Credential::Default`], the default chain), with capped timeouts;
//! the component's errors become [`TokenError`].
//!
//! ```no_run
//! # async fn demo() -> wasmtime::Result<()> {
//! use azmi_wasmtime_plugin::{Config, IdentitySelector, Plugin};
//! let mut plugin = Plugin::load("azmi.wasm".as_ref(), Config::from_process_env()).await?;
//! let token = plugin
//!     .get_token("https://vault.azure.net/.default", &IdentitySelector::SystemAssigned)
//!     .await?;
//! # let _ = token; Ok(()) }
//! ```
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

mod bindings;
mod egress;
mod error;
mod plugin;

pub use bindings::{AccessToken, ErrorInfo, IdentitySelector, Source};
pub use egress::{Allowlist, ENTRA, IMDS, Timeouts};
pub use error::TokenError;
pub use plugin::{Config, Credential, Plugin, is_managed_identity_variable};

/// Where `just component` (and the host-test build) puts `azmi.wasm`, relative to the
/// repository root.
pub const DEFAULT_COMPONENT: &str = "target/shipped/azmi.wasm";
