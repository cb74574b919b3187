// About 360 lines: success parsing and failure classification share the body decoding and
// the quoting rules, and read best side by side.
//! Parses token responses and classifies failures.
//!
//! # Success responses
//!
//! A 2xx body must be a JSON object with a non-empty `access_token`, a known expiry and, if
//! present, `token_type` `Bearer` (any case). The expiry is `expires_on` in any format of
//! [`crate::proto::expiry`], else `expires_in` counted from the time the response was
//! **received** — not when the first attempt was sent: after a run of retries (a 410 can take a
//! minute and a half) msal-node's anchor would make the token look that much older than it
//! is. `refresh_in` is read when present (MSAL Go honours it; msal-node and MSAL Python drop
//! it). Fields such as `resource`, `not_before`, `ext_expires_in` are ignored: the cache is
//! keyed by the *requested* resource ([`crate::proto::cache`]).
//!
//! Two sanity rules no SDK applies: the token must be an RFC 6750 `b64token` (letters, digits,
//! `- . _ ~ + /`, trailing `=`), because it becomes `Authorization: Bearer <token>` and a token
//! with a line break or a space would be cached and break every request for its lifetime; and
//! it must expire within [`MAX_LIFETIME_SECS`] (7 days; Entra tokens live 1–28 hours), because
//! an expiry in the wrong unit (microseconds) would otherwise never be refreshed.
//!
//! Anything else is [`crate::proto::ErrorKind::InvalidResponse`], never a token with a made-up
//! expiry: msal-node returns an empty or already-expired token in those cases, and other
//! token types (PoP) would need deliberate support. The one exception: a 2xx that is not JSON
//! at all on the IMDS address is *unavailable* — some other server listens on
//! 169.254.169.254 (Go azidentity's rule for IMDS in a credential chain).
//!
//! # Error bodies
//!
//! [`ServiceError::parse`] normalizes every shape the sources use (as msal-node does):
//!
//! | source | shape |
//! |---|---|
//! | IMDS, Arc, Cloud Shell (OAuth style) | `{"error":"invalid_request","error_description":"Identity not found"}` |
//! | App Service 2019 | `{"statusCode":400,"message":"Unable to load requested managed identity.","correlationId":"…"}` |
//! | Service Fabric | `{"error":{"correlationId":"…","code":"SecretHeaderNotFound","message":"…"}}` |
//! | Entra ID (workload identity) | `{"error":"invalid_client","error_description":"AADSTS700024: …","correlation_id":"…",…}` |
//! | anything else (proxy HTML, empty body, Docker Desktop's 403 text) | kept as a quoted, sanitized description |
//!
//! Code = `error` or `error.code`; description = `error_description`, `message` or
//! `error.message`; correlation id = `correlation_id` or `correlationId` (top level or nested).
//! Service text is quoted with control characters removed and its length capped, and the
//! acquisition scrubs known secrets out of it first (a service may echo a header).
//!
//! # Classification of HTTP failures
//!
//! [`classify_failure`], first matching row wins. It keeps the status, the service's code and
//! the correlation id in the error, and never claims a cause the status cannot prove (the
//! Azure SDK for Rust maps every 400 to "identity not assigned").
//!
//! | answer | kind | class | why |
//! |---|---|---|---|
//! | workload identity, description names a known AADSTS code | Configuration | authentication failed | the message says which fix applies ([`crate::proto::workload`]) |
//! | `invalid_resource` or `AADSTS500011` | Configuration | authentication failed | a bad resource is a caller bug, not a missing identity |
//! | IMDS 403 whose body contains `unreachable` | Unavailable | credential unavailable | Docker Desktop's proxy answers for 169.254.169.254; every SDK treats it so |
//! | 400 "Identity not found" / "Unable to load requested managed identity", user-assigned id given | Configuration | authentication failed | Go azidentity's rule: the caller asked for that identity, a chain must not move on (JS and Python say unavailable) |
//! | the same, system-assigned | Unavailable | credential unavailable | no system identity is enabled here (Go, JS, Python agree) |
//! | 401/403 from a source with a shared secret | Configuration | authentication failed | the secret is stale or wrong (App Service does not document the status, so both count) |
//! | other 4xx except 404, 408, 410, 429 | Configuration | authentication failed | the request itself was refused |
//! | 404, 408, 410, 429, 5xx (after the retries) | Service | authentication failed | transient service states, not the caller's configuration |
//!
//! Transport failures (no response at all) are classified by the acquisition: *unavailable*
//! only while probing or before the source has ever answered this credential, else a
//! transport failure ([`crate::proto::ErrorKind::Transport`]). @azure/identity instead turns
//! every managed-identity failure into "unavailable", so a credential chain always moves on.

