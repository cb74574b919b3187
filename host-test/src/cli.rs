//! The `azmi` command line: `token`, `doctor`, `precompile`, `emulator`, `demo`, and `serve`
//! for the Spin example.
//! Its flags, its JSON output and its exit codes are a stable contract: scripts and tests
//! depend on them.

mod doctor;
mod json;
mod serve;

pub use json::{Output, az_json, error_json, print_result, print_result_as, token_json};

use crate::bindings::{IdentitySelector, TokenRequest};
use crate::egress::Egress;
use crate::emulator::{Config, Emulator, TestCertificate};
use crate::file_store::FileStore;
use crate::host::GuestConfig;
use crate::keyvalue::KeyValue;
use crate::precompiled::{self, Build};
use azmi::proto::is_managed_identity_variable;
use clap::{Args, Parser, Subcommand};
use std::io::Write;

/// Where `azmi demo` pretends IMDS lives; requests to it never reach a socket.
pub const DEMO_AUTHORITY: &str = "http://127.0.0.1:4010";
/// Host directory to preopen at `/var/opt/azcmagent/tokens` instead of the real one, so the
/// emulator's Arc challenge can be answered on a machine without the agent (tests, demos).
/// Not passed to the component, which still only accepts keys from the standard path.
pub const ARC_TOKENS_DIR_OVERRIDE: &str = "AZMI_ARC_TOKENS_DIR";

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
    /// Run the Azure managed-identity emulator on 127.0.0.1, over HTTP and HTTPS (Ctrl-C stops
    /// it). Prints the variables that point each source at it.
    Emulator {
        /// HTTP port; 0 picks a free one (printed on the first line).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// HTTPS port (Service Fabric, workload identity's authority); 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        tls_port: u16,
    },
    /// Emulator, component and one token, all in this process: no Azure, no network.
    Demo,
    /// Serve a wasi:http component (e.g. a Spin app composed with azmi.wasm) on 127.0.0.1,
    /// one instance per request, as Spin does (Ctrl-C stops it).
    Serve(serve::ServeArgs),
    /// Explain this machine without printing a token: the detected source and the variables
    /// that decided it, the endpoint, what the host allows, whether the endpoint answers, and
    /// one verdict with the fix (exit 0 ok, 2 unavailable or unreachable, 3 misconfigured).
    Doctor(doctor::DoctorArgs),
    /// Compile the embedded components once for this machine and write them next to this
    /// binary (or into --dir), so every later start loads one in milliseconds instead of
    /// compiling it (`just cli` runs it).
    Precompile {
        /// Where to write them (default: this binary's directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
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
    /// Probe IMDS first (1 s, no retries) so a machine without a managed identity answers in
    /// milliseconds (for credential chains).
    #[arg(long)]
    probe: bool,
    /// Do not use the per-user token cache ($XDG_CACHE_HOME/azmi or ~/.cache/azmi, private to
    /// you), which lets consecutive runs share one token.
    #[arg(long)]
    no_cache: bool,
    /// Give up after this many milliseconds, retries and every wait on the network included
    /// (default 120000), like the component's `timeout-ms`.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Which credential: managed-identity (the `credential` interface); default (the chain:
    /// a service principal in AZURE_* variables, then workload identity, then managed
    /// identity; AZURE_TOKEN_CREDENTIALS narrows it); environment or workload-identity (that
    /// one link of the chain alone, overriding AZURE_TOKEN_CREDENTIALS).
    #[arg(long, value_enum, default_value_t = CredentialArg::ManagedIdentity)]
    credential: CredentialArg,
    /// How to print the token: json (one line), token (bare, for `$(…)`), header
    /// (`Authorization: Bearer …`, for `curl -H @-`), az (`az account get-access-token`'s JSON).
    #[arg(long, value_enum, default_value_t = Output::Json)]
    output: Output,
    /// Skip the cache and ask the source (get-token-with `force-refresh`).
    #[arg(long)]
    force_refresh: bool,
    /// A claims challenge from a resource (get-token-with `claims`): skips the cache.
    #[arg(long, value_name = "JSON")]
    claims: Option<String>,
    /// A client capability such as cp1 (repeatable; sent with claims to Service Fabric).
    #[arg(long = "client-capability", value_name = "NAME")]
    client_capabilities: Vec<String>,
}

/// `azmi token --credential`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CredentialArg {
    /// The `credential` interface: managed identity alone.
    ManagedIdentity,
    /// `default-credential`: the whole chain.
    Default,
    /// The chain's environment credential alone (client secret or certificate).
    Environment,
    /// The chain's workload identity alone.
    WorkloadIdentity,
}

