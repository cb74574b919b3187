//! The seed corpus, `fuzz/corpus/<target>/`, compiled in: libFuzzer starts from those files
//! and the stable property test replays them (no file is read at run time). A new seed or a
//! crashing input worth keeping is a file there **and** a line here.
//!
//! The byte layout of each target's input is in its doc comment ([`super::response`], …);
//! `fuzz/azmi.dict` holds the tokens both runners splice in.

/// One seed file, by its path under `fuzz/corpus/`.
macro_rules! seed {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/", $path))
    };
}

/// The seed inputs of `target` (none for an unknown name).
pub fn seeds(target: &str) -> &'static [&'static [u8]] {
    match target {
        "response" => {
            const SEEDS: &[&[u8]] = &[
                seed!("response/app-service-2017-windows"),
                seed!("response/arc-client-id-echo"),
                seed!("response/error-flat"),
                seed!("response/error-nested"),
                seed!("response/error-text"),
                seed!("response/imds-string-numbers"),
                seed!("response/iso-expiry"),
                seed!("response/service-fabric-numbers"),
                seed!("response/workload-expires-in"),
            ];
            SEEDS
        }
        "expiry" => {
            const SEEDS: &[&[u8]] = &[
                seed!("expiry/automation"),
                seed!("expiry/iso-offset"),
                seed!("expiry/iso-z"),
                seed!("expiry/millis"),
                seed!("expiry/us-linux"),
                seed!("expiry/us-windows"),
            ];
            SEEDS
        }
        "retry_after" => {
            const SEEDS: &[&[u8]] = &[
                seed!("retry_after/http-date"),
                seed!("retry_after/millis"),
                seed!("retry_after/seconds"),
            ];
            SEEDS
        }
        "www_authenticate" => {
            const SEEDS: &[&[u8]] = &[
                seed!("www_authenticate/key"),
                seed!("www_authenticate/traversal"),
                seed!("www_authenticate/valid-realm"),
            ];
            SEEDS
        }
        "detect" => {
            const SEEDS: &[&[u8]] = &[
                seed!("detect/app-service"),
                seed!("detect/arc-by-agent"),
                seed!("detect/azure-ml"),
                seed!("detect/pod-identity"),
                seed!("detect/secret-in-the-client-id"),
                seed!("detect/secret-piece-in-the-client-id"),
                seed!("detect/service-fabric"),
                seed!("detect/workload"),
            ];
            SEEDS
        }
        "acquisition" => {
            const SEEDS: &[&[u8]] = &[
                seed!("acquisition/app-service"),
                seed!("acquisition/app-service-2017"),
                seed!("acquisition/arc"),
                seed!("acquisition/arc-key-in-a-challenge-header"),
                seed!("acquisition/assertion-echoed-before-it-was-read"),
                seed!("acquisition/azure-ml"),
                seed!("acquisition/cloud-shell"),
                seed!("acquisition/escaped-secret-across-quote-limit"),
                seed!("acquisition/escaped-secret-echo"),
                seed!("acquisition/imds"),
                seed!("acquisition/imds-410-then-token"),
                seed!("acquisition/overlapping-secrets-scrubbed-in-turn"),
                seed!("acquisition/pod-identity"),
                seed!("acquisition/service-fabric"),
                seed!("acquisition/two-calls-refresh"),
                seed!("acquisition/workload"),
            ];
            SEEDS
        }
        "shared_entry" => {
            const SEEDS: &[&[u8]] = &[
                seed!("shared_entry/entry"),
                seed!("shared_entry/entry-refresh-due"),
                seed!("shared_entry/lease"),
            ];
            SEEDS
        }
        _ => &[],
    }
}

/// `fuzz/azmi.dict`, libFuzzer's dictionary (one `"token"` a line, `\xNN` escapes).
pub const DICTIONARY: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/azmi.dict"));
