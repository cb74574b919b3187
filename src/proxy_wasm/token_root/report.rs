//! How [`TokenRoot`] answers requests it has no token for: each failure gets a request id;
//! clients get the generic reply with that id ([`LocalReply::for_failure`]), the Envoy log
//! gets the id with the full details ([`failure_details`]), once per failure.
//!
//! A failure is one event: a fetch that ended without a token, or an environment refused at
//! start. The requests answered during the failure hold-down get the same error from the core,
//! and so the same id, without a new log line. proxy-wasm has no random source: the id mixes
//! the time and a per-root counter (SplitMix64). It only labels log lines; two workers failing
//! in the same millisecond may draw the same id, and then a grep finds both lines.

use super::{Level, LocalReply, TokenRoot, Verdict};
use crate::proto::{Error, UnixMillis, splitmix64};
use crate::proxy_wasm::config::FailMode;
use crate::proxy_wasm::verdict::failure_details;

/// The failure last reported (to recognise it again) and its request id.
#[derive(Debug, Default)]
pub(super) struct Reported {
    last: Option<(Error, String)>,
    count: u64,
}

impl Reported {
    /// Remembers `error`, refused at start, under a new id.
    pub(super) fn refused(now: UnixMillis, error: Option<&Error>) -> Self {
        let mut reported = Self::default();
        if let Some(error) = error {
            reported.mint(now, error);
        }
        reported
    }

    /// A new request id for a new failure at `now`, remembered with `error`.
    fn mint(&mut self, now: UnixMillis, error: &Error) -> String {
        self.count += 1;
        let id = format!(
            "{:016x}",
            splitmix64(now.0 ^ splitmix64(self.count ^ 0x617a_6d69))
        );
        self.last = Some((error.clone(), id.clone()));
        id
    }

    /// The id `error` was reported under, if it is the failure last reported: the same error,
    /// or the same error as the core repeats it during the hold-down (its message then ends
    /// with "(remembered: not asking again for N s)").
    fn known(&self, error: &Error) -> Option<&str> {
        let (last, id) = self.last.as_ref()?;
        let same = last.kind() == error.kind()
            && last.mi_source() == error.mi_source()
            && last.status() == error.status()
            && last.code() == error.code()
            && last.correlation_id() == error.correlation_id()
            && error.message().starts_with(last.message());
        same.then_some(id.as_str())
    }
}

impl TokenRoot {
    /// Reports a new failure: its request id and the line that logs it, saying what the
    /// `count` requests answered now get.
    pub(super) fn report_new(
        &mut self,
        now: UnixMillis,
        error: &Error,
        count: usize,
    ) -> (String, (Level, String)) {
        let id = self.reported.mint(now, error);
        let outcome = match self.config.fail_mode {
            FailMode::Deny => "get a 503",
            FailMode::Allow => "go on without a token (fail_mode allow)",
        };
        let line = format!(
            "no token for {}; {count} request(s) {outcome}; {}",
            self.scope,
            failure_details(error, &id)
        );
        (id, (Level::Warn, line))
    }

    /// The verdict for the `count` requests that cannot get a token because of `error`, and
    /// the line to log when `error` is not the failure last reported (then it is reported
    /// now).
    pub(super) fn failed(
        &mut self,
        now: UnixMillis,
        error: &Error,
        count: usize,
    ) -> (Verdict, Option<(Level, String)>) {
        let (id, line) = match self.reported.known(error) {
            Some(id) => (id.to_string(), None),
            None => {
                let (id, line) = self.report_new(now, error, count);
                (id, Some(line))
            }
        };
        (self.failure_verdict(error, &id), line)
    }

    /// The verdict for a request that cannot get a token because of `error`, reported under
    /// `request_id`.
    pub(super) fn failure_verdict(&self, error: &Error, request_id: &str) -> Verdict {
        match self.config.fail_mode {
            FailMode::Deny => Verdict::Reply(LocalReply::for_failure(error, request_id)),
            FailMode::Allow => Verdict::ForwardUnauthenticated,
        }
    }

    /// The line the filter logs when it starts: ready, with its credential (and the links the
    /// chain skipped, and why), or the refusal every request will get.
    pub fn startup_log(&self) -> (Level, String) {
        if let Some(line) = self.refusal() {
            return (Level::Error, line);
        }
        let config = &self.config;
        (
            Level::Info,
            format!(
                "filter ready: scope {}, header {}, cluster {}, credential {}",
                self.scope,
                config.header,
                config.cluster,
                self.choice.describe()
            ),
        )
    }

    /// What to log when the filter starts in an environment that cannot work at all (Azure
    /// Arc and workload identity need files): the error's details and the request id every
    /// request will be answered with.
    pub fn refusal(&self) -> Option<String> {
        let error = self.refused.as_ref()?;
        let id = self.reported.known(error)?;
        Some(format!(
            "no token can be had here; every request {}: {}",
            match self.config.fail_mode {
                FailMode::Deny => "gets a 503",
                FailMode::Allow => "goes on without a token (fail_mode allow)",
            },
            failure_details(error, id)
        ))
    }
}
