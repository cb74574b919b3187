//! The default chain ([`crate::proto::chain`]) and the environment credential
//! ([`crate::proto::environment`]) on the scripted world: order, continue vs stop, sticky
//! first success, `AZURE_TOKEN_CREDENTIALS`, the client-secret request, the aggregate error.

use super::harness::{
    ASSERTION, Run, Scenario, Scripted, T0, TENANT, TOKEN, TOKEN_FILE, WORKLOAD_CLIENT, form_pairs,
    json, respond, transport,
};
use crate::proto::{
    DefaultChain, ErrorClass, ErrorKind, Method, Scheme, Source, TransportErrorKind,
};
use serde_json::json as j;

const APP: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const CLIENT_SECRET: &str = "Xy7~client-secret.value_42";

fn entra(token: &str) -> Scripted {
    json(
        200,
        j!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}

/// A service principal with a client secret, on a machine with nothing else.
fn service_principal() -> Scenario {
    Scenario::new()
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
}

fn run(s: &mut Scenario, chain: &mut DefaultChain) -> Run {
    s.run_default(chain)
}

#[test]
fn a_service_principal_gets_its_token_with_the_exact_client_credentials_post() {
    let mut s = service_principal().reply(entra(TOKEN));
    let mut chain = DefaultChain::new();
    let first = run(&mut s, &mut chain);
    assert_eq!(first.token().source(), Source::ClientSecret);
    let request = first.request();
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.scheme, Scheme::Https);
    assert_eq!(request.authority, "login.microsoftonline.com");
    assert_eq!(
        request.path_and_query,
        format!("/{TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(
        request.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(request.body_sensitive);
    let form = form_pairs(&request.body);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("client_id", APP),
            ("client_secret", CLIENT_SECRET),
            ("scope", "https://management.azure.com/.default"),
            ("grant_type", "client_credentials"),
        ]
    );
    assert!(
        !format!("{request:?}").contains(CLIENT_SECRET),
        "Debug hides the body"
    );
    // Cached, and the chain stuck to the environment credential.
    s.run_default(&mut chain).assert_untouched();
}

#[test]
fn nothing_configured_walks_every_link_and_lists_each_reason() {
    // No environment credential, no workload identity, IMDS does not answer the probe.
    let mut s = Scenario::new().reply(transport(TransportErrorKind::ConnectionRefused, "refused"));
    let mut chain = DefaultChain::new();
    let run = run(&mut s, &mut chain);
    assert_eq!(run.requests.len(), 1, "only the IMDS probe is sent");
    assert_eq!(
        run.requests[0].path_and_query,
        "/metadata/identity/oauth2/token"
    );
    let e = run.error();
    assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
    let message = e.message();
    let environment = message
        .find("EnvironmentCredential: no service principal")
        .unwrap();
    let workload = message.find("WorkloadIdentityCredential: not configured (AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID, AZURE_CLIENT_ID not set").unwrap();
    let managed = message.find("ManagedIdentityCredential: IMDS").unwrap();
    let tools = message.find("AzureCliCredential, AzureDeveloperCliCredential, AzurePowerShellCredential, VisualStudioCodeCredential: not available in a WebAssembly component").unwrap();
    assert!(
        environment < workload && workload < managed && managed < tools,
        "{message}"
    );
    assert!(chain.sticky().is_none());
}

#[test]
fn an_unavailable_link_moves_on_and_the_answering_link_sticks() {
    // Workload identity is configured and answers; the environment credential is not.
    let mut s = Scenario::workload_identity().reply(entra("wi"));
    let mut chain = DefaultChain::new();
    let first = run(&mut s, &mut chain);
    assert_eq!(first.token().source(), Source::WorkloadIdentity);
    assert_eq!(
        chain.sticky().map(|(link, _)| link),
        Some(crate::proto::Link::WorkloadIdentity)
    );
    // A later failure of the sticky link is the caller's: no fallback to IMDS.
    s.set_scope("https://vault.azure.net/.default");
    s.push(json(400, j!({"error": "invalid_scope"})));
    let later = run(&mut s, &mut chain);
    assert_eq!(later.requests.len(), 1);
    assert_eq!(later.error().class(), ErrorClass::AuthenticationFailed);
}

#[test]
fn a_failure_that_is_not_unavailable_stops_the_chain() {
    // Entra refuses the secret: the chain does not go on to IMDS.
    let mut s = service_principal().reply(json(
        401,
        j!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "correlation_id": "c0ffee00-0000-4000-8000-000000000001"}),
    ));
    let mut chain = DefaultChain::new();
    let run = run(&mut s, &mut chain);
    assert_eq!(run.requests.len(), 1, "no IMDS request after Entra refused");
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert!(
        e.message()
            .contains("set AZURE_CLIENT_SECRET to the secret's value"),
        "{e}"
    );
    assert_eq!(
        e.correlation_id(),
        Some("c0ffee00-0000-4000-8000-000000000001")
    );
    assert!(!e.message().contains(CLIENT_SECRET));
}

