//! What `azmi token` and `azmi demo` print: one JSON line per get-token result, and the exit
//! code a failure maps to.

use crate::bindings::{AccessToken, Error as TokenError};

/// Prints one JSON line for a get-token result; on failure also the message on stderr, and
/// returns the exit code (2 unavailable, 3 authentication failed, 4 invalid argument).
pub fn print_result(result: &Result<AccessToken, TokenError>) -> Result<(), i32> {
    match result {
        Ok(token) => {
            println!("{}", token_json(token));
            Ok(())
        }
        Err(error) => {
            println!("{}", error_json(error));
            eprintln!("azmi: {}", error.message());
            Err(match error {
                TokenError::CredentialUnavailable(_) => 2,
                TokenError::AuthenticationFailed(_) => 3,
                TokenError::InvalidArgument(_) => 4,
            })
        }
    }
}

/// `{"access_token":…,"expires_on":…,"refresh_on":…,"token_type":…,"source":…}`.
pub fn token_json(token: &AccessToken) -> String {
    let s = |v: &str| serde_json::Value::from(v).to_string();
    format!(
        r#"{{"access_token":{},"expires_on":{},"refresh_on":{},"token_type":{},"source":{}}}"#,
        s(&token.token),
        token.expires_on,
        token
            .refresh_on
            .map_or_else(|| "null".to_string(), |r| r.to_string()),
        s(&token.token_type),
        s(token.source.id()),
    )
}

/// `{"error":…,"message":…}` plus `source`, `status`, `code`, `correlation_id` when known.
pub fn error_json(error: &TokenError) -> String {
    error.report().to_json()
}
