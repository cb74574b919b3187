//! The managed-identity sources and their protocol facts, in one table ([`SOURCES`]).
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
//! # Per-source wire facts
//!
//! | source | request | `api-version` | secret header (variable) | `Metadata: true` | client id | object id | resource id | system-assigned sends |
//! |---|---|---|---|---|---|---|---|---|
//! | IMDS | GET | `2018-02-01` | — | yes | `client_id` | `object_id` | `msi_res_id` | nothing |
//! | App Service | GET | `2019-08-01` | `X-IDENTITY-HEADER` (`IDENTITY_HEADER`) | no | `client_id` | `object_id` | `mi_res_id` | nothing |
//! | App Service 2017 | GET | `2017-09-01` | `secret` (`MSI_SECRET`) | no | `clientid` | refused | refused | nothing |
//! | Azure ML | GET | `2017-09-01` | `secret` (`MSI_SECRET`) | yes | `clientid` | refused | refused | `clientid=$DEFAULT_IDENTITY_CLIENT_ID` |
//! | Cloud Shell | form POST, `resource` in the body | — | — | yes | refused | refused | refused | nothing |
//! | Azure Arc | GET, then the 401 challenge ([`crate::proto::arc`]) | `2020-06-01` | `Authorization: Basic <key file>` | yes | `client_id` | `object_id` | `msi_res_id` | nothing |
//! | Service Fabric | GET | `2019-07-01-preview` | `Secret` (`IDENTITY_HEADER`) | no | refused | refused | refused | nothing |
//! | workload identity | form POST to `{authority}/{tenant}/oauth2/v2.0/token` ([`crate::proto::workload`]) | — | the federated token, as `client_assertion` | no | form `client_id` | refused | refused | `client_id=$AZURE_CLIENT_ID` |
//!
//! * Every request also carries a fresh `x-ms-client-request-id` GUID (from host randomness)
//!   for support correlation, as MSAL does for IMDS and the Azure SDK pipelines do everywhere.
//!   No request carries `X-Forwarded-For`: IMDS rejects requests that do. Query values are
//!   percent-encoded as RFC 3986 unreserved characters ([`crate::proto::url`]).
//! * IMDS rejects a request without `Metadata: true`; Arc and Cloud Shell expect it too, and
//!   msal-node sends it to Azure ML (MSAL Python also to App Service: "unnecessary yet
//!   harmless"). azmi sends it where msal-node does.
//! * App Service's documentation calls the object-id parameter `principal_id` with `object_id`
//!   as an alias; every current MSAL (msal-node, MSAL Go, MSAL Python) sends `object_id`.
//! * Arc ignores `mi_res_id` and would answer with the system identity, so resource ids go as
//!   `msi_res_id`; a user-assigned Arc token must echo the requested id (see
//!   [`crate::proto::arc`]).
//! * "Refused" means `credential-unavailable` naming the source, before anything is sent
//!   ([`crate::proto::request::check_selector`]). Some SDKs send these anyway and get the
//!   wrong identity back: msal-node warns and still sends a selector to Service Fabric (the
//!   cluster's identity comes back: Service Fabric identities are set by the cluster's
//!   resource configuration, <https://aka.ms/servicefabricmi>); MSAL Python sends
//!   `object_id`/`msi_res_id` to Azure ML, which ignores them. Cloud Shell has only the
//!   signed-in user's identity.
//! * Azure ML needs its default identity named even for system-assigned requests (msal-node and
//!   MSAL Go send `clientid=$DEFAULT_IDENTITY_CLIENT_ID`; MSAL Python sends nothing; the
//!   requirement is reported in Azure/azure-sdk-for-js#27920).
//! * Service Fabric's header is `secret` in msal-node and `Secret` in MSAL Go and Python (header
//!   names are case-insensitive). Its TLS certificate is self-signed; the host accepts it only
//!   when its SHA-1 equals `IDENTITY_SERVER_THUMBPRINT`, for that one authority.
//!
//! # Timeouts
//!
//! Per attempt, enforced by the host (the core only returns deadlines): connect 2 s for IMDS
//! (Python azure-identity's IMDS `connection_timeout`; a link-local connect takes well under a
//! millisecond, so anything slower means nothing is there), 5 s for the other local endpoints;
//! 30 s to the first response byte and 10 s between body chunks everywhere. The SDKs range
//! from no timeout at all (msal-node, @azure/identity) to 60 s per IMDS try (Go azidentity);
//! 10–60 s per attempt is the sensible band. Retries are per source too: see
//! [`crate::proto::retry`].

