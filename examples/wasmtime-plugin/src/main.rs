//! `azmi-wasmtime-plugin`: loads azmi.wasm once, calls `get-token` `--calls` times on the same
//! instance and reports how many requests actually left the host.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use azmi_wasmtime_plugin::{
    Config, Credential, DEFAULT_COMPONENT, IdentitySelector, Plugin, Source,
};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Azure managed-identity tokens from azmi.wasm loaded as a wasmtime plugin.
#[derive(Debug, Parser)]
struct Args {
    /// The azmi component [default: $AZMI_COMPONENT, else target/shipped/azmi.wasm].
    #[arg(long)]
    component: Option<PathBuf>,
    /// The scope to ask for.
    #[arg(long, default_value = "https://vault.azure.net/.default")]
    scope: String,
    /// A user-assigned identity by client id (default: the system-assigned identity).
    #[arg(long)]
    client_id: Option<String>,
    /// `managed-identity`: azmi's `credential` export; `default`: its `default-credential`
    /// (a client secret in AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET, else
    /// managed identity).
    #[arg(long, value_enum, default_value_t = CredentialArg::ManagedIdentity)]
    credential: CredentialArg,
    /// How many times to call get-token on the one instance.
    #[arg(long, default_value_t = 100)]
    calls: u32,
}

/// `--credential`.
#[derive(Copy, Clone, Debug, clap::ValueEnum)]
enum CredentialArg {
    ManagedIdentity,
    Default,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("azmi-wasmtime-plugin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let path = args
        .component
        .or_else(|| std::env::var_os("AZMI_COMPONENT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_COMPONENT));
    let credential = match args.credential {
        CredentialArg::ManagedIdentity => Credential::ManagedIdentity,
        CredentialArg::Default => Credential::Default,
    };
    let config = Config::from_process_env().with_credential(credential);
    let mut plugin = Plugin::load(&path, config).await.map_err(|e| {
        format!(
            "loading {}: {e:#} (build it with `just component`)",
            path.display()
        )
    })?;
    let identity = match args.client_id {
        Some(id) => IdentitySelector::ClientId(id),
        None => IdentitySelector::SystemAssigned,
    };
    let start = Instant::now();
    for call in 1..=args.calls {
        // `?` keeps the typed error; its Display starts with the class.
        let token = plugin
            .get_token(&args.scope, &identity)
            .await
            .map_err(|e| e.to_string())?;
        if call == 1 {
            // A token is a secret: show only enough to recognise it.
            let prefix: String = token.token.chars().take(8).collect();
            println!(
                "token {prefix}… ({} chars, {}), expires_on {}, source {}",
                token.token.len(),
                token.token_type,
                token.expires_on,
                source_name(token.source)
            );
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{} get-token calls on one instance in {:.1} ms: {} request(s) left the host",
        args.calls,
        elapsed.as_secs_f64() * 1000.0,
        plugin.upstream_requests()
    );
    Ok(())
}

/// The source's name as azmi's CLI prints it.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::Imds => "imds",
        Source::AppService => "app_service",
        Source::AppService2017 => "app_service_2017",
        Source::AzureMl => "azure_ml",
        Source::CloudShell => "cloud_shell",
        Source::AzureArc => "azure_arc",
        Source::ServiceFabric => "service_fabric",
        Source::WorkloadIdentity => "workload_identity",
        Source::ClientSecret => "client_secret",
        Source::ClientCertificate => "client_certificate",
    }
}
