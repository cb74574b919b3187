//! Source detection: a pure function of the environment snapshot and one host fact (does the
//! Azure Arc agent binary exist), so it can be tested without a machine and gives the same
//! answer in every host.
//!
//! The precedence table, and why each source sits where it does (platform sources before
//! workload identity, workload identity before IMDS, Arc by agent presence, Pod Identity as an
//! IMDS base URL), is in the [`crate::proto::source`] module docs. This module also checks the
//! endpoints it finds: each must parse as an `http(s)://host[:port]/path` URL
//! ([`crate::proto::url::Endpoint`]), and Service Fabric and the Entra authority must be
//! `https` (MSAL Go and MSAL Python refuse a plain-HTTP Service Fabric endpoint; Python also
//! requires `https` for the authority host), because both carry a secret across a network
//! rather than to a loopback or link-local address.

use super::chain::Link;
use super::env::{EnvSnapshot, HostFacts, var};
use super::error::{Error, ErrorKind};
use super::selector::SelectorKind;
use super::source::Source;
use super::url::Endpoint;

/// IMDS base when `AZURE_POD_IDENTITY_AUTHORITY_HOST` is unset: the link-local IMDS address.
pub(super) const IMDS_BASE: &str = "http://169.254.169.254";
/// IMDS token path, appended to the base (also for AAD Pod Identity, whose NMI daemon
/// answers on the same path).
pub(super) const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// Arc endpoint when found by the agent binary only (msal-node and MSAL Go use `127.0.0.1`;
/// MSAL Python's `localhost` may resolve to `::1` while the agent listens on IPv4).
pub(super) const ARC_DEFAULT_ENDPOINT: &str =
    "http://127.0.0.1:40342/metadata/identity/oauth2/token";
/// Entra authority when `AZURE_AUTHORITY_HOST` is unset (the default of every SDK).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// The detected source and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Detection {
    /// Which source.
    pub source: Source,
    /// Its token endpoint (for workload identity: the authority host).
    pub endpoint: Endpoint,
    /// Name of the variable the endpoint came from, for messages.
    pub endpoint_variable: &'static str,
}

/// Detects the source, first match wins (the order msal-node and MSAL Go use):
/// Service Fabric → App Service → Azure ML / App Service 2017 → Cloud Shell → Azure Arc →
/// workload identity → IMDS.
///
/// Workload identity sits after the platform sources and before IMDS: on AKS, IMDS
/// would return the node's identity. Its client id may come from `AZURE_CLIENT_ID` or from a
/// client-id selector, hence `selector`.
pub(super) fn detect(
    env: &EnvSnapshot,
    facts: HostFacts,
    selector: SelectorKind,
) -> Result<Detection, Error> {
    let identity_endpoint = env.get(var::IDENTITY_ENDPOINT);
    if let Some(endpoint) = identity_endpoint
        && env.has(var::IDENTITY_HEADER)
    {
        if let Some(thumbprint) = env.get(var::IDENTITY_SERVER_THUMBPRINT) {
            check_thumbprint(thumbprint)?;
            return found(Source::ServiceFabric, endpoint, var::IDENTITY_ENDPOINT);
        }
        return found(Source::AppService, endpoint, var::IDENTITY_ENDPOINT);
    }
    if let Some(endpoint) = env.get(var::MSI_ENDPOINT) {
        let source = match (
            env.has(var::MSI_SECRET),
            env.has(var::DEFAULT_IDENTITY_CLIENT_ID),
        ) {
            (true, true) => Source::AzureMl,
            (true, false) => Source::AppService2017,
            (false, _) => Source::CloudShell,
        };
        return found(source, endpoint, var::MSI_ENDPOINT);
    }
    match identity_endpoint {
        Some(endpoint) if env.has(var::IMDS_ENDPOINT) => {
            return found(Source::AzureArc, endpoint, var::IDENTITY_ENDPOINT);
        }
        _ if facts.arc_agent_present => {
            return found(
                Source::AzureArc,
                ARC_DEFAULT_ENDPOINT,
                "the Arc agent default",
            );
        }
        _ => {}
    }
    // A user-assigned selector also selects workload identity when it is configured, so
    // that an object/resource id is refused there rather than sent to the node's IMDS.
    if workload_configured(env, selector) {
        return found_at_authority(Source::WorkloadIdentity, env);
    }
    match env.get(var::AZURE_POD_IDENTITY_AUTHORITY_HOST) {
        // Python's rule: strip trailing slashes, append the path (msal-node's `//metadata`
        // and the JS probe's dropped path prefix are both wrong).
        Some(base) => {
            let url = format!("{}{IMDS_PATH}", base.trim_end_matches('/'));
            found(Source::Imds, &url, var::AZURE_POD_IDENTITY_AUTHORITY_HOST)
        }
        None => found(
            Source::Imds,
            &format!("{IMDS_BASE}{IMDS_PATH}"),
            "the IMDS default",
        ),
    }
}

