//! Per-request latency through Envoy on kept-alive connections, several listeners
//! interleaved so background load hits them alike: the Envoy test prints it and `just bench`
//! (row 7) reports it, from this one code path.

use super::client::{Connection, Reply};
use super::numbers::{p50, percentile};
use std::net::SocketAddr;
use std::time::Duration;

/// p50 and p99 of one listener's requests.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Percentiles {
    /// Of `samples`.
    pub fn of(samples: Vec<Duration>) -> Percentiles {
        Percentiles {
            p99: percentile(samples.clone(), 99),
            p50: p50(samples),
        }
    }

    /// What `self` adds over `base`, in µs: (p50, p99).
    pub fn added_us(&self, base: &Percentiles) -> (f64, f64) {
        let us = |a: Duration, b: Duration| (a.as_secs_f64() - b.as_secs_f64()) * 1e6;
        (us(self.p50, base.p50), us(self.p99, base.p99))
    }
}

/// `GET path` on one kept-alive connection per listener in `listeners`, one request to each
/// per round, `warmup` rounds then `rounds` timed ones; `check(listener index, reply)` checks
/// every reply. Returns each listener's percentiles, in `listeners`' order.
pub async fn interleaved(
    listeners: &[SocketAddr],
    path: &str,
    warmup: usize,
    rounds: usize,
    check: impl Fn(usize, &Reply),
) -> Vec<Percentiles> {
    let mut connections = Vec::new();
    for addr in listeners {
        connections.push(Connection::open(*addr).await.expect("connecting to Envoy"));
    }
    let mut samples = vec![Vec::with_capacity(rounds); listeners.len()];
    for round in 0..warmup + rounds {
        for (i, connection) in connections.iter_mut().enumerate() {
            let (reply, time) = connection
                .send("GET", path, &[], "")
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            check(i, &reply);
            if round >= warmup {
                samples[i].push(time);
            }
        }
    }
    samples.into_iter().map(Percentiles::of).collect()
}
