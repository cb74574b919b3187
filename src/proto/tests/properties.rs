//! The fuzz targets ([`crate::proto::fuzzing`]) as a stable property test: each target gets its
//! seed corpus, mutations of it (libFuzzer's basic moves, plus the dictionary) and random
//! bytes, all drawn from SplitMix64 with fixed seeds, so every run checks the same inputs.
//! A failure prints the target, the case number and the input's bytes: save them under
//! `fuzz/corpus/<target>/`, list them in `fuzzing/seeds.rs`, and fix the core.

use crate::proto::fuzzing::{DICTIONARY, TARGETS, Target, seeds};
use crate::proto::splitmix::SplitMix64;
use crate::proto::{ErrorKind, Source};

/// Generated cases per target (besides the seeds). The whole test stays well under 5 s in a
/// debug build.
const CASES: usize = 1_500;

/// The dictionary's tokens: `"…"` lines, with `\"`, `\\` and `\xNN` escapes.
fn dictionary() -> Vec<Vec<u8>> {
    DICTIONARY
        .lines()
        .filter_map(|line| line.trim().strip_prefix('"')?.strip_suffix('"'))
        .map(|quoted| {
            let mut out = Vec::new();
            let mut bytes = quoted.bytes();
            while let Some(b) = bytes.next() {
                match (b, b == b'\\') {
                    (_, true) => match bytes.next() {
                        Some(b'x') => {
                            let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                            let hex = core::str::from_utf8(&hex).unwrap_or("00");
                            out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                        }
                        Some(other) => out.push(other),
                        None => {}
                    },
                    (b, false) => out.push(b),
                }
            }
            out
        })
        .collect()
}

/// One libFuzzer-style mutation of `data`, or several stacked.
fn mutate(mut data: Vec<u8>, rng: &mut SplitMix64, dict: &[Vec<u8>], other: &[u8]) -> Vec<u8> {
    let rounds = 1 + rng.next_u64() % 4;
    for _ in 0..rounds {
        let r = rng.next_u64();
        let at = |len: usize| if len == 0 { 0 } else { (r >> 8) as usize % len };
        let pos = at(data.len());
        match r % 8 {
            0 if !data.is_empty() => data[pos] ^= 1 << ((r >> 40) % 8),
            1 if !data.is_empty() => data[pos] = (r >> 40) as u8,
            2 => data.insert(pos.min(data.len()), (r >> 40) as u8),
            3 if !data.is_empty() => {
                let end = (pos + 1 + (r >> 40) as usize % 8).min(data.len());
                data.drain(pos..end);
            }
            4 | 5 => {
                let token = &dict[(r >> 40) as usize % dict.len()];
                let pos = pos.min(data.len());
                data.splice(pos..pos, token.iter().copied());
            }
            6 => data.truncate(pos),
            _ => {
                // Crossover: this input's head, another seed's tail.
                let from = at(other.len()).min(other.len());
                data.truncate(pos);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

/// Random bytes: short, mostly small values (structure bytes), sometimes text.
fn random_input(rng: &mut SplitMix64) -> Vec<u8> {
    let len = (rng.next_u64() % 96) as usize;
    (0..len)
        .map(|_| match rng.next_u64() % 4 {
            0 => (rng.next_u64() % 16) as u8,
            _ => rng.next_u64() as u8,
        })
        .collect()
}

/// Runs `target` on its seeds and `CASES` generated inputs; a failing property names the
/// case and its bytes.
fn run((name, target): Target, cases: usize) {
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "{name} has no seed corpus");
    let dict = dictionary();
    let mut rng = SplitMix64::new(0xa2b1_f00d ^ name.len() as u64);
    let check = |case: usize, input: &[u8]| {
        let outcome = std::panic::catch_unwind(|| target(input));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            panic!("{name} case {case} failed: {why}\ninput: {input:?}");
        }
    };
    for (case, seed) in seeds.iter().enumerate() {
        check(case, seed);
    }
    for case in 0..cases {
        let pick = rng.next_u64() as usize;
        let input = if case % 5 == 4 {
            random_input(&mut rng)
        } else {
            let seed = seeds[pick % seeds.len()].to_vec();
            let other = seeds[(pick >> 16) % seeds.len()];
            mutate(seed, &mut rng, &dict, other)
        };
        check(seeds.len() + case, &input);
    }
}

#[test]
fn response_parser_properties_hold() {
    run(TARGETS[0], CASES);
}

#[test]
fn expiry_round_trips_and_bounds_hold() {
    run(TARGETS[1], CASES);
}

#[test]
fn retry_after_round_trips_and_cap_hold() {
    run(TARGETS[2], CASES);
}

#[test]
fn arc_challenge_and_key_properties_hold() {
    run(TARGETS[3], CASES);
}

#[test]
fn detection_properties_hold() {
    run(TARGETS[4], CASES);
}

#[test]
fn acquisition_state_machine_properties_hold() {
    run(TARGETS[5], CASES);
}

#[test]
fn shared_store_entry_and_lease_properties_hold() {
    run(TARGETS[6], CASES);
}

#[test]
fn every_target_is_listed_under_its_name_with_seeds() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "response",
            "expiry",
            "retry_after",
            "www_authenticate",
            "detect",
            "acquisition",
            "shared_entry"
        ]
    );
    assert!(dictionary().len() > 20, "the dictionary did not parse");
    assert_eq!(dictionary().last().map(Vec::as_slice), Some(&[0u8][..]));
}

/// The state-machine seeds are not vacuous: together they get a token from every source.
#[test]
fn acquisition_seeds_reach_a_token_from_every_source() {
    let mut got: Vec<Source> = Vec::new();
    for seed in seeds("acquisition") {
        got.extend(crate::proto::fuzzing::calls(seed).into_iter().flatten());
    }
    for source in [
        Source::Imds,
        Source::AppService,
        Source::AppService2017,
        Source::AzureMl,
        Source::CloudShell,
        Source::AzureArc,
        Source::ServiceFabric,
        Source::WorkloadIdentity,
    ] {
        assert!(got.contains(&source), "no seed gets a token from {source}");
    }
    let errors: Vec<Result<Source, ErrorKind>> = seeds("acquisition")
        .iter()
        .flat_map(|s| crate::proto::fuzzing::calls(s))
        .filter(Result::is_err)
        .collect();
    assert!(!errors.is_empty(), "no seed exercises a failure");
}
