//! Issue 13 in a real Envoy: the filter's diagnostics in the Envoy log at the configured
//! level, and its stats on the admin `/stats` and `/stats/prometheus` against what the
//! emulator saw; a scope per upstream is in `scopes.rs`, a bad configuration pushed to a
//! running Envoy in `reconfigure.rs`.

use super::client::{Reply, request};
use super::rig::{Envoy, config, filter_wasm, require_envoy};
use super::{burst, echo_requests, echoed_authorization, emulator, generic_503, with_filter};
use azmi_host_test::emulator::Fault;
use std::collections::BTreeMap;

pub(super) const VAULT: &str = "https://vault.azure.net/.default";
pub(super) const STORAGE: &str = "https://storage.azure.com/.default";
pub(super) const VAULT_GAUGE: &str = "azmi.scope.vault_azure_net.token_expires_in_seconds";
pub(super) const STORAGE_GAUGE: &str = "azmi.scope.storage_azure_com.token_expires_in_seconds";

/// The `azmi.` stats of `/stats` (Envoy may put them under its `wasmcustom.` namespace), and
/// the raw lines.
pub(super) async fn stats(envoy: &Envoy) -> (BTreeMap<String, u64>, String) {
    let (status, body) = super::client::get_once(envoy.admin, "/stats?filter=azmi")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut map = BTreeMap::new();
    for line in body.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        let name = name.strip_prefix("wasmcustom.").unwrap_or(name);
        if let (true, Ok(value)) = (name.starts_with("azmi."), value.trim().parse()) {
            map.insert(name.to_string(), value);
        }
    }
    (map, body)
}

/// The `azmi_` samples of `/stats/prometheus`, by metric name (labels dropped), and their
/// lines.
async fn prometheus(envoy: &Envoy) -> (BTreeMap<String, u64>, String) {
    let (status, body) = super::client::get_once(envoy.admin, "/stats/prometheus")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let ours: String = body
        .lines()
        .filter(|line| line.starts_with("azmi_") || line.starts_with("# TYPE azmi_"))
        .map(|line| format!("{line}\n"))
        .collect();
    let samples = body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            let name = name.split('{').next()?;
            let name = name.strip_prefix("wasmcustom_").unwrap_or(name);
            name.starts_with("azmi_")
                .then(|| Some((name.to_string(), value.parse::<f64>().ok()? as u64)))?
        })
        .collect();
    (samples, ours)
}

/// The `/stats` value of `name`, 0 when Envoy has not shown it.
pub(super) fn stat(map: &BTreeMap<String, u64>, name: &str) -> u64 {
    map.get(name).copied().unwrap_or(0)
}

/// The Envoy log lines that carry `text`.
pub(super) fn log_lines(envoy: &Envoy, text: &str) -> Vec<String> {
    envoy
        .log()
        .lines()
        .filter(|line| line.contains(text))
        .map(str::to_string)
        .collect()
}

pub(super) fn token_of(reply: &Reply) -> String {
    echoed_authorization(reply)
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
        .expect("a bearer token upstream")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Envoy and the built filter: run `just envoy`"]
async fn stats_and_diagnostics_match_what_the_emulator_saw() {
    require_envoy();
    let (emulator, port, url) = emulator().await;
    let env = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", url.as_str())];
    let yaml = config(
        &[
            with_filter(
                "ok",
                &format!(r#"{{"scope": "{VAULT}", "cluster": "imds", "log_level": "verbose"}}"#),
                &env,
            ),
            with_filter(
                "failing",
                &format!(r#"{{"scope": "{VAULT}", "cluster": "imds"}}"#),
                &env,
            ),
        ],
        &[("upstream", port), ("imds", port)],
        &filter_wasm(),
    );
    let envoy = Envoy::start(&yaml, 2).await;

    // One token request that IMDS refuses (400: not retried): one 503, one failure.
    emulator.push_fault(Fault::Status {
        status: 400,
        times: 1,
        retry_after: None,
        body: None,
    });
    let refused = request(envoy.listener("failing"), "GET", "/echo/failing", &[], "").await;
    let (body, _) = generic_503(&refused);
    assert_eq!(body["error"], "authentication_failed", "{body}");
    // Then 30 requests through "ok", 10 at a time: one token request.
    const AUTHORIZED: usize = 30;
    let mut replies = Vec::new();
    for wave in 0..3 {
        replies.extend(burst(envoy.listener("ok"), &format!("ok{wave}"), 10).await);
    }
    let token = token_of(&replies[0]);
    assert!(replies.iter().all(|r| token_of(r) == token));
    assert_eq!(
        emulator.token_requests(),
        2,
        "one refused, one that got the token"
    );
    assert_eq!(echo_requests(&emulator).len(), AUTHORIZED);
    let expires_on = emulator.issued(&token).unwrap().expires_on;

    let (stats, raw) = stats(&envoy).await;
    eprintln!("envoy /stats?filter=azmi after the run:\n{raw}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expected = [
        ("azmi.token_requests", 2),
        ("azmi.token_failures.authentication_failed", 1),
        ("azmi.token_failures.credential_unavailable", 0),
        ("azmi.requests_authorized", AUTHORIZED as u64),
        ("azmi.requests_rejected", 1),
    ];
    for (name, value) in expected {
        assert_eq!(stat(&stats, name), value, "{name}:\n{raw}");
    }
    let gauge = stat(&stats, VAULT_GAUGE);
    assert!(
        gauge > 0 && gauge <= expires_on - now + 1 && gauge + 5 >= expires_on - now,
        "{VAULT_GAUGE} = {gauge}, the token expires in {} s:\n{raw}",
        expires_on - now
    );
    let (prometheus, lines) = prometheus(&envoy).await;
    eprintln!("envoy /stats/prometheus, the azmi lines:\n{lines}");
    for (name, value) in expected {
        let name = name.replace('.', "_");
        assert_eq!(stat(&prometheus, &name), value, "{name}: {prometheus:?}");
    }
    assert_eq!(
        stat(&prometheus, &VAULT_GAUGE.replace('.', "_")),
        gauge,
        "{prometheus:?}"
    );

    // The diagnostics of "ok" (verbose), at Envoy's levels; "failing" has none.
    let sent = log_lines(&envoy, "azmi: IMDS: GET http://127.0.0.1:");
    assert_eq!(
        sent.len(),
        1,
        "one token request logged (by \"ok\" only): {sent:#?}"
    );
    assert!(sent[0].contains("[info]"), "{}", sent[0]);
    assert!(sent[0].contains("/metadata/identity/oauth2/token (x-ms-client-request-id "));
    assert!(
        !sent[0].contains('?') && !sent[0].contains("resource="),
        "{}",
        sent[0]
    );
    let answered = log_lines(&envoy, "azmi: IMDS: HTTP 200 in ");
    assert!(
        answered.len() == 1 && answered[0].contains("[info]"),
        "{answered:#?}"
    );
    let hits = log_lines(
        &envoy,
        "azmi: cache hit for https://vault.azure.net/.default (IMDS)",
    );
    assert!(
        !hits.is_empty() && hits.iter().all(|l| l.contains("[debug]")),
        "{hits:#?}"
    );
    assert!(
        log_lines(&envoy, "azmi: IMDS: HTTP 400").is_empty(),
        "\"failing\" is silent"
    );
    assert!(!envoy.log().contains(&token), "the token is never logged");
    eprintln!(
        "envoy log, \"log_level\": \"verbose\":\n{}\n{}\n{}",
        sent[0], answered[0], hits[0]
    );
}
