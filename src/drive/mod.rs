//! The one loop over the core, for every host: [`get_token`] blocks (the component over
//! wasi:http, the native tests over a fake host); [`pump`] never blocks (the Envoy filter,
//! whose responses and timers arrive as callbacks). Both are made of the same step,
//! [`Acquisition::poll`]: perform the action it asks for, report the result, repeat until
//! it says `Done`; then [`ManagedIdentity::finish`] absorbs the outcome.
//!
//! ```text
//! get_token ─► cached ── Fresh ──────────────────────────────► token
//!                 │ RefreshDue / Miss
//!                 ▼
//!               start ── Cached ─────────────────────────────► token
//!                 │ Fetch
//!                 ▼
//!               poll ─► Act(Send) ─► send ─► handle_response ─┐
//!                 ▲  ├► Act(ReadFile) ─► read ─► handle_file ─┤
//!                 │  └► Wait(t) ─► sleep until t ─────────────┤
//!                 └───────────────────────────────────────────┘
//!                    Done(outcome) ─► finish ─────────────────► token or error
//! ```

mod chain;
pub mod lines;
mod shared;

pub use chain::get_token_default;

pub use shared::{FAILED_REFRESH_HOLD_MS, SharedStore, StoreError, get_token_shared};

use crate::proto::{
    AccessToken, Acquisition, Action, Cached, EnvSnapshot, Error, FileError, FileRead, HostFacts,
    HttpRequest, HttpResponse, Level, ManagedIdentity, Outcome, Poll, Start, TokenRequest,
    TransportError, UnixMillis,
};

/// What the blocking loop needs from its host.
pub trait Io {
    /// Current wall-clock time.
    fn now(&mut self) -> UnixMillis;
    /// Sends `request` (enforcing its timeouts) and returns the response, its body read up
    /// to [`crate::proto::MAX_RESPONSE_BYTES`].
    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
    /// Reads a file as `read` says (size cap, symlink policy); never follows a path outside
    /// what the host exposes.
    fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError>;
    /// Blocks until `deadline` (wall clock).
    fn sleep_until(&mut self, deadline: UnixMillis);
    /// The managed-identity variables, read when a fetch starts (never on a cache hit).
    fn env(&mut self) -> EnvSnapshot;
    /// What the host can do and sees (file access, the Arc agent).
    fn facts(&mut self) -> HostFacts;
    /// 16 random bytes: the request id and the retry jitter.
    fn random(&mut self) -> [u8; 16];
    /// The diagnostics level (`AZURE_LOG_LEVEL`, read once by the host): `None` logs nothing
    /// (the default) and costs one call on the cached path.
    fn log_level(&mut self) -> Option<Level> {
        None
    }
    /// Writes one diagnostics line at `level` (only called at or below [`Io::log_level`]).
    fn log(&mut self, level: Level, line: &str) {
        let _ = (level, line);
    }
}

/// Logs the line `make` builds when `io`'s level allows `level` (nothing is formatted
/// otherwise).
fn log(io: &mut impl Io, level: Level, make: impl FnOnce() -> String) {
    if io.log_level().is_some_and(|at| level <= at) {
        io.log(level, &make());
    }
}

/// [`log`] for the non-blocking loop's host.
fn note(host: &mut impl Dispatch, level: Level, make: impl FnOnce() -> String) {
    if host.log_level().is_some_and(|at| level <= at) {
        host.log(level, &make());
    }
}

/// One `get-token` call: the cache, else a fetch driven to its end. `map` turns the token
/// into what the caller returns, so a cache hit is served without copying the token first.
pub fn get_token<T>(
    credential: &mut ManagedIdentity,
    request: &TokenRequest<'_>,
    io: &mut impl Io,
    map: impl FnOnce(&AccessToken) -> T,
) -> Result<T, Error> {
    let now = io.now();
    if let Some(token) = fresh(credential, request, now)? {
        if io.log_level() == Some(Level::Verbose) {
            let line = lines::hit(request.scope, token.source());
            io.log(Level::Verbose, &line);
        }
        return Ok(map(token));
    }
    log(io, Level::Verbose, || lines::miss(request.scope));
    let (env, facts, random) = (io.env(), io.facts(), io.random());
    let started = credential.start(now, request, &env, facts, random);
    if let Err(error) = &started {
        log(io, Level::Error, || format!("azmi: {error}"));
    }
    match started? {
        Start::Cached(token) => Ok(map(&token)),
        Start::Fetch(mut acquisition) => {
            if acquisition.is_refresh() {
                log(io, Level::Info, || lines::refreshing(acquisition.source()));
            }
            let outcome = run(&mut acquisition, io);
            // Why a refresh failed, kept only when it will be logged (`finish` consumes it).
            let refresh_failure = (outcome.is_refresh() && io.log_level() >= Some(Level::Warning))
                .then(|| outcome.result().err().map(ToString::to_string))
                .flatten();
            let result = credential.finish(io.now(), outcome);
            match (&result, refresh_failure) {
                (Ok(_), Some(why)) => log(io, Level::Warning, || {
                    format!("azmi: refresh failed, serving the cached token: {why}")
                }),
                (Ok(token), _) => log(io, Level::Info, || {
                    format!(
                        "azmi: token from {} for {}, expires_on {}, refresh_on {}",
                        token.source(),
                        request.scope,
                        token.expires_on(),
                        token.refresh_on()
                    )
                }),
                (Err(error), _) => log(io, Level::Error, || format!("azmi: {error}")),
            }
            result.map(|token| map(&token))
        }
        // One blocking caller runs one call at a time, so nothing else can be in flight.
        Start::Wait => Err(Error::internal("a token fetch was left in flight")),
    }
}

