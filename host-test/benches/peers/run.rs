//! Running the peers: each SDK's script or binary as a child process with a clean environment,
//! its one JSON line parsed into [`Measured`]; and the one-shot processes, timed whole.

use crate::Measured;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One SDK: how to start it and what it answered.
pub struct Peer {
    /// Short name: `node`, `python`, `rust`.
    pub name: &'static str,
    /// The program and the arguments before the mode.
    pub program: PathBuf,
    /// Arguments before the mode (the script's path).
    pub args: Vec<String>,
    /// The SDK and its versions, as the peer reported them.
    pub sdk: String,
    /// The language runtime, as the peer reported it.
    pub runtime: String,
    /// Its numbers, or why there are none.
    pub result: Result<Measured, String>,
}

impl Peer {
    /// A peer not run yet; `result` says so until [`Peer::measure`] replaces it.
    pub fn new(name: &'static str, program: PathBuf, args: &[PathBuf]) -> Peer {
        Peer {
            name,
            program,
            args: args.iter().map(|a| a.display().to_string()).collect(),
            sdk: String::new(),
            runtime: String::new(),
            result: Err("not run".into()),
        }
    }

    /// A command for `mode` with only `env` (plus PATH, HOME, LANG) in its environment.
    pub fn command(&self, mode: &str, env: &[(String, String)]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).arg(mode);
        clean_env(&mut command, env);
        command
    }

    /// Runs `mi` with `app_service` and `no-mi` with `nothing`, merging both JSON lines.
    pub fn measure(&mut self, app_service: &[(String, String)], nothing: &[(String, String)]) {
        self.result = self.run("mi", app_service).and_then(|with| {
            let without = self.run("no-mi", nothing)?;
            Ok(Measured {
                first_token: with.first_token,
                cached: with.cached,
                ..without
            })
        });
    }

    fn run(&mut self, mode: &str, env: &[(String, String)]) -> Result<Measured, String> {
        if !self.program.exists() && self.program.components().count() > 1 {
            return Err(format!(
                "not installed ({} missing)",
                self.program.display()
            ));
        }
        let output = self
            .command(mode, env)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            return Err(format!(
                "{mode} failed: {}",
                last.unwrap_or("no output").trim()
            ));
        };
        let json: Value = serde_json::from_str(line).map_err(|e| format!("{mode}: {e}"))?;
        self.sdk = text(&json, "sdk");
        self.runtime = text(&json, "runtime");
        Ok(Measured {
            first_token: durations(&json, "first_token_ns"),
            cached: durations(&json, "cached_ns"),
            no_mi_probe: durations(&json, "no_mi_probe_ns"),
            no_mi_probe_error: text(&json, "no_mi_probe_error"),
            no_mi_alone: json["no_mi_alone_ns"].as_u64().map(Duration::from_nanos),
            no_mi_alone_capped: json["no_mi_alone_capped"].as_bool().unwrap_or(false),
            no_mi_alone_error: text(&json, "no_mi_alone_error"),
            one_shot: Vec::new(),
        })
    }
}

/// Leaves only `env` and PATH, HOME, LANG in `command`'s environment: no AZURE_* or
/// IDENTITY_* variable from the caller's shell leaks in.
pub fn clean_env(command: &mut Command, env: &[(String, String)]) {
    command.env_clear();
    for name in ["PATH", "HOME", "LANG"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
}

/// Runs every command in `commands` `rounds` times, in turn (one warm-up round first), and
/// returns each one's wall times; a command that fails gets its stderr's last line instead.
pub fn one_shots(commands: &mut [Command], rounds: usize) -> Vec<Result<Vec<Duration>, String>> {
    let mut times: Vec<Result<Vec<Duration>, String>> =
        commands.iter().map(|_| Ok(Vec::new())).collect();
    for round in 0..=rounds {
        for (command, slot) in commands.iter_mut().zip(times.iter_mut()) {
            let Ok(list) = slot else { continue };
            let start = Instant::now();
            let output = command.stdin(Stdio::null()).output();
            let elapsed = start.elapsed();
            match output {
                Ok(o) if o.status.success() => {
                    if round > 0 {
                        list.push(elapsed);
                    }
                }
                Ok(o) => {
                    let stderr = String::from_utf8_lossy(&o.stderr);
                    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
                    *slot = Err(last.unwrap_or("failed").trim().to_string());
                }
                Err(e) => *slot = Err(e.to_string()),
            }
        }
    }
    times
}

fn text(json: &Value, key: &str) -> String {
    json[key].as_str().unwrap_or_default().to_string()
}

fn durations(json: &Value, key: &str) -> Vec<Duration> {
    json[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(Duration::from_nanos)
                .collect()
        })
        .unwrap_or_default()
}
