//! The managed-identity sources: what each is and how it is detected. Their wire facts are
//! one table in [`crate::proto::spec`].
//!
//! A *source* is the hosting environment's token endpoint. Every one of them takes a v1
//! *resource* (the scope minus `/.default`, see [`crate::proto::scope`]) except workload
//! identity, which talks to Entra ID's v2 endpoint and sends the scope itself.
//!
//! # Detection: which variables select which source
//!
//! [`crate::proto::detect::detect`] picks the first row that matches, from an environment
//! snapshot plus one host fact (does the Arc agent binary exist). Empty variables count as
//! unset everywhere (see [`crate::proto::env`]).
//!
//! | order | source | selected when | endpoint |
//! |---|---|---|---|
//! | 1 | Service Fabric | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT` | `IDENTITY_ENDPOINT`, must be `https` |
//! | 2 | App Service / Functions / Container Apps | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` | `IDENTITY_ENDPOINT` |
//! | 3 | Azure ML | `MSI_ENDPOINT` + `MSI_SECRET` + `DEFAULT_IDENTITY_CLIENT_ID` | `MSI_ENDPOINT` |
//! | 3 | App Service 2017-09-01 (legacy) | `MSI_ENDPOINT` + `MSI_SECRET` | `MSI_ENDPOINT` |
//! | 4 | Cloud Shell | `MSI_ENDPOINT` alone | `MSI_ENDPOINT` |
//! | 5 | Azure Arc | `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the agent binary `/opt/azcmagent/bin/himds` exists | `IDENTITY_ENDPOINT`, else [`crate::proto::detect::ARC_DEFAULT_ENDPOINT`] |
//! | 6 | workload identity (AKS) | `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_TENANT_ID` + a client id (`AZURE_CLIENT_ID` or a user-assigned selector) | `AZURE_AUTHORITY_HOST`, default `https://login.microsoftonline.com`, must be `https` |
//! | 7 | IMDS (VMs, scale sets, AKS nodes), AAD Pod Identity | always (fallback) | `http://169.254.169.254`, or `AZURE_POD_IDENTITY_AUTHORITY_HOST`, plus `/metadata/identity/oauth2/token` |
//!
//! * **Order 1–5 and 7** is the order both msal-node (`ManagedIdentityClient.selectManagedIdentitySource`
//!   in `@azure/msal-node` 7.x) and MSAL Go (`apps/managedidentity` `GetSource`) use. Python
//!   azure-identity (`_credentials/managed_identity.py`) differs in two ways azmi does not copy:
//!   it tries Arc before Azure ML / Cloud Shell, and with `IDENTITY_ENDPOINT` alone it gives
//!   no credential at all instead of falling back to IMDS (azmi: IMDS, like msal-node and Go).
//! * **Workload identity** is placed after every platform source and before IMDS. Before IMDS
//!   because on an AKS node IMDS answers with the *node's* identity, not the pod's. After the
//!   platform sources because an explicit platform configuration (App Service, Service Fabric,
//!   Arc, ML, Cloud Shell variables) is more specific than inherited `AZURE_*` variables;
//!   @azure/identity's `ManagedIdentityCredential` lets token exchange win over App Service
//!   (deliberate difference). `AZURE_AUTHORITY_HOST` is optional here (Python requires it to
//!   select workload identity; AKS does not always set it). A user-assigned selector also
//!   counts as the client id, so that an object or resource id is refused by workload identity
//!   rather than sent to the node's IMDS.
//! * **Azure ML vs App Service 2017.** They share one wire format and no SDK tells them apart;
//!   azmi names the source Azure ML when `DEFAULT_IDENTITY_CLIENT_ID` is set (the ML compute
//!   sets it), which decides whether `Metadata: true` and the default `clientid` are sent.
//! * **Azure Arc agent presence** is a host fact ([`crate::proto::env::HostFacts`]): the
//!   component's host preopens `/opt/azcmagent/bin` read-only and reports whether `himds` is
//!   there (msal-node checks it is readable, MSAL Go that it exists). Found that way, the
//!   endpoint is `http://127.0.0.1:40342/metadata/identity/oauth2/token` (msal-node and MSAL Go
//!   use `127.0.0.1`; MSAL Python uses `localhost`, which may resolve to `::1` while the agent
//!   listens on IPv4). Only the Linux agent is supported: the Windows key directory and binary
//!   live under `%ProgramData%` / `%ProgramFiles%`, which a WASI guest does not see.
//! * **AAD Pod Identity** is IMDS at another base URL (the NMI daemon impersonates IMDS):
//!   trailing slashes are stripped from `AZURE_POD_IDENTITY_AUTHORITY_HOST` and the IMDS path
//!   appended, as Python does. msal-node's URL canonicalization lower-cases the URL and adds a
//!   trailing slash (and a slash in the variable gives `//metadata`); the JS probe builds an
//!   absolute path and drops any path prefix; Go ignores the variable.
//! * **Service Fabric** is recognized by its thumbprint, which must be a SHA-1 thumbprint
//!   (colons and whitespace removed, 40 hex digits: MSAL Go 1.9 / MSAL Python 1.39's rule);
//!   the host pins the endpoint's self-signed certificate to it
//!   ([`crate::proto::detect::normalize_thumbprint`]). Its endpoint, and the Entra authority
//!   of workload identity, must be `https` (MSAL Go and Python refuse anything else).
//! * Detection reads only the snapshot it is given, and secrets (`IDENTITY_HEADER`,
//!   `MSI_SECRET`) are read from the snapshot for every request, never kept
//!   ([`crate::proto::request`]); msal-node caches the detected source with its secret in a
//!   process-wide static, so a rotated `IDENTITY_HEADER` is never picked up there.
//!
/// A managed-identity source: the hosting environment's token endpoint (see the module docs
/// for how each is detected and asked).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Instance Metadata Service, or AAD Pod Identity via `AZURE_POD_IDENTITY_AUTHORITY_HOST`.
    Imds,
    /// App Service / Functions / Container Apps, API 2019-08-01.
    AppService,
    /// Legacy App Service, API 2017-09-01.
    AppService2017,
    /// Azure Machine Learning (2017-09-01 wire format).
    AzureMl,
    /// Azure Cloud Shell.
    CloudShell,
    /// Azure Arc-enabled servers (HIMDS agent).
    AzureArc,
    /// Service Fabric.
    ServiceFabric,
    /// AKS workload identity (Entra client-assertion flow).
    WorkloadIdentity,
    /// A service principal with a client secret in the environment (`AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`): the default chain's environment credential.
    ClientSecret,
    /// A service principal with a certificate in the environment
    /// (`AZURE_CLIENT_CERTIFICATE_PATH`): the default chain's environment credential.
    ClientCertificate,
}

