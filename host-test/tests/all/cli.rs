//! The real `azmi` binary against the emulator on a loopback port.

use crate::util::Scratch;
use azmi_host_test::emulator::{Config, Emulator};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const AZMI: &str = env!("CARGO_BIN_EXE_azmi");
pub(crate) const SCOPE: &str = "https://vault.azure.net/.default";

/// Runs `azmi args…` with exactly `env` (nothing inherited) off the async runtime. The Arc
/// agent's directory is an empty scratch one (`AZMI_ARC_AGENT_DIR`) unless `env` names one,
/// so an Arc-enabled machine runs these tests as any other.
pub(crate) async fn azmi(args: &[&str], env: &[(&str, String)]) -> (Output, Duration) {
    let agent = Scratch::new("arc-agent");
    let mut command = Command::new(AZMI);
    command.args(args).env_clear();
    command.env("AZMI_ARC_AGENT_DIR", &agent.0);
    command.env("AZMI_PRECOMPILED_DIR", precompiled());
    for (k, v) in env {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let output = command.output().expect("running azmi");
        drop(agent);
        (output, start.elapsed())
    })
    .await
    .unwrap()
}

pub(crate) fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// A directory with the CLI's components precompiled once per test run (`azmi precompile`),
/// so each CLI run here loads one in milliseconds instead of compiling it (the debug binary
/// takes ≈ 0.8 s); `precompiled::an_azmi_without_precompiled_components_compiles_and_answers`
/// covers the other path.
pub(crate) fn precompiled() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompiled");
        std::fs::create_dir_all(&dir).unwrap();
        let output = Command::new(AZMI)
            .args(["precompile", "--dir"])
            .arg(&dir)
            .env_clear()
            .output()
            .expect("running azmi precompile");
        assert!(output.status.success(), "{output:?}");
        dir
    })
}

