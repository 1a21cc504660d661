//! m22: encode arbitrary values, decode, check every value against the cell it fell in.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::m22(data));
