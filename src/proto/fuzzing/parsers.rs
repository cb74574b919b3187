//! The `response` and `www_authenticate` targets: the parsers of what a source answers.

use super::oracle::{access_token_of, check_error, check_token, fed_texts};
use super::{Input, SOURCES};
use crate::proto::arc::{ARC_KEY_DIR, ARC_KEY_MAX_BYTES, authorization, key_path};
use crate::proto::response::{Echo, ServiceError, classify_failure, parse_token};
use crate::proto::{HttpResponse, IdentitySelector, UnixMillis};

/// Where the parsers' clock stands: 2025-06-15T15:06:40Z, plus up to a second.
pub(super) const NOW: UnixMillis = UnixMillis(1_750_000_000_000);

/// Statuses the classifier treats specially, and a few it does not.
const STATUSES: [u16; 16] = [
    200, 201, 204, 299, 400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504, 599,
];

/// A user-assigned selector (or system-assigned) from one byte.
pub(super) fn selector(b: u8) -> IdentitySelector {
    const ID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    match b % 4 {
        0 => IdentitySelector::SystemAssigned,
        1 => IdentitySelector::ClientId(ID.into()),
        2 => IdentitySelector::ObjectId(ID.into()),
        _ => IdentitySelector::ResourceId(
            "/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
                .into(),
        ),
    }
}

/// Bytes: source, selector (and whether Arc must echo it), status, milliseconds, then the body.
///
/// The 2xx parser either refuses the body or returns the body's own `access_token`, header
/// safe, with a known expiry after `now` and at most 7 days away and its timings in order.
/// The failure classifier never panics and quotes service text without control characters.
pub fn response(data: &[u8]) {
    let mut input = Input::new(data);
    let source = input.pick(&SOURCES);
    let selector = selector(input.byte());
    let status = match input.byte() {
        b if usize::from(b) < STATUSES.len() * 8 => STATUSES[usize::from(b) % STATUSES.len()],
        b => 100 + u16::from(b) * 2,
    };
    let now = NOW.plus_millis(u64::from(input.u16() % 1000));
    let body = input.rest();
    let echo = match &selector {
        IdentitySelector::SystemAssigned => None,
        IdentitySelector::ClientId(id) => Some(Echo {
            fields: &["client_id"],
            expected: id,
        }),
        IdentitySelector::ObjectId(id) => Some(Echo {
            fields: &["object_id"],
            expected: id,
        }),
        IdentitySelector::ResourceId(id) => Some(Echo {
            fields: &["msi_res_id", "mi_res_id"],
            expected: id,
        }),
    };
    let mut fed = Vec::new();
    fed_texts(body, &mut fed);
    match parse_token(source, body, now, echo.as_ref(), &[]) {
        Ok(token) => {
            assert_eq!(
                access_token_of(body).as_deref(),
                Some(token.secret()),
                "the token is not the body's access_token"
            );
            assert_eq!(token.source(), source);
            check_token(&token, now);
        }
        Err(error) => check_error(&error, &[], &fed),
    }
    let answer = HttpResponse {
        status,
        headers: Vec::new(),
        body: body.to_vec(),
    };
    let error = classify_failure(source, &selector, "https://vault.azure.net", &answer, &[]);
    assert_eq!(error.status(), Some(status));
    check_error(&error, &[], &fed);
    let said = ServiceError::parse(body, &[]);
    for text in [said.code, said.description, said.correlation_id]
        .into_iter()
        .flatten()
    {
        assert!(!text.chars().any(char::is_control), "unsanitized: {text:?}");
    }
}

/// Bytes: one selector byte, then either the `WWW-Authenticate` value (even selector) or the
/// key file's contents (odd).
///
/// A key path is always a `.key` file directly in [`ARC_KEY_DIR`], never hidden, never a
/// traversal; an `Authorization` value is `Basic ` and printable ASCII without spaces, at most
/// 4 KiB of key.
pub fn www_authenticate(data: &[u8]) {
    let mut input = Input::new(data);
    let which = input.byte();
    let bytes = input.rest();
    if which.is_multiple_of(2) {
        let header = String::from_utf8_lossy(bytes);
        let header = which.is_multiple_of(4).then_some(header.as_ref());
        match key_path(header) {
            Ok(path) => {
                let name = path
                    .strip_prefix(ARC_KEY_DIR)
                    .and_then(|p| p.strip_prefix('/'))
                    .unwrap_or_else(|| panic!("a key path outside the directory: {path:?}"));
                assert!(
                    !name.contains(['/', '\\', '\0'])
                        && !name.starts_with('.')
                        && name.len() > ".key".len()
                        && name.ends_with(".key"),
                    "not a plain .key file: {path:?}"
                );
            }
            Err(error) => {
                let mut fed = Vec::new();
                fed_texts(bytes, &mut fed);
                check_error(&error, &[], &fed);
            }
        }
    } else {
        match authorization(bytes) {
            Ok(value) => {
                let key = value
                    .strip_prefix("Basic ")
                    .unwrap_or_else(|| panic!("not Basic: {value:?}"));
                assert_eq!(key.as_bytes(), bytes, "the key was changed");
                assert!(!key.is_empty() && key.len() <= ARC_KEY_MAX_BYTES);
                assert!(key.bytes().all(|b| b.is_ascii_graphic()), "not header-safe");
            }
            Err(error) => check_error(&error, &[], &[]),
        }
    }
}
