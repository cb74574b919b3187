//! A minimal HTTP/1.1 client for the tests: one request per connection, or a kept-alive
//! connection for latency measurements.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What came back.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    /// Every response header, one `name: value` line each.
    pub headers: String,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A kept-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection { sender, addr })
    }

    /// Sends one request and reads the whole reply; also returns how long it took.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(Reply, Duration)> {
        let mut request = hyper::Request::builder().method(method).uri(path);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            request = request.header("host", self.addr.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(std::io::Error::other)?;
        let start = Instant::now();
        self.sender.ready().await.map_err(std::io::Error::other)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let elapsed = start.elapsed();
        Ok((
            Reply {
                status,
                content_type,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            elapsed,
        ))
    }
}

/// One request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut connection = Connection::open(addr).await.expect("connecting to Envoy");
    connection
        .send(method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .0
}

/// `GET path` on a fresh connection, for polling: errors are returned, not panicked on.
pub async fn get_once(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut connection = Connection::open(addr).await?;
    let (reply, _) = connection.send("GET", path, &[], "").await?;
    Ok((reply.status, reply.body))
}
