//! The environment credential: a service principal configured in environment variables, the
//! first link of the default chain ([`crate::proto::chain`]).
//!
//! # Which configuration, in which order
//!
//! | order | credential | needs | azmi |
//! |---|---|---|---|
//! | 1 | client secret | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` | [`crate::proto::Source::ClientSecret`] |
//! | 2 | client certificate | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_CERTIFICATE_PATH` (+ `AZURE_CLIENT_CERTIFICATE_PASSWORD`, `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`) | [`crate::proto::Source::ClientCertificate`] |
//! | 3 | username and password | `AZURE_USERNAME`, `AZURE_PASSWORD` | refused, *unavailable*, saying why |
//!
//! * Secret before certificate before username/password, the first complete set wins: the
//!   order of @azure/identity's, azure-identity's (Python) and azidentity's (Go)
//!   `EnvironmentCredential`. Empty variables count as unset (JS and Go; Python counts an
//!   empty value as set and then fails to construct).
//! * **Incomplete configuration is unavailable**, naming the missing variables (Go's wording
//!   style; JS and Python only say "not fully configured"), so a chain moves on and the user
//!   learns what to set.
//! * **A present but invalid value stops the chain** as a configuration error: a tenant id
//!   with characters other than letters, digits, `-` and `.`, or an authority that is not
//!   `https://` (Python's effect; JS skips such a credential silently, which hides the typo).
//! * **Username/password is refused**: the resource-owner password flow cannot do MFA, which
//!   Entra now enforces for users, and every SDK marks it deprecated. Rather than ignoring
//!   the variables, the credential says so.
//! * **The token request** is `POST {authority}/{tenant}/oauth2/v2.0/token` with
//!   `grant_type=client_credentials`, `client_id`, `client_secret` and the scope as given,
//!   straight to the authority (no OpenID discovery document: msal-node also posts directly
//!   for the public clouds' hosts; `AZURE_AUTHORITY_HOST` names the cloud). The secret is
//!   read from the environment for every request and never kept. Nothing else is added
//!   (MSAL Go's `openid offline_access profile` scopes are not needed for an app token).
//! * Entra's errors are *authentication failed*; the common AADSTS codes get their fix in
//!   the message ([`aadsts_hint`]).

use super::env::{EnvSnapshot, var};
use super::error::{Error, ErrorKind};
use super::source::Source;
use super::workload::names_aadsts;

/// Which service principal the environment configures, or why none.
pub(super) fn environment_source(env: &EnvSnapshot) -> Result<Source, Error> {
    let missing = |names: &[&'static str]| -> Vec<&'static str> {
        names.iter().copied().filter(|n| !env.has(n)).collect()
    };
    let ids = [var::AZURE_TENANT_ID, var::AZURE_CLIENT_ID];
    if env.has(var::AZURE_CLIENT_SECRET) {
        return match missing(&ids).as_slice() {
            [] => Ok(Source::ClientSecret),
            absent => Err(incomplete(var::AZURE_CLIENT_SECRET, absent)),
        };
    }
    if env.has(var::AZURE_CLIENT_CERTIFICATE_PATH) {
        return match missing(&ids).as_slice() {
            [] => Ok(Source::ClientCertificate),
            absent => Err(incomplete(var::AZURE_CLIENT_CERTIFICATE_PATH, absent)),
        };
    }
    if env.has(var::AZURE_USERNAME) || env.has(var::AZURE_PASSWORD) {
        return Err(unavailable(
            "AZURE_USERNAME and AZURE_PASSWORD (a user's password) are not supported: that sign-in cannot do multi-factor authentication, which Entra ID requires of users, and every Azure SDK has deprecated it; use a service principal (AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH) or a managed identity",
        ));
    }
    let set: Vec<&str> = ids.iter().copied().filter(|n| env.has(n)).collect();
    Err(match set.as_slice() {
        [] => unavailable(
            "no service principal is configured (set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH)",
        ),
        set => unavailable(&format!(
            "incomplete configuration: only {} set; add AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
            list(set)
        )),
    })
}

/// The client-secret form: the scope is sent as given (`/.default` kept).
pub(super) fn client_secret_body(client_id: &str, secret: &str, scope: &str) -> Vec<u8> {
    super::url::form_body(&[
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
        ("grant_type", "client_credentials"),
    ])
}

/// The fix for Entra's common service-principal failures, by AADSTS code (matched exactly).
pub(super) fn aadsts_hint(description: &str) -> Option<&'static str> {
    const HINTS: [(u32, &str); 5] = [
        (
            7_000_215,
            "the client secret is wrong (a common mistake is the secret's ID instead of its value); set AZURE_CLIENT_SECRET to the secret's value",
        ),
        (
            7_000_222,
            "the client secret has expired; create a new one and set AZURE_CLIENT_SECRET",
        ),
        (
            700_016,
            "the client id is not an application in this tenant; check AZURE_CLIENT_ID and AZURE_TENANT_ID",
        ),
        (90_002, "the tenant does not exist; check AZURE_TENANT_ID"),
        (
            700_027,
            "the certificate is not registered on the application, or the assertion's signature is invalid; upload the certificate to the app registration",
        ),
    ];
    HINTS
        .iter()
        .find(|(code, _)| names_aadsts(description, *code))
        .map(|(_, hint)| *hint)
}

fn incomplete(has: &str, absent: &[&str]) -> Error {
    unavailable(&format!(
        "{has} is set but {} {} not; set {} too",
        list(absent),
        if absent.len() == 1 { "is" } else { "are" },
        if absent.len() == 1 { "it" } else { "them" },
    ))
}

fn list(names: &[&str]) -> String {
    names.join(" and ")
}

fn unavailable(why: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        None,
        format!("EnvironmentCredential: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn secret_before_certificate_and_empty_is_unset() {
        let full = [
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem"),
        ];
        assert_eq!(environment_source(&env(&full)), Ok(Source::ClientSecret));
        let mut cert = full;
        cert[2].1 = "";
        assert_eq!(
            environment_source(&env(&cert)),
            Ok(Source::ClientCertificate)
        );
    }

    #[test]
    fn partial_configuration_names_what_is_missing() {
        let e = environment_source(&env(&[("AZURE_CLIENT_SECRET", "s")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(
            e.message(),
            "EnvironmentCredential: AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID and AZURE_CLIENT_ID are not; set them too"
        );
        let e = environment_source(&env(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]))
            .unwrap_err();
        assert_eq!(
            e.message(),
            "EnvironmentCredential: incomplete configuration: only AZURE_TENANT_ID and AZURE_CLIENT_ID set; add AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"
        );
        assert!(!e.message().contains('s'.to_string().repeat(3).as_str()));
    }

    #[test]
    fn username_and_password_are_refused_saying_why() {
        let e = environment_source(&env(&[("AZURE_USERNAME", "u"), ("AZURE_PASSWORD", "p")]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("multi-factor"), "{}", e.message());
    }

    #[test]
    fn service_principal_hints_match_exactly() {
        assert!(aadsts_hint("AADSTS7000215: Invalid client secret provided.").is_some());
        assert_eq!(aadsts_hint("AADSTS70002150: something"), None);
    }
}