use super::http::Method;
use super::retry::{IMDS_RETRY, LOCAL_RETRY, NO_404_RETRY, RetryPolicy};
use super::selector::SelectorKind;

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
}

/// Which wire parameter carries each selector kind; `None` = the source cannot honour it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SelectorParams {
    /// Parameter for a client id.
    pub client_id: Option<&'static str>,
    /// Parameter for an object (principal) id.
    pub object_id: Option<&'static str>,
    /// Parameter for an ARM resource id.
    pub resource_id: Option<&'static str>,
}

impl SelectorParams {
    /// How `kind` goes on the wire: `None` when the source cannot honour it, `Some(None)`
    /// for system-assigned (no parameter), `Some(Some(name))` otherwise.
    pub fn param(&self, kind: SelectorKind) -> Option<Option<&'static str>> {
        match kind {
            SelectorKind::SystemAssigned => Some(None),
            SelectorKind::ClientId => self.client_id.map(Some),
            SelectorKind::ObjectId => self.object_id.map(Some),
            SelectorKind::ResourceId => self.resource_id.map(Some),
        }
    }
}

/// Per-attempt timeouts, enforced by the host (values and reasons: module docs, "Timeouts").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect_ms: u64,
    /// From request sent to response headers.
    pub first_byte_ms: u64,
    /// Between response body chunks.
    pub between_bytes_ms: u64,
}

/// Everything protocol-specific about one source.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// The source this row describes.
    pub source: Source,
    /// Human name used in messages.
    pub name: &'static str,
    /// Stable machine name (CLI JSON, logs).
    pub id: &'static str,
    /// The environment variables that select it, for messages.
    pub variables: &'static str,
    /// `api-version` query value, if the source takes one.
    pub api_version: Option<&'static str>,
    /// Request method (Cloud Shell and workload identity post forms; the others GET).
    pub method: Method,
    /// Selector parameter names (module docs, "Per-source wire facts").
    pub selectors: SelectorParams,
    /// For system-assigned: `(parameter, variable)` naming the platform default identity.
    pub system_param: Option<(&'static str, &'static str)>,
    /// Header carrying the shared secret, if any.
    pub secret_header: Option<&'static str>,
    /// Sends `Metadata: true` (IMDS, Arc, Cloud Shell and Azure ML, as msal-node does).
    pub metadata_header: bool,
    /// Per-attempt timeouts.
    pub timeouts: Timeouts,
    /// Which failures are retried, and how (the table in the `retry` module docs, next to
    /// [`RetryPolicy`]).
    pub retry: &'static RetryPolicy,
}

/// IMDS: Python azure-identity's 2 s connect timeout; link-local connects are sub-millisecond.
const IMDS_TIMEOUTS: Timeouts = Timeouts {
    connect_ms: 2_000,
    first_byte_ms: 30_000,
    between_bytes_ms: 10_000,
};
/// Other local endpoints: a few seconds to connect, the 10–60 s band per attempt overall.
const LOCAL_TIMEOUTS: Timeouts = Timeouts {
    connect_ms: 5_000,
    first_byte_ms: 30_000,
    between_bytes_ms: 10_000,
};

const NO_SELECTORS: SelectorParams = SelectorParams {
    client_id: None,
    object_id: None,
    resource_id: None,
};

