//! topk streams: kept values exact (or bf16), the largest magnitudes kept, arbitrary payloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gradwire_fuzz::topk(data));
