//! The timing loop: batches of calls timed with `Instant`, percentiles over the batches.

use std::time::{Duration, Instant};

/// Percentiles of one measurement, in nanoseconds per call.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Stats {
    /// `p50 / p90` in the unit that suits the median.
    pub fn show(&self) -> String {
        format!("{} / {}", human(self.p50), human(self.p90))
    }
}

/// `ns` as `0.123 µs`, `1.23 µs`, `12.3 µs`, `1.23 ms`.
pub fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{:.3} µs", ns / 1_000.0)
    } else if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 100_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// Runs `run(batch)` (which must make `batch` calls) `samples` times after one warm-up batch
/// and returns per-call percentiles over the batches. Batching keeps `Instant::now` (~25 ns)
/// out of sub-microsecond results.
pub fn batched(samples: usize, batch: u64, mut run: impl FnMut(u64)) -> Stats {
    run(batch);
    let mut per_call: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            run(batch);
            start.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    percentiles(&mut per_call)
}

/// [`batched`] for two workloads whose batches alternate, so load that comes and goes during
/// the run (this is a shared machine) hits both alike: a ratio of the two is then steadier
/// than one of two separate runs. Returns `a`'s and `b`'s per-call percentiles.
pub fn alternated(
    samples: usize,
    batch: u64,
    mut a: impl FnMut(u64),
    mut b: impl FnMut(u64),
) -> (Stats, Stats) {
    a(batch);
    b(batch);
    let per_call = |run: &mut dyn FnMut(u64)| {
        let start = Instant::now();
        run(batch);
        start.elapsed().as_nanos() as f64 / batch as f64
    };
    let (mut times_a, mut times_b) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        times_a.push(per_call(&mut a));
        times_b.push(per_call(&mut b));
    }
    (percentiles(&mut times_a), percentiles(&mut times_b))
}

/// Percentiles of `durations`.
pub fn of(durations: &[Duration]) -> Stats {
    let mut ns: Vec<f64> = durations.iter().map(|d| d.as_nanos() as f64).collect();
    percentiles(&mut ns)
}

fn percentiles(values: &mut [f64]) -> Stats {
    assert!(!values.is_empty(), "no samples");
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Stats {
        p50: at(0.5),
        p90: at(0.9),
    }
}
