//! The component's network and clock: `wasi:http` requests with per-attempt timeouts,
//! `wasi:clocks` time and sleeps.
//!
//! The host enforces the per-phase timeouts (connect, first byte, between body chunks); they
//! do not bound a whole response — a body trickled one chunk just inside the between-bytes
//! timeout keeps a read going forever. So the component also bounds the whole exchange
//! (headers and complete body) by the request's `total_ms` on a `wasi:clocks/monotonic-clock`
//! timer of its own, waiting on the response and on the timer together with `wasi:io/poll`.

use crate::proto::{
    HttpRequest, HttpResponse, MAX_RESPONSE_BYTES, Method, Scheme, TransportError,
    TransportErrorKind, UnixMillis,
};
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingResponse, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme as WasiScheme,
};
use wasi::io::poll;
use wasi::io::streams::StreamError;

/// Largest chunk `blocking-write-and-flush` accepts (wasi:io contract).
const WRITE_CHUNK: usize = 4096;

/// The current wall-clock time from `wasi:clocks/wall-clock`.
pub(crate) fn wall_clock_now() -> UnixMillis {
    let t = wasi::clocks::wall_clock::now();
    UnixMillis(t.seconds * 1000 + u64::from(t.nanoseconds) / 1_000_000)
}

/// Blocks until `deadline` (wall clock) on a monotonic-clock timer.
pub(crate) fn sleep_until(deadline: UnixMillis) {
    let ms = wall_clock_now().millis_until(deadline);
    if ms > 0 {
        wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
    }
}

/// Sends `request` over `wasi:http` with its per-attempt timeouts and reads the response.
pub(crate) fn send(request: &HttpRequest) -> Result<HttpResponse, TransportError> {
    let other = |what: &str| TransportError::new(TransportErrorKind::Other, what.to_string());
    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.as_bytes().to_vec()))
        .collect();
    if !request.body.is_empty() {
        // Framing the form posts with a length, not chunked encoding.
        entries.push((
            "Content-Length".to_string(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let headers = Fields::from_list(&entries).map_err(|_| other("the host refused a header"))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
    };
    let scheme = match request.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    outgoing
        .set_method(&method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(&request.authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(&request.path_and_query)))
        .map_err(|()| other("the host refused the request line"))?;
    let body = outgoing
        .body()
        .map_err(|()| other("no request body handle"))?;
    let options = RequestOptions::new();
    let t = request.timeouts;
    // A host that cannot enforce a timeout says so; the core's deadline is the backstop.
    let _ = options.set_connect_timeout(Some(t.connect_ms * 1_000_000));
    let _ = options.set_first_byte_timeout(Some(t.first_byte_ms * 1_000_000));
    let _ = options.set_between_bytes_timeout(Some(t.between_bytes_ms * 1_000_000));
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(transport)?;
    if !request.body.is_empty() {
        let stream = body.write().map_err(|()| other("no request body stream"))?;
        for chunk in request.body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|_| other("writing the request body failed"))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(body, None).map_err(transport)?;
    let deadline = Deadline::after(t.total_ms);
    let ready = {
        let pollable = future.subscribe();
        deadline.wait(&pollable)
    };
    if !ready {
        return Err(deadline.expired());
    }
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(transport(code)),
        Some(Err(())) | None => return Err(other("the response future failed")),
    };
    read_response(response, &deadline)
}

/// The whole-exchange bound: a monotonic-clock instant and the budget it came from.
struct Deadline {
    at: monotonic_clock::Instant,
    total_ms: u64,
}

impl Deadline {
    fn after(total_ms: u64) -> Self {
        let at = monotonic_clock::now().saturating_add(total_ms.saturating_mul(1_000_000));
        Self { at, total_ms }
    }

    /// Blocks until `pollable` is ready (true) or the deadline passes (false).
    fn wait(&self, pollable: &poll::Pollable) -> bool {
        if pollable.ready() {
            return true;
        }
        let timer = monotonic_clock::subscribe_instant(self.at);
        let ready = poll::poll(&[pollable, &timer]);
        ready.contains(&0)
    }

    fn expired(&self) -> TransportError {
        TransportError::new(
            TransportErrorKind::Timeout,
            format!("the whole response took longer than {} ms", self.total_ms),
        )
    }
}

fn read_response(
    response: IncomingResponse,
    deadline: &Deadline,
) -> Result<HttpResponse, TransportError> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| TransportError::new(TransportErrorKind::Other, "no response body"))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| TransportError::new(TransportErrorKind::Other, "no body stream"))?;
        loop {
            // Checked before every read too: a host whose reads block until a chunk arrives
            // (jco's preview2-shim) never lets the wait below see the timer.
            if monotonic_clock::now() >= deadline.at {
                return Err(deadline.expired());
            }
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => {
                    let ready = {
                        let pollable = stream.subscribe();
                        deadline.wait(&pollable)
                    };
                    if !ready {
                        return Err(deadline.expired());
                    }
                }
                Ok(chunk) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_RESPONSE_BYTES {
                        return Err(TransportError::new(
                            TransportErrorKind::ResponseTooLarge,
                            format!("more than {MAX_RESPONSE_BYTES} bytes"),
                        ));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Other,
                        format!("reading the response failed: {}", e.to_debug_string()),
                    ));
                }
            }
        }
    }
    drop(incoming);
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn transport(code: ErrorCode) -> TransportError {
    use TransportErrorKind as K;
    let kind = match &code {
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => K::Dns,
        ErrorCode::ConnectionRefused
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable => K::ConnectionRefused,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => K::Timeout,
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => K::Tls,
        ErrorCode::HttpRequestDenied => K::Denied,
        ErrorCode::HttpResponseBodySize(_) => K::ResponseTooLarge,
        _ => K::Other,
    };
    TransportError::new(kind, describe(&code))
}

/// Short text for messages (`ErrorCode`'s `Debug` is verbose but secret-free).
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "connect timed out".into(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "response timed out".into()
        }
        ErrorCode::HttpRequestDenied => "destination not allowed by the host".into(),
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => "name resolution failed".into(),
        ErrorCode::DestinationNotFound => "destination not found".into(),
        ErrorCode::DestinationUnavailable | ErrorCode::DestinationIpUnroutable => {
            "destination unreachable".into()
        }
        ErrorCode::TlsCertificateError => "TLS certificate rejected".into(),
        // The only TLS error code with text: hosts put the reason a certificate was refused
        // here (the azmi host does; wasi:http 0.2's tls-certificate-error has no payload).
        ErrorCode::TlsAlertReceived(alert) => match &alert.alert_message {
            Some(text) if !text.is_empty() => format!("TLS failed: {text}"),
            _ => "TLS failed".into(),
        },
        ErrorCode::TlsProtocolError => "TLS failed".into(),
        ErrorCode::HttpResponseBodySize(_) => "response too large".into(),
        ErrorCode::InternalError(Some(text)) => text.clone(),
        _ => "transport error".into(),
    }
}
