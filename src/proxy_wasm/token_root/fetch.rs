//! The fetch of [`TokenRoot`]: started by the core, driven by [`drive::pump`] and
//! [`drive::respond`] through the glue's [`Dispatch`] (which log its requests, answers and
//! retry waits at the configured level), absorbed when it ends (and, when this root fetched
//! for every worker, written to the shared store).

use super::{Bearer, Dispatch, Effects, Fetch, Level, TokenRoot, Verdict, host_facts, seed};
use crate::drive::{self, Pumped, SharedStore, lines};
use crate::proto::{
    self, Error, FileError, FileErrorKind, FileRead, HttpRequest, HttpResponse, Outcome, Start,
    TokenRequest, TransportError, UnixMillis,
};

impl TokenRoot {
    /// Whether the fetch in flight waits for the answer to call `call`.
    pub fn awaits(&self, call: u32) -> bool {
        self.fetch.as_ref().is_some_and(|f| f.call == Some(call))
    }

    /// The response to call `call` (or why none came), at `now`.
    pub fn on_response(
        &mut self,
        now: UnixMillis,
        call: u32,
        result: Result<HttpResponse, TransportError>,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        let Some(fetch) = self.fetch.as_mut().filter(|f| f.call == Some(call)) else {
            // A call the fetch gave up on (deadline passed): nothing waits for it.
            return Effects::default();
        };
        fetch.call = None;
        let effects = self.advance(now, Some(result), dispatch, store);
        self.with_notes(effects)
    }

    /// When the root wants its next tick, in milliseconds from `now`; `None`: no tick needed
    /// (requests wake the root when they need it).
    pub fn next_tick_ms(&self, now: UnixMillis) -> Option<u64> {
        if self.wake_pending {
            return Some(1);
        }
        let at = match &self.fetch {
            Some(fetch) => fetch.acquisition.poll_timeout()?,
            None => self.follow?,
        };
        Some(now.millis_until(at).max(1))
    }

    /// Starts a fetch: the core decides whether it is a first fetch or a proactive refresh.
    /// A lease this root took is released when no fetch starts.
    pub(super) fn start(
        &mut self,
        now: UnixMillis,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        self.fetches += 1;
        let request = TokenRequest {
            timeout_ms: self.config.timeout_ms.map(u64::from),
            probe: self.choice.probe,
            credential: self.choice.link,
            ..TokenRequest::new(&self.scope, &self.selector)
        };
        let random = seed(now, self.fetches);
        let effects = match self
            .identity
            .start(now, &request, &self.env, host_facts(), random)
        {
            Ok(Start::Fetch(acquisition)) => {
                if acquisition.is_refresh() && self.logs(proto::Level::Info) {
                    let line = lines::refreshing(acquisition.source());
                    self.notes.push((Level::Info, line));
                }
                self.fetch = Some(Fetch {
                    acquisition,
                    call: None,
                    sent: now,
                });
                return self.pump(now, dispatch, store);
            }
            Ok(Start::Cached(token)) => self.resume_all(Verdict::Forward(Bearer::new(&token))),
            // Only this root starts fetches, and it has none in flight.
            Ok(Start::Wait) => Effects::default(),
            Err(error) => self.fetch_failed(now, error),
        };
        self.end_lease(now, store, None, false);
        effects
    }

    /// Advances the fetch with [`drive::pump`]; absorbs its outcome when it ends.
    pub(super) fn pump(
        &mut self,
        now: UnixMillis,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        self.advance(now, None, dispatch, store)
    }

