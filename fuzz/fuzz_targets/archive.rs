//! Archives: arbitrary bytes, and valid archives with arbitrary bytes spliced in.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::archive(data));
