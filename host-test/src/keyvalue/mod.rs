//! `wasi:keyvalue` (draft 2: buckets and compare-and-swap) for the guests, backed by one
//! store that every instance of a [`crate::Host`] (or of `azmi serve`) shares — the store
//! behind the shared-cache component's `azmi-tokens` bucket: in memory, or in Redis
//! (`redis.rs`) so that several processes share it.
//!
//! A [`KeyValue`] is cheap to clone; clones share the data. Tests can break it
//! ([`KeyValue::fail_with`]) or withhold the bucket ([`KeyValue::without_buckets`]) to check
//! that the component degrades to its own cache. Values are secrets: nothing here logs them.

use std::sync::{Arc, Mutex};
use wasmtime::component::{Resource, ResourceTable};

mod files;
mod memory;
mod redis;

use files::Files;
use memory::Memory;
use redis::Redis;

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

/// Where the data lives. Errors are text for `store::Error::Other`, never a value.
trait Backend: Send + Sync {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, bucket: &str, key: &str) -> Result<(), String>;
    fn exists(&self, bucket: &str, key: &str) -> Result<bool, String>;
    /// Every key of `bucket`, sorted.
    fn keys(&self, bucket: &str) -> Result<Vec<String>, String>;
    /// Adds `delta` to the decimal integer at `key` (absent: 0).
    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String>;
    /// Sets `key` to `value` if it still holds `read` (`None`: still absent), atomically.
    fn swap(
        &self,
        bucket: &str,
        key: &str,
        read: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Swapped, String>;
    /// Whether the backend answers now.
    fn ping(&self) -> Result<(), String> {
        Ok(())
    }
    /// Values refused since the last call (files not private to the user), to warn about.
    fn take_refused(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The decimal integer a counter value holds (absent or not a number: 0), for `increment`.
fn counter(value: Option<&[u8]>) -> i64 {
    value
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        .unwrap_or(0)
}

/// What a compare-and-swap did.
enum Swapped {
    /// The new value is stored.
    Done,
    /// Someone changed the key first; this is what it holds now.
    Changed(Option<Vec<u8>>),
}

/// A key-value store shared by clones: in memory (the default), or in Redis.
#[derive(Clone)]
pub struct KeyValue {
    backend: Arc<dyn Backend>,
    /// Every operation fails with this text.
    failure: Arc<Mutex<Option<String>>>,
    /// `open` answers "no such store".
    no_buckets: bool,
}

impl std::fmt::Debug for KeyValue {
    /// Never the data (tokens).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValue").finish_non_exhaustive()
    }
}

impl Default for KeyValue {
    fn default() -> Self {
        Self {
            backend: Arc::new(Memory::default()),
            failure: Arc::default(),
            no_buckets: false,
        }
    }
}

impl KeyValue {
    /// An empty in-memory store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store in the Redis server at `url` (`redis://host:port[/db]`). Checks the URL only:
    /// it connects on first use (and again after any error); see [`KeyValue::reachable`].
    pub fn redis(url: &str) -> Result<Self, String> {
        Ok(Self {
            backend: Arc::new(Redis::new(url)?),
            ..Self::default()
        })
    }

    /// A store in the `azmi` CLI's per-user files ([`crate::file_store`]).
    pub fn files(files: crate::file_store::FileStore) -> Self {
        Self {
            backend: Arc::new(Files::new(files)),
            ..Self::default()
        }
    }

    /// Files refused since the last call (owned by someone else, or not private): they were
    /// treated as absent; the host warns about them.
    pub fn take_refused(&self) -> Vec<String> {
        self.backend.take_refused()
    }

    /// Whether the backend answers now (Redis: a PING; memory: always).
    pub fn reachable(&self) -> Result<(), String> {
        self.backend.ping()
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

    /// The value at `key` in `bucket` (tests; panics if Redis fails).
    pub fn value(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.backend
            .get(bucket, key)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every key in `bucket`, sorted (tests; panics if Redis fails).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.backend.keys(bucket).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets `key` in `bucket` (tests plant corrupt or foreign values this way; panics if
    /// Redis fails).
    pub fn put(&self, bucket: &str, key: &str, value: &[u8]) {
        self.backend
            .set(bucket, key, value)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `op` on the backend, unless this store is broken; a backend failure (Redis
    /// unreachable…) is `other`.
    fn run<T>(
        &self,
        op: impl FnOnce(&dyn Backend) -> Result<T, String>,
    ) -> Result<T, store::Error> {
        self.check()?;
        op(self.backend.as_ref()).map_err(store::Error::Other)
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
        Ok(kv.run(|b| b.get(&name, &key)))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> Answer<()> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.run(|b| b.set(&name, &key, &value)))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<()> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.run(|b| b.delete(&name, &key)))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> Answer<bool> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv.run(|b| b.exists(&name, &key)))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        _cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        let (name, kv) = self.bucket(&bucket)?;
        Ok(kv
            .run(|b| b.keys(&name))
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
        Ok(kv.run(|b| b.increment(&name, &key, delta)))
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let swapped = handle
            .store
            .run(|b| b.swap(&handle.bucket, &handle.key, handle.read.as_deref(), &value));
        match swapped {
            Ok(Swapped::Done) => Ok(Ok(())),
            Ok(Swapped::Changed(read)) => {
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
        let read = match kv.run(|b| b.get(&name, &key)) {
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
