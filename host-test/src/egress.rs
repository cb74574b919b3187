//! Where the guest's `wasi:http` requests go: the in-memory emulator (tests, demo) or the
//! network through an allowlist (the CLI). Every other destination is refused here, in the
//! host, whatever the guest asks for.

use crate::emulator::{self, Emulator};
use azmi::proto::{Endpoint, MAX_RESPONSE_BYTES, var};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// `host:port` pairs the guest may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    authorities: Vec<String>,
}

impl Allowlist {
    /// The endpoints named by the managed-identity variables in `env`, plus IMDS
    /// (design.md, CLI contract). Ports default per scheme.
    pub fn from_env(env: &[(String, String)]) -> Self {
        let mut list = Allowlist::default();
        list.allow("http://169.254.169.254");
        for name in [
            var::IDENTITY_ENDPOINT,
            var::MSI_ENDPOINT,
            var::AZURE_POD_IDENTITY_AUTHORITY_HOST,
            var::AZURE_AUTHORITY_HOST,
        ] {
            if let Some((_, value)) = env.iter().rev().find(|(k, v)| k == name && !v.is_empty()) {
                list.allow(value);
            }
        }
        if env
            .iter()
            .any(|(k, _)| k == var::AZURE_FEDERATED_TOKEN_FILE)
            && !env.iter().any(|(k, _)| k == var::AZURE_AUTHORITY_HOST)
        {
            list.allow(azmi::proto::DEFAULT_AUTHORITY_HOST);
        }
        list
    }

    /// Allows the authority of `url` (ignored if it does not parse).
    pub fn allow(&mut self, url: &str) {
        if let Ok(endpoint) = Endpoint::parse(url) {
            let authority = with_port(&endpoint.authority, endpoint.scheme.as_str());
            if !self.authorities.contains(&authority) {
                self.authorities.push(authority);
            }
        }
    }

    /// True when `authority` (`host[:port]`) may be reached with `scheme`.
    pub fn permits(&self, scheme: &str, authority: &str) -> bool {
        let authority = with_port(&authority.to_ascii_lowercase(), scheme);
        self.authorities.contains(&authority)
    }
}

fn with_port(authority: &str, scheme: &str) -> String {
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && !authority.ends_with(']');
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{}", if scheme == "https" { 443 } else { 80 })
    }
}

/// A destination the host refused, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// `scheme://authority/path?query` as the guest asked.
    pub url: String,
}

/// The routing policy for one guest.
#[derive(Clone)]
pub enum Egress {
    /// Serve requests to `authorities` from the emulator in memory; refuse the rest.
    Emulator {
        /// The emulator.
        emulator: Emulator,
        /// `host:port` values that reach it (e.g. `127.0.0.1:4010`).
        authorities: Allowlist,
    },
    /// Real HTTP(S) to allowed authorities only.
    Network {
        /// Allowed destinations.
        allow: Allowlist,
        /// TLS client settings (Mozilla roots plus `SSL_CERT_FILE`).
        tls: Arc<rustls::ClientConfig>,
        /// `host:port` → TLS settings pinned to a certificate thumbprint (Service Fabric).
        pins: Vec<(String, Arc<rustls::ClientConfig>)>,
    },
}

impl Egress {
    /// The CLI's policy for a managed-identity environment `env`: the allowlist of
    /// [`Allowlist::from_env`], the Mozilla roots plus `ssl_cert_file`, and Service Fabric's
    /// endpoint pinned to `IDENTITY_SERVER_THUMBPRINT` (that one authority only, §4.6).
    pub fn network(
        env: &[(String, String)],
        ssl_cert_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Egress> {
        let get = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let mut pins = Vec::new();
        if let (Some(endpoint), Some(raw)) = (
            get(var::IDENTITY_ENDPOINT),
            get(var::IDENTITY_SERVER_THUMBPRINT),
        ) && let (Ok(endpoint), Some(thumbprint)) = (
            Endpoint::parse(endpoint),
            azmi::proto::normalize_thumbprint(raw),
        ) {
            pins.push((
                with_port(&endpoint.authority, endpoint.scheme.as_str()),
                pinned_tls(&thumbprint)?,
            ));
        }
        Ok(Egress::Network {
            allow: Allowlist::from_env(env),
            tls: tls_config(ssl_cert_file)?,
            pins,
        })
    }
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
                    serve_in_memory(&emulator, request, options).await?
                }
                Egress::Network { tls, pins, .. } => {
                    let key = with_port(&authority.to_ascii_lowercase(), &scheme);
                    let tls = pins
                        .iter()
                        .find(|(a, _)| *a == key)
                        .map_or(tls, |(_, pinned)| pinned.clone());
                    send_network(request, options, &scheme, &authority, tls).await?
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

async fn serve_in_memory(
    emulator: &Emulator,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<Full<Bytes>>, HttpError> {
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
        // A delay past the guest's timeout is reported as that timeout at once: virtual
        // time, so no test waits for it.
        let (_, first_byte, _) = timeouts(options);
        if delay >= first_byte {
            return Err(HttpError::ConnectionReadTimeout);
        }
        tokio::time::sleep(delay).await;
    }
    let mut builder = http::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .map_err(|e| HttpError::InternalError(Some(e.to_string())))
}

async fn send_network(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    scheme: &str,
    authority: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<http::Response<Full<Bytes>>, HttpError> {
    let (connect_timeout, first_byte, between_bytes) = timeouts(options);
    let address = with_port(authority, scheme);
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(&address))
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
    let response = if scheme == "https" {
        let host = address
            .rsplit_once(':')
            .map_or(address.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let stream = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|_| HttpError::TlsCertificateError)?;
        exchange(TokioIo::new(stream), outgoing, first_byte, between_bytes).await?
    } else {
        exchange(TokioIo::new(tcp), outgoing, first_byte, between_bytes).await?
    };
    Ok(response)
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

/// TLS settings: the Mozilla roots, plus the PEM certificates in `SSL_CERT_FILE` when set.
pub fn tls_config(
    ssl_cert_file: Option<&std::path::Path>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ssl_cert_file {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| anyhow::anyhow!("SSL_CERT_FILE {}: {e}", path.display()))?
        {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("SSL_CERT_FILE {}: {e}", path.display()))?;
            roots.add(cert)?;
            added += 1;
        }
        anyhow::ensure!(
            added > 0,
            "SSL_CERT_FILE {} holds no PEM certificate",
            path.display()
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// TLS settings that accept exactly the certificate whose SHA-1 thumbprint is `thumbprint`
/// (40 hex digits): how Service Fabric's self-signed endpoint is trusted (MSAL Go / Python
/// pin it; §4.6). Handshake signatures are still verified; chain and name checks are not,
/// because the certificate is self-signed and identified by its hash alone.
pub fn pinned_tls(thumbprint: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let expected: Vec<u8> = (0..thumbprint.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&thumbprint[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(expected.len() == 20, "a SHA-1 thumbprint has 40 hex digits");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = ThumbprintVerifier {
        expected,
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts the one certificate whose SHA-1 matches (constant-time compare).
#[derive(Debug)]
struct ThumbprintVerifier {
    expected: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for ThumbprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity);
        let differs = digest
            .as_ref()
            .iter()
            .zip(&self.expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs == 0 && digest.as_ref().len() == self.expected.len() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
