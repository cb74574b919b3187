//! Wall-clock instants as plain numbers: the core never reads a clock, callers pass `now`.

/// Milliseconds since the Unix epoch (wall clock). Token expiry is wall-clock time, and every
/// host (wasi:clocks, proxy-wasm, native) provides it, so all core timestamps use this type.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// The instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        // Not `saturating_mul`: on wasm32 its overflow check is a call to `__multi3` (a
        // 128-bit multiply), twice per cached lookup; a compare against the bound is not.
        if secs > u64::MAX / 1000 {
            Self(u64::MAX)
        } else {
            Self(secs * 1000)
        }
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

#[cfg(test)]
mod tests {
    use super::UnixMillis;

    /// `from_secs` multiplies exactly up to the bound and saturates above it, as
    /// `saturating_mul` did (an absurd `expires_on` must never wrap into the past).
    #[test]
    fn from_secs_is_exact_below_the_bound_and_saturates_above_it() {
        let bound = u64::MAX / 1000;
        assert_eq!(UnixMillis::from_secs(0), UnixMillis(0));
        assert_eq!(
            UnixMillis::from_secs(1_796_276_670),
            UnixMillis(1_796_276_670_000)
        );
        assert_eq!(UnixMillis::from_secs(bound), UnixMillis(bound * 1000));
        assert_eq!(UnixMillis::from_secs(bound + 1), UnixMillis(u64::MAX));
        assert_eq!(UnixMillis::from_secs(u64::MAX), UnixMillis(u64::MAX));
        for secs in [bound - 1, bound, bound + 1, u64::MAX] {
            assert_eq!(
                UnixMillis::from_secs(secs).0,
                secs.saturating_mul(1000),
                "{secs}"
            );
        }
    }
}
