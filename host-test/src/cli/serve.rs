//! `azmi serve`: its flags and the command (the server itself is `crate::serve`).

use super::process_guest;
use crate::keyvalue::KeyValue;
use crate::serve::{ServeConfig, Server};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The component (.wasm) exporting wasi:http/incoming-handler.
    component: PathBuf,
    /// Port to listen on; 0 picks a free one (printed on the first line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// An environment variable for the component (repeatable). The process's
    /// managed-identity variables are passed too; nothing else is.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    env: Vec<(String, String)>,
    /// Also allow outbound HTTP to this URL's host and port (repeatable), like Spin's
    /// `allowed_outbound_hosts`. The managed-identity endpoints are always allowed.
    #[arg(long = "allow-outbound", value_name = "URL")]
    allow_outbound: Vec<String>,
    /// The store behind wasi:keyvalue (azmi's shared token cache, bucket `azmi-tokens`):
    /// `memory` (one store for this process) or `redis://HOST:PORT[/DB]` (shared by every
    /// process using it). It holds tokens: secure it like a secret store.
    #[arg(long, value_name = "memory|URL", default_value = "memory", value_parser = parse_keyvalue)]
    keyvalue: KeyValue,
}

fn parse_keyvalue(spec: &str) -> Result<KeyValue, String> {
    match spec {
        "memory" => Ok(KeyValue::new()),
        url if url.starts_with("redis://") => KeyValue::redis(url),
        _ => Err("expected `memory` or redis://HOST:PORT".to_string()),
    }
}

fn parse_env_pair(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{pair:?} is not KEY=VALUE")),
    }
}

pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let (env, egress) = process_guest(args.env, &args.allow_outbound)?;
    let wasm = std::fs::read(&args.component)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.component.display()))?;
    // Not fatal: the component then keeps tokens in each instance, with one warning each.
    if let Err(e) = args.keyvalue.reachable() {
        eprintln!(
            "azmi serve: the key-value store does not answer ({e}); trying again per request"
        );
    }
    let keyvalue = args.keyvalue;
    let server = Server::new(
        &wasm,
        ServeConfig {
            env,
            egress,
            keyvalue,
        },
    )?;
    let (address, task) = server.serve(args.port).await?;
    let banner = format!("azmi serve listening on http://{address}\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    tokio::signal::ctrl_c().await?;
    task.abort();
    Ok(0)
}
