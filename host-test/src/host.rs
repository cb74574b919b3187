//! The wasmtime host: compiles the embedded component once and instantiates it with a
//! managed-identity-only environment, read-only preopens and an egress policy.

use crate::bindings::{
    AccessToken, Error, IdentitySelector, ManagedIdentity, ManagedIdentityPre, TokenRequest,
};
use crate::egress::{Egress, Hooks, Refused};
use crate::keyvalue::{KeyValue, KeyValueView};
use azmi::proto::is_managed_identity_variable;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The azmi component, built by `build.rs` (profile `component`, `wasm32-wasip2`).
pub const COMPONENT: &[u8] = include_bytes!(env!("AZMI_COMPONENT_PATH"));
/// The shared-cache build (`managed-identity-shared`: tokens shared through wasi:keyvalue).
pub const SHARED_COMPONENT: &[u8] = include_bytes!(env!("AZMI_SHARED_COMPONENT_PATH"));
/// The build with certificate support (`managed-identity` + the `client-certificate` feature:
/// the default chain's environment credential can sign with `AZURE_CLIENT_CERTIFICATE_PATH`).
pub const CERTIFICATE_COMPONENT: &[u8] = include_bytes!(env!("AZMI_CERTIFICATE_COMPONENT_PATH"));

/// Read-only directories the guest may see at the same path, when they exist: Arc's key
/// directory (where the agent writes the challenge key) and the Arc agent's directory (its
/// `himds` binary is how the guest tells that the agent is installed; the host directory
/// behind it is [`arc_agent_dir`]).
pub const PREOPEN_DIRS: [&str; 2] = ["/var/opt/azcmagent/tokens", ARC_AGENT_DIR];

/// Where the Arc agent is installed; its `himds` binary there means Azure Arc.
pub const ARC_AGENT_DIR: &str = "/opt/azcmagent/bin";

/// Test knob: a host directory that stands in for [`ARC_AGENT_DIR`] (preopened in its place,
/// and where the CLI's allowlist looks for `himds`), so the machine's own Arc agent never
/// changes a test's outcome. Never passed to the component.
pub const ARC_AGENT_DIR_OVERRIDE: &str = "AZMI_ARC_AGENT_DIR";

/// The host directory behind [`ARC_AGENT_DIR`]: the one [`ARC_AGENT_DIR_OVERRIDE`] names when
/// this process has it set and non-empty, else [`ARC_AGENT_DIR`] itself.
pub fn arc_agent_dir() -> PathBuf {
    std::env::var_os(ARC_AGENT_DIR_OVERRIDE)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(ARC_AGENT_DIR), PathBuf::from)
}

/// A compiled component, ready to instantiate many times.
#[derive(Clone)]
pub struct Host {
    pre: ManagedIdentityPre<GuestState>,
}

/// How one guest instance sees the world.
#[derive(Clone)]
pub struct GuestConfig {
    /// Environment variables offered to the guest; only managed-identity ones pass.
    pub env: Vec<(String, String)>,
    /// Where its HTTP requests go.
    pub egress: Egress,
    /// `(host directory, guest path)` pairs, preopened read-only.
    pub preopens: Vec<(PathBuf, String)>,
    /// Give the guest wall and monotonic clocks that follow tokio's clock, so a test runtime
    /// started paused runs the guest's retry back-off and timers in virtual time
    /// (wasmtime-wasi already sleeps on tokio timers).
    pub tokio_clock: bool,
    /// The key-value store behind the `azmi-tokens` bucket (shared-cache component), if any.
    pub keyvalue: Option<KeyValue>,
}

impl GuestConfig {
    /// A config with `env` and `egress` and the standard preopens that exist on this machine
    /// ([`PREOPEN_DIRS`], the agent's through [`arc_agent_dir`]), plus the federated token
    /// file's directory, when set.
    pub fn new(env: Vec<(String, String)>, egress: Egress) -> Self {
        let mut preopens: Vec<(PathBuf, String)> = PREOPEN_DIRS
            .iter()
            .map(|d| match *d {
                ARC_AGENT_DIR => (arc_agent_dir(), d.to_string()),
                _ => (PathBuf::from(d), d.to_string()),
            })
            .collect();
        // The directories of the files a source reads: the federated token, the certificate.
        for (_, file) in env.iter().filter(|(k, v)| {
            !v.is_empty()
                && (k == azmi::proto::var::AZURE_FEDERATED_TOKEN_FILE
                    || k == azmi::proto::var::AZURE_CLIENT_CERTIFICATE_PATH)
        }) {
            if let Some(dir) = std::path::Path::new(file).parent() {
                preopens.push((dir.to_path_buf(), dir.display().to_string()));
            }
        }
        preopens.retain(|(dir, _)| dir.is_dir());
        Self {
            env,
            egress,
            preopens,
            tokio_clock: false,
            keyvalue: None,
        }
    }
}

impl GuestConfig {
    /// Preopens host directory `dir` read-only at `guest_path`, replacing any preopen there.
    pub fn preopen_at(&mut self, dir: PathBuf, guest_path: &str) {
        self.preopens.retain(|(_, g)| g != guest_path);
        self.preopens.push((dir, guest_path.to_string()));
    }
}

impl Host {
    /// Compiles the embedded component.
    pub fn new() -> wasmtime::Result<Self> {
        Self::from_bytes(COMPONENT)
    }

    /// Compiles the embedded shared-cache component.
    pub fn shared() -> wasmtime::Result<Self> {
        Self::from_bytes(SHARED_COMPONENT)
    }

