//! qsgd and sparse-dither streams: signs kept, errors within a grid step, the deterministic
//! error guarantee, arbitrary payloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::dither(data));
