//! libFuzzer entry for `azmi::proto::fuzzing::detect` (input layout and properties there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi::proto::fuzzing::detect(data));
