//! String equality for the cached path, without a call to the C library's `memcmp`.
//!
//! `a == b` on `str` compiles to a length check and a `memcmp` call. On the cached path that
//! call dominates: on the bench machine (Xeon with AVX-512, under a hypervisor) glibc's
//! `__memcmp_evex_movbe` took 91 % of a native cached lookup (its masked 32-byte load stalls,
//! ~80 ns per call; `perf annotate`), and in the component wasi-libc's `memcmp` is a byte
//! loop. Comparing eight bytes at a time in plain Rust costs a few instructions per word on
//! every target and calls nothing. Only for short keys (scopes, resources, client ids); it is
//! not constant-time and is never used on secrets.

/// True when `a` and `b` hold the same bytes.
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (words_a, tail_a) = a.as_chunks::<8>();
    let (words_b, tail_b) = b.as_chunks::<8>();
    // No early exit: a fold over the words vectorizes; keys are a few dozen bytes.
    let words_differ = words_a.iter().zip(words_b).fold(0u64, |acc, (x, y)| {
        acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    });
    let tail_differs = tail_a
        .iter()
        .zip(tail_b)
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    words_differ == 0 && tail_differs == 0
}

#[cfg(test)]
mod tests {
    use super::same_text;

    /// Equal and unequal strings of every length around the 8-byte word, differing in the
    /// first, a middle and the last byte: the word loop and the tail each decide.
    #[test]
    fn same_text_agrees_with_str_equality_at_every_length_and_position() {
        let base = "https://vault.azure.net/.default-and-some-more";
        for len in 0..base.len() {
            let a = &base[..len];
            assert!(same_text(a, a));
            assert!(!same_text(a, &base[..len + 1]));
            for at in [0, len / 2, len.saturating_sub(1)] {
                if len == 0 {
                    continue;
                }
                let mut b = a.as_bytes().to_vec();
                b[at] ^= 0x01;
                let b = String::from_utf8(b).unwrap();
                assert_eq!(same_text(a, &b), a == b, "len {len}, byte {at}");
                assert!(!same_text(a, &b));
            }
        }
    }
}
