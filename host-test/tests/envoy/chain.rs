//! `"credential": "default"` in a real Envoy: a client secret in the VM environment makes the
//! filter post it to Entra (the emulator over TLS, behind an https cluster) and put that
//! token on every request; a wrong secret is a 503 whose details never show the secret.

use super::client::request;
use super::rig::{Envoy, config, filter_wasm, require_envoy, tls_cluster};
use super::{echoed_authorization, generic_503, logged, with_filter};
use azmi_host_test::emulator::{Config, Emulator, TestCertificate};

const DEFAULT: &str =
    r#"{"scope": "https://vault.azure.net/.default", "cluster": "entra", "credential": "default"}"#;
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// A client id the emulator knows.
const APP: &str = "22222222-2222-2222-2222-222222222222";
const WRONG: &str = "not-the-secret~0123456789";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Envoy and the built filter: run `just envoy`"]
async fn default_credential_posts_a_client_secret_to_entra_through_an_https_cluster() {
    require_envoy();
    let secret = Config::default().client_secret;
    let emulator = Emulator::new(Config::default());
    let (plain, _task) = emulator.serve(0).await.unwrap();
    let cert = TestCertificate::self_signed_ca(&["127.0.0.1", "localhost"]).unwrap();
    let (tls, _tls_task) = emulator
        .serve_tls(0, cert.server_config().unwrap())
        .await
        .unwrap();
    let ca = std::env::temp_dir().join(format!("azmi-envoy-entra-{}.pem", std::process::id()));
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    let authority = format!("https://127.0.0.1:{}", tls.port());
    let env = |secret: &str| {
        vec![
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("AZURE_CLIENT_ID", APP.to_string()),
            ("AZURE_CLIENT_SECRET", secret.to_string()),
            ("AZURE_AUTHORITY_HOST", authority.clone()),
        ]
    };
    let (good, wrong) = (env(&secret), env(WRONG));
    let mut yaml = config(
        &[
            with_filter("chain", DEFAULT, &pairs(&good)),
            with_filter("wrong", DEFAULT, &pairs(&wrong)),
        ],
        &[("upstream", plain.port())],
        &filter_wasm(),
    );
    yaml += &tls_cluster("entra", tls.port(), &ca);
    let envoy = Envoy::start(&yaml, 1).await;

    let addr = envoy.listener("chain");
    for i in 0..5 {
        let reply = request(addr, "GET", &format!("/echo/sp-{i}"), &[], "").await;
        let authorization = echoed_authorization(&reply).expect("a bearer token");
        assert!(authorization.starts_with("Bearer "), "{authorization}");
    }
    let entra: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .collect();
    assert_eq!(entra.len(), 1, "one Entra request for five client requests");
    assert_eq!(entra[0].method, "POST");
    assert_eq!(entra[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    let log = envoy.log();
    assert!(
        log.contains("credential EnvironmentCredential"),
        "the startup line names the link:\n{log}"
    );

    // A wrong secret: the generic 503; the log explains (AADSTS7000215) without the secret.
    let reply = request(envoy.listener("wrong"), "GET", "/echo/wrong", &[], "").await;
    let (body, id) = generic_503(&reply);
    assert_eq!(body["error"], "authentication_failed", "{body}");
    let line = logged(&envoy, &id);
    assert!(line.contains("7000215"), "{line}");
    let log = envoy.log();
    for hidden in [secret.as_str(), WRONG] {
        assert!(
            !log.contains(hidden),
            "a client secret in the Envoy log:\n{log}"
        );
        assert!(!reply.body.contains(hidden));
    }
    let _ = std::fs::remove_file(&ca);
}

/// `env` as [`with_filter`] takes it.
fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
