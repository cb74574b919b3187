//! Builds the token request for a detected source.
//!
//! The per-source facts (method, `api-version`, headers, selector parameters) are data in
//! [`crate::proto::spec::SOURCES`], explained in the [`crate::proto::spec`] module docs.
//! The rules this module adds:
//!
//! * **Secrets are read per request** from the environment snapshot of the current call
//!   (`IDENTITY_HEADER`, `MSI_SECRET`) and marked sensitive, so they never reach `Debug` output
//!   or messages. If the variable disappeared since detection the request is not sent.
//! * **Unsupported selectors are refused before anything is sent** ([`check_selector`]):
//!   Cloud Shell or Service Fabric with any user-assigned id, Azure ML / App Service 2017 with
//!   an object or resource id, workload identity with an object or resource id. The error is
//!   *unavailable* and names the source and the fix; sending them anyway (msal-node for
//!   Service Fabric, MSAL Python for Azure ML) returns a different identity than the one asked
//!   for.
//! * **Azure ML names its default identity** for system-assigned requests
//!   (`clientid=$DEFAULT_IDENTITY_CLIENT_ID`, as msal-node and MSAL Go do).
//! * **Cloud Shell** is a form POST with `resource` in the body and no `api-version`.
//! * **Workload identity** posts to `{authority}/{tenant}/oauth2/v2.0/token`; the body
//!   ([`workload_body`]) is completed once the federated token is read
//!   ([`crate::proto::workload`]). The **environment credential** posts its client secret to
//!   the same URL ([`crate::proto::environment`]).
//! * **A fresh `x-ms-client-request-id`** ([`request_id`], a version-4 GUID from 16 random
//!   bytes the host supplies) goes on every request, for correlation in support cases. MSAL's
//!   other telemetry headers (`x-client-SKU`, `x-client-VER`) are not sent.
//! * Query values are percent-encoded ([`crate::proto::url`]); parameter order does not matter
//!   to the services.

use super::detect::Detection;
use super::env::{EnvSnapshot, var};
use super::environment;
use super::error::{Error, ErrorKind};
use super::http::{Header, HttpRequest};
use super::selector::IdentitySelector;
use super::source::Source;
use super::url::form_body;
use super::workload;

/// `Content-Type` of the form posts (Cloud Shell, workload identity).
pub(super) const FORM: &str = "application/x-www-form-urlencoded";

