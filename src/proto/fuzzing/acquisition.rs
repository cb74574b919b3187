//! The `acquisition` target: whole calls through [`ManagedIdentity`] and [`Acquisition`] on
//! virtual time, every answer (status, headers, body, delay, transport failure, file) decoded
//! from the fuzz bytes.

use super::Input;
use super::oracle::{
    access_token_of, assert_no_leak, check_error, check_token, fed_texts, json_strings,
};
use super::parsers::{NOW, selector};
use super::world::{ARC_KEY, ASSERTION, Fixture, KEY_PATH, fixture, reply};
use crate::proto::acquisition::MAX_POLLS;
use crate::proto::arc::{ARC_KEY_DIR, ARC_KEY_MAX_BYTES};
use crate::proto::{
    AccessToken, Acquisition, Action, Cached, Error, ErrorKind, FileError, FileErrorKind,
    IdentitySelector, ManagedIdentity, Outcome, Poll, Source, Start, TokenRequest, UnixMillis,
};

/// The scope every call asks for.
const SCOPE: &str = "https://management.azure.com/.default";
/// Waits between calls in ms: none, a minute, an hour, around refresh and expiry.
const ADVANCES: [u64; 8] = [
    0, 1_000, 60_000, 3_600_000, 43_200_000, 43_300_000, 86_100_000, 86_400_000,
];
/// Call deadlines: the default, short, long, and one that ends at once.
const TIMEOUTS: [Option<u64>; 4] = [None, Some(2_000), Some(15_000), Some(1)];

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
