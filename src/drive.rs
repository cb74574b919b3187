//! The one blocking loop that drives an [`Acquisition`]: poll an action, perform it through
//! the host, feed the result back, wait for timeouts. Used by the component (wasi:http) and
//! by the native tests; proxy-wasm drives the same core from callbacks instead.

use crate::proto::{
    AccessToken, Acquisition, Action, Error, ErrorKind, FileError, FileRead, HttpRequest,
    HttpResponse, TransportError, UnixMillis,
};

/// Upper bound on loop iterations: a state-machine bug fails instead of spinning forever.
const MAX_STEPS: usize = 64;

/// What the loop needs from its host.
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
}

/// Runs `acquisition` to completion.
pub fn drive(acquisition: &mut Acquisition, io: &mut impl Io) -> Result<AccessToken, Error> {
    for _ in 0..MAX_STEPS {
        if let Some(outcome) = acquisition.poll_outcome() {
            return outcome;
        }
        let now = io.now();
        match acquisition.poll_action(now) {
            Some(Action::Send(request)) => {
                match io.send(&request) {
                    Ok(response) => acquisition.handle_response(io.now(), response),
                    Err(error) => acquisition.handle_transport_error(io.now(), error),
                }
                continue;
            }
            Some(Action::ReadFile(read)) => {
                let result = io.read_file(&read);
                acquisition.handle_file(io.now(), result);
                continue;
            }
            None => {}
        }
        match acquisition.poll_timeout() {
            Some(deadline) => {
                io.sleep_until(deadline);
                acquisition.handle_timeout(io.now());
            }
            None => break,
        }
    }
    Err(Error::new(
        ErrorKind::Service,
        Some(acquisition.source()),
        "internal error: the token fetch stopped without an outcome; please report this",
    ))
}
