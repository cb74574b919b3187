//! Scope → resource (§11, §14 rule 30).

use super::error::Error;

/// The v2 scope suffix that v1 managed-identity endpoints do not take.
pub const DEFAULT_SUFFIX: &str = "/.default";

/// Validates one scope and returns the v1 resource: the scope minus a trailing `/.default`.
///
/// Exactly one scope is accepted; whitespace (which separates several scopes) and control
/// characters are refused, and an empty scope gets its own message (JS calls it "multiple
/// scopes"). `/.default` is cut only as a suffix (msal-node cuts it anywhere).
pub fn resource_from_scope(scope: &str) -> Result<&str, Error> {
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
pub fn validate_scope(scope: &str) -> Result<(), Error> {
    if scope.is_empty() {
        return Err(Error::invalid_argument(
            "scope is empty; pass exactly one scope, e.g. https://vault.azure.net/.default",
        ));
    }
    // One pass over plain ASCII on the cached path; the precise reason only on failure.
    let suspicious = |b: u8| b <= b' ' || b >= 0x7f;
    if !scope.bytes().any(suspicious) {
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
