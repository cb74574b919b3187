//! Figures the Envoy tests print (never assert on): percentiles, milliseconds, Envoy's version.

use super::rig::envoy_binary;
use std::time::Duration;

/// The median of `samples`.
pub fn p50(samples: Vec<Duration>) -> Duration {
    percentile(samples, 50)
}

/// The `p`th percentile (nearest rank) of `samples`.
pub fn percentile(mut samples: Vec<Duration>, p: usize) -> Duration {
    samples.sort();
    let rank = (samples.len() * p).div_ceil(100).max(1);
    samples[rank - 1]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The version of the Envoy under test, e.g. `1.40.0`.
pub fn envoy_version() -> String {
    std::process::Command::new(envoy_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            // "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let (_, version) = text.split_once("version: ")?;
            version.split('/').nth(1).map(str::to_string)
        })
        .unwrap_or_else(|| "(unknown version)".into())
}
