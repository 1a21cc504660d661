//! randk streams: kept values bit for bit (or times n/k), zeros elsewhere.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::randk(data));
