//! Row 8: a whole `azmi token` process (this build's release `azmi`, its components
//! precompiled by `azmi precompile` into a scratch `AZMI_PRECOMPILED_DIR`) against the
//! emulator on loopback, wall time per run; the floor is the same binary's `azmi --version`
//! (process start and exit, no component).

use crate::timing;
use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The release `azmi` cargo built for this bench.
const AZMI: &str = env!("CARGO_BIN_EXE_azmi");

/// What the process runs measured (wall time per run).
pub struct Process {
    /// `azmi token --no-cache`: load the precompiled component, one token from the emulator.
    pub token: timing::Stats,
    /// `azmi token` with its per-user cache (scratch), token already cached.
    pub cached: timing::Stats,
    /// `azmi --version`.
    pub version: timing::Stats,
}

/// `runs` runs of each, interleaved; `Err` says why it could not run.
pub fn measure(runs: usize) -> Result<Process, String> {
    let server = crate::server_runtime();
    let scratch = std::env::temp_dir().join(format!("azmi-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let result = measure_in(&server, &scratch, runs);
    server.shutdown_background();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn measure_in(server: &Runtime, scratch: &Path, runs: usize) -> Result<Process, String> {
    let precompile = Command::new(AZMI)
        .args(["precompile", "--dir"])
        .arg(scratch)
        .output()
        .map_err(|e| format!("{AZMI}: {e}"))?;
    if !precompile.status.success() {
        return Err(format!(
            "azmi precompile failed: {}",
            String::from_utf8_lossy(&precompile.stderr)
        ));
    }
    let emulator = Emulator::new(EmulatorConfig::default());
    let (address, accept) = server
        .block_on(emulator.serve(0))
        .map_err(|e| e.to_string())?;
    let run = |args: &[&str]| -> Result<Duration, String> {
        let start = Instant::now();
        let output = Command::new(AZMI)
            .args(args)
            .env_clear()
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://{address}"),
            )
            .env("AZMI_PRECOMPILED_DIR", scratch)
            .env("XDG_CACHE_HOME", scratch.join("cache"))
            .output()
            .map_err(|e| format!("{AZMI}: {e}"))?;
        let elapsed = start.elapsed();
        if !output.status.success() {
            return Err(format!(
                "azmi {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(elapsed)
    };
    const SCOPE: &str = "--scope=https://vault.azure.net/.default";
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..runs + 2 {
        let round_times = [
            run(&["token", SCOPE, "--no-cache"])?,
            run(&["token", SCOPE])?,
            run(&["--version"])?,
        ];
        if round >= 2 {
            for (list, time) in times.iter_mut().zip(round_times) {
                list.push(time);
            }
        }
    }
    accept.abort();
    let [token, cached, version] = times.map(|t| timing::of(&t));
    Ok(Process {
        token,
        cached,
        version,
    })
}
