//! `get-token` through the component boundary with a cached token, every way wasmtime 48
//! lets the host call it: the shipped `Guest::get_token` (bindgen `call_async`), and a
//! `TypedFunc` with `call_async` or `call`, with `Config::concurrency_support` on (the
//! default) or off. Each row has floors next to it: the [`stub`] component's exports, called
//! the same way on the same engine.
//!
//! [`stub`]: crate::stub

use crate::rig::{
    Bench, Call, CountingClock, SYSTEM, TokenParams, TokenResult, engine, guest_config, linker,
    state,
};
use crate::{SCOPE, alloc, stub, timing};
use azmi_host_test::emulator::{Config as EmulatorConfig, Emulator};
use azmi_host_test::host::GuestState;
use azmi_host_test::{Guest, Host};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Runtime;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// The exported interface holding `get-token` in azmi.wasm.
const INTERFACE: &str = "azmi:identity/credential@0.2.0";

/// The stub's exports timed on one engine and call path (per-call stats).
pub struct Floors {
    /// `nop`: enter and leave.
    pub nop: timing::Stats,
    /// `take-scope`: plus lowering the scope string.
    pub scope: timing::Stats,
    /// `get-token`: azmi's signature, no work.
    pub token: timing::Stats,
    /// `get-token-clock`: plus one wall-clock import call.
    pub clock: timing::Stats,
}

/// One measured way of calling.
pub struct Row {
    /// How it was called.
    pub label: String,
    /// azmi.wasm, cached token: per-call time, or why this way cannot call it.
    pub real: Result<timing::Stats, String>,
    /// Host allocations per call on that path.
    pub allocations: f64,
    /// The stub, called the same way.
    pub floors: Option<Floors>,
}

/// What a cached call costs, every way.
pub struct Boundary {
    /// The shipped path first, then the `TypedFunc` variants.
    pub rows: Vec<Row>,
    /// Wall-clock reads per cached call (the only import the cached path should make).
    pub clock_reads: f64,
    /// The token's length (the stub returns one as long).
    pub token_len: usize,
    /// The stub's `get-token` on the fastest path with a [`LONG_TOKEN`]-byte token.
    pub long_token: timing::Stats,
    /// The same with the emulator's token, for comparison.
    pub short_token: timing::Stats,
    /// `SystemTime::now()` natively: the clock read inside the wall-clock import.
    pub native_clock: timing::Stats,
}

/// A typical Entra access token's length (a JWT of 1.5–2.5 KB).
pub const LONG_TOKEN: usize = 2_000;

/// Measures every row for `wasm`. `rt` is a current-thread runtime; sync rows run outside it.
pub fn measure(rt: &Runtime, wasm: &[u8], samples: usize, batch: u64) -> Boundary {
    let emulator = Emulator::new(EmulatorConfig::default());
    let host = Host::from_bytes(wasm).expect("compiling azmi.wasm");
    let mut guest = rt
        .block_on(host.instantiate(guest_config(&emulator)))
        .expect("instantiating azmi.wasm");
    let token = rt
        .block_on(guest.get_token(SCOPE, &SYSTEM))
        .expect("no trap")
        .expect("a token from the emulator");
    let stub = stub::wat(
        &token.token,
        token.expires_on,
        token.refresh_on.unwrap_or(token.expires_on),
    );
    let mut rows = vec![shipped(rt, &host, guest, &stub, samples, batch)];
    for concurrency in [true, false] {
        let engine = engine(concurrency);
        let component = Component::new(&engine, wasm).expect("compiling azmi.wasm");
        for how in [Call::Async, Call::Sync] {
            let linker = linker(&engine, how);
            let mut real = Bench::new(rt, &linker, &component, how, state(&emulator, None));
            let func = real.func::<TokenParams, TokenResult>(Some(INTERFACE), "get-token");
            real.check_token(rt, &func);
            let allocations = alloc::per_call(1_000, |n| real.run(rt, &func, (SCOPE, &SYSTEM), n));
            let (stats, floors) = with_floors(rt, &linker, &stub, how, samples, batch, |n| {
                real.run(rt, &func, (SCOPE, &SYSTEM), n)
            });
            rows.push(Row {
                label: format!(
                    "TypedFunc::{}, {} imports, concurrency_support({concurrency})",
                    if how == Call::Async {
                        "call_async"
                    } else {
                        "call"
                    },
                    if how == Call::Async { "async" } else { "sync" },
                ),
                real: Ok(stats),
                allocations,
                floors: Some(floors),
            });
        }
        if !concurrency {
            rows.push(sync_on_async_store(rt, &engine, &component, &emulator));
        }
    }
    let engine = engine(false);
    let linker = linker(&engine, Call::Sync);
    let long = stub::wat(&"x".repeat(LONG_TOKEN), token.expires_on, token.expires_on);
    Boundary {
        rows,
        clock_reads: clock_reads(rt, wasm, &emulator),
        token_len: token.token.len(),
        long_token: stub_token(rt, &linker, &long, samples, batch),
        short_token: stub_token(rt, &linker, &stub, samples, batch),
        native_clock: timing::batched(samples, batch, |n| {
            for _ in 0..n {
                black_box(std::time::SystemTime::now());
            }
        }),
    }
}