impl CredentialArg {
    /// The `AZURE_TOKEN_CREDENTIALS` value that makes the chain this one link, if any.
    fn token_credentials(self) -> Option<&'static str> {
        match self {
            CredentialArg::Environment => Some("EnvironmentCredential"),
            CredentialArg::WorkloadIdentity => Some("WorkloadIdentityCredential"),
            CredentialArg::ManagedIdentity | CredentialArg::Default => None,
        }
    }
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
            Command::Emulator { port, tls_port } => emulator(port, tls_port).await,
            Command::Demo => demo().await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Doctor(args) => doctor::doctor(args).await,
            Command::Precompile { dir } => precompile(dir),
        }
    });
    result.unwrap_or_else(|e| {
        eprintln!("azmi: {e:#}");
        1
    })
}

/// What `token` and `serve` give the guest from this process: its managed-identity variables
/// (then `extra_env`, passed as given), and real network egress limited to the endpoints that
/// environment names plus `allow_outbound`, trusting the Mozilla roots plus `SSL_CERT_FILE`
/// and Service Fabric's pinned certificate.
fn process_guest(
    extra_env: Vec<(String, String)>,
    allow_outbound: &[String],
) -> anyhow::Result<(Vec<(String, String)>, Egress)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| is_managed_identity_variable(k))
        .collect();
    env.extend(extra_env);
    let cert_file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let mut egress = Egress::network(&env, cert_file.as_deref().map(std::path::Path::new))?;
    if let Egress::Network { allow, .. } = &mut egress {
        for url in allow_outbound {
            allow.allow(url);
        }
    }
    Ok((env, egress))
}

/// A guest as `azmi token` makes it for `credential`: this process's managed-identity
/// variables (plus `AZURE_TOKEN_CREDENTIALS` for a single link), the CLI's egress policy and
/// preopens, the per-user cache unless `no_cache` (or a certificate, whose build keeps its
/// cache in the process). Returns the guest, the cache, and whether calls go through the chain.
async fn cli_guest(
    credential: CredentialArg,
    no_cache: bool,
) -> anyhow::Result<(crate::host::Guest, Option<KeyValue>, bool)> {
    let chain = credential != CredentialArg::ManagedIdentity;
    let extra: Vec<(String, String)> = credential
        .token_credentials()
        .map(|v| {
            (
                azmi::proto::var::AZURE_TOKEN_CREDENTIALS.to_string(),
                v.to_string(),
            )
        })
        .into_iter()
        .collect();
    let (env, egress) = process_guest(extra, &[])?;
    let certificate = uses_certificate(credential, &env);
    let mut config = GuestConfig::new(env, egress);
    if let Some(dir) = std::env::var_os(ARC_TOKENS_DIR_OVERRIDE).filter(|v| !v.is_empty()) {
        config.preopen_at(dir.into(), azmi::proto::ARC_KEY_DIR);
    }
    let cache = (!no_cache && !certificate)
        .then(FileStore::default_dir)
        .flatten()
        .map(|dir| KeyValue::files(FileStore::new(dir)));
    let (host, _) = precompiled::load(cli_build(certificate, cache.is_some()))?;
    config.keyvalue = cache.clone();
    Ok((host.instantiate(config).await?, cache, chain))
}

fn precompile(dir: Option<std::path::PathBuf>) -> anyhow::Result<i32> {
    let dir = dir
        .or_else(precompiled::dir)
        .ok_or_else(|| anyhow::anyhow!("cannot tell this binary's directory; pass --dir"))?;
    for (path, size) in precompiled::precompile(&dir)? {
        println!("{} ({size} bytes)", path.display());
    }
    Ok(0)
}

/// Whether `credential` in `env` signs with a client certificate (the chain, or its
/// environment link, with `AZURE_CLIENT_CERTIFICATE_PATH` set): then the CLI runs the
/// certificate build.
pub(crate) fn uses_certificate(credential: CredentialArg, env: &[(String, String)]) -> bool {
    credential != CredentialArg::ManagedIdentity
        && env
            .iter()
            .any(|(k, v)| k == azmi::proto::var::AZURE_CLIENT_CERTIFICATE_PATH && !v.is_empty())
}

/// The component `azmi token` runs: the certificate build when a certificate is configured
/// (its cache stays in the process), else the shared-cache build with the file cache, else the
/// plain one.
pub(crate) fn cli_build(certificate: bool, file_cache: bool) -> Build {
    match (certificate, file_cache) {
        (true, _) => Build::Certificate,
        (false, true) => Build::Shared,
        (false, false) => Build::Plain,
    }
}

async fn token(args: TokenArgs) -> anyhow::Result<i32> {
    let (mut guest, cache, chain) = cli_guest(args.credential, args.no_cache).await?;
    let request = TokenRequest {
        scope: args.scope.clone(),
        identity: args.identity.selector(),
        force_refresh: args.force_refresh,
        claims: args.claims.clone(),
        client_capabilities: args.client_capabilities.clone(),
        timeout_ms: args.timeout,
        probe: args.probe,
    };
    let mut exit = 0;
    for _ in 0..args.repeat {
        let result = if chain {
            guest.default_get_token_with(&request).await?
        } else {
            guest.get_token_with(&request).await?
        };
        if let Err(e) = print_result_as(&result, args.output) {
            exit = if exit == 0 { e } else { exit };
        }
    }
    for why in cache.iter().flat_map(KeyValue::take_refused) {
        eprintln!("azmi: ignored a token cache file: {why}");
    }
    Ok(exit)
}