/// The request for `resource` and `selector`.
///
/// Secrets are read from `env` here, for every request, never kept. The selector
/// must already be validated against the source ([`check_selector`]). For workload identity
/// the body is completed by [`workload_body`] once the federated token is known.
pub(super) fn build_request(
    detection: &Detection,
    env: &EnvSnapshot,
    selector: &IdentitySelector,
    scope: &str,
    resource: &str,
    request_id: &str,
) -> Result<HttpRequest, Error> {
    let source = detection.source;
    let spec = source.spec();
    let endpoint = &detection.endpoint;
    let mut headers = Vec::with_capacity(4);
    if spec.metadata_header {
        headers.push(plain("Metadata", "true"));
    }
    if let Some(name) = spec.secret_header {
        let variable = match source {
            Source::AppService | Source::ServiceFabric => var::IDENTITY_HEADER,
            _ => var::MSI_SECRET,
        };
        let value = env.get(variable).ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                Some(source),
                format!("{source}: {variable} is no longer set; restart the process so it gets the platform's value"),
            )
        })?;
        headers.push(Header {
            name,
            value: value.to_string(),
            sensitive: true,
        });
    }
    // A fresh request id everywhere, for support correlation.
    headers.push(plain("x-ms-client-request-id", request_id));
    let mut request = HttpRequest {
        method: spec.method,
        scheme: endpoint.scheme,
        authority: endpoint.authority.clone(),
        path_and_query: String::new(),
        headers,
        body: Vec::new(),
        body_sensitive: false,
        timeouts: spec.timeouts,
    };
    match source {
        // Form POST, the resource in the body, no api-version.
        Source::CloudShell => {
            request.headers.push(plain("Content-Type", FORM));
            request.path_and_query = endpoint.path_and_query(&[]);
            request.body = form_body(&[("resource", resource)]);
        }
        // POST {authority}/{tenant}/oauth2/v2.0/token; body added with the assertion.
        Source::WorkloadIdentity => {
            let tenant = env.get(var::AZURE_TENANT_ID).unwrap_or_default();
            workload::check_tenant(source, tenant)?;
            request.headers.push(plain("Content-Type", FORM));
            request.path_and_query = workload::token_path(&endpoint.path, tenant);
            request.body_sensitive = true;
        }
        // The same POST; the client secret in the body, read now and never kept.
        Source::ClientSecret => {
            let tenant = env.get(var::AZURE_TENANT_ID).unwrap_or_default();
            workload::check_tenant(source, tenant)?;
            let client_id = env.get(var::AZURE_CLIENT_ID).unwrap_or_default();
            let secret = env.get(var::AZURE_CLIENT_SECRET).ok_or_else(|| {
                Error::new(
                    ErrorKind::Unavailable,
                    Some(source),
                    "EnvironmentCredential: AZURE_CLIENT_SECRET is no longer set",
                )
            })?;
            request.headers.push(plain("Content-Type", FORM));
            request.path_and_query = workload::token_path(&endpoint.path, tenant);
            request.body = environment::client_secret_body(client_id, secret, scope);
            request.body_sensitive = true;
        }
        // The same POST; the body is completed with the signed assertion
        // ([`crate::proto::certificate`]) once the certificate file is read.
        #[cfg(feature = "client-certificate")]
        Source::ClientCertificate => {
            let tenant = env.get(var::AZURE_TENANT_ID).unwrap_or_default();
            workload::check_tenant(source, tenant)?;
            request.headers.push(plain("Content-Type", FORM));
            request.path_and_query = workload::token_path(&endpoint.path, tenant);
            request.body_sensitive = true;
        }
        #[cfg(not(feature = "client-certificate"))]
        Source::ClientCertificate => {
            return Err(Error::new(
                ErrorKind::Configuration,
                Some(source),
                "EnvironmentCredential: AZURE_CLIENT_CERTIFICATE_PATH is set, but this build of azmi has no certificate support; use AZURE_CLIENT_SECRET, or a build with the client-certificate feature",
            ));
        }
        _ => {
            let mut params: Vec<(&str, &str)> = Vec::with_capacity(3);
            if let Some(version) = spec.api_version {
                params.push(("api-version", version));
            }
            params.push(("resource", resource));
            match spec.selectors.param(selector.kind()).flatten() {
                Some(name) => params.push((name, selector.value())),
                // Azure ML needs its default identity named even for system-assigned.
                None => {
                    if let Some((name, variable)) = spec.system_param
                        && let Some(id) = env.get(variable)
                    {
                        params.push((name, id));
                    }
                }
            }
            request.path_and_query = endpoint.path_and_query(&params);
        }
    }
    Ok(request)
}

/// The workload-identity form: the v2 scope is sent as given, `/.default` kept.
pub(super) fn workload_body(client_id: &str, scope: &str, assertion: &str) -> Vec<u8> {
    form_body(&[
        ("client_id", client_id),
        ("scope", scope),
        ("grant_type", "client_credentials"),
        ("client_assertion_type", workload::CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion),
    ])
}

/// The client id workload identity authenticates as: the selector's, else `AZURE_CLIENT_ID`.
pub(super) fn workload_client_id<'a>(
    env: &'a EnvSnapshot,
    selector: &'a IdentitySelector,
) -> Option<&'a str> {
    match selector {
        IdentitySelector::ClientId(id) => Some(id),
        _ => env.get(var::AZURE_CLIENT_ID),
    }
}

/// Refuses a selector the source cannot honour, before anything is sent.
pub(super) fn check_selector(source: Source, selector: &IdentitySelector) -> Result<(), Error> {
    let kind = selector.kind();
    if source.spec().selectors.param(kind).is_some() {
        return Ok(());
    }
    let why = match source {
        Source::CloudShell => {
            "Cloud Shell only has the signed-in user's system identity; omit the user-assigned id"
        }
        Source::ServiceFabric => {
            "the identity is set by the cluster's resource configuration (https://aka.ms/servicefabricmi); omit the user-assigned id"
        }
        Source::AzureMl | Source::AppService2017 => {
            "this source selects user-assigned identities by client id only; pass the identity's client id"
        }
        Source::WorkloadIdentity => {
            "workload identity authenticates as an application by client id; pass the client id (or set AZURE_CLIENT_ID)"
        }
        _ => "this source cannot select that identity; pass a client id",
    };
    Err(Error::new(
        ErrorKind::Unavailable,
        Some(source),
        format!("{source} cannot use {}: {why}", kind.describe()),
    ))
}

/// A GUID (version 4 layout) from 16 host-supplied random bytes, for `x-ms-client-request-id`.
pub(crate) fn request_id(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn plain(name: &'static str, value: &str) -> Header {
    Header {
        name,
        value: value.to_string(),
        sensitive: false,
    }
}
