//! Owned, lifetime-free HTTP values exchanged with adapters (no `http`-crate types).

/// Largest response body a host should hand to the core; a larger one is an invalid response.
/// MI token responses are under 8 KB; 1 MiB leaves room for any error page.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The request methods managed-identity sources use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// Every source but Cloud Shell and workload identity.
    Get,
    /// Cloud Shell and workload identity form posts.
    Post,
}

impl Method {
    /// The method token, e.g. `GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// URL scheme.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (IMDS, App Service, local agents).
    Http,
    /// TLS (Service Fabric, Entra).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One request header. `sensitive` values (secrets, keys) are redacted by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, as sent.
    pub name: &'static str,
    /// Header value.
    pub value: String,
    /// True for secrets: `X-IDENTITY-HEADER`, `secret`, `Authorization`.
    pub sensitive: bool,
}

impl core::fmt::Debug for Header {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let value = if self.sensitive {
            "<redacted>"
        } else {
            &self.value
        };
        write!(f, "{}: {}", self.name, value)
    }
}

/// A request the adapter must send, exactly as built.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Scheme.
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Body (empty for GET).
    pub body: Vec<u8>,
    /// True when the body carries a secret (workload identity's client assertion).
    pub body_sensitive: bool,
    /// Per-attempt timeouts the adapter must enforce.
    pub timeouts: Timeouts,
}

impl HttpRequest {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// `scheme://authority/path?query`, for messages (no secrets live in URLs).
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_and_query
        )
    }
}

impl core::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("HttpRequest");
        d.field("method", &self.method)
            .field("url", &self.url())
            .field("headers", &self.headers);
        if self.body_sensitive {
            d.field(
                "body",
                &format_args!("<{} bytes redacted>", self.body.len()),
            );
        } else {
            d.field("body", &String::from_utf8_lossy(&self.body));
        }
        d.field("timeouts", &self.timeouts).finish()
    }
}

/// A response as received. Header names may be in any case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body, at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no response arrived.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Nothing listens there (connection refused, unreachable).
    ConnectionRefused,
    /// No response in time after connecting.
    Timeout,
    /// The connection could not be made in time.
    ConnectTimeout,
    /// The name did not resolve.
    Dns,
    /// TLS failed (certificate, handshake).
    Tls,
    /// The host's egress policy refused the destination.
    Denied,
    /// The response body exceeded [`MAX_RESPONSE_BYTES`].
    ResponseTooLarge,
    /// The connection broke mid-exchange, or anything else.
    Other,
}

/// A transport failure reported by the adapter. `detail` must not contain secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The host's description, for messages.
    pub detail: String,
}

impl TransportError {
    /// A transport error of `kind`.
    pub fn new(kind: TransportErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// Per-attempt timeouts, enforced by the host (the values and their reasons: the `spec` module docs, "Timeouts").
///
/// The core hands each request out with every field already cut to what is left of the
/// call's deadline (and, for a refresh, of the cached token's usable life), so a host that
/// enforces these numbers holds the deadline on the wire, not only after the answer comes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect_ms: u64,
    /// From request sent to response headers.
    pub first_byte_ms: u64,
    /// Between response body chunks.
    pub between_bytes_ms: u64,
    /// The whole exchange: connect, headers and the complete body. The per-phase timers
    /// alone do not bound it (a body trickled one chunk per `between_bytes_ms` resets the
    /// timer forever), so a host must also bound the whole response by this.
    pub total_ms: u64,
}

impl Timeouts {
    /// Phase timeouts whose whole-exchange bound is their sum.
    pub const fn phases(connect_ms: u64, first_byte_ms: u64, between_bytes_ms: u64) -> Self {
        Self {
            connect_ms,
            first_byte_ms,
            between_bytes_ms,
            total_ms: connect_ms + first_byte_ms + between_bytes_ms,
        }
    }

    /// These timeouts with no phase, and not the whole, longer than `left_ms` (at least 1 ms,
    /// so a host never reads 0 as "no timeout").
    pub fn cut_to(self, left_ms: u64) -> Self {
        let left = left_ms.max(1);
        Self {
            connect_ms: self.connect_ms.min(left),
            first_byte_ms: self.first_byte_ms.min(left),
            between_bytes_ms: self.between_bytes_ms.min(left),
            total_ms: self.total_ms.min(left),
        }
    }
}
