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
mod shared;

pub use chain::get_token_default;

pub use shared::{FAILED_REFRESH_HOLD_MS, SharedStore, StoreError, get_token_shared};

use crate::proto::{
    AccessToken, Acquisition, Action, Cached, EnvSnapshot, Error, FileError, FileRead, HostFacts,
    HttpRequest, HttpResponse, ManagedIdentity, Outcome, Poll, Start, TokenRequest, TransportError,
    UnixMillis,
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
        return Ok(map(token));
    }
    let (env, facts, random) = (io.env(), io.facts(), io.random());
    match credential.start(now, request, &env, facts, random)? {
        Start::Cached(token) => Ok(map(&token)),
        Start::Fetch(mut acquisition) => {
            let outcome = run(&mut acquisition, io);
            credential
                .finish(io.now(), outcome)
                .map(|token| map(&token))
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
    loop {
        match acquisition.poll(io.now()) {
            Poll::Act(Action::Send(request)) => match io.send(&request) {
                Ok(response) => acquisition.handle_response(io.now(), response),
                Err(error) => acquisition.handle_transport_error(io.now(), error),
            },
            Poll::Act(Action::ReadFile(read)) => {
                let result = io.read_file(&read);
                acquisition.handle_file(io.now(), result);
            }
            Poll::Wait(deadline) => io.sleep_until(deadline),
            Poll::Done(outcome) => return outcome,
        }
    }
}

/// What the non-blocking loop needs from its host.
pub trait Dispatch {
    /// Starts sending `request`, giving up after `timeout_ms` in total; the response (or the
    /// failure) comes back later through [`Acquisition::handle_response`] or
    /// [`Acquisition::handle_transport_error`]. An error here means it could not start.
    fn dispatch(&mut self, request: &HttpRequest, timeout_ms: u64) -> Result<(), TransportError>;
    /// Reads a file now (a host without file access answers `NoAccess`).
    fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError>;
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
/// starts, when a response arrives (after the `handle_*`), and when the time it asked for
/// comes.
pub fn pump(acquisition: &mut Acquisition, now: UnixMillis, host: &mut impl Dispatch) -> Pumped {
    loop {
        match acquisition.poll(now) {
            Poll::Act(Action::Send(request)) => {
                match host.dispatch(&request, acquisition.send_timeout_ms()) {
                    Ok(()) => return Pumped::Pending(acquisition.poll_timeout()),
                    Err(error) => acquisition.handle_transport_error(now, error),
                }
            }
            Poll::Act(Action::ReadFile(read)) => {
                let result = host.read_file(&read);
                acquisition.handle_file(now, result);
            }
            Poll::Wait(at) => return Pumped::Pending(Some(at)),
            Poll::Done(outcome) => return Pumped::Done(Box::new(outcome)),
        }
    }
}
