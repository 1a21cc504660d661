//! Arbitrary bytes as a stream: no panic, bounded memory, same result whole or byte by byte.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::decode_whole_and_bytewise(data));
