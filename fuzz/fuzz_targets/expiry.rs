//! libFuzzer entry for `azmi::proto::fuzzing::expiry` (input layout and properties there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi::proto::fuzzing::expiry(data));
