// About 380 lines, on purpose: the one scripted world of the state-machine target (fixtures,
// the answer decoder and the call loop) reads best in one place.
//! The `acquisition` target: whole calls through [`ManagedIdentity`] and [`Acquisition`] on
//! virtual time, every answer (status, headers, body, delay, transport failure, file) decoded
//! from the fuzz bytes.

use super::Input;
use super::oracle::{
    access_token_of, assert_no_leak, check_error, check_token, fed_texts, json_strings,
};
use super::parsers::{NOW, selector};
use crate::proto::acquisition::MAX_POLLS;
use crate::proto::arc::{ARC_KEY_DIR, ARC_KEY_MAX_BYTES};
use crate::proto::{
    AccessToken, Acquisition, Action, Cached, EnvSnapshot, Error, ErrorKind, FileError,
    FileErrorKind, HostFacts, HttpResponse, IdentitySelector, ManagedIdentity, Outcome, Poll,
    Source, Start, TokenRequest, TransportError, TransportErrorKind, UnixMillis,
};

/// The shared secret of the App Service, Azure ML and Service Fabric fixtures.
pub(super) const SECRET: &str = "Zq8rT3vW9xKp2mN7bL4cJ6hF";
/// The Arc key file's contents.
pub(super) const ARC_KEY: &str = "arcK3y-7Hq2Lm9Xw4Rt8Vb6N";
/// The federated token in the workload-identity fixture's file.
pub(super) const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrOHMifQ.c2lnbmF0dXJlLXF3ZXJ0eQ";
/// The key file the fixture challenges name.
const KEY_PATH: &str = "/var/opt/azcmagent/tokens/x.key";
/// Tokens the answers carry (a fuzzer may also send its own).
const TOKENS: [&str; 4] = [
    "eyJ0eXAiOiJKV1QifQ.payload-one.sig",
    "tok-two_~+/==",
    "3",
    "bad token\r\n",
];
const SCOPE: &str = "https://management.azure.com/.default";
/// Statuses that matter to some source's retry policy or classifier.
const STATUSES: [u16; 16] = [
    200, 200, 200, 201, 400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504, 599,
];
/// Reply delays in ms: instant, typical, around every timeout, past the call deadline.
const DELAYS: [u64; 8] = [0, 0, 15, 1_000, 5_001, 30_000, 61_000, 200_000];
/// Waits between calls in ms: none, a minute, an hour, around refresh and expiry.
const ADVANCES: [u64; 8] = [
    0, 1_000, 60_000, 3_600_000, 43_200_000, 43_300_000, 86_100_000, 86_400_000,
];
const TIMEOUTS: [Option<u64>; 4] = [None, Some(2_000), Some(15_000), Some(1)];

/// One scripted managed-identity host: environment, facts, the secrets it holds.
struct Fixture {
    env: EnvSnapshot,
    facts: HostFacts,
    secrets: Vec<&'static str>,
}

fn fixture(which: u8) -> Fixture {
    let env = |pairs: &[(&str, &str)]| EnvSnapshot::from_pairs(pairs.iter().copied());
    let (env, secrets): (EnvSnapshot, Vec<&'static str>) = match which % 9 {
        0 => (env(&[]), vec![]),
        1 => (
            env(&[
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:41564/msi/token"),
                ("IDENTITY_HEADER", SECRET),
            ]),
            vec![SECRET],
        ),
        2 => (
            env(&[
                ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
                ("MSI_SECRET", SECRET),
            ]),
            vec![SECRET],
        ),
        3 => (
            env(&[
                ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
                ("MSI_SECRET", SECRET),
                (
                    "DEFAULT_IDENTITY_CLIENT_ID",
                    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                ),
            ]),
            vec![SECRET],
        ),
        4 => (
            env(&[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]),
            vec![],
        ),
        5 => (
            env(&[
                (
                    "IDENTITY_ENDPOINT",
                    "http://localhost:40342/metadata/identity/oauth2/token",
                ),
                ("IMDS_ENDPOINT", "http://localhost:40342"),
            ]),
            vec![ARC_KEY],
        ),
        6 => (
            env(&[
                (
                    "IDENTITY_ENDPOINT",
                    "https://10.0.0.4:2377/metadata/identity/oauth2/token",
                ),
                ("IDENTITY_HEADER", SECRET),
                (
                    "IDENTITY_SERVER_THUMBPRINT",
                    "0123456789ABCDEF0123456789ABCDEF01234567",
                ),
            ]),
            vec![SECRET],
        ),
        7 => (
            env(&[
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "/var/run/secrets/azure/tokens/azure-identity-token",
                ),
                ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
                ("AZURE_CLIENT_ID", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"),
            ]),
            vec![ASSERTION],
        ),
        _ => (
            env(&[(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                "http://127.0.0.1:2579/",
            )]),
            vec![],
        ),
    };
    Fixture {
        env,
        facts: HostFacts::default(),
        secrets,
    }
}

