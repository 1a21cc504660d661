//! Arbitrary bytes as a file: random access never panics and agrees with the streaming reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::seekable_agrees(data));
