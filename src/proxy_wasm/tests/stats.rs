//! The filter's Envoy stats (issue 13) over a fake host that keeps every metric: names and
//! kinds defined once, counters for token requests, failures by class, requests authorized,
//! rejected, unauthenticated and passed through, and the expiry gauge per scope.

use super::{Calls, IMDS, T0, own_store, root, token_response};
use crate::proto::{AccessToken, ErrorClass, HttpResponse, Source, UnixMillis};
use crate::proxy_wasm::glue::{self, Host, HostStatus};
use crate::proxy_wasm::stats::{MetricKind, Stats};
use crate::proxy_wasm::token_root::{Bearer, Effects, Level, LocalReply, Verdict};
use std::collections::BTreeMap;

/// Keeps metrics by name; `refuse` names a metric whose definition fails.
#[derive(Default)]
struct Metrics {
    defined: Vec<(MetricKind, String)>,
    values: BTreeMap<String, u64>,
    refuse: Option<&'static str>,
    log: Vec<(Level, String)>,
}

impl Metrics {
    fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }
    fn name(&self, id: u32) -> String {
        self.defined[usize::try_from(id).unwrap()].1.clone()
    }
}

impl Host for Metrics {
    fn log(&mut self, level: Level, message: &str) -> Result<(), HostStatus> {
        self.log.push((level, message.into()));
        Ok(())
    }
    fn set_header(&mut self, _: &str, _: Option<&str>) -> Result<(), HostStatus> {
        Ok(())
    }
    fn send_reply(&mut self, _: &LocalReply) -> Result<(), HostStatus> {
        Ok(())
    }
    fn resume_request(&mut self) -> Result<(), HostStatus> {
        Ok(())
    }
    fn set_effective_context(&mut self, _: u32) -> Result<(), HostStatus> {
        Ok(())
    }
    fn set_tick_period(&mut self, _: u64) -> Result<(), HostStatus> {
        Ok(())
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, HostStatus> {
        if self.refuse == Some(name) {
            return Err(HostStatus(2));
        }
        self.defined.push((kind, name.into()));
        Ok(u32::try_from(self.defined.len() - 1).unwrap())
    }
    fn increment_metric(&mut self, id: u32, delta: i64) -> Result<(), HostStatus> {
        *self.values.entry(self.name(id)).or_default() += u64::try_from(delta).unwrap();
        Ok(())
    }
    fn record_metric(&mut self, id: u32, value: u64) -> Result<(), HostStatus> {
        self.values.insert(self.name(id), value);
        Ok(())
    }
}

fn forward() -> Verdict {
    let token = AccessToken::new("tok".into(), 1_900_000_000, T0, None, Source::Imds);
    Verdict::Forward(Bearer::new(&token))
}

#[test]
fn every_counter_and_one_gauge_per_scope_are_defined_under_azmi() {
    let mut host = Metrics::default();
    Stats::define(
        &mut host,
        &[
            "vault_azure_net".into(),
            "storage_azure_com".into(),
            "vault_azure_net".into(),
        ],
    );
    let names: Vec<(MetricKind, &str)> =
        host.defined.iter().map(|(k, n)| (*k, n.as_str())).collect();
    use MetricKind::{Counter, Gauge};
    assert_eq!(
        names,
        [
            (Counter, "azmi.token_requests"),
            (Counter, "azmi.token_failures.credential_unavailable"),
            (Counter, "azmi.token_failures.authentication_failed"),
            (Counter, "azmi.token_failures.invalid_argument"),
            (Counter, "azmi.requests_authorized"),
            (Counter, "azmi.requests_rejected"),
            (Counter, "azmi.requests_unauthenticated"),
            (Counter, "azmi.requests_passed_through"),
            (Gauge, "azmi.scope.vault_azure_net.token_expires_in_seconds"),
            (
                Gauge,
                "azmi.scope.storage_azure_com.token_expires_in_seconds"
            ),
            (
                Gauge,
                "azmi.scope.vault_azure_net_2.token_expires_in_seconds"
            ),
        ]
    );
    assert!(host.log.is_empty());

    // A metric the host refuses: one warning naming it; counting it does nothing.
    let mut host = Metrics {
        refuse: Some("azmi.requests_rejected"),
        ..Metrics::default()
    };
    let stats = Stats::define(&mut host, &[]);
    assert_eq!(host.log.len(), 1);
    assert!(
        host.log[0].1.contains("azmi.requests_rejected"),
        "{:?}",
        host.log
    );
    let reply = LocalReply {
        status: 503,
        body: "{}".into(),
    };
    assert!(!glue::apply(
        &mut host,
        &stats,
        "authorization",
        &Verdict::Reply(reply)
    ));
    assert!(host.values.is_empty());
}

#[test]
fn requests_and_token_requests_are_counted_as_the_glue_performs_them() {
    let mut host = Metrics::default();
    let stats = Stats::define(&mut host, &["vault_azure_net".into()]);
    let reply = LocalReply {
        status: 503,
        body: "{}".into(),
    };
    for verdict in [
        forward(),
        forward(),
        Verdict::ForwardUnauthenticated,
        Verdict::PassThrough,
    ] {
        assert!(glue::apply(&mut host, &stats, "authorization", &verdict));
    }
    assert!(!glue::apply(
        &mut host,
        &stats,
        "authorization",
        &Verdict::Pause
    ));
    let effects = Effects {
        resume: vec![(1, forward()), (2, Verdict::Reply(reply))],
        token_requests: 2,
        token_failures: vec![
            ErrorClass::AuthenticationFailed,
            ErrorClass::AuthenticationFailed,
        ],
        ..Effects::default()
    };
    glue::perform(&mut host, &stats, 0, "authorization", &effects);
    assert_eq!(host.get("azmi.requests_authorized"), 3);
    assert_eq!(host.get("azmi.requests_rejected"), 1);
    assert_eq!(host.get("azmi.requests_unauthenticated"), 1);
    assert_eq!(host.get("azmi.requests_passed_through"), 1);
    assert_eq!(host.get("azmi.token_requests"), 2);
    assert_eq!(host.get("azmi.token_failures.authentication_failed"), 2);
    assert_eq!(host.get("azmi.token_failures.credential_unavailable"), 0);

    // The gauge: at most once a second per worker, never written without a token.
    assert!(stats.due(T0));
    assert!(!stats.due(T0.plus_millis(999)));
    assert!(stats.due(T0.plus_millis(1_000)));
    stats.record(&mut host, [None].into_iter());
    assert!(
        !host
            .values
            .contains_key("azmi.scope.vault_azure_net.token_expires_in_seconds")
    );
    stats.record(&mut host, [Some(3_599)].into_iter());
    assert_eq!(
        host.get("azmi.scope.vault_azure_net.token_expires_in_seconds"),
        3_599
    );
}

#[test]
fn the_root_reports_its_token_requests_and_failures_by_class() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "timeout_ms": 100}"#,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    );
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut mem);
    let started = root.on_tick(T0, &mut calls, &mut mem);
    assert_eq!(
        (started.token_requests, started.token_failures.len()),
        (1, 0)
    );
    // IMDS answers 400 (not retried): one failure, authentication_failed.
    let bad = HttpResponse {
        status: 400,
        headers: Vec::new(),
        body: b"{}".to_vec(),
    };
    let failed = root.on_response(T0, 1, Ok(bad), &mut calls, &mut mem);
    assert_eq!(failed.token_requests, 0);
    assert_eq!(failed.token_failures, [ErrorClass::AuthenticationFailed]);
    // After the hold-down, a token: one more request, no failure, and its expiry.
    let later = T0.plus_millis(2_000);
    root.on_request(later, 2, &mut mem);
    assert_eq!(root.on_tick(later, &mut calls, &mut mem).token_requests, 1);
    let ok = root.on_response(
        later,
        2,
        Ok(token_response("t", later, 600)),
        &mut calls,
        &mut mem,
    );
    assert!(ok.token_failures.is_empty());
    assert_eq!(root.expires_in(UnixMillis(later.0 + 100_000)), Some(500));
}
