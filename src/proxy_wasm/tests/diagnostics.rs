//! The filter's diagnostics (issue 13): the drive loop's lines — each token request, its
//! status and time, transport failures, retry waits, refresh starts, cache hits and misses —
//! at the level `"log_level"` (or `AZURE_LOG_LEVEL`) asks, at Envoy's matching level; silent
//! by default; never a token or a secret.

use super::{Calls, IMDS, T0, first_token, own_store, root, token_response};
use crate::proto::{HttpResponse, TransportError, TransportErrorKind, UnixMillis};
use crate::proxy_wasm::token_root::{Level, TokenRoot};

const SECRET: &str = "identity-header-s3cr3t";

fn imds(log_level: Option<&str>, env_level: Option<&str>) -> TokenRoot {
    let config = match log_level {
        Some(level) => format!(
            r#"{{"scope": "https://vault.azure.net/.default", "cluster": "imds", "log_level": "{level}"}}"#
        ),
        None => r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#.into(),
    };
    let mut env = vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)];
    env.extend(env_level.map(|level| ("AZURE_LOG_LEVEL", level)));
    root(&config, &env)
}

fn status(code: u16) -> HttpResponse {
    HttpResponse {
        status: code,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A first token through one 500 and one transport failure; every line logged, in order.
fn lines_of_a_retried_fetch(root: &mut TokenRoot) -> Vec<(Level, String)> {
    let mut mem = own_store();
    let mut calls = Calls::default();
    let mut log = Vec::new();
    log.extend(root.on_request(T0, 1, &mut mem).log);
    log.extend(root.on_tick(T0, &mut calls, &mut mem).log);
    let answered = T0.plus_millis(7);
    log.extend(
        root.on_response(answered, 1, Ok(status(500)), &mut calls, &mut mem)
            .log,
    );
    let retry = UnixMillis(answered.0 + root.next_tick_ms(answered).unwrap());
    log.extend(root.on_tick(retry, &mut calls, &mut mem).log);
    let failed = retry.plus_millis(3);
    let refused = TransportError::new(TransportErrorKind::Timeout, "connection reset");
    log.extend(
        root.on_response(failed, 2, Err(refused), &mut calls, &mut mem)
            .log,
    );
    let again = UnixMillis(failed.0 + root.next_tick_ms(failed).unwrap());
    log.extend(root.on_tick(again, &mut calls, &mut mem).log);
    let done = again.plus_millis(2);
    let effects = root.on_response(
        done,
        3,
        Ok(token_response("tok-7", done, 3_600)),
        &mut calls,
        &mut mem,
    );
    assert_eq!(effects.resume.len(), 1);
    log.extend(effects.log);
    log.extend(root.on_request(done, 2, &mut mem).log);
    assert_eq!(calls.sent.len(), 3);
    log
}

fn has(log: &[(Level, String)], level: Level, text: &str) -> bool {
    log.iter()
        .any(|(l, line)| *l == level && line.contains(text))
}

#[test]
fn verbose_logs_every_event_at_the_matching_envoy_level() {
    let log = lines_of_a_retried_fetch(&mut imds(Some("verbose"), None));
    let text: Vec<&str> = log.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        has(
            &log,
            Level::Debug,
            "azmi: cache miss for https://vault.azure.net/.default"
        ),
        "{text:#?}"
    );
    assert!(
        has(
            &log,
            Level::Info,
            "azmi: IMDS: GET http://127.0.0.1:9/metadata/identity/oauth2/token (x-ms-client-request-id "
        ),
        "{text:#?}"
    );
    assert!(
        has(&log, Level::Info, "azmi: IMDS: HTTP 500 in 7 ms"),
        "{text:#?}"
    );
    assert!(has(&log, Level::Info, "azmi: IMDS: waiting "), "{text:#?}");
    assert!(
        has(
            &log,
            Level::Warn,
            "azmi: IMDS: no response in 3 ms: connection reset"
        ),
        "{text:#?}"
    );
    assert!(
        has(&log, Level::Info, "azmi: IMDS: HTTP 200 in 2 ms"),
        "{text:#?}"
    );
    assert!(
        has(
            &log,
            Level::Info,
            "token for https://vault.azure.net/.default from IMDS"
        ),
        "{text:#?}"
    );
    assert!(
        has(
            &log,
            Level::Debug,
            "azmi: cache hit for https://vault.azure.net/.default (IMDS)"
        ),
        "{text:#?}"
    );
    let sent = log.iter().filter(|(_, l)| l.contains(": GET ")).count();
    assert_eq!(sent, 3, "one line per token request: {text:#?}");
    for (_, line) in &log {
        assert!(!line.contains("tok-7"), "{line}");
        assert!(
            !line.contains("api-version") && !line.contains('?'),
            "no query: {line}"
        );
    }
}

#[test]
fn the_level_comes_from_the_configuration_else_azure_log_level_and_is_silent_by_default() {
    let silent = lines_of_a_retried_fetch(&mut imds(None, None));
    let text: Vec<&str> = silent.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(text.len(), 1, "only the filter's own line: {text:#?}");
    assert!(text[0].starts_with("token for "), "{text:#?}");

    let info = lines_of_a_retried_fetch(&mut imds(None, Some("info")));
    assert!(has(&info, Level::Info, "HTTP 500 in 7 ms"));
    assert!(
        !info.iter().any(|(l, _)| *l == Level::Debug),
        "no cache lines at info"
    );

    let warning = lines_of_a_retried_fetch(&mut imds(Some("warning"), Some("verbose")));
    assert!(
        has(&warning, Level::Warn, "no response in 3 ms"),
        "the configuration wins"
    );
    assert!(
        !warning
            .iter()
            .any(|(_, l)| l.contains(": GET ") || l.contains("cache "))
    );
}

#[test]
fn a_refresh_logs_its_start_and_a_refused_dispatch_its_reason() {
    let mut mem = own_store();
    let mut root = imds(Some("info"), None);
    let mut calls = Calls::default();
    first_token(&mut root, "old", 7_200, &mut calls, &mut mem);
    let due = T0.plus_millis(3_601_000);
    assert!(root.on_request(due, 2, &mut mem).wake);
    calls.refuse = true;
    let log = root.on_tick(due, &mut calls, &mut mem).log;
    let text: Vec<&str> = log.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        has(&log, Level::Info, "azmi: IMDS: refreshing the cached token"),
        "{text:#?}"
    );
    assert!(
        has(
            &log,
            Level::Warn,
            "azmi: IMDS: no response in 0 ms: no cluster \"imds\""
        ),
        "{text:#?}"
    );
}

