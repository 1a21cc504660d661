//! Encode arbitrary f32 values with a core pipeline, decode, compare bits.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::roundtrip(data));
