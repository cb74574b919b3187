//! The sans-IO core: source detection, request building, response parsing, error
//! classification and caching, with no I/O of its own.
//!
//! Nothing here touches the network, a clock, the environment, the filesystem or an RNG:
//! time comes in as [`UnixMillis`], the environment as an [`EnvSnapshot`], randomness as
//! bytes, and requests go out as [`Action`]s for an adapter to perform (quinn-proto style).
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod acquisition;
mod arc;
mod cache;
#[cfg(feature = "client-certificate")]
mod certificate;
mod chain;
mod credential;
mod detect;
mod env;
mod environment;
mod error;
mod expiry;
mod files;
// Fuzz targets (`fuzz/`, `just fuzz`) and the property test's entry points: not an API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod log;
mod request;
mod response;
mod retry;
mod scope;
mod secret;
mod selector;
mod shared;
mod source;
mod spec;
mod splitmix;
mod text_eq;
mod time;
mod token;
mod url;
mod workload;

#[cfg(test)]
mod tests;

pub use acquisition::{Acquisition, Action, Outcome, Poll};
pub use arc::ARC_KEY_DIR;
pub use chain::{DefaultChain, Link, Links};
pub use credential::{Cached, ManagedIdentity, SharedSlot, Start, TokenRequest};
pub use detect::{
    DEFAULT_AUTHORITY_HOST, detected, link_endpoint, normalize_thumbprint, token_endpoint,
};
pub use env::{EnvSnapshot, HostFacts, is_managed_identity_variable, var};
pub use error::{Error, ErrorClass, ErrorKind};
pub use files::{FileError, FileErrorKind, FileRead};
pub use http::{
    Header, HttpRequest, HttpResponse, MAX_RESPONSE_BYTES, Method, Scheme, Timeouts,
    TransportError, TransportErrorKind,
};
pub use log::{AZURE_LOG_LEVEL, Level};
pub use selector::{IdentitySelector, SelectorKind};
pub use shared::{
    CLOCK_SKEW_MS, FOLLOW_POLL_MS, LEASE_MS, Shared, decode_entry, encode_entry, encode_lease,
    lease_key, lease_until, read_entry,
};
pub use source::Source;
pub use splitmix::mix as splitmix64;
pub use time::UnixMillis;
pub use token::AccessToken;
pub use url::Endpoint;

/// For the Envoy filter, which validates its configured scope.
#[cfg(any(test, feature = "proxy-wasm"))]
pub(crate) use scope::resource_from_scope;