#[test]
fn no_secret_reaches_a_diagnostics_line() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "mi", "log_level": "verbose"}"#,
        &[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", SECRET),
        ],
    );
    let mut calls = Calls::default();
    let mut log = root
        .on_request(T0, 1, &mut mem)
        .log
        .into_iter()
        .collect::<Vec<_>>();
    log.extend(root.on_tick(T0, &mut calls, &mut mem).log);
    assert_eq!(calls.sent[0].header("X-IDENTITY-HEADER"), Some(SECRET));
    // The service echoes the secret in an error body, then answers with a token.
    let echo = HttpResponse {
        status: 500,
        headers: vec![("x-echo".into(), SECRET.into())],
        body: format!(r#"{{"error":"{SECRET}","error_description":"{SECRET}"}}"#).into_bytes(),
    };
    log.extend(root.on_response(T0, 1, Ok(echo), &mut calls, &mut mem).log);
    let now = UnixMillis(T0.0 + root.next_tick_ms(T0).unwrap());
    log.extend(root.on_tick(now, &mut calls, &mut mem).log);
    let effects = root.on_response(
        now,
        2,
        Ok(token_response("tok-s3cr3t", now, 3_600)),
        &mut calls,
        &mut mem,
    );
    log.extend(effects.log);
    log.extend(root.on_request(now, 2, &mut mem).log);
    assert!(
        has(&log, Level::Info, "GET http://127.0.0.1:41741/msi/token"),
        "{log:#?}"
    );
    for (_, line) in &log {
        assert!(!line.contains(SECRET), "{line}");
        assert!(!line.contains("tok-s3cr3t"), "{line}");
    }
}
