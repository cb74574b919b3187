//! Attempts, retries and deadlines: what happens when a request gets no answer, times out, or
//! is answered with a retryable failure.
//!
//! Failed answers are classified ([`crate::proto::response`]) and retried per the source's
//! policy ([`crate::proto::retry`]): the wait is the jittered backoff or the server's
//! `Retry-After`, whichever is longer (capped at 60 s). Every request carries per-attempt
//! timeouts the host enforces; the core adds a 1 s slack deadline of its own as a backstop
//! for a host that does not. The whole fetch gives up at the call deadline.
//!
//! ## Transport failures: retried or not, unavailable or failed
//!
//! * A **response timeout or broken connection** (the request may have reached the source) is
//!   retried within the same budget — as Go, @azure/identity and Python do; msal-node never
//!   retries a thrown transport error.
//! * A connection that **cannot be made** (refused, DNS failure, connect timeout) is retried
//!   only if this source has answered this credential before. Otherwise nothing listens there
//!   and retrying for a minute and a half helps nobody: fail at once (deliberate difference;
//!   it is why the SDKs take seconds to say "no managed identity").
//! * A TLS rejection (e.g. a Service Fabric certificate that does not match the thumbprint), a
//!   host egress denial and an oversized response (> 1 MiB) are not retried.
//! * Classification: no response at all from a source that has **never answered** this
//!   credential is *unavailable* (a credential chain should move on); once it has answered,
//!   the same failure is a *transport* error (authentication failed: a chain must not silently
//!   switch identity because of a hiccup). The same rule applies to a request that times out.
//!   @azure/identity turns every managed-identity failure into "unavailable"; Go azidentity
//!   does so only for the probe and for non-JSON IMDS answers.
//! * A probe that gets no answer, or a 403 `unreachable` answer, is *unavailable* at once,
//!   without retries.
//!

use super::timer::Timer;
use super::{Acquisition, Stage};
use crate::proto::error::Error;
use crate::proto::http::{TransportError, TransportErrorKind};
use crate::proto::time::UnixMillis;

impl Acquisition {
    /// The last request got no response. Ignored when no request is in flight; a report at or
    /// after the deadline counts as the timeout.
    pub fn handle_transport_error(&mut self, now: UnixMillis, error: TransportError) {
        if !self.in_time(now) {
            return;
        }
        if self.stage == Stage::Probe {
            return self.on_probe_failure(&error);
        }
        // Timeouts and broken connections are retried. A connection that cannot even be made
        // (refused, unresolvable, connect timeout) to a source that never answered proves
        // nothing listens there: waiting 90 s for it helps nobody (deliberate; Go and Python
        // retry it, which is why their "no managed identity" answer takes seconds).
        let retryable = match error.kind {
            TransportErrorKind::Timeout | TransportErrorKind::Other => true,
            TransportErrorKind::ConnectionRefused
            | TransportErrorKind::Dns
            | TransportErrorKind::ConnectTimeout => self.answered_before,
            _ => false,
        };
        let failure = Error::no_response(
            self.key.source,
            &self.endpoint,
            &error,
            self.answered_before,
        );
        if retryable {
            self.retry_or_finish(now, failure, None);
        } else {
            self.finish(Err(failure));
        }
    }

    /// Time passed: starts the next attempt when its backoff is over; gives up when the
    /// request in flight reached its deadline. A spurious call does nothing.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        if self.stage == Stage::Done {
            return;
        }
        if let Some(at) = self.timers.get(Timer::Backoff) {
            if now >= at {
                self.timers.stop(Timer::Backoff);
                self.begin();
            }
            return;
        }
        if self.timers.get(Timer::Attempt).is_none_or(|d| now < d) {
            return;
        }
        let error = Error::timed_out(self.key.source, &self.endpoint, self.answered_before);
        self.finish(Err(error));
    }

    /// True when a request is in flight and `now` is before its deadline. A late answer
    /// triggers the backstop instead (a blocking host that ignores the timeouts can only
    /// report late, so this is where the driver sees the deadline), and an answer with nothing
    /// in flight (after the outcome) must not replace or resurrect the outcome.
    pub(super) fn in_time(&mut self, now: UnixMillis) -> bool {
        match self.timers.get(Timer::Attempt) {
            None => false,
            Some(deadline) if now >= deadline => {
                self.handle_timeout(now);
                false
            }
            Some(_) => true,
        }
    }

    /// Schedules the next attempt after a retryable failure, or gives up with `error` when the
    /// retries or the call's deadline are used up. The wait is the policy's jittered backoff,
    /// or the server's `Retry-After` when longer (never shorter).
    pub(super) fn retry_or_finish(
        &mut self,
        now: UnixMillis,
        error: Error,
        server_wait: Option<u64>,
    ) {
        let next = self.retries + 1;
        if next > self.policy.max_retries {
            self.report.throttle_ms = server_wait;
            return self.finish(Err(error.gave_up(next, false)));
        }
        let backoff = self.policy.backoff_ms(next, self.jitter.next_u64());
        let at = now.plus_millis(backoff.max(server_wait.unwrap_or(0)));
        if at >= self.call_deadline {
            self.report.throttle_ms = server_wait;
            return self.finish(Err(error.gave_up(next, true)));
        }
        self.retries = next;
        self.stage = Stage::Backoff;
        self.timers.clear();
        self.timers.set(Timer::Backoff, at);
        self.next = None;
    }
}
