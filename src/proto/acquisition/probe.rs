//! The IMDS availability probe, for credential chains: before asking IMDS for a token, ask
//! whether anything answers at all, with a short budget and no retries, so a machine without
//! managed identity is told so in about a second rather than after IMDS's long retry schedule.
//!
//! The probe is `GET <base>/metadata/identity/oauth2/token` with no query and no `Metadata`
//! header: IMDS answers it at once with a 400 and mints no token (Go azidentity and
//! Python azure-identity probe this way; JS sends a request without `Metadata` too). Any HTTP
//! answer means IMDS is there, except the 403 "unreachable" a proxy such as Docker Desktop
//! sends for link-local addresses. The credential probes once, until IMDS answers; it never
//! probes pod identity (its NMI endpoint is a real token service, not IMDS) or after IMDS has
//! issued it a token (a failed probe would then wrongly say "no managed identity").

use super::{Acquisition, Stage};
use crate::proto::detect::IMDS_PATH;
use crate::proto::error::Error;
use crate::proto::http::Timeouts;
use crate::proto::http::{Header, HttpRequest, HttpResponse, Method, TransportError};

/// The probe's whole budget: 1 s per phase, no retries.
const PROBE_TIMEOUTS: Timeouts = Timeouts::phases(1_000, 1_000, 1_000);

/// The probe for IMDS token request `token_request`, labelled with the same request id.
pub(crate) fn probe_request(token_request: &HttpRequest, request_id: &str) -> HttpRequest {
    let path = token_request
        .path_and_query
        .split('?')
        .next()
        .unwrap_or(IMDS_PATH)
        .to_string();
    HttpRequest {
        method: Method::Get,
        path_and_query: path,
        headers: vec![Header {
            name: "x-ms-client-request-id",
            value: request_id.to_string(),
            sensitive: false,
        }],
        body: Vec::new(),
        body_sensitive: false,
        timeouts: PROBE_TIMEOUTS,
        ..token_request.clone()
    }
}

impl Acquisition {
    /// Any HTTP answer to the probe: IMDS is there (go on with the token request), unless a
    /// proxy said it cannot reach it.
    pub(super) fn on_probe_answer(&mut self, response: &HttpResponse) {
        debug_assert_eq!(self.stage, Stage::Probe);
        let unreachable = response.status == 403
            && String::from_utf8_lossy(&response.body).contains("unreachable");
        if unreachable {
            let error = Error::probe_proxy_unreachable(self.key.source, &self.endpoint);
            self.finish(Err(error));
        } else {
            self.report.probe_answered = true;
            self.begin();
        }
    }

    /// No answer to the probe: no managed identity here (the probe is never retried).
    pub(super) fn on_probe_failure(&mut self, error: &TransportError) {
        let error = Error::probe_no_answer(self.key.source, &self.endpoint, &error.detail);
        self.finish(Err(error));
    }
}
