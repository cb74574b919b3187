//! The Redis backend of [`super::KeyValue`] (`azmi serve --keyvalue redis://…`): bucket `b`'s
//! key `k` is the Redis key `b:k`; compare-and-swap is one Lua script, atomic in Redis.
//!
//! Synchronous on purpose: the `wasi:keyvalue` host functions are synchronous (as in
//! wasmtime-wasi-keyvalue), so a blocking `redis::Connection` (with timeouts) is the simplest
//! fit. A call blocks its tokio worker for one loopback round trip; for a test and CLI host
//! that is acceptable, and an async binding would buy nothing measurable here. One connection
//! per process, behind a mutex, reconnected after any error. Values are secrets: errors carry
//! Redis's message, never a value.

use super::{Backend, Swapped};
use redis::{Client, Commands, Connection, RedisResult, Script};
use std::sync::Mutex;
use std::time::Duration;

/// Connect, read and write timeout: a stalled Redis fails the call instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(2);

/// `KEYS[1]`: the key; `ARGV`: `1` when a value was read (else `0`), the value read, the new
/// value. Sets the new value only if the key still holds what was read (absent included).
const SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
local expected = false
if ARGV[1] == '1' then expected = ARGV[2] end
if current ~= expected then
  if current then return {'changed', current} end
  return {'changed'}
end
redis.call('SET', KEYS[1], ARGV[3])
return {'ok'}
";

/// A Redis server reached through one lazily (re)opened connection.
pub(super) struct Redis {
    client: Client,
    connection: Mutex<Option<Connection>>,
    swap: Script,
}

impl Redis {
    /// Checks `url` (`redis://host:port[/db]`) without connecting.
    pub(super) fn new(url: &str) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| format!("redis URL: {e}"))?;
        Ok(Self {
            client,
            connection: Mutex::new(None),
            swap: Script::new(SWAP),
        })
    }

    /// Runs `op` on the connection, opening it first if needed; any error drops it.
    fn with<T>(&self, op: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Result<T, String> {
        let mut slot = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let connection = match slot.take() {
            Some(connection) => connection,
            None => self.connect().map_err(|e| format!("redis: {e}"))?,
        };
        let connection = slot.insert(connection);
        op(connection).map_err(|e| {
            *slot = None;
            format!("redis: {e}")
        })
    }

    fn connect(&self) -> RedisResult<Connection> {
        let connection = self.client.get_connection_with_timeout(TIMEOUT)?;
        connection.set_read_timeout(Some(TIMEOUT))?;
        connection.set_write_timeout(Some(TIMEOUT))?;
        Ok(connection)
    }
}

impl Backend for Redis {
    fn ping(&self) -> Result<(), String> {
        self.with(|c| redis::cmd("PING").query::<String>(c).map(drop))
    }

    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.with(|c| c.get(name(bucket, key)))
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.with(|c| c.set(name(bucket, key), value))
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        self.with(|c| c.del::<_, usize>(name(bucket, key)).map(drop))
    }

    fn exists(&self, bucket: &str, key: &str) -> Result<bool, String> {
        self.with(|c| c.exists(name(bucket, key)))
    }

    /// Every key of `bucket`, sorted (SCAN, so a big database is not blocked).
    fn keys(&self, bucket: &str) -> Result<Vec<String>, String> {
        let prefix = name(bucket, "");
        let pattern = format!("{}*", glob_escape(&prefix));
        let mut keys = self.with(|c| {
            c.scan_match::<_, String>(pattern)?
                .collect::<RedisResult<Vec<_>>>()
        })?;
        keys.retain_mut(|k| match k.strip_prefix(&prefix) {
            Some(rest) => {
                *k = rest.to_string();
                true
            }
            None => false,
        });
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String> {
        self.with(|c| c.incr(name(bucket, key), delta))
    }

    /// Sets `key` to `value` if it still holds `read` (`None`: still absent), atomically.
    fn swap(
        &self,
        bucket: &str,
        key: &str,
        read: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Swapped, String> {
        let mut reply: Vec<Vec<u8>> = self.with(|c| {
            self.swap
                .key(name(bucket, key))
                .arg(if read.is_some() { "1" } else { "0" })
                .arg(read.unwrap_or_default())
                .arg(value)
                .invoke(c)
        })?;
        match reply.first().map(Vec::as_slice) {
            Some(b"ok") => Ok(Swapped::Done),
            Some(b"changed") => Ok(Swapped::Changed(reply.drain(..).nth(1))),
            _ => Err("redis: unexpected reply from the swap script".to_string()),
        }
    }
}

/// The Redis key of `key` in `bucket`.
fn name(bucket: &str, key: &str) -> String {
    format!("{bucket}:{key}")
}

/// `text` matched literally by a SCAN pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