#[test]
fn partial_configuration_is_unavailable_naming_the_missing_variable() {
    let mut s = Scenario::new()
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
        .env("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential");
    let mut chain = DefaultChain::new();
    let run = run(&mut s, &mut chain);
    run.assert_untouched();
    let e = run.error();
    assert_eq!(e.class(), ErrorClass::CredentialUnavailable);
    assert!(
        e.message()
            .contains("AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID and AZURE_CLIENT_ID are not"),
        "{e}"
    );
    assert!(!e.message().contains(CLIENT_SECRET));
}

#[test]
fn a_tenant_with_bad_characters_is_refused_before_any_request() {
    let mut s = service_principal().env("AZURE_TENANT_ID", "../evil");
    let mut chain = DefaultChain::new();
    let run = run(&mut s, &mut chain);
    run.assert_untouched();
    assert_eq!(run.error().kind(), ErrorKind::Configuration);
}

#[test]
fn a_non_https_authority_is_refused() {
    let mut s = service_principal().env("AZURE_AUTHORITY_HOST", "http://127.0.0.1:8443");
    let mut chain = DefaultChain::new();
    let run = run(&mut s, &mut chain);
    run.assert_untouched();
    assert_eq!(run.error().kind(), ErrorKind::Configuration);
    assert!(run.error().message().contains("must be an https:// URL"));
}

#[test]
fn azure_token_credentials_selects_links_as_the_sdks_match_it() {
    // A named single credential: managed identity without the probe.
    let mut s = Scenario::new()
        .env("AZURE_TOKEN_CREDENTIALS", "  ManagedIdentityCredential ")
        .reply(entra("mi"));
    let mut chain = DefaultChain::new();
    let run1 = run(&mut s, &mut chain);
    assert_eq!(
        run1.request().path_and_query.split('?').next(),
        Some("/metadata/identity/oauth2/token")
    );
    assert!(
        run1.request().path_and_query.contains("resource="),
        "the token request, no probe"
    );
    assert_eq!(run1.token().source(), Source::Imds);

    // prod is the whole chain; empty is unset.
    for value in ["prod", "PROD", ""] {
        let mut s = service_principal()
            .env("AZURE_TOKEN_CREDENTIALS", value)
            .reply(entra("sp"));
        assert_eq!(
            run(&mut s, &mut DefaultChain::new()).token().source(),
            Source::ClientSecret
        );
    }
    // A named credential that is not configured is unavailable; the others are not tried.
    let mut s = Scenario::imds().env("AZURE_TOKEN_CREDENTIALS", "workloadidentitycredential");
    let r = run(&mut s, &mut DefaultChain::new());
    r.assert_untouched();
    assert!(
        r.error()
            .message()
            .contains("WorkloadIdentityCredential: not configured")
    );

    // dev and developer tools: a configuration error saying why; anything else invalid.
    for (value, kind) in [
        ("dev", ErrorKind::Configuration),
        ("AzureCliCredential", ErrorKind::Configuration),
        ("visualstudiocodecredential", ErrorKind::Configuration),
        ("chained", ErrorKind::InvalidArgument),
        (
            "EnvironmentCredential,ManagedIdentityCredential",
            ErrorKind::InvalidArgument,
        ),
    ] {
        let mut s = service_principal().env("AZURE_TOKEN_CREDENTIALS", value);
        let r = run(&mut s, &mut DefaultChain::new());
        r.assert_untouched();
        assert_eq!(r.error().kind(), kind, "{value}");
        let message = r.error().message();
        if kind == ErrorKind::InvalidArgument {
            assert!(message.contains("valid values are prod, dev, EnvironmentCredential, WorkloadIdentityCredential and ManagedIdentityCredential"), "{message}");
        } else {
            assert!(
                message.contains("cannot run in a WebAssembly component"),
                "{message}"
            );
        }
    }
}