/// The shipped path: `Host::from_bytes`, `Host::instantiate`, `Guest::get_token`, token
/// cached.
fn shipped(
    rt: &Runtime,
    host: &Host,
    mut guest: Guest,
    stub: &str,
    samples: usize,
    batch: u64,
) -> Row {
    let mut run = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let result = guest.get_token(SCOPE, &SYSTEM).await;
                assert!(black_box(result).is_ok_and(|r| r.is_ok()));
            }
        })
    };
    let allocations = alloc::per_call(1_000, &mut run);
    let linker = linker(host.engine(), Call::Async);
    let (real, floors) = with_floors(rt, &linker, stub, Call::Async, samples, batch, run);
    Row {
        label: format!(
            "Guest::get_token (shipped: bindgen call_async, concurrency_support({}))",
            host.engine().get_concurrency_support()
        ),
        real: Ok(real),
        allocations,
        floors: Some(floors),
    }
}

/// A sync `call` on a store whose imports are async: wasmtime refuses it.
fn sync_on_async_store(
    rt: &Runtime,
    engine: &Engine,
    component: &Component,
    emulator: &Emulator,
) -> Row {
    let linker = linker(engine, Call::Async);
    let mut bench = Bench::new(rt, &linker, component, Call::Async, state(emulator, None));
    let func = bench.func::<TokenParams, TokenResult>(Some(INTERFACE), "get-token");
    bench.check_token(rt, &func);
    let refused = func
        .call(&mut bench.store, (SCOPE, &SYSTEM))
        .err()
        .map_or_else(|| "unexpectedly allowed".into(), |e| format!("error: {e}"));
    Row {
        label: "TypedFunc::call, async imports (either concurrency_support)".into(),
        real: Err(refused),
        allocations: 0.0,
        floors: None,
    }
}

/// `real` (batches of cached calls) timed with the stub's exports beside it on `linker`'s
/// engine, called as `how`. `real` and the stub's `get-token-clock`, the floor its ratio is
/// taken against, alternate batch by batch so load that comes and goes hits both alike.
fn with_floors(
    rt: &Runtime,
    linker: &Linker<GuestState>,
    wat: &str,
    how: Call,
    samples: usize,
    batch: u64,
    real: impl FnMut(u64),
) -> (timing::Stats, Floors) {
    let component = Component::new(linker.engine(), wat).expect("compiling the stub");
    let emulator = Emulator::new(EmulatorConfig::default());
    let mut stub = Bench::new(rt, linker, &component, how, state(&emulator, None));
    let nop = stub.func::<(), (u32,)>(None, "nop");
    let scope = stub.func::<(&'static str,), (u32,)>(None, "take-scope");
    let token = stub.func::<TokenParams, TokenResult>(None, "get-token");
    let clock = stub.func::<TokenParams, TokenResult>(None, "get-token-clock");
    stub.check_token(rt, &token);
    stub.check_token(rt, &clock);
    let nop = timing::batched(samples, batch, |n| stub.run(rt, &nop, (), n));
    let scope = timing::batched(samples, batch, |n| stub.run(rt, &scope, (SCOPE,), n));
    let token = timing::batched(samples, batch, |n| {
        stub.run(rt, &token, (SCOPE, &SYSTEM), n)
    });
    let (real, clock) = timing::alternated(samples, batch, real, |n| {
        stub.run(rt, &clock, (SCOPE, &SYSTEM), n)
    });
    let floors = Floors {
        nop,
        scope,
        token,
        clock,
    };
    (real, floors)
}

/// The stub's `get-token` alone, with sync `call`.
fn stub_token(
    rt: &Runtime,
    linker: &Linker<GuestState>,
    wat: &str,
    samples: usize,
    batch: u64,
) -> timing::Stats {
    let component = Component::new(linker.engine(), wat).expect("compiling the stub");
    let emulator = Emulator::new(EmulatorConfig::default());
    let mut stub = Bench::new(rt, linker, &component, Call::Sync, state(&emulator, None));
    let token = stub.func::<TokenParams, TokenResult>(None, "get-token");
    stub.check_token(rt, &token);
    timing::batched(samples, batch, |n| {
        stub.run(rt, &token, (SCOPE, &SYSTEM), n)
    })
}

/// Wall-clock reads per cached call, with a counting clock.
fn clock_reads(rt: &Runtime, wasm: &[u8], emulator: &Emulator) -> f64 {
    let engine = engine(false);
    let component = Component::new(&engine, wasm).expect("compiling azmi.wasm");
    let linker = linker(&engine, Call::Sync);
    let reads = Arc::new(AtomicU64::new(0));
    let clock = CountingClock(reads.clone());
    let mut bench = Bench::new(
        rt,
        &linker,
        &component,
        Call::Sync,
        state(emulator, Some(clock)),
    );
    let func = bench.func::<TokenParams, TokenResult>(Some(INTERFACE), "get-token");
    bench.check_token(rt, &func);
    let before = reads.load(Ordering::Relaxed);
    bench.run(rt, &func, (SCOPE, &SYSTEM), 1_000);
    (reads.load(Ordering::Relaxed) - before) as f64 / 1_000.0
}
