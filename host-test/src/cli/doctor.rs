//! `azmi doctor`: what this machine looks like to azmi, without printing a token — the
//! credential and source detection chooses and the variables that decided it (secret values
//! masked), the endpoint, the selectors that source honours, what the host allows and
//! preopens, whether something answers at the endpoint (a TCP connect, timed), and one
//! verdict with the fix. `--fetch` also gets a token and reports its lifetime and refresh
//! time. Exit codes follow the verdict: 0 ok, 2 unavailable or unreachable, 3 misconfigured.

use super::{CredentialArg, cli_guest, process_guest};
use crate::bindings::TokenRequest;
use crate::egress::Egress;
use crate::host::GuestConfig;
use azmi::proto::{
    DefaultChain, EnvSnapshot, ErrorClass, HostFacts, IdentitySelector, Link, ManagedIdentity,
    SelectorKind, Source, detected,
};
use clap::Args;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `azmi doctor`'s options.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The scope to check (and to fetch with --fetch).
    #[arg(long, default_value = "https://management.azure.com/.default")]
    scope: String,
    /// Which credential to check, as `azmi token --credential`.
    #[arg(long, value_enum, default_value_t = CredentialArg::ManagedIdentity)]
    credential: CredentialArg,
    /// One JSON object instead of text, for tools.
    #[arg(long)]
    json: bool,
    /// Also get a token (never printed) and report its source, lifetime and refresh time.
    #[arg(long)]
    fetch: bool,
}

/// Variables whose values are secrets: shown as set, with their length only.
const SECRETS: [&str; 5] = [
    "IDENTITY_HEADER",
    "MSI_SECRET",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
];

/// How long the reachability check waits for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs `azmi doctor` and returns the exit code.
pub async fn doctor(args: DoctorArgs) -> anyhow::Result<i32> {
    let (env, egress) = process_guest(Vec::new(), &[])?;
    let snapshot = EnvSnapshot::from_pairs(env.iter().cloned());
    let facts = HostFacts {
        arc_agent_present: crate::host::arc_agent_dir().join("himds").exists(),
        no_file_access: false,
    };
    let variables: Vec<Value> = env
        .iter()
        .map(|(name, value)| match SECRETS.contains(&name.as_str()) {
            true => json!({"name": name, "value": format!("<set, {} characters>", value.len())}),
            false => json!({"name": name, "value": value}),
        })
        .collect();
    let link = choose_link(args.credential, &snapshot, facts, &args.scope);
    let mut report = json!({
        "credential": link.as_ref().map_or("none", |(l, _)| l.name()),
        "variables": variables,
        "preopens": GuestConfig::new(env.clone(), egress.clone()).preopens.iter().map(|(_, g)| g.clone()).collect::<Vec<_>>(),
        "allowed": match &egress { Egress::Network { allow, .. } => allow.authorities().to_vec(), Egress::Emulator { .. } => Vec::new() },
    });
    let (verdict, exit) = match link {
        Err(error) => (
            format!("misconfigured or unavailable: {}", error.message()),
            exit_for(error.class()),
        ),
        Ok((link, check)) => match detected(link, &snapshot, facts, SelectorKind::SystemAssigned) {
            Err(error) => (
                format!("misconfigured: {}", error.message()),
                exit_for(error.class()),
            ),
            Ok((source, endpoint, variable)) => {
                report["source"] = json!(source.id());
                report["selected_by"] = json!(source.variables());
                report["endpoint"] = json!(format!(
                    "{}://{}{} (from {variable})",
                    endpoint.scheme.as_str(),
                    endpoint.authority,
                    endpoint.path
                ));
                report["selectors"] = json!(selectors(source));
                let (reached, ok) =
                    reach(&egress, endpoint.scheme.as_str(), &endpoint.authority).await;
                let why = reached["result"].as_str().unwrap_or_default().to_string();
                report["reachable"] = reached;
                match (check, ok) {
                    (Err(error), _) => (
                        format!("misconfigured: {}", error.message()),
                        exit_for(error.class()),
                    ),
                    (Ok(()), false) => (
                        format!(
                            "unreachable: nothing answers at {} ({why}); run this on the Azure resource, or check the endpoint variable",
                            endpoint.authority
                        ),
                        2,
                    ),
                    (Ok(()), true) => (
                        format!("ok: {} at {}", source.name(), endpoint.authority),
                        0,
                    ),
                }
            }
        },
    };
    report["verdict"] = json!(verdict);
    report["component"] = component(args.credential, &env);
    let mut exit = exit;
    if args.fetch && exit == 0 {
        let (fetched, code) = fetch(&args).await?;
        report["fetch"] = fetched;
        exit = code;
    }
    print(&report, args.json);
    Ok(exit)
}

