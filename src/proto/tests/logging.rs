//! `AZURE_LOG_LEVEL` diagnostics from the drive loop (issue 13, part 1): silent by default;
//! each level's events; never a token or a secret.

use super::harness::{SECRET, Scenario, Scripted, TOKEN, json, respond, transport};
use crate::proto::{Level, TransportErrorKind};
use serde_json::json as j;

fn token(value: &str) -> Scripted {
    json(200, j!({"access_token": value, "expires_in": 86_399}))
}

fn lines(run: &super::harness::Run) -> Vec<String> {
    run.logs
        .iter()
        .map(|(l, s)| format!("{} {s}", l.name()))
        .collect()
}

#[test]
fn nothing_is_logged_by_default() {
    let mut s = Scenario::app_service().reply(token(TOKEN));
    assert!(s.run().logs.is_empty());
    assert!(s.run().logs.is_empty(), "a cache hit neither");
}

#[test]
fn info_names_each_request_its_answer_and_the_token_source_without_query_or_token() {
    let mut s = Scenario::app_service()
        .env("AZURE_LOG_LEVEL", "info")
        .reply(token(TOKEN));
    let run = s.run();
    let id = run
        .request()
        .header("x-ms-client-request-id")
        .unwrap()
        .to_string();
    let logged = lines(&run);
    assert_eq!(logged.len(), 3, "{logged:#?}");
    assert_eq!(
        logged[0],
        format!(
            "info azmi: App Service: GET http://127.0.0.1:41564/msi/token (x-ms-client-request-id {id})"
        )
    );
    assert_eq!(logged[1], "info azmi: App Service: HTTP 200 in 0 ms");
    assert!(logged[2].starts_with("info azmi: token from App Service for https://management.azure.com/.default, expires_on "), "{}", logged[2]);
    for line in &logged {
        assert!(
            !line.contains(TOKEN) && !line.contains(SECRET) && !line.contains('?'),
            "{line}"
        );
    }
    // A cache hit is not an info event.
    assert!(s.run().logs.is_empty());
}

#[test]
fn verbose_adds_cache_hits_and_misses() {
    let mut s = Scenario::imds()
        .env("AZURE_LOG_LEVEL", "VERBOSE")
        .reply(token(TOKEN));
    let first = lines(&s.run());
    assert_eq!(
        first[0],
        "verbose azmi: cache miss for https://management.azure.com/.default"
    );
    let hit = lines(&s.run());
    assert_eq!(
        hit,
        ["verbose azmi: cache hit for https://management.azure.com/.default (IMDS)"]
    );
}

#[test]
fn warning_shows_retries_and_error_shows_only_the_failure() {
    let mut s = Scenario::app_service()
        .seed(7)
        .env("AZURE_LOG_LEVEL", "warning")
        .reply(transport(TransportErrorKind::Timeout, "response timed out"))
        .reply(token(TOKEN));
    // A timeout from a source that never answered is retried (the request may have arrived).
    let logged = lines(&s.run());
    assert_eq!(
        logged,
        ["warning azmi: App Service: no response in 0 ms: response timed out"]
    );

    let mut s = Scenario::app_service()
        .env("AZURE_LOG_LEVEL", "error")
        .reply(respond(
            400,
            format!(r#"{{"error":"bad","error_description":"echo {SECRET}"}}"#),
        ));
    let run = s.run();
    let logged = lines(&run);
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0].starts_with("error azmi: App Service: "),
        "{}",
        logged[0]
    );
    assert!(
        !logged[0].contains(SECRET),
        "redacted like the error: {}",
        logged[0]
    );
    assert_eq!(run.logs[0].0, Level::Error);
}

#[test]
fn a_failed_refresh_is_a_warning_and_the_cached_token_is_still_served() {
    let mut s = Scenario::app_service()
        .env("AZURE_LOG_LEVEL", "info")
        .reply(token("old"));
    s.run().token();
    s.advance(43_200_000);
    s.push_times(respond(500, "{}"), 3);
    let run = s.run();
    assert_eq!(run.token().secret(), "old");
    let logged = lines(&run);
    assert_eq!(
        logged[0],
        "info azmi: App Service: refreshing the cached token"
    );
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("info azmi: App Service: waiting ")),
        "{logged:#?}"
    );
    assert!(
        logged
            .last()
            .unwrap()
            .starts_with("warning azmi: refresh failed, serving the cached token: App Service"),
        "{logged:#?}"
    );
}
