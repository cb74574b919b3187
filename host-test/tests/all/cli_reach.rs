//! Where the `azmi` binary's requests go, and where they do not: the real IMDS probe (its
//! connections sent to a loopback listener through `AZMI_IMDS_ADDRESS`), a closed port
//! answered fast after one attempt, proxy variables ignored, the Arc agent directory.

use crate::cli::{SCOPE, azmi, emulator_on_loopback, lines};
use crate::util::{Recorder, Scratch, closed_port};
use std::time::Duration;

/// How long the CLI takes to start, load the component and answer a call that sends
/// nothing (an empty scope): what "fast" is measured against.
async fn baseline() -> Duration {
    let (output, elapsed) = azmi(&["token", "--scope", ""], &[]).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    elapsed
}

/// The part of a run that is not start-up, with a generous sanity bound (not a benchmark):
/// a retried connection would add seconds of back-off.
#[track_caller]
fn assert_fast(elapsed: Duration, baseline: Duration) {
    let call = elapsed.saturating_sub(baseline);
    assert!(
        call < Duration::from_secs(2),
        "{call:?} beyond start-up ({elapsed:?} in all, start-up {baseline:?})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_closed_port_fails_fast_with_typed_error() {
    let closed = closed_port();
    let env = [(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        format!("http://127.0.0.1:{}", closed.port),
    )];
    let baseline = baseline().await;
    let (output, elapsed) = azmi(&["token", "--scope", SCOPE], &env).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let line = &lines(&output)[0];
    assert_eq!(line["error"], "credential_unavailable");
    assert_eq!(line["source"], "imds");
    let message = line["message"].as_str().unwrap();
    assert!(message.contains("connection refused"), "{line}");
    // One attempt: the core names the attempts only when it retried ("gave up after N").
    assert!(!message.contains("attempt"), "retried: {message}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no managed identity is reachable"),
        "{stderr}"
    );
    assert_fast(elapsed, baseline);
    eprintln!("closed-port answer: whole CLI run {elapsed:?}, start-up {baseline:?}");
}

/// Asserts `head` is the IMDS probe: `GET /metadata/identity/oauth2/token` with no query and
/// no `Metadata` header, to 169.254.169.254, with a request id.
#[track_caller]
pub(crate) fn assert_imds_probe(head: &str) {
    use crate::util::head_header;
    assert!(
        head.starts_with("GET /metadata/identity/oauth2/token HTTP/1.1\r\n"),
        "{head:?}"
    );
    assert_eq!(
        head_header(head, "host"),
        Some("169.254.169.254"),
        "{head:?}"
    );
    assert_eq!(head_header(head, "metadata"), None, "{head:?}");
    assert!(
        head_header(head, "x-ms-client-request-id").is_some(),
        "{head:?}"
    );
}

/// No managed identity: the real probe goes to IMDS (its connections sent to a loopback
/// listener through `AZMI_IMDS_ADDRESS`), nothing answers, one attempt, answered fast.
#[tokio::test(flavor = "multi_thread")]
async fn cli_probe_without_managed_identity_is_unavailable() {
    let nobody = Recorder::start().await;
    let env = [("AZMI_IMDS_ADDRESS", nobody.address.to_string())];
    let baseline = baseline().await;
    let (output, elapsed) = azmi(&["token", "--scope", SCOPE, "--probe"], &env).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let line = &lines(&output)[0];
    assert_eq!(line["error"], "credential_unavailable");
    assert_eq!(line["source"], "imds");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("no managed identity is reachable"),
        "{line}"
    );
    let heads = nobody.heads();
    assert_eq!(
        heads.len(),
        1,
        "one probe, no retry, no token request: {heads:?}"
    );
    assert_imds_probe(&heads[0]);
    assert_fast(elapsed, baseline);
    eprintln!("azmi token --probe, no managed identity: whole CLI run {elapsed:?}");
}

/// IMDS there: the probe, then the token request, each once.
#[tokio::test(flavor = "multi_thread")]
async fn cli_probe_answered_goes_on_to_one_token_request() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let env = [("AZMI_IMDS_ADDRESS", url.replace("http://", ""))];
    let (output, _) = azmi(&["token", "--scope", SCOPE, "--probe"], &env).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(lines(&output)[0]["source"], "imds");
    let requests = emulator.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (probe, token) = (&requests[0], &requests[1]);
    assert_eq!(
        (probe.method.as_str(), probe.path.as_str()),
        ("GET", "/metadata/identity/oauth2/token")
    );
    assert!(probe.query.is_empty(), "{probe:?}");
    assert_eq!(probe.header("metadata"), None);
    assert_eq!(probe.header("host"), Some("169.254.169.254"));
    assert_eq!(token.header("metadata"), Some("true"));
    assert_eq!(
        token.query_param("resource"),
        Some("https://vault.azure.net")
    );
}

/// `HTTP_PROXY`, `HTTPS_PROXY` and friends are not used: a listener they name sees nothing.
#[tokio::test(flavor = "multi_thread")]
async fn cli_ignores_proxy_variables() {
    let proxy = Recorder::start().await;
    let (emulator, url, _server) = emulator_on_loopback().await;
    let proxy_url = format!("http://{}", proxy.address);
    let mut env = vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)];
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        env.push((name, proxy_url.clone()));
    }
    let (output, _) = azmi(&["token", "--scope", SCOPE], &env).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(emulator.token_requests(), 1, "straight to the endpoint");
    assert_eq!(
        proxy.heads(),
        Vec::<String>::new(),
        "nothing through the proxy"
    );
}

/// CLI tests never see the machine's Arc agent: `AZMI_ARC_AGENT_DIR` stands in for
/// `/opt/azcmagent/bin`, and a `himds` there is what makes detection pick Azure Arc.
#[tokio::test(flavor = "multi_thread")]
async fn cli_arc_agent_comes_from_the_agent_dir_knob() {
    let closed = closed_port();
    let imds = ("AZMI_IMDS_ADDRESS", format!("127.0.0.1:{}", closed.port));
    let (output, _) = azmi(&["token", "--scope", SCOPE], std::slice::from_ref(&imds)).await;
    assert_eq!(lines(&output)[0]["source"], "imds", "{output:?}");
    let agent = Scratch::new("arc-agent-himds");
    std::fs::write(agent.0.join("himds"), b"").unwrap();
    let env = [imds, ("AZMI_ARC_AGENT_DIR", agent.0.display().to_string())];
    let (output, _) = azmi(&["token", "--scope", SCOPE], &env).await;
    assert_eq!(lines(&output)[0]["source"], "azure_arc", "{output:?}");
}
