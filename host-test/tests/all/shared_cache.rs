//! The shared-cache component (`managed-identity-shared`) in wasmtime: instances that share a
//! `wasi:keyvalue` store ask the emulator once, whatever their number; bad store values and
//! broken stores never fail a call.

use crate::util::{EMU, VAULT_SCOPE, imds_env};
use azmi::proto::decode_entry;
use azmi_host_test::emulator::{Config, Emulator, Fault};
use azmi_host_test::keyvalue::BUCKET;
use azmi_host_test::{Egress, Guest, GuestConfig, Host, IdentitySelector, KeyValue};
use std::sync::OnceLock;
use std::time::Duration;

fn shared_host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::shared().expect("compiling the shared-cache component"))
}

/// A fresh instance of the shared-cache component on `kv`, asking `emulator` as IMDS.
async fn instance(emulator: &Emulator, kv: Option<KeyValue>) -> Guest {
    let env = imds_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    shared_host()
        .instantiate(GuestConfig {
            env,
            egress: Egress::emulator(emulator, EMU),
            preopens: Vec::new(),
            tokio_clock: true,
            keyvalue: kv,
        })
        .await
        .expect("instantiating the shared-cache component")
}

async fn token(guest: &mut Guest) -> String {
    let result = guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .expect("no trap");
    result
        .unwrap_or_else(|e| panic!("expected a token: {e:?}"))
        .token
}

/// The entry keys in the bucket (leases excluded).
fn entries(kv: &KeyValue) -> Vec<String> {
    kv.keys(BUCKET)
        .into_iter()
        .filter(|k| !k.ends_with("/lease"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn two_instances_sharing_a_store_make_one_token_request() {
    let emulator = Emulator::new(Config::default());
    let kv = KeyValue::new();
    let first = token(&mut instance(&emulator, Some(kv.clone())).await).await;
    let second = token(&mut instance(&emulator, Some(kv.clone())).await).await;
    assert_eq!(first, second);
    assert_eq!(emulator.token_requests(), 1);
    let keys = entries(&kv);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored = kv.value(BUCKET, &keys[0]).expect("entry");
    assert_eq!(
        decode_entry(&stored).expect("a valid entry").secret(),
        first
    );
    assert!(!String::from_utf8_lossy(keys[0].as_bytes()).contains("vault"));
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_cold_instances_make_one_token_request() {
    let emulator = Emulator::new(Config::default());
    // The token endpoint takes a while, so every instance starts while the first one waits.
    emulator.push_fault(Fault::Delay {
        by: Duration::from_millis(200),
        times: 1,
    });
    let kv = KeyValue::new();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let mut guest = instance(&emulator, Some(kv.clone())).await;
        calls.spawn(async move { token(&mut guest).await });
    }
    let tokens: Vec<String> = calls.join_all().await;
    assert_eq!(tokens.len(), 50);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(
        emulator.token_requests(),
        1,
        "50 instances, one token request"
    );
}

#[tokio::test(start_paused = true)]
async fn corrupt_or_foreign_store_values_are_refetched_and_overwritten() {
    let emulator = Emulator::new(Config::default());
    let kv = KeyValue::new();
    let good = token(&mut instance(&emulator, Some(kv.clone())).await).await;
    let key = entries(&kv).remove(0);
    for (n, bad) in [
        &b"{not json"[..],
        br#"{"v":2,"access_token":"x"}"#,
        b"\x00\xff",
        b"",
    ]
    .into_iter()
    .enumerate()
    {
        kv.put(BUCKET, &key, bad);
        let fetched = token(&mut instance(&emulator, Some(kv.clone())).await).await;
        assert_ne!(fetched, good, "a new token replaced the bad value");
        assert_eq!(emulator.token_requests(), n + 2);
        let stored = kv.value(BUCKET, &key).expect("entry");
        assert_eq!(
            decode_entry(&stored).expect("valid again").secret(),
            fetched
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_broken_or_missing_store_falls_back_to_the_instance_cache() {
    for kv in [
        Some(KeyValue::new().fail_with("backend down")),
        Some(KeyValue::new().without_buckets()),
        // Nothing listens on port 1: every call fails to connect (`other`, as a Redis outage).
        Some(KeyValue::redis("redis://127.0.0.1:1").unwrap()),
        None,
    ] {
        let emulator = Emulator::new(Config::default());
        let mut guest = instance(&emulator, kv).await;
        let first = token(&mut guest).await;
        assert_eq!(
            token(&mut guest).await,
            first,
            "served from the instance cache"
        );
        assert_eq!(emulator.token_requests(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn the_plain_component_ignores_the_store() {
    let emulator = Emulator::new(Config::default());
    let kv = KeyValue::new();
    let env = imds_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>();
    for _ in 0..2 {
        let mut guest = crate::util::host()
            .instantiate(GuestConfig {
                env: env.clone(),
                egress: Egress::emulator(&emulator, EMU),
                preopens: Vec::new(),
                tokio_clock: true,
                keyvalue: Some(kv.clone()),
            })
            .await
            .unwrap();
        token(&mut guest).await;
    }
    assert_eq!(
        emulator.token_requests(),
        2,
        "azmi.wasm keeps one cache per instance"
    );
    assert!(kv.keys(BUCKET).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_due_refresh_goes_through_the_store_once() {
    let emulator = Emulator::new(Config {
        token_lifetime_secs: 7_200,
        ..Config::default()
    });
    let kv = KeyValue::new();
    // Instances whose clocks all follow the test's (paused) clock.
    let mut a = instance(&emulator, Some(kv.clone())).await;
    let mut b = instance(&emulator, Some(kv.clone())).await;
    let mut c = instance(&emulator, Some(kv.clone())).await;
    let old = token(&mut a).await;
    // Past half-life: the refresh is due everywhere. `b` finds it due in the store, takes the
    // lease and refreshes for everyone; `a` (its own copy due) and `c` read the new token.
    tokio::time::advance(Duration::from_secs(3_601)).await;
    let new = token(&mut b).await;
    assert_ne!(new, old, "refreshed");
    assert_eq!(emulator.token_requests(), 2);
    assert_eq!(
        token(&mut a).await,
        new,
        "the first instance reads the refreshed token"
    );
    assert_eq!(token(&mut c).await, new);
    assert_eq!(
        emulator.token_requests(),
        2,
        "one refresh for every instance"
    );
}
