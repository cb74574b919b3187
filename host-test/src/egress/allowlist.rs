//! The destinations a guest may reach: `host:port` pairs, derived from the managed-identity
//! variables it is given (plus whatever the operator allows on top).

use azmi::proto::{Endpoint, EnvSnapshot, HostFacts, Link, SelectorKind, link_endpoint, var};

/// `host:port` pairs the guest may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    authorities: Vec<String>,
}

impl Allowlist {
    /// The endpoints named by the managed-identity variables in `env` (`IDENTITY_ENDPOINT`,
    /// `MSI_ENDPOINT`, `AZURE_POD_IDENTITY_AUTHORITY_HOST`, `AZURE_AUTHORITY_HOST`), the
    /// endpoint detection chooses for them (so the Entra default authority when
    /// `AZURE_AUTHORITY_HOST` is unset or empty, and the Arc agent's `127.0.0.1:40342` when
    /// Arc is found through its `himds` binary), and IMDS at 169.254.169.254: the CLI lets the
    /// guest reach nothing else. Ports default per scheme.
    pub fn from_env(env: &[(String, String)]) -> Self {
        let facts = HostFacts {
            // The Arc agent's binary: when it exists, detection picks Azure Arc at its
            // default endpoint.
            arc_agent_present: crate::host::arc_agent_dir().join("himds").exists(),
            no_file_access: false,
        };
        Self::from_env_and(env, facts)
    }

    /// [`Allowlist::from_env`] with the host facts given.
    pub fn from_env_and(env: &[(String, String)], facts: HostFacts) -> Self {
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
        // What detection chooses, for a system-assigned and a user-assigned call (a client id
        // alone can select workload identity), for every link of the default chain (the
        // environment credential's default authority included).
        let snapshot = EnvSnapshot::from_pairs(env.iter().cloned());
        let links = [
            Link::Environment,
            Link::WorkloadIdentity,
            Link::ManagedIdentity,
        ];
        for (link, kind) in links.into_iter().flat_map(|l| {
            [
                (l, SelectorKind::SystemAssigned),
                (l, SelectorKind::ClientId),
            ]
        }) {
            if let Ok(endpoint) = link_endpoint(link, &snapshot, facts, kind) {
                list.allow(&format!(
                    "{}://{}",
                    endpoint.scheme.as_str(),
                    endpoint.authority
                ));
            }
        }
        list
    }

    /// The `host:port` authorities allowed, in the order they were added.
    pub fn authorities(&self) -> &[String] {
        &self.authorities
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_empty_authority_host_allows_the_default_authority_detection_uses() {
        let list = Allowlist::from_env_and(
            &env(&[
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
                ("AZURE_TENANT_ID", "t1"),
                ("AZURE_CLIENT_ID", "c1"),
                ("AZURE_AUTHORITY_HOST", ""),
            ]),
            HostFacts::default(),
        );
        assert!(
            list.permits("https", "login.microsoftonline.com"),
            "{list:?}"
        );
    }

    #[test]
    fn arc_found_by_its_agent_binary_is_allowed() {
        let facts = HostFacts {
            arc_agent_present: true,
            no_file_access: false,
        };
        let list = Allowlist::from_env_and(&[], facts);
        assert!(list.permits("http", "127.0.0.1:40342"), "{list:?}");
        let without = Allowlist::from_env_and(&[], HostFacts::default());
        assert!(!without.permits("http", "127.0.0.1:40342"));
    }
}
