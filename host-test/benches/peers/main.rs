//! `just bench-peers` (`just bench --peers`): azmi against Microsoft's SDKs — `@azure/identity`
//! (Node.js), `azure-identity` (Python) and the `azure_identity` crate (Rust) — on one
//! `azmi emulator` process on 127.0.0.1, the emulator as App Service managed identity. Writes
//! host-test/benches/BENCHMARKS.md. Ratios, not pass/fail: timings stay out of the test suite.
//!
//! The recipe installs the peers at pinned versions into target/peers first; a peer that is not there is reported as such and skipped. IMDS
//! (169.254.169.254) is never contacted: azmi and every peer send its connections to a closed
//! loopback port, and each peer's transport refuses any destination outside 127.0.0.0/8.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

mod azmi;
mod report;
mod run;
#[path = "../targets/timing.rs"]
#[allow(dead_code)]
mod timing;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The scope every cached call and one-shot process asks for.
pub const SCOPE: &str = "https://vault.azure.net/.default";
/// First-token rounds per client (after three warm-up rounds).
const FIRST_ROUNDS: usize = 20;
/// Cached calls per client, each timed alone.
const CACHED_CALLS: usize = 10_000;
/// One-shot processes per client (after one warm-up).
const ONE_SHOTS: usize = 10;
/// How long a no-managed-identity answer without a probe is waited for.
const NO_MI_CAP: Duration = Duration::from_secs(20);

