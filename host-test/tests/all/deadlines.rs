//! The call's deadline holds on the wire (issue 11, defect 2), through the real component:
//! a hanging endpoint on a real loopback socket, a body trickled a byte at a time, a refresh
//! against a hanging endpoint, and the CLI's `--timeout`.

use crate::cli::{azmi, emulator_on_loopback};
use crate::util::*;
use azmi_host_test::emulator::{Config, Emulator, Fault};
use azmi_host_test::{Egress, GuestConfig, IdentitySelector, TokenError, TokenRequest};
use std::time::{Duration, Instant};

/// The bound the issue sets for a 2 s call: 2.2 s.
const TWO_SECONDS_AND_SLACK: Duration = Duration::from_millis(2_200);

fn request(timeout_ms: Option<u64>) -> TokenRequest {
    TokenRequest {
        timeout_ms,
        ..TokenRequest::system_assigned(VAULT_SCOPE)
    }
}

fn hang(times: u32) -> Fault {
    Fault::Delay {
        by: Duration::from_secs(600),
        times,
    }
}

/// Before the fix the host was handed App Service's 30 s first-byte timeout and the call took
/// 30 s; now every timeout is cut to what is left of the 2 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_endpoint_with_timeout_ms_2000_answers_within_2_2_s() {
    let emulator = Emulator::new(Config::default());
    let (address, _server) = emulator.serve(0).await.unwrap();
    emulator.push_fault(hang(10));
    let env = vec![
        (
            "IDENTITY_ENDPOINT".to_string(),
            format!("http://{address}/msi/token"),
        ),
        (
            "IDENTITY_HEADER".to_string(),
            emulator.config().identity_header,
        ),
    ];
    let egress = Egress::network(&env, None).unwrap();
    let mut guest = host()
        .instantiate(GuestConfig::new(env, egress))
        .await
        .unwrap();
    let start = Instant::now();
    let result = guest.get_token_with(&request(Some(2_000))).await.unwrap();
    let took = start.elapsed();
    let Err(TokenError::CredentialUnavailable(info)) = &result else {
        panic!("{result:?}")
    };
    assert!(info.message.contains("did not answer in time"), "{info:?}");
    assert!(took <= TWO_SECONDS_AND_SLACK, "took {took:?}");
    assert!(took >= Duration::from_millis(1_900), "took {took:?}");
}

/// The body arrives one byte every 500 ms (headers at once): no between-bytes timer ever fires,
/// so only the component's own whole-response timer ends it. Before the fix the call read the
/// whole body, about 10 minutes of (virtual) time.
#[tokio::test(start_paused = true)]
async fn a_trickled_body_is_cut_off_by_the_whole_response_bound() {
    let mut rig = rig(&app_service_env("emulator-identity-header")).await;
    rig.emulator.push_fault(Fault::Trickle {
        every: Duration::from_millis(500),
        times: 10,
    });
    let start = tokio::time::Instant::now();
    let result = rig
        .guest
        .get_token_with(&request(Some(2_000)))
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(took <= TWO_SECONDS_AND_SLACK, "took {took:?} (virtual)");
    assert_eq!(rig.emulator.token_requests(), 1);
}

/// A cached token due for refresh, and the endpoint hangs: the caller gets the cached token
/// within the 5 s refresh bound, not after a 30 s first-byte timeout (and its retries).
#[tokio::test(start_paused = true)]
async fn a_refresh_against_a_hanging_endpoint_returns_the_cached_token_within_five_seconds() {
    let config = Config {
        token_lifetime_secs: 7_200,
        ..Config::default()
    };
    let mut rig = rig_with(config, &app_service_env("emulator-identity-header")).await;
    let first = rig
        .token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await;
    // A two-hour token is due for refresh at its half-life.
    tokio::time::advance(Duration::from_secs(3_601)).await;
    rig.emulator.push_fault(hang(10));
    let start = tokio::time::Instant::now();
    let again = rig
        .token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await;
    let took = start.elapsed();
    assert_eq!(again.token, first.token, "the cached token");
    assert!(
        took <= Duration::from_millis(5_100),
        "took {took:?} (virtual)"
    );
    assert_eq!(rig.emulator.token_requests(), 2, "one refresh attempt");
}

/// `azmi token --timeout 2000` against an endpoint that never answers ends within 2.2 s of the
/// request reaching the endpoint. The clock starts when the emulator sees the request, not when
/// the process starts: the debug binary compiles the component at every start, and on a loaded
/// machine that time varies by more than the slack (CI once measured a 2.26 s "deadline" that
/// was start-up noise). Before the fix the process took 31 s.
#[tokio::test(flavor = "multi_thread")]
async fn cli_timeout_2000_against_a_hanging_endpoint_answers_within_2_2_s_of_the_request() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let env = vec![
        ("IDENTITY_ENDPOINT", format!("{url}/msi/token")),
        ("IDENTITY_HEADER", emulator.config().identity_header),
    ];
    let args = [
        "token",
        "--scope",
        VAULT_SCOPE,
        "--no-cache",
        "--timeout",
        "2000",
    ];
    emulator.push_fault(hang(10));
    let run = tokio::spawn(async move { azmi(&args, &env).await });
    let mut arrived = None;
    while arrived.is_none() && !run.is_finished() {
        if emulator.token_requests() > 0 {
            arrived = Some(Instant::now());
        } else {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let (output, took) = run.await.unwrap();
    let after_request = arrived.expect("the request reached the endpoint").elapsed();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("credential_unavailable"), "{stdout}");
    assert!(
        after_request <= TWO_SECONDS_AND_SLACK,
        "answered {after_request:?} after the request arrived (process: {took:?})"
    );
    assert!(took >= Duration::from_millis(2_000), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_timeout_must_be_a_positive_number_of_milliseconds() {
    for bad in ["0", "-5", "2s", "", "99999999999999999999"] {
        let timeout = format!("--timeout={bad}");
        let (output, _) = azmi(&["token", "--scope", VAULT_SCOPE, &timeout], &[]).await;
        assert_eq!(output.status.code(), Some(1), "{bad:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--timeout"), "{bad:?}: {stderr}");
    }
}
