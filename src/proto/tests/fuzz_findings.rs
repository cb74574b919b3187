//! Defects the fuzz targets found (`crate::proto::fuzzing`), each pinned by a named test that
//! failed before its fix; the input that found it is in `fuzz/corpus/<target>/`.
//!
//! | finding | target | tests |
//! |---|---|---|
//! | a JSON-escaped secret cut by the 300-character quoting limit left a prefix in the message | `acquisition` | the two below |
//! | secrets scrubbed one after another: one that is a piece of another cut its echo, leaving most of it | `acquisition` | `scrub_redacts_a_secret_that_contains_another_secret_whole`, `scrub_redacts_overlapping_secrets_as_one_span` (in `secret.rs`: the harness cannot change a file between two reads of one fetch) |

use super::harness::{SECRET, Scenario, respond};

/// `SECRET` with every character as a JSON `\u` escape: the raw body holds no trace of it, so
/// the raw-body scrub cannot see it; only the decoded text does.
fn escaped_secret() -> String {
    SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect()
}

/// The secret's first 7 characters: what a cut at the quoting limit leaves of it.
fn prefix() -> &'static str {
    &SECRET[..7]
}

/// Found by `acquisition` (seed `fuzz/corpus/acquisition/escaped-secret-across-quote-limit`):
/// an escaped echo placed so the 300-character quoting limit cuts it kept a prefix of the
/// secret in the message, because whole-string redaction ran after the cut.
#[test]
fn an_escaped_secret_cut_by_the_quoting_limit_leaves_no_prefix_in_a_failure() {
    let description = format!("{}{}", "x".repeat(290), escaped_secret());
    let body = format!(r#"{{"error":"e","error_description":"{description}"}}"#);
    let mut s = Scenario::app_service().reply(respond(400, body));
    let run = s.run();
    let e = run.error();
    assert!(
        !e.message().contains(prefix()),
        "a cut secret leaks: {}",
        e.message()
    );
    assert!(e.message().contains("<redacted>"), "{}", e.message());
}

/// The same cut in a 2xx body: an unusable answer quotes `token_type`.
#[test]
fn an_escaped_secret_cut_by_the_quoting_limit_leaves_no_prefix_in_an_unusable_token() {
    let token_type = format!("{}{}", "x".repeat(290), escaped_secret());
    let body = format!(r#"{{"access_token":"t","expires_in":3599,"token_type":"{token_type}"}}"#);
    let mut s = Scenario::app_service().reply(respond(200, body));
    let run = s.run();
    let e = run.error();
    assert!(
        !e.message().contains(prefix()),
        "a cut secret leaks: {}",
        e.message()
    );
}
