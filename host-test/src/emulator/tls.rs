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
    /// What it was made from, to sign others with it ([`TestCertificate::issue`]).
    params: rcgen::CertificateParams,
}

impl TestCertificate {
    /// A fresh self-signed certificate valid for `127.0.0.1` and `localhost` (no basic
    /// constraints, so WebPKI takes it as its own trust anchor and end-entity).
    pub fn generate() -> anyhow::Result<Self> {
        Self::make(&["127.0.0.1", "localhost"], false, None)
    }

    /// A self-signed CA certificate (`CA:TRUE`) for `names`, as `openssl req -x509` makes by
    /// default (plus the subject alternative names a TLS client checks).
    pub fn self_signed_ca(names: &[&str]) -> anyhow::Result<Self> {
        Self::make(names, true, None)
    }

    /// [`TestCertificate::self_signed_ca`] whose validity period ended in 2001.
    pub fn expired_ca(names: &[&str]) -> anyhow::Result<Self> {
        let mut params = Self::params(names, true)?;
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        Self::sign(params, rcgen::KeyPair::generate()?, None)
    }

    /// A leaf certificate for `names` signed by this one (its CA).
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<Self> {
        Self::make(names, false, Some(self))
    }

    /// Another self-signed certificate with this one's subject, names and key, but other bytes
    /// (another serial number): WebPKI takes either as the other's issuer, byte comparison
    /// tells them apart.
    pub fn twin(&self) -> anyhow::Result<Self> {
        let mut params = self.params.clone();
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x7a, 0x6d, 0x69]));
        Self::sign(
            params,
            rcgen::KeyPair::try_from(self.key_der.as_slice())?,
            None,
        )
    }

    fn params(names: &[&str], ca: bool) -> anyhow::Result<rcgen::CertificateParams> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("azmi test"),
        );
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        Ok(params)
    }

    fn make(names: &[&str], ca: bool, issuer: Option<&TestCertificate>) -> anyhow::Result<Self> {
        Self::sign(
            Self::params(names, ca)?,
            rcgen::KeyPair::generate()?,
            issuer,
        )
    }

    fn sign(
        params: rcgen::CertificateParams,
        key: rcgen::KeyPair,
        issuer: Option<&TestCertificate>,
    ) -> anyhow::Result<Self> {
        let cert = match issuer {
            None => params.self_signed(&key)?,
            Some(issuer) => {
                let issuer_key = rcgen::KeyPair::try_from(issuer.key_der.as_slice())?;
                params.signed_by(
                    &key,
                    &rcgen::Issuer::from_params(&issuer.params, issuer_key),
                )?
            }
        };
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            params,
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
