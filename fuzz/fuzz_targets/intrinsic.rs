//! intrinsic streams: adjoint identity, projection norms, arbitrary coefficients.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::intrinsic(data));
