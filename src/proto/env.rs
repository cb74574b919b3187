//! The environment as the core sees it: an owned snapshot plus host facts, never the process.
//!
//! # Rules
//!
//! * **Empty means unset, everywhere** ([`EnvSnapshot::get`]), as MSAL Go does. The SDKs are
//!   inconsistent here: msal-node decides which source to *create* with a truthiness test
//!   (empty = unset) but computes the source *name* with `!== undefined` (empty = set), so
//!   `IDENTITY_SERVER_THUMBPRINT=""` makes it report Service Fabric while its requests go to App
//!   Service; MSAL Python tests `"X" in os.environ` (empty = set). One rule avoids that split.
//! * **A snapshot, taken per call.** The adapter collects the variables for each token fetch
//!   and the core reads secrets (`IDENTITY_HEADER`, `MSI_SECRET`) from that snapshot for every
//!   request ([`crate::proto::request::build_request`]); nothing keeps them. MSAL Go re-reads
//!   them per request too; msal-node keeps the detected source, secret included, in a
//!   process-wide static, so a rotated secret is never picked up.
//! * **The guest sees only managed-identity variables**
//!   ([`is_managed_identity_variable`]): `IDENTITY_*`, `MSI_*`, `IMDS_ENDPOINT`, `AZURE_*` and
//!   `DEFAULT_IDENTITY_CLIENT_ID`. Hosts (the `azmi` CLI, the host-test crate, the examples)
//!   filter the process environment with it, so nothing else of the process leaks into the
//!   component. `HTTP_PROXY`/`HTTPS_PROXY` are therefore never seen: every managed-identity
//!   endpoint is loopback, link-local or (Service Fabric, Entra) reached directly, and a proxy
//!   cannot reach the caller's own `169.254.169.254` or `127.0.0.1`.
//! * **Host facts** ([`HostFacts`]) are what a variable cannot say: whether the Azure Arc agent
//!   binary exists (a detection input, see [`crate::proto::source`]) and whether the host can
//!   read files at all.

/// Names of the variables the managed-identity sources read (which source reads which: the
/// detection table in the `source` module docs, next to [`crate::proto::Source`]).
pub mod var {
    /// App Service, Arc, Service Fabric token URL.
    pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    /// App Service / Service Fabric shared secret.
    pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
    /// Service Fabric TLS certificate thumbprint (its presence marks Service Fabric).
    pub const IDENTITY_SERVER_THUMBPRINT: &str = "IDENTITY_SERVER_THUMBPRINT";
    /// Arc marker (its presence, with `IDENTITY_ENDPOINT`, selects Arc; never used to build a
    /// request).
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
    /// Entra authority host for workload identity and the environment credential.
    pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
    /// The environment credential's client secret (a service principal).
    pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
    /// The environment credential's certificate file (PEM: certificate and private key).
    pub const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
    /// The password of the certificate's private key.
    pub const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
    /// `1` or `true`: send the certificate chain (`x5c`) for subject-name/issuer auth.
    pub const AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: &str = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN";
    /// The resource-owner password flow's user (refused, see the `environment` module).
    pub const AZURE_USERNAME: &str = "AZURE_USERNAME";
    /// The resource-owner password flow's password (refused).
    pub const AZURE_PASSWORD: &str = "AZURE_PASSWORD";
    /// Which credentials the default chain tries: `prod`, `dev` or one credential's name.
    pub const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";
}

/// The variables whose values decide *which* identity answers (endpoints, tenant, authority,
/// client ids, the federated token file, the Service Fabric thumbprint). The shared secrets
/// (`IDENTITY_HEADER`, `MSI_SECRET`, `AZURE_CLIENT_SECRET`, the certificate password) are not
/// among them: a rotated secret is the same
/// identity, and a secret is never kept.
const IDENTITY_VARIABLES: [&str; 12] = [
    var::IDENTITY_ENDPOINT,
    var::IDENTITY_SERVER_THUMBPRINT,
    var::IMDS_ENDPOINT,
    var::MSI_ENDPOINT,
    var::DEFAULT_IDENTITY_CLIENT_ID,
    var::AZURE_POD_IDENTITY_AUTHORITY_HOST,
    var::AZURE_CLIENT_ID,
    var::AZURE_TENANT_ID,
    var::AZURE_FEDERATED_TOKEN_FILE,
    var::AZURE_AUTHORITY_HOST,
    var::AZURE_CLIENT_CERTIFICATE_PATH,
    var::AZURE_TOKEN_CREDENTIALS,
];

/// The values of the identity-deciding variables in one snapshot (unset and empty alike).
///
/// A cache key holds the selector and the resource, not these values: a token is looked up
/// without reading the environment (the cached path must stay fast). So the credential keeps
/// the values its last fetch saw, and when a fetch sees different ones the environment is a
/// different identity: nothing learned before applies (the credential's "A changed
/// environment"). The shared cache's store key includes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdentityEnv(Vec<Option<String>>);

impl IdentityEnv {
    /// The identity-deciding values of `env`.
    pub(crate) fn of(env: &EnvSnapshot) -> Self {
        Self(
            IDENTITY_VARIABLES
                .iter()
                .map(|name| env.get(name).map(str::to_string))
                .collect(),
        )
    }

    /// The values in a fixed order, `NAME=value` (unset: `NAME` alone), for a store key.
    pub(crate) fn canonical(&self) -> String {
        let mut out = String::new();
        for (name, value) in IDENTITY_VARIABLES.iter().zip(&self.0) {
            out.push_str(name);
            if let Some(value) = value {
                out.push('=');
                out.push_str(value);
            }
            out.push('\n');
        }
        out
    }
}

/// True for the variables a managed-identity client may see: `IDENTITY_*`, `MSI_*`,
/// `IMDS_ENDPOINT`, `AZURE_*` and `DEFAULT_IDENTITY_CLIENT_ID` (the `AZURE_*` family also
/// covers `AZURE_POD_IDENTITY_AUTHORITY_HOST` and the workload-identity variables).
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
/// Empty values count as unset everywhere (MSAL Go's rule), so the SDKs' split
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
    /// The Azure Arc agent binary (`/opt/azcmagent/bin/himds`) exists: Arc is then detected
    /// even without `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT` (msal-node, MSAL Go, MSAL Python).
    pub arc_agent_present: bool,
    /// The host cannot read files at all (proxy-wasm), so Azure Arc and workload identity
    /// must be refused up front with a clear error.
    pub no_file_access: bool,
}
