//! What `azmi token` and `azmi demo` print: one line per get-token result in the chosen
//! [`Output`] format, and the exit code a failure maps to.

use crate::bindings::{AccessToken, Error as TokenError};

/// `azmi token --output`: how a result is printed on stdout.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One JSON line: `access_token`, `expires_on`, `refresh_on`, `token_type`, `source`;
    /// a failure is an error JSON line.
    #[default]
    Json,
    /// The bare token, for `$(azmi token …)`; a failure prints nothing on stdout.
    Token,
    /// `Authorization: Bearer <token>`, for `curl -H @-`; a failure prints nothing on stdout.
    Header,
    /// The JSON of `az account get-access-token` (`accessToken`, `expiresOn`, `expires_on`,
    /// `tokenType`), so a script switches by changing one word; a failure is an error line.
    Az,
}

/// Prints one JSON line for a get-token result; on failure also the message on stderr, and
/// returns the exit code (2 unavailable, 3 authentication failed, 4 invalid argument).
pub fn print_result(result: &Result<AccessToken, TokenError>) -> Result<(), i32> {
    print_result_as(result, Output::Json)
}

/// [`print_result`] in `format`.
pub fn print_result_as(
    result: &Result<AccessToken, TokenError>,
    format: Output,
) -> Result<(), i32> {
    match result {
        Ok(token) => {
            match format {
                Output::Json => println!("{}", token_json(token)),
                Output::Token => println!("{}", token.token),
                Output::Header => println!("Authorization: Bearer {}", token.token),
                Output::Az => println!("{}", az_json(token)),
            }
            Ok(())
        }
        Err(error) => {
            if matches!(format, Output::Json | Output::Az) {
                println!("{}", error_json(error));
            }
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

/// `az account get-access-token`'s fields: `accessToken`, `expiresOn` (`YYYY-MM-DD
/// HH:MM:SS.ffffff`, in UTC where az prints local time), `expires_on` (unix seconds),
/// `tokenType`. `subscription` and `tenant` are az's account, which azmi does not have.
pub fn az_json(token: &AccessToken) -> String {
    let (y, mo, d, h, mi, s) = civil(token.expires_on);
    serde_json::json!({
        "accessToken": token.token,
        "expiresOn": format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.000000"),
        "expires_on": token.expires_on,
        "tokenType": token.token_type,
    })
    .to_string()
}

/// Unix seconds as a UTC date and time.
fn civil(secs: u64) -> (i32, u8, u8, u8, u8, u8) {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (
        t.year(),
        t.month().into(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

/// `{"error":…,"message":…}` plus `source`, `status`, `code`, `correlation_id` when known.
pub fn error_json(error: &TokenError) -> String {
    error.report().to_json()
}

#[cfg(test)]
mod tests {
    use super::civil;

    #[test]
    fn civil_dates_match_known_instants() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_796_180_364), (2026, 12, 2, 2, 59, 24));
        assert_eq!(civil(4_102_444_799), (2099, 12, 31, 23, 59, 59));
    }
}
