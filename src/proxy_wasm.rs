//! The Envoy auth filter (feature `proxy-wasm`, `wasm32-wasip1`): adds
//! `Authorization: Bearer <token>` to each request, with tokens from the managed identity.
//!
//! A filter crate registers it from its entry point (see `examples/envoy-filter`):
//!
//! ```ignore
//! proxy_wasm::main! {{ azmi::proxy_wasm::install(); }}
//! ```
//!
//! How it works, per Envoy worker thread (each has its own VM, so its own root context):
//!
//! * The **root context** parses the plugin configuration ([`FilterConfig`]), reads the
//!   managed-identity variables of the VM (Envoy's `vm_config.environment_variables`, which
//!   Envoy passes as the WASI environment, so `std::env` sees them; proxy-wasm 0.2 has no
//!   environment call of its own), and owns the [`TokenRoot`]: the token cache and the one
//!   token request in flight.
//! * A request that finds a fresh token gets the header and continues. One that finds none
//!   pauses and registers with the root; the first such request wakes the root with a 1 ms
//!   tick, and the root sends the token request with `dispatch_http_call` to the configured
//!   cluster. Token requests are only ever sent from the root, so their responses come back
//!   to it even when the request that triggered them is gone, and however many requests wait
//!   there is one token request at a time.
//! * When the fetch ends the root resumes every paused request with the header (or, when it
//!   failed, sends each a local 503 with a JSON error, or forwards it without a token under
//!   `fail_mode: allow`).
//! * Ticks run only while the root has work: a fetch in flight (its deadline; backoff) or a
//!   wake-up. An idle filter costs nothing. A request that finds the token past its
//!   `refresh_on` still gets it and wakes the root, which refreshes in the background; a
//!   failed refresh keeps the token until it expires.
//! * **One token request per machine, not per worker.** Envoy runs one VM per worker
//!   thread (`--concurrency`), so each worker has its own root context and cache. The roots
//!   share the token through proxy-wasm *shared data* (per `vm_id`, seen by every worker of
//!   the Envoy process), with the core's shared-cache format and rules
//!   ([`crate::drive::get_token_shared`]): a root without a token reads the store; a fresh
//!   entry is served at once; otherwise one root takes the entry's lease (compare-and-swap)
//!   and fetches, and the others keep their requests paused and read the store again every
//!   [`crate::proto::FOLLOW_POLL_MS`] until the entry appears or the lease ends
//!   ([`crate::proto::LEASE_MS`]). Refreshes go the same way: one worker refreshes while the
//!   others keep serving the current token. If the store ever fails, that worker logs one
//!   warning and keeps its own cache. `"shared_cache": false` in the configuration turns the
//!   sharing off (each worker then fetches its own token). Shared data is private to the
//!   Envoy process, and only wasm modules with the same `vm_id` can read the entry (the
//!   token); give the filter a `vm_id` of its own.
//! * **A scope per upstream** ([`filter`]): `"upstreams"` maps the request's `:authority` to a
//!   scope; the root context holds one [`TokenRoot`] per distinct scope (its own cache, single
//!   flight and shared-store entry) and routes each request to one; an unmapped upstream gets
//!   the default `"scope"`, or the generic 503, or passes untouched (`"unmapped"`).
//! * **Diagnostics**: at the level of `"log_level"` (else `AZURE_LOG_LEVEL` in the VM
//!   environment) the filter logs what the component logs — the drive loop's lines
//!   ([`crate::drive::lines`]) for each token request, answer, transport failure, retry wait,
//!   refresh start and cache hit or miss — at Envoy's error / warn / info / debug.
//! * **Stats** ([`stats`]): `azmi.*` counters (token requests, failures by class, requests
//!   authorized, rejected, forwarded without a token, passed through) and an expiry gauge per
//!   scope, through proxy-wasm metrics.
//! * `"credential": "default"` makes the filter choose its credential from the default chain
//!   when it starts ([`link`]): a client secret in `AZURE_*`, else managed identity.
//! * proxy-wasm has no file access: Azure Arc and workload identity (and, in the chain, a
//!   client certificate) are refused with a clear error, logged when the filter starts and
//!   returned to every request.
//! * proxy-wasm has no random source: the request id is derived from the time and a counter
//!   ([`token_root::seed`]); it only labels requests.
//!
//! * A request without a token gets a generic 503 (`{"error", "source", "request_id",
//!   "message"}`, [`verdict::LocalReply::for_failure`]): clients learn the error class and an
//!   id; the details (the core's message with endpoints and resource ids, status, service code
//!   and correlation id) go to the Envoy log at warn level on one line with that id.
//!
//! The decisions live in host-call-free modules ([`config`], [`token_root`], [`call`],
//! [`store`], [`glue`]) that are unit-tested natively; `root` and `stream` only perform them,
//! through `host.rs`, the one place that calls the host. No host status is unwrapped, and the
//! calls made per request and per tick bypass the proxy-wasm SDK, which panics on statuses it
//! does not expect ([`glue`]).
#![allow(
    clippy::disallowed_methods,
    reason = "the adapter reads the VM environment; clippy.toml bans it for the sans-IO core only"
)]

pub mod call;
pub mod config;
pub mod filter;
pub mod glue;
pub mod link;
pub mod stats;
pub mod store;
pub mod token_root;
pub mod verdict;

#[cfg(test)]
mod tests;

#[cfg(feature = "proxy-wasm")]
mod host;
#[cfg(feature = "proxy-wasm")]
mod root;
#[cfg(feature = "proxy-wasm")]
mod stream;

pub use config::{
    CredentialConfig, DEFAULT_HEADER, FailMode, FilterConfig, IdentityConfig, LogLevelConfig,
    Unmapped,
};
pub use filter::Filter;
pub use token_root::{LocalReply, TokenRoot, Verdict};

/// Registers the filter's root context with the proxy-wasm SDK; call it from the module's
/// entry point (`proxy_wasm::main!`).
#[cfg(feature = "proxy-wasm")]
pub fn install() {
    ::proxy_wasm::set_log_level(::proxy_wasm::types::LogLevel::Info);
    ::proxy_wasm::set_root_context(|context_id| Box::new(root::AuthRoot::new(context_id)));
}
