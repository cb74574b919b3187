//! The files backend of [`super::KeyValue`]: the `azmi` CLI's per-user cache
//! ([`crate::file_store`]), so consecutive processes share one token.

use super::{Backend, Swapped};
use crate::file_store::FileStore;
use std::sync::Mutex;

/// Files private to the user, and the files refused since the host last asked.
pub(super) struct Files {
    store: FileStore,
    refused: Mutex<Vec<String>>,
}

impl Files {
    pub(super) fn new(store: FileStore) -> Self {
        Self {
            store,
            refused: Mutex::new(Vec::new()),
        }
    }
}

impl Backend for Files {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let mut refused = Vec::new();
        let value = self.store.get(bucket, key, &mut refused);
        self.refused.lock().unwrap().extend(refused);
        value
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.store.set(bucket, key, value)
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        self.store.delete(bucket, key)
    }

    fn exists(&self, bucket: &str, key: &str) -> Result<bool, String> {
        Ok(self.get(bucket, key)?.is_some())
    }

    fn keys(&self, bucket: &str) -> Result<Vec<String>, String> {
        self.store.keys(bucket)
    }

    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String> {
        loop {
            let current = self.get(bucket, key)?;
            let next = super::counter(current.as_deref()).wrapping_add(delta);
            let value = next.to_string();
            if self
                .store
                .compare_and_set(bucket, key, current.as_deref(), value.as_bytes())?
            {
                return Ok(next);
            }
        }
    }

    fn swap(
        &self,
        bucket: &str,
        key: &str,
        read: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Swapped, String> {
        if self.store.compare_and_set(bucket, key, read, value)? {
            Ok(Swapped::Done)
        } else {
            Ok(Swapped::Changed(self.get(bucket, key)?))
        }
    }

    fn take_refused(&self) -> Vec<String> {
        std::mem::take(&mut *self.refused.lock().unwrap())
    }
}
