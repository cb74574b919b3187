//! The shared token cache of the `managed-identity-shared` build: a `wasi:keyvalue` bucket the
//! host knows as [`BUCKET`], read and written through [`crate::drive::get_token_shared`].

use super::bindings::wasi::keyvalue::{atomics, store};
use crate::drive::{self, Io, SharedStore, StoreError};
use crate::proto::{AccessToken, Error, ManagedIdentity, TokenRequest};
use std::cell::RefCell;

/// The bucket identifier the component opens; the host decides what it is (Spin: a
/// `key_value_stores` label; `azmi serve`: memory or Redis; the `azmi` CLI: files).
pub(super) const BUCKET: &str = "azmi-tokens";

/// The bucket, opened on first use; `None` once it failed (the warning was given).
enum State {
    Unopened,
    Open(Bucket),
    Gone,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State::Unopened) };
}

/// [`SharedStore`] over a `wasi:keyvalue` bucket; versions are `cas` handles.
struct Bucket(store::Bucket);

impl SharedStore for Bucket {
    type Version = atomics::Cas;

    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, atomics::Cas), StoreError> {
        let cas = atomics::Cas::new(&self.0, key).map_err(store_error)?;
        let value = cas.current().map_err(store_error)?;
        Ok((value, cas))
    }

    fn swap(
        &mut self,
        _key: &str,
        version: atomics::Cas,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        match atomics::swap(version, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(error)) => Err(store_error(error)),
        }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(store_error)
    }
}

fn store_error(error: store::Error) -> StoreError {
    StoreError(match error {
        store::Error::NoSuchStore => format!("the host has no key-value store {BUCKET:?}"),
        store::Error::AccessDenied => {
            format!("access to the key-value store {BUCKET:?} was denied")
        }
        store::Error::Other(text) => text,
    })
}

/// One call through the bucket (opened on the first call).
pub(super) fn get_token<T>(
    credential: &mut ManagedIdentity,
    request: &TokenRequest<'_>,
    io: &mut impl Io,
    map: impl FnOnce(&AccessToken) -> T,
) -> Result<T, Error> {
    STATE.with_borrow_mut(|state| {
        if matches!(state, State::Unopened) {
            *state = match store::open(BUCKET) {
                Ok(bucket) => State::Open(Bucket(bucket)),
                Err(error) => {
                    warn(&format!(
                        "the shared token cache is unavailable ({}); this instance keeps its own cache",
                        store_error(error).0
                    ));
                    State::Gone
                }
            };
        }
        let mut bucket = match std::mem::replace(state, State::Gone) {
            State::Open(bucket) => Some(bucket),
            _ => None,
        };
        let result = drive::get_token_shared(credential, request, io, &mut bucket, warn, map);
        if let Some(bucket) = bucket {
            *state = State::Open(bucket);
        }
        result
    })
}

/// One line on stderr (never a token or a stored value).
fn warn(message: &str) {
    let line = format!("azmi: {message}\n");
    let _ = wasi::cli::stderr::get_stderr().blocking_write_and_flush(line.as_bytes());
}
