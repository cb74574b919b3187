//! The environment credential's certificate end to end: `azmi token --credential environment`
//! (the certificate build) against the emulator's Entra endpoint over TLS, which verifies the
//! assertion's PS256 signature against the registered certificate; a certificate Entra does not
//! know, and a tampered signature, are refused.

use crate::cli::{SCOPE, azmi, lines};
use crate::util::Scratch;
use azmi_host_test::emulator::{
    CLIENT_CERTIFICATE_PEM, Config, Emulator, TestCertificate, assertion,
};
use std::time::{SystemTime, UNIX_EPOCH};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_PEM: &[u8] = include_bytes!("../../../src/proto/tests/fixtures/other_client.pem");

/// An emulator serving Entra over TLS, the variables pointing a service principal with the
/// certificate file `pem` at it, and the scratch directory holding both files.
async fn entra_with_certificate(
    pem: &[u8],
) -> (
    Emulator,
    Vec<(&'static str, String)>,
    Scratch,
    tokio::task::JoinHandle<()>,
) {
    let tls = TestCertificate::generate().unwrap();
    let emulator = Emulator::new(Config::default());
    let (address, server) = emulator
        .serve_tls(0, tls.server_config().unwrap())
        .await
        .unwrap();
    let scratch = Scratch::new("certificate");
    let (client_pem, trust) = (scratch.0.join("client.pem"), scratch.0.join("trust.pem"));
    std::fs::write(&client_pem, pem).unwrap();
    std::fs::write(&trust, &tls.cert_pem).unwrap();
    let app = emulator.config().system.clone().unwrap().client_id;
    let env = vec![
        ("AZURE_AUTHORITY_HOST", format!("https://{address}")),
        ("AZURE_TENANT_ID", TENANT.to_string()),
        ("AZURE_CLIENT_ID", app),
        (
            "AZURE_CLIENT_CERTIFICATE_PATH",
            client_pem.display().to_string(),
        ),
        ("SSL_CERT_FILE", trust.display().to_string()),
    ];
    (emulator, env, scratch, server)
}

fn client_assertion(body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    let value = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("client_assertion="))
        .expect("a client_assertion field");
    value.to_string() // base64url and dots: nothing to percent-decode
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_certificate_credential_gets_a_token_the_emulator_verified() {
    let (emulator, env, _scratch, _server) = entra_with_certificate(CLIENT_CERTIFICATE_PEM).await;
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--credential", "environment"],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let line = &lines(&output)[0];
    assert_eq!(line["source"], "client_certificate");
    let requests = emulator.requests();
    assert_eq!(requests.len(), 1);
    let sent = client_assertion(&requests[0].body);
    // The assertion never reaches the CLI's output.
    let printed = format!("{output:?}");
    assert!(!printed.contains(&sent[..40]), "{printed}");

    // The emulator's check is real: the same assertion with one signature byte changed, or
    // checked against another path or client, is refused.
    let registered = emulator.config().client_certificate.clone().unwrap();
    let app = emulator.config().system.clone().unwrap().client_id;
    let path = format!("/{TENANT}/oauth2/v2.0/token");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        assertion::check(&sent, &registered, &app, &path, now),
        Ok(())
    );
    let mut tampered = sent.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        assertion::check(&tampered, &registered, &app, &path, now),
        Err("the assertion's signature is invalid".to_string())
    );
    assert!(assertion::check(&sent, &registered, "someone-else", &path, now).is_err());
    assert!(assertion::check(&sent, &registered, &app, "/other/oauth2/v2.0/token", now).is_err());
    assert!(
        assertion::check(&sent, &registered, &app, &path, now + 3_600).is_err(),
        "expired"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_certificate_not_registered_is_refused_with_aadsts700027() {
    let (emulator, env, _scratch, _server) = entra_with_certificate(OTHER_PEM).await;
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--credential", "environment"],
        &env,
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let line = &lines(&output)[0];
    assert_eq!(line["error"], "authentication_failed");
    assert_eq!(line["status"], 401);
    let message = line["message"].as_str().unwrap();
    assert!(message.contains("AADSTS700027"), "{message}");
    assert!(
        message.contains("upload the certificate to the app registration"),
        "{message}"
    );
    assert_eq!(emulator.token_requests(), 1, "refused once, not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_unusable_certificate_file_is_a_configuration_error_naming_the_variable() {
    let (emulator, env, _scratch, _server) = entra_with_certificate(b"not a certificate").await;
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--credential", "default"],
        &env,
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let message = lines(&output)[0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("AZURE_CLIENT_CERTIFICATE_PATH"),
        "{message}"
    );
    assert!(
        emulator.requests().is_empty(),
        "nothing sent, no fallback to managed identity"
    );
}
