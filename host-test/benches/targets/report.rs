//! Issue 14's table: every target next to a floor measured in the same run, the ratio
//! measured / target (≤ 1 meets it), and where a row could not run, why.

use crate::boundary::Boundary;
use crate::boundary_report::table;
use crate::envoy::EnvoyLatency;
use crate::native::Core;
use crate::network::Network;
use crate::process::Process;
use crate::sizes::{CERTIFICATE_EXTRA, SHARED_EXTRA, SHIPPED_BUDGET, Sizes};
use crate::spin::SpinRequests;
use crate::timing::human;
use std::time::Duration;

/// Everything one run measured.
pub struct Measured {
    /// Row 2.
    pub core: Core,
    /// Row 1 (and the boundary detail table).
    pub boundary: Boundary,
    /// Row 3.
    pub network: Network,
    /// Rows 4 and 5.
    pub sizes: Sizes,
    /// Row 6.
    pub spin: Result<SpinRequests, String>,
    /// Row 7.
    pub envoy: Result<EnvoyLatency, String>,
    /// Row 8.
    pub process: Result<Process, String>,
}

/// One line of the table.
struct Line {
    number: &'static str,
    what: String,
    measured: String,
    floor: String,
    target: String,
    /// measured / target; `None` when the row did not run.
    ratio: Option<f64>,
    detail: String,
}

impl Line {
    fn cells(self) -> Vec<String> {
        let (ratio, verdict) = match self.ratio {
            Some(r) => (format!("{r:.2}"), if r <= 1.0 { "ok" } else { "MISS" }),
            None => ("-".into(), "not run"),
        };
        vec![
            self.number.into(),
            self.what,
            self.measured,
            self.floor,
            self.target,
            ratio,
            verdict.into(),
            self.detail,
        ]
    }

    /// A row that could not run, saying why.
    fn not_run(number: &'static str, what: &str, target: &str, why: &str) -> Line {
        Line {
            number,
            what: what.into(),
            measured: "-".into(),
            floor: "-".into(),
            target: target.into(),
            ratio: None,
            detail: why.into(),
        }
    }
}

fn us(d: Duration) -> String {
    human(d.as_nanos() as f64)
}

/// Prints the table.
pub fn print(m: &Measured) {
    let mut lines = vec![
        cached_call(&m.boundary),
        native(&m.core),
        first_token(&m.network),
    ];
    lines.extend(sizes(&m.sizes));
    lines.push(match &m.spin {
        Ok(spin) => {
            let ratio = spin.token.p50.as_secs_f64() / spin.health.p50.as_secs_f64();
            Line {
                number: "6",
                what: "Spin app per request (azmi serve, warm shared cache): GET /token, p50"
                    .into(),
                measured: us(spin.token.p50),
                floor: format!("{} (GET /health, no token)", us(spin.health.p50)),
                target: "≤ 1.2× floor".into(),
                ratio: Some(ratio / 1.2),
                detail: format!(
                    "{ratio:.2}× floor; p99 {} vs {}; {} token request(s) in all",
                    us(spin.token.p99),
                    us(spin.health.p99),
                    spin.token_requests
                ),
            }
        }
        Err(why) => Line::not_run(
            "6",
            "Spin app per request, GET /token vs /health",
            "≤ 1.2×",
            why,
        ),
    });
    lines.push(match &m.envoy {
        Ok(e) => {
            let (p50, p99) = e.azmi.added_us(&e.bare);
            let (floor_p50, floor_p99) = e.floor.added_us(&e.bare);
            Line {
                number: "7",
                what: format!("Envoy {} cached token: added p50 / p99 per request", e.version),
                measured: format!("{p50:+.0} / {p99:+.0} µs"),
                floor: format!("{floor_p50:+.0} / {floor_p99:+.0} µs (minimal filter)"),
                target: "≤ 50 / ≤ 200 µs".into(),
                ratio: Some((p50 / 50.0).max(p99 / 200.0)),
                detail: format!(
                    "{} kept-alive requests each, interleaved: no filter {} / {}, minimal filter {} / {}, azmi {} / {}; azmi over the minimal filter {:+.0} / {:+.0} µs",
                    e.rounds,
                    us(e.bare.p50),
                    us(e.bare.p99),
                    us(e.floor.p50),
                    us(e.floor.p99),
                    us(e.azmi.p50),
                    us(e.azmi.p99),
                    p50 - floor_p50,
                    p99 - floor_p99
                ),
            }
        }
        Err(why) => Line::not_run("7", "Envoy cached token: added p50 / p99", "≤ 50 / ≤ 200 µs", why),
    });
    lines.push(match &m.process {
        Ok(p) => Line {
            number: "8",
            what: "whole `azmi token --no-cache` process (release, precompiled), median".into(),
            measured: human(p.token.p50),
            floor: format!("{} (azmi --version)", human(p.version.p50)),
            target: "≤ 25 ms".into(),
            ratio: Some(p.token.p50 / 25e6),
            detail: format!(
                "p90 {}; with its token cache (token already cached) {}",
                human(p.token.p90),
                human(p.cached.p50)
            ),
        },
        Err(why) => Line::not_run("8", "whole azmi token process", "≤ 25 ms", why),
    });
    println!(
        "\nIssue 14 targets (ratio = measured / target; ≤ 1 meets it; floors from this run)\n"
    );
    table(
        &[
            "#", "what", "measured", "floor", "target", "ratio", "", "detail",
        ],
        &lines.into_iter().map(Line::cells).collect::<Vec<_>>(),
    );
    let n = &m.network;
    println!(
        "\nAlso: no-MI answer (probe, closed port) p50 {} (p90 {}); burst of {} calls on one instance: {} upstream request(s) in {}.",
        human(n.no_mi.p50),
        human(n.no_mi.p90),
        n.burst_calls,
        n.burst_requests,
        human(n.burst_time.as_nanos() as f64)
    );
}

