//! wyner-ziv streams against side information: the error bound, bound side information checked,
//! unbound streams within their assumed bound, arbitrary payloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::wyner_ziv(data));
