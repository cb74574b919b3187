//! Loading `azmi.wasm` once and calling `get-token` on the same instance for the life of the
//! program: the instance holds azmi's token cache (and, with [`Credential::Default`], the
//! chain's choice of credential).

use crate::bindings::{AccessToken, IdentitySelector, ManagedIdentity, TokenRequest};
use crate::egress::{Allowlist, Egress, Timeouts};
use crate::error::TokenError;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Which of azmi's exports [`Plugin::get_token`] calls.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Credential {
    /// `azmi:identity/credential`: the machine's managed identity alone (the default).
    #[default]
    ManagedIdentity,
    /// `azmi:identity/default-credential`: the default chain (`DefaultAzureCredential`): a
    /// service principal's client secret in `AZURE_*`, else workload identity, else managed
    /// identity (with `AZURE_CLIENT_ID` as its user-assigned default). This host preopens no
    /// directory, so a certificate or a federated token file cannot be read.
    Default,
}

/// How the plugin sees the world.
#[derive(Clone, Debug)]
pub struct Config {
    /// The guest's environment: only the managed-identity variables belong here.
    pub env: Vec<(String, String)>,
    /// Where its HTTP requests may go.
    pub allow: Allowlist,
    /// Bounds for its HTTP timeouts.
    pub timeouts: Timeouts,
    /// Which credential [`Plugin::get_token`] uses.
    pub credential: Credential,
}

impl Config {
    /// The managed-identity variables of this process, IMDS plus the endpoints they name,
    /// default timeouts.
    pub fn from_process_env() -> Self {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(name, _)| is_managed_identity_variable(name))
            .collect();
        Config {
            allow: Allowlist::for_managed_identity(&env),
            env,
            timeouts: Timeouts::default(),
            credential: Credential::ManagedIdentity,
        }
    }

    /// This configuration with `credential`; [`Credential::Default`] also lets the guest reach
    /// Entra's authority (`AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com`).
    pub fn with_credential(mut self, credential: Credential) -> Self {
        if credential == Credential::Default {
            self.allow.allow_authority(&self.env);
        }
        self.credential = credential;
        self
    }
}

/// `IDENTITY_*`, `MSI_*`, `AZURE_*`, `IMDS_ENDPOINT`, `DEFAULT_IDENTITY_CLIENT_ID`: what azmi
/// reads. Nothing else of the host's environment (secrets, proxies) reaches the guest.
pub fn is_managed_identity_variable(name: &str) -> bool {
    ["IDENTITY_", "MSI_", "AZURE_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name == "IMDS_ENDPOINT"
        || name == "DEFAULT_IDENTITY_CLIENT_ID"
}

/// One long-lived azmi instance. Calls take `&mut self`: share it behind a `Mutex` (a call
/// served from the cache takes microseconds).
pub struct Plugin {
    store: Store<State>,
    instance: ManagedIdentity,
    credential: Credential,
    sent: Arc<AtomicUsize>,
}

impl Plugin {
    /// Compiles the component at `path` and instantiates it once.
    pub async fn load(path: &Path, config: Config) -> wasmtime::Result<Plugin> {
        let engine = Engine::default();
        let component = Component::from_file(&engine, path)?;
        let mut linker = Linker::new(&engine);
        // All of WASI 0.2 (environment, clocks, random, filesystem) plus wasi:http. The
        // `wasi:http/proxy` linker alone lacks the environment and instantiation fails.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;

        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (name, value) in &config.env {
            wasi.env(name, value);
        }
        let sent = Arc::new(AtomicUsize::new(0));
        let state = State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: Egress::new(config.allow, config.timeouts, sent.clone()),
        };
        let mut store = Store::new(&engine, state);
        let instance = ManagedIdentity::instantiate_async(&mut store, &component, &linker).await?;
        Ok(Plugin {
            store,
            instance,
            credential: config.credential,
            sent,
        })
    }

    /// A token for `scope` (e.g. `https://vault.azure.net/.default`) from the identity
    /// `identity` selects, through the configured [`Credential`]. Repeat calls are served from
    /// the instance's cache until five minutes before expiry. With [`Credential::Default`] the
    /// token's `source` says which credential answered (e.g. `client-secret`, `imds`).
    pub async fn get_token(
        &mut self,
        scope: &str,
        identity: &IdentitySelector,
    ) -> Result<AccessToken, TokenError> {
        let answer = match (self.credential, identity) {
            (Credential::ManagedIdentity, _) => {
                self.instance
                    .azmi_identity_credential()
                    .call_get_token(&mut self.store, scope, identity)
                    .await
            }
            (Credential::Default, IdentitySelector::SystemAssigned) => {
                self.instance
                    .azmi_identity_default_credential()
                    .call_get_token(&mut self.store, scope)
                    .await
            }
            (Credential::Default, _) => {
                let request = TokenRequest {
                    scope: scope.to_string(),
                    identity: identity.clone(),
                    force_refresh: false,
                    claims: None,
                    client_capabilities: Vec::new(),
                    timeout_ms: None,
                    // The chain decides (it probes unless AZURE_TOKEN_CREDENTIALS chose
                    // managed identity alone).
                    probe: false,
                };
                self.instance
                    .azmi_identity_default_credential()
                    .call_get_token_with(&mut self.store, &request)
                    .await
            }
        };
        answer.map_err(TokenError::Trap)?.map_err(TokenError::from)
    }

    /// How many HTTP requests the plugin has let out so far (refused ones do not count).
    pub fn upstream_requests(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Store data: WASI, wasi:http and the egress policy.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: Egress,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}
