//! The detail tables under `just bench`'s targets table, and the table printer.

use crate::boundary::{Boundary, LONG_TOKEN};
use crate::timing::human;

/// The boundary breakdown: the cached call every way wasmtime can make it, each with the
/// stub's floors on the same path.
pub fn print_boundary(boundary: &Boundary) {
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

/// A plain-text table, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
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
