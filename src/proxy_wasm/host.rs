//! The host calls the filter makes, each returning or logging its `Status` instead of
//! unwrapping it.

use super::store::{CasStore, SharedData};
use super::token_root::{Level, LocalReply, TokenRoot, Verdict};
use crate::proto::UnixMillis;
use ::proxy_wasm::hostcalls;
use ::proxy_wasm::types::{LogLevel, MapType, Status};
use std::cell::{Cell, RefCell};
use std::time::{Duration, UNIX_EPOCH};

/// What a root context shares with its streams (one VM is one thread: `Rc`, no locks).
pub(super) struct Shared {
    /// The filter state.
    pub root: RefCell<TokenRoot>,
    /// The tick period last set, in milliseconds (`None`: stopped).
    pub tick: Cell<Option<u64>>,
    /// The clock's last reading, used if the host ever fails to give the time.
    pub last_now: Cell<UnixMillis>,
}

impl Shared {
    /// The host's wall clock.
    pub(super) fn now(&self) -> UnixMillis {
        match host_now() {
            Some(now) => {
                self.last_now.set(now);
                now
            }
            None => self.last_now.get(),
        }
    }

    /// Sets the root's tick period outside `on_tick`. Envoy re-arms a running timer only when
    /// the period goes from 0 to non-zero, so a wanted tick first stops the timer.
    pub(super) fn schedule(&self, ms: Option<u64>) {
        if self.tick.get().is_some() {
            set_tick_period(0);
        }
        if let Some(ms) = ms {
            set_tick_period(ms);
        }
        self.tick.set(ms);
    }

    /// Sets the period from inside `on_tick`, where Envoy re-arms the timer itself when the
    /// callback returns.
    pub(super) fn schedule_from_tick(&self, ms: Option<u64>) {
        if self.tick.get() != ms {
            set_tick_period(ms.unwrap_or(0));
            self.tick.set(ms);
        }
    }
}

/// Envoy's shared data (per `vm_id`, seen by every worker's VM) as the root's store.
pub(super) fn shared_store() -> CasStore<EnvoyData> {
    CasStore(EnvoyData)
}

/// `get_shared_data` / `set_shared_data`. Failures are reported by status only: values are
/// secrets and never logged.
pub(super) struct EnvoyData;

impl SharedData for EnvoyData {
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
        match hostcalls::get_shared_data(key) {
            Ok(found) => Ok(found),
            Err(Status::NotFound) => Ok((None, None)),
            Err(status) => Err(format!("get_shared_data failed: {status:?}")),
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(true),
            Err(Status::CasMismatch) => Ok(false),
            Err(status) => Err(format!("set_shared_data failed: {status:?}")),
        }
    }
}

/// The host's wall clock, if it gives one.
pub(super) fn host_now() -> Option<UnixMillis> {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| UnixMillis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

fn set_tick_period(ms: u64) {
    if let Err(status) = hostcalls::set_tick_period(Duration::from_millis(ms)) {
        log(
            LogLevel::Warn,
            &format!("set_tick_period failed: {status:?}"),
        );
    }
}

/// Logs `message` (which never contains a token).
pub(super) fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// Logs what the core asked to log.
pub(super) fn log_lines(lines: &[(Level, String)]) {
    for (level, line) in lines {
        let level = match level {
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
        };
        log(level, line);
    }
}

/// Applies `verdict` to the current (effective) stream: sets or removes `header`, answers
/// locally. Returns whether the stream may continue.
pub(super) fn apply(header: &str, verdict: &Verdict) -> Result<bool, Status> {
    match verdict {
        Verdict::Forward(bearer) => {
            hostcalls::set_map_value(MapType::HttpRequestHeaders, header, Some(bearer.secret()))?;
            Ok(true)
        }
        // The upstream must never take a client's value for the header azmi owns.
        Verdict::ForwardUnauthenticated => {
            hostcalls::set_map_value(MapType::HttpRequestHeaders, header, None)?;
            Ok(true)
        }
        Verdict::Reply(reply) => {
            send_reply(reply)?;
            Ok(false)
        }
        Verdict::Pause => Ok(false),
    }
}

/// Sends `reply` as the local response of the current stream.
pub(super) fn send_reply(reply: &LocalReply) -> Result<(), Status> {
    hostcalls::send_http_response(
        reply.status,
        vec![
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        Some(reply.body.as_bytes()),
    )
}