/// Row 1.
fn cached_call(boundary: &Boundary) -> Line {
    let row = &boundary.rows[0];
    let shipped = row.real.as_ref().expect("the shipped path works");
    let floor = row
        .floors
        .as_ref()
        .expect("floors on the shipped path")
        .clock;
    Line {
        number: "1",
        what: "cached get-token, shipped path (Guest::get_token), p50".into(),
        measured: human(shipped.p50),
        floor: format!("{} (stub get-token + 1 clock read)", human(floor.p50)),
        target: "≤ 1.25× floor".into(),
        ratio: Some(shipped.p50 / (1.25 * floor.p50)),
        detail: format!(
            "{:.2}× floor; p90 {}; guest ≈ {}; {:.1} host allocations/call",
            shipped.p50 / floor.p50,
            human(shipped.p90),
            human(shipped.p50 - floor.p50),
            row.allocations
        ),
    }
}

/// Row 2.
fn native(core: &Core) -> Line {
    let allocation_ratio = if core.allocations > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Line {
        number: "2",
        what: "native core ManagedIdentity::cached, p50".into(),
        measured: format!(
            "{}, {:.2} allocations",
            human(core.cached.p50),
            core.allocations
        ),
        floor: "-".into(),
        target: "≤ 0.100 µs, 0 allocations".into(),
        ratio: Some((core.cached.p50 / 100.0).max(allocation_ratio)),
        detail: format!("p90 {}", human(core.cached.p90)),
    }
}

/// Row 3.
fn first_token(n: &Network) -> Line {
    let ratio = n.first_token.p50 / n.bare_get.p50;
    let rest = n.first_token.p50 - n.instantiate.p50 - n.bare_get.p50;
    Line {
        number: "3",
        what: "first token, warm engine (instantiate + get-token), p50".into(),
        measured: human(n.first_token.p50),
        floor: format!(
            "{} (bare GET, host's client, new connection)",
            human(n.bare_get.p50)
        ),
        target: "≤ 1.5× floor".into(),
        ratio: Some(ratio / 1.5),
        detail: format!(
            "{ratio:.2}× floor = instantiate {} + network ≈ bare GET {} + guest and wasi-http {} (remainder; the same first get-token answered in memory, no socket: {}); p90 {}",
            human(n.instantiate.p50),
            human(n.bare_get.p50),
            human(rest),
            human(n.in_memory.p50),
            human(n.first_token.p90)
        ),
    }
}

/// Rows 4 and 5.
fn sizes(s: &Sizes) -> Vec<Line> {
    let Ok(shipped) = s.shipped else {
        let why = s.shipped.as_ref().err().cloned().unwrap_or_default();
        return vec![Line::not_run(
            "4-5",
            "shipped component sizes",
            "≤ 150000 B",
            &why,
        )];
    };
    let parts: Vec<String> = s
        .parts
        .iter()
        .take(6)
        .map(|(p, b)| format!("{p} {b}"))
        .collect();
    let mut lines = vec![Line {
        number: "4",
        what: "target/shipped/azmi.wasm".into(),
        measured: format!("{shipped} B"),
        floor: "-".into(),
        target: format!("≤ {SHIPPED_BUDGET} B"),
        ratio: Some(shipped as f64 / SHIPPED_BUDGET as f64),
        detail: parts.join(", "),
    }];
    for (number, name, size, extra) in [
        ("5", "azmi-shared.wasm", &s.shared, SHARED_EXTRA),
        (
            "5",
            "azmi-certificate.wasm",
            &s.certificate,
            CERTIFICATE_EXTRA,
        ),
    ] {
        let budget = shipped + extra;
        let target = format!("≤ {budget} B (shipped + {extra})");
        lines.push(match size {
            Ok(size) => Line {
                number,
                what: format!("target/shipped/{name}"),
                measured: format!("{size} B"),
                floor: format!("{shipped} B (azmi.wasm)"),
                target,
                ratio: Some(*size as f64 / budget as f64),
                detail: format!("shipped + {} B", *size as i64 - shipped as i64),
            },
            Err(why) => Line::not_run(number, name, &target, why),
        });
    }
    lines
}
