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
    },
}

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
    pub fn network(
        env: &[(String, String)],
        ssl_cert_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Egress> {
        Ok(Egress::Network {
            allow: Allowlist::from_env(env),
            tls: tls_config(ssl_cert_file)?,
            pins: tls::service_fabric_pin(env)?.into_iter().collect(),
        })
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
