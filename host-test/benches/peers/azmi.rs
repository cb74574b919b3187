//! azmi's side of the comparison, in this process: the embedded component in wasmtime, talking
//! to the `azmi emulator` process over loopback exactly as the SDKs do.

use crate::{Measured, SCOPE};
use azmi_host_test::{Egress, GuestConfig, Host, IdentitySelector, TokenError, TokenRequest};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// First tokens (fresh instance each, a new scope each) and cached calls, the emulator as App
/// Service (`app_service` holds `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`).
pub fn with_managed_identity(
    rt: &Runtime,
    host: &Host,
    app_service: &[(String, String)],
    rounds: usize,
    cached_calls: usize,
) -> anyhow::Result<Measured> {
    let egress = Egress::network(app_service, None)?;
    let config = GuestConfig::new(app_service.to_vec(), egress);
    rt.block_on(async {
        let mut first = Vec::new();
        let mut seen = HashSet::new();
        for round in 0..rounds + 3 {
            let scope = format!("https://bench-{round}.example/.default");
            let start = Instant::now();
            let mut guest = host.instantiate(config.clone()).await?;
            let token = guest
                .get_token(&scope, &IdentitySelector::SystemAssigned)
                .await?
                .map_err(|e| anyhow::anyhow!("first token: {e:?}"))?;
            let elapsed = start.elapsed();
            anyhow::ensure!(seen.insert(token.token), "answered from a cache");
            if round >= 3 {
                first.push(elapsed);
            }
        }
        let mut guest = host.instantiate(config.clone()).await?;
        let mut cached = Vec::with_capacity(cached_calls);
        for call in 0..=cached_calls {
            let start = Instant::now();
            let token = guest
                .get_token(SCOPE, &IdentitySelector::SystemAssigned)
                .await?;
            let elapsed = start.elapsed();
            token.map_err(|e| anyhow::anyhow!("cached token: {e:?}"))?;
            if call > 0 {
                cached.push(elapsed);
            }
        }
        Ok(Measured {
            first_token: first,
            cached,
            ..Measured::default()
        })
    })
}

/// Nothing configured, IMDS's connections sent to `closed` (a closed loopback port): five fresh
/// instances with `probe: true` (what a credential chain asks for), then one without, given
/// up after `cap`.
pub fn without_managed_identity(
    rt: &Runtime,
    host: &Host,
    closed: SocketAddr,
    cap: Duration,
) -> anyhow::Result<Measured> {
    let mut egress = Egress::network(&[], None)?;
    egress.connect_imds_to(closed)?;
    let config = GuestConfig::new(Vec::new(), egress);
    let request = |probe| TokenRequest {
        probe,
        ..TokenRequest::system_assigned(SCOPE)
    };
    rt.block_on(async {
        let mut measured = Measured::default();
        for _ in 0..5 {
            let mut guest = host.instantiate(config.clone()).await?;
            let start = Instant::now();
            let result = guest.get_token_with(&request(true)).await?;
            measured.no_mi_probe.push(start.elapsed());
            measured.no_mi_probe_error = describe(result);
        }
        let mut guest = host.instantiate(config.clone()).await?;
        let start = Instant::now();
        let outcome = tokio::time::timeout(cap, guest.get_token_with(&request(false))).await;
        measured.no_mi_alone = Some(start.elapsed());
        match outcome {
            Ok(result) => measured.no_mi_alone_error = describe(result?),
            Err(_) => measured.no_mi_alone_capped = true,
        }
        Ok(measured)
    })
}

/// The error variant's name and the start of its message.
fn describe(result: Result<azmi_host_test::AccessToken, TokenError>) -> String {
    match result {
        Ok(_) => "unexpectedly got a token".into(),
        Err(TokenError::CredentialUnavailable(info)) => {
            format!("CredentialUnavailable: {}", info.message)
        }
        Err(e) => format!("{e:?}"),
    }
}
