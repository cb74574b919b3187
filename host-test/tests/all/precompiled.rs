//! `azmi precompile`: the CLI loads its component precompiled when a usable file is there, and
//! compiles it (as before) when the file is missing, corrupt or from another build.

use crate::cli::{AZMI, SCOPE, emulator_on_loopback, lines};
use crate::util::Scratch;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `azmi args…` with `AZMI_PRECOMPILED_DIR=dir` and the App Service variables for `url`.
async fn run(dir: &Path, args: &[&str], url: &str, header: &str) -> Output {
    let mut command = Command::new(AZMI);
    command
        .args(args)
        .env_clear()
        .env("AZMI_PRECOMPILED_DIR", dir)
        .env("AZMI_ARC_AGENT_DIR", dir.join("no-arc-agent"))
        .env("IDENTITY_ENDPOINT", format!("{url}/msi/token"))
        .env("IDENTITY_HEADER", header);
    tokio::task::spawn_blocking(move || command.output().expect("running azmi"))
        .await
        .unwrap()
}

/// `azmi precompile --dir dir`; its stdout.
fn precompile(dir: &Path) -> String {
    let made = Command::new(AZMI)
        .args(["precompile", "--dir"])
        .arg(dir)
        .env_clear()
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    String::from_utf8_lossy(&made.stdout).into_owned()
}

/// Against a fresh emulator with `AZMI_PRECOMPILED_DIR=dir`: what `azmi doctor` says of the
/// component, after checking that `azmi token` gets a token with one request.
async fn component_status_and_a_token(dir: &Path) -> String {
    let (emulator, url, _server) = emulator_on_loopback().await;
    let header = emulator.config().identity_header;
    let doctor = run(dir, &["doctor", "--json"], &url, &header).await;
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let args = ["token", "--scope", SCOPE, "--no-cache"];
    let token = run(dir, &args, &url, &header).await;
    assert!(token.status.success(), "{token:?}");
    assert_eq!(lines(&token)[0]["source"], "app_service");
    assert_eq!(emulator.token_requests(), 1);
    report["component"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn precompile_writes_each_build_and_the_cli_loads_it() {
    let dir = Scratch::new("precompiled");
    let stale = dir.0.join("azmi-shared-0000000000000000.cwasm");
    std::fs::write(&stale, b"from an older build").unwrap();
    let printed = precompile(&dir.0);
    for build in ["azmi-", "azmi-shared-", "azmi-certificate-"] {
        assert!(
            printed.lines().any(|l| l.contains(&format!("/{build}"))),
            "{build}: {printed}"
        );
    }
    assert!(!stale.exists(), "a file from another build is removed");
    let component = component_status_and_a_token(&dir.0).await;
    assert!(component.starts_with("precompiled: "), "{component}");
    assert!(component.contains("azmi-shared-"), "{component}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_azmi_without_precompiled_components_compiles_and_answers() {
    let dir = Scratch::new("not-precompiled");
    let component = component_status_and_a_token(&dir.0).await;
    assert!(
        component.starts_with("compiled at every start: no ")
            && component.contains("run `azmi precompile` once"),
        "{component}"
    );
}

/// A file with the right name but not made by this wasmtime for this engine (here: junk) is
/// refused by wasmtime's checks; the CLI compiles instead and still answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_precompiled_file_is_refused_and_the_cli_compiles_instead() {
    let dir = Scratch::new("corrupt-precompiled");
    precompile(&dir.0);
    for entry in std::fs::read_dir(&dir.0).unwrap().flatten() {
        std::fs::write(entry.path(), b"\x7fELF but not wasmtime's").unwrap();
    }
    let component = component_status_and_a_token(&dir.0).await;
    assert!(
        component.contains("is not usable") && component.contains("run `azmi precompile` again"),
        "{component}"
    );
}
