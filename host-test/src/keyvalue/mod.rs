//! `wasi:keyvalue` (draft 2: buckets and compare-and-swap) for the guests, backed by one
//! in-memory store that every instance of a [`crate::Host`] shares — the store behind the
//! shared-cache component's `azmi-tokens` bucket.
//!
//! A [`KeyValue`] is cheap to clone; clones share the data. Tests can break it
//! ([`KeyValue::fail_with`]) or withhold the bucket ([`KeyValue::without_buckets`]) to check
//! that the component degrades to its own cache. Values are secrets: nothing here logs them.

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

/// An in-memory key-value store shared by clones.
#[derive(Clone, Default)]
pub struct KeyValue {
    data: Arc<Mutex<Data>>,
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
        Ok(kv.check().map(|()| kv.value(&name, &key)))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> Answer<()> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.check().map(|()| kv.put(&name, &key, &value)))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<()> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.check().map(|()| {
            if let Some(b) = kv.data.lock().unwrap().get_mut(&name) {
                b.remove(&key);
            }
        }))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<bool> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.check().map(|()| kv.value(&name, &key).is_some()))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        _cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.check().map(|()| store::KeyResponse {
            keys: kv.keys(&name),
            cursor: None,
        }))
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
        if let Err(e) = kv.check() {
            return Ok(Err(e));
        }
        let mut data = kv.data.lock().unwrap();
        let slot = data.entry(name).or_default().entry(key).or_default();
        let current = std::str::from_utf8(slot)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        let next = current.wrapping_add(delta);
        *slot = next.to_string().into_bytes();
        Ok(Ok(next))
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        if let Err(e) = handle.store.check() {
            return Ok(Err(atomics::CasError::StoreError(e)));
        }
        let mut data = handle.store.data.lock().unwrap();
        let bucket = data.entry(handle.bucket.clone()).or_default();
        if bucket.get(&handle.key) != handle.read.as_ref() {
            let read = bucket.get(&handle.key).cloned();
            drop(data);
            let again = self.table.push(CasHandle { read, ..handle })?;
            return Ok(Err(atomics::CasError::CasFailed(again)));
        }
        bucket.insert(handle.key.clone(), value);
        Ok(Ok(()))
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    fn new(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<Resource<CasHandle>> {
        let (name, kv) = self.bucket(&bucket)?;
        if let Err(e) = kv.check() {
            return Ok(Err(e));
        }
        let read = kv.value(&name, &key);
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