/// The protocol table: one row per [`Source`], rendered as a table in the module docs.
pub const SOURCES: [SourceSpec; 8] = [
    // client_id / object_id / msi_res_id: all SDKs agree.
    SourceSpec {
        source: Source::Imds,
        name: "IMDS",
        id: "imds",
        variables: "no managed-identity variables (or AZURE_POD_IDENTITY_AUTHORITY_HOST)",
        api_version: Some("2018-02-01"),
        method: Method::Get,
        selectors: SelectorParams {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("msi_res_id"),
        },
        system_param: None,
        secret_header: None,
        metadata_header: true,
        timeouts: IMDS_TIMEOUTS,
        retry: &IMDS_RETRY,
    },
    // object_id as all current MSALs send (the docs' principal_id is an alias), mi_res_id.
    SourceSpec {
        source: Source::AppService,
        name: "App Service",
        id: "app_service",
        variables: "IDENTITY_ENDPOINT and IDENTITY_HEADER",
        api_version: Some("2019-08-01"),
        method: Method::Get,
        selectors: SelectorParams {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("mi_res_id"),
        },
        system_param: None,
        secret_header: Some("X-IDENTITY-HEADER"),
        metadata_header: false,
        timeouts: LOCAL_TIMEOUTS,
        retry: &LOCAL_RETRY,
    },
    // `clientid` only; object/resource ids are refused, not silently ignored by the endpoint
    // (MSAL Python sends them and gets the system identity).
    SourceSpec {
        source: Source::AppService2017,
        name: "App Service (2017-09-01)",
        id: "app_service_2017",
        variables: "MSI_ENDPOINT and MSI_SECRET",
        api_version: Some("2017-09-01"),
        method: Method::Get,
        selectors: SelectorParams {
            client_id: Some("clientid"),
            object_id: None,
            resource_id: None,
        },
        system_param: None,
        secret_header: Some("secret"),
        metadata_header: false,
        timeouts: LOCAL_TIMEOUTS,
        retry: &LOCAL_RETRY,
    },
    // Same wire as 2017; system-assigned sends clientid=$DEFAULT_IDENTITY_CLIENT_ID.
    SourceSpec {
        source: Source::AzureMl,
        name: "Azure ML",
        id: "azure_ml",
        variables: "MSI_ENDPOINT, MSI_SECRET and DEFAULT_IDENTITY_CLIENT_ID",
        api_version: Some("2017-09-01"),
        method: Method::Get,
        selectors: SelectorParams {
            client_id: Some("clientid"),
            object_id: None,
            resource_id: None,
        },
        system_param: Some(("clientid", "DEFAULT_IDENTITY_CLIENT_ID")),
        secret_header: Some("secret"),
        metadata_header: true,
        timeouts: LOCAL_TIMEOUTS,
        retry: &LOCAL_RETRY,
    },
    // Form POST, no api-version, only the signed-in user's identity.
    SourceSpec {
        source: Source::CloudShell,
        name: "Cloud Shell",
        id: "cloud_shell",
        variables: "MSI_ENDPOINT without MSI_SECRET",
        api_version: None,
        method: Method::Post,
        selectors: NO_SELECTORS,
        system_param: None,
        secret_header: None,
        metadata_header: true,
        timeouts: LOCAL_TIMEOUTS,
        retry: &LOCAL_RETRY,
    },
    // Arc ignores mi_res_id, so resource ids go as msi_res_id (and must be echoed back).
    SourceSpec {
        source: Source::AzureArc,
        name: "Azure Arc",
        id: "azure_arc",
        variables: "IDENTITY_ENDPOINT and IMDS_ENDPOINT, or /opt/azcmagent/bin/himds",
        api_version: Some("2020-06-01"),
        method: Method::Get,
        selectors: SelectorParams {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("msi_res_id"),
        },
        system_param: None,
        secret_header: None,
        metadata_header: true,
        timeouts: LOCAL_TIMEOUTS,
        retry: &LOCAL_RETRY,
    },
    // Identity fixed by the cluster; sending a selector returns the wrong identity (msal-node).
    SourceSpec {
        source: Source::ServiceFabric,
        name: "Service Fabric",
        id: "service_fabric",
        variables: "IDENTITY_ENDPOINT, IDENTITY_HEADER and IDENTITY_SERVER_THUMBPRINT",
        api_version: Some("2019-07-01-preview"),
        method: Method::Get,
        selectors: NO_SELECTORS,
        system_param: None,
        secret_header: Some("Secret"),
        metadata_header: false,
        timeouts: LOCAL_TIMEOUTS,
        retry: &NO_404_RETRY,
    },
    // The client id is a form field of the Entra request; no object/resource ids.
    SourceSpec {
        source: Source::WorkloadIdentity,
        name: "workload identity",
        id: "workload_identity",
        variables: "AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID and AZURE_CLIENT_ID",
        api_version: None,
        method: Method::Post,
        selectors: SelectorParams {
            client_id: Some("client_id"),
            object_id: None,
            resource_id: None,
        },
        system_param: None,
        secret_header: None,
        metadata_header: false,
        timeouts: LOCAL_TIMEOUTS,
        retry: &NO_404_RETRY,
    },
];

impl Source {
    /// This source's row of the `SOURCES` table.
    pub fn spec(self) -> &'static SourceSpec {
        let index = match self {
            Source::Imds => 0,
            Source::AppService => 1,
            Source::AppService2017 => 2,
            Source::AzureMl => 3,
            Source::CloudShell => 4,
            Source::AzureArc => 5,
            Source::ServiceFabric => 6,
            Source::WorkloadIdentity => 7,
        };
        &SOURCES[index]
    }

    /// Human name, e.g. `App Service`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Stable machine name, e.g. `app_service`.
    pub fn id(self) -> &'static str {
        self.spec().id
    }
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