use super::environment;
use super::error::{Error, ErrorKind};
use super::expiry::{parse_expires_on, parse_seconds};
use super::http::HttpResponse;
use super::secret::{Secret, redact_text};
use super::selector::{IdentitySelector, SelectorKind};
use super::source::Source;
use super::time::UnixMillis;
use super::token::AccessToken;
use super::workload::{aadsts_hint, names_aadsts};
use serde_json::{Map, Value};

/// The longest token lifetime accepted: 7 days. Entra access tokens live 1–24 hours (up to
/// about 28 with continuous access evaluation); an expiry further away is a wrong unit
/// (microseconds) or garbage, and would otherwise never be refreshed.
pub(super) const MAX_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Longest service text quoted in a message.
const MAX_QUOTED: usize = 300;

/// An identity echo a response must carry (Azure Arc user-assigned: fail closed, see
/// [`crate::proto::arc`]).
#[derive(Clone, Debug)]
pub(super) struct Echo<'a> {
    /// Fields that may carry it, in order of preference.
    pub fields: &'static [&'static str],
    /// The requested value (compared case-insensitively).
    pub expected: &'a str,
}

/// Parses a 2xx body into a token: `expires_on` in every known format, else
/// `expires_in` from the time the response was *received*; an unknown expiry,
/// a missing token or a non-Bearer type is an invalid response, never an expired token.
/// With `echo`, the response must name the requested identity (fail closed).
pub(super) fn parse_token(
    source: Source,
    body: &[u8],
    received_at: UnixMillis,
    echo: Option<&Echo<'_>>,
    secrets: &[Secret],
) -> Result<AccessToken, Error> {
    let invalid = |what: String| {
        Error::new(
            ErrorKind::InvalidResponse,
            Some(source),
            format!(
                "{source}: the token response is unusable: {what}; this is a platform fault, retry later or report it with the response status"
            ),
        )
    };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        if source == Source::Imds {
            // A non-JSON 2xx on the IMDS address is some other server (Go's rule).
            return Err(Error::new(
                ErrorKind::Unavailable,
                Some(source),
                "IMDS: the endpoint answered with something that is not JSON, so it is not IMDS; no managed identity is reachable here",
            ));
        }
        return Err(invalid(format!(
            "the body is not a JSON object ({} bytes)",
            body.len()
        )));
    };
    let token = match map.get("access_token") {
        Some(Value::String(t)) if !t.is_empty() => t,
        _ => return Err(invalid("it has no access_token".into())),
    };
    // The token goes into `Authorization: Bearer <token>`: refuse what a header cannot carry
    // (RFC 6750's b64token), rather than caching it and failing every request for its lifetime.
    if !is_b64token(token) {
        return Err(invalid(
            "the access_token has characters an HTTP header cannot carry (RFC 6750 allows letters, digits, - . _ ~ + / and trailing =)".into(),
        ));
    }
    if let Some(kind) = map.get("token_type") {
        match kind.as_str() {
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            _ => {
                return Err(invalid(format!(
                    "token_type is {}, not Bearer",
                    quote_value(kind, secrets)
                )));
            }
        }
    }
    let expires_on = map
        .get("expires_on")
        .and_then(parse_expires_on)
        .or_else(|| {
            map.get("expires_in")
                .and_then(parse_seconds)
                .map(|s| received_at.as_secs().saturating_add(s))
        })
        .ok_or_else(|| {
            invalid(format!(
                "its expiry is unknown (expires_on={}, expires_in={})",
                map.get("expires_on")
                    .map_or("absent".into(), |v| quote_value(v, secrets)),
                map.get("expires_in")
                    .map_or("absent".into(), |v| quote_value(v, secrets)),
            ))
        })?;
    let lifetime = expires_on.saturating_sub(received_at.as_secs());
    if lifetime > MAX_LIFETIME_SECS {
        return Err(invalid(format!(
            "it expires {lifetime} s from now, longer than any Entra token lives (the bound is {MAX_LIFETIME_SECS} s); the expiry is in another unit or corrupt"
        )));
    }
    if UnixMillis::from_secs(expires_on) <= received_at {
        return Err(invalid(format!(
            "the token expired at {expires_on}, before it arrived (check the host clock)"
        )));
    }
    if let Some(echo) = echo {
        let echoed = echo
            .fields
            .iter()
            .find_map(|f| map.get(*f).and_then(Value::as_str));
        if !echoed.is_some_and(|e| e.eq_ignore_ascii_case(echo.expected)) {
            // Fail closed: an old agent ignores the selector and returns the system identity.
            return Err(Error::new(
                ErrorKind::Security,
                Some(source),
                format!(
                    "{source} did not confirm the requested user-assigned identity in its token response; the agent likely does not support user-assigned identities and returned the system-assigned identity; update the agent"
                ),
            ));
        }
    }
    let refresh_in = map.get("refresh_in").and_then(parse_seconds);
    Ok(AccessToken::new(
        token.clone(),
        expires_on,
        received_at,
        refresh_in,
        source,
    ))
}

