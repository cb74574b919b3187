//! Scope → resource, and scope validation.
//!
//! Callers hold a v2 *scope* (`https://vault.azure.net/.default`); managed-identity endpoints
//! take a v1 *resource* (`https://vault.azure.net`). The rules:
//!
//! * **Exactly one scope.** Whitespace (which separates several scopes in OAuth) and control
//!   characters are refused before anything is sent (the SDKs validate no characters for
//!   managed identity; Python's developer credentials allow only letters, digits and
//!   `_ - . : /`). An empty scope gets its own message: @azure/identity reports it as
//!   "Multiple scopes are not supported".
//! * **`/.default` is cut only as a suffix** ([`DEFAULT_SUFFIX`]), as @azure/identity, Go
//!   (`TrimSuffix`) and Python do; msal-node replaces the first `/.default` anywhere in the
//!   string. A scope that is only `/.default` names no resource and is refused.
//! * **No other normalization**: a trailing slash is kept, so `https://management.azure.com`
//!   and `https://management.azure.com/` are different resources (and cache entries), as in
//!   every SDK.
//! * Workload identity sends the scope itself (v2 endpoint), after the same validation
//!   ([`validate_scope`]).

use super::error::Error;

/// The v2 scope suffix that v1 managed-identity endpoints do not take.
pub(super) const DEFAULT_SUFFIX: &str = "/.default";

/// Validates one scope and returns the v1 resource: the scope minus a trailing `/.default`.
///
/// Exactly one scope is accepted; whitespace (which separates several scopes) and control
/// characters are refused, and an empty scope gets its own message (JS calls it "multiple
/// scopes"). `/.default` is cut only as a suffix (msal-node cuts it anywhere).
pub(crate) fn resource_from_scope(scope: &str) -> Result<&str, Error> {
    validate_scope(scope)?;
    let resource = scope.strip_suffix(DEFAULT_SUFFIX).unwrap_or(scope);
    if resource.is_empty() {
        return Err(Error::invalid_argument(format!(
            "scope \"{scope}\" names no resource; pass e.g. https://vault.azure.net/.default"
        )));
    }
    Ok(resource)
}

/// Checks the scope itself (also used by workload identity, which sends the scope as is).
pub(super) fn validate_scope(scope: &str) -> Result<(), Error> {
    if scope.is_empty() {
        return Err(Error::invalid_argument(
            "scope is empty; pass exactly one scope, e.g. https://vault.azure.net/.default",
        ));
    }
    // One pass over plain ASCII (without early exit, so it vectorizes); the precise reason
    // only on failure.
    let suspicious = |b: u8| b <= b' ' || b >= 0x7f;
    if !scope.bytes().fold(false, |seen, b| seen | suspicious(b)) {
        return Ok(());
    }
    if scope.chars().any(char::is_control) {
        return Err(Error::invalid_argument(
            "scope contains control characters; pass exactly one scope, e.g. https://vault.azure.net/.default",
        ));
    }
    if scope.chars().any(char::is_whitespace) {
        return Err(Error::invalid_argument(format!(
            "scope \"{scope}\" contains whitespace; managed identity takes exactly one scope per request"
        )));
    }
    Ok(())
}
