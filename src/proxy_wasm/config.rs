//! The filter's plugin configuration: the JSON in Envoy's `configuration` field.

use crate::proto::{Error, IdentitySelector, Level, resource_from_scope};

use serde::Deserialize;
use std::collections::BTreeMap;

/// Header set when the configuration names none.
pub const DEFAULT_HEADER: &str = "authorization";

/// What to do with a request when no token can be had.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Answer locally with 503 and a JSON error; the upstream sees nothing (the default).
    #[default]
    Deny,
    /// Forward the request without a token. The upstream then decides; use it only when the
    /// upstream rejects unauthenticated requests itself, or when availability matters more
    /// than the guarantee that every forwarded request carries this identity's token.
    Allow,
}

/// What to do with a request for an upstream `upstreams` does not map, when there is no
/// default `scope` (`"unmapped"`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    /// Answer with the generic local 503 (`invalid_argument`); the log says which authority
    /// had no scope (the default).
    #[default]
    Deny,
    /// Forward it untouched: no token, and the client's own header value left alone (the
    /// filter does not own that upstream's header).
    Pass,
}

/// The diagnostics level (`"log_level"`, the values of `AZURE_LOG_LEVEL`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevelConfig {
    /// Failures (Envoy `error`).
    Error,
    /// Also transport failures and failed refreshes (Envoy `warn`).
    Warning,
    /// Also each token request, its status and time, retry waits, refreshes (Envoy `info`).
    Info,
    /// Also every cache hit and miss (Envoy `debug`).
    Verbose,
}

impl From<LogLevelConfig> for Level {
    fn from(level: LogLevelConfig) -> Self {
        match level {
            LogLevelConfig::Error => Level::Error,
            LogLevelConfig::Warning => Level::Warning,
            LogLevelConfig::Info => Level::Info,
            LogLevelConfig::Verbose => Level::Verbose,
        }
    }
}

/// Which credential the filter uses (`"credential"`; [`crate::proxy_wasm::link`] has the
/// rules).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialConfig {
    /// Managed identity alone (the default).
    #[default]
    ManagedIdentity,
    /// The default chain, decided at start: a client secret in `AZURE_*`, else managed
    /// identity (workload identity and certificates need files, which Envoy cannot give).
    Default,
}

/// A user-assigned identity, written `{"client_id": "…"}`, `{"object_id": "…"}` or
/// `{"resource_id": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityConfig {
    /// By client (application) id.
    ClientId(String),
    /// By object (principal) id.
    ObjectId(String),
    /// By ARM resource id.
    ResourceId(String),
}

/// The plugin configuration, e.g.
/// `{"scope": "https://vault.azure.net/.default", "cluster": "imds"}`, or with a scope per
/// upstream: `{"upstreams": {"myvault.vault.azure.net": "https://vault.azure.net/.default",
/// "myaccount.blob.core.windows.net": "https://storage.azure.com/.default"}, "cluster":
/// "imds"}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The scope to get tokens for, e.g. `https://vault.azure.net/.default`: for every
    /// request, or, with `upstreams`, for the requests whose authority it does not map.
    #[serde(default)]
    pub scope: Option<String>,
    /// A scope per upstream: a lower-case authority → scope. A request's `:authority` is
    /// lower-cased and looked up as given, then without its `:port`. Each scope has its own
    /// token and token request.
    #[serde(default)]
    pub upstreams: Option<BTreeMap<String, String>>,
    /// What to do with a request `upstreams` does not map when there is no `scope`.
    #[serde(default)]
    pub unmapped: Option<Unmapped>,
    /// The diagnostics level; absent: `AZURE_LOG_LEVEL` in the VM environment, else only the
    /// filter's own lines (start, tokens obtained, failures).
    #[serde(default)]
    pub log_level: Option<LogLevelConfig>,
    /// The user-assigned identity; absent means system-assigned (or the platform default).
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// The request header that gets `Bearer <token>`; an existing value is replaced.
    #[serde(default = "default_header")]
    pub header: String,
    /// `"managed-identity"` (the default) or `"default"` (the default chain).
    #[serde(default)]
    pub credential: CredentialConfig,
    /// The Envoy cluster that reaches the endpoint of the chosen credential (e.g.
    /// `169.254.169.254:80` for IMDS; Entra's authority over TLS for a client secret).
    pub cluster: String,
    /// What to do when no token can be had.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Timeout of one token request through Envoy, in milliseconds; by default the sum of the
    /// source's connect, first-byte and between-bytes timeouts.
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Share the token with the other worker threads through proxy-wasm shared data, so that
    /// one worker fetches for all (the default); `false`: each worker fetches its own.
    #[serde(default = "default_shared_cache")]
    pub shared_cache: bool,
}

