//! TLS client settings for the guest's outbound requests: the Mozilla roots plus the PEM file
//! in `SSL_CERT_FILE`, or, for Service Fabric's endpoint, exactly the certificate whose SHA-1
//! thumbprint `IDENTITY_SERVER_THUMBPRINT` names.
//!
//! # Which certificates are accepted
//!
//! * **Any endpoint but Service Fabric's**: rustls's WebPKI verifier (`rustls-webpki`) over the
//!   Mozilla roots plus every certificate in `SSL_CERT_FILE`: chain to a root, validity period,
//!   server name, handshake signature.
//! * **A certificate the user trusted byte for byte.** webpki refuses a certificate whose
//!   basic constraints say `CA:TRUE` when a server presents it as its own
//!   (`webpki::Error::CaUsedAsEndEntity`; RFC 5280 keeps CA and end-entity roles apart), and
//!   `openssl req -x509` makes exactly such certificates by default (its `v3_ca` section). A
//!   user who put that certificate in `SSL_CERT_FILE` asked for it to be trusted, and OpenSSL
//!   (so Node.js, Python and the SDKs built on them) accepts it as a chain of one. So when the
//!   server's certificate is byte-for-byte one of the `SSL_CERT_FILE` certificates and
//!   webpki's only objection is `CaUsedAsEndEntity`, it is accepted once rustls's
//!   `verify_server_name` agrees with the name asked for. webpki checks the validity period
//!   before the basic constraints, so an expired or not-yet-valid certificate is still refused
//!   with that reason; the handshake signature is verified as for any other certificate. The
//!   Mozilla roots never get this treatment, and a CA certificate not in the file is refused.
//! * **Service Fabric** (`IDENTITY_SERVER_THUMBPRINT`): only the certificate with that SHA-1
//!   thumbprint, on that endpoint's `host:port` only; see [`pinned_tls`].
//!
//! Every refusal names webpki's reason ([`refusal`]), so "certificate rejected" always says why.

use super::allowlist::with_port;
use azmi::proto::{Endpoint, var};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// TLS settings: the Mozilla roots, plus the PEM certificates in `SSL_CERT_FILE` when set
/// (each also trusted byte for byte as a server certificate; see the module docs).
pub fn tls_config(
    ssl_cert_file: Option<&std::path::Path>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut explicit = Vec::new();
    if let Some(path) = ssl_cert_file {
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| anyhow::anyhow!("SSL_CERT_FILE {}: {e}", path.display()))?
        {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("SSL_CERT_FILE {}: {e}", path.display()))?;
            roots.add(cert.clone())?;
            explicit.push(cert);
        }
        anyhow::ensure!(
            !explicit.is_empty(),
            "SSL_CERT_FILE {} holds no PEM certificate",
            path.display()
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let verifier = ExplicitTrust { webpki, explicit };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why a TLS handshake failed, in words: webpki's reason for a refused certificate (its error
/// name, e.g. `UnknownIssuer`, `CaUsedAsEndEntity`, or rustls's text for expiry and names),
/// with a hint for the common ones.
pub fn refusal(error: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(certificate) = error else {
        return error.to_string();
    };
    let reason = match certificate {
        CertificateError::Other(other) => other.0.to_string(),
        other => other.to_string(),
    };
    let hint = match certificate {
        CertificateError::UnknownIssuer => {
            ": no trusted root issued it (trust its CA, or the certificate itself, through SSL_CERT_FILE)"
        }
        CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => {
            ": webpki reads the names in subjectAltName only, never the subject's CN (with openssl req -x509, add -addext \"subjectAltName=DNS:<name>,IP:<address>\")"
        }
        CertificateError::Other(other) if is_ca_as_end_entity(other) => {
            ": the server presents a CA certificate (CA:TRUE) as its own; trust that exact certificate through SSL_CERT_FILE or give the server a leaf certificate"
        }
        _ => "",
    };
    format!("certificate rejected: {reason}{hint}")
}

fn is_ca_as_end_entity(other: &rustls::OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// webpki, plus: a server certificate byte-for-byte in `explicit` that webpki refuses only as
/// a CA used as an end-entity is accepted if its name matches (module docs).
#[derive(Debug)]
struct ExplicitTrust {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    explicit: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for ExplicitTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused =
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Ok(verified) => return Ok(verified),
                Err(refused) => refused,
            };
        let only_its_role = matches!(
            &refused,
            rustls::Error::InvalidCertificate(CertificateError::Other(other))
                if is_ca_as_end_entity(other)
        );
        if only_its_role
            && self
                .explicit
                .iter()
                .any(|c| c.as_ref() == end_entity.as_ref())
        {
            let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&parsed, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        Err(refused)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Service Fabric's pin, when `env` configures it: the `host:port` of `IDENTITY_ENDPOINT` and
/// TLS settings that accept only the certificate `IDENTITY_SERVER_THUMBPRINT` names. An
/// endpoint or thumbprint that does not parse gives no pin.
pub(super) fn service_fabric_pin(
    env: &[(String, String)],
) -> anyhow::Result<Option<(String, Arc<rustls::ClientConfig>)>> {
    if let (Some(endpoint), Some(raw)) = (
        super::value(env, var::IDENTITY_ENDPOINT),
        super::value(env, var::IDENTITY_SERVER_THUMBPRINT),
    ) && let (Ok(endpoint), Some(thumbprint)) = (
        Endpoint::parse(endpoint),
        azmi::proto::normalize_thumbprint(raw),
    ) {
        let authority = with_port(&endpoint.authority, endpoint.scheme.as_str());
        return Ok(Some((authority, pinned_tls(&thumbprint)?)));
    }
    Ok(None)
}

/// TLS settings that accept exactly the certificate whose SHA-1 thumbprint is `thumbprint`
/// (40 hex digits): how Service Fabric's self-signed endpoint is trusted, as MSAL Go and MSAL
/// Python do it. Handshake signatures are still verified; chain and name checks are not,
/// because the certificate is self-signed and identified by its hash alone. Any other
/// certificate, even one the Mozilla roots or `SSL_CERT_FILE` would accept, is refused.
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

/// The Service Fabric pin's refusal, as the reason a certificate was rejected.
#[derive(Debug)]
struct ThumbprintMismatch;

impl std::fmt::Display for ThumbprintMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the certificate's SHA-1 thumbprint is not IDENTITY_SERVER_THUMBPRINT")
    }
}

impl std::error::Error for ThumbprintMismatch {}

/// Accepts the one certificate whose SHA-1 matches (constant-time compare).
#[derive(Debug)]
struct ThumbprintVerifier {
    expected: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ThumbprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity);
        let differs = digest
            .as_ref()
            .iter()
            .zip(&self.expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs == 0 && digest.as_ref().len() == self.expected.len() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(ThumbprintMismatch)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
