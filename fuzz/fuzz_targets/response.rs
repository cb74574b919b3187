//! libFuzzer entry for `azmi::proto::fuzzing::response` (input layout and properties there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi::proto::fuzzing::response(data));
