//! The properties every target checks, written independently of the code under test.

use serde_json::Value;

use crate::proto::response::MAX_LIFETIME_SECS;
use crate::proto::{AccessToken, Error, UnixMillis};

/// A secret shorter than this is not looked for (it would match ordinary text).
const MIN_SECRET: usize = 8;
/// The window of a secret that must not appear where the service did not send it.
const WINDOW: usize = 8;

/// RFC 6750 `b64token`, spelled out again (not the parser's function).
pub(super) fn is_b64token(token: &str) -> bool {
    let bytes = token.as_bytes();
    let body_len = bytes.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    body_len > 0
        && bytes[..body_len]
            .iter()
            .all(|b| b"-._~+/".contains(b) || b.is_ascii_alphanumeric())
}

/// Every string in a JSON document (keys and values, at any depth), or nothing.
pub(super) fn json_strings(body: &[u8]) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        walk(&value, &mut out);
    }
    out
}

/// The `access_token` string of a JSON object body.
pub(super) fn access_token_of(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map.get("access_token")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// A token received at `now`: header-safe, known expiry in the future and within the bound,
/// timings in order, and a `Debug` that does not show it.
#[track_caller]
pub(super) fn check_token(token: &AccessToken, received_at: UnixMillis) {
    let secret = token.secret();
    assert!(is_b64token(secret), "a token a header cannot carry");
    let received = received_at.as_secs();
    assert!(
        UnixMillis::from_secs(token.expires_on()) > received_at,
        "a token expired at issue: {token:?} at {received_at:?}"
    );
    assert!(
        token.expires_on() - received <= MAX_LIFETIME_SECS,
        "a lifetime past the bound: {token:?} at {received_at:?}"
    );
    assert!(
        received <= token.refresh_on()
            && token.refresh_on() <= token.usable_until()
            && token.usable_until() <= token.expires_on(),
        "timings out of order: {token:?} usable until {} at {received}",
        token.usable_until()
    );
    assert!(token.is_fresh(received_at), "not usable when received");
    if secret.len() >= 16 {
        assert!(
            !format!("{token:?}").contains(secret),
            "Debug shows a token"
        );
    }
}

/// An error anyone may see: a message, no control characters in any text field, and no part
/// of a `secret` that the service did not itself send (`fed`: everything the service sent,
/// raw and JSON-decoded).
#[track_caller]
pub(super) fn check_error(error: &Error, secrets: &[&str], fed: &[String]) {
    assert!(!error.message().is_empty(), "an error without a message");
    let fields = [Some(error.message()), error.code(), error.correlation_id()];
    for text in fields.into_iter().flatten() {
        assert!(
            !text.chars().any(|c| c.is_control()),
            "a control character in an error: {text:?}"
        );
        for secret in secrets {
            assert_no_leak(text, secret, fed);
        }
    }
    let debug = format!("{error:?}");
    for secret in secrets {
        assert_no_leak(&debug, secret, fed);
    }
}

/// `text` holds no `WINDOW`-long piece of `secret` unless the service sent that piece on its
/// own (not as part of the whole secret, which the core must scrub in every encoding).
#[track_caller]
pub(super) fn assert_no_leak(text: &str, secret: &str, fed: &[String]) {
    if secret.len() < MIN_SECRET || !secret.is_ascii() {
        return;
    }
    let scrubbed: Vec<String> = fed.iter().map(|f| f.replace(secret, "\u{1}")).collect();
    for i in 0..=secret.len() - WINDOW {
        let piece = &secret[i..i + WINDOW];
        if text.contains(piece) && !scrubbed.iter().any(|f| f.contains(piece)) {
            panic!("a secret leaks ({piece:?} of a secret the service echoed whole): {text:?}");
        }
    }
}

/// What the service sent, as the leak check compares it: raw (lossy) and JSON-decoded.
pub(super) fn fed_texts(body: &[u8], out: &mut Vec<String>) {
    out.push(String::from_utf8_lossy(body).into_owned());
    out.extend(json_strings(body));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Zq8rT3vW9xKp2mN7bL4cJ6hF";

    #[test]
    #[should_panic(expected = "a secret leaks")]
    fn a_piece_of_a_secret_the_service_sent_whole_is_a_leak() {
        // The service echoed the whole secret (JSON-escaped); the message shows a cut prefix.
        let fed = [format!("echo {SECRET}")];
        assert_no_leak("echo Zq8rT3vW9x…", SECRET, &fed);
    }

    #[test]
    fn a_piece_the_service_sent_on_its_own_is_not_a_leak() {
        let fed = ["echo Zq8rT3vW9x".to_string()];
        assert_no_leak("echo Zq8rT3vW9x", SECRET, &fed);
    }

    #[test]
    #[should_panic(expected = "a token a header cannot carry")]
    fn a_token_with_a_line_break_fails_the_token_check() {
        let token = AccessToken::new(
            "a\r\nb".into(),
            1_750_003_600,
            UnixMillis(1_750_000_000_000),
            None,
            crate::proto::Source::Imds,
        );
        check_token(&token, UnixMillis(1_750_000_000_000));
    }

    #[test]
    fn b64token_matches_rfc_6750() {
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token("a b"));
    }
}
