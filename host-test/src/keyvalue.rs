// About 360 lines: the wasi:keyvalue host (buckets, compare-and-swap) and the store behind it
// (memory or files) in one place, because every host call maps onto one store operation.
//! `wasi:keyvalue` (draft 2: buckets and compare-and-swap) for the guests, backed by one
//! in-memory store that every instance of a [`crate::Host`] shares — the store behind the
//! shared-cache component's `azmi-tokens` bucket.
//!
//! A [`KeyValue`] is cheap to clone; clones share the data. The `azmi` CLI keeps it in files
//! instead ([`crate::file_store`]). Tests can break it
//! ([`KeyValue::fail_with`]) or withhold the bucket ([`KeyValue::without_buckets`]) to check
//! that the component degrades to its own cache. Values are secrets: nothing here logs them.

use crate::file_store::FileStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Resource, ResourceTable};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "keyvalue-host",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::BucketHandle,
            "wasi:keyvalue/atomics.cas": super::CasHandle,
        },
    });
}

use generated::wasi::keyvalue::{atomics, store};

/// The bucket identifier the component opens.
pub const BUCKET: &str = "azmi-tokens";

type Data = HashMap<String, HashMap<String, Vec<u8>>>;

/// A key-value store shared by clones: in memory, or the CLI's per-user files
/// ([`KeyValue::files`]).
#[derive(Clone, Default)]
pub struct KeyValue {
    data: Arc<Mutex<Data>>,
    /// Keep the values in these files instead of in memory.
    files: Option<FileStore>,
    /// Why files were refused (not private to the user), for the host to report.
    refused: Arc<Mutex<Vec<String>>>,
    /// Every operation fails with this text.
    failure: Arc<Mutex<Option<String>>>,
    /// `open` answers "no such store".
    no_buckets: bool,
}

impl KeyValue {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store kept in `files` (the `azmi` CLI's per-user cache).
    pub fn files(files: FileStore) -> Self {
        Self {
            files: Some(files),
            ..Self::default()
        }
    }

    /// Files refused since the last call (owned by someone else, or not private), to warn
    /// about; they were treated as absent.
    pub fn take_refused(&self) -> Vec<String> {
        std::mem::take(&mut *self.refused.lock().unwrap())
    }

    /// A store whose every operation fails with `why` (a broken backend).
    pub fn fail_with(self, why: &str) -> Self {
        *self.failure.lock().unwrap() = Some(why.to_string());
        self
    }

    /// A store that has no bucket at all (a host that did not configure one).
    pub fn without_buckets(mut self) -> Self {
        self.no_buckets = true;
        self
    }

    /// The value at `key` in `bucket`.
    pub fn value(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.data.lock().unwrap().get(bucket)?.get(key).cloned()
    }

    /// Every key in `bucket`.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let data = self.data.lock().unwrap();
        let mut keys: Vec<String> = data
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Sets `key` in `bucket` (tests plant corrupt or foreign values this way).
    pub fn put(&self, bucket: &str, key: &str, value: &[u8]) {
        let mut data = self.data.lock().unwrap();
        data.entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), value.to_vec());
    }

    fn check(&self) -> Result<(), store::Error> {
        match self.failure.lock().unwrap().clone() {
            Some(why) => Err(store::Error::Other(why)),
            None => Ok(()),
        }
    }

    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, store::Error> {
        self.check()?;
        match &self.files {
            Some(files) => {
                let mut refused = Vec::new();
                let value = files
                    .get(bucket, key, &mut refused)
                    .map_err(store::Error::Other);
                self.refused.lock().unwrap().extend(refused);
                value
            }
            None => Ok(self.value(bucket, key)),
        }
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), store::Error> {
        self.check()?;
        match &self.files {
            Some(files) => files.set(bucket, key, value).map_err(store::Error::Other),
            None => {
                self.put(bucket, key, value);
                Ok(())
            }
        }
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), store::Error> {
        self.check()?;
        match &self.files {
            Some(files) => files.delete(bucket, key).map_err(store::Error::Other),
            None => {
                if let Some(b) = self.data.lock().unwrap().get_mut(bucket) {
                    b.remove(key);
                }
                Ok(())
            }
        }
    }

    fn list(&self, bucket: &str) -> Result<Vec<String>, store::Error> {
        self.check()?;
        match &self.files {
            Some(files) => files.keys(bucket).map_err(store::Error::Other),
            None => Ok(self.keys(bucket)),
        }
    }

    /// Writes `value` if `key` still holds `expected`; `Ok(false)` when it changed.
    fn compare_and_set(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, store::Error> {
        self.check()?;
        if let Some(files) = &self.files {
            return files
                .compare_and_set(bucket, key, expected, value)
                .map_err(store::Error::Other);
        }
        let mut data = self.data.lock().unwrap();
        let bucket = data.entry(bucket.to_string()).or_default();
        if bucket.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        bucket.insert(key.to_string(), value.to_vec());
        Ok(true)
    }
}

