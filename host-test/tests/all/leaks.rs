//! The CLI side of the leak scan (issue 11, defect 4): `azmi token` against an App Service
//! endpoint that echoes `IDENTITY_HEADER` in every shape seen; neither stdout nor stderr may
//! hold any 12-character piece of it. (The core's scan of every source is
//! `src/proto/tests/leaks.rs`; the Envoy reply and log are scanned by the real-Envoy tests.)

use crate::cli::{azmi, emulator_on_loopback};
use crate::util::VAULT_SCOPE;
use azmi_host_test::emulator::Fault;

fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect()
}

fn leaks(output: &str, secret: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(chars.len().min(12))
        .any(|w| output.contains(&w.iter().collect::<String>()))
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_output_never_holds_the_identity_header_whatever_the_service_echoes() {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let secret = emulator.config().identity_header;
    let (raw, esc, pad) = (secret.clone(), escaped(&secret), "x".repeat(285));
    let bodies = [
        format!(r#"{{"error":"invalid_request","error_description":"bad header {raw}"}}"#),
        format!(r#"{{"error":"invalid_request","error_description":"{pad}{esc}"}}"#),
        format!(r#"{{"error":"{esc}","correlation_id":"{esc}"}}"#),
        format!(r#"{{"error":{{"code":"{esc}","message":"{esc}","correlationId":"{esc}"}}}}"#),
        format!("{pad} {raw}"),
    ];
    let env = [
        ("IDENTITY_ENDPOINT", format!("{url}/msi/token")),
        ("IDENTITY_HEADER", secret.clone()),
    ];
    for body in bodies {
        emulator.push_fault(Fault::Status {
            status: 400,
            times: 1,
            retry_after: None,
            body: Some(body.clone()),
        });
        let (output, _) = azmi(&["token", "--scope", VAULT_SCOPE, "--no-cache"], &env).await;
        assert_eq!(output.status.code(), Some(3), "{output:?}");
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!leaks(&text, &secret), "{body}: {text}");
        }
    }
}
