// About 470 lines: one test per filter decision, on one scripted dispatcher and store.
//! The filter's decisions on virtual time, with a scripted `Dispatch` and a store of the
//! root's own (the real Envoy run is host-test/tests/envoy/); workers sharing a store are in
//! `tests/shared.rs`.

mod bearer;
mod chain;
mod diagnostics;
mod glue;
mod multi;
mod replies;
mod shared;
mod stats;

use super::config::FilterConfig;
use super::store::CasStore;
use super::token_root::{Dispatch, Effects, FAILURE_HOLD_MS, Level, TokenRoot, Verdict, seed};
use crate::proto::{
    EnvSnapshot, HttpRequest, HttpResponse, TransportError, TransportErrorKind, UnixMillis,
};
use serde_json::{Value, json};

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const IMDS: &str = "http://127.0.0.1:9";

/// Records what was dispatched; `refuse` makes the next dispatch fail.
#[derive(Default)]
struct Calls {
    sent: Vec<HttpRequest>,
    timeouts: Vec<u32>,
    refuse: bool,
}

impl Dispatch for Calls {
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u32) -> Result<u32, TransportError> {
        if self.refuse {
            return Err(TransportError::new(
                TransportErrorKind::Denied,
                "no cluster \"imds\"",
            ));
        }
        self.sent.push(request.clone());
        self.timeouts.push(timeout_ms);
        Ok(u32::try_from(self.sent.len()).unwrap())
    }
}

/// A store only this root uses: it behaves as without one.
fn own_store() -> CasStore<shared::Mem> {
    CasStore(shared::Mem::default())
}

fn root(config: &str, env: &[(&str, &str)]) -> TokenRoot {
    TokenRoot::new(
        FilterConfig::parse(config.as_bytes()).unwrap(),
        EnvSnapshot::from_pairs(env.iter().copied()),
        T0,
    )
}

fn imds_root() -> TokenRoot {
    root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    )
}

fn token_response(token: &str, now: UnixMillis, lifetime: u64) -> HttpResponse {
    let expires_on = now.as_secs() + lifetime;
    HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({
            "access_token": token, "expires_in": lifetime.to_string(),
            "expires_on": expires_on.to_string(), "resource": "https://vault.azure.net",
            "token_type": "Bearer",
        })
        .to_string()
        .into_bytes(),
    }
}

/// The root's first request at [`T0`], its token request dispatched and answered with `token`
/// (`lifetime` seconds): how every test about a cached token starts. Returns the answer's
/// effects.
fn first_token(
    root: &mut TokenRoot,
    token: &str,
    lifetime: u64,
    calls: &mut Calls,
    mem: &mut CasStore<shared::Mem>,
) -> Effects {
    root.on_request(T0, 1, mem);
    root.on_tick(T0, calls, mem);
    root.on_response(T0, 1, Ok(token_response(token, T0, lifetime)), calls, mem)
}

fn bearer(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Forward(bearer) => bearer.secret(),
        other => panic!("expected a token, got {other:?}"),
    }
}

/// The one line of `log` that carries `body`'s request id.
fn logged<'a>(log: &'a [(Level, String)], body: &Value) -> &'a str {
    let id = body["request_id"].as_str().expect("a request_id");
    let lines: Vec<&str> = log
        .iter()
        .filter(|(level, line)| *level == Level::Warn && line.contains(id))
        .map(|(_, line)| line.as_str())
        .collect();
    assert_eq!(lines.len(), 1, "one warning with request_id {id}: {log:?}");
    lines[0]
}

fn reply(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Reply(reply) => {
            assert_eq!(reply.status, 503);
            serde_json::from_str(&reply.body).unwrap()
        }
        other => panic!("expected a local reply, got {other:?}"),
    }
}

#[test]
fn paused_requests_share_one_token_request_and_resume_in_order() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    let first = root.on_request(T0, 10, &mut mem);
    assert_eq!(first.verdict, Verdict::Pause);
    assert!(first.wake, "the first waiting request wakes the root");
    for id in 11..20 {
        let step = root.on_request(T0, id, &mut mem);
        assert_eq!(step.verdict, Verdict::Pause);
        assert!(!step.wake, "one wake-up is enough");
    }
    assert!(root.is_waiting(15));
    assert_eq!(root.next_tick_ms(T0), Some(1));
    assert!(root.on_tick(T0, &mut calls, &mut mem).resume.is_empty());
    assert_eq!(
        calls.sent.len(),
        1,
        "one token request for ten paused requests"
    );
    let sent = &calls.sent[0];
    assert_eq!(sent.authority, "127.0.0.1:9");
    assert!(
        sent.path_and_query
            .starts_with("/metadata/identity/oauth2/token?")
    );
    assert_eq!(sent.header("Metadata"), Some("true"));
    assert!(root.next_tick_ms(T0).is_some(), "the deadline is ticked");
    // Another request while the fetch is in flight: waits, no new wake-up, no new request.
    let late = root.on_request(T0, 20, &mut mem);
    assert_eq!((late.verdict, late.wake), (Verdict::Pause, false));

    let now = T0.plus_millis(5);
    let effects = root.on_response(
        now,
        1,
        Ok(token_response("tok-1", now, 86_399)),
        &mut calls,
        &mut mem,
    );
    let ids: Vec<u32> = effects.resume.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (10..=20).collect::<Vec<_>>());
    for (_, verdict) in &effects.resume {
        assert_eq!(bearer(verdict), "Bearer tok-1");
    }
    assert!(!effects.log.iter().any(|(_, line)| line.contains("tok-1")));
    assert!(!root.is_waiting(15));
    assert_eq!(root.next_tick_ms(now), None, "idle: no ticks");

    let cached = root.on_request(now.plus_millis(1), 21, &mut mem);
    assert_eq!(bearer(&cached.verdict), "Bearer tok-1");
    assert!(!cached.wake);
    assert_eq!(calls.sent.len(), 1);
}

