//! Every registered codec through its stage trait: arbitrary parameters, arbitrary payloads, round trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::stages(data));
