//! The plumbing under [`crate::boundary`]: engines, linkers, store data as `Host` builds
//! it, and one instance with typed exports, entered with `call` or `call_async`.

use crate::{EMU, SCOPE};
use azmi_host_test::egress::Hooks;
use azmi_host_test::emulator::Emulator;
use azmi_host_test::host::GuestState;
use azmi_host_test::{AccessToken, Egress, GuestConfig, IdentitySelector, TokenError};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::runtime::Runtime;
use wasmtime::component::{
    Component, ComponentNamedList, Instance, Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// `get-token`'s parameters, as bindgen lowers them.
pub type TokenParams = (&'static str, &'static IdentitySelector);
/// `get-token`'s result.
pub type TokenResult = (Result<AccessToken, TokenError>,);

/// The selector every call uses.
pub static SYSTEM: IdentitySelector = IdentitySelector::SystemAssigned;

/// How the host enters the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `TypedFunc::call_async` over the async WASI/wasi:http imports.
    Async,
    /// `TypedFunc::call` over the sync (`in_tokio`-blocking) WASI/wasi:http imports.
    Sync,
}

/// The engine, default but for `concurrency_support`.
pub fn engine(concurrency: bool) -> Engine {
    let mut config = Config::new();
    config.concurrency_support(concurrency);
    Engine::new(&config).expect("engine")
}

/// WASI and wasi:http, async or sync, as `Host` links them.
pub fn linker(engine: &Engine, how: Call) -> Linker<GuestState> {
    let mut linker = Linker::new(engine);
    match how {
        Call::Async => {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).expect("http");
        }
        Call::Sync => {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
            wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).expect("http");
        }
    }
    linker
}

/// A guest config routed to `emulator` in memory, as the host tests use.
pub fn guest_config(emulator: &Emulator) -> GuestConfig {
    GuestConfig {
        env: env(),
        egress: egress(emulator),
        preopens: Vec::new(),
        tokio_clock: false,
        keyvalue: None,
    }
}

fn env() -> Vec<(String, String)> {
    vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), EMU.into())]
}

fn egress(emulator: &Emulator) -> Egress {
    Egress::emulator(emulator, EMU)
}

/// Store data as `Host::instantiate` builds it (no preopens), optionally with `clock`.
pub fn state(emulator: &Emulator, clock: Option<CountingClock>) -> GuestState {
    let mut wasi: WasiCtxBuilder = WasiCtx::builder();
    wasi.inherit_stderr();
    for (k, v) in env() {
        wasi.env(k, v);
    }
    if let Some(clock) = clock {
        wasi.wall_clock(clock);
    }
    let refused = Arc::new(Mutex::new(Vec::new()));
    GuestState::new(wasi.build(), Hooks::new(egress(emulator), refused))
}

/// One instance, entered one way.
pub struct Bench {
    /// The store.
    pub store: Store<GuestState>,
    instance: Instance,
    how: Call,
}

impl Bench {
    /// Instantiates `component` with `linker` (`instantiate_async` for [`Call::Async`]).
    pub fn new(
        rt: &Runtime,
        linker: &Linker<GuestState>,
        component: &Component,
        how: Call,
        state: GuestState,
    ) -> Bench {
        let mut store = Store::new(component.engine(), state);
        let instance = match how {
            Call::Async => rt.block_on(linker.instantiate_async(&mut store, component)),
            Call::Sync => linker.instantiate(&mut store, component),
        }
        .expect("instantiating");
        Bench {
            store,
            instance,
            how,
        }
    }

    /// The export `name` (inside `interface`, if given), typed.
    pub fn func<P, R>(&mut self, interface: Option<&str>, name: &str) -> TypedFunc<P, R>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let parent = interface.map(|i| {
            self.instance
                .get_export_index(&mut self.store, None, i)
                .expect("the exported interface")
        });
        let index = self
            .instance
            .get_export_index(&mut self.store, parent.as_ref(), name)
            .expect("the export");
        self.instance
            .get_typed_func(&mut self.store, index)
            .expect("the export's type")
    }

    /// One call of `func`; panics unless it returns a token (the first fetches it).
    pub fn check_token(&mut self, rt: &Runtime, func: &TypedFunc<TokenParams, TokenResult>) {
        let (result,) = self.call(rt, func, (SCOPE, &SYSTEM)).expect("no trap");
        if let Err(e) = result {
            panic!("expected a token: {e:?}");
        }
    }

    /// One call of `func`, entered as this bench enters.
    pub fn call<P, R>(
        &mut self,
        rt: &Runtime,
        func: &TypedFunc<P, R>,
        params: P,
    ) -> wasmtime::Result<R>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift + 'static,
    {
        match self.how {
            Call::Async => rt.block_on(func.call_async(&mut self.store, params)),
            Call::Sync => func.call(&mut self.store, params),
        }
    }

    /// `n` calls of `func` with `params`; traps panic.
    pub fn run<P, R>(&mut self, rt: &Runtime, func: &TypedFunc<P, R>, params: P, n: u64)
    where
        P: ComponentNamedList + Lower + Copy,
        R: ComponentNamedList + Lift + 'static,
    {
        match self.how {
            Call::Async => rt.block_on(async {
                for _ in 0..n {
                    let result = func.call_async(&mut self.store, params).await;
                    black_box(result.expect("no trap"));
                }
            }),
            Call::Sync => {
                for _ in 0..n {
                    black_box(func.call(&mut self.store, params).expect("no trap"));
                }
            }
        }
    }
}

/// A wall clock that counts its reads.
pub struct CountingClock(pub Arc<AtomicU64>);

impl wasmtime_wasi::HostWallClock for CountingClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }

    fn now(&self) -> std::time::Duration {
        self.0.fetch_add(1, Ordering::Relaxed);
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}
