//! The `azmi` command line (design.md, "The azmi CLI contract"): `token`, `emulator`, `demo`.

use crate::bindings::{AccessToken, Error as TokenError, IdentitySelector};
use crate::egress::{self, Allowlist, Egress};
use crate::emulator::{Config, Emulator};
use crate::host::{GuestConfig, Host};
use azmi::proto::is_managed_identity_variable;
use clap::{Args, Parser, Subcommand};
use std::io::Write;

/// Where `azmi demo` pretends IMDS lives; requests to it never reach a socket.
pub const DEMO_AUTHORITY: &str = "http://127.0.0.1:4010";
/// The scope `azmi demo` asks for.
pub const DEMO_SCOPE: &str = "https://vault.azure.net/.default";

/// Azure managed-identity tokens through the azmi WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "azmi", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get a token from this machine's managed identity, through the component in wasmtime.
    Token(TokenArgs),
    /// Run the Azure managed-identity emulator on 127.0.0.1 (Ctrl-C stops it).
    Emulator {
        /// Port to listen on; 0 picks a free one (printed on the first line).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Emulator, component and one token, all in this process: no Azure, no network.
    Demo,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The scope, e.g. https://vault.azure.net/.default.
    #[arg(long)]
    scope: String,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Call get-token this many times on the same instance (the cache serves repeats).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Probe IMDS availability first (for credential chains).
    #[arg(long)]
    probe: bool,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct IdentityArgs {
    /// A user-assigned identity by client id.
    #[arg(long)]
    client_id: Option<String>,
    /// A user-assigned identity by object (principal) id.
    #[arg(long)]
    object_id: Option<String>,
    /// A user-assigned identity by ARM resource id.
    #[arg(long)]
    resource_id: Option<String>,
}

impl IdentityArgs {
    fn selector(&self) -> IdentitySelector {
        match (&self.client_id, &self.object_id, &self.resource_id) {
            (Some(id), _, _) => IdentitySelector::ClientId(id.clone()),
            (_, Some(id), _) => IdentitySelector::ObjectId(id.clone()),
            (_, _, Some(id)) => IdentitySelector::ResourceId(id.clone()),
            _ => IdentitySelector::SystemAssigned,
        }
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let _ = e.print();
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("azmi: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Token(args) => token(args).await,
            Command::Emulator { port } => emulator(port).await,
            Command::Demo => demo().await,
        }
    });
    result.unwrap_or_else(|e| {
        eprintln!("azmi: {e:#}");
        1
    })
}

async fn token(args: TokenArgs) -> anyhow::Result<i32> {
    if args.probe {
        eprintln!(
            "azmi: --probe: the IMDS probe is not implemented in this version; requesting directly"
        );
    }
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| is_managed_identity_variable(k))
        .collect();
    let cert_file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let tls = egress::tls_config(cert_file.as_deref().map(std::path::Path::new))?;
    let allow = Allowlist::from_env(&env);
    let host = Host::new()?;
    let mut guest = host
        .instantiate(GuestConfig::new(env, Egress::Network { allow, tls }))
        .await?;
    let selector = args.identity.selector();
    let mut exit = 0;
    for _ in 0..args.repeat {
        let result = guest.get_token(&args.scope, &selector).await?;
        if let Err(e) = print_result(&result) {
            exit = if exit == 0 { e } else { exit };
        }
    }
    Ok(exit)
}

async fn emulator(port: u16) -> anyhow::Result<i32> {
    let emulator = Emulator::new(Config::default());
    let (address, server) = emulator.serve(port).await?;
    let secret = emulator.config().identity_header;
    // One write, so a reader that stops after the first line does not break the rest.
    let banner = format!(
        "azmi emulator listening on http://{address}\n  IMDS:        AZURE_POD_IDENTITY_AUTHORITY_HOST=http://{address}\n  App Service: IDENTITY_ENDPOINT=http://{address}/msi/token IDENTITY_HEADER={secret}\n"
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    tokio::signal::ctrl_c().await?;
    server.abort();
    eprintln!(
        "azmi emulator: stopped after {} token requests",
        emulator.token_requests()
    );
    Ok(0)
}

async fn demo() -> anyhow::Result<i32> {
    let emulator = Emulator::new(Config::default());
    let mut authorities = Allowlist::default();
    authorities.allow(DEMO_AUTHORITY);
    let env = vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        DEMO_AUTHORITY.to_string(),
    )];
    let host = Host::new()?;
    let mut guest = host
        .instantiate(GuestConfig {
            env,
            egress: Egress::Emulator {
                emulator: emulator.clone(),
                authorities,
            },
            preopens: Vec::new(),
        })
        .await?;
    let result = guest
        .get_token(DEMO_SCOPE, &IdentitySelector::SystemAssigned)
        .await?;
    let exit = print_result(&result).err().unwrap_or(0);
    eprintln!(
        "azmi demo: the component asked the in-process emulator (as IMDS) for {DEMO_SCOPE}: {} request(s), nothing left this process",
        emulator.token_requests()
    );
    Ok(exit)
}

/// Prints one JSON line for a get-token result; on failure also the message on stderr, and
/// returns the exit code (2 unavailable, 3 authentication failed, 4 invalid argument).
pub fn print_result(result: &Result<AccessToken, TokenError>) -> Result<(), i32> {
    match result {
        Ok(token) => {
            println!("{}", token_json(token));
            Ok(())
        }
        Err(error) => {
            println!("{}", error_json(error));
            eprintln!("azmi: {}", error.message());
            Err(match error {
                TokenError::CredentialUnavailable(_) => 2,
                TokenError::AuthenticationFailed(_) => 3,
                TokenError::InvalidArgument(_) => 4,
            })
        }
    }
}

/// `{"access_token":…,"expires_on":…,"refresh_on":…,"token_type":…,"source":…}`.
pub fn token_json(token: &AccessToken) -> String {
    let s = |v: &str| serde_json::Value::from(v).to_string();
    format!(
        r#"{{"access_token":{},"expires_on":{},"refresh_on":{},"token_type":{},"source":{}}}"#,
        s(&token.token),
        token.expires_on,
        token
            .refresh_on
            .map_or_else(|| "null".to_string(), |r| r.to_string()),
        s(&token.token_type),
        s(token.source.id()),
    )
}

/// `{"error":…,"message":…}` plus `source`, `status`, `code`, `correlation_id` when known.
pub fn error_json(error: &TokenError) -> String {
    let mut map = serde_json::Map::new();
    map.insert("error".into(), error.class().into());
    map.insert("message".into(), error.message().into());
    if let Some(info) = error.info() {
        if let Some(source) = info.source {
            map.insert("source".into(), source.id().into());
        }
        if let Some(status) = info.status {
            map.insert("status".into(), status.into());
        }
        if let Some(code) = &info.code {
            map.insert("code".into(), code.as_str().into());
        }
        if let Some(id) = &info.correlation_id {
            map.insert("correlation_id".into(), id.as_str().into());
        }
    }
    serde_json::Value::Object(map).to_string()
}