/// Workload identity's variables are all there (a user-assigned selector counts as the
/// client id).
fn workload_configured(env: &EnvSnapshot, selector: SelectorKind) -> bool {
    env.has(var::AZURE_FEDERATED_TOKEN_FILE)
        && env.has(var::AZURE_TENANT_ID)
        && (env.has(var::AZURE_CLIENT_ID) || selector != SelectorKind::SystemAssigned)
}

/// Detection for one link of the default chain ([`crate::proto::chain`]): managed identity
/// as above; workload identity alone; or the environment credential
/// ([`crate::proto::environment`]). A link that is not configured is *unavailable*, naming
/// what is missing.
pub(super) fn detect_link(
    link: Link,
    env: &EnvSnapshot,
    facts: HostFacts,
    selector: SelectorKind,
) -> Result<Detection, Error> {
    match link {
        Link::ManagedIdentity => detect(env, facts, selector),
        Link::WorkloadIdentity if workload_configured(env, selector) => {
            found_at_authority(Source::WorkloadIdentity, env)
        }
        Link::WorkloadIdentity => {
            let missing: Vec<&str> = [
                var::AZURE_FEDERATED_TOKEN_FILE,
                var::AZURE_TENANT_ID,
                var::AZURE_CLIENT_ID,
            ]
            .into_iter()
            .filter(|name| !env.has(name))
            .collect();
            Err(Error::new(
                ErrorKind::Unavailable,
                None,
                format!(
                    "WorkloadIdentityCredential: not configured ({} not set; AKS sets them for a pod whose service account is federated with an identity)",
                    missing.join(", ")
                ),
            ))
        }
        Link::Environment => {
            let source = super::environment::environment_source(env)?;
            found_at_authority(source, env)
        }
    }
}

/// An Entra source at `AZURE_AUTHORITY_HOST`, or the public cloud's authority.
fn found_at_authority(source: Source, env: &EnvSnapshot) -> Result<Detection, Error> {
    let (authority, variable) = match env.get(var::AZURE_AUTHORITY_HOST) {
        Some(host) => (host, var::AZURE_AUTHORITY_HOST),
        None => (DEFAULT_AUTHORITY_HOST, "the default authority"),
    };
    found(source, authority, variable)
}

fn found(source: Source, url: &str, variable: &'static str) -> Result<Detection, Error> {
    let endpoint = Endpoint::parse(url).map_err(|why| {
        Error::new(
            ErrorKind::Configuration,
            Some(source),
            format!(
                "{source}: {variable} is not a valid endpoint URL: {why}; set it to an http:// or https:// URL"
            ),
        )
    })?;
    // Service Fabric and Entra must be HTTPS (MSAL Go / Python; Python also requires it of
    // the authority host): both carry a secret over a real network.
    if matches!(
        source,
        Source::ServiceFabric
            | Source::WorkloadIdentity
            | Source::ClientSecret
            | Source::ClientCertificate
    ) && endpoint.scheme != super::http::Scheme::Https
    {
        return Err(Error::new(
            ErrorKind::Configuration,
            Some(source),
            format!("{source}: {variable} must be an https:// URL"),
        ));
    }
    Ok(Detection {
        source,
        endpoint,
        endpoint_variable: variable,
    })
}

/// `IDENTITY_SERVER_THUMBPRINT` normalized: colons and whitespace removed, 40 hex digits, upper
/// case (MSAL Go 1.9 / MSAL Python 1.39's rule). Hosts pin the Service Fabric certificate to it:
/// the endpoint's certificate is self-signed, and only its SHA-1 proves it is the cluster's.
pub fn normalize_thumbprint(raw: &str) -> Option<String> {
    let hex: String = raw
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_uppercase())
}

fn check_thumbprint(raw: &str) -> Result<(), Error> {
    normalize_thumbprint(raw).map(|_| ()).ok_or_else(|| {
        Error::new(
            ErrorKind::Configuration,
            Some(Source::ServiceFabric),
            "Service Fabric: IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint (40 hex digits)",
        )
    })
}

/// The endpoint a token request for a `selector` kind would go to in `env` with `facts`:
/// detection's choice, for hosts that derive an egress allowlist from it.
pub fn token_endpoint(
    env: &EnvSnapshot,
    facts: HostFacts,
    selector: SelectorKind,
) -> Result<Endpoint, Error> {
    link_endpoint(Link::ManagedIdentity, env, facts, selector)
}

/// What detection chooses for `link` in `env` with `facts`: the source, its endpoint and the
/// variable (or default) the endpoint came from — for diagnostics (`azmi doctor`).
pub fn detected(
    link: Link,
    env: &EnvSnapshot,
    facts: HostFacts,
    selector: SelectorKind,
) -> Result<(Source, Endpoint, &'static str), Error> {
    detect_link(link, env, facts, selector).map(|d| (d.source, d.endpoint, d.endpoint_variable))
}

/// [`token_endpoint`] for one link of the default chain (the environment credential's
/// authority, workload identity's, or managed identity's endpoint).
pub fn link_endpoint(
    link: Link,
    env: &EnvSnapshot,
    facts: HostFacts,
    selector: SelectorKind,
) -> Result<Endpoint, Error> {
    detect_link(link, env, facts, selector).map(|d| d.endpoint)
}
