//! SplitMix64 (Steele, Lea and Flood, 2014): a tiny deterministic generator. The core uses it
//! for retry jitter; hosts use it to turn a counter or a clock reading into well-spread bits.
//! It holds no entropy of its own: whoever seeds it decides how unpredictable it is.

/// The increment added to the state on every step (the golden-ratio "gamma").
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 generator: 64 bits of state, advanced by a constant and scrambled on output.
///
/// Equal seeds give equal sequences, so tests can pin exact values. It is fast and well
/// distributed, not cryptographic: use it for jitter and labels, never for secrets.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value; the first one is `mix(seed)`.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let state = self.0;
        self.0 = state.wrapping_add(GAMMA);
        mix(state)
    }
}

/// One SplitMix64 step without a generator: adds the increment to `z` and applies the output
/// finaliser, so `mix(z) == SplitMix64::new(z).next_u64()`. A good 64-bit hash of an integer.
pub fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // The reference implementation seeded with 0 (Vigna's splitmix64.c).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(g.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn mix_is_the_first_step() {
        for seed in [0, 1, 7, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(mix(seed), SplitMix64::new(seed).next_u64());
        }
    }
}