/// `text` with every character as a JSON `\u` escape: decodes to `text`, matches nothing raw.
fn json_escaped(text: &str) -> String {
    text.chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect()
}

/// A JSON string fragment (already escaped) from the bytes: a plain word, a secret echoed in
/// some encoding, or raw text.
fn service_text(input: &mut Input<'_>, secrets: &[&str]) -> String {
    let secret = secrets
        .get(input.below(secrets.len().max(1)))
        .copied()
        .unwrap_or(SECRET);
    match input.byte() % 8 {
        0 => "invalid_request".into(),
        1 => format!("echo {secret}"),
        2 => format!("echo {}", json_escaped(secret)),
        // Padding puts the escaped secret across the 300-character quoting limit.
        3 => format!(
            "{}{}",
            "x".repeat(270 + input.below(40)),
            json_escaped(secret)
        ),
        4 => "AADSTS700024: Client assertion is not within its valid time range.".into(),
        5 => "Identity not found".into(),
        _ => serde_json::to_string(&input.text())
            .map(|quoted| quoted[1..quoted.len() - 1].to_string())
            .unwrap_or_default(),
    }
}

/// A token answer's body: the token, its expiry in some format, and maybe the echo Arc needs.
fn token_body(input: &mut Input<'_>, now: UnixMillis, selector: &IdentitySelector) -> Vec<u8> {
    let token = match input.byte() % 6 {
        i @ 0..=3 => TOKENS[usize::from(i)].to_string(),
        _ => input.text(),
    };
    let now_secs = now.as_secs();
    let lifetime: i64 = input.pick(&[3_599, 86_399, 60, 1, 0, -5, 604_801, 7_200]);
    let at = now_secs.saturating_add_signed(lifetime);
    let expires_on = match input.byte() % 4 {
        0 => serde_json::json!(at.to_string()),
        1 => serde_json::json!(at),
        2 => serde_json::json!(at * 1000),
        _ => serde_json::Value::Null,
    };
    let mut body = serde_json::json!({
        "access_token": token,
        "expires_on": expires_on,
        "expires_in": lifetime.max(0).to_string(),
        "token_type": input.pick(&["Bearer", "bearer", "pop"]),
        "resource": "https://management.azure.com/",
    });
    let echo = input.byte();
    if !echo.is_multiple_of(3) {
        let value = if echo % 3 == 1 {
            selector.value()
        } else {
            "someone-else"
        };
        for field in ["client_id", "object_id", "msi_res_id"] {
            body[field] = value.into();
        }
    }
    if echo & 0x80 != 0 {
        body["refresh_in"] = u64::from(input.u16()).into();
    }
    body.to_string().into_bytes()
}

/// One answer to a request, and how long it takes.
fn reply(
    input: &mut Input<'_>,
    now: UnixMillis,
    selector: &IdentitySelector,
    secrets: &[&str],
) -> (Result<HttpResponse, TransportError>, u64) {
    if input.is_empty() {
        let refused = TransportError::new(TransportErrorKind::ConnectionRefused, "refused");
        return (Err(refused), 0);
    }
    let kind = input.byte();
    let delay = input.pick(&DELAYS);
    if kind % 8 >= 6 {
        let kinds = [
            TransportErrorKind::ConnectionRefused,
            TransportErrorKind::Timeout,
            TransportErrorKind::ConnectTimeout,
            TransportErrorKind::Dns,
            TransportErrorKind::Tls,
            TransportErrorKind::Denied,
            TransportErrorKind::ResponseTooLarge,
            TransportErrorKind::Other,
        ];
        let error = TransportError::new(input.pick(&kinds), "the fake host says no");
        return (Err(error), delay);
    }
    let status = match input.byte() {
        b if usize::from(b) < STATUSES.len() * 12 => STATUSES[usize::from(b) % STATUSES.len()],
        b => 100 + u16::from(b) * 2,
    };
    let flags = input.byte();
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if flags & 1 != 0 {
        let value = match input.byte() % 5 {
            0 => "2".to_string(),
            1 => "120".to_string(),
            2 => "Sun, 06 Nov 1994 08:49:37 GMT".to_string(),
            3 => "Fri, 31 Dec 9999 23:59:59 GMT".to_string(),
            _ => input.text(),
        };
        headers.push(("Retry-After".into(), value));
    }
    if flags & 2 != 0 {
        let value = match input.byte() % 4 {
            0 | 1 => format!("Basic realm={KEY_PATH}"),
            2 => "Basic realm=/var/opt/azcmagent/tokens/../../../etc/shadow.key".into(),
            _ => input.text(),
        };
        headers.push(("WWW-Authenticate".into(), value));
    }
    if flags & 4 != 0 {
        headers.push(("retry-after-ms".into(), u64::from(input.u32()).to_string()));
    }
    let body = match (flags >> 3) % 4 {
        0 => token_body(input, now, selector),
        1 => format!(
            r#"{{"error":"{}","error_description":"{}","correlation_id":"{}"}}"#,
            service_text(input, secrets),
            service_text(input, secrets),
            service_text(input, secrets),
        )
        .into_bytes(),
        2 => format!(
            r#"{{"error":{{"code":"{}","message":"{}","correlationId":"{}"}}}}"#,
            service_text(input, secrets),
            service_text(input, secrets),
            service_text(input, secrets),
        )
        .into_bytes(),
        _ => input.chunk().to_vec(),
    };
    let answer = HttpResponse {
        status,
        headers,
        body,
    };
    (Ok(answer), delay)
}

