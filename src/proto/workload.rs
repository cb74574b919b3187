//! AKS workload identity: the Entra client-assertion request (§10, §14 rules 3 and 29).

use super::error::{Error, ErrorKind};
use super::source::Source;

/// The federated token is re-read at most this often (JS's 5 min; Kubernetes rotates it at
/// 80 % of a ≥ 1 h lifetime, so a 5-minute-old copy is always still valid; §10.2).
pub const ASSERTION_MAX_AGE_MS: u64 = 5 * 60 * 1000;
/// Largest federated token accepted (service-account JWTs are ~1–2 KB).
pub const ASSERTION_MAX_BYTES: usize = 64 * 1024;
/// RFC 7523 client-assertion type (§10.3).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn configuration(message: String) -> Error {
    Error::new(
        ErrorKind::Configuration,
        Some(Source::WorkloadIdentity),
        message,
    )
}

/// Validates `AZURE_TENANT_ID`: letters, digits, `-` and `.` only (JS, Go and Python agree).
pub fn check_tenant(tenant: &str) -> Result<(), Error> {
    if tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        Ok(())
    } else {
        Err(configuration(
            "workload identity: AZURE_TENANT_ID may contain only letters, digits, '-' and '.'; set it to your tenant id (a GUID) or domain".into(),
        ))
    }
}

/// The token endpoint path `/{tenant}/oauth2/v2.0/token` under the authority's path.
pub fn token_path(authority_path: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority_path.trim_end_matches('/')
    )
}

/// The federated token from the file's `contents`: UTF-8, trimmed, non-empty (JS's rule).
pub fn assertion(contents: &[u8]) -> Result<String, Error> {
    let text = core::str::from_utf8(contents)
        .map_err(|_| configuration("workload identity: AZURE_FEDERATED_TOKEN_FILE is not UTF-8 text; it must hold the projected service-account token".into()))?
        .trim();
    if text.is_empty() {
        return Err(configuration(
            "workload identity: AZURE_FEDERATED_TOKEN_FILE is empty; check the pod's azure-identity-token projection".into(),
        ));
    }
    Ok(text.to_string())
}

/// The fix for Entra's common workload-identity failures, by AADSTS code (§10.3).
pub fn aadsts_hint(description: &str) -> Option<&'static str> {
    const HINTS: [(&str, &str); 4] = [
        (
            "AADSTS700024",
            "the federated token has expired; check that the kubelet still rotates AZURE_FEDERATED_TOKEN_FILE",
        ),
        (
            "AADSTS70021",
            "no federated credential on the identity matches this service account's issuer and subject; add one",
        ),
        (
            "AADSTS700016",
            "the client id is not an application in this tenant; check AZURE_CLIENT_ID and AZURE_TENANT_ID",
        ),
        (
            "AADSTS90002",
            "the tenant does not exist; check AZURE_TENANT_ID",
        ),
    ];
    HINTS
        .iter()
        .find(|(code, _)| description.contains(code))
        .map(|(_, hint)| *hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_characters() {
        assert!(check_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
        assert!(check_tenant("contoso.onmicrosoft.com").is_ok());
        for bad in ["a/b", "a b", "x?y", "../x"] {
            assert_eq!(
                check_tenant(bad).unwrap_err().kind(),
                ErrorKind::Configuration
            );
        }
    }

    #[test]
    fn assertion_is_trimmed_and_never_empty() {
        assert_eq!(assertion(b"  eyJ.a.b\n").unwrap(), "eyJ.a.b");
        assert!(assertion(b" \n").is_err());
        assert!(assertion(b"\xff").is_err());
    }

    #[test]
    fn token_path_joins_authority_path() {
        assert_eq!(token_path("/", "t"), "/t/oauth2/v2.0/token");
        assert_eq!(token_path("/base/", "t"), "/base/t/oauth2/v2.0/token");
    }
}