async fn emulator(port: u16, tls_port: u16) -> anyhow::Result<i32> {
    // Scratch files the clients need: Arc key files, the federated token, the certificate.
    let work = std::env::temp_dir().join(format!("azmi-emulator-{}", std::process::id()));
    let tokens = work.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let config = Config {
        arc_key_dir: tokens.clone(),
        ..Config::default()
    };
    let federated = work.join("federated-token");
    std::fs::write(&federated, &config.federated_token)?;
    let client_pem = work.join("client-certificate.pem");
    std::fs::write(&client_pem, crate::emulator::CLIENT_CERTIFICATE_PEM)?;
    let cert = TestCertificate::generate()?;
    let pem = work.join("emulator-cert.pem");
    std::fs::write(&pem, &cert.cert_pem)?;
    let emulator = Emulator::new(config.clone());
    let (http, http_server) = emulator.serve(port).await?;
    let (https, https_server) = emulator.serve_tls(tls_port, cert.server_config()?).await?;
    let system = config
        .system
        .as_ref()
        .map(|i| i.client_id.clone())
        .unwrap_or_default();
    let user = config
        .user_assigned
        .first()
        .map(|i| i.client_id.clone())
        .unwrap_or_default();
    let (secret, msi) = (&config.identity_header, &config.msi_secret);
    let lines = [
        format!("azmi emulator listening on http://{http} and https://{https}"),
        format!("  imds: AZURE_POD_IDENTITY_AUTHORITY_HOST=http://{http}"),
        format!(
            "  app_service: IDENTITY_ENDPOINT=http://{http}/msi/token IDENTITY_HEADER={secret}"
        ),
        format!("  app_service_2017: MSI_ENDPOINT=http://{http}/msi/token MSI_SECRET={msi}"),
        format!(
            "  azure_ml: MSI_ENDPOINT=http://{http}/msi/token MSI_SECRET={msi} DEFAULT_IDENTITY_CLIENT_ID={system}"
        ),
        format!("  cloud_shell: MSI_ENDPOINT=http://{http}/oauth2/token"),
        format!(
            "  azure_arc: IDENTITY_ENDPOINT=http://{http}/metadata/identity/oauth2/token IMDS_ENDPOINT=http://{http} {ARC_TOKENS_DIR_OVERRIDE}={}",
            tokens.display()
        ),
        format!(
            "  service_fabric: IDENTITY_ENDPOINT=https://{https}/metadata/identity/oauth2/token IDENTITY_HEADER={secret} IDENTITY_SERVER_THUMBPRINT={}",
            cert.sha1_thumbprint()
        ),
        format!(
            "  workload_identity: AZURE_AUTHORITY_HOST=https://{https} AZURE_TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47 AZURE_CLIENT_ID={user} AZURE_FEDERATED_TOKEN_FILE={} SSL_CERT_FILE={}",
            federated.display(),
            pem.display()
        ),
        format!(
            "  client_secret: AZURE_AUTHORITY_HOST=https://{https} AZURE_TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47 AZURE_CLIENT_ID={system} AZURE_CLIENT_SECRET={} SSL_CERT_FILE={}",
            config.client_secret,
            pem.display()
        ),
        format!(
            "  client_certificate: AZURE_AUTHORITY_HOST=https://{https} AZURE_TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47 AZURE_CLIENT_ID={system} AZURE_CLIENT_CERTIFICATE_PATH={} SSL_CERT_FILE={}",
            client_pem.display(),
            pem.display()
        ),
    ];
    // One write, so a reader that stops after the first line does not break the rest.
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(format!("{}\n", lines.join("\n")).as_bytes())
        .and_then(|()| out.flush());
    drop(out);
    // Ctrl-C or `kill`: either way, stop serving and remove the scratch files.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    http_server.abort();
    https_server.abort();
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "azmi emulator: stopped after {} token requests",
        emulator.token_requests()
    );
    Ok(0)
}

async fn demo() -> anyhow::Result<i32> {
    let emulator = Emulator::new(Config::default());
    let env = vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        DEMO_AUTHORITY.to_string(),
    )];
    let (host, _) = precompiled::load(Build::Plain)?;
    let mut guest = host
        .instantiate(GuestConfig {
            env,
            egress: Egress::emulator(&emulator, DEMO_AUTHORITY),
            preopens: Vec::new(),
            tokio_clock: false,
            keyvalue: None,
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
