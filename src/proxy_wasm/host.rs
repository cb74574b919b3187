//! Every host call the filter makes, in one place; each returns its status instead of
//! unwrapping it.
//!
//! proxy-wasm 0.2.5's `hostcalls` functions return `Result<_, Status>` but panic on any status
//! they do not expect (`set_map_value`, `send_http_response`, `resume_http_request`,
//! `set_tick_period`, `log`, `get_current_time`, `set_effective_context` on anything but
//! bad argument, …): a panic traps the VM and fails every request of the worker. So the calls
//! the glue makes per request and per tick ([`Envoy`], the [`Host`] of `glue.rs`) go to the
//! proxy-wasm ABI directly, with the SDK's own import declarations and argument layout; the
//! status comes back as a number, never transmuted into an enum it may not be in.
//!
//! Left with the SDK, whose statuses it does not expect are not the host's to give here
//! (`get_map_value_bytes` of a request header, in the request-headers callback, too):
//! `dispatch_http_call` (it must register the call with the SDK's dispatcher, or the response
//! would never reach the root; it returns bad argument and internal failure), `get_buffer`,
//! `get_map_bytes` and `get_shared_data` (their buffers are allocated through the SDK), and
//! `set_shared_data` (it returns CAS mismatch).
#![allow(
    unsafe_code,
    reason = "the proxy-wasm ABI imports, called with pointers to live Rust slices only"
)]

use super::filter::Filter;
use super::glue::{Host, HostStatus};
use super::stats::{MetricKind, Stats};
use super::store::{CasStore, SharedData};
use super::token_root::{Level, LocalReply};
use crate::proto::UnixMillis;
use ::proxy_wasm::hostcalls;
use ::proxy_wasm::types::{BufferType, MapType, Status};
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// What a root context shares with its streams (one VM is one thread: `Rc`, no locks).
pub(super) struct Shared {
    /// The filter state.
    pub root: RefCell<Filter>,
    /// The metric ids.
    pub stats: Stats,
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
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 through the pointer, which lives for the call.
    let status = unsafe { abi::proxy_get_current_time_nanoseconds(&mut nanos) };
    (status == 0).then_some(UnixMillis(nanos / 1_000_000))
}

/// The plugin configuration (empty when there is none).
pub(super) fn plugin_configuration() -> Result<Vec<u8>, Status> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .map(Option::unwrap_or_default)
}

/// The request's `:authority` (in `on_http_request_headers`, where Envoy always has the map;
/// the SDK call panics only on a status the host does not give there).
pub(super) fn request_authority() -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":authority")
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The headers of the call response being handled.
pub(super) fn call_response_headers() -> Result<Vec<(String, Vec<u8>)>, Status> {
    hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
}

/// The first `size` bytes of the body of the call response being handled.
pub(super) fn call_response_body(size: usize) -> Result<Vec<u8>, Status> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size).map(Option::unwrap_or_default)
}

/// `dispatch_http_call` to `cluster`; the call id whose response comes to the root context.
pub(super) fn dispatch_http_call(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, Status> {
    hostcalls::dispatch_http_call(cluster, headers, body, Vec::new(), timeout)
}

/// The proxy-wasm host as the glue's [`Host`]: the ABI, statuses returned.
pub(super) struct Envoy;

/// `Ok` for status 0, the status otherwise.
fn checked(status: u32) -> Result<(), HostStatus> {
    match status {
        0 => Ok(()),
        other => Err(HostStatus(other)),
    }
}

impl Host for Envoy {
    fn log(&mut self, level: Level, message: &str) -> Result<(), HostStatus> {
        // The ABI's levels: 1 debug, 2 info, 3 warn, 4 error.
        let level = match level {
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warn => 3,
            Level::Error => 4,
        };
        // SAFETY: pointer and length of a live str.
        checked(unsafe { abi::proxy_log(level, message.as_ptr(), message.len()) })
    }

    fn set_header(&mut self, name: &str, value: Option<&str>) -> Result<(), HostStatus> {
        // SAFETY: pointers and lengths of live strs.
        checked(unsafe {
            match value {
                Some(value) => abi::proxy_replace_header_map_value(
                    abi::HTTP_REQUEST_HEADERS,
                    name.as_ptr(),
                    name.len(),
                    value.as_ptr(),
                    value.len(),
                ),
                None => abi::proxy_remove_header_map_value(
                    abi::HTTP_REQUEST_HEADERS,
                    name.as_ptr(),
                    name.len(),
                ),
            }
        })
    }

    fn send_reply(&mut self, reply: &LocalReply) -> Result<(), HostStatus> {
        let headers = abi::serialize_map(&[
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ]);
        let body = reply.body.as_bytes();
        // SAFETY: pointers and lengths of a live body and header block; no details string
        // (null, 0); -1: not a gRPC reply.
        checked(unsafe {
            abi::proxy_send_local_response(
                reply.status,
                std::ptr::null(),
                0,
                body.as_ptr(),
                body.len(),
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    }

    fn resume_request(&mut self) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        checked(unsafe { abi::proxy_continue_stream(abi::STREAM_HTTP_REQUEST) })
    }

    fn set_effective_context(&mut self, id: u32) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        checked(unsafe { abi::proxy_set_effective_context(id) })
    }

    fn set_tick_period(&mut self, ms: u64) -> Result<(), HostStatus> {
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        // SAFETY: no pointers.
        checked(unsafe { abi::proxy_set_tick_period_milliseconds(ms) })
    }

    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, HostStatus> {
        // The ABI's metric types: 0 counter, 1 gauge.
        let kind = match kind {
            MetricKind::Counter => 0,
            MetricKind::Gauge => 1,
        };
        let mut id = 0u32;
        // SAFETY: pointer and length of a live str; the host writes one u32 through `id`.
        checked(unsafe { abi::proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
        Ok(id)
    }

    fn increment_metric(&mut self, id: u32, delta: i64) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        checked(unsafe { abi::proxy_increment_metric(id, delta) })
    }

    fn record_metric(&mut self, id: u32, value: u64) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        checked(unsafe { abi::proxy_record_metric(id, value) })
    }
}

/// The proxy-wasm 0.2.1 ABI functions [`Envoy`] calls, declared as the SDK declares them
/// except that the status is the raw `u32`.
mod abi {
    /// `MapType::HttpRequestHeaders`.
    pub(super) const HTTP_REQUEST_HEADERS: u32 = 0;
    /// `StreamType::HttpRequest`.
    pub(super) const STREAM_HTTP_REQUEST: u32 = 0;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        pub(super) fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
        pub(super) fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        pub(super) fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub(super) fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_remove_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
        ) -> u32;
        #[allow(clippy::too_many_arguments, reason = "the ABI's signature")]
        pub(super) fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub(super) fn proxy_continue_stream(stream_type: u32) -> u32;
        pub(super) fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub(super) fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
        pub(super) fn proxy_set_effective_context(context_id: u32) -> u32;
    }

    /// A header map as the ABI takes it: the pair count, each pair's name and value lengths
    /// (little-endian u32), then each name and value followed by a NUL byte.
    pub(super) fn serialize_map(map: &[(&str, &str)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        bytes.extend_from_slice(&len(map.len()));
        for (name, value) in map {
            bytes.extend_from_slice(&len(name.len()));
            bytes.extend_from_slice(&len(value.len()));
        }
        for (name, value) in map {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(value.as_bytes());
            bytes.push(0);
        }
        bytes
    }
}