/// What one client measured (empty lists: not measured).
#[derive(Default)]
pub struct Measured {
    /// Fresh credential (azmi: fresh instance) + first token, each round.
    pub first_token: Vec<Duration>,
    /// One cached get-token call each.
    pub cached: Vec<Duration>,
    /// No managed identity, IMDS probed first (as in a credential chain).
    pub no_mi_probe: Vec<Duration>,
    /// The error that answer carried.
    pub no_mi_probe_error: String,
    /// No managed identity, the credential alone (no probe).
    pub no_mi_alone: Option<Duration>,
    /// Whether that was given up on after [`NO_MI_CAP`].
    pub no_mi_alone_capped: bool,
    /// The error it carried.
    pub no_mi_alone_error: String,
    /// Whole processes that print one token.
    pub one_shot: Vec<Duration>,
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let host_test = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = host_test.parent().expect("the workspace root");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    // Cargo builds the package's binaries for its benches: this is target/release/azmi.
    let azmi_cli = PathBuf::from(env!("CARGO_BIN_EXE_azmi"));
    let (emulator, endpoint) = start_emulator(&azmi_cli)?;
    eprintln!("bench-peers: azmi emulator on {endpoint}");
    let closed = closed_port()?;
    let identity_header = azmi_host_test::emulator::Config::default().identity_header;
    let imds_address = ("PEERS_IMDS_ADDRESS".to_string(), closed.to_string());
    let counts = [
        ("PEERS_FIRST_ROUNDS", FIRST_ROUNDS.to_string()),
        ("PEERS_CACHED_CALLS", CACHED_CALLS.to_string()),
        ("PEERS_NO_MI_CAP_MS", NO_MI_CAP.as_millis().to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let app_service = vec![
        (
            "IDENTITY_ENDPOINT".to_string(),
            format!("{endpoint}/msi/token"),
        ),
        ("IDENTITY_HEADER".to_string(), identity_header),
    ];
    let peer_env = |base: &[(String, String)]| -> Vec<(String, String)> {
        let mut env = base.to_vec();
        env.push(imds_address.clone());
        env.extend(counts.iter().cloned());
        env
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let compiling = Instant::now();
    let host = azmi_host_test::Host::from_bytes(azmi_host_test::COMPONENT)?;
    let compile = compiling.elapsed();
    let mut azmi =
        azmi::with_managed_identity(&rt, &host, &app_service, FIRST_ROUNDS, CACHED_CALLS)?;
    let without = azmi::without_managed_identity(&rt, &host, closed, NO_MI_CAP)?;
    azmi = Measured {
        first_token: azmi.first_token,
        cached: azmi.cached,
        ..without
    };
    eprintln!("bench-peers: azmi measured ({:.1?})", started.elapsed());

    let peers_dir = target.join("peers");
    let mut peers = [
        run::Peer::new("node", "node".into(), &[peers_dir.join("node/bench.mjs")]),
        run::Peer::new(
            "python",
            peers_dir.join("venv/bin/python"),
            &[host_test.join("benches/peers/python/bench.py")],
        ),
        run::Peer::new(
            "rust",
            peers_dir.join("rust/release/azmi-peer-azure-identity"),
            &[],
        ),
    ];
    for peer in &mut peers {
        if peer.name == "node" && !peers_dir.join("node/node_modules/@azure/identity").exists() {
            peer.result = Err("not installed (npm install failed or no network)".into());
            continue;
        }
        peer.measure(&peer_env(&app_service), &peer_env(&[]));
        match &peer.result {
            Ok(_) => eprintln!(
                "bench-peers: {} measured ({:.1?})",
                peer.name,
                started.elapsed()
            ),
            Err(why) => eprintln!("bench-peers: {} unavailable: {why}", peer.name),
        }
    }

    // `azmi token` as `just cli` installs it: with its components precompiled (`azmi
    // precompile`), so a run loads one instead of compiling it.
    let precompiled = std::env::temp_dir().join(format!("azmi-bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&precompiled)?;
    let made = Command::new(&azmi_cli)
        .args(["precompile", "--dir"])
        .arg(&precompiled)
        .output()?;
    anyhow::ensure!(made.status.success(), "azmi precompile: {made:?}");
    let mut cli = Command::new(&azmi_cli);
    cli.args(["token", "--scope", SCOPE, "--no-cache"]);
    let mut cli_env = app_service.clone();
    cli_env.push(("AZMI_IMDS_ADDRESS".to_string(), closed.to_string()));
    cli_env.push((
        "AZMI_PRECOMPILED_DIR".to_string(),
        precompiled.display().to_string(),
    ));
    run::clean_env(&mut cli, &cli_env);
    let available: Vec<usize> = (0..peers.len())
        .filter(|&i| peers[i].result.is_ok())
        .collect();
    let mut commands = vec![cli];
    commands.extend(
        available
            .iter()
            .map(|&i| peers[i].command("one-shot", &peer_env(&app_service))),
    );
    eprintln!("bench-peers: one-shot processes, {ONE_SHOTS} rounds");
    let mut shots = run::one_shots(&mut commands, ONE_SHOTS).into_iter();
    let _ = std::fs::remove_dir_all(&precompiled);
    azmi.one_shot = shots
        .next()
        .expect("azmi's")
        .map_err(|e| anyhow::anyhow!("azmi token: {e}"))?;
    for (&i, shot) in available.iter().zip(shots) {
        let name = peers[i].name;
        if let Ok(measured) = &mut peers[i].result {
            measured.one_shot = shot.unwrap_or_else(|why| {
                eprintln!("bench-peers: {name} one-shot failed: {why}");
                Vec::new()
            });
        }
    }
    drop(emulator);

    let elapsed = started.elapsed();
    let markdown = report::markdown(&azmi, &peers, compile, elapsed);
    let path = host_test.join("benches/BENCHMARKS.md");
    std::fs::write(&path, markdown)?;
    eprintln!("bench-peers: wrote {} ({elapsed:.1?})", path.display());
    Ok(())
}

/// The emulator process, stopped when this is dropped (an early `?` included).
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `azmi emulator` on a free loopback port; returns the child and `http://127.0.0.1:N`.
fn start_emulator(azmi_cli: &Path) -> anyhow::Result<(Stopped, String)> {
    let mut child = Stopped(
        Command::new(azmi_cli)
            .args(["emulator", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let mut stdout = BufReader::new(child.0.stdout.take().expect("piped"));
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    // Keep reading: the emulator must never write to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .map(str::to_string);
    match endpoint {
        Some(endpoint) => Ok((child, endpoint)),
        None => anyhow::bail!("azmi emulator did not say where it listens: {first:?}"),
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
