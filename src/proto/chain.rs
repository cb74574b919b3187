//! The default credential chain (`DefaultAzureCredential` for WebAssembly): environment →
//! workload identity → managed identity, each link driven by the same credential, cache and
//! loop as managed identity alone.
//!
//! # The rules
//!
//! * **Order**: [`Link::Environment`], [`Link::WorkloadIdentity`], [`Link::ManagedIdentity`]
//!   — the first three links of `DefaultAzureCredential` in @azure/identity, azure-identity
//!   (Python), azidentity (Go) and Azure.Identity (.NET), which all agree.
//! * **Continue only on unavailable**: a link that is not configured (or finds no managed
//!   identity) moves the chain on; any other failure (Entra refused the secret, a bad
//!   tenant id, a throttled endpoint) stops it with that error — every SDK does this.
//! * **Sticky**: once a link returns a token, the chain uses only that link (Go, Python and
//!   .NET; JS starts over every call). A later failure of that link is the caller's error.
//! * **When nothing works**: one *unavailable* error whose message lists every link tried and
//!   why it was skipped, in order, and says that the developer-tool credentials (Azure CLI,
//!   Azure Developer CLI, Azure PowerShell, VS Code) cannot run here: each starts a process or
//!   talks to an OS broker, and a WASI 0.2 component can do neither.
//! * **Managed identity in the chain** probes IMDS first (1 s, no retries) so a machine
//!   without one answers in milliseconds, and takes `AZURE_CLIENT_ID` as its user-assigned
//!   client id when the caller names no identity (both as the SDKs do). Workload identity
//!   takes the caller's client-id selector, else `AZURE_CLIENT_ID`; the environment
//!   credential is configured by its variables alone.
//!
//! # `AZURE_TOKEN_CREDENTIALS`
//!
//! Trimmed, compared ignoring case, empty = unset (JS, Python and .NET; Go rejects an empty
//! value):
//!
//! | value | links |
//! |---|---|
//! | unset, `prod` | all three |
//! | `environmentcredential` | environment only |
//! | `workloadidentitycredential` | workload identity only |
//! | `managedidentitycredential` | managed identity only, without the IMDS probe (the caller chose it) |
//! | `dev`, a developer-tool credential's name | a configuration error: those cannot run in a component |
//! | anything else | an invalid-argument error listing the valid values |

use super::env::{EnvSnapshot, var};
use super::error::{Error, ErrorKind};
use super::selector::IdentitySelector;

/// One credential of the default chain.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Link {
    /// A service principal in `AZURE_*` variables ([`crate::proto::Source::ClientSecret`],
    /// [`crate::proto::Source::ClientCertificate`]).
    Environment,
    /// AKS workload identity alone.
    WorkloadIdentity,
    /// Managed identity: every managed-identity source, detected as without a chain.
    #[default]
    ManagedIdentity,
}

const ALL: [Link; 3] = [
    Link::Environment,
    Link::WorkloadIdentity,
    Link::ManagedIdentity,
];

/// The developer-tool credentials of the SDKs' chains, none of which can run in a component.
const DEVELOPER_TOOLS: [&str; 6] = [
    "AzureCliCredential",
    "AzureDeveloperCliCredential",
    "AzurePowerShellCredential",
    "VisualStudioCodeCredential",
    "InteractiveBrowserCredential",
    "BrokerCredential",
];

impl Link {
    /// Why this link could not serve, from its `error`: the message without a leading
    /// `<name>:` (the environment and workload links start theirs with the name), for lists
    /// that name the link themselves.
    pub fn reason(self, error: &Error) -> &str {
        let message = error.message();
        message
            .strip_prefix(self.name())
            .map_or(message, |rest| rest.trim_start_matches(':').trim_start())
    }

    /// The SDKs' name of this credential, e.g. `EnvironmentCredential`.
    pub fn name(self) -> &'static str {
        match self {
            Link::Environment => "EnvironmentCredential",
            Link::WorkloadIdentity => "WorkloadIdentityCredential",
            Link::ManagedIdentity => "ManagedIdentityCredential",
        }
    }
}

/// The chain's state for the life of an instance: which link answered, once one has.
#[derive(Clone, Debug, Default)]
pub struct DefaultChain {
    sticky: Option<(Link, Links)>,
}

/// The links one call tries, in order, and what the environment gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    links: Vec<Link>,
    /// A single credential chosen by `AZURE_TOKEN_CREDENTIALS` (no IMDS probe).
    chosen: bool,
    /// `AZURE_CLIENT_ID` as managed identity's user-assigned default.
    default_identity: Option<IdentitySelector>,
}

