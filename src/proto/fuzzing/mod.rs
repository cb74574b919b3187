//! Fuzz targets of the core, written once and run two ways: by libFuzzer (`fuzz/`, `just
//! fuzz`, nightly) and by the stable property test in `cargo test -p azmi --lib`
//! (`proto::tests::properties`), which feeds them the seed corpus, mutations of it and
//! pseudo-random bytes from [`crate::proto::splitmix64`].
//!
//! Every target takes raw bytes, decodes its input with [`Input`] (a short input is padded with
//! zeros, so every byte string is a valid input), runs the code under test and **panics when a
//! property fails**: that panic is what both runners report.
//!
//! | target | what it drives | properties beyond "never panics" |
//! |---|---|---|
//! | `response` | every source's 2xx parser and failure classifier | a token is a header-safe `b64token` equal to the body's `access_token`, known expiry within 7 days, ordered timings; no control characters in messages |
//! | `expiry` | `expires_on` / `expires_in` in every format | round trip of every §6.2 format against an independent calendar |
//! | `retry_after` | `Retry-After` (seconds, HTTP-date) and the `-ms` headers | never above the 60 s cap; IMF-fixdate round trip |
//! | `www_authenticate` | the Arc challenge and key file | a key path is always `<ARC_KEY_DIR>/<name>.key`; an authorization is header-safe |
//! | `detect` | detection, `check` and `start` on arbitrary environments | the precedence table, `check` agrees with `start`, the endpoint is where the request goes, no secret in an error |
//! | `shared_entry` | entries and leases read from a shared store | a stored token is header-safe with ordered timings and round trips; only usable tokens are served; leases are bounded |
//! | `acquisition` | whole calls (cache, refresh, retries, Arc, workload identity) on arbitrary answers | terminates within its step bound; never a token that was not in a 2xx body; never an expired token; no secret in an error |
//!
//! This module exists only under `cfg(test)` or the `fuzzing` feature and is not an API.

mod acquisition;
mod dates;
mod detect;
mod oracle;
mod parsers;
mod seeds;
mod shared;
mod world;

pub use acquisition::acquisition;
#[cfg(test)]
pub(crate) use acquisition::calls;
pub use dates::{expiry, retry_after};
pub use detect::detect;
pub use parsers::{response, www_authenticate};
pub use seeds::{DICTIONARY, seeds};
pub use shared::shared_entry;

/// Every source, for targets that pick one.
const SOURCES: [crate::proto::Source; 8] = {
    use crate::proto::Source::*;
    [
        Imds,
        AppService,
        AppService2017,
        AzureMl,
        CloudShell,
        AzureArc,
        ServiceFabric,
        WorkloadIdentity,
    ]
};

/// One fuzz target: a name (`fuzz/fuzz_targets/<name>.rs`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: [Target; 7] = [
    ("response", response),
    ("expiry", expiry),
    ("retry_after", retry_after),
    ("www_authenticate", www_authenticate),
    ("detect", detect),
    ("acquisition", acquisition),
    ("shared_entry", shared_entry),
];

/// Reads structured values from fuzz bytes; past the end every read returns zeros (or
/// nothing), so every byte string decodes.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A value in `0..n` (`n` at most 256).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A length-prefixed chunk: one length byte, then up to that many bytes.
    pub fn chunk(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte());
        self.take(len)
    }

    /// A length-prefixed chunk as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Input;

    #[test]
    fn input_pads_with_zeros_and_reads_chunks() {
        let mut input = Input::new(&[3, b'a', b'b', b'c', 9, 1]);
        assert_eq!(input.chunk(), b"abc");
        assert_eq!(input.u16(), 0x0109);
        assert!(input.is_empty());
        assert_eq!(input.byte(), 0);
        assert_eq!(input.below(7), 0);
        assert_eq!(input.chunk(), b"");
    }
}