/// What one run has seen: tokens in 2xx bodies, everything the service sent.
#[derive(Default)]
struct Seen {
    tokens: Vec<String>,
    fed: Vec<String>,
    /// File secrets (the Arc key, the federated token) a service echoed before this fetch
    /// was handed them: the core cannot know to scrub them, so they are not checked.
    unknown: Vec<&'static str>,
    /// File secrets the host handed the fetch in flight.
    handed: Vec<&'static str>,
}

/// A token a caller gets at `now`: one a 2xx body carried, still usable.
#[track_caller]
fn check_served(token: &AccessToken, now: UnixMillis, seen: &Seen) {
    assert!(
        seen.tokens.iter().any(|t| t == token.secret()),
        "a token that no 2xx body carried"
    );
    assert!(
        token.is_fresh(now),
        "an expired token served: {token:?} at {now:?}"
    );
}

/// Drives one fetch to its outcome on the virtual clock, answering from the bytes.
#[allow(clippy::too_many_arguments)]
fn drive(
    fetch: &mut Acquisition,
    now: &mut UnixMillis,
    deadline: UnixMillis,
    input: &mut Input<'_>,
    selector: &IdentitySelector,
    fixture: &Fixture,
    seen: &mut Seen,
) -> Outcome {
    let mut polls = 0;
    let mut sent = 0;
    // Every attempt is at most two requests (Arc's challenge and the authorized one), plus
    // the IMDS probe once.
    let attempts = fetch.source().spec().retry.max_retries + 1;
    loop {
        polls += 1;
        assert!(polls <= MAX_POLLS + 1, "the fetch ran past its step bound");
        match fetch.poll(*now) {
            Poll::Done(outcome) => {
                assert!(
                    sent <= 2 * attempts + 1,
                    "{sent} requests for {attempts} attempts"
                );
                assert!(fetch.retries() < attempts, "{} retries", fetch.retries());
                return outcome;
            }
            Poll::Wait(at) => {
                assert!(at > *now, "a wait for the past: {at:?} at {now:?}");
                *now = at;
            }
            Poll::Act(Action::Send(request)) => {
                sent += 1;
                assert!(
                    *now < deadline,
                    "a request sent at {now:?}, past the deadline {deadline:?}"
                );
                let left = now.millis_until(deadline);
                assert!(
                    fetch.send_timeout_ms() <= left.max(1),
                    "a timeout past the deadline"
                );
                let debug = format!("{request:?}");
                for secret in &fixture.secrets {
                    assert_no_leak(&debug, secret, &seen.fed);
                }
                let (answer, delay) = reply(input, *now, selector, &fixture.secrets);
                *now = now.plus_millis(delay);
                match answer {
                    Ok(answer) => {
                        for secret in [ARC_KEY, ASSERTION] {
                            let echo = String::from_utf8_lossy(&answer.body).contains(secret)
                                || json_strings(&answer.body)
                                    .iter()
                                    .chain(answer.headers.iter().map(|(_, v)| v))
                                    .any(|s| s.contains(secret));
                            if echo && !seen.handed.contains(&secret) {
                                seen.unknown.push(secret);
                            }
                        }
                        if (200..300).contains(&answer.status) {
                            seen.tokens.extend(access_token_of(&answer.body));
                        }
                        fed_texts(&answer.body, &mut seen.fed);
                        seen.fed
                            .extend(answer.headers.iter().map(|(_, v)| v.clone()));
                        fetch.handle_response(*now, answer);
                    }
                    Err(error) => fetch.handle_transport_error(*now, error),
                }
            }
            Poll::Act(Action::ReadFile(read)) => {
                if read.path.starts_with(ARC_KEY_DIR) {
                    assert_eq!(read.path, KEY_PATH, "a key file the challenge did not name");
                    assert!(!read.follow_symlinks && read.max_len == ARC_KEY_MAX_BYTES);
                }
                let known = if read.path == KEY_PATH {
                    ARC_KEY
                } else {
                    ASSERTION
                };
                let result = match input.byte() % 6 {
                    0..=2 => {
                        seen.handed.push(known);
                        Ok(known.as_bytes().to_vec())
                    }
                    3 => Ok(input.chunk().to_vec()),
                    4 => Ok(vec![b'k'; read.max_len + 1]),
                    _ => Err(FileError::new(FileErrorKind::NotFound, "no such file")),
                };
                fetch.handle_file(*now, result);
            }
        }
    }
}

