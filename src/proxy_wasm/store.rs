//! proxy-wasm shared data as a [`SharedStore`], without any host call: the glue (`host.rs`)
//! gives [`SharedData`] over `get_shared_data` / `set_shared_data`, the tests an in-memory map
//! with Envoy's rules.
//!
//! Envoy keeps shared data per `vm_id`, for every worker's VM, for the life of the process.
//! Each value has a CAS number; a write with a CAS number fails when the value changed since,
//! but a write to a key that does not exist always succeeds: a key cannot be created
//! conditionally. So a swap against an absent key first creates it with [`PLACEHOLDER`]
//! (a value every reader treats as absent), then swaps against the placeholder's CAS number,
//! which only one worker can win. The one window left: a worker that found the key absent
//! twice writes its placeholder just after another created the key and took the lease, all
//! between two of its consecutive host calls (microseconds, and only while the key does not
//! exist: once per Envoy process and token); then two workers fetch, once each.

use crate::drive::{SharedStore, StoreError};

/// Written at a key that does not exist yet, so that the next write to it can be conditional.
/// Neither an entry nor a lease: every reader treats it as absent.
pub const PLACEHOLDER: &[u8] = b"{}";

/// Shared data as proxy-wasm offers it.
pub trait SharedData {
    /// The value at `key` and its CAS number (`(None, None)`: the key does not exist).
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String>;
    /// Writes `value` at `key`; with `Some(cas)`, only if that is still the key's CAS number
    /// (`Ok(false)` when it is not).
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String>;
}

/// [`SharedStore`] over [`SharedData`]; versions are CAS numbers.
#[derive(Debug, Default)]
pub struct CasStore<D>(pub D);

impl<D: SharedData> SharedStore for CasStore<D> {
    type Version = Option<u32>;

    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Self::Version), StoreError> {
        self.0.get(key).map_err(StoreError)
    }

    fn swap(
        &mut self,
        key: &str,
        version: Self::Version,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let cas = match version {
            Some(cas) => cas,
            None => {
                // Absent when read: lost if someone wrote it meanwhile; else create it and
                // swap against the placeholder's CAS number.
                if self.0.get(key).map_err(StoreError)?.1.is_some() {
                    return Ok(false);
                }
                self.0.set(key, PLACEHOLDER, None).map_err(StoreError)?;
                match self.0.get(key).map_err(StoreError)?.1 {
                    Some(cas) => cas,
                    None => return Ok(false),
                }
            }
        };
        self.0.set(key, value, Some(cas)).map_err(StoreError)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value, None).map(drop).map_err(StoreError)
    }
}
