//! The `azmi` CLI's per-user token cache: consecutive processes share one token through the
//! shared-cache component and files private to the user.

use azmi_host_test::emulator::{Config, Emulator};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AZMI: &str = env!("CARGO_BIN_EXE_azmi");
const SCOPE: &str = "https://vault.azure.net/.default";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("azmi-cli-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn run(imds: &str, cache: &Path, extra: &[&str]) -> Output {
    let mut command = Command::new(AZMI);
    command
        .args(["token", "--scope", SCOPE])
        .args(extra)
        .env_clear()
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds)
        .env("XDG_CACHE_HOME", cache)
        .env("AZMI_PRECOMPILED_DIR", crate::cli::precompiled())
        // No Arc agent, whatever this machine has (a directory that does not exist).
        .env("AZMI_ARC_AGENT_DIR", cache.join("no-arc-agent"));
    let output = tokio::task::spawn_blocking(move || command.output().expect("running azmi"))
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

fn entry_files(cache: &Path) -> Vec<PathBuf> {
    let bucket = cache.join("azmi").join("azmi-tokens");
    let mut files: Vec<PathBuf> = std::fs::read_dir(bucket)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        !name.starts_with('.') && !name.ends_with("_lease")
    });
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_consecutive_runs_make_one_token_request() {
    let emulator = Emulator::new(Config::default());
    let (address, _server) = emulator.serve(0).await.unwrap();
    let imds = format!("http://{address}");
    let cache = scratch("ten");
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(run(&imds, &cache, &[]).await.stdout);
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one token for all runs"
    );
    assert_eq!(emulator.token_requests(), 1, "10 runs, one token request");
    let files = entry_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(files[0].parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    // --no-cache asks again.
    run(&imds, &cache, &["--no-cache"]).await;
    assert_eq!(emulator.token_requests(), 2);
    let _ = std::fs::remove_dir_all(&cache);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_file_others_can_read_is_refused_with_a_warning() {
    let emulator = Emulator::new(Config::default());
    let (address, _server) = emulator.serve(0).await.unwrap();
    let imds = format!("http://{address}");
    let cache = scratch("world-readable");
    run(&imds, &cache, &[]).await;
    let file = entry_files(&cache).remove(0);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run(&imds, &cache, &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("other users"), "{stderr}");
    assert_eq!(
        emulator.token_requests(),
        2,
        "the refused file was not trusted"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "rewritten private");
    let _ = std::fs::remove_dir_all(&cache);
}
