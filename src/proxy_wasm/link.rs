//! Which credential the filter uses, chosen once when it starts (`"credential"` in the
//! configuration, [`super::config::CredentialConfig`]).
//!
//! # The rules
//!
//! * **`"managed-identity"`** (the default): managed identity alone, as before the chain
//!   existed: the configured identity, no IMDS probe.
//! * **`"default"`**: the default chain (`src/proto/chain.rs`, [`DefaultChain`]), decided at
//!   start instead of per call. The filter takes the links `AZURE_TOKEN_CREDENTIALS` selects
//!   ([`DefaultChain::links`]) in order and keeps the first one the core accepts for this
//!   environment ([`ManagedIdentity::check_link`]: configured, valid, servable without files).
//!   A link that is unavailable here is skipped and the startup log says why; any other
//!   refusal (a tenant id with bad characters, an `http://` authority, an invalid
//!   `AZURE_TOKEN_CREDENTIALS`) stops the choice and the filter refuses every request with
//!   it, as the chain stops on anything but *unavailable*. Deciding once is the chain's
//!   stickiness moved to start: Envoy's environment is fixed for the life of the VM, and a
//!   per-request chain would send requests nobody can act on (an Entra POST, then IMDS) every
//!   time the first link fails.
//! * **No files in Envoy**: proxy-wasm cannot read files, so the environment credential takes a
//!   client secret only; a certificate (`AZURE_CLIENT_CERTIFICATE_PATH`) and workload identity
//!   (`AZURE_FEDERATED_TOKEN_FILE`) are skipped as unavailable with that reason.
//! * **Managed identity in the chain** takes `AZURE_CLIENT_ID` as its user-assigned client id
//!   when the configuration names no identity, and probes IMDS before its first token request,
//!   unless `AZURE_TOKEN_CREDENTIALS` chose it alone ([`crate::proto::Links::for_link`]).

use super::config::CredentialConfig;
use crate::proto::{
    DefaultChain, EnvSnapshot, Error, ErrorKind, HostFacts, IdentitySelector, Link,
    ManagedIdentity, Source,
};

/// The filter's credential for its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkChoice {
    /// The link every fetch uses (`TokenRequest::credential`).
    pub link: Link,
    /// The identity the link's requests (and cache lookups) use.
    pub selector: IdentitySelector,
    /// Probe IMDS before the first token request.
    pub probe: bool,
    /// The links tried before `link`, each with why it cannot serve here.
    pub skipped: Vec<(Link, Error)>,
}

impl LinkChoice {
    /// The placeholder of a filter that refuses every request (nothing is ever fetched).
    pub(super) fn refused(selector: IdentitySelector) -> Self {
        Self {
            link: Link::ManagedIdentity,
            selector,
            probe: false,
            skipped: Vec::new(),
        }
    }

    /// The startup log's words for the choice, e.g. `EnvironmentCredential (skipped: …)`.
    pub fn describe(&self) -> String {
        if self.skipped.is_empty() {
            return self.link.name().to_string();
        }
        let skipped: Vec<String> = self
            .skipped
            .iter()
            .map(|(link, error)| format!("{}: {}", link.name(), link.reason(error)))
            .collect();
        format!(
            "{} (skipped: {}){}",
            self.link.name(),
            skipped.join("; "),
            files_note(&self.skipped)
        )
    }
}

/// The link for `credential` in `env`, or why no request can get a token (module docs).
pub fn choose(
    credential: CredentialConfig,
    env: &EnvSnapshot,
    facts: HostFacts,
    scope: &str,
    selector: &IdentitySelector,
) -> Result<LinkChoice, Error> {
    if credential == CredentialConfig::ManagedIdentity {
        ManagedIdentity::check(env, facts, scope, selector)?;
        return Ok(LinkChoice {
            link: Link::ManagedIdentity,
            selector: selector.clone(),
            probe: false,
            skipped: Vec::new(),
        });
    }
    let links = DefaultChain::links(env)?;
    let mut skipped = Vec::new();
    for link in links.iter() {
        let (link_selector, probe) = links.for_link(link, selector, false);
        match ManagedIdentity::check_link(env, facts, scope, link_selector, link) {
            Ok(()) => {
                return Ok(LinkChoice {
                    link,
                    selector: link_selector.clone(),
                    probe,
                    skipped,
                });
            }
            Err(error) if error.kind() == ErrorKind::Unavailable => skipped.push((link, error)),
            Err(error) => return Err(error),
        }
    }
    let exhausted = DefaultChain::exhausted(&skipped);
    Err(Error::new(
        exhausted.kind(),
        None,
        format!("{}{}", exhausted.message(), files_note(&skipped)),
    ))
}

/// Why a link that needs a file was skipped, in the filter's words.
fn files_note(skipped: &[(Link, Error)]) -> &'static str {
    let needs_files = skipped.iter().any(|(_, error)| {
        matches!(
            error.mi_source(),
            Some(Source::WorkloadIdentity | Source::ClientCertificate)
        )
    });
    if needs_files {
        ". The Envoy filter's credentials are a client secret or a managed identity only: no files in Envoy (no certificate, no workload identity)"
    } else {
        ""
    }
}