fn default_shared_cache() -> bool {
    true
}

fn default_header() -> String {
    DEFAULT_HEADER.to_string()
}

impl FilterConfig {
    /// Parses and validates the plugin configuration.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let config: FilterConfig = serde_json::from_slice(json).map_err(|e| {
            Error::invalid_argument(format!(
                "the azmi filter configuration is not valid JSON for it ({e}); expected e.g. {{\"scope\": \"https://vault.azure.net/.default\", \"cluster\": \"imds\"}}"
            ))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        if let Some(scope) = &self.scope {
            resource_from_scope(scope)?;
        }
        match &self.upstreams {
            None if self.scope.is_none() => {
                return Err(Error::invalid_argument(
                    "the azmi filter configuration has no \"scope\" and no \"upstreams\"; give one, e.g. \"scope\": \"https://vault.azure.net/.default\"",
                ));
            }
            None if self.unmapped.is_some() => {
                return Err(Error::invalid_argument(
                    "the azmi filter configuration's \"unmapped\" needs \"upstreams\" (and no \"scope\", the default for every other upstream)",
                ));
            }
            None => {}
            Some(map) => validate_upstreams(map, self.scope.is_some(), self.unmapped)?,
        }
        self.selector().validate()?;
        if self.cluster.is_empty() {
            return Err(Error::invalid_argument(
                "the azmi filter configuration has an empty \"cluster\"; name the Envoy cluster of the managed-identity endpoint",
            ));
        }
        let header_ok = !self.header.is_empty()
            && self.header.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
            });
        if !header_ok {
            return Err(Error::invalid_argument(format!(
                "the azmi filter configuration's \"header\" {:?} is not a lower-case HTTP header name (e.g. \"authorization\")",
                self.header
            )));
        }
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid_argument(
                "the azmi filter configuration's \"timeout_ms\" is 0; leave it out for the source's default",
            ));
        }
        Ok(())
    }

    /// The scope for requests to `authority` (`None`: unmapped): `upstreams`' entry for it as
    /// given, then without its port, else the default `scope`.
    pub fn scope_for(&self, authority: &str) -> Option<&str> {
        if let Some(map) = &self.upstreams {
            let authority = authority.to_ascii_lowercase();
            let host = authority
                .rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map(|(host, _)| host);
            for key in std::iter::once(authority.as_str()).chain(host) {
                if let Some(scope) = map.get(key) {
                    return Some(scope);
                }
            }
        }
        self.scope.as_deref()
    }

    /// The identity selector the core takes.
    pub fn selector(&self) -> IdentitySelector {
        match &self.identity {
            None => IdentitySelector::SystemAssigned,
            Some(IdentityConfig::ClientId(id)) => IdentitySelector::ClientId(id.clone()),
            Some(IdentityConfig::ObjectId(id)) => IdentitySelector::ObjectId(id.clone()),
            Some(IdentityConfig::ResourceId(id)) => IdentitySelector::ResourceId(id.clone()),
        }
    }
}

