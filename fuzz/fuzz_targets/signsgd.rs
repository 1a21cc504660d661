//! signsgd streams and their compressed-domain aggregation against decoded references.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::signsgd(data));
