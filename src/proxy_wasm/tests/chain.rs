//! `"credential": "default"` ([`crate::proxy_wasm::link`]): the link chosen at start, the
//! request it sends, and what the filter says when no link can serve.

use super::{Calls, T0, bearer, own_store, reply, root};
use crate::proto::{HttpResponse, Link, Method};
use crate::proxy_wasm::token_root::{Level, TokenRoot, Verdict};
use serde_json::json;

const DEFAULT: &str =
    r#"{"scope": "https://vault.azure.net/.default", "cluster": "entra", "credential": "default"}"#;
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const SECRET: &str = "Xy7~envoy-client-secret_42";

fn entra_token(token: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                     "access_token": token})
        .to_string()
        .into_bytes(),
    }
}

/// Everything the filter could show anyone: its startup line, its state's `Debug`.
fn shown(root: &TokenRoot) -> String {
    format!("{:?} {root:?}", root.startup_log())
}

#[test]
fn default_with_a_client_secret_posts_to_entra_with_the_secret_in_a_sensitive_body_only() {
    let mut mem = own_store();
    let mut calls = Calls::default();
    let mut root = root(
        DEFAULT,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", SECRET),
            ("AZURE_AUTHORITY_HOST", "https://127.0.0.1:8443"),
        ],
    );
    assert_eq!(root.choice().link, Link::Environment);
    let (level, line) = root.startup_log();
    assert_eq!(level, Level::Info);
    assert!(line.contains("credential EnvironmentCredential"), "{line}");

    assert_eq!(root.on_request(T0, 1, &mut mem).verdict, Verdict::Pause);
    let mut log = root.on_tick(T0, &mut calls, &mut mem).log;
    assert_eq!(calls.sent.len(), 1);
    let sent = &calls.sent[0];
    assert_eq!(sent.method, Method::Post);
    assert_eq!(sent.authority, "127.0.0.1:8443");
    assert_eq!(sent.path_and_query, format!("/{TENANT}/oauth2/v2.0/token"));
    assert!(sent.body_sensitive, "the body carries the secret");
    let body = String::from_utf8(sent.body.clone()).unwrap();
    assert!(
        body.contains("client_secret=Xy7~envoy-client-secret_42"),
        "{body}"
    );
    assert!(body.contains("grant_type=client_credentials"), "{body}");
    assert!(
        !format!("{sent:?}").contains(SECRET),
        "Debug redacts the body"
    );

    let effects = root.on_response(T0, 1, Ok(entra_token("tok-sp")), &mut calls, &mut mem);
    assert_eq!(bearer(&effects.resume[0].1), "Bearer tok-sp");
    log.extend(effects.log);
    // A cached request: the link's token, from the cache.
    let cached = root.on_request(T0.plus_millis(1), 2, &mut mem);
    assert_eq!(bearer(&cached.verdict), "Bearer tok-sp");
    assert_eq!(calls.sent.len(), 1);

    // Entra refuses a later fetch, echoing the secret: the client and the log never see it.
    let later = T0.plus_millis(3_600_000);
    root.on_request(later, 3, &mut mem);
    log.extend(root.on_tick(later, &mut calls, &mut mem).log);
    let refusal = HttpResponse {
        status: 401,
        headers: vec![],
        body: json!({"error": "invalid_client",
                     "error_description": format!("AADSTS7000215: Invalid client secret provided: {SECRET}")})
        .to_string()
        .into_bytes(),
    };
    let effects = root.on_response(later, 2, Ok(refusal), &mut calls, &mut mem);
    let client = format!("{:?}", effects.resume);
    log.extend(effects.log);
    assert!(client.contains("authentication_failed"), "{client}");
    let everything = format!("{log:?} {client} {}", shown(&root));
    assert!(!everything.contains(SECRET), "{everything}");
}

