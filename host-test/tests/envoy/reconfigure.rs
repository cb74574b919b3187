//! Issue 13: a bad filter configuration pushed to a running Envoy (by LDS from a watched
//! file, as an xDS update would be) is refused with one clear line, and Envoy keeps serving
//! with the configuration it had.

use super::client::request;
use super::operators::{VAULT, log_lines, token_of};
use super::rig::{Envoy, config, filter_wasm, require_envoy, scratch_dir};
use super::{emulator, with_filter};
use azmi_host_test::emulator::Emulator;
use std::time::{Duration, Instant};

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
