//! Issue 13 in a real Envoy: the filter's diagnostics in the Envoy log at the configured
//! level, its stats on the admin `/stats` and `/stats/prometheus` against what the emulator
//! saw, a scope per upstream (two clusters, one token each), and a bad configuration pushed
//! to a running Envoy (refused with one line; Envoy keeps serving).

use super::client::{Reply, request};
use super::rig::{Envoy, config, filter_wasm, require_envoy, scratch_dir};
use super::{burst, echo_requests, echoed_authorization, emulator, generic_503, with_filter};
use azmi_host_test::emulator::{Emulator, Fault};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const VAULT: &str = "https://vault.azure.net/.default";
const STORAGE: &str = "https://storage.azure.com/.default";
const VAULT_GAUGE: &str = "azmi.scope.vault_azure_net.token_expires_in_seconds";
const STORAGE_GAUGE: &str = "azmi.scope.storage_azure_com.token_expires_in_seconds";

/// The `azmi.` stats of `/stats` (Envoy may put them under its `wasmcustom.` namespace), and
/// the raw lines.
async fn stats(envoy: &Envoy) -> (BTreeMap<String, u64>, String) {
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
fn stat(map: &BTreeMap<String, u64>, name: &str) -> u64 {
    map.get(name).copied().unwrap_or(0)
}

/// The Envoy log lines that carry `text`.
fn log_lines(envoy: &Envoy, text: &str) -> Vec<String> {
    envoy
        .log()
        .lines()
        .filter(|line| line.contains(text))
        .map(str::to_string)
        .collect()
}

fn token_of(reply: &Reply) -> String {
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

/// `config`'s YAML with the catch-all route of every listener replaced by one virtual host per
/// (domain, cluster), and a catch-all to `upstream`.
fn with_hosts(yaml: &str, hosts: &[(&str, &str)]) -> String {
    let catch_all = r#"            - name: upstream
              domains: ["*"]
"#;
    let mut vhosts = String::new();
    for (domain, cluster) in hosts {
        vhosts += &format!(
            "            - name: {cluster}\n              domains: [\"{domain}\", \"{domain}:*\"]\n              routes:\n              - match: {{prefix: \"/\"}}\n                route: {{cluster: {cluster}}}\n"
        );
    }
    assert!(yaml.contains(catch_all));
    yaml.replace(catch_all, &(vhosts + catch_all))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Envoy and the built filter: run `just envoy`"]
async fn each_upstream_gets_a_token_for_its_own_scope() {
    require_envoy();
    let (emulator, port, url) = emulator().await;
    let env = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", url.as_str())];
    let upstreams =
        format!(r#""upstreams": {{"vault.test": "{VAULT}", "storage.test": "{STORAGE}"}}"#);
    let yaml = with_hosts(
        &config(
            &[
                with_filter(
                    "multi",
                    &format!(r#"{{"cluster": "imds", {upstreams}}}"#),
                    &env,
                ),
                with_filter(
                    "pass",
                    &format!(r#"{{"cluster": "imds", {upstreams}, "unmapped": "pass"}}"#),
                    &env,
                ),
            ],
            &[
                ("upstream", port),
                ("imds", port),
                ("vault", port),
                ("storage", port),
            ],
            &filter_wasm(),
        ),
        &[("vault.test", "vault"), ("storage.test", "storage")],
    );
    let envoy = Envoy::start(&yaml, 1).await;
    let addr = envoy.listener("multi");

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let host = if i % 2 == 0 {
            "vault.test"
        } else {
            "storage.test:8080"
        };
        tasks.spawn(async move {
            let path = format!("/echo/{i}");
            (
                host,
                request(addr, "GET", &path, &[("host", host)], "").await,
            )
        });
    }
    let mut tokens: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (host, reply) in tasks.join_all().await {
        tokens.entry(host).or_default().push(token_of(&reply));
    }
    let vault = &tokens["vault.test"];
    let storage = &tokens["storage.test:8080"];
    assert!(vault.iter().all(|t| *t == vault[0]) && storage.iter().all(|t| *t == storage[0]));
    assert_ne!(vault[0], storage[0], "one token per scope");
    assert_eq!(
        emulator.issued(&vault[0]).unwrap().resource,
        "https://vault.azure.net"
    );
    assert_eq!(
        emulator.issued(&storage[0]).unwrap().resource,
        "https://storage.azure.com"
    );
    assert_eq!(emulator.token_requests(), 2, "one token request per scope");
    let upstream = echo_requests(&emulator);
    assert_eq!(upstream.len(), 10);

    // An upstream with no scope: the generic 503, the details in the log under its id.
    let other = request(addr, "GET", "/echo/other", &[("host", "other.test")], "").await;
    let (body, id) = generic_503(&other);
    assert_eq!(body["error"], "invalid_argument", "{body}");
    let warned: Vec<String> = log_lines(&envoy, &id)
        .into_iter()
        .filter(|l| l.contains("[warning]"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains(r#"\"other.test\""#), "{}", warned[0]);
    assert_eq!(
        echo_requests(&emulator).len(),
        10,
        "the upstream saw nothing"
    );
    // "unmapped": "pass": forwarded untouched, the client's own header kept.
    let passed = request(
        envoy.listener("pass"),
        "GET",
        "/echo/passed",
        &[
            ("host", "other.test"),
            ("authorization", "Bearer client-own"),
        ],
        "",
    )
    .await;
    assert_eq!(
        echoed_authorization(&passed).as_deref(),
        Some("Bearer client-own")
    );

    let (stats, raw) = stats(&envoy).await;
    assert_eq!(stat(&stats, "azmi.requests_authorized"), 10, "{raw}");
    assert_eq!(stat(&stats, "azmi.requests_rejected"), 1, "{raw}");
    assert_eq!(stat(&stats, "azmi.requests_passed_through"), 1, "{raw}");
    assert_eq!(stat(&stats, "azmi.token_requests"), 2, "{raw}");
    assert!(
        stat(&stats, VAULT_GAUGE) > 0 && stat(&stats, STORAGE_GAUGE) > 0,
        "{raw}"
    );
    eprintln!(
        "envoy: one filter, two upstreams -> 2 token requests, vault token for vault.test, storage token for storage.test; other.test -> {body}"
    );
}

/// The listeners of `config`'s YAML as an LDS resource file.
fn lds(yaml: &str) -> String {
    let start = yaml.find("  listeners:\n").unwrap() + "  listeners:\n".len();
    let end = yaml.find("  clusters:\n").unwrap();
    let listeners: String = yaml[start..end]
        .lines()
        .map(|line| match line.strip_prefix("  - name: ") {
            Some(name) => format!(
                "  - \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n    name: {name}\n"
            ),
            None => format!("{line}\n"),
        })
        .collect();
    format!("resources:\n{listeners}")
}

/// `config`'s YAML with its listeners read from `lds_path` (watched in its directory).
fn dynamic(yaml: &str, lds_path: &std::path::Path) -> String {
    let start = yaml.find("  listeners:\n").unwrap();
    let end = yaml.find("  clusters:\n").unwrap();
    let dir = lds_path.parent().unwrap().display().to_string();
    format!(
        "node: {{id: azmi-test, cluster: azmi-test}}\ndynamic_resources:\n  lds_config:\n    resource_api_version: V3\n    path_config_source: {{path: {}, watched_directory: {{path: {}}}}}\n{}{}",
        serde_json::Value::from(lds_path.display().to_string()),
        serde_json::Value::from(dir),
        &yaml[..start],
        &yaml[end..]
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Envoy and the built filter: run `just envoy`"]
async fn a_bad_configuration_is_refused_with_one_line_and_envoy_keeps_serving() {
    require_envoy();
    let (_emulator, port, url): (Emulator, u16, String) = emulator().await;
    let env = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", url.as_str())];
    let listeners = |configuration: &str| {
        config(
            &[with_filter("guarded", configuration, &env)],
            &[("upstream", port), ("imds", port)],
            &filter_wasm(),
        )
    };
    let good = listeners(&format!(r#"{{"scope": "{VAULT}", "cluster": "imds"}}"#));
    let dir = scratch_dir();
    let lds_path = dir.join("lds.yaml");
    std::fs::write(&lds_path, lds(&good)).unwrap();
    let mut envoy = Envoy::start_in(dir.clone(), &dynamic(&good, &lds_path), 1).await;
    let addr = envoy.listener("guarded");
    let before = request(addr, "GET", "/echo/before", &[], "").await;
    let token = token_of(&before);

    // Pushed while Envoy runs (as an xDS update would be): each bad configuration is refused.
    let bad = [
        (
            r#"{"cluster": "imds", "upstreams": {}}"#,
            "\"upstreams\" is empty",
        ),
        (
            r#"{"cluster": "imds", "upstreams": {"vault.test": "https://vault.azure.net/.default .x"}}"#,
            "maps \"vault.test\" to a bad scope",
        ),
        (
            r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "scopes": {}}"#,
            "unknown field `scopes`",
        ),
    ];
    for (round, (configuration, reason)) in bad.iter().enumerate() {
        let next = dir.join("lds.yaml.next");
        std::fs::write(&next, lds(&listeners(configuration))).unwrap();
        std::fs::rename(&next, &lds_path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) =
                super::client::get_once(envoy.admin, "/stats?filter=lds.update_rejected")
                    .await
                    .unwrap();
            assert_eq!(status, 200);
            let rejected: u64 = body
                .lines()
                .find_map(|l| l.strip_prefix("listener_manager.lds.update_rejected: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if rejected > round as u64 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the update was not refused:\n{}",
                envoy.log()
            );
            // Polling for Envoy to read the file (not a retry test).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let lines = log_lines(&envoy, reason);
        let ours: Vec<&String> = lines.iter().filter(|l| l.contains("[error]")).collect();
        assert_eq!(
            ours.len(),
            1,
            "one clear line for {reason}:\n{}",
            envoy.log()
        );
        assert!(envoy.running(), "Envoy keeps running");
        let after = request(addr, "GET", &format!("/echo/after{round}"), &[], "").await;
        assert_eq!(token_of(&after), token, "the running filter keeps serving");
    }
    eprintln!(
        "envoy: {} bad configurations pushed by LDS -> each refused with one line, e.g. {}",
        bad.len(),
        log_lines(&envoy, bad[0].1)[0]
    );
}
