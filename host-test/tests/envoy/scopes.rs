//! Issue 13, a scope per upstream in a real Envoy: one filter in front of two upstream
//! clusters ("vault" and "storage", both the emulator), each request routed by its Host, each
//! upstream getting a token for its own scope; an unmapped upstream refused or passed.

use super::client::request;
use super::operators::{
    STORAGE, STORAGE_GAUGE, VAULT, VAULT_GAUGE, log_lines, stat, stats, token_of,
};
use super::rig::{Envoy, config, filter_wasm, require_envoy};
use super::{echo_requests, echoed_authorization, emulator, generic_503, with_filter};
use std::collections::BTreeMap;

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
