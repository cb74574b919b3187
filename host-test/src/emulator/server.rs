//! Loopback HTTP/1 transport for the emulator (hyper), with keep-alive and one task per
//! connection.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::{Emulator, Request};

/// Binds 127.0.0.1:`port` and spawns the accept loop. Connection tasks live in a [`JoinSet`]
/// owned by the accept task, so aborting the returned handle also closes every connection.
pub(super) async fn serve(
    emulator: Emulator,
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            let emulator = emulator.clone();
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                // A client failing the TLS handshake is not an emulator error.
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_connection(emulator, stream).await;
                        }
                    }
                    None => serve_connection(emulator, stream).await,
                }
            });
        }
    });
    Ok((addr, task))
}

/// Serves HTTP/1 with keep-alive on one connection, plain or TLS.
async fn serve_connection<S>(emulator: Emulator, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| respond(emulator.clone(), req));
    // A client hanging up mid-request is not an emulator error.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A whole body, or one trickled a byte at a time.
type Body = Either<Full<Bytes>, Channel<Bytes>>;

/// Converts one hyper request, lets the emulator answer it, applies the delay (or the trickle)
/// and converts back.
async fn respond(
    emulator: Emulator,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) => return Ok(plain(400, format!("could not read request body: {e}"))),
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect();
    let request = Request::from_parts(parts.method.as_str(), target, headers, body);
    let response = emulator.handle(request);
    if let Some(delay) = response.delay {
        tokio::time::sleep(delay).await;
    }
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = match response.trickle {
        None => Either::Left(Full::new(Bytes::from(response.body))),
        Some(every) => {
            builder = builder.header("content-length", response.body.len());
            let (mut sender, body) = Channel::new(1);
            tokio::spawn(async move {
                for byte in response.body {
                    tokio::time::sleep(every).await;
                    if sender.send_data(Bytes::from(vec![byte])).await.is_err() {
                        return; // the client hung up
                    }
                }
            });
            Either::Right(body)
        }
    };
    Ok(builder
        .body(body)
        .unwrap_or_else(|e| plain(500, format!("emulator produced an invalid response: {e}"))))
}

/// A plain-text response for transport-level problems.
fn plain(status: u16, text: String) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(Either::Left(Full::new(Bytes::from(text))));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    resp
}
