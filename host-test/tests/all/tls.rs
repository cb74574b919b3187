//! TLS as the `azmi` CLI applies it, against real listeners on 127.0.0.1: which server
//! certificates it accepts (an explicitly trusted self-signed CA certificate: issue 11,
//! defect 9), which Service Fabric's thumbprint pin refuses (defect 10), and that every
//! refusal names webpki's reason.

use crate::cli::{azmi, lines};
use crate::util::Scratch;
use azmi_host_test::Egress;
use azmi_host_test::emulator::{Config, Emulator, TestCertificate};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Output;

const SCOPE: &str = "https://vault.azure.net/.default";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

/// The emulator served over HTTPS on a loopback port with one certificate.
struct Https {
    emulator: Emulator,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Https {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(cert: &TestCertificate) -> Https {
    let emulator = Emulator::new(Config::default());
    let (address, server) = emulator
        .serve_tls(0, cert.server_config().unwrap())
        .await
        .unwrap();
    Https {
        emulator,
        address,
        server,
    }
}

/// Writes `certs` into one PEM file in `scratch`, for `SSL_CERT_FILE`.
fn pem_file(scratch: &Scratch, certs: &[&TestCertificate]) -> String {
    let path = scratch.0.join("trusted.pem");
    let pem: String = certs.iter().map(|c| c.cert_pem.as_str()).collect();
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

/// Workload identity whose authority is `https.address`, trusting `trusted`.
fn workload_identity(
    https: &Https,
    scratch: &Scratch,
    trusted: &[&TestCertificate],
) -> Vec<(&'static str, String)> {
    let config = https.emulator.config();
    let token = scratch.0.join("azure-identity-token");
    std::fs::write(&token, &config.federated_token).unwrap();
    vec![
        ("AZURE_AUTHORITY_HOST", format!("https://{}", https.address)),
        ("AZURE_TENANT_ID", TENANT.to_string()),
        ("AZURE_CLIENT_ID", config.user_assigned[0].client_id.clone()),
        ("AZURE_FEDERATED_TOKEN_FILE", token.display().to_string()),
        ("SSL_CERT_FILE", pem_file(scratch, trusted)),
    ]
}

/// Service Fabric at `https.address`, pinned to `thumbprint`.
fn service_fabric(https: &Https, thumbprint: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "IDENTITY_ENDPOINT",
            format!("https://{}/metadata/identity/oauth2/token", https.address),
        ),
        ("IDENTITY_HEADER", https.emulator.config().identity_header),
        ("IDENTITY_SERVER_THUMBPRINT", thumbprint.to_string()),
    ]
}

async fn token(env: &[(&str, String)]) -> (Output, Value) {
    let (output, _) = azmi(&["token", "--scope", SCOPE, "--no-cache"], env).await;
    let line = lines(&output)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no output line: {output:?}"));
    (output, line)
}

/// Asserts a TLS refusal: exit 2, credential unavailable from `source`, a message naming
/// `reason`, and nothing served.
#[track_caller]
fn assert_refused(output: &Output, line: &Value, source: &str, reason: &str, https: &Https) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(line["error"], "credential_unavailable", "{line}");
    assert_eq!(line["source"], source, "{line}");
    let message = line["message"].as_str().unwrap();
    assert!(message.contains("TLS certificate"), "{message}");
    assert!(message.contains(reason), "expected {reason:?} in {message}");
    assert_eq!(https.emulator.token_requests(), 0, "nothing may be served");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_trusts_a_self_signed_ca_certificate_named_in_ssl_cert_file() {
    // As `openssl req -x509` makes it: self-signed, CA:TRUE, presented as the server's own.
    let cert = TestCertificate::self_signed_ca(&LOOPBACK).unwrap();
    let https = serve(&cert).await;
    let scratch = Scratch::new("tls-self-signed-ca");
    let env = workload_identity(&https, &scratch, &[&cert]);
    let (output, line) = token(&env).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(line["source"], "workload_identity", "{line}");
    assert_eq!(https.emulator.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_refuses_a_ca_certificate_that_is_not_in_ssl_cert_file_and_says_why() {
    let scratch = Scratch::new("tls-untrusted-ca");
    let other = TestCertificate::self_signed_ca(&LOOPBACK).unwrap();
    // Not trusted at all (webpki objects to its CA role before looking for an issuer).
    let stranger = TestCertificate::self_signed_ca(&LOOPBACK).unwrap();
    let https = serve(&stranger).await;
    let (output, line) = token(&workload_identity(&https, &scratch, &[&other])).await;
    assert_refused(
        &output,
        &line,
        "workload_identity",
        "CaUsedAsEndEntity",
        &https,
    );
    // Its twin (same subject and key, other bytes) is trusted, so it would chain: still
    // refused, as only the trusted bytes themselves are accepted as a CA end-entity.
    let twin = stranger.twin().unwrap();
    assert_ne!(twin.cert_der, stranger.cert_der);
    let (output, line) = token(&workload_identity(&https, &scratch, &[&twin])).await;
    assert_refused(
        &output,
        &line,
        "workload_identity",
        "CaUsedAsEndEntity",
        &https,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_checks_name_and_validity_of_an_explicitly_trusted_ca_certificate() {
    let scratch = Scratch::new("tls-trusted-ca-checks");
    // Trusted byte for byte, but for another name than the 127.0.0.1 the client asks for.
    let elsewhere = TestCertificate::self_signed_ca(&["login.example.test"]).unwrap();
    let https = serve(&elsewhere).await;
    let (output, line) = token(&workload_identity(&https, &scratch, &[&elsewhere])).await;
    assert_refused(
        &output,
        &line,
        "workload_identity",
        "certificate not valid for name \"127.0.0.1\"",
        &https,
    );
    // Trusted byte for byte, but naming nothing (a subject CN only, as `openssl req -x509`
    // makes without `-addext subjectAltName=…`): refused, and told where the names go.
    let unnamed = TestCertificate::self_signed_ca(&[]).unwrap();
    let https = serve(&unnamed).await;
    let (output, line) = token(&workload_identity(&https, &scratch, &[&unnamed])).await;
    assert_refused(
        &output,
        &line,
        "workload_identity",
        "subjectAltName=DNS:<name>,IP:<address>",
        &https,
    );
    // Trusted byte for byte, but expired.
    let expired = TestCertificate::expired_ca(&LOOPBACK).unwrap();
    let https = serve(&expired).await;
    let (output, line) = token(&workload_identity(&https, &scratch, &[&expired])).await;
    assert_refused(
        &output,
        &line,
        "workload_identity",
        "certificate expired",
        &https,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_fabric_refuses_a_certificate_with_another_thumbprint() {
    let cert = TestCertificate::generate().unwrap();
    let https = serve(&cert).await;
    let (output, line) = token(&service_fabric(&https, &cert.sha1_thumbprint())).await;
    assert!(output.status.success(), "the right thumbprint: {output:?}");
    assert_eq!(line["source"], "service_fabric");
    let served = serve(&cert).await;
    let other = TestCertificate::generate().unwrap().sha1_thumbprint();
    let (output, line) = token(&service_fabric(&served, &other)).await;
    assert_refused(
        &output,
        &line,
        "service_fabric",
        "SHA-1 thumbprint is not IDENTITY_SERVER_THUMBPRINT",
        &served,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_fabric_refuses_a_ca_valid_certificate_with_another_thumbprint() {
    let scratch = Scratch::new("tls-sf-ca-valid");
    let ca = TestCertificate::self_signed_ca(&["azmi test CA"]).unwrap();
    let leaf = ca.issue(&LOOPBACK).unwrap();
    let https = serve(&leaf).await;
    let trusted = pem_file(&scratch, &[&ca]);
    // Control: through SSL_CERT_FILE the certificate is valid (App Service over HTTPS).
    let app_service = [
        (
            "IDENTITY_ENDPOINT",
            format!("https://{}/msi/token", https.address),
        ),
        ("IDENTITY_HEADER", https.emulator.config().identity_header),
        ("SSL_CERT_FILE", trusted.clone()),
    ];
    let (output, line) = token(&app_service).await;
    assert!(output.status.success(), "CA-valid: {output:?}");
    assert_eq!(line["source"], "app_service");
    // Service Fabric trusts the thumbprint alone, whatever SSL_CERT_FILE says.
    let served = serve(&leaf).await;
    let mut env = service_fabric(&served, &ca.sha1_thumbprint());
    env.push(("SSL_CERT_FILE", trusted));
    let (output, line) = token(&env).await;
    assert_refused(
        &output,
        &line,
        "service_fabric",
        "SHA-1 thumbprint is not IDENTITY_SERVER_THUMBPRINT",
        &served,
    );
}

/// A TLS handshake with `config` to `address`, asking for `name`: rustls's error, if any.
async fn handshake(
    config: std::sync::Arc<rustls::ClientConfig>,
    name: &str,
    address: SocketAddr,
) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map(drop)
        .map_err(|e| {
            let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
            tls.map_or_else(|| e.to_string(), azmi_host_test::egress::refusal)
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn service_fabric_pin_trusts_its_certificate_on_its_own_authority_only() {
    let cert = TestCertificate::generate().unwrap();
    let pinned = serve(&cert).await;
    let elsewhere = serve(&cert).await;
    let env: Vec<(String, String)> = service_fabric(&pinned, &cert.sha1_thumbprint())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let egress = Egress::network(&env, None).unwrap();
    let pinned_authority = pinned.address.to_string();
    let config = egress.tls_for("https", &pinned_authority).unwrap();
    assert_eq!(handshake(config, "127.0.0.1", pinned.address).await, Ok(()));
    // The same certificate (the right thumbprint) on another port, or the pinned socket under
    // another name, gets the general settings, which do not trust it.
    for (authority, name, address) in [
        (
            elsewhere.address.to_string(),
            "127.0.0.1",
            elsewhere.address,
        ),
        (
            format!("localhost:{}", pinned.address.port()),
            "localhost",
            pinned.address,
        ),
    ] {
        let config = egress.tls_for("https", &authority).unwrap();
        let refused = handshake(config, name, address).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{authority}: {refused}");
    }
}
