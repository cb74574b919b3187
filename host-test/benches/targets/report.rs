//! The tables `just bench` prints.

use crate::boundary::{Boundary, LONG_TOKEN};
use crate::native::Core;
use crate::network::Network;
use crate::timing::human;

/// The component size budget, bytes (150 KB, decimal: the stricter reading).
const SIZE_BUDGET: usize = 150_000;

/// Prints the targets table, then the boundary breakdown.
pub fn print(core: &Core, boundary: &Boundary, network: &Network, component_bytes: usize) {
    let shipped = boundary.rows[0]
        .real
        .as_ref()
        .expect("the shipped path works");
    let best = boundary
        .rows
        .iter()
        .filter_map(|r| r.real.as_ref().ok().map(|s| (s, r)))
        .min_by(|a, b| a.0.p50.total_cmp(&b.0.p50))
        .expect("a working row");
    let first_ratio = network.first_token.p50 / network.bare_get.p50;
    let mut rows = vec![
        ratio_row(
            "cached get-token, component boundary (shipped Guest::get_token), p50",
            shipped.p50,
            310.0,
            format!("p90 {}", human(shipped.p90)),
        ),
        ratio_row(
            "cached get-token, component boundary (best variant), p50",
            best.0.p50,
            310.0,
            best.1.label.clone(),
        ),
        ratio_row(
            "native core ManagedIdentity::cached, p50",
            core.cached.p50,
            100.0,
            format!(
                "p90 {}, {:.2} allocations/call",
                human(core.cached.p90),
                core.allocations
            ),
        ),
    ];
    rows.push(vec![
        "first token on a warm engine / bare HTTP GET, p50".into(),
        format!("{first_ratio:.2}×"),
        "≤ 1.3×".into(),
        format!("{:.2}", first_ratio / 1.3),
        verdict(first_ratio <= 1.3),
        format!(
            "first token {} (p90 {}; instantiate alone {}), bare GET {} (p90 {})",
            human(network.first_token.p50),
            human(network.first_token.p90),
            human(network.instantiate.p50),
            human(network.bare_get.p50),
            human(network.bare_get.p90)
        ),
    ]);
    rows.push(ratio_row(
        "no-MI answer (probe, closed port), p50",
        network.no_mi.p50,
        20_000_000.0,
        format!("p90 {}", human(network.no_mi.p90)),
    ));
    rows.push(vec![
        format!("burst: {} calls, one instance", network.burst_calls),
        format!("{} upstream", network.burst_requests),
        "1 upstream".into(),
        format!("{:.2}", network.burst_requests as f64),
        verdict(network.burst_requests == 1),
        format!(
            "{} for the burst",
            human(network.burst_time.as_nanos() as f64)
        ),
    ]);
    rows.push(vec![
        "component size (azmi.wasm)".into(),
        format!("{component_bytes} B"),
        format!("≤ {SIZE_BUDGET} B"),
        format!("{:.2}", component_bytes as f64 / SIZE_BUDGET as f64),
        verdict(component_bytes <= SIZE_BUDGET),
        String::new(),
    ]);
    println!("\nDEVELOPERS.md targets (ratio = measured / target; ≤ 1 meets it)\n");
    table(
        &["metric", "measured", "target", "ratio", "", "detail"],
        &rows,
    );
    println!(
        "\nReference: official JS/Python SDKs take 5–33 ms for a first token and 6.5–10.6 µs for a cached getToken; native Rust SDK 0.31 µs cached."
    );
    print_boundary(boundary);
}

fn print_boundary(boundary: &Boundary) {
    let rows: Vec<Vec<String>> = boundary
        .rows
        .iter()
        .map(|r| match (&r.real, &r.floors) {
            (Ok(real), Some(f)) => vec![
                r.label.clone(),
                real.show(),
                format!("{:.1}", r.allocations),
                human(f.nop.p50),
                human(f.scope.p50),
                human(f.token.p50),
                human(f.clock.p50),
                human(real.p50 - f.clock.p50),
            ],
            (Ok(real), None) => vec![r.label.clone(), real.show()],
            (Err(why), _) => vec![r.label.clone(), why.clone()],
        })
        .collect();
    println!(
        "\nCached get-token at the boundary, every way ({}-byte token). Stub columns: the same call path into a component that does no work: an empty call, + the scope string, azmi's exact signature, + one wall-clock import. guest ≈ azmi.wasm − stub+clock.\n",
        boundary.token_len
    );
    table(
        &[
            "call path",
            "azmi.wasm p50 / p90",
            "host allocs/call",
            "stub: nop",
            "+scope",
            "get-token sig",
            "+clock",
            "guest ≈",
        ],
        &rows,
    );
    println!(
        "\nWall-clock reads per cached call: {:.2} (no other import is needed on the cached path); SystemTime::now() natively: {}",
        boundary.clock_reads,
        human(boundary.native_clock.p50)
    );
    println!(
        "Token length: the stub's get-token (call, sync imports, concurrency off) takes {} with the emulator's {}-byte token, {} with a {}-byte one (typical Entra JWT).",
        human(boundary.short_token.p50),
        boundary.token_len,
        human(boundary.long_token.p50),
        LONG_TOKEN
    );
}

/// A row whose measured value is a time in ns against a target in ns.
fn ratio_row(metric: &str, ns: f64, target_ns: f64, detail: String) -> Vec<String> {
    vec![
        metric.into(),
        human(ns),
        format!("≤ {}", human(target_ns)),
        format!("{:.2}", ns / target_ns),
        verdict(ns <= target_ns),
        detail,
    ]
}

fn verdict(ok: bool) -> String {
    if ok { "ok" } else { "MISS" }.into()
}

/// A plain-text table, columns padded to their widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let cell = cells.get(i).copied().unwrap_or_default();
                format!("{cell}{}", " ".repeat(w - cell.chars().count()))
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(headers.to_vec());
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