#[test]
fn a_gone_stream_is_not_resumed() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut mem);
    root.on_request(T0, 2, &mut mem);
    root.on_stream_done(1);
    root.on_tick(T0, &mut calls, &mut mem);
    let effects = root.on_response(
        T0,
        1,
        Ok(token_response("t", T0, 86_399)),
        &mut calls,
        &mut mem,
    );
    assert_eq!(effects.resume.len(), 1);
    assert_eq!(effects.resume[0].0, 2);
}

#[test]
fn a_refused_token_request_answers_every_paused_request_then_holds_down() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut mem);
    root.on_request(T0, 2, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    let refused = HttpResponse {
        status: 400,
        headers: vec![],
        body: json!({"error": "invalid_resource", "error_description": "AADSTS500011: not found"})
            .to_string()
            .into_bytes(),
    };
    let effects = root.on_response(T0, 1, Ok(refused), &mut calls, &mut mem);
    assert_eq!(effects.resume.len(), 2);
    let first = reply(&effects.resume[0].1);
    for (_, verdict) in &effects.resume {
        let body = reply(verdict);
        assert_eq!(body["error"], "authentication_failed");
        assert_eq!(body["source"], "imds");
        assert_eq!(
            body["request_id"], first["request_id"],
            "one failure, one id"
        );
    }
    // The details are in the log, under that id.
    let line = logged(&effects.log, &first);
    assert!(line.contains(r#""status":400"#), "{line}");
    assert!(line.contains(r#""code":"invalid_resource""#), "{line}");
    // Within the hold-down: the same answer at once, nothing sent, nothing new logged.
    let held = root.on_request(T0.plus_millis(FAILURE_HOLD_MS - 1), 3, &mut mem);
    assert_eq!(reply(&held.verdict), first);
    assert_eq!(held.log, None);
    assert!(!held.wake);
    // After it: a new fetch.
    let after = root.on_request(T0.plus_millis(FAILURE_HOLD_MS), 4, &mut mem);
    assert_eq!((after.verdict, after.wake), (Verdict::Pause, true));
    assert_eq!(calls.sent.len(), 1);
}

#[test]
fn a_missing_cluster_fails_the_paused_requests_at_once() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls {
        refuse: true,
        ..Calls::default()
    };
    root.on_request(T0, 1, &mut mem);
    let effects = root.on_tick(T0, &mut calls, &mut mem);
    assert_eq!(effects.resume.len(), 1);
    let body = reply(&effects.resume[0].1);
    assert_eq!(body["error"], "credential_unavailable");
    let line = logged(&effects.log, &body);
    assert!(line.contains(r#"no cluster \"imds\""#), "{line}");
}

#[test]
fn fail_mode_allow_forwards_without_a_token() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "fail_mode": "allow"}"#,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    );
    let mut calls = Calls {
        refuse: true,
        ..Calls::default()
    };
    root.on_request(T0, 1, &mut mem);
    let effects = root.on_tick(T0, &mut calls, &mut mem);
    assert_eq!(effects.resume, vec![(1, Verdict::ForwardUnauthenticated)]);
}

#[test]
fn sources_that_need_files_are_refused_up_front() {
    let mut mem = own_store();
    let arc = [
        (
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        ),
        ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
    ];
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "arc"}"#,
        &arc,
    );
    let refused = root.refused().expect("Azure Arc is refused");
    assert!(refused.message().contains("file"), "{}", refused.message());
    let step = root.on_request(T0, 1, &mut mem);
    assert!(!step.wake);
    let body = reply(&step.verdict);
    assert_eq!(body["error"], "credential_unavailable");
    assert_eq!(body["source"], "azure_arc");
    let mut calls = Calls::default();
    assert!(root.on_tick(T0, &mut calls, &mut mem).resume.is_empty());
    assert!(calls.sent.is_empty());

    let workload = [
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token"),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
    ];
    let root = self::root(r#"{"scope": "s", "cluster": "entra"}"#, &workload);
    assert!(root.refused().is_some());
}

#[test]
fn app_service_sends_its_secret_header_through_the_cluster() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "mi", "identity": {"client_id": "c1"}, "timeout_ms": 700}"#,
        &[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "secret-value"),
        ],
    );
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    let sent = &calls.sent[0];
    assert_eq!(sent.authority, "127.0.0.1:41741");
    assert_eq!(sent.header("X-IDENTITY-HEADER"), Some("secret-value"));
    assert!(sent.path_and_query.contains("client_id=c1"));
    assert_eq!(calls.timeouts, vec![700], "timeout_ms caps the call");
}

