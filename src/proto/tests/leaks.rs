//! The leak scan (issue 11, defect 4): every source, every way a service has been seen to echo
//! what it was sent — raw, JSON-escaped, in the error code, in the correlation id, across the
//! 300-character quoting cut, in a 2xx's `token_type` or expiry — and every output the core
//! produces (message, code, correlation id, `Display`, `Debug` of the error, the requests and
//! the token) scanned for every secret the scenario used.

use super::harness::{
    ARC_KEY, ASSERTION, Run, SECRET, Scenario, Scripted, TOKEN, arc_challenge, json, respond,
};
use serde_json::json as j;

/// One source: how to build its scenario, what to script before the answer under test, and
/// the secrets it sends (the token it receives is checked by
/// [`a_successful_token_never_shows_in_debug_or_requests`]).
struct Source {
    name: &'static str,
    scenario: fn() -> Scenario,
    before: fn() -> Vec<Scripted>,
    secrets: &'static [&'static str],
    /// Reached through the default chain (`default-credential`), not `credential`.
    chain: bool,
}

fn nothing() -> Vec<Scripted> {
    Vec::new()
}

fn challenge() -> Vec<Scripted> {
    vec![arc_challenge()]
}

const SOURCES: [Source; 9] = [
    Source {
        name: "imds",
        scenario: Scenario::imds,
        before: nothing,
        secrets: &[],
        chain: false,
    },
    Source {
        name: "app_service",
        scenario: Scenario::app_service,
        before: nothing,
        secrets: &[SECRET],
        chain: false,
    },
    Source {
        name: "app_service_2017",
        scenario: Scenario::app_service_2017,
        before: nothing,
        secrets: &[SECRET],
        chain: false,
    },
    Source {
        name: "azure_ml",
        scenario: Scenario::azure_ml,
        before: nothing,
        secrets: &[SECRET],
        chain: false,
    },
    Source {
        name: "cloud_shell",
        scenario: Scenario::cloud_shell,
        before: nothing,
        secrets: &[],
        chain: false,
    },
    Source {
        name: "arc",
        scenario: Scenario::arc,
        before: challenge,
        secrets: &[ARC_KEY],
        chain: false,
    },
    Source {
        name: "service_fabric",
        scenario: Scenario::service_fabric,
        before: nothing,
        secrets: &[SECRET],
        chain: false,
    },
    Source {
        name: "workload_identity",
        scenario: Scenario::workload_identity,
        before: nothing,
        secrets: &[ASSERTION],
        chain: false,
    },
    Source {
        name: "client_secret",
        scenario: service_principal,
        before: nothing,
        secrets: &[CLIENT_SECRET],
        chain: true,
    },
];

/// The default chain's environment credential with [`CLIENT_SECRET`].
const CLIENT_SECRET: &str = "Xy7~client-secret.value_42";

