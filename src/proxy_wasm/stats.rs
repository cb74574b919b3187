//! The filter's Envoy stats: counters and gauges defined through proxy-wasm metrics
//! (`proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`), seen on Envoy's
//! admin `/stats` and `/stats/prometheus`. Envoy puts metrics a wasm module defines under its
//! custom namespace (`wasmcustom.` in `/stats`, stripped by `/stats/prometheus`), and sums a
//! counter over the workers' VMs (each defines the same name).
//!
//! | name | kind | counts |
//! |---|---|---|
//! | `azmi.token_requests` | counter | token requests sent (retries included) |
//! | `azmi.token_failures.credential_unavailable` | counter | fetches (and proactive refreshes) that ended without a token, by class |
//! | `azmi.token_failures.authentication_failed` | counter | 〃 |
//! | `azmi.token_failures.invalid_argument` | counter | 〃 |
//! | `azmi.requests_authorized` | counter | requests forwarded with the token |
//! | `azmi.requests_rejected` | counter | requests answered with the local 503 |
//! | `azmi.requests_unauthenticated` | counter | requests forwarded without a token (`fail_mode: allow`) |
//! | `azmi.requests_passed_through` | counter | requests for an unmapped upstream forwarded untouched (`unmapped: pass`) |
//! | `azmi.scope.<label>.token_expires_in_seconds` | gauge | seconds until the cached token of that scope expires (`<label>`: [`super::filter::stat_label`]) |
//!
//! A gauge is recorded when the root obtains a token and at most once a second per worker as
//! requests come; with no token it is left as it was (every worker writes the one gauge).
//! A metric the host refuses to define is logged once and then skipped: stats never fail a
//! request.

use super::glue::{Host, log};
use super::verdict::Level;
use crate::error_report::class_name;
use crate::proto::{ErrorClass, UnixMillis};
use std::cell::Cell;

/// The prefix of every stat name.
pub const PREFIX: &str = "azmi.";

/// A proxy-wasm metric type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Set to a value.
    Gauge,
}

/// The counters.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Token requests sent.
    TokenRequests,
    /// Fetches that ended without a token, by class.
    TokenFailures(ErrorClass),
    /// Requests forwarded with the token.
    Authorized,
    /// Requests answered with the local 503.
    Rejected,
    /// Requests forwarded without a token (`fail_mode: allow`).
    Unauthenticated,
    /// Requests for an unmapped upstream forwarded untouched.
    PassedThrough,
}

/// Every counter, in the order of their ids.
const COUNTERS: [Counter; 8] = [
    Counter::TokenRequests,
    Counter::TokenFailures(ErrorClass::CredentialUnavailable),
    Counter::TokenFailures(ErrorClass::AuthenticationFailed),
    Counter::TokenFailures(ErrorClass::InvalidArgument),
    Counter::Authorized,
    Counter::Rejected,
    Counter::Unauthenticated,
    Counter::PassedThrough,
];

impl Counter {
    /// The stat name, with [`PREFIX`].
    pub fn name(self) -> String {
        let name = match self {
            Counter::TokenRequests => "token_requests",
            Counter::TokenFailures(class) => {
                return format!("{PREFIX}token_failures.{}", class_name(class));
            }
            Counter::Authorized => "requests_authorized",
            Counter::Rejected => "requests_rejected",
            Counter::Unauthenticated => "requests_unauthenticated",
            Counter::PassedThrough => "requests_passed_through",
        };
        format!("{PREFIX}{name}")
    }

    fn index(self) -> usize {
        COUNTERS.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// The name of the expiry gauge of the scope labelled `label`.
pub fn expiry_gauge(label: &str) -> String {
    format!("{PREFIX}scope.{label}.token_expires_in_seconds")
}

/// The metric ids a root context defined (`None`: the host refused that one).
#[derive(Debug, Default)]
pub struct Stats {
    counters: [Option<u32>; COUNTERS.len()],
    /// One per scope, in the filter's root order.
    gauges: Vec<Option<u32>>,
    /// The second the gauges were last recorded in.
    recorded: Cell<u64>,
}

impl Stats {
    /// Defines every counter and one expiry gauge per scope label (a label seen twice gets
    /// `_2`, `_3`, …). A refusal is logged once, naming the metric.
    pub fn define(host: &mut impl Host, labels: &[String]) -> Self {
        let mut refused = Vec::new();
        let mut define = |host: &mut _, kind, name: String| {
            let id = Host::define_metric(host, kind, &name).ok();
            if id.is_none() {
                refused.push(name);
            }
            id
        };
        let mut stats = Stats::default();
        for (slot, counter) in stats.counters.iter_mut().zip(COUNTERS) {
            *slot = define(host, MetricKind::Counter, counter.name());
        }
        let mut seen: Vec<&str> = Vec::new();
        for label in labels {
            let n = seen.iter().filter(|s| **s == label.as_str()).count();
            seen.push(label);
            let label = match n {
                0 => label.clone(),
                n => format!("{label}_{}", n + 1),
            };
            let id = define(host, MetricKind::Gauge, expiry_gauge(&label));
            stats.gauges.push(id);
        }
        if !refused.is_empty() {
            log(
                host,
                Level::Warn,
                &format!(
                    "Envoy refused to define the stats {}; they stay empty",
                    refused.join(", ")
                ),
            );
        }
        stats
    }

    /// Adds `n` to `counter` (a refused increment is dropped: stats never fail a request).
    pub fn add(&self, host: &mut impl Host, counter: Counter, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(id) = self.counters[counter.index()] {
            let _ = host.increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Whether the gauges were last recorded in an earlier second than `now`'s (and, if so,
    /// takes this second).
    pub fn due(&self, now: UnixMillis) -> bool {
        let second = now.as_secs();
        second != self.recorded.replace(second)
    }

    /// Records each scope's seconds to expiry (`None`: no token, left as it was).
    pub fn record(&self, host: &mut impl Host, expiries: impl Iterator<Item = Option<u64>>) {
        for (id, secs) in self.gauges.iter().zip(expiries) {
            if let (Some(id), Some(secs)) = (id, secs) {
                let _ = host.record_metric(*id, secs);
            }
        }
    }
}
