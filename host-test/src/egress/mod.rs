//! Where the guest's `wasi:http` requests go: the in-memory emulator (tests, demo) or the
//! network through an allowlist (the CLI). Every other destination is refused here, in the
//! host, whatever the guest asks for.
//!
//! [`Allowlist`] holds the permitted `host:port` pairs, [`Hooks`] enforces the policy (and the
//! guest's timeouts and the response size cap) on every request, and [`tls_config`] and
//! [`pinned_tls`] build the rustls client settings: the Mozilla roots plus `SSL_CERT_FILE`, or
//! Service Fabric's pinned certificate.

mod allowlist;
mod hooks;
mod tls;

pub use allowlist::Allowlist;
pub use hooks::{Hooks, Refused};
pub use tls::{pinned_tls, refusal, tls_config};

use crate::emulator::Emulator;
use std::net::SocketAddr;
use std::sync::Arc;

/// The routing policy for one guest.
#[derive(Clone)]
pub enum Egress {
    /// Serve requests to `authorities` from the emulator in memory; refuse the rest.
    Emulator {
        /// The emulator.
        emulator: Emulator,
        /// `host:port` values that reach it (e.g. `127.0.0.1:4010`).
        authorities: Allowlist,
    },
    /// Real HTTP(S) to allowed authorities only.
    Network {
        /// Allowed destinations.
        allow: Allowlist,
        /// TLS client settings (Mozilla roots plus `SSL_CERT_FILE`).
        tls: Arc<rustls::ClientConfig>,
        /// `host:port` → TLS settings pinned to a certificate thumbprint (Service Fabric).
        pins: Vec<(String, Arc<rustls::ClientConfig>)>,
        /// `host:port` → the loopback socket to connect to instead (tests only; see
        /// [`IMDS_ADDRESS_OVERRIDE`]).
        connect_to: Vec<(String, SocketAddr)>,
    },
}

/// Test knob read by [`Egress::network`]: a `127.x.y.z:port` where connections for IMDS
/// (`169.254.169.254:80`) go instead, so tests send the real IMDS probe and token request to
/// a loopback listener; the guest still asks for `169.254.169.254`. Never passed to the
/// component; any other address is refused.
pub const IMDS_ADDRESS_OVERRIDE: &str = "AZMI_IMDS_ADDRESS";

/// IMDS's `host:port`.
const IMDS_AUTHORITY: &str = "169.254.169.254:80";

impl Egress {
    /// Requests to `url`'s authority (e.g. `http://127.0.0.1:4010`) are answered by
    /// `emulator` in memory; every other destination is refused.
    pub fn emulator(emulator: &Emulator, url: &str) -> Egress {
        let mut authorities = Allowlist::default();
        authorities.allow(url);
        Egress::Emulator {
            emulator: emulator.clone(),
            authorities,
        }
    }

    /// The CLI's policy for a managed-identity environment `env`: the allowlist of
    /// [`Allowlist::from_env`], the Mozilla roots plus `ssl_cert_file`, and Service Fabric's
    /// endpoint pinned to `IDENTITY_SERVER_THUMBPRINT` (that one authority only).
    ///
    /// When this process has [`IMDS_ADDRESS_OVERRIDE`] set, IMDS's connections go there.
    pub fn network(
        env: &[(String, String)],
        ssl_cert_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Egress> {
        let mut egress = Egress::Network {
            allow: Allowlist::from_env(env),
            tls: tls_config(ssl_cert_file)?,
            pins: tls::service_fabric_pin(env)?.into_iter().collect(),
            connect_to: Vec::new(),
        };
        if let Some(address) = std::env::var_os(IMDS_ADDRESS_OVERRIDE).filter(|v| !v.is_empty()) {
            let address = address.to_string_lossy();
            let address: SocketAddr = address.parse().map_err(|e| {
                anyhow::anyhow!("{IMDS_ADDRESS_OVERRIDE}={address}: not an ip:port ({e})")
            })?;
            egress.connect_imds_to(address)?;
        }
        Ok(egress)
    }

    /// Connections for IMDS (`169.254.169.254:80`) go to `address` instead, which must be on
    /// 127.0.0.0/8 (a test's listener). Network egress only.
    pub fn connect_imds_to(&mut self, address: SocketAddr) -> anyhow::Result<()> {
        let loopback = matches!(address.ip(), std::net::IpAddr::V4(ip) if ip.is_loopback());
        anyhow::ensure!(
            loopback,
            "IMDS can only be redirected to 127.0.0.0/8, not {address}"
        );
        let Egress::Network { connect_to, .. } = self else {
            anyhow::bail!("only network egress connects anywhere");
        };
        connect_to.retain(|(a, _)| a != IMDS_AUTHORITY);
        connect_to.push((IMDS_AUTHORITY.to_string(), address));
        Ok(())
    }

    /// Where a network request to `scheme://authority` connects: `host:port`, or the socket
    /// [`Egress::connect_imds_to`] put in its place.
    pub fn connect_address(&self, scheme: &str, authority: &str) -> String {
        let key = allowlist::with_port(&authority.to_ascii_lowercase(), scheme);
        match self {
            Egress::Network { connect_to, .. } => connect_to
                .iter()
                .find(|(a, _)| *a == key)
                .map_or(key, |(_, address)| address.to_string()),
            Egress::Emulator { .. } => key,
        }
    }
}

impl Egress {
    /// The TLS settings a network request to `scheme://authority` uses: Service Fabric's pin
    /// for its endpoint's `host:port`, the general settings for every other `https`
    /// authority; `None` for plain HTTP and for the in-memory emulator.
    pub fn tls_for(&self, scheme: &str, authority: &str) -> Option<Arc<rustls::ClientConfig>> {
        let Egress::Network { tls, pins, .. } = self else {
            return None;
        };
        if scheme != "https" {
            return None;
        }
        let key = allowlist::with_port(&authority.to_ascii_lowercase(), scheme);
        let config = pins
            .iter()
            .find(|(a, _)| *a == key)
            .map_or(tls, |(_, pinned)| pinned);
        Some(config.clone())
    }
}

/// The value of the last non-empty `name` in `env` (a later entry overrides an earlier one).
fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}