fn service_principal() -> Scenario {
    Scenario::new()
        .env("AZURE_TENANT_ID", super::harness::TENANT)
        .env("AZURE_CLIENT_ID", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
}

/// `source`'s scenario with every diagnostics line on (`AZURE_LOG_LEVEL=verbose`).
fn verbose(source: &Source) -> Scenario {
    (source.scenario)().env("AZURE_LOG_LEVEL", "verbose")
}

/// One call the way `source` is reached.
fn run(source: &Source, s: &mut Scenario) -> Run {
    if source.chain {
        s.run_default(&mut crate::proto::DefaultChain::new())
    } else {
        s.run()
    }
}

/// `text` with every character written as a JSON `\u` escape (survives a raw-byte scrub).
fn json_escaped(text: &str) -> String {
    text.chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect()
}

/// Answers that echo `secret` in every way seen, as raw bodies.
fn echoes(secret: &str) -> Vec<(String, Scripted)> {
    let escaped = json_escaped(secret);
    // 285 + 15 characters of the secret reach the 300-character quoting cut.
    let pad = "x".repeat(285);
    let raw = |status: u16, body: String| {
        respond(status, body).header("Content-Type", "application/json")
    };
    vec![
        (
            "raw echo in the description".into(),
            json(
                400,
                j!({"error": "invalid_request", "error_description": format!("bad header {secret}")}),
            ),
        ),
        (
            "JSON-escaped echo in the description".into(),
            raw(
                400,
                format!(
                    r#"{{"error":"invalid_request","error_description":"bad header {escaped}"}}"#
                ),
            ),
        ),
        (
            "echo across the 300-character cut".into(),
            json(
                400,
                j!({"error": "invalid_request", "error_description": format!("{pad}{secret}")}),
            ),
        ),
        (
            "escaped echo across the cut".into(),
            raw(
                400,
                format!(r#"{{"error":"invalid_request","error_description":"{pad}{escaped}"}}"#),
            ),
        ),
        (
            "echo as the error code".into(),
            raw(
                400,
                format!(r#"{{"error":"{escaped}","error_description":"no"}}"#),
            ),
        ),
        (
            "echo as the correlation id".into(),
            raw(
                400,
                format!(r#"{{"error":"invalid_request","correlation_id":"{escaped}"}}"#),
            ),
        ),
        (
            "nested Service Fabric shape".into(),
            raw(
                400,
                format!(
                    r#"{{"error":{{"code":"{escaped}","message":"{pad}{escaped}","correlationId":"{escaped}"}}}}"#
                ),
            ),
        ),
        (
            "plain-text body".into(),
            respond(500, format!("{pad} {secret}")),
        ),
        (
            "a 2xx echoing it as token_type".into(),
            raw(
                200,
                format!(r#"{{"access_token":"abc","expires_in":3600,"token_type":"{escaped}"}}"#),
            ),
        ),
        (
            "a 2xx echoing it as expires_on".into(),
            raw(
                200,
                format!(r#"{{"access_token":"abc","expires_on":"{pad}{escaped}"}}"#),
            ),
        ),
    ]
}

/// True when `output` holds `secret` or any 12-character piece of it (a secret cut by a
/// length cap leaks its prefix; shorter pieces match ordinary words such as "identity").
fn leaks(output: &str, secret: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len().min(12);
    chars
        .windows(n)
        .any(|w| output.contains(&w.iter().collect::<String>()))
}

/// Every output of `run` a caller or a log could see: with `AZURE_LOG_LEVEL=verbose` (see
/// [`verbose`]), every diagnostics line too.
fn outputs(run: &Run) -> Vec<String> {
    let mut out = vec![format!("{:?}", run.requests)];
    out.extend(run.logs.iter().map(|(_, line)| line.clone()));
    match &run.result {
        Ok(token) => out.push(format!("{token:?}")),
        Err(error) => {
            out.push(error.message().to_string());
            out.push(error.to_string());
            out.push(format!("{error:?}"));
            out.extend(error.code().map(str::to_string));
            out.extend(error.correlation_id().map(str::to_string));
        }
    }
    out
}

#[test]
fn no_secret_reaches_any_output_of_any_source() {
    let mut scanned = 0;
    for source in &SOURCES {
        for secret in source.secrets {
            for (what, answer) in echoes(secret) {
                let mut s = verbose(source);
                for reply in (source.before)() {
                    s.push(reply);
                }
                // One answer; a retried status gets the same answer until the retries end.
                s = s.fallback(answer);
                let run = run(source, &mut s);
                assert!(!run.logs.is_empty(), "{}: verbose logs", source.name);
                for output in outputs(&run) {
                    assert!(
                        !leaks(&output, secret),
                        "{}: {what}: a secret reached an output: {output}",
                        source.name
                    );
                    scanned += 1;
                }
            }
        }
    }
    assert!(scanned > 200, "scanned {scanned} outputs");
}

#[test]
fn a_successful_token_never_shows_in_debug_or_requests() {
    for source in &SOURCES {
        let mut s = verbose(source);
        for reply in (source.before)() {
            s.push(reply);
        }
        s.push(json(200, j!({"access_token": TOKEN, "expires_in": 3600})));
        let run = run(source, &mut s);
        assert_eq!(run.token().secret(), TOKEN, "{}", source.name);
        for output in outputs(&run) {
            for secret in source.secrets.iter().chain([&TOKEN]) {
                assert!(!leaks(&output, secret), "{}: {output}", source.name);
            }
        }
    }
}
