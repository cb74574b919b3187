//! The managed-identity sources and their protocol facts, in one table.

use super::http::Method;
use super::retry::{IMDS_RETRY, LOCAL_RETRY, NO_404_RETRY, RetryPolicy};
use super::selector::SelectorKind;

/// A managed-identity source: the hosting environment's token endpoint (§1).
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

/// Per-attempt timeouts, enforced by the host (§14 rule 21).
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
    /// Request method (§4: Cloud Shell and workload identity post forms).
    pub method: Method,
    /// Selector parameter names (§5).
    pub selectors: SelectorParams,
    /// For system-assigned: `(parameter, variable)` naming the platform default identity.
    pub system_param: Option<(&'static str, &'static str)>,
    /// Header carrying the shared secret, if any.
    pub secret_header: Option<&'static str>,
    /// Sends `Metadata: true` (§14 rule 6).
    pub metadata_header: bool,
    /// Per-attempt timeouts.
    pub timeouts: Timeouts,
    /// Which failures are retried, and how (§8, §14 rules 17–18).
    pub retry: &'static RetryPolicy,
}

/// IMDS: Python's 2 s connect timeout (§8.9); link-local connects are sub-millisecond.
const IMDS_TIMEOUTS: Timeouts = Timeouts {
    connect_ms: 2_000,
    first_byte_ms: 30_000,
    between_bytes_ms: 10_000,
};
/// Other local endpoints: §14 rule 21 asks for 10–60 s per attempt.
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

/// The protocol table: §4 (requests), §5 (selectors), §14 rule 6 (api-versions, headers).
pub const SOURCES: [SourceSpec; 8] = [
    // §4.1, §5 row IMDS: client_id / object_id / msi_res_id, all SDKs agree.
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
    // §4.2, §5: object_id as all current MSALs send (docs alias principal_id), mi_res_id.
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
    // §4.3: `clientid` only; object/resource ids are refused, not silently dropped (MSAL Python).
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
    // §4.3: same wire as 2017; system-assigned sends clientid=$DEFAULT_IDENTITY_CLIENT_ID.
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
    // §4.4: form POST, no api-version, system identity only.
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
    // §4.5, §9.4: Arc ignores mi_res_id, so resource ids go as msi_res_id.
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
    // §4.6: identity fixed by the cluster; sending a selector returns the wrong identity (msal-node).
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
    // §10.3: the client id is a form field of the Entra request; no object/resource ids.
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
    /// This source's row of [`SOURCES`].
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