#[test]
fn default_with_nothing_configured_uses_managed_identity_after_the_probe() {
    let mut mem = own_store();
    let mut calls = Calls::default();
    let mut root = root(DEFAULT, &[]);
    let choice = root.choice();
    assert_eq!((choice.link, choice.probe), (Link::ManagedIdentity, true));
    let (_, line) = root.startup_log();
    assert!(
        line.contains("credential ManagedIdentityCredential (skipped: EnvironmentCredential:"),
        "{line}"
    );
    assert!(
        line.contains("WorkloadIdentityCredential: not configured"),
        "{line}"
    );

    root.on_request(T0, 1, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    let probe = &calls.sent[0];
    assert_eq!(probe.authority, "169.254.169.254");
    assert_eq!(probe.path_and_query, "/metadata/identity/oauth2/token");
    assert_eq!(
        probe.header("Metadata"),
        None,
        "the probe, not a token request"
    );
}

#[test]
fn managed_identity_in_the_chain_takes_azure_client_id() {
    let mut mem = own_store();
    let mut calls = Calls::default();
    let env = [
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9"),
    ];
    let mut root = root(DEFAULT, &env);
    assert_eq!(root.choice().link, Link::ManagedIdentity);
    root.on_request(T0, 1, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    let sent = &calls.sent[0];
    assert_eq!(
        sent.header("Metadata"),
        Some("true"),
        "no probe for pod identity"
    );
    assert!(
        sent.path_and_query.contains(&format!("client_id={APP}")),
        "{}",
        sent.path_and_query
    );

    // Without "credential": "default", AZURE_CLIENT_ID is not an identity choice.
    let plain = r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#;
    let mut root = super::root(plain, &env);
    root.on_request(T0, 1, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    assert!(!calls.sent[1].path_and_query.contains("client_id"));
}

#[test]
fn managed_identity_stays_the_default_credential() {
    let mut mem = own_store();
    let mut calls = Calls::default();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    );
    assert_eq!(root.choice().link, Link::ManagedIdentity);
    root.on_request(T0, 1, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    assert_eq!(calls.sent[0].method, Method::Get);
    assert_eq!(calls.sent[0].authority, "169.254.169.254");
    assert_eq!(
        calls.sent[0].header("Metadata"),
        Some("true"),
        "no probe either"
    );
}

#[test]
fn azure_token_credentials_dev_refuses_the_filter_with_a_clear_log_line() {
    let mut mem = own_store();
    let mut calls = Calls::default();
    let mut root = root(DEFAULT, &[("AZURE_TOKEN_CREDENTIALS", "dev")]);
    let (level, line) = root.startup_log();
    assert_eq!(level, Level::Error);
    assert!(
        line.contains("AZURE_TOKEN_CREDENTIALS=dev selects developer tools"),
        "{line}"
    );
    let step = root.on_request(T0, 1, &mut mem);
    assert!(!step.wake);
    let body = reply(&step.verdict);
    assert!(
        body["request_id"].is_string(),
        "a 503 with the id of the logged line: {body}"
    );
    root.on_tick(T0, &mut calls, &mut mem);
    assert!(calls.sent.is_empty(), "nothing is ever sent");
}

#[test]
fn links_that_need_files_are_skipped_saying_envoy_has_none() {
    let workload = [
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token"),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", APP),
    ];
    let root = root(DEFAULT, &workload);
    assert_eq!(root.choice().link, Link::ManagedIdentity);
    let (_, line) = root.startup_log();
    assert!(line.contains("no files in Envoy"), "{line}");
    assert!(line.contains("AZURE_FEDERATED_TOKEN_FILE"), "{line}");

    let certificate = [
        ("AZURE_CLIENT_CERTIFICATE_PATH", "/certs/sp.pem"),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential"),
    ];
    let root = super::root(DEFAULT, &certificate);
    let refused = root.refused().expect("a certificate alone cannot serve");
    assert!(
        refused.message().contains("AZURE_CLIENT_CERTIFICATE_PATH"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("no files in Envoy"),
        "{}",
        refused.message()
    );
    assert_eq!(root.startup_log().0, Level::Error);
}

#[test]
fn a_misconfigured_client_secret_stops_the_choice_instead_of_falling_back() {
    let root = root(
        DEFAULT,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", SECRET),
            ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:8080"),
        ],
    );
    let refused = root.refused().expect("an http:// authority is refused");
    assert!(
        refused.message().contains("https://"),
        "{}",
        refused.message()
    );
    assert!(!shown(&root).contains(SECRET));
}