    /// Advances the fetch, first with the `answer` to its request if one came
    /// ([`drive::respond`]); absorbs its outcome when it ends. The drive loop's lines go to
    /// the notes, the requests sent to the effects.
    pub(super) fn advance(
        &mut self,
        now: UnixMillis,
        answer: Option<Result<HttpResponse, TransportError>>,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        let Some(fetch) = self.fetch.as_mut() else {
            return Effects::default();
        };
        let mut glue = Glue {
            dispatch,
            call: None,
            level: self.log_level,
            lines: Vec::new(),
        };
        let pumped = match answer {
            Some(result) => {
                drive::respond(&mut fetch.acquisition, fetch.sent, now, result, &mut glue)
            }
            None => drive::pump(&mut fetch.acquisition, now, &mut glue),
        };
        let sent = u64::from(glue.call.is_some());
        if glue.call.is_some() {
            fetch.call = glue.call;
            fetch.sent = now;
        }
        self.notes.append(&mut glue.lines);
        let mut effects = match pumped {
            Pumped::Pending(_) => Effects::default(),
            Pumped::Done(outcome) => {
                self.fetch = None;
                self.finish(now, *outcome, store)
            }
        };
        effects.token_requests += sent;
        effects
    }

    /// Absorbs the fetch's outcome; when this root fetched for every worker, writes the new
    /// token to the store and releases the lease (or, after a failed refresh that keeps the
    /// current token, holds the lease so the others keep it too).
    fn finish(
        &mut self,
        now: UnixMillis,
        outcome: Outcome,
        store: &mut impl SharedStore,
    ) -> Effects {
        let refresh_failure = match outcome.result() {
            Err(error) if outcome.is_refresh() => {
                Some((error.message().to_string(), error.class()))
            }
            _ => None,
        };
        match self.identity.finish(now, outcome) {
            Ok(token) => {
                match refresh_failure {
                    Some(_) => self.end_lease(now, store, None, true),
                    None => self.end_lease(now, store, Some(&token), false),
                }
                let failed = refresh_failure.as_ref().map(|(_, class)| *class);
                let line = match refresh_failure {
                    Some((why, _)) => (
                        Level::Warn,
                        format!(
                            "proactive refresh for {} failed; the current token stays in use until it expires: {why}",
                            self.scope
                        ),
                    ),
                    None => (
                        Level::Info,
                        format!(
                            "token for {} from {} (expires_on {}, refresh_on {})",
                            self.scope,
                            token.source(),
                            token.expires_on(),
                            token.refresh_on()
                        ),
                    ),
                };
                let mut effects = self.resume_all(Verdict::Forward(Bearer::new(&token)));
                effects.log.push(line);
                effects.token_failures.extend(failed);
                effects
            }
            Err(error) => {
                self.end_lease(now, store, None, false);
                self.fetch_failed(now, error)
            }
        }
    }

    /// A fetch ended without a token: a new failure, reported under a new request id that
    /// every paused request (and every request answered during the hold-down) gets.
    fn fetch_failed(&mut self, now: UnixMillis, error: Error) -> Effects {
        let (id, line) = self.report_new(now, &error, self.waiting.len());
        let mut effects = self.resume_all(self.failure_verdict(&error, &id));
        effects.log.push(line);
        effects.token_failures.push(error.class());
        effects
    }
}

/// [`drive::Dispatch`] over the glue's [`Dispatch`], keeping the call id of what it sent
/// and the drive loop's lines (at Envoy's level for each, [`Level::of`]).
struct Glue<'a, D> {
    dispatch: &'a mut D,
    call: Option<u32>,
    level: Option<proto::Level>,
    lines: Vec<(Level, String)>,
}

impl<D: Dispatch> drive::Dispatch for Glue<'_, D> {
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u64) -> Result<(), TransportError> {
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        self.call = Some(self.dispatch.dispatch(request, timeout)?);
        Ok(())
    }

    fn log_level(&self) -> Option<proto::Level> {
        self.level
    }

    fn log(&mut self, level: proto::Level, line: &str) {
        self.lines.push((Level::of(level), line.to_string()));
    }

    /// Cannot happen (`no_file_access` refuses the sources that read files), but answered
    /// rather than stalled.
    fn read_file(&mut self, _read: &FileRead) -> Result<Vec<u8>, FileError> {
        Err(FileError {
            kind: FileErrorKind::NoAccess,
            detail: "proxy-wasm has no file access".into(),
        })
    }
}
