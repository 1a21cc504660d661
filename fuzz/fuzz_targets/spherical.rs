//! spherical streams: every block within alpha of its input, arbitrary payloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::spherical(data));