/// What an error body says, normalized across the error-body shapes of the sources (table in
/// the `response` module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ServiceError {
    /// `error`, or `error.code` (Service Fabric).
    pub code: Option<String>,
    /// `error_description`, `message`, or `error.message`.
    pub description: Option<String>,
    /// `correlation_id`, `correlationId`, or `error.correlationId`.
    pub correlation_id: Option<String>,
}

impl ServiceError {
    /// Reads any of the known shapes; a non-JSON body becomes a quoted description. Every
    /// field is redacted of `secrets` after JSON decoding and before it is cut for quoting.
    pub(super) fn parse(body: &[u8], secrets: &[Secret]) -> ServiceError {
        let sanitize = |text: &str| sanitize(text, secrets);
        let map = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                return ServiceError {
                    description: (!text.is_empty()).then(|| sanitize(text)),
                    ..ServiceError::default()
                };
            }
        };
        let nested = map.get("error").and_then(Value::as_object);
        let field = |m: &Map<String, Value>, names: &[&str]| {
            names
                .iter()
                .find_map(|n| m.get(*n).and_then(Value::as_str))
                .map(sanitize)
        };
        ServiceError {
            code: map
                .get("error")
                .and_then(Value::as_str)
                .map(sanitize)
                .or_else(|| nested.and_then(|n| field(n, &["code"]))),
            description: field(&map, &["error_description", "message"])
                .or_else(|| nested.and_then(|n| field(n, &["message"]))),
            correlation_id: field(&map, &["correlation_id", "correlationId"])
                .or_else(|| nested.and_then(|n| field(n, &["correlationId", "correlation_id"]))),
        }
    }

    fn summary(&self, status: u16) -> String {
        match (&self.code, &self.description) {
            (Some(c), Some(d)) => format!("{status} {c}: {d}"),
            (Some(c), None) => format!("{status} {c}"),
            (None, Some(d)) => format!("{status}: {d}"),
            (None, None) => format!("{status}"),
        }
    }

    fn mentions(&self, needle: &str) -> bool {
        let has = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.to_ascii_lowercase().contains(needle))
        };
        has(&self.code) || has(&self.description)
    }
}