    /// Compiles the embedded component with certificate support.
    pub fn with_certificates() -> wasmtime::Result<Self> {
        Self::from_bytes(CERTIFICATE_COMPONENT)
    }

    /// Compiles `wasm` (a component exporting `azmi:identity/credential`).
    ///
    /// The engine has `concurrency_support` off: azmi is a WASI 0.2 component (no
    /// component-model async), and with it on every `call_async` runs wasmtime's concurrent
    /// event loop and every import call allocates a host task: a cached `get-token` costs
    /// about twice as much (`just bench`).
    pub fn from_bytes(wasm: &[u8]) -> wasmtime::Result<Self> {
        let engine = Self::new_engine()?;
        let component = Component::new(&engine, wasm)?;
        Self::from_component(&engine, &component)
    }

    /// The engine every host uses (and [`crate::precompiled`] compiles for: a precompiled
    /// component loads only into an engine configured the same way).
    pub fn new_engine() -> wasmtime::Result<Engine> {
        let mut config = wasmtime::Config::new();
        config.concurrency_support(false);
        Engine::new(&config)
    }

    /// A host for a component already compiled (or deserialized) for `engine`.
    pub fn from_component(engine: &Engine, component: &Component) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        add_keyvalue_to_linker(&mut linker)?;
        let pre = ManagedIdentityPre::new(linker.instantiate_pre(component)?)?;
        Ok(Self { pre })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    /// A fresh instance (its own cache) configured by `config`.
    pub async fn instantiate(&self, config: GuestConfig) -> wasmtime::Result<Guest> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        let env: Vec<(String, String)> = config
            .env
            .into_iter()
            .filter(|(k, _)| is_managed_identity_variable(k))
            .collect();
        for (k, v) in &env {
            wasi.env(k, v);
        }
        if config.tokio_clock {
            wasi.wall_clock(TokioWallClock::new());
            wasi.monotonic_clock(TokioMonotonicClock::default());
        }
        for (dir, guest_path) in &config.preopens {
            wasi.preopened_dir(dir, guest_path, FsPerms::ReadOnly)?;
        }
        let refused = Arc::new(Mutex::new(Vec::new()));
        let mut state = GuestState::new(wasi.build(), Hooks::new(config.egress, refused.clone()));
        state.keyvalue = config.keyvalue;
        let mut store = Store::new(self.engine(), state);
        let bindings = self.pre.instantiate_async(&mut store).await?;
        Ok(Guest {
            store,
            bindings,
            refused,
            env,
        })
    }
}

/// Adds `wasi:keyvalue` (store, atomics) on [`GuestState::keyvalue`] to `linker`.
pub fn add_keyvalue_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    crate::keyvalue::add_to_linker(linker, |state: &mut GuestState| KeyValueView {
        store: state.keyvalue.as_ref(),
        table: &mut state.table,
    })
}

/// One component instance.
pub struct Guest {
    store: Store<GuestState>,
    bindings: ManagedIdentity,
    refused: Arc<Mutex<Vec<Refused>>>,
    env: Vec<(String, String)>,
}

impl Guest {
    /// The environment variables this guest was given: the managed-identity ones of its
    /// config, nothing else.
    pub fn environment(&self) -> &[(String, String)] {
        &self.env
    }

    /// Calls `get-token`. The outer error is a trap; the inner one the component's answer.
    pub async fn get_token(
        &mut self,
        scope: &str,
        identity: &IdentitySelector,
    ) -> wasmtime::Result<Result<AccessToken, Error>> {
        self.bindings
            .azmi_identity_credential()
            .call_get_token(&mut self.store, scope, identity)
            .await
    }

    /// Calls `get-token-with`.
    pub async fn get_token_with(
        &mut self,
        request: &TokenRequest,
    ) -> wasmtime::Result<Result<AccessToken, Error>> {
        self.bindings
            .azmi_identity_credential()
            .call_get_token_with(&mut self.store, request)
            .await
    }

    /// Calls `default-credential.get-token-with` (the chain: environment, workload identity,
    /// managed identity).
    pub async fn default_get_token_with(
        &mut self,
        request: &TokenRequest,
    ) -> wasmtime::Result<Result<AccessToken, Error>> {
        self.bindings
            .azmi_identity_default_credential()
            .call_get_token_with(&mut self.store, request)
            .await
    }

    /// Destinations the host refused for this guest.
    pub fn refused(&self) -> Vec<Refused> {
        self.refused.lock().unwrap().clone()
    }
}

/// Store data: WASI, wasi:http and the egress hooks (for `azmi.wasm` and for the components
/// `azmi serve` runs).
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
    /// The store behind `wasi:keyvalue`, if this guest gets one.
    pub keyvalue: Option<KeyValue>,
}

impl GuestState {
    /// Store data with `wasi` and the egress `hooks`.
    pub fn new(wasi: WasiCtx, hooks: Hooks) -> Self {
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            keyvalue: None,
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A wall clock that starts at the real time and then advances with `tokio::time` (paused
/// in tests, so back-off sleeps take no real time).
struct TokioWallClock {
    start: std::time::Duration,
    origin: tokio::time::Instant,
}

impl TokioWallClock {
    fn new() -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl wasmtime_wasi::HostWallClock for TokioWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }

    fn now(&self) -> std::time::Duration {
        self.start + self.origin.elapsed()
    }
}

/// A monotonic clock that advances with `tokio::time`, so the guest's own timers (the
/// whole-response bound) agree with the paused test clock its sleeps already follow.
struct TokioMonotonicClock {
    origin: tokio::time::Instant,
}

impl Default for TokioMonotonicClock {
    fn default() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl wasmtime_wasi::HostMonotonicClock for TokioMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
