//! The diagnostics lines of the drive loop, written once for every host: [`super::get_token`]
//! and [`super::run`] (the component, the CLI) and [`super::pump`] / [`super::respond`] (the
//! Envoy filter's root context) write the same words for the same event. No line holds a token, a secret, a key or an assertion: a request is named by its
//! method, scheme, authority, path (no query, no headers but the request id, no body), and
//! error details are the core's, already redacted.

use crate::proto::{HttpRequest, Source};

/// A request is sent (`info`).
pub fn sent(source: Source, request: &HttpRequest) -> String {
    format!(
        "azmi: {source}: {} {}://{}{} (x-ms-client-request-id {})",
        request.method.as_str(),
        request.scheme.as_str(),
        request.authority,
        request.path_and_query.split('?').next().unwrap_or_default(),
        request.header("x-ms-client-request-id").unwrap_or("-")
    )
}

/// Its answer came, `ms` after it was sent (`info`).
pub fn answered(source: Source, status: u16, ms: u64) -> String {
    format!("azmi: {source}: HTTP {status} in {ms} ms")
}

/// No answer: a transport failure after `ms` (`warning`).
pub fn no_response(source: Source, ms: u64, detail: &str) -> String {
    format!("azmi: {source}: no response in {ms} ms: {detail}")
}

/// A retry wait of `ms` (`info`).
pub fn waiting(source: Source, ms: u64, retries: u32) -> String {
    format!("azmi: {source}: waiting {ms} ms (retry {retries} or timeout)")
}

/// A proactive refresh starts (`info`).
pub fn refreshing(source: Source) -> String {
    format!("azmi: {source}: refreshing the cached token")
}

/// A cache hit (`verbose`).
pub fn hit(scope: &str, source: Source) -> String {
    format!("azmi: cache hit for {scope} ({source})")
}

/// A cache miss (`verbose`).
pub fn miss(scope: &str) -> String {
    format!("azmi: cache miss for {scope}")
}
