//! Issue 5 through the real component: retries on the guest's clock (tokio paused: the
//! back-off takes virtual time only), the cache under load, the IMDS probe.

use crate::util::*;
use azmi_host_test::emulator::Fault;
use azmi_host_test::{Egress, IdentitySelector, Source, TokenError, TokenRequest};
use std::time::Instant;

fn status(status: u16, times: u32, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status,
        times,
        retry_after: retry_after.map(str::to_string),
        body: None,
    }
}

#[tokio::test(start_paused = true)]
async fn thousand_calls_on_one_instance_make_one_upstream_request() {
    let mut rig = rig(&imds_env()).await;
    let real = Instant::now();
    for _ in 0..1000 {
        rig.guest
            .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(rig.emulator.token_requests(), 1);
    eprintln!("1000 get-token calls (debug host): {:?}", real.elapsed());
}

#[tokio::test(start_paused = true)]
async fn app_service_503_twice_then_a_token_after_backoff() {
    let mut rig = rig(&app_service_env("emulator-identity-header")).await;
    rig.emulator.push_fault(status(503, 2, None));
    let virtual_start = tokio::time::Instant::now();
    let token = rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .expect("token after two retries");
    assert_eq!(token.source, Source::AppService);
    assert_eq!(rig.emulator.token_requests(), 3);
    let waited = virtual_start.elapsed();
    // 1 s then 2 s nominal, jitter 80–120 %.
    assert!(waited.as_millis() >= 800 + 1_600, "{waited:?}");
    assert!(waited.as_millis() <= 1_200 + 2_400 + 500, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn imds_410_is_retried_on_the_imds_schedule() {
    let mut rig = rig(&imds_env()).await;
    rig.emulator.push_fault(status(410, 1, None));
    let virtual_start = tokio::time::Instant::now();
    rig.guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .expect("token after one retry");
    assert_eq!(rig.emulator.token_requests(), 2);
    let waited = virtual_start.elapsed().as_millis();
    assert!((1_600..=2_600 + 500).contains(&waited), "{waited} ms");
}

#[tokio::test(start_paused = true)]
async fn retry_after_longer_than_the_backoff_is_honoured() {
    let mut rig = rig(&imds_env()).await;
    rig.emulator.push_fault(status(429, 1, Some("7")));
    let virtual_start = tokio::time::Instant::now();
    rig.guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .expect("token after the Retry-After wait");
    let waited = virtual_start.elapsed().as_millis();
    assert!((7_000..7_500).contains(&waited), "{waited} ms");
}

#[tokio::test(start_paused = true)]
async fn persistent_500_gives_up_with_the_last_status() {
    let mut rig = rig(&app_service_env("emulator-identity-header")).await;
    rig.emulator.push_fault(status(500, 10, None));
    let error = rig
        .error(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await;
    let info = failed(&error);
    assert_eq!(info.status, Some(500));
    assert!(
        info.message.contains("gave up after 4 attempts"),
        "{}",
        info.message
    );
    assert_eq!(rig.emulator.token_requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn throttled_answer_is_remembered_for_its_retry_after() {
    let mut rig = rig(&app_service_env("emulator-identity-header")).await;
    rig.emulator.push_fault(status(429, 10, Some("20")));
    let request = TokenRequest {
        timeout_ms: Some(30_000),
        ..TokenRequest::system_assigned(VAULT_SCOPE)
    };
    let first = rig.guest.get_token_with(&request).await.unwrap();
    assert!(first.is_err());
    let asked = rig.emulator.token_requests();
    let second = rig
        .guest
        .get_token_with(&request)
        .await
        .unwrap()
        .unwrap_err();
    assert!(second.message().contains("remembered"), "{second:?}");
    assert_eq!(
        rig.emulator.token_requests(),
        asked,
        "no request while throttled"
    );
}

/// The no-managed-identity answer with `probe: true`: the real probe to IMDS (its
/// connections sent to a loopback listener that never answers), real network egress, one
/// probe per call and nothing else, each call timed.
#[tokio::test(flavor = "multi_thread")]
async fn no_managed_identity_answers_unavailable_fast() {
    let nobody = Recorder::start().await;
    let env = Vec::new();
    let mut egress = Egress::network(&env, None).unwrap();
    egress.connect_imds_to(nobody.address).unwrap();
    let mut guest = host()
        .instantiate(cli_like_config(env, egress))
        .await
        .unwrap();
    let request = TokenRequest {
        probe: true,
        ..TokenRequest::system_assigned(VAULT_SCOPE)
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let result = guest.get_token_with(&request).await.unwrap();
        times.push(start.elapsed());
        let Err(TokenError::CredentialUnavailable(info)) = &result else {
            panic!("{result:?}")
        };
        assert!(
            info.message.contains("no managed identity is reachable"),
            "{}",
            info.message
        );
    }
    let heads = nobody.heads();
    assert_eq!(
        heads.len(),
        5,
        "one probe per call, no retry, no token request: {heads:?}"
    );
    for head in &heads {
        crate::cli_reach::assert_imds_probe(head);
    }
    assert!(
        times.iter().all(|t| *t < std::time::Duration::from_secs(2)),
        "sanity bound: {times:?}"
    );
    times.sort();
    eprintln!(
        "no-MI answer with --probe (get-token call, debug host): p50 {:?}, all {times:?}",
        times[2]
    );
}
