//! The host's outbound-HTTP policy for the plugin: only the managed-identity endpoints are
//! reachable, and every request gets bounded timeouts, whatever the guest asks for.

use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The variables that name a managed-identity endpoint (azmi's README, "Support matrix").
const ENDPOINT_VARIABLES: [&str; 4] = [
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_AUTHORITY_HOST",
];

/// Where IMDS lives on every Azure VM.
pub const IMDS: &str = "http://169.254.169.254";

/// The `scheme://host:port` origins the plugin may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    origins: Vec<String>,
}

impl Allowlist {
    /// IMDS plus the endpoints named by the managed-identity variables in `env`.
    pub fn for_managed_identity(env: &[(String, String)]) -> Self {
        let mut list = Allowlist::default();
        list.allow(IMDS);
        for (name, value) in env {
            if ENDPOINT_VARIABLES.contains(&name.as_str()) && !value.is_empty() {
                list.allow(value);
            }
        }
        list
    }

    /// Allows the origin of `url` (e.g. `http://127.0.0.1:8080/msi/token` allows
    /// `http://127.0.0.1:8080`). A value that is not an absolute URL is ignored.
    pub fn allow(&mut self, url: &str) {
        if let Some(origin) = url.parse().ok().as_ref().and_then(origin)
            && !self.origins.contains(&origin)
        {
            self.origins.push(origin);
        }
    }

    /// True when requests to `uri` may leave the host.
    pub fn permits(&self, uri: &http::Uri) -> bool {
        origin(uri).is_some_and(|o| self.origins.contains(&o))
    }
}

/// `scheme://host:port`, lower case, with the scheme's default port filled in.
fn origin(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some(format!("{scheme}://{host}:{port}"))
}

/// Upper bounds for the guest's per-request timeouts (unset ones get the bound itself;
/// wasmtime's own default is 600 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// Waiting for the response head.
    pub first_byte: Duration,
    /// Waiting between frames of the response body.
    pub between_bytes: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 30 s to the first byte (IMDS can be slow to mint), 10 s between bytes.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(30),
            between_bytes: Duration::from_secs(10),
        }
    }
}

impl Timeouts {
    /// The guest's options, each capped at this bound.
    fn apply(self, guest: Option<RequestOptions>) -> RequestOptions {
        let guest = guest.unwrap_or_default();
        let cap =
            |asked: Option<Duration>, bound: Duration| Some(asked.map_or(bound, |a| a.min(bound)));
        RequestOptions {
            connect_timeout: cap(guest.connect_timeout, self.connect),
            first_byte_timeout: cap(guest.first_byte_timeout, self.first_byte),
            between_bytes_timeout: cap(guest.between_bytes_timeout, self.between_bytes),
        }
    }
}

/// The plugin's [`WasiHttpHooks`]: refuses what the [`Allowlist`] does not name, then lets
/// wasmtime-wasi-http's `default_send_request` do the HTTP(S) with capped [`Timeouts`].
pub struct Egress {
    allow: Allowlist,
    timeouts: Timeouts,
    sent: Arc<AtomicUsize>,
}

impl Egress {
    /// A policy; `sent` counts the requests that were let through.
    pub fn new(allow: Allowlist, timeouts: Timeouts, sent: Arc<AtomicUsize>) -> Self {
        Egress {
            allow,
            timeouts,
            sent,
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        if !self.allow.permits(request.uri()) {
            // The guest sees `HTTP-request-denied` and reports which endpoint was refused.
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        let options = self.timeouts.apply(options);
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}
