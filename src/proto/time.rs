//! Wall-clock instants as plain numbers: the core never reads a clock, callers pass `now`.

/// Milliseconds since the Unix epoch (wall clock). Token expiry is wall-clock time, and every
/// host (wasi:clocks, proxy-wasm, native) provides it, so all core timestamps use this type.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// This instant plus `ms` milliseconds, saturating.
    pub const fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `self` until `later` (0 if `later` is not later).
    pub const fn millis_until(self, later: UnixMillis) -> u64 {
        later.0.saturating_sub(self.0)
    }
}
