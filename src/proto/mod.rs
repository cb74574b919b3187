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
mod client;
mod detect;
mod env;
mod error;
mod expiry;
mod files;
mod http;
mod request;
mod response;
mod retry;
mod scope;
mod selector;
mod source;
mod splitmix;
mod time;
mod token;
mod url;
mod workload;

#[cfg(test)]
mod tests;

pub use acquisition::{Acquisition, Action};
pub use arc::{ARC_KEY_DIR, ARC_KEY_MAX_BYTES};
pub use cache::{CacheKey, Lookup, MAX_ENTRIES, REFRESH_RETRY_MS};
pub use client::{ManagedIdentity, Start, TokenRequest};
pub use detect::{
    ARC_DEFAULT_ENDPOINT, DEFAULT_AUTHORITY_HOST, Detection, IMDS_BASE, IMDS_PATH, detect,
    normalize_thumbprint,
};
pub use env::{EnvSnapshot, HostFacts, is_managed_identity_variable, var};
pub use error::{Error, ErrorClass, ErrorKind};
pub use files::{FileError, FileErrorKind, FileRead};
pub use http::{
    Header, HttpRequest, HttpResponse, MAX_RESPONSE_BYTES, Method, Scheme, TransportError,
    TransportErrorKind,
};
pub use response::ServiceError;
pub use retry::{
    DEFAULT_CALL_DEADLINE_MS, Growth, IMDS_RETRY, LOCAL_RETRY, NO_404_RETRY, RETRY_AFTER_CAP_MS,
    RetryPolicy, parse_http_date,
};
pub use scope::{DEFAULT_SUFFIX, resource_from_scope};
pub use selector::{IdentitySelector, SelectorKind};
pub use source::{SOURCES, SelectorParams, Source, SourceSpec, Timeouts};
pub use splitmix::{SplitMix64, mix as splitmix64};
pub use time::UnixMillis;
pub use token::{AccessToken, EXPIRY_MARGIN_SECS, HALF_LIFE_THRESHOLD_SECS};
pub use url::Endpoint;
pub use workload::{ASSERTION_MAX_AGE_MS, ASSERTION_MAX_BYTES};
