//! The environment as the core sees it: an owned snapshot plus host facts, never the process.

/// Names of the variables the managed-identity sources read (azure-mi-protocol.md §2).
pub mod var {
    /// App Service, Arc, Service Fabric token URL.
    pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    /// App Service / Service Fabric shared secret.
    pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
    /// Service Fabric TLS certificate thumbprint (its presence marks Service Fabric).
    pub const IDENTITY_SERVER_THUMBPRINT: &str = "IDENTITY_SERVER_THUMBPRINT";
    /// Arc marker (never used to build a request).
    pub const IMDS_ENDPOINT: &str = "IMDS_ENDPOINT";
    /// Cloud Shell, Azure ML and App Service 2017 token URL.
    pub const MSI_ENDPOINT: &str = "MSI_ENDPOINT";
    /// Azure ML / App Service 2017 shared secret.
    pub const MSI_SECRET: &str = "MSI_SECRET";
    /// Azure ML default identity's client id.
    pub const DEFAULT_IDENTITY_CLIENT_ID: &str = "DEFAULT_IDENTITY_CLIENT_ID";
    /// IMDS base URL override (AAD Pod Identity; also how tests reach the emulator).
    pub const AZURE_POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
    /// Workload identity client id.
    pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
    /// Workload identity tenant.
    pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
    /// Workload identity projected service-account token.
    pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
    /// Entra authority host for workload identity.
    pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
}

/// True for the variables a managed-identity client may see: `IDENTITY_*`, `MSI_*`,
/// `IMDS_ENDPOINT`, `AZURE_*` and `DEFAULT_IDENTITY_CLIENT_ID` (design.md, CLI contract).
/// Hosts use it to pass the guest nothing else.
pub fn is_managed_identity_variable(name: &str) -> bool {
    name.starts_with("IDENTITY_")
        || name.starts_with("MSI_")
        || name.starts_with("AZURE_")
        || name == var::IMDS_ENDPOINT
        || name == var::DEFAULT_IDENTITY_CLIENT_ID
}

/// An owned copy of the environment variables, collected by the adapter.
///
/// Empty values count as unset everywhere (§14 rule 1, MSAL Go's rule), so the SDKs' split
/// over `IDENTITY_SERVER_THUMBPRINT=""` cannot happen here.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: Vec<(String, String)>,
}

impl EnvSnapshot {
    /// A snapshot of the given `(name, value)` pairs; the last value of a repeated name wins.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, or `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// True when `name` is set to a non-empty value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Debug lists variable names only: values include secrets (`IDENTITY_HEADER`, `MSI_SECRET`).
impl core::fmt::Debug for EnvSnapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

/// Facts about the host that are not environment variables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The Azure Arc agent binary (`/opt/azcmagent/bin/himds`) exists (§3.1, §14 rule 2).
    pub arc_agent_present: bool,
    /// The host cannot read files at all (proxy-wasm), so Azure Arc and workload identity
    /// must be refused up front with a clear error.
    pub no_file_access: bool,
}