/// An open bucket: its name in the shared store.
pub struct BucketHandle {
    name: String,
    store: KeyValue,
}

/// A value read for compare-and-swap.
pub struct CasHandle {
    bucket: String,
    key: String,
    store: KeyValue,
    read: Option<Vec<u8>>,
}

/// What a guest's store data provides for `wasi:keyvalue`: the store (if the host offers
/// one) and the guest's resource table.
pub struct KeyValueView<'a> {
    /// The store, if the host offers one.
    pub store: Option<&'a KeyValue>,
    /// The guest's resource table.
    pub table: &'a mut ResourceTable,
}

/// Adds `wasi:keyvalue` store and atomics to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasKeyValue>(linker, view)?;
    atomics::add_to_linker::<_, HasKeyValue>(linker, view)?;
    Ok(())
}

struct HasKeyValue;

impl wasmtime::component::HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl KeyValueView<'_> {
    fn bucket(&self, bucket: &Resource<BucketHandle>) -> wasmtime::Result<(String, KeyValue)> {
        let handle = self.table.get(bucket)?;
        Ok((handle.name.clone(), handle.store.clone()))
    }
}

impl store::Host for KeyValueView<'_> {
    fn open(&mut self, identifier: String) -> Answer<Resource<BucketHandle>> {
        let Some(kv) = self.store.filter(|kv| !kv.no_buckets) else {
            return Ok(Err(store::Error::NoSuchStore));
        };
        if let Err(e) = kv.check() {
            return Ok(Err(e));
        }
        let handle = BucketHandle {
            name: identifier,
            store: kv.clone(),
        };
        Ok(Ok(self.table.push(handle)?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    fn get(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<Option<Vec<u8>>> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.get(&name, &key))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> Answer<()> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.set(&name, &key, &value))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<()> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.delete(&name, &key))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<bool> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.get(&name, &key).map(|v| v.is_some()))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        _cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv
            .list(&name)
            .map(|keys| store::KeyResponse { keys, cursor: None }))
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> Answer<i64> {
        let (name, kv) = self.bucket(&bucket)?;
        loop {
            let current = match kv.get(&name, &key) {
                Ok(value) => value,
                Err(e) => return Ok(Err(e)),
            };
            let number = current
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
                .unwrap_or(0);
            let next = number.wrapping_add(delta);
            match kv.compare_and_set(&name, &key, current.as_deref(), next.to_string().as_bytes()) {
                Ok(true) => return Ok(Ok(next)),
                Ok(false) => continue,
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let swapped = handle.store.compare_and_set(
            &handle.bucket,
            &handle.key,
            handle.read.as_deref(),
            &value,
        );
        match swapped {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                let read = match handle.store.get(&handle.bucket, &handle.key) {
                    Ok(read) => read,
                    Err(e) => return Ok(Err(atomics::CasError::StoreError(e))),
                };
                let again = self.table.push(CasHandle { read, ..handle })?;
                Ok(Err(atomics::CasError::CasFailed(again)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(e))),
        }
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    fn new(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<Resource<CasHandle>> {
        let (name, kv) = self.bucket(&bucket)?;
        let read = match kv.get(&name, &key) {
            Ok(read) => read,
            Err(e) => return Ok(Err(e)),
        };
        let handle = CasHandle {
            bucket: name,
            key,
            store: kv,
            read,
        };
        Ok(Ok(self.table.push(handle)?))
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> Answer<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.read.clone()))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}
