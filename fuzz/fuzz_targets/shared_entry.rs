//! libFuzzer entry for `azmi::proto::fuzzing::shared_entry` (input layout and properties there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi::proto::fuzzing::shared_entry(data));