/// Every source: the managed-identity ones in detection order, then the environment
/// credential's two (selected only by the default chain, [`crate::proto::chain`]).
const ALL: [Source; 10] = [
    Source::ServiceFabric,
    Source::AppService,
    Source::AzureMl,
    Source::AppService2017,
    Source::CloudShell,
    Source::AzureArc,
    Source::WorkloadIdentity,
    Source::Imds,
    Source::ClientSecret,
    Source::ClientCertificate,
];

impl Source {
    /// Human name, e.g. `App Service`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Imds => "IMDS",
            Source::AppService => "App Service",
            Source::AppService2017 => "App Service (2017-09-01)",
            Source::AzureMl => "Azure ML",
            Source::CloudShell => "Cloud Shell",
            Source::AzureArc => "Azure Arc",
            Source::ServiceFabric => "Service Fabric",
            Source::WorkloadIdentity => "workload identity",
            Source::ClientSecret => "environment credential (client secret)",
            Source::ClientCertificate => "environment credential (client certificate)",
        }
    }

    /// The source whose [`Source::id`] is `id`.
    pub fn from_id(id: &str) -> Option<Self> {
        ALL.into_iter().find(|s| s.id() == id)
    }

    /// Stable machine name (CLI JSON, logs), e.g. `app_service`.
    pub fn id(self) -> &'static str {
        match self {
            Source::Imds => "imds",
            Source::AppService => "app_service",
            Source::AppService2017 => "app_service_2017",
            Source::AzureMl => "azure_ml",
            Source::CloudShell => "cloud_shell",
            Source::AzureArc => "azure_arc",
            Source::ServiceFabric => "service_fabric",
            Source::WorkloadIdentity => "workload_identity",
            Source::ClientSecret => "client_secret",
            Source::ClientCertificate => "client_certificate",
        }
    }
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
