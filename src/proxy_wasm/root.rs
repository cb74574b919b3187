//! The root context: configuration, ticks and token-request responses.

use super::call::{CallAnswer, call_result};
use super::config::FilterConfig;
use super::filter::{Filter, stat_label};
use super::glue;
use super::host::{
    Envoy, Shared, call_response_body, call_response_headers, dispatch_http_call, host_now,
    plugin_configuration, shared_store,
};
use super::stats::Stats;
use super::stream::AuthStream;
use super::token_root::{Dispatch, Effects, Level};
use crate::proto::{
    EnvSnapshot, HttpRequest, MAX_RESPONSE_BYTES, TransportError, TransportErrorKind,
    is_managed_identity_variable,
};
use ::proxy_wasm::traits::{Context, HttpContext, RootContext};
use ::proxy_wasm::types::ContextType;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// One root context per plugin configuration and worker thread.
pub(super) struct AuthRoot {
    id: u32,
    shared: Option<Rc<Shared>>,
}

impl AuthRoot {
    pub(super) fn new(id: u32) -> Self {
        Self { id, shared: None }
    }

    /// Performs `effects` ([`glue::perform`]) and records the expiry gauges. Called with no
    /// borrow of the state held: resuming a stream can re-enter the VM.
    fn perform(&self, shared: &Shared, now: crate::proto::UnixMillis, effects: &Effects) {
        let header = shared.root.borrow().config().header.clone();
        glue::perform(&mut Envoy, &shared.stats, self.id, &header, effects);
        if let Ok(mut root) = shared.root.try_borrow_mut() {
            shared.stats.due(now);
            shared.stats.record(&mut Envoy, root.expiries(now));
        }
    }
}

impl Context for AuthRoot {
    fn on_http_call_response(
        &mut self,
        call: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = shared.now();
        let cluster = shared.root.borrow().config().cluster.clone();
        let result =
            read_answer(num_headers, body_size).and_then(|answer| call_result(answer, &cluster));
        let effects = shared.root.borrow_mut().on_response(
            now,
            call,
            result,
            &mut Cluster { cluster: &cluster },
            &mut shared_store(),
        );
        let next = shared.root.borrow().next_tick_ms(now);
        glue::schedule(&mut Envoy, &shared.tick, next);
        self.perform(&shared, now, &effects);
    }
}

impl RootContext for AuthRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match plugin_configuration() {
            Ok(bytes) => bytes,
            Err(status) => {
                glue::log(
                    &mut Envoy,
                    Level::Error,
                    &format!("cannot read the plugin configuration: {status:?}"),
                );
                return false;
            }
        };
        let config = match FilterConfig::parse(&bytes) {
            Ok(config) => config,
            Err(error) => {
                glue::log(&mut Envoy, Level::Error, error.message());
                return false;
            }
        };
        let env = EnvSnapshot::from_pairs(std::env::vars_os().filter_map(|(k, v)| {
            let (k, v) = (k.into_string().ok()?, v.into_string().ok()?);
            is_managed_identity_variable(&k).then_some((k, v))
        }));
        let now = host_now().unwrap_or_default();
        let filter = Filter::new(config, env, now);
        let labels: Vec<String> = filter
            .roots()
            .iter()
            .map(|root| stat_label(root.scope()))
            .collect();
        for (level, line) in filter.startup_log() {
            glue::log(&mut Envoy, level, &line);
        }
        let shared = Shared {
            root: RefCell::new(filter),
            stats: Stats::define(&mut Envoy, &labels),
            tick: Cell::new(None),
            last_now: Cell::new(now),
        };
        self.shared = Some(Rc::new(shared));
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = shared.now();
        let cluster = shared.root.borrow().config().cluster.clone();
        let effects = shared.root.borrow_mut().on_tick(
            now,
            &mut Cluster { cluster: &cluster },
            &mut shared_store(),
        );
        let next = shared.root.borrow().next_tick_ms(now);
        glue::schedule_from_tick(&mut Envoy, &shared.tick, next);
        self.perform(&shared, now, &effects);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthStream::new(context_id, self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Reads the answer to the call whose response callback is running.
fn read_answer(num_headers: usize, body_size: usize) -> Result<CallAnswer, TransportError> {
    let failed = |what: &str, status| {
        TransportError::new(
            TransportErrorKind::Other,
            format!("Envoy could not hand over the token response {what}: {status:?}"),
        )
    };
    if num_headers == 0 {
        return Ok(CallAnswer::default());
    }
    let headers = call_response_headers()
        .map_err(|status| failed("headers", status))?
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = if body_size == 0 {
        Vec::new()
    } else {
        call_response_body(body_size.min(MAX_RESPONSE_BYTES))
            .map_err(|status| failed("body", status))?
    };
    Ok(CallAnswer {
        headers,
        body,
        body_size,
    })
}

/// Sends token requests through the configured Envoy cluster.
struct Cluster<'a> {
    cluster: &'a str,
}

impl Dispatch for Cluster<'_> {
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u32) -> Result<u32, TransportError> {
        let names: Vec<String> = request
            .headers
            .iter()
            .map(|h| h.name.to_ascii_lowercase())
            .collect();
        let mut headers = vec![
            (":method", request.method.as_str()),
            (":path", request.path_and_query.as_str()),
            (":authority", request.authority.as_str()),
        ];
        headers.extend(
            names
                .iter()
                .zip(&request.headers)
                .map(|(name, h)| (name.as_str(), h.value.as_str())),
        );
        let body = (!request.body.is_empty()).then_some(request.body.as_slice());
        dispatch_http_call(
            self.cluster,
            headers,
            body,
            Duration::from_millis(u64::from(timeout_ms)),
        )
        .map_err(|status| {
            TransportError::new(
                TransportErrorKind::Denied,
                format!(
                    "Envoy refused dispatch_http_call to cluster \"{}\" ({status:?}); define that cluster in the Envoy configuration, pointing at {}",
                    self.cluster, request.authority
                ),
            )
        })
    }
}