#[test]
fn a_due_refresh_keeps_serving_the_token_and_runs_in_the_background() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    // Two hours: refreshed at half-life.
    first_token(&mut root, "old", 7_200, &mut calls, &mut mem);
    let due = T0.plus_millis(3_601_000);
    let step = root.on_request(due, 2, &mut mem);
    assert_eq!(bearer(&step.verdict), "Bearer old");
    assert!(step.wake, "the refresh is the root's job");
    root.on_tick(due, &mut calls, &mut mem);
    assert_eq!(calls.sent.len(), 2);
    let during = root.on_request(due, 3, &mut mem);
    assert_eq!(bearer(&during.verdict), "Bearer old");
    assert!(!during.wake);
    let effects = root.on_response(
        due,
        2,
        Ok(token_response("new", due, 7_200)),
        &mut calls,
        &mut mem,
    );
    assert!(effects.resume.is_empty());
    assert_eq!(
        bearer(&root.on_request(due, 4, &mut mem).verdict),
        "Bearer new"
    );
}

#[test]
fn a_failed_refresh_keeps_the_current_token() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    first_token(&mut root, "old", 7_200, &mut calls, &mut mem);
    let due = T0.plus_millis(3_601_000);
    root.on_request(due, 2, &mut mem);
    root.on_tick(due, &mut calls, &mut mem);
    let refused = HttpResponse {
        status: 400,
        headers: vec![],
        body: br#"{"error":"invalid_request","error_description":"bad"}"#.to_vec(),
    };
    let effects = root.on_response(due, 2, Ok(refused), &mut calls, &mut mem);
    assert!(
        effects
            .log
            .iter()
            .any(|(_, line)| line.contains("proactive refresh")),
        "{:?}",
        effects.log
    );
    let after = root.on_request(due.plus_millis(1), 3, &mut mem);
    assert_eq!(bearer(&after.verdict), "Bearer old");
}

#[test]
fn a_token_request_that_never_answers_ends_at_the_deadline() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "timeout_ms": 3000}"#,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    );
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut mem);
    let mut now = T0;
    let mut effects = root.on_tick(now, &mut calls, &mut mem);
    for _ in 0..100 {
        if !effects.resume.is_empty() {
            break;
        }
        let wait = root
            .next_tick_ms(now)
            .expect("a fetch in flight keeps ticking");
        now = now.plus_millis(wait);
        effects = root.on_tick(now, &mut calls, &mut mem);
    }
    assert_eq!(effects.resume.len(), 1);
    assert!(now <= T0.plus_millis(3_000 + 1_000), "ended by {now:?}");
    let body = reply(&effects.resume[0].1);
    assert!(logged(&effects.log, &body).contains("IMDS"), "{effects:?}");
    // A late answer to the abandoned call 1 is ignored: nothing resumed, nothing cached.
    let late = |root: &mut TokenRoot, calls: &mut Calls, mem: &mut _, now: UnixMillis| {
        let answer = Ok(token_response("late", now, 86_399));
        root.on_response(now, 1, answer, calls, mem)
    };
    assert_eq!(
        late(&mut root, &mut calls, &mut mem, now),
        Default::default()
    );
    let after_hold = now.plus_millis(FAILURE_HOLD_MS);
    let next = root.on_request(after_hold, 2, &mut mem);
    assert_eq!(
        (next.verdict, next.wake),
        (Verdict::Pause, true),
        "not served the late token"
    );
    root.on_tick(after_hold, &mut calls, &mut mem);
    assert_eq!(calls.sent.len(), 2, "a new token request, call 2");
    // Even while call 2 is in flight, call 1's answer is not taken for it.
    let effects = late(&mut root, &mut calls, &mut mem, after_hold);
    assert_eq!(effects, Default::default());
    assert!(root.is_waiting(2), "still waiting for call 2");
    let third = root.on_request(after_hold, 3, &mut mem);
    assert_eq!(third.verdict, Verdict::Pause);
    let answered = root.on_response(
        after_hold,
        2,
        Ok(token_response("fresh", after_hold, 86_399)),
        &mut calls,
        &mut mem,
    );
    assert_eq!(answered.resume.len(), 2);
    for (_, verdict) in &answered.resume {
        assert_eq!(bearer(verdict), "Bearer fresh");
    }
}

#[test]
fn debug_output_never_shows_the_token() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    let effects = first_token(&mut root, "s3cr3t-token", 86_399, &mut calls, &mut mem);
    let debug = format!("{effects:?} {root:?}");
    assert!(!debug.contains("s3cr3t-token"), "{debug}");
}

#[test]
fn seeds_differ_per_fetch() {
    assert_ne!(seed(T0, 1), seed(T0, 2));
    assert_ne!(seed(T0, 1), seed(T0.plus_millis(1), 1));
}
