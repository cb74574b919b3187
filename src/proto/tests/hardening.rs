//! Defects an adversarial review found, each pinned by the test that failed before its fix.

use super::harness::{Scenario, T0_SECS, json};
use crate::proto::ErrorKind;
use crate::proto::retry::parse_http_date;
use serde_json::json as j;

#[test]
fn a_token_that_cannot_be_a_header_value_is_refused_and_not_cached() {
    for bad in ["abc\r\nx-injected: 1", "abc def", "abc\u{7f}", "ab=c", "é"] {
        let mut s = Scenario::imds().reply(json(
            200,
            j!({"access_token": bad, "expires_in": 86_399, "token_type": "Bearer"}),
        ));
        let run = s.run();
        assert_eq!(run.error().kind(), ErrorKind::InvalidResponse, "{bad:?}");
        assert!(
            !run.error().message().contains(bad),
            "the token is not quoted"
        );
        // Not cached: the next call asks again.
        s.push(json(
            200,
            j!({"access_token": "eyJ.good_token-~+/==", "expires_in": 86_399, "token_type": "Bearer"}),
        ));
        assert_eq!(s.run().token().secret(), "eyJ.good_token-~+/==");
    }
}

#[test]
fn an_absurd_retry_after_date_is_ignored_without_overflow() {
    assert_eq!(
        parse_http_date("Sun, 06 Nov 999999999999 08:49:37 GMT"),
        None
    );
    assert_eq!(
        parse_http_date("Sun, 06 Nov -99999999999 08:49:37 GMT"),
        None
    );
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 -1:49:37 GMT"), None);
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
}

#[test]
fn an_expiry_beyond_any_entra_lifetime_is_refused() {
    let micros = (T0_SECS + 86_399) * 1_000_000;
    for body in [
        j!({"access_token": "t", "expires_on": micros, "token_type": "Bearer"}),
        j!({"access_token": "t", "expires_in": 1e308, "token_type": "Bearer"}),
        j!({"access_token": "t", "expires_in": 8 * 86_400, "token_type": "Bearer"}),
    ] {
        let mut s = Scenario::imds().reply(json(200, body.clone()));
        let run = s.run();
        assert_eq!(run.error().kind(), ErrorKind::InvalidResponse, "{body}");
        assert!(
            run.error()
                .message()
                .contains("longer than any Entra token"),
            "{}",
            run.error()
        );
    }
    // A day, and the 28 hours of continuous access evaluation, still work.
    for lifetime in [86_399, 28 * 3600] {
        let mut s = Scenario::imds().reply(json(
            200,
            j!({"access_token": "t", "expires_in": lifetime, "token_type": "Bearer"}),
        ));
        s.run().token();
    }
}

#[test]
fn a_json_escaped_echo_of_the_secret_is_redacted_from_code_and_correlation_id() {
    use super::harness::{SECRET, respond};
    // `\u0073` is `s`: the raw body does not contain the secret, the decoded fields do.
    let escaped = format!("\\u0073{}", &SECRET[1..]);
    let body = format!(
        r#"{{"error":"{escaped}","error_description":"bad","correlation_id":"{escaped}"}}"#
    );
    let mut s = Scenario::app_service().reply(respond(400, body));
    let run = s.run();
    let e = run.error();
    for (what, text) in [
        ("message", Some(e.message())),
        ("code", e.code()),
        ("correlation id", e.correlation_id()),
    ] {
        assert!(
            !text.unwrap_or_default().contains(SECRET),
            "{what}: {text:?}"
        );
    }
    assert_eq!(e.code(), Some("<redacted>"));
}
