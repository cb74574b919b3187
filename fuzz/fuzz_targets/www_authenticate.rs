//! libFuzzer entry for `azmi::proto::fuzzing::www_authenticate` (input layout and properties there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi::proto::fuzzing::www_authenticate(data));
