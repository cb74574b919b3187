//! The workload-identity leg: the federated token (a Kubernetes service-account JWT) is read
//! from `AZURE_FEDERATED_TOKEN_FILE` — or reused, when the credential read it less than
//! [`crate::proto::workload::ASSERTION_MAX_AGE_MS`] ago from the same file — and completes the
//! `client_credentials` form posted to Entra ([`crate::proto::request::workload_body`]).

use super::{Acquisition, Stage};
use crate::proto::files::FileRead;
use crate::proto::http::HttpResponse;
use crate::proto::request::workload_body;
use crate::proto::secret::Secret;
use crate::proto::source::Source;
use crate::proto::time::UnixMillis;
use crate::proto::workload::{
    AADSTS_ASSERTION_EXPIRED, ASSERTION_MAX_BYTES, assertion, names_aadsts,
};

/// What workload identity's fetch needs besides the request.
#[derive(Clone, Debug)]
pub(crate) struct WorkloadLeg {
    /// The application (client) id the assertion is exchanged for.
    pub client_id: String,
    /// The scope, sent as given (`/.default` kept).
    pub scope: String,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file: String,
    /// A federated token the credential read recently from the same file.
    pub cached_assertion: Option<Secret>,
}

/// A federated token read during a fetch, for the credential to keep.
#[derive(Clone, Debug)]
pub(crate) struct AssertionRead {
    /// The file it came from.
    pub path: String,
    /// The token (trimmed).
    pub token: Secret,
    /// When it was read.
    pub read_at: UnixMillis,
}

impl Acquisition {
    /// Sends with the kept assertion, or reads the file first.
    pub(super) fn begin_workload(&mut self) {
        let Some(leg) = &self.workload else {
            return self.finish(Err(crate::proto::Error::internal(
                "a workload-identity fetch without its settings",
            )));
        };
        match &leg.cached_assertion {
            Some(assertion) => {
                let assertion = assertion.0.clone();
                self.send_workload(&assertion);
            }
            None => {
                let read = FileRead {
                    path: leg.token_file.clone(),
                    max_len: ASSERTION_MAX_BYTES,
                    follow_symlinks: true,
                };
                self.read(read, Stage::Assertion);
            }
        }
    }

    /// The federated token file's contents, read at `now`.
    pub(super) fn on_assertion(&mut self, now: UnixMillis, contents: &[u8]) {
        match assertion(contents) {
            Ok(token) => {
                let path = self
                    .workload
                    .as_ref()
                    .map(|leg| leg.token_file.clone())
                    .unwrap_or_default();
                self.report.assertion = Some(AssertionRead {
                    path,
                    token: Secret(token.clone()),
                    read_at: now,
                });
                self.send_workload(&token);
            }
            Err(error) => self.finish(Err(error)),
        }
    }

    /// True when Entra refused the federated token as expired (AADSTS700024, matched
    /// exactly) and the fetch sent the credential's kept copy: that copy is dropped and the
    /// file read again, once, in this same fetch. Any AADSTS700024 also tells the credential
    /// to drop its copy (the [`crate::proto::acquisition::Report`]).
    pub(super) fn stale_assertion_refused(&mut self, response: &HttpResponse) -> bool {
        if self.key.source != Source::WorkloadIdentity
            || self.stage != Stage::Token
            || !names_aadsts(
                &String::from_utf8_lossy(&response.body),
                AADSTS_ASSERTION_EXPIRED,
            )
        {
            return false;
        }
        self.report.assertion_rejected = true;
        self.report.assertion = None;
        self.workload
            .as_mut()
            .is_some_and(|leg| leg.cached_assertion.take().is_some())
    }

    fn send_workload(&mut self, assertion: &str) {
        let Some(leg) = &self.workload else { return };
        let mut request = self.request.clone();
        request.body = workload_body(&leg.client_id, &leg.scope, assertion);
        self.secrets.push(Secret(assertion.to_string()));
        self.send(request, Stage::Token);
    }
}
