//! `just bench`: issue 14's performance targets, measured in one run, printed as one table
//! (measured, the floor it is compared with, target, ratio). Not a pass/fail test: timing
//! assertions stay out of the test suite. Rows whose inputs are missing (no Envoy, no composed
//! Spin app, no `target/shipped/`) say why instead of failing the run; `just bench` builds them.
//!
//! Times are p50/p90 per call. Sub-microsecond paths are timed in batches (see [`timing`]);
//! loopback paths one call at a time. Allocation counts come from a counting global
//! allocator ([`alloc`]) and cover host-side (native) allocations only.
//!
//! `AZMI_BENCH_COMPONENT=path/to/azmi.wasm` measures another build of the component (e.g.
//! another opt-level) instead of the embedded one.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

mod alloc;
mod boundary;
mod boundary_report;
mod envoy;
mod native;
mod network;
mod process;
mod report;
mod rig;
mod sizes;
mod spin;
mod stub;
mod timing;

// Shared with the Envoy tests; the bench uses part of it.
#[allow(dead_code)]
mod envoy_rig;

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The scope every measurement asks for.
pub const SCOPE: &str = "https://vault.azure.net/.default";
/// Where in-memory measurements pretend the emulator lives.
pub const EMU: &str = "http://127.0.0.1:4010";

fn main() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let wasm = match std::env::var_os("AZMI_BENCH_COMPONENT") {
        Some(path) => std::fs::read(&path)
            .unwrap_or_else(|e| panic!("reading AZMI_BENCH_COMPONENT {path:?}: {e}")),
        None => azmi_host_test::COMPONENT.to_vec(),
    };
    eprintln!(
        "measuring {} ({} bytes)",
        std::env::var("AZMI_BENCH_COMPONENT").unwrap_or_else(|_| "the embedded azmi.wasm".into()),
        wasm.len()
    );
    let load_before = load_average();
    let core = native::measure(SCOPE, 2_000, 1_000);
    eprintln!("native core measured ({:.1?})", started.elapsed());
    let boundary = boundary::measure(&rt, &wasm, 2_000, 100);
    eprintln!("boundary measured ({:.1?})", started.elapsed());
    let host = azmi_host_test::Host::from_bytes(&wasm).expect("compiling azmi.wasm");
    let network = network::measure(&rt, &host, 200);
    eprintln!("loopback measured ({:.1?})", started.elapsed());
    let spin = spin::measure(&rt, 300);
    eprintln!("spin app measured ({:.1?})", started.elapsed());
    let envoy = envoy::measure(&rt, 2_000);
    eprintln!("envoy measured ({:.1?})", started.elapsed());
    let process = process::measure(20);
    eprintln!("azmi token processes measured ({:.1?})", started.elapsed());
    let measured = report::Measured {
        core,
        boundary,
        network,
        sizes: sizes::measure(),
        spin,
        envoy,
        process,
    };
    report::print(&measured);
    boundary_report::print_boundary(&measured.boundary);
    println!(
        "\nbench run: {:.1?} on {} CPUs; load average before/after: {load_before} / {}",
        started.elapsed(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
}

/// A runtime with one worker thread of its own, for servers (the emulator) that must answer
/// while the measuring thread blocks.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime")
}

/// The 1-minute load average (other builds skew the numbers; this says how much).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
