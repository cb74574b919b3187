//! The per-request (HTTP) context: takes the cached token, or pauses until the root has one.

use super::glue;
use super::host::{Envoy, Shared, request_authority, shared_store};
use super::token_root::LocalReply;
use ::proxy_wasm::traits::{Context, HttpContext};
use ::proxy_wasm::types::Action;
use std::rc::Rc;

/// One request through the filter.
pub(super) struct AuthStream {
    id: u32,
    /// `None` when the root context was never configured.
    shared: Option<Rc<Shared>>,
}

impl AuthStream {
    pub(super) fn new(id: u32, shared: Option<Rc<Shared>>) -> Self {
        Self { id, shared }
    }

    /// Pause body and trailers while the headers wait for a token: continuing them would
    /// forward the request without it.
    fn hold(&self) -> Action {
        match &self.shared {
            Some(shared) if shared.root.borrow().is_waiting(self.id) => Action::Pause,
            _ => Action::Continue,
        }
    }
}

impl Context for AuthStream {}

impl HttpContext for AuthStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            let reply = LocalReply {
                status: super::token_root::DENY_STATUS,
                body: r#"{"error":"invalid_argument","message":"the azmi filter has no valid configuration; see the Envoy log"}"#.into(),
            };
            glue::send(&mut Envoy, &reply);
            return Action::Pause;
        };
        let now = shared.now();
        let authority = if shared.root.borrow().routes() {
            request_authority()
        } else {
            None
        };
        let step = shared.root.borrow_mut().on_request(
            now,
            self.id,
            authority.as_deref(),
            &mut shared_store(),
        );
        if step.wake {
            glue::schedule(&mut Envoy, &shared.tick, Some(1));
        }
        if shared.stats.due(now) {
            let mut root = shared.root.borrow_mut();
            shared.stats.record(&mut Envoy, root.expiries(now));
        }
        let header = shared.root.borrow().config().header.clone();
        if glue::on_request(&mut Envoy, &shared.stats, &header, &step) {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.hold()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.hold()
    }
}

impl Drop for AuthStream {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared
            && let Ok(mut root) = shared.root.try_borrow_mut()
        {
            root.on_stream_done(self.id);
        }
    }
}
