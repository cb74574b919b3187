//! The workload-identity leg: the federated token (a Kubernetes service-account JWT) is read
//! from `AZURE_FEDERATED_TOKEN_FILE` — or reused, when the credential read it less than
//! [`crate::proto::workload::ASSERTION_MAX_AGE_MS`] ago from the same file — and completes the
//! `client_credentials` form posted to Entra ([`crate::proto::request::workload_body`]).

use super::{Acquisition, Stage};
use crate::proto::files::FileRead;
use crate::proto::http::HttpResponse;
use crate::proto::request::workload_body;
use crate::proto::secret::Secret;
use crate::proto::source::Source;
use crate::proto::time::UnixMillis;
use crate::proto::workload::{
    AADSTS_ASSERTION_EXPIRED, ASSERTION_MAX_BYTES, assertion, names_aadsts,
};

/// What workload identity's fetch needs besides the request.
#[derive(Clone, Debug)]
pub(crate) struct WorkloadLeg {
    /// The application (client) id the assertion is exchanged for.
    pub client_id: String,
    /// The scope, sent as given (`/.default` kept).
    pub scope: String,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file: String,
    /// A federated token the credential read recently from the same file.
    pub cached_assertion: Option<Secret>,
    /// The environment credential's certificate: `token_file` is then
    /// `AZURE_CLIENT_CERTIFICATE_PATH` and the assertion is signed here from its contents.
    #[cfg(feature = "client-certificate")]
    pub certificate: Option<CertificateLeg>,
}

/// What signing a certificate assertion needs besides the file (see
/// [`crate::proto::certificate`]).
#[cfg(feature = "client-certificate")]
#[derive(Clone, Debug)]
pub(crate) struct CertificateLeg {
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    pub password: Option<Secret>,
    /// The exact token URL: the assertion's `aud`.
    pub audience: String,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`.
    pub send_chain: bool,
    /// The host's random bytes for this fetch; each attempt derives its own `jti` and signer
    /// seed from them (SHA-256 with the attempt number), so no two assertions repeat.
    pub random: [u8; 16],
}

/// A federated token read during a fetch, for the credential to keep.
#[derive(Clone, Debug)]
pub(crate) struct AssertionRead {
    /// The file it came from.
    pub path: String,
    /// The token (trimmed).
    pub token: Secret,
    /// When it was read.
    pub read_at: UnixMillis,
}

impl Acquisition {
    /// Sends with the kept assertion, or reads the file first.
    pub(super) fn begin_workload(&mut self) {
        let Some(leg) = &self.workload else {
            return self.finish(Err(crate::proto::Error::internal(
                "a workload-identity fetch without its settings",
            )));
        };
        match &leg.cached_assertion {
            Some(assertion) => {
                let assertion = assertion.0.clone();
                self.send_workload(&assertion);
            }
            None => {
                #[cfg(feature = "client-certificate")]
                let max_len = match leg.certificate {
                    Some(_) => crate::proto::certificate::CERTIFICATE_MAX_BYTES,
                    None => ASSERTION_MAX_BYTES,
                };
                #[cfg(not(feature = "client-certificate"))]
                let max_len = ASSERTION_MAX_BYTES;
                let read = FileRead {
                    path: leg.token_file.clone(),
                    max_len,
                    follow_symlinks: true,
                };
                self.read(read, Stage::Assertion);
            }
        }
    }

    /// The federated token file's contents (or the certificate file's), read at `now`.
    pub(super) fn on_assertion(&mut self, now: UnixMillis, contents: &[u8]) {
        #[cfg(feature = "client-certificate")]
        if let Some(signed) = self.sign_certificate(now, contents) {
            return match signed {
                Ok(assertion) => self.send_workload(&assertion.0),
                Err(error) => self.finish(Err(error)),
            };
        }
        match assertion(contents) {
            Ok(token) => {
                let path = self
                    .workload
                    .as_ref()
                    .map(|leg| leg.token_file.clone())
                    .unwrap_or_default();
                self.report.assertion = Some(AssertionRead {
                    path,
                    token: Secret(token.clone()),
                    read_at: now,
                });
                self.send_workload(&token);
            }
            Err(error) => self.finish(Err(error)),
        }
    }

    /// True when Entra refused the federated token as expired (AADSTS700024, matched
    /// exactly) and the fetch sent the credential's kept copy: that copy is dropped and the
    /// file read again, once, in this same fetch. Any AADSTS700024 also tells the credential
    /// to drop its copy (the [`crate::proto::acquisition::Report`]).
    pub(super) fn stale_assertion_refused(&mut self, response: &HttpResponse) -> bool {
        if self.key.source != Source::WorkloadIdentity
            || self.stage != Stage::Token
            || !names_aadsts(
                &String::from_utf8_lossy(&response.body),
                AADSTS_ASSERTION_EXPIRED,
            )
        {
            return false;
        }
        self.report.assertion_rejected = true;
        self.report.assertion = None;
        self.workload
            .as_mut()
            .is_some_and(|leg| leg.cached_assertion.take().is_some())
    }

    /// For the environment credential's certificate: the assertion signed from the file's
    /// `contents` at `now`, fresh for this attempt. `None` for workload identity.
    #[cfg(feature = "client-certificate")]
    fn sign_certificate(
        &self,
        now: UnixMillis,
        contents: &[u8],
    ) -> Option<Result<Secret, crate::proto::Error>> {
        use sha2::Digest;
        let leg = self.workload.as_ref()?;
        let certificate = leg.certificate.as_ref()?;
        let derive = |label: &[u8]| {
            let mut hash = sha2::Sha256::new();
            hash.update(certificate.random);
            hash.update(self.retries.to_le_bytes());
            hash.update(label);
            <[u8; 32]>::from(hash.finalize())
        };
        let jti = derive(b"jti");
        let input = crate::proto::certificate::CertificateInput {
            file: contents,
            password: certificate.password.as_ref(),
            client_id: &leg.client_id,
            audience: &certificate.audience,
            now_secs: now.as_secs(),
            jti_random: jti[..16].try_into().unwrap_or_default(),
            signer_seed: derive(b"signer"),
            send_chain: certificate.send_chain,
        };
        Some(crate::proto::certificate::client_assertion(&input))
    }

    fn send_workload(&mut self, assertion: &str) {
        let Some(leg) = &self.workload else { return };
        let mut request = self.request.clone();
        request.body = workload_body(&leg.client_id, &leg.scope, assertion);
        self.secrets.push(Secret(assertion.to_string()));
        self.send(request, Stage::Token);
    }
}
