//! The destinations a guest may reach: `host:port` pairs, derived from the managed-identity
//! variables it is given (plus whatever the operator allows on top).

use azmi::proto::{Endpoint, var};

/// `host:port` pairs the guest may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    authorities: Vec<String>,
}

impl Allowlist {
    /// The endpoints named by the managed-identity variables in `env` (`IDENTITY_ENDPOINT`,
    /// `MSI_ENDPOINT`, `AZURE_POD_IDENTITY_AUTHORITY_HOST`, `AZURE_AUTHORITY_HOST`), the public
    /// Entra authority when workload identity is configured without its own authority host,
    /// and IMDS at 169.254.169.254: the CLI lets the guest reach nothing else. Ports default
    /// per scheme.
    pub fn from_env(env: &[(String, String)]) -> Self {
        let mut list = Allowlist::default();
        list.allow("http://169.254.169.254");
        for name in [
            var::IDENTITY_ENDPOINT,
            var::MSI_ENDPOINT,
            var::AZURE_POD_IDENTITY_AUTHORITY_HOST,
            var::AZURE_AUTHORITY_HOST,
        ] {
            if let Some(value) = super::value(env, name) {
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

/// `authority` with the scheme's default port added when it names none (`host` →
/// `host:443` for https, `host:80` otherwise), so allowlist entries compare as `host:port`.
pub(crate) fn with_port(authority: &str, scheme: &str) -> String {
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
