//! Builds the token request for a detected source (§4, §14 rules 6–10).

use super::detect::Detection;
use super::env::{EnvSnapshot, var};
use super::error::{Error, ErrorKind};
use super::http::{Header, HttpRequest, Method};
use super::selector::IdentitySelector;
use super::source::Source;

/// The request for `resource` and `selector` from the detected source.
///
/// Secrets are read from `env` here, for every request, never kept (§14 rule 4). The selector
/// must already be validated against the source ([`check_selector`]).
pub fn build_request(
    detection: &Detection,
    env: &EnvSnapshot,
    selector: &IdentitySelector,
    resource: &str,
    request_id: &str,
) -> Result<HttpRequest, Error> {
    let source = detection.source;
    let spec = source.spec();
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(3);
    if let Some(version) = spec.api_version {
        params.push(("api-version", version));
    }
    params.push(("resource", resource));
    if let Some(name) = spec.selectors.param(selector.kind()).flatten() {
        params.push((name, selector.value()));
    }
    let mut headers = Vec::with_capacity(3);
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
    // §14 rule 10: a fresh request id everywhere, for support correlation.
    headers.push(plain("x-ms-client-request-id", request_id));
    let endpoint = &detection.endpoint;
    Ok(HttpRequest {
        method: Method::Get,
        scheme: endpoint.scheme,
        authority: endpoint.authority.clone(),
        path_and_query: endpoint.path_and_query(&params),
        headers,
        body: Vec::new(),
        body_sensitive: false,
        timeouts: spec.timeouts,
    })
}

/// Refuses a selector the source cannot honour, before anything is sent (§14 rule 8).
pub fn check_selector(source: Source, selector: &IdentitySelector) -> Result<(), Error> {
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
        _ => "this source cannot select that identity; pass a client id",
    };
    Err(Error::new(
        ErrorKind::Unavailable,
        Some(source),
        format!("{source} cannot use {}: {why}", kind.describe()),
    ))
}

/// A GUID (version 4 layout) from 16 host-supplied random bytes, for `x-ms-client-request-id`.
pub fn request_id(mut bytes: [u8; 16]) -> String {
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