/// Classifies a non-2xx answer (table in the module docs). Never claims a cause the status
/// cannot prove.
pub(super) fn classify_failure(
    source: Source,
    selector: &IdentitySelector,
    resource: &str,
    response: &HttpResponse,
    secrets: &[Secret],
) -> Error {
    let status = response.status;
    let service = ServiceError::parse(&response.body, secrets);
    let said = service.summary(status);
    let user_assigned = selector.kind() != SelectorKind::SystemAssigned;
    let who = describe_identity(selector);
    let description = service.description.as_deref();
    let (kind, message) = if let (Source::WorkloadIdentity, Some(hint)) =
        (source, description.and_then(aadsts_hint))
    {
        (
            ErrorKind::Configuration,
            format!("{source}: Entra ID refused the federated token ({said}); {hint}"),
        )
    } else if let (Source::ClientSecret | Source::ClientCertificate, Some(hint)) =
        (source, description.and_then(environment::aadsts_hint))
    {
        (
            ErrorKind::Configuration,
            format!("{source}: Entra ID refused the service principal ({said}); {hint}"),
        )
    } else if service.mentions("invalid_resource")
        || service
            .description
            .as_deref()
            .is_some_and(|d| names_aadsts(d, 500_011))
    {
        (
            ErrorKind::Configuration,
            format!(
                "{source}: the resource \"{resource}\" is not known to Entra ID ({said}); check the scope, e.g. https://vault.azure.net/.default"
            ),
        )
    } else if source == Source::Imds && status == 403 && service.mentions("unreachable") {
        (
            ErrorKind::Unavailable,
            format!(
                "IMDS: the endpoint is unreachable ({said}); a local proxy (such as Docker Desktop's) answered instead of IMDS"
            ),
        )
    } else if status == 400
        && (service.mentions("identity not found")
            || service.mentions("unable to load requested managed identity"))
    {
        if user_assigned {
            (
                ErrorKind::Configuration,
                format!(
                    "{source}: {who} is not assigned to this resource ({said}); assign the identity to the resource or fix the id"
                ),
            )
        } else {
            (
                ErrorKind::Unavailable,
                format!(
                    "{source}: no system-assigned identity is enabled on this resource ({said}); enable it, or select a user-assigned identity"
                ),
            )
        }
    } else if matches!(status, 401 | 403) && source.spec().secret_header.is_some() {
        (
            ErrorKind::Configuration,
            format!(
                "{source}: the endpoint rejected the secret from {} ({said}); restart the process so it gets the platform's current value",
                source.spec().variables
            ),
        )
    } else if (400..500).contains(&status) && !matches!(status, 404 | 408 | 410 | 429) {
        // Not 404 (IMDS "updating"), 408, 410 (IMDS "going through updates") or 429
        // (throttled): transient service states, not the caller's configuration.
        (
            ErrorKind::Configuration,
            format!("{source}: the request for {who} was refused ({said})"),
        )
    } else {
        (
            ErrorKind::Service,
            format!(
                "{source}: the endpoint failed ({said}); retry later, the platform reports this as a service fault"
            ),
        )
    };
    Error::new(kind, Some(source), message).with_service(
        Some(status),
        service.code,
        service.correlation_id,
    )
}

/// How messages name the requested identity (ids are not secrets).
fn describe_identity(selector: &IdentitySelector) -> String {
    match selector {
        IdentitySelector::SystemAssigned => "the system-assigned identity".into(),
        IdentitySelector::ClientId(id) => format!("the user-assigned identity with client id {id}"),
        IdentitySelector::ObjectId(id) => format!("the user-assigned identity with object id {id}"),
        IdentitySelector::ResourceId(id) => format!("the user-assigned identity {id}"),
    }
}

/// Service text made safe to quote: secrets redacted, control characters dropped, then the
/// length capped (redacting after the cut would miss a secret the cut left a prefix of).
fn sanitize(text: &str, secrets: &[Secret]) -> String {
    let text = redact_text(text, secrets);
    let text = text.as_str();
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

/// A JSON scalar as text for messages (without pulling in the JSON serializer).
fn quote_value(v: &Value, secrets: &[Secret]) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", sanitize(s, secrets)),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.to_string(),
            (_, Some(i)) => i.to_string(),
            _ => "a fractional number".into(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
