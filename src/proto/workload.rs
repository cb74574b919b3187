//! AKS workload identity: the Entra client-assertion request.
//!
//! On AKS (and other federated Kubernetes) the pod gets a projected service-account token in
//! `AZURE_FEDERATED_TOKEN_FILE`, and Entra ID exchanges it for an access token of the
//! application named by `AZURE_CLIENT_ID` in `AZURE_TENANT_ID`. When this source is chosen over
//! the others is in the [`crate::proto::source`] detection table.
//!
//! # The token request
//!
//! An Entra ID v2 client-credentials grant with a client assertion (RFC 7523), as MSAL's
//! confidential client sends it ([`crate::proto::request::workload_body`]):
//!
//! ```text
//! POST {AZURE_AUTHORITY_HOST}/{AZURE_TENANT_ID}/oauth2/v2.0/token
//! Content-Type: application/x-www-form-urlencoded
//!
//! client_id=<client id>&scope=<the scope as given, /.default kept>
//! &grant_type=client_credentials
//! &client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//! &client_assertion=<the federated token>
//! ```
//!
//! * The **scope is sent as given** (v2 endpoint): no `/.default` stripping, unlike every
//!   managed-identity endpoint.
//! * The authority defaults to `https://login.microsoftonline.com` and must be `https`; any
//!   path in `AZURE_AUTHORITY_HOST` is kept in front of the tenant ([`token_path`]). azmi posts
//!   directly, without MSAL's authority-metadata or instance-discovery requests.
//! * The **tenant id** may contain only letters, digits, `-` and `.` ([`check_tenant`]; JS
//!   `checkTenantId`, Go `validTenantID` and Python `validate_tenant_id` agree), so it cannot
//!   change the path.
//! * The **client id** is a client-id selector if one is given, else `AZURE_CLIENT_ID`; object
//!   and resource ids are refused (Entra authenticates an application by client id).
//! * The **token is cached** like any other ([`crate::proto::cache`]). @azure/identity's
//!   `ManagedIdentityCredential` builds a new `WorkloadIdentityCredential` for every call on its
//!   token-exchange path, so it requests a token on every call.
//! * Common Entra failures get a fix in the message ([`aadsts_hint`]): AADSTS700024 (assertion
//!   expired or not yet valid), AADSTS70021 (no matching federated credential), AADSTS700016
//!   (unknown application), AADSTS90002 (unknown tenant).
//!
//! # The federated token file
//!
//! * Read as UTF-8, **trimmed**, and refused when empty ([`assertion`]) — @azure/identity's
//!   rule; Go and Python send it raw.
//! * Re-read at most every [`ASSERTION_MAX_AGE_MS`] (5 minutes, @azure/identity's interval;
//!   Go and Python use 10). Kubernetes rotates the token at 80 % of its lifetime and the
//!   shortest lifetime is one hour, so a copy up to 12 minutes old is still valid; reading it
//!   too rarely is what produces AADSTS700024. When Entra answers AADSTS700024 (assertion
//!   expired) anyway, the kept copy is dropped and, if the fetch had sent it, the file is read
//!   again and the request sent once more in the same fetch; a copy read fresh and still
//!   refused is the caller's error, and the next fetch reads the file again. AADSTS codes are
//!   matched exactly ([`names_aadsts`]). A different file path is read at once. The
//!   credential ([`crate::proto::ManagedIdentity`]) keeps the last copy. The file is read
//!   only when a token request is actually made (a cache hit reads nothing); a retry within
//!   one fetch starts over and reads it again unless the fetch began with a fresh copy.
//! * The host reads it with symbolic links followed (Kubernetes projects the file through a
//!   link) and at most [`ASSERTION_MAX_BYTES`].

use super::error::{Error, ErrorKind};
use super::source::Source;