/// Bytes: fixture, selector, failure hold, then per call (1–3 calls) its options and the
/// answers to its requests.
///
/// Every fetch terminates within its step bound without the core's "did not settle" error;
/// no request is sent at or after the call's deadline; a caller only ever gets a token that a
/// 2xx body carried, usable at that instant; no error and no request `Debug` shows a secret
/// the service did not send whole; with nothing in flight a call never has to wait.
pub fn acquisition(data: &[u8]) {
    calls(data);
}

/// [`acquisition`], returning what each call answered (the source of the token, or the error
/// kind): the property test checks that the seeds reach a token from every source.
pub(crate) fn calls(data: &[u8]) -> Vec<Result<Source, ErrorKind>> {
    let mut answers = Vec::new();
    let mut input = Input::new(data);
    let setup = input.byte();
    let mut fixture = fixture(setup);
    fixture.facts.arc_agent_present = setup & 0x80 != 0 && fixture.secrets.is_empty();
    if fixture.facts.arc_agent_present {
        fixture.secrets.push(ARC_KEY);
    }
    let pick = input.byte();
    let selector = if pick.is_multiple_of(2) {
        IdentitySelector::SystemAssigned
    } else {
        selector(pick / 2)
    };
    let mut identity = ManagedIdentity::new().with_failure_hold(input.pick(&[0, 0, 1_000]));
    let mut now = NOW;
    let mut seen = Seen::default();
    let calls = 1 + input.below(3);
    for _ in 0..calls {
        let options = input.byte();
        now = now.plus_millis(input.pick(&ADVANCES));
        let claims = (options & 4 != 0).then_some(r#"{"access_token":{"nbf":{"essential":true}}}"#);
        let request = TokenRequest {
            probe: options & 1 != 0,
            force_refresh: options & 2 != 0,
            claims,
            timeout_ms: TIMEOUTS[usize::from(options >> 3) % TIMEOUTS.len()],
            ..TokenRequest::new(SCOPE, &selector)
        };
        let mut usable = None;
        if !request.bypasses_cache() {
            match identity.cached(now, SCOPE, &selector) {
                Ok(Cached::Fresh(token)) => {
                    check_served(token, now, &seen);
                    answers.push(Ok(token.source()));
                    continue;
                }
                Ok(Cached::RefreshDue(token)) => {
                    check_served(token, now, &seen);
                    usable = Some(token.usable_until());
                }
                Ok(Cached::Miss) => {}
                Err(error) => {
                    check_call_error(&error, &fixture, &seen);
                    answers.push(Err(error.kind()));
                    continue;
                }
            }
        }
        let random = (now.0 ^ u64::from(options)).to_le_bytes();
        let random: [u8; 16] = [random, random].concat().try_into().unwrap_or([0; 16]);
        let answer = match identity.start(now, &request, &fixture.env, fixture.facts, random) {
            Ok(Start::Fetch(mut fetch)) => {
                let deadline = now.plus_millis(request.call_timeout_ms());
                let deadline = usable.map_or(deadline, |u| deadline.min(UnixMillis::from_secs(u)));
                seen.handed.clear();
                let outcome = drive(
                    &mut fetch, &mut now, deadline, &mut input, &selector, &fixture, &mut seen,
                );
                if let Ok(token) = outcome.result() {
                    check_token(token, now);
                    check_served(token, now, &seen);
                }
                identity.finish(now, outcome)
            }
            Ok(Start::Cached(token)) => Ok(token),
            Ok(Start::Wait) => panic!("a call waits with no fetch in flight"),
            Err(error) => Err(error),
        };
        answers.push(match answer {
            Ok(token) => {
                check_served(&token, now, &seen);
                Ok(token.source())
            }
            Err(error) => {
                check_call_error(&error, &fixture, &seen);
                Err(error.kind())
            }
        });
    }
    answers
}

/// An error a caller gets: never the core's own "did not settle", no secret.
#[track_caller]
fn check_call_error(error: &Error, fixture: &Fixture, seen: &Seen) {
    assert!(
        error.kind() != ErrorKind::Internal,
        "an internal error: {error}"
    );
    let secrets: Vec<&str> = (fixture.secrets.iter().copied())
        .filter(|s| !seen.unknown.contains(s))
        .collect();
    check_error(error, &secrets, &seen.fed);
}
