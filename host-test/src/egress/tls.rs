//! TLS client settings for the guest's outbound requests: the Mozilla roots plus the PEM file
//! in `SSL_CERT_FILE`, or, for Service Fabric's endpoint, exactly the certificate whose SHA-1
//! thumbprint `IDENTITY_SERVER_THUMBPRINT` names.

use super::allowlist::with_port;
use azmi::proto::{Endpoint, var};
use std::sync::Arc;

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
