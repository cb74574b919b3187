//! What a finished fetch hands over: the result and the [`Report`] of what the credential
//! must remember, absorbed by [`crate::proto::ManagedIdentity::finish`] (quinn's endpoint
//! events idea: outputs are polled once, never read back through getters).

use super::workload::AssertionRead;
use crate::proto::cache::CacheKey;
use crate::proto::error::Error;
use crate::proto::token::AccessToken;

/// A finished fetch: the result, and what the credential must remember of it.
#[derive(Debug)]
#[must_use = "hand the outcome to ManagedIdentity::finish"]
pub struct Outcome {
    pub(super) result: Result<AccessToken, Error>,
    pub(crate) report: Report,
}

impl Outcome {
    /// The token or the error, before the credential has seen it.
    pub fn result(&self) -> Result<&AccessToken, &Error> {
        self.result.as_ref()
    }

    /// True when this fetch was the proactive refresh of a token that is still usable (a
    /// failure then still serves that token).
    pub fn is_refresh(&self) -> bool {
        self.report.refreshing.is_some()
    }

    /// The result alone, dropping the report (tests that step a fetch by hand).
    pub fn into_result(self) -> Result<AccessToken, Error> {
        self.result
    }

    pub(crate) fn into_parts(self) -> (Result<AccessToken, Error>, Report) {
        (self.result, self.report)
    }
}

/// What a fetch learned that outlives it.
#[derive(Debug)]
pub(crate) struct Report {
    /// The key the result belongs to.
    pub key: CacheKey,
    /// The IMDS probe got an answer: IMDS is there, never probe again.
    pub probe_answered: bool,
    /// The federated token read during this fetch (workload identity).
    pub assertion: Option<AssertionRead>,
    /// Entra refused a federated token as expired (AADSTS700024): drop the kept copy.
    pub assertion_rejected: bool,
    /// The wait a failed final response asked for (429/5xx with `Retry-After`).
    pub throttle_ms: Option<u64>,
    /// The cached token this fetch refreshed, served if the refresh failed.
    pub refreshing: Option<AccessToken>,
}
