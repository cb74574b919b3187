//! The one loop ([`crate::drive`]) and the credential's side-effect-free check: what every
//! host relies on, whatever its instance model.

use super::harness::{Scenario, T0, json, respond};
use crate::drive::{self, Io};
use crate::proto::{
    Cached, EnvSnapshot, ErrorKind, FileError, FileRead, HostFacts, HttpRequest, HttpResponse,
    IdentitySelector, ManagedIdentity, TokenRequest, TransportError, UnixMillis,
};
use serde_json::json as j;

/// `check` refuses exactly what `start` refuses before sending, and leaves the credential
/// as it was (no detected source, nothing in flight, nothing cached).
#[test]
fn check_agrees_with_start_and_changes_nothing() {
    let cases = [
        Scenario::imds(),
        Scenario::arc().no_file_access(),
        Scenario::workload_identity().no_file_access(),
        Scenario::cloud_shell().selector(IdentitySelector::ClientId("c1".into())),
        Scenario::imds().scope("https://a/.default https://b/.default"),
        Scenario::imds().selector(IdentitySelector::ObjectId(String::new())),
        Scenario::app_service().env("IDENTITY_ENDPOINT", "not a url"),
    ];
    for mut s in cases {
        let checked = s.check();
        let fresh = ManagedIdentity::new();
        assert_eq!(
            format!("{:?}", s.identity()),
            format!("{fresh:?}"),
            "check changed the credential"
        );
        match (checked, s.start()) {
            (Ok(()), Ok(_)) => {}
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("check said {a:?}, start said {b:?}"),
        }
    }
}

/// A refresh that is due is served at once and reported as due, so a host that serves many
/// callers (Envoy) refreshes in the background and a blocking host refreshes inline.
#[test]
fn a_due_refresh_is_served_and_reported_as_due() {
    let mut s = Scenario::imds().reply(json(
        200,
        j!({"access_token": "old", "expires_in": 7200, "token_type": "Bearer"}),
    ));
    s.run().token();
    s.advance(3_601_000);
    let now = s.now();
    let scope = "https://management.azure.com/.default";
    let cached = s
        .identity()
        .cached(now, scope, &IdentitySelector::SystemAssigned)
        .expect("valid");
    assert!(matches!(cached, Cached::RefreshDue(token) if token.secret() == "old"));
    // The blocking loop refreshes inline and returns the new token.
    s.push(json(
        200,
        j!({"access_token": "new", "expires_in": 7200, "token_type": "Bearer"}),
    ));
    assert_eq!(s.run().token().secret(), "new");
}

/// A host whose clock never moves (its sleep returns at once) cannot make a fetch spin
/// forever: the fetch ends in an internal error after a bounded number of polls.
#[test]
fn a_host_whose_clock_never_moves_gets_an_internal_error_not_a_hang() {
    struct Frozen;
    impl Io for Frozen {
        fn now(&mut self) -> UnixMillis {
            T0
        }
        fn send(&mut self, _: &HttpRequest) -> Result<HttpResponse, TransportError> {
            Ok(respond(503, "busy").into_response())
        }
        fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError> {
            panic!("no file read expected: {read:?}")
        }
        fn sleep_until(&mut self, _: UnixMillis) {}
        fn env(&mut self) -> EnvSnapshot {
            EnvSnapshot::default()
        }
        fn facts(&mut self) -> HostFacts {
            HostFacts::default()
        }
        fn random(&mut self) -> [u8; 16] {
            [1; 16]
        }
    }
    let selector = IdentitySelector::SystemAssigned;
    let request = TokenRequest::new("https://vault.azure.net/.default", &selector);
    let mut credential = ManagedIdentity::new();
    let error = drive::get_token(&mut credential, &request, &mut Frozen, |t| t.clone())
        .expect_err("no token");
    assert_eq!(error.kind(), ErrorKind::Internal, "{error}");
    assert!(error.message().contains("please report"), "{error}");
    // The key is released: the next call fetches again instead of waiting forever.
    let again = drive::get_token(&mut credential, &request, &mut Frozen, |t| t.clone());
    assert_eq!(again.expect_err("no token").kind(), ErrorKind::Internal);
}
