//! The host side of the guest's `wasi:http` requests: each one is checked against the
//! [`Egress`] policy, then answered by the emulator in memory or sent over the network with
//! the guest's timeouts and a cap on the response body.

use super::Egress;
use super::allowlist::with_port;
use super::tls::refusal;
use crate::emulator::{self, Emulator};
use azmi::proto::MAX_RESPONSE_BYTES;
use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Either, Full, Limited};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// A destination the host refused, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// `scheme://authority/path?query` as the guest asked.
    pub url: String,
}

/// The `WasiHttpHooks` for a guest: routes by [`Egress`] and logs refusals.
pub struct Hooks {
    egress: Egress,
    refused: Arc<Mutex<Vec<Refused>>>,
}

impl Hooks {
    /// Hooks for `egress`; refusals are appended to `refused`.
    pub fn new(egress: Egress, refused: Arc<Mutex<Vec<Refused>>>) -> Self {
        Self { egress, refused }
    }
}

type Sent = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Sent,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Sent), HttpError>> + Send> {
        let egress = self.egress.clone();
        let refused = self.refused.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let scheme = uri.scheme_str().unwrap_or("http").to_string();
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default();
            let allowed = match &egress {
                Egress::Emulator { authorities, .. } => authorities.permits(&scheme, &authority),
                Egress::Network { allow, .. } => allow.permits(&scheme, &authority),
            };
            if !allowed {
                refused.lock().unwrap().push(Refused {
                    url: uri.to_string(),
                });
                return Err(HttpError::HttpRequestDenied);
            }
            let response = match egress {
                Egress::Emulator { emulator, .. } => {
                    let response = serve_in_memory(&emulator, request, options).await?;
                    let done: Sent = Box::new(async { Ok(()) });
                    let body = |b: InMemoryBody| {
                        b.map_err(|e| HttpError::InternalError(Some(e.to_string())))
                            .boxed_unsync()
                    };
                    return Ok((response.map(body), done));
                }
                Egress::Network { .. } => {
                    let tls = egress.tls_for(&scheme, &authority);
                    let address = egress.connect_address(&scheme, &authority);
                    send_network(request, options, &address, &authority, tls).await?
                }
            };
            let done: Sent = Box::new(async { Ok(()) });
            Ok((
                response.map(|b| b.map_err(|never| match never {}).boxed_unsync()),
                done,
            ))
        })
    }
}

/// Timeouts the guest asked for, with wasmtime's 600 s default when unset.
fn timeouts(options: Option<RequestOptions>) -> (Duration, Duration, Duration) {
    let o = options.unwrap_or_default();
    let d = Duration::from_secs(600);
    (
        o.connect_timeout.unwrap_or(d),
        o.first_byte_timeout.unwrap_or(d),
        o.between_bytes_timeout.unwrap_or(d),
    )
}

/// A whole body, or one the emulator trickles a byte at a time ([`emulator::Fault::Trickle`]).
type InMemoryBody = Either<Full<Bytes>, Channel<Bytes>>;

async fn serve_in_memory(
    emulator: &Emulator,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<InMemoryBody>, HttpError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let reply = emulator.handle(emulator::Request::from_parts(
        parts.method.as_str(),
        &target,
        headers,
        body,
    ));
    if let Some(delay) = reply.delay {
        // A delay past the guest's first-byte timeout ends at that timeout, as on a socket
        // (tests run this on paused tokio time, so nobody waits for it).
        let (_, first_byte, _) = timeouts(options);
        if delay >= first_byte {
            tokio::time::sleep(first_byte).await;
            return Err(HttpError::ConnectionReadTimeout);
        }
        tokio::time::sleep(delay).await;
    }
    let mut builder = http::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    let body = match reply.trickle {
        None => Either::Left(Full::new(Bytes::from(reply.body))),
        Some(every) => {
            let (mut sender, body) = Channel::new(1);
            tokio::spawn(async move {
                for byte in reply.body {
                    tokio::time::sleep(every).await;
                    if sender.send_data(Bytes::from(vec![byte])).await.is_err() {
                        return; // the guest dropped the body
                    }
                }
            });
            Either::Right(body)
        }
    };
    builder
        .body(body)
        .map_err(|e| HttpError::InternalError(Some(e.to_string())))
}

async fn send_network(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    address: &str,
    authority: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<http::Response<Full<Bytes>>, HttpError> {
    let (connect_timeout, first_byte, between_bytes) = timeouts(options);
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
            _ => HttpError::Connect(e),
        })?;
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut outgoing = http::Request::from_parts(parts, body);
    *outgoing.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let response = if let Some(tls) = tls {
        // The name asked for, whatever socket `address` is.
        let host_port = with_port(authority, "https");
        let host = host_port
            .rsplit_once(':')
            .map_or(host_port.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let stream = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|e| tls_error(&e))?;
        exchange(TokioIo::new(stream), outgoing, first_byte, between_bytes).await?
    } else {
        exchange(TokioIo::new(tcp), outgoing, first_byte, between_bytes).await?
    };
    Ok(response)
}

/// The guest's error for a failed TLS handshake, naming why.
///
/// wasi:http 0.2's `tls-certificate-error` carries no text, so a refused certificate is
/// reported as `tls-alert-received` with the alert rustls sends the server for that refusal
/// (e.g. 42 `bad_certificate`) and, as its message, webpki's reason ([`refusal`]): the one
/// error code through which the guest can tell the caller why. Any other rustls error (an
/// alert the server sent keeps its id) travels the same way with rustls's text; an I/O
/// failure during the handshake is a `tls-protocol-error`.
fn tls_error(error: &std::io::Error) -> HttpError {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return HttpError::TlsProtocolError;
    };
    let alert_id = match tls {
        rustls::Error::InvalidCertificate(certificate) => Some(u8::from(
            rustls::AlertDescription::from(certificate.clone()),
        )),
        rustls::Error::AlertReceived(alert) => Some(u8::from(*alert)),
        _ => None,
    };
    HttpError::TlsAlertReceived {
        alert_id,
        alert_message: Some(refusal(tls)),
    }
}

/// One HTTP/1 exchange; the body is read whole (MI responses are small), capped.
async fn exchange<S>(
    io: S,
    request: http::Request<WasiBody>,
    first_byte: Duration,
    between_bytes: Duration,
) -> Result<http::Response<Full<Bytes>>, HttpError>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(
        between_bytes,
        Limited::new(body, MAX_RESPONSE_BYTES + 1).collect(),
    )
    .await
    .map_err(|_| HttpError::ConnectionReadTimeout)?
    .map_err(|_| HttpError::HttpResponseBodySize(None))?
    .to_bytes();
    driver.abort();
    Ok(http::Response::from_parts(parts, Full::new(body)))
}
