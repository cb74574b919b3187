//! The in-memory backend of [`super::KeyValue`]: one map per process, shared by clones.

use super::{Backend, Swapped};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Buckets by name, then values by key.
#[derive(Default)]
pub(super) struct Memory(Mutex<HashMap<String, HashMap<String, Vec<u8>>>>);

impl Memory {
    fn data(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Vec<u8>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for Memory {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.data().get(bucket).and_then(|b| b.get(key)).cloned())
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.data()
            .entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        if let Some(b) = self.data().get_mut(bucket) {
            b.remove(key);
        }
        Ok(())
    }

    fn exists(&self, bucket: &str, key: &str) -> Result<bool, String> {
        Ok(self.data().get(bucket).is_some_and(|b| b.contains_key(key)))
    }

    fn keys(&self, bucket: &str) -> Result<Vec<String>, String> {
        let mut keys: Vec<String> = self
            .data()
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        Ok(keys)
    }

    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String> {
        let mut data = self.data();
        let slot = data
            .entry(bucket.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default();
        let next = super::counter(Some(slot)).wrapping_add(delta);
        *slot = next.to_string().into_bytes();
        Ok(next)
    }

    fn swap(
        &self,
        bucket: &str,
        key: &str,
        read: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Swapped, String> {
        let mut data = self.data();
        let bucket = data.entry(bucket.to_string()).or_default();
        if bucket.get(key).map(Vec::as_slice) != read {
            return Ok(Swapped::Changed(bucket.get(key).cloned()));
        }
        bucket.insert(key.to_string(), value.to_vec());
        Ok(Swapped::Done)
    }
}