/// The federated token is re-read at most this often (@azure/identity's 5 min; Kubernetes
/// rotates it at 80 % of a ≥ 1 h lifetime, so a 5-minute-old copy is always still valid).
pub(super) const ASSERTION_MAX_AGE_MS: u64 = 5 * 60 * 1000;
/// Largest federated token accepted (service-account JWTs are ~1–2 KB).
pub(super) const ASSERTION_MAX_BYTES: usize = 64 * 1024;
/// RFC 7523 client-assertion type.
pub(super) const CLIENT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn configuration(message: String) -> Error {
    Error::new(
        ErrorKind::Configuration,
        Some(Source::WorkloadIdentity),
        message,
    )
}

/// Validates `AZURE_TENANT_ID` for `source`: non-empty, letters, digits, `-` and `.` only
/// (JS, Go and Python agree), so it cannot change the token URL's path.
pub(super) fn check_tenant(source: Source, tenant: &str) -> Result<(), Error> {
    if !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Configuration,
            Some(source),
            format!(
                "{source}: AZURE_TENANT_ID may contain only letters, digits, '-' and '.'; set it to your tenant id (a GUID) or domain"
            ),
        ))
    }
}

/// The token endpoint path `/{tenant}/oauth2/v2.0/token` under the authority's path.
pub(super) fn token_path(authority_path: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority_path.trim_end_matches('/')
    )
}

/// The federated token from the file's `contents`: UTF-8, trimmed, non-empty (JS's rule).
pub(super) fn assertion(contents: &[u8]) -> Result<String, Error> {
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

/// Entra's "the client assertion is expired or not yet valid": the federated token this
/// credential kept is stale, so it is dropped and the file read again.
pub(super) const AADSTS_ASSERTION_EXPIRED: u32 = 700_024;

/// True when `text` names the Entra error `AADSTS<code>` exactly: the digits after
/// `AADSTS` are the whole code, so `AADSTS70021` is not found in `AADSTS700211: …`.
pub(super) fn names_aadsts(text: &str, code: u32) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("AADSTS") {
        let digits_at = from + at + "AADSTS".len();
        let digits = bytes[digits_at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 && text[digits_at..digits_at + digits].parse() == Ok(code) {
            return true;
        }
        from = digits_at;
    }
    false
}

/// The fix for Entra's common workload-identity failures, by AADSTS code (matched exactly,
/// [`names_aadsts`]).
pub(super) fn aadsts_hint(description: &str) -> Option<&'static str> {
    const HINTS: [(u32, &str); 4] = [
        (
            AADSTS_ASSERTION_EXPIRED,
            "the federated token has expired; check that the kubelet still rotates AZURE_FEDERATED_TOKEN_FILE",
        ),
        (
            70_021,
            "no federated credential on the identity matches this service account's issuer and subject; add one",
        ),
        (
            700_016,
            "the client id is not an application in this tenant; check AZURE_CLIENT_ID and AZURE_TENANT_ID",
        ),
        (90_002, "the tenant does not exist; check AZURE_TENANT_ID"),
    ];
    HINTS
        .iter()
        .find(|(code, _)| names_aadsts(description, *code))
        .map(|(_, hint)| *hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_match_exactly() {
        assert!(names_aadsts(
            "AADSTS70021: No matching federated identity",
            70_021
        ));
        assert!(!names_aadsts(
            "AADSTS700211: No matching federated identity record",
            70_021
        ));
        assert!(!names_aadsts("AADSTS7002: x", 70_021));
        assert!(names_aadsts(
            "x AADSTS1 then AADSTS700024: expired",
            700_024
        ));
        assert!(!names_aadsts("AADSTS", 0));
        assert!(!names_aadsts("AADSTS99999999999999999999999", 0));
        assert_eq!(aadsts_hint("AADSTS700211: something else"), None);
    }

    #[test]
    fn tenant_characters() {
        let wi = Source::WorkloadIdentity;
        assert!(check_tenant(wi, "72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
        assert!(check_tenant(wi, "contoso.onmicrosoft.com").is_ok());
        for bad in ["a/b", "a b", "x?y", "../x", ""] {
            assert_eq!(
                check_tenant(wi, bad).unwrap_err().kind(),
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
