//! `azmi token` for scripts (issue 13, part 5): `--output json|token|header|az`, the
//! get-token-with options on the command line, and usage errors.

use crate::cli::{SCOPE, azmi, emulator_on_loopback, lines};

async fn imds() -> (
    azmi_host_test::emulator::Emulator,
    Vec<(&'static str, String)>,
    tokio::task::JoinHandle<()>,
) {
    let (emulator, url, server) = emulator_on_loopback().await;
    (
        emulator,
        vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)],
        server,
    )
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn output_token_prints_the_bare_token_for_command_substitution() {
    let (emulator, env, _server) = imds().await;
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--no-cache", "--output", "token"],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let token = stdout(&output);
    assert!(
        token.ends_with('\n') && !token.trim_end().contains(char::is_whitespace),
        "{token:?}"
    );
    assert!(
        emulator.issued(token.trim_end()).is_some(),
        "the emulator's token, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn output_header_prints_an_authorization_header_for_curl() {
    let (emulator, env, _server) = imds().await;
    let (output, _) = azmi(
        &[
            "token",
            "--scope",
            SCOPE,
            "--no-cache",
            "--output",
            "header",
        ],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let line = stdout(&output);
    let token = line
        .trim_end()
        .strip_prefix("Authorization: Bearer ")
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(emulator.issued(token).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn output_az_matches_az_account_get_access_token() {
    let (emulator, env, _server) = imds().await;
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--no-cache", "--output", "az"],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let line = &lines(&output)[0];
    let fields: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        ["accessToken", "expiresOn", "expires_on", "tokenType"]
    );
    assert!(
        emulator
            .issued(line["accessToken"].as_str().unwrap())
            .is_some()
    );
    assert_eq!(line["tokenType"], "Bearer");
    let expires_on = line["expires_on"].as_u64().unwrap();
    // `expiresOn` is the same instant as a calendar date (UTC), az's format.
    let date = line["expiresOn"].as_str().unwrap();
    assert_eq!(date.len(), "2026-12-02 02:59:24.000000".len(), "{date}");
    let t = time::OffsetDateTime::from_unix_timestamp(expires_on as i64).unwrap();
    assert!(
        date.starts_with(&format!(
            "{:04}-{:02}-{:02} {:02}:",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour()
        )),
        "{date} vs {t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_prints_no_token_line_in_token_and_header_formats() {
    let env = [(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "http://127.0.0.1:1".to_string(),
    )];
    for format in ["token", "header"] {
        let (output, _) = azmi(
            &["token", "--scope", SCOPE, "--no-cache", "--output", format],
            &env,
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{format}: {output:?}");
        assert_eq!(
            stdout(&output),
            "",
            "{format}: nothing a script could mistake for a token"
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("azmi: "),
            "{format}"
        );
    }
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--no-cache", "--output", "az"],
        &env,
    )
    .await;
    assert_eq!(lines(&output)[0]["error"], "credential_unavailable");
}

#[tokio::test(flavor = "multi_thread")]
async fn force_refresh_and_claims_skip_the_cache() {
    let (emulator, env, _server) = imds().await;
    let (output, _) = azmi(
        &[
            "token",
            "--scope",
            SCOPE,
            "--no-cache",
            "--repeat",
            "2",
            "--force-refresh",
        ],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        emulator.token_requests(),
        2,
        "each forced call asks the source"
    );
    let (output, _) = azmi(
        &[
            "token",
            "--scope",
            SCOPE,
            "--no-cache",
            "--repeat",
            "2",
            "--claims",
            r#"{"access_token":{"nbf":{"essential":true}}}"#,
            "--client-capability",
            "cp1",
        ],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        emulator.token_requests(),
        4,
        "a claims challenge is never answered from the cache"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_print_the_usage_and_exit_1() {
    for (args, says) in [
        // clap names the valid values for a bad one, the usage line for the rest.
        (
            &["token", "--scope", SCOPE, "--output", "yaml"][..],
            "possible values: json, token, header, az",
        ),
        (
            &[
                "token",
                "--scope",
                SCOPE,
                "--client-id",
                "a",
                "--object-id",
                "b",
            ][..],
            "Usage: azmi token",
        ),
        (&["token"][..], "Usage: azmi token"),
    ] {
        let (output, _) = azmi(args, &[]).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stdout(&output), "");
    }
}

/// `AZURE_LOG_LEVEL` (issue 13, part 1): silent by default; at `info` the component writes
/// each request, its answer and the token's source on stderr — never the token.
#[tokio::test(flavor = "multi_thread")]
async fn azure_log_level_info_logs_the_request_on_stderr_without_the_token() {
    let (emulator, mut env, _server) = imds().await;
    let (quiet, _) = azmi(&["token", "--scope", SCOPE, "--no-cache"], &env).await;
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "silent by default"
    );
    env.push(("AZURE_LOG_LEVEL", "info".to_string()));
    let (output, _) = azmi(
        &["token", "--scope", SCOPE, "--no-cache", "--output", "token"],
        &env,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let token = stdout(&output).trim_end().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with("azmi: IMDS: GET http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        lines[0].contains("/metadata/identity/oauth2/token (x-ms-client-request-id "),
        "{stderr}"
    );
    assert!(lines[1].starts_with("azmi: IMDS: HTTP 200 in "), "{stderr}");
    assert!(
        lines[2].starts_with("azmi: token from IMDS for https://vault.azure.net/.default"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&token) && !stderr.contains('?'),
        "{stderr}"
    );
    assert_eq!(emulator.token_requests(), 2);
}