/// The instance's own token for `request` at `now`, when it is fresh and the call may be
/// answered from the cache (validating the scope and selector either way).
fn fresh<'a>(
    credential: &'a mut ManagedIdentity,
    request: &TokenRequest<'_>,
    now: UnixMillis,
) -> Result<Option<&'a AccessToken>, Error> {
    if request.bypasses_cache() {
        return Ok(None);
    }
    Ok(
        match credential.cached(now, request.scope, request.selector)? {
            Cached::Fresh(token) => Some(token),
            _ => None,
        },
    )
}

/// Runs `acquisition` to its outcome, blocking on the host.
pub fn run(acquisition: &mut Acquisition, io: &mut impl Io) -> Outcome {
    let source = acquisition.source();
    loop {
        match acquisition.poll(io.now()) {
            Poll::Act(Action::Send(request)) => {
                let sent = io.now();
                log(io, Level::Info, || lines::sent(source, &request));
                match io.send(&request) {
                    Ok(response) => {
                        let now = io.now();
                        log(io, Level::Info, || {
                            lines::answered(source, response.status, sent.millis_until(now))
                        });
                        acquisition.handle_response(now, response);
                    }
                    Err(error) => {
                        let now = io.now();
                        log(io, Level::Warning, || {
                            lines::no_response(source, sent.millis_until(now), &error.detail)
                        });
                        acquisition.handle_transport_error(now, error);
                    }
                }
            }
            Poll::Act(Action::ReadFile(read)) => {
                let result = io.read_file(&read);
                acquisition.handle_file(io.now(), result);
            }
            Poll::Wait(deadline) => {
                let now = io.now();
                log(io, Level::Info, || {
                    lines::waiting(source, now.millis_until(deadline), acquisition.retries())
                });
                io.sleep_until(deadline);
            }
            Poll::Done(outcome) => return outcome,
        }
    }
}

/// What the non-blocking loop needs from its host.
pub trait Dispatch {
    /// Starts sending `request`, giving up after `timeout_ms` in total; the response (or the
    /// failure) comes back later through [`respond`]. An error here means it could not start.
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u64) -> Result<(), TransportError>;
    /// Reads a file now (a host without file access answers `NoAccess`).
    fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError>;
    /// The diagnostics level ([`Io::log_level`]); `None` (the default) logs nothing.
    fn log_level(&self) -> Option<Level> {
        None
    }
    /// Writes one diagnostics line at `level` (only called at or below
    /// [`Dispatch::log_level`]).
    fn log(&mut self, level: Level, line: &str) {
        let _ = (level, line);
    }
}

/// Where a pumped fetch stands.
#[derive(Debug)]
#[must_use]
pub enum Pumped {
    /// Waiting for the dispatched response, or until this instant (then pump again).
    Pending(Option<UnixMillis>),
    /// Finished: hand this to [`ManagedIdentity::finish`].
    Done(Box<Outcome>),
}

/// Advances `acquisition` at `now` as far as it goes without waiting: call it when the fetch
/// starts and when the time it asked for comes; a response goes through [`respond`].
pub fn pump(acquisition: &mut Acquisition, now: UnixMillis, host: &mut impl Dispatch) -> Pumped {
    advance(acquisition, now, host, false)
}

/// The answer to the request last dispatched (sent at `sent`), at `now`: logged as
/// [`run`] logs it, handed to the acquisition, which is then advanced as [`pump`] does.
pub fn respond(
    acquisition: &mut Acquisition,
    sent: UnixMillis,
    now: UnixMillis,
    result: Result<HttpResponse, TransportError>,
    host: &mut impl Dispatch,
) -> Pumped {
    let source = acquisition.source();
    match result {
        Ok(response) => {
            note(host, Level::Info, || {
                lines::answered(source, response.status, sent.millis_until(now))
            });
            acquisition.handle_response(now, response);
        }
        Err(error) => {
            note(host, Level::Warning, || {
                lines::no_response(source, sent.millis_until(now), &error.detail)
            });
            acquisition.handle_transport_error(now, error);
        }
    }
    advance(acquisition, now, host, true)
}

/// The loop of [`pump`]; `answered`: an answer was just handled, so a wait is a retry wait
/// (and logged as one; a wait for the response in flight is not).
fn advance(
    acquisition: &mut Acquisition,
    now: UnixMillis,
    host: &mut impl Dispatch,
    mut answered: bool,
) -> Pumped {
    let source = acquisition.source();
    loop {
        match acquisition.poll(now) {
            Poll::Act(Action::Send(request)) => {
                note(host, Level::Info, || lines::sent(source, &request));
                match host.dispatch(&request, acquisition.send_timeout_ms()) {
                    Ok(()) => return Pumped::Pending(acquisition.poll_timeout()),
                    Err(error) => {
                        note(host, Level::Warning, || {
                            lines::no_response(source, 0, &error.detail)
                        });
                        acquisition.handle_transport_error(now, error);
                        answered = true;
                    }
                }
            }
            Poll::Act(Action::ReadFile(read)) => {
                let result = host.read_file(&read);
                acquisition.handle_file(now, result);
            }
            Poll::Wait(at) => {
                if answered {
                    note(host, Level::Info, || {
                        lines::waiting(source, now.millis_until(at), acquisition.retries())
                    });
                }
                return Pumped::Pending(Some(at));
            }
            Poll::Done(outcome) => return Pumped::Done(Box::new(outcome)),
        }
    }
}
