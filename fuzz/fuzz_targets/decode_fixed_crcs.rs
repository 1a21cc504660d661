//! Arbitrary bytes with every CRC repaired first, so mutations reach record and codec parsing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    gradwire_fuzz::fix_crcs(&mut data);
    gradwire_fuzz::decode_whole_and_bytewise(&data);
    gradwire_fuzz::seekable_agrees(&data);
});