#[test]
fn managed_identity_in_the_chain_probes_and_takes_azure_client_id() {
    // AZURE_CLIENT_ID without a secret: the environment credential is incomplete (unavailable),
    // managed identity asks for that client id, after the probe.
    let mut s = Scenario::new()
        .env("AZURE_CLIENT_ID", APP)
        .reply(respond(400, r#"{"error":"invalid_request"}"#))
        .reply(entra("ua"));
    let mut chain = DefaultChain::new();
    let r = run(&mut s, &mut chain);
    assert_eq!(r.requests.len(), 2, "probe, then the token request");
    assert!(
        !r.requests[0].path_and_query.contains('?'),
        "the probe has no query"
    );
    assert!(
        r.requests[1]
            .path_and_query
            .contains(&format!("client_id={APP}"))
    );
    assert_eq!(r.token().secret(), "ua");
    // The cached path of the sticky link: nothing read, nothing sent.
    s.run_default(&mut chain).assert_untouched();
}

#[test]
fn username_and_password_are_refused_and_the_chain_moves_on() {
    let mut s = Scenario::new()
        .env("AZURE_USERNAME", "user@contoso.com")
        .env("AZURE_PASSWORD", "hunter2-password")
        .reply(transport(TransportErrorKind::ConnectionRefused, "refused"));
    let r = run(&mut s, &mut DefaultChain::new());
    let message = r.error().message();
    assert!(
        message.contains("AZURE_USERNAME and AZURE_PASSWORD (a user's password) are not supported"),
        "{message}"
    );
    assert!(!message.contains("hunter2-password"));
}

#[test]
fn a_client_secret_echoed_by_entra_never_reaches_the_error() {
    let escaped: String = CLIENT_SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let mut s = service_principal().reply(respond(
        400,
        format!(r#"{{"error":"invalid_request","error_description":"{}{escaped}","correlation_id":"{escaped}"}}"#, "x".repeat(285)),
    ));
    let r = run(&mut s, &mut DefaultChain::new());
    let e = r.error();
    for output in [
        e.message().to_string(),
        format!("{e:?}"),
        e.correlation_id().unwrap_or_default().to_string(),
    ] {
        assert!(!output.contains(&CLIENT_SECRET[..12]), "{output}");
    }
}

#[test]
fn workload_identity_link_reads_the_token_file_and_keeps_the_assertion_secret() {
    let mut s = Scenario::workload_identity()
        .env("AZURE_TOKEN_CREDENTIALS", "WorkloadIdentityCredential")
        .reply(entra("wi"));
    let r = run(&mut s, &mut DefaultChain::new());
    assert_eq!(r.file_reads[0].path, TOKEN_FILE);
    let form = form_pairs(&r.request().body);
    assert!(form.contains(&("client_assertion".to_string(), ASSERTION.to_string())));
    assert!(form.contains(&("client_id".to_string(), WORKLOAD_CLIENT.to_string())));
    assert_eq!(r.finished_at, T0);
}

/// The environment credential's certificate: the file is read through the host, the assertion
/// signed for the exact token URL, a fresh one per attempt, and never shown.
#[cfg(feature = "client-certificate")]
#[test]
fn a_certificate_in_the_environment_signs_a_fresh_assertion_per_request() {
    const PATH: &str = "/etc/azmi/client.pem";
    const PEM: &[u8] = include_bytes!("fixtures/pkcs1.pem");
    let mut s = Scenario::new()
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", PATH)
        .file(PATH, PEM)
        .seed(7)
        .reply(json(503, j!({"error": "busy"})))
        .reply(entra(TOKEN));
    let r = run(&mut s, &mut DefaultChain::new());
    assert_eq!(r.token().source(), Source::ClientCertificate);
    assert_eq!(
        r.steps(),
        ["read", "send", "read", "send"],
        "read and signed per attempt"
    );
    let assertions: Vec<String> = r
        .requests
        .iter()
        .map(|request| {
            assert_eq!(
                request.path_and_query,
                format!("/{TENANT}/oauth2/v2.0/token")
            );
            assert!(request.body_sensitive);
            let form = form_pairs(&request.body);
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(get("client_id").as_deref(), Some(APP));
            assert_eq!(
                get("client_assertion_type").as_deref(),
                Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            );
            get("client_assertion").expect("an assertion")
        })
        .collect();
    assert_ne!(assertions[0], assertions[1], "a new assertion per request");
    // The claims name the exact token URL and the application.
    use base64ct::{Base64UrlUnpadded, Encoding};
    let claims = assertions[0].split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).unwrap()).unwrap();
    assert_eq!(
        claims["aud"],
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(claims["iss"], APP);
    assert_eq!(claims["sub"], APP);
    for request in &r.requests {
        assert!(!format!("{request:?}").contains(&assertions[0]));
    }
}

#[cfg(feature = "client-certificate")]
#[test]
fn an_unusable_certificate_file_stops_the_chain_naming_the_variable() {
    const PATH: &str = "/etc/azmi/client.pem";
    let mut s = Scenario::new()
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", PATH)
        .file(PATH, "not a certificate");
    let r = run(&mut s, &mut DefaultChain::new());
    r.assert_nothing_sent();
    assert_eq!(r.error().kind(), ErrorKind::Configuration);
    assert!(
        r.error()
            .message()
            .contains("AZURE_CLIENT_CERTIFICATE_PATH"),
        "{}",
        r.error()
    );
}

#[cfg(not(feature = "client-certificate"))]
#[test]
fn without_the_certificate_build_a_certificate_is_a_configuration_error_saying_so() {
    let mut s = Scenario::new()
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/azmi/client.pem");
    let r = run(&mut s, &mut DefaultChain::new());
    r.assert_untouched();
    assert_eq!(r.error().kind(), ErrorKind::Configuration);
    assert!(
        r.error().message().contains("client-certificate"),
        "{}",
        r.error()
    );
}