impl Links {
    /// The links, in order.
    pub fn iter(&self) -> impl Iterator<Item = Link> + '_ {
        self.links.iter().copied()
    }

    /// The selector and probe flag `link`'s request uses, from the caller's (module docs,
    /// "Managed identity in the chain").
    pub fn for_link<'a>(
        &'a self,
        link: Link,
        selector: &'a IdentitySelector,
        probe: bool,
    ) -> (&'a IdentitySelector, bool) {
        const SYSTEM: &IdentitySelector = &IdentitySelector::SystemAssigned;
        match link {
            Link::Environment => (SYSTEM, false),
            Link::WorkloadIdentity => (selector, false),
            Link::ManagedIdentity => {
                let selector = match (selector, &self.default_identity) {
                    (IdentitySelector::SystemAssigned, Some(default)) => default,
                    _ => selector,
                };
                (selector, probe || !self.chosen)
            }
        }
    }
}

impl DefaultChain {
    /// A chain that has not answered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The link that answered first and its settings, if any: later calls use only it,
    /// without reading the environment again.
    pub fn sticky(&self) -> Option<(Link, &Links)> {
        self.sticky.as_ref().map(|(link, links)| (*link, links))
    }

    /// The links to try for a call in `env`, as `AZURE_TOKEN_CREDENTIALS` selects.
    pub fn links(env: &EnvSnapshot) -> Result<Links, Error> {
        let mut links = selected_links(env)?;
        links.default_identity = env
            .get(var::AZURE_CLIENT_ID)
            .map(|id| IdentitySelector::ClientId(id.to_string()));
        Ok(links)
    }

    /// `link` of `links` returned a token: the chain sticks to it.
    pub fn succeeded(&mut self, link: Link, links: Links) {
        self.sticky = Some((link, links));
    }

    /// The error when every link in `attempts` was unavailable: each link and why, then the
    /// developer tools that cannot run here.
    pub fn exhausted(attempts: &[(Link, Error)]) -> Error {
        let mut message = String::from("DefaultAzureCredential: no credential could get a token. ");
        for (link, error) in attempts {
            message.push_str(&format!("{}: {}. ", link.name(), link.reason(error)));
        }
        message.push_str(&format!(
            "{}: not available in a WebAssembly component, which cannot start processes or reach an OS broker; on a developer machine set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal",
            DEVELOPER_TOOLS[..4].join(", ")
        ));
        Error::new(ErrorKind::Unavailable, None, message)
    }
}

/// What `AZURE_TOKEN_CREDENTIALS` selects (module docs, "`AZURE_TOKEN_CREDENTIALS`").
fn selected_links(env: &EnvSnapshot) -> Result<Links, Error> {
    let raw = env.get(var::AZURE_TOKEN_CREDENTIALS).unwrap_or_default();
    let value = raw.trim().to_ascii_lowercase();
    let single = |link| Links {
        links: vec![link],
        chosen: true,
        default_identity: None,
    };
    match value.as_str() {
        "" | "prod" => Ok(Links {
            links: ALL.to_vec(),
            chosen: false,
            default_identity: None,
        }),
        "environmentcredential" => Ok(single(Link::Environment)),
        "workloadidentitycredential" => Ok(single(Link::WorkloadIdentity)),
        "managedidentitycredential" => Ok(single(Link::ManagedIdentity)),
        "dev" => Err(Error::new(
            ErrorKind::Configuration,
            None,
            format!(
                "AZURE_TOKEN_CREDENTIALS=dev selects developer tools ({}), which start processes and cannot run in a WebAssembly component; unset it or set it to prod",
                DEVELOPER_TOOLS[..4].join(", ")
            ),
        )),
        name if DEVELOPER_TOOLS
            .iter()
            .any(|tool| tool.eq_ignore_ascii_case(name)) =>
        {
            Err(Error::new(
                ErrorKind::Configuration,
                None,
                format!(
                    "AZURE_TOKEN_CREDENTIALS={} names a developer tool, which starts a process and cannot run in a WebAssembly component; unset it or set it to prod",
                    raw.trim()
                ),
            ))
        }
        _ => Err(Error::new(
            ErrorKind::InvalidArgument,
            None,
            format!(
                "AZURE_TOKEN_CREDENTIALS has an invalid value ({:?}); valid values are prod, dev, EnvironmentCredential, WorkloadIdentityCredential and ManagedIdentityCredential (any case)",
                raw.trim().chars().take(64).collect::<String>()
            ),
        )),
    }
}