/// An emulator served on a loopback port, and its `http://` base URL.
pub(crate) async fn emulator_on_loopback() -> (Emulator, String, tokio::task::JoinHandle<()>) {
    let emulator = Emulator::new(Config::default());
    let (address, server) = emulator.serve(0).await.unwrap();
    (emulator, format!("http://{address}"), server)
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_demo_prints_a_token_line() {
    let (output, _) = azmi(&["demo"], &[]).await;
    assert!(output.status.success(), "{output:?}");
    let lines = lines(&output);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert!(line["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(line["expires_on"].as_u64().is_some(), "{line}");
    assert_eq!(line["token_type"], "Bearer");
    assert_eq!(line["source"], "imds");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_token_imds_repeat_makes_one_upstream_request() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let env = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)];
    let (output, _) = azmi(&["token", "--scope", SCOPE, "--repeat", "3"], &env).await;
    assert!(output.status.success(), "{output:?}");
    let lines = lines(&output);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["source"], "imds");
        assert_eq!(line["access_token"], lines[0]["access_token"]);
    }
    assert_eq!(emulator.token_requests(), 1);
    let request = &emulator.requests()[0];
    assert_eq!(request.path, "/metadata/identity/oauth2/token");
    assert_eq!(
        request.query_param("resource"),
        Some("https://vault.azure.net")
    );
    assert_eq!(request.header("metadata"), Some("true"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_token_app_service() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let secret = emulator.config().identity_header;
    let env = [
        ("IDENTITY_ENDPOINT", format!("{url}/msi/token")),
        ("IDENTITY_HEADER", secret.clone()),
    ];
    let ua = emulator.config().user_assigned[0].clone();
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--client-id", &ua.client_id],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let line = &lines(&output)[0];
    assert_eq!(line["source"], "app_service");
    let issued = emulator
        .issued(line["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(issued.client_id, ua.client_id);
    let request = &emulator.requests()[0];
    assert_eq!(request.header("x-identity-header"), Some(secret.as_str()));
    assert_eq!(
        request.query_param("client_id"),
        Some(ua.client_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_exit_codes_follow_the_error_class() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let env = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)];
    let (output, _) = azmi(&["token", "--scope", ""], &env).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert_eq!(lines(&output)[0]["error"], "invalid_argument");
    let unknown = "99999999-9999-9999-9999-999999999999";
    let (output, _) = azmi(&["token", "--scope", SCOPE, "--client-id", unknown], &env).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let line = &lines(&output)[0];
    assert_eq!(line["error"], "authentication_failed");
    assert_eq!(line["status"], 400);
    assert_eq!(line["code"], "invalid_request");
    // One bad argument among good calls: every call still runs, the first failure decides.
    let (output, _) = azmi(
        &[
            "token",
            "--scope",
            SCOPE,
            "--client-id",
            "a",
            "--object-id",
            "b",
        ],
        &env,
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "clap refuses two ids: {output:?}"
    );
    assert_eq!(emulator.token_requests(), 1);
}

/// Every source the emulator serves, as its banner names them.
pub(crate) const EVERY_SOURCE: [&str; 10] = [
    "imds",
    "app_service",
    "app_service_2017",
    "azure_ml",
    "cloud_shell",
    "azure_arc",
    "service_fabric",
    "workload_identity",
    "client_secret",
    "client_certificate",
];

/// `azmi emulator --port 0` in a child process (stopped on drop) and its banner: one line per
/// source with the variables that point it at the emulator.
pub(crate) fn emulator_process() -> (crate::util::ChildProcess, Vec<String>) {
    let mut child = crate::util::ChildProcess(
        Command::new(AZMI)
            .args(["emulator", "--port", "0"])
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut banner = Vec::new();
    for _ in 0..11 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        banner.push(line.trim_end().to_string());
    }
    // Keep draining so the emulator never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    assert!(
        banner[0].starts_with("azmi emulator listening on http://127.0.0.1:"),
        "{banner:?}"
    );
    (child, banner)
}

/// The variables `banner` gives for `source`.
pub(crate) fn source_env(banner: &[String], source: &str) -> Vec<(String, String)> {
    let prefix = format!("{source}: ");
    let vars = banner
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {source} line in {banner:?}"));
    vars.split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_every_source_end_to_end_against_azmi_emulator() {
    let (child, banner) = emulator_process();
    let mut results = Vec::new();
    for source in EVERY_SOURCE {
        let owned = source_env(&banner, source);
        let env: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut args = vec!["token", "--scope", SCOPE, "--repeat", "2", "--no-cache"];
        if source.starts_with("client_") {
            // A service principal is the default chain's environment credential.
            args.extend(["--credential", "default"]);
        }
        let (output, elapsed) = azmi(&args, &env).await;
        results.push((source, output, elapsed));
    }
    // Stopped as a person stops it (SIGTERM), the emulator removes its scratch directory
    // (the federated token file and the certificate are in it).
    let scratch = banner
        .iter()
        .find_map(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix("SSL_CERT_FILE="))
        })
        .map(|pem| std::path::Path::new(pem).parent().unwrap().to_path_buf())
        .expect("the emulator's certificate file");
    assert!(scratch.is_dir(), "{}", scratch.display());
    drop(child);
    assert!(!scratch.exists(), "{} left behind", scratch.display());
    for (source, output, elapsed) in results {
        assert!(output.status.success(), "{source}: {output:?}");
        let lines = lines(&output);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["source"], source);
        assert_eq!(
            lines[1]["access_token"], lines[0]["access_token"],
            "{source}: cached"
        );
        eprintln!("{source}: {elapsed:?} for the whole CLI run");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_https_endpoint_trusts_ssl_cert_file() {
    use azmi_host_test::emulator::TestCertificate;
    let cert = TestCertificate::generate().unwrap();
    let emulator = Emulator::new(Config::default());
    let (address, _server) = emulator
        .serve_tls(0, cert.server_config().unwrap())
        .await
        .unwrap();
    let pem = std::env::temp_dir().join(format!("azmi-cli-test-{}.pem", std::process::id()));
    std::fs::write(&pem, &cert.cert_pem).unwrap();
    let mut env = vec![
        ("IDENTITY_ENDPOINT", format!("https://{address}/msi/token")),
        ("IDENTITY_HEADER", emulator.config().identity_header),
    ];
    // Not trusted by the Mozilla roots alone: refused, typed, nothing served.
    let (output, _) = azmi(&["token", "--scope", SCOPE], &env).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let message = lines(&output)[0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("TLS certificate") && message.contains("UnknownIssuer"),
        "webpki's reason: {message}"
    );
    assert_eq!(emulator.token_requests(), 0);
    // Trusted through SSL_CERT_FILE.
    env.push(("SSL_CERT_FILE", pem.display().to_string()));
    let (output, _) = azmi(&["token", "--scope", SCOPE], &env).await;
    std::fs::remove_file(&pem).unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(lines(&output)[0]["source"], "app_service");
    assert_eq!(emulator.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_serve_names_the_stores_it_accepts() {
    let (output, _) = azmi(&["serve", "app.wasm", "--keyvalue", "memcached://x"], &[]).await;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected `memory` or redis://"), "{stderr}");
    assert!(output.stdout.is_empty(), "no banner");
}
