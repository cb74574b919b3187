//! The host's outbound-HTTP policy for the plugin: only the managed-identity endpoints are
//! reachable, and every request gets bounded timeouts, whatever the guest asks for —
//! including a bound on the whole response: wasi:http's per-phase timeouts never end a body
//! trickled one chunk just inside the between-bytes timeout, so the plugin reads the (small)
//! body itself, within [`Timeouts::whole_response`], before the guest sees it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
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

/// Entra's authority in the public cloud (the default chain's environment credential).
pub const ENTRA: &str = "https://login.microsoftonline.com";

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

    /// Allows Entra's authority, where the default chain's environment credential sends its
    /// client secret: `AZURE_AUTHORITY_HOST` in `env` (already allowed by
    /// [`Allowlist::for_managed_identity`]), else the public cloud's.
    pub fn allow_authority(&mut self, env: &[(String, String)]) {
        let set = env
            .iter()
            .any(|(name, value)| name == "AZURE_AUTHORITY_HOST" && !value.is_empty());
        if !set {
            self.allow(ENTRA);
        }
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
    /// The whole exchange: connecting, the response head and the complete body (also never
    /// more than the sum of the three bounds the guest asked for).
    pub whole_response: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 30 s to the first byte (IMDS can be slow to mint), 10 s between bytes,
    /// 45 s for all of it.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(30),
            between_bytes: Duration::from_secs(10),
            whole_response: Duration::from_secs(45),
        }
    }
}

/// Largest response body the plugin reads (managed-identity answers are a few KB).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

impl Timeouts {
    /// The guest's options, each capped at this bound, and the bound for the whole exchange.
    fn apply(self, guest: Option<RequestOptions>) -> (RequestOptions, Duration) {
        let guest = guest.unwrap_or_default();
        let cap = |asked: Option<Duration>, bound: Duration| asked.map_or(bound, |a| a.min(bound));
        let connect = cap(guest.connect_timeout, self.connect);
        let first_byte = cap(guest.first_byte_timeout, self.first_byte);
        let between_bytes = cap(guest.between_bytes_timeout, self.between_bytes);
        let options = RequestOptions {
            connect_timeout: Some(connect),
            first_byte_timeout: Some(first_byte),
            between_bytes_timeout: Some(between_bytes),
        };
        let whole = self
            .whole_response
            .min(connect + first_byte + between_bytes);
        (options, whole)
    }
}

/// Sends `request` and reads the whole response within `whole`, capped at
/// [`MAX_RESPONSE_BYTES`].
async fn exchange(
    request: http::Request<WasiBody>,
    options: RequestOptions,
    whole: Duration,
) -> Result<http::Response<Full<Bytes>>, HttpError> {
    let exchange = async {
        let (response, io) =
            wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
        // The connection's I/O runs beside the body read; it ends with the exchange.
        let driver = tokio::spawn(io);
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await;
        driver.abort();
        let body = body.map_err(|e| match e.downcast::<HttpError>() {
            Ok(code) => *code,
            Err(_) => HttpError::HttpResponseBodySize(None),
        })?;
        Ok(http::Response::from_parts(
            parts,
            Full::new(body.to_bytes()),
        ))
    };
    tokio::time::timeout(whole, exchange)
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
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
        let (options, whole) = self.timeouts.apply(options);
        Box::new(async move {
            let response = exchange(request, options, whole).await?;
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((
                response.map(|body| body.map_err(|never| match never {}).boxed_unsync()),
                done,
            ))
        })
    }
}
