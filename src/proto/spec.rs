//! Every source's protocol facts in one table ([`SOURCES`]): what to send, how to select an
//! identity, which timeouts and retry policy apply. Detection is in [`crate::proto::source`].
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
//! | environment, client secret | form POST to `{authority}/{tenant}/oauth2/v2.0/token` ([`crate::proto::environment`]) | — | `AZURE_CLIENT_SECRET`, as `client_secret` | no | — | — | — | `client_id=$AZURE_CLIENT_ID` |
//! | environment, certificate | the same POST, a signed `client_assertion` | — | the certificate's key signs the assertion | no | — | — | — | `client_id=$AZURE_CLIENT_ID` |
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
//!
//! The per-phase timers do not bound a whole response (a body trickled one chunk every 9 s
//! never trips a 10 s between-bytes timer), so every request also carries a whole-exchange
//! bound, the sum of its phases. Every number is cut to what is left of the call's deadline
//! before the request is handed out (the acquisition's `poll_action`): a `timeout-ms` of 2 s
//! means no host is ever asked to wait 30 s.

use super::http::{Method, Timeouts};
use super::retry::{IMDS_RETRY, LOCAL_RETRY, NO_404_RETRY, RetryPolicy};
use super::selector::SelectorKind;
use super::source::Source;

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

/// Everything protocol-specific about one source.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// The source this row describes.
    pub source: Source,
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
const IMDS_TIMEOUTS: Timeouts = Timeouts::phases(2_000, 30_000, 10_000);
/// Other local endpoints: a few seconds to connect, the 10–60 s band per attempt overall.
const LOCAL_TIMEOUTS: Timeouts = Timeouts::phases(5_000, 30_000, 10_000);

const NO_SELECTORS: SelectorParams = SelectorParams {
    client_id: None,
    object_id: None,
    resource_id: None,
};

/// The protocol table: one row per [`Source`], rendered as a table in the module docs.
pub(super) const SOURCES: [SourceSpec; 10] = [
    // client_id / object_id / msi_res_id: all SDKs agree.
    SourceSpec {
        source: Source::Imds,
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
    // A service principal: the application is the identity, so no selector applies.
    SourceSpec {
        source: Source::ClientSecret,
        variables: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
        api_version: None,
        method: Method::Post,
        selectors: NO_SELECTORS,
        system_param: None,
        secret_header: None,
        metadata_header: false,
        timeouts: LOCAL_TIMEOUTS,
        retry: &NO_404_RETRY,
    },
    SourceSpec {
        source: Source::ClientCertificate,
        variables: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH",
        api_version: None,
        method: Method::Post,
        selectors: NO_SELECTORS,
        system_param: None,
        secret_header: None,
        metadata_header: false,
        timeouts: LOCAL_TIMEOUTS,
        retry: &NO_404_RETRY,
    },
];

impl Source {
    /// Whether this source can serve a call that selects the identity by `kind` (the
    /// selector columns of the table above), for diagnostics.
    pub fn honours(self, kind: SelectorKind) -> bool {
        self.spec().selectors.param(kind).is_some()
    }

    /// The variables that select this source, for diagnostics (e.g. `IDENTITY_ENDPOINT and
    /// IDENTITY_HEADER`).
    pub fn variables(self) -> &'static str {
        self.spec().variables
    }

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
            Source::ClientSecret => 8,
            Source::ClientCertificate => 9,
        };
        &SOURCES[index]
    }
}
