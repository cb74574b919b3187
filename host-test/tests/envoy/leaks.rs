//! Issue 11, defect 4 (the Envoy side): whatever the scenario, no secret it used reaches an
//! Envoy client (local reply body and headers) or the Envoy log — with the filter's
//! diagnostics at `verbose` (issue 13: every request, answer, retry wait and cache hit is
//! logged, at Envoy's debug level for the cache lines, which the rig shows).

use super::client::request;
use super::rig::{Envoy, config, filter_wasm, require_envoy};
use super::{emulator, generic_503, with_filter};
use azmi_host_test::emulator::{Config, Fault};

/// Every place a secret must not be: the reply's headers and body (`reply`), and the log.
fn scan(what: &str, places: &[(&str, &str)], secrets: &[&str]) {
    for (place, text) in places {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what}: the {place} shows the secret {secret:?}:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Envoy and the built filter: run `just envoy`"]
async fn no_secret_reaches_an_envoy_client_or_the_envoy_log() {
    require_envoy();
    let (emulator, port, url) = emulator().await;
    let identity_header = Config::default().identity_header;
    let endpoint = format!("{url}/msi/token");
    let vault = r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "timeout_ms": 3000, "log_level": "verbose"}"#;
    let app_service = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", identity_header.as_str()),
    ];
    let yaml = config(
        &[
            with_filter("ok", vault, &app_service),
            with_filter("echoed", vault, &app_service),
            with_filter("unusable", vault, &app_service),
        ],
        &[("upstream", port), ("imds", port)],
        &filter_wasm(),
    );
    let envoy = Envoy::start(&yaml, 1).await;

    // Success: the upstream gets the token (and `/echo` shows it to the client, by design of
    // the test upstream); the log never shows it, nor the identity header.
    let ok = request(envoy.listener("ok"), "GET", "/echo/ok", &[], "").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token = ok.json()["authorization"]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("a token upstream")
        .to_string();
    assert!(emulator.issued(&token).is_some());
    scan(
        "success",
        &[("reply headers", &ok.headers), ("reply body", &ok.body)],
        &[&identity_header],
    );

    // The service echoes the identity header back, raw, JSON-escaped and as correlation id.
    let escaped: String = identity_header
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    emulator.push_fault(Fault::Status {
        status: 400,
        times: 1,
        retry_after: None,
        body: Some(format!(
            r#"{{"error":"{identity_header}","error_description":"bad header {identity_header} / {escaped}","correlation_id":"{identity_header}"}}"#
        )),
    });
    let echoed = request(envoy.listener("echoed"), "GET", "/echo/echoed", &[], "").await;
    let (_, id) = generic_503(&echoed);

    // A 2xx with a token that cannot be a header value, and the identity header as its type.
    let unusable_token = "unusable-token-4f9c\r\nx-injected: 1";
    emulator.push_fault(Fault::Status {
        status: 200,
        times: 1,
        retry_after: None,
        body: Some(
            serde_json::json!({
                "access_token": unusable_token, "expires_in": "3600",
                "expires_on": "4102444800", "resource": "https://vault.azure.net",
                "token_type": identity_header,
            })
            .to_string(),
        ),
    });
    let unusable = request(envoy.listener("unusable"), "GET", "/echo/unusable", &[], "").await;
    generic_503(&unusable);

    // A cached call, so that the cache-hit line is in the log too.
    let cached = request(envoy.listener("ok"), "GET", "/echo/cached", &[], "").await;
    assert_eq!(cached.status, 200, "{}", cached.body);

    let log = envoy.log();
    assert!(
        log.contains(&id),
        "the failure is logged under its id:\n{log}"
    );
    // The diagnostics this scan covers are really there (a scan of nothing proves nothing).
    for line in [
        "azmi: App Service: GET http://127.0.0.1:",
        "azmi: App Service: HTTP 400 in ",
        "azmi: App Service: HTTP 200 in ",
        "azmi: cache miss for https://vault.azure.net/.default",
        "azmi: cache hit for https://vault.azure.net/.default (App Service)",
    ] {
        assert!(log.contains(line), "{line:?} is logged:\n{log}");
    }
    let secrets = [
        token.as_str(),
        identity_header.as_str(),
        escaped.as_str(),
        "unusable-token-4f9c",
    ];
    for (what, reply) in [("service echo", &echoed), ("unusable token", &unusable)] {
        scan(
            what,
            &[
                ("reply headers", &reply.headers),
                ("reply body", &reply.body),
            ],
            &secrets,
        );
    }
    scan("every scenario", &[("Envoy log", &log)], &secrets);
}