/// The link `credential` would use, with the core's verdict on it (as the Envoy filter
/// chooses: the first link the chain selects that is configured here).
fn choose_link(
    credential: CredentialArg,
    env: &EnvSnapshot,
    facts: HostFacts,
    scope: &str,
) -> Result<(Link, Result<(), azmi::proto::Error>), azmi::proto::Error> {
    let selector = IdentitySelector::SystemAssigned;
    let single = match credential {
        CredentialArg::ManagedIdentity => Some(Link::ManagedIdentity),
        CredentialArg::Environment => Some(Link::Environment),
        CredentialArg::WorkloadIdentity => Some(Link::WorkloadIdentity),
        CredentialArg::Default => None,
    };
    if let Some(link) = single {
        return Ok((
            link,
            ManagedIdentity::check_link(env, facts, scope, &selector, link),
        ));
    }
    let links = DefaultChain::links(env)?;
    let mut skipped = Vec::new();
    for link in links.iter() {
        let (link_selector, _) = links.for_link(link, &selector, false);
        match ManagedIdentity::check_link(env, facts, scope, link_selector, link) {
            Err(e) if e.class() == ErrorClass::CredentialUnavailable => skipped.push((link, e)),
            other => return Ok((link, other)),
        }
    }
    Err(DefaultChain::exhausted(&skipped))
}

/// How `azmi token` would get the component it runs: a precompiled file (milliseconds) or
/// compiled at start (≈ 0.1 s), and why. Nothing is compiled to find out.
fn component(credential: CredentialArg, env: &[(String, String)]) -> Value {
    let build = super::cli_build(super::uses_certificate(credential, env), true);
    match crate::host::Host::new_engine() {
        Err(e) => json!(format!("cannot be loaded: {e:#}")),
        Ok(engine) => match crate::precompiled::find(&engine, build) {
            Ok((_, path)) => json!(format!("precompiled: {}", path.display())),
            Err(why) => json!(format!("compiled at every start: {why}")),
        },
    }
}

fn selectors(source: Source) -> Vec<&'static str> {
    [
        (SelectorKind::SystemAssigned, "system-assigned"),
        (SelectorKind::ClientId, "client id"),
        (SelectorKind::ObjectId, "object id"),
        (SelectorKind::ResourceId, "resource id"),
    ]
    .into_iter()
    .filter(|(kind, _)| source.honours(*kind))
    .map(|(_, name)| name)
    .collect()
}

/// A timed TCP connect to where the host would send the request.
async fn reach(egress: &Egress, scheme: &str, authority: &str) -> (Value, bool) {
    let address = egress.connect_address(scheme, authority);
    let start = Instant::now();
    let result =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address)).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let (text, ok) = match result {
        Ok(Ok(_)) => ("connected".to_string(), true),
        Ok(Err(e)) => (e.to_string(), false),
        Err(_) => (
            format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            false,
        ),
    };
    (
        json!({"address": address, "result": text, "ms": (ms * 10.0).round() / 10.0}),
        ok,
    )
}

/// Gets a token as `azmi token` would (no cache) and reports it without the token.
async fn fetch(args: &DoctorArgs) -> anyhow::Result<(Value, i32)> {
    let (mut guest, _, chain) = cli_guest(args.credential, true).await?;
    let request = TokenRequest {
        timeout_ms: Some(30_000),
        ..TokenRequest::system_assigned(&args.scope)
    };
    let start = Instant::now();
    let result = if chain {
        guest.default_get_token_with(&request).await?
    } else {
        guest.get_token_with(&request).await?
    };
    let ms = start.elapsed().as_millis();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(match result {
        Ok(token) => (
            json!({"ok": true, "source": token.source.id(), "ms": ms, "expires_on": token.expires_on,
                   "lifetime_s": token.expires_on.saturating_sub(now), "refresh_on": token.refresh_on}),
            0,
        ),
        Err(error) => {
            let code = match error.class() {
                "credential_unavailable" => 2,
                "invalid_argument" => 4,
                _ => 3,
            };
            (
                json!({"ok": false, "error": error.class(), "message": error.message(), "ms": ms}),
                code,
            )
        }
    })
}

fn exit_for(class: ErrorClass) -> i32 {
    match class {
        ErrorClass::CredentialUnavailable => 2,
        ErrorClass::AuthenticationFailed => 3,
        ErrorClass::InvalidArgument => 4,
    }
}

fn print(report: &Value, as_json: bool) {
    if as_json {
        println!("{report}");
        return;
    }
    let field = |k: &str| {
        report
            .get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
    };
    for key in ["credential", "source", "selected_by", "endpoint"] {
        if let Some(value) = field(key) {
            println!("{key:<12} {value}");
        }
    }
    if let Some(list) = report["selectors"].as_array() {
        let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        println!("{:<12} {}", "selectors", names.join(", "));
    }
    for v in report["variables"].as_array().into_iter().flatten() {
        println!(
            "{:<12} {}={}",
            "variable",
            v["name"].as_str().unwrap_or_default(),
            v["value"].as_str().unwrap_or_default()
        );
    }
    for (key, label) in [("allowed", "allowed"), ("preopens", "preopened")] {
        let list: Vec<&str> = report[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{label:<12} {}",
            if list.is_empty() {
                "nothing".to_string()
            } else {
                list.join(", ")
            }
        );
    }
    if let Some(reach) = report.get("reachable") {
        println!(
            "{:<12} {} {} in {} ms",
            "reachable",
            reach["address"].as_str().unwrap_or_default(),
            reach["result"].as_str().unwrap_or_default(),
            reach["ms"]
        );
    }
    if let Some(component) = field("component") {
        println!("{:<12} {component}", "component");
    }
    if let Some(fetch) = report.get("fetch") {
        println!("{:<12} {fetch}", "fetch");
    }
    println!("{:<12} {}", "verdict", field("verdict").unwrap_or_default());
}
