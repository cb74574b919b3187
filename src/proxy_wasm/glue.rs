//! What the glue (`root.rs`, `stream.rs`) does through the host, written over the [`Host`]
//! trait so that it is unit-tested natively with a host that fails on purpose
//! (`tests/glue.rs`); `host.rs` gives the real one.
//!
//! Every host call returns its status and a status other than OK is logged and answered, never
//! unwrapped: proxy-wasm 0.2.5's `hostcalls` functions panic on any status they do not expect
//! (a trapped VM takes every request of the worker with it), so `host.rs` calls the host ABI
//! itself for the calls made here.
//!
//! The one rule a failure must not break: a request is never forwarded with a header the
//! filter did not set. When setting (or removing) the header fails, the request gets a local
//! 503 instead; when even that fails, it stays paused until Envoy's stream timeout ends it.

use super::stats::{Counter, MetricKind, Stats};
use super::verdict::{DENY_STATUS, Effects, Level, LocalReply, RequestStep, Verdict};
use std::cell::Cell;

/// A proxy-wasm status other than OK, as the host returned it (the ABI's numbers: 1 not
/// found, 2 bad argument, 10 internal failure, …; any other number is kept as is).
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct HostStatus(pub u32);

impl core::fmt::Debug for HostStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            12 => "Unimplemented",
            _ => "status",
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// The host calls the glue makes on the current (effective) context.
pub trait Host {
    /// Writes `message` to the Envoy log.
    fn log(&mut self, level: Level, message: &str) -> Result<(), HostStatus>;
    /// Sets request header `name` to `value`, or removes it (`None`).
    fn set_header(&mut self, name: &str, value: Option<&str>) -> Result<(), HostStatus>;
    /// Answers the request with `reply` (JSON, `cache-control: no-store`).
    fn send_reply(&mut self, reply: &LocalReply) -> Result<(), HostStatus>;
    /// Resumes the paused request.
    fn resume_request(&mut self) -> Result<(), HostStatus>;
    /// Makes context `id` the one the next calls act on.
    fn set_effective_context(&mut self, id: u32) -> Result<(), HostStatus>;
    /// Sets the root's tick period (0: stop).
    fn set_tick_period(&mut self, ms: u64) -> Result<(), HostStatus>;
    /// Defines a metric named `name`; its id.
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, HostStatus>;
    /// Adds `delta` to metric `id`.
    fn increment_metric(&mut self, id: u32, delta: i64) -> Result<(), HostStatus>;
    /// Sets metric `id` to `value`.
    fn record_metric(&mut self, id: u32, value: u64) -> Result<(), HostStatus>;
}

/// The reply when the header could not be set: the request must not go on without it.
pub const HEADER_FAILED_BODY: &str = r#"{"error":"credential_unavailable","message":"the azmi filter could not set the token header; see the Envoy log"}"#;

/// Logs `message`; a log call that fails has nowhere to report to.
pub fn log(host: &mut impl Host, level: Level, message: &str) {
    let _ = host.log(level, message);
}

/// Applies `verdict` to the current stream: sets or removes `header`, or answers locally, and
/// counts it in `stats`. Returns whether the stream may continue. A header the host refused
/// to set ends the request with a local 503 (logged), never forwarded without it.
pub fn apply(host: &mut impl Host, stats: &Stats, header: &str, verdict: &Verdict) -> bool {
    let (result, counter) = match verdict {
        Verdict::Forward(bearer) => (
            host.set_header(header, Some(bearer.secret())),
            Counter::Authorized,
        ),
        // The upstream must never take a client's value for the header azmi owns.
        Verdict::ForwardUnauthenticated => {
            (host.set_header(header, None), Counter::Unauthenticated)
        }
        Verdict::PassThrough => (Ok(()), Counter::PassedThrough),
        Verdict::Reply(reply) => {
            send(host, reply);
            stats.add(host, Counter::Rejected, 1);
            return false;
        }
        Verdict::Pause => return false,
    };
    match result {
        Ok(()) => {
            stats.add(host, counter, 1);
            true
        }
        Err(status) => {
            log(
                host,
                Level::Warn,
                &format!("could not set the {header} header ({status:?}); the request gets a 503"),
            );
            let reply = LocalReply {
                status: DENY_STATUS,
                body: HEADER_FAILED_BODY.into(),
            };
            send(host, &reply);
            stats.add(host, Counter::Rejected, 1);
            false
        }
    }
}

/// Sends `reply`, logging a refusal.
pub fn send(host: &mut impl Host, reply: &LocalReply) {
    if let Err(status) = host.send_reply(reply) {
        log(
            host,
            Level::Warn,
            &format!(
                "could not send the local {} reply: {status:?}",
                reply.status
            ),
        );
    }
}

/// A new request's step: logs its line, applies its verdict; whether the request continues.
pub fn on_request(host: &mut impl Host, stats: &Stats, header: &str, step: &RequestStep) -> bool {
    if let Some((level, line)) = &step.log {
        log(host, *level, line);
    }
    apply(host, stats, header, &step.verdict)
}

/// Performs a root callback's `effects`: counts, logs, then resumes or answers each paused
/// stream, then makes root `root_id` the effective context again. A stream that ended
/// meanwhile is unknown to the host and skipped; any other failure is logged and the next
/// stream served.
pub fn perform(host: &mut impl Host, stats: &Stats, root_id: u32, header: &str, effects: &Effects) {
    stats.add(host, Counter::TokenRequests, effects.token_requests);
    for class in &effects.token_failures {
        stats.add(host, Counter::TokenFailures(*class), 1);
    }
    for (level, line) in &effects.log {
        log(host, *level, line);
    }
    if effects.resume.is_empty() {
        return;
    }
    for (stream, verdict) in &effects.resume {
        if host.set_effective_context(*stream).is_err() {
            continue;
        }
        if apply(host, stats, header, verdict)
            && let Err(status) = host.resume_request()
        {
            log(
                host,
                Level::Warn,
                &format!("could not resume request {stream}: {status:?}"),
            );
        }
    }
    if let Err(status) = host.set_effective_context(root_id) {
        log(
            host,
            Level::Warn,
            &format!("could not return to the root context: {status:?}"),
        );
    }
}

/// Sets the root's tick period outside `on_tick` (`tick`: the period last set; `None`:
/// stopped). Envoy re-arms a running timer only when the period goes from 0 to non-zero, so
/// a wanted tick first stops the timer. A refused period is logged.
pub fn schedule(host: &mut impl Host, tick: &Cell<Option<u64>>, ms: Option<u64>) {
    if tick.get().is_some() {
        set_tick(host, 0);
    }
    if let Some(ms) = ms {
        set_tick(host, ms);
    }
    tick.set(ms);
}

/// Sets the period from inside `on_tick`, where Envoy re-arms the timer itself when the
/// callback returns.
pub fn schedule_from_tick(host: &mut impl Host, tick: &Cell<Option<u64>>, ms: Option<u64>) {
    if tick.get() != ms {
        set_tick(host, ms.unwrap_or(0));
        tick.set(ms);
    }
}

fn set_tick(host: &mut impl Host, ms: u64) {
    if let Err(status) = host.set_tick_period(ms) {
        log(
            host,
            Level::Warn,
            &format!("set_tick_period({ms} ms) failed: {status:?}"),
        );
    }
}
