//! A self-signed certificate for serving the emulator over HTTPS on loopback (Service Fabric
//! and the workload-identity authority are HTTPS endpoints).

use std::sync::Arc;

/// A generated certificate and key for `127.0.0.1` and `localhost`.
#[derive(Clone)]
pub struct TestCertificate {
    /// The certificate, PEM (what `SSL_CERT_FILE` points at).
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestCertificate {
    /// A fresh self-signed certificate valid for `127.0.0.1` and `localhost`.
    pub fn generate() -> anyhow::Result<Self> {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let certified = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            cert_pem: certified.cert.pem(),
            cert_der: certified.cert.der().to_vec(),
            key_der: certified.signing_key.serialize_der(),
        })
    }

    /// SHA-1 thumbprint of the certificate, 40 upper-case hex digits (the form of
    /// `IDENTITY_SERVER_THUMBPRINT`).
    pub fn sha1_thumbprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.cert_der);
        digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
    }

    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )?;
        Ok(Arc::new(config))
    }
}