/// Each `upstreams` key is a lower-case authority, each value a scope; the map is not empty,
/// and `unmapped` is not given with a default `scope`.
fn validate_upstreams(
    map: &BTreeMap<String, String>,
    has_default: bool,
    unmapped: Option<Unmapped>,
) -> Result<(), Error> {
    let refuse = |why: String| {
        Err(Error::invalid_argument(format!(
            "the azmi filter configuration's \"upstreams\" {why}"
        )))
    };
    if map.is_empty() {
        return refuse(
            "is empty; map each upstream's authority to its scope, e.g. {\"myvault.vault.azure.net\": \"https://vault.azure.net/.default\"}, or use \"scope\" alone".into(),
        );
    }
    if has_default && unmapped.is_some() {
        return Err(Error::invalid_argument(
            "the azmi filter configuration has both \"scope\" (the scope of every upstream not in \"upstreams\") and \"unmapped\"; keep one",
        ));
    }
    for (authority, scope) in map {
        let authority_ok = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._:[]".contains(&b));
        if !authority_ok {
            return refuse(format!(
                "key {authority:?} is not a lower-case authority (host or host:port, e.g. \"myvault.vault.azure.net\")"
            ));
        }
        if let Err(error) = resource_from_scope(scope) {
            return refuse(format!(
                "maps {authority:?} to a bad scope: {}",
                error.message()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_the_defaults() {
        let config = FilterConfig::parse(
            br#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#,
        )
        .unwrap();
        assert_eq!(config.header, "authorization");
        assert_eq!(config.fail_mode, FailMode::Deny);
        assert_eq!(config.selector(), IdentitySelector::SystemAssigned);
        assert_eq!(config.timeout_ms, None);
        assert!(config.shared_cache, "workers share the token by default");
        assert_eq!(config.credential, CredentialConfig::ManagedIdentity);
    }

    #[test]
    fn full_config_parses() {
        let config = FilterConfig::parse(
            br#"{"scope": "https://storage.azure.com/.default", "identity": {"client_id": "c1"},
                 "header": "x-ms-token", "cluster": "mi", "fail_mode": "allow", "timeout_ms": 5000,
                 "shared_cache": false, "credential": "default"}"#,
        )
        .unwrap();
        assert_eq!(config.selector(), IdentitySelector::ClientId("c1".into()));
        assert_eq!(config.header, "x-ms-token");
        assert_eq!(config.fail_mode, FailMode::Allow);
        assert_eq!(config.timeout_ms, Some(5000));
        assert!(!config.shared_cache);
        assert_eq!(config.credential, CredentialConfig::Default);
        let by_resource = FilterConfig::parse(
            br#"{"scope": "s", "cluster": "c", "identity": {"resource_id": "/subscriptions/x"}}"#,
        )
        .unwrap();
        assert_eq!(
            by_resource.selector(),
            IdentitySelector::ResourceId("/subscriptions/x".into())
        );
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        for (json, expected) in [
            (&br#"{"cluster": "imds"}"#[..], "no \"scope\" and no \"upstreams\""),
            (br#"{"scope": "a b", "cluster": "imds"}"#, "whitespace"),
            (br#"{"scope": "s", "cluster": ""}"#, "empty \"cluster\""),
            (br#"{"scope": "s", "cluster": "c", "header": "Authorization"}"#, "lower-case"),
            (br#"{"scope": "s", "cluster": "c", "header": ":path"}"#, "lower-case"),
            (br#"{"scope": "s", "cluster": "c", "fail_mode": "open"}"#, "unknown variant"),
            (br#"{"scope": "s", "cluster": "c", "identity": {"client_id": ""}}"#, "empty"),
            (
                br#"{"scope": "s", "cluster": "c", "identity": {"client_id": "a", "object_id": "b"}}"#,
                "",
            ),
            (br#"{"scope": "s", "cluster": "c", "scopes": {}}"#, "unknown field"),
            (br#"{"scope": "s", "cluster": "c", "timeout_ms": 0}"#, "timeout_ms"),
            (br#"{"scope": "s", "cluster": "c", "credential": "environment"}"#, "unknown variant"),
        ] {
            let error = FilterConfig::parse(json).unwrap_err();
            assert!(
                error.message().contains(expected),
                "{}: {}",
                String::from_utf8_lossy(json),
                error.message()
            );
        }
    }
}
