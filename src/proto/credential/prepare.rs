//! What a fetch carries besides the plain request: on Service Fabric, the token to revoke;
//! for workload identity, the federated token the credential already holds.
//!
//! # Claims, force refresh and revocation
//!
//! `force-refresh` and a claims challenge skip the cache (msal-node, MSAL Go and MSAL Python
//! do; @azure/identity passes neither claims nor capabilities to msal-node, so a revocation
//! challenge cannot be answered until the cached token ages out). On **Service Fabric** a
//! claims request also names the token to replace: `token_sha256_to_refresh` = lowercase hex
//! SHA-256 of the cached access token, and `xms_cc` = the client capabilities joined with
//! commas (e.g. `cp1`) — as msal-node and MSAL Python do for Service Fabric. `xms_cc` is not
//! sent to other sources, which do not document it (msal-node sends it everywhere).
//!
//! # Workload identity's federated token
//!
//! The credential keeps the last federated token it read, with its path and time, and reuses
//! it for five minutes ([`crate::proto::workload`] has the file rules); a different path is
//! read at once. The Entra token itself is cached like any other (the scope is sent as given).

use super::ManagedIdentity;
use crate::proto::acquisition::WorkloadLeg;
use crate::proto::cache::CacheKey;
use crate::proto::env::{EnvSnapshot, var};
use crate::proto::http::HttpRequest;
use crate::proto::secret::Secret;
use crate::proto::time::UnixMillis;
use crate::proto::workload::ASSERTION_MAX_AGE_MS;

impl ManagedIdentity {
    /// Names the cached token for Service Fabric to revoke, and the client capabilities.
    pub(super) fn add_revocation(
        &self,
        http: &mut HttpRequest,
        key: &CacheKey,
        capabilities: &[String],
    ) {
        use sha2::Digest;
        let mut extra = String::new();
        if let Some(old) = self.cache.peek(key) {
            let digest = sha2::Sha256::digest(old.secret().as_bytes());
            extra.push_str("&token_sha256_to_refresh=");
            for b in digest {
                extra.push_str(&format!("{b:02x}"));
            }
        }
        if !capabilities.is_empty() {
            extra.push_str("&xms_cc=");
            extra.push_str(&crate::proto::url::encode_value(&capabilities.join(",")));
        }
        http.path_and_query.push_str(&extra);
    }

    /// Workload identity's leg: the client id, the scope as given, and the federated token if
    /// it was read less than five minutes ago from the same file.
    pub(super) fn workload_leg(
        &self,
        now: UnixMillis,
        env: &EnvSnapshot,
        client_id: String,
        scope: &str,
    ) -> WorkloadLeg {
        let token_file = env.get(var::AZURE_FEDERATED_TOKEN_FILE).unwrap_or_default();
        let cached_assertion = self
            .assertion
            .as_ref()
            .filter(|a| a.path == token_file && a.read_at.millis_until(now) < ASSERTION_MAX_AGE_MS)
            .map(|a| Secret(a.token.0.clone()));
        WorkloadLeg {
            client_id,
            scope: scope.to_string(),
            token_file: token_file.to_string(),
            cached_assertion,
            #[cfg(feature = "client-certificate")]
            certificate: None,
        }
    }

    /// The environment credential's certificate leg: the file to read, the password, the
    /// token URL the assertion is addressed to, and this fetch's random bytes.
    #[cfg(feature = "client-certificate")]
    pub(super) fn certificate_leg(
        env: &EnvSnapshot,
        client_id: String,
        scope: &str,
        audience: String,
        random: [u8; 16],
    ) -> WorkloadLeg {
        use crate::proto::acquisition::CertificateLeg;
        let path = env
            .get(var::AZURE_CLIENT_CERTIFICATE_PATH)
            .unwrap_or_default();
        WorkloadLeg {
            client_id,
            scope: scope.to_string(),
            token_file: path.to_string(),
            cached_assertion: None,
            certificate: Some(CertificateLeg {
                password: env
                    .get(var::AZURE_CLIENT_CERTIFICATE_PASSWORD)
                    .map(|p| Secret(p.to_string())),
                audience,
                send_chain: crate::proto::certificate::send_certificate_chain(
                    env.get(var::AZURE_CLIENT_SEND_CERTIFICATE_CHAIN),
                ),
                random,
            }),
        }
    }
}
