//! Fixed-width labels: `width` bits per label, least-significant bit first, the last byte
//! zero-padded. The fallback when a Huffman code would not be shorter.

use crate::error::{Error, ErrorCode, Result};

/// Bytes holding `n` labels of `width` bits.
#[must_use]
pub fn packed_fixed_len(n: usize, width: u8) -> usize {
    (n as u64 * u64::from(width)).div_ceil(8) as usize
}

/// Appends `labels` (each below `2^width`, `width` in 1..=8) packed `width` bits each.
///
/// # Panics
/// If `width` is not in 1..=8 (a caller bug).
pub fn pack_fixed(labels: &[u8], width: u8, out: &mut Vec<u8>) {
    assert!((1..=8).contains(&width), "label width");
    let mut acc = 0u64;
    let mut filled = 0u32;
    let mask = (1u16 << width) - 1;
    for &l in labels {
        acc |= u64::from(u16::from(l) & mask) << filled;
        filled += u32::from(width);
        if filled >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            filled -= 32;
        }
    }
    out.extend_from_slice(&acc.to_le_bytes()[..filled.div_ceil(8) as usize]);
}

/// Unpacks exactly `out.len()` labels of `width` bits from `bytes`.
///
/// # Errors
/// [`ErrorCode::CodecOutputSize`] unless `bytes` is exactly [`packed_fixed_len`] long;
/// [`ErrorCode::ReservedNonzero`] for nonzero padding bits.
///
/// # Panics
/// If `width` is not in 1..=8 (a caller bug).
pub fn unpack_fixed(bytes: &[u8], width: u8, out: &mut [u8]) -> Result<()> {
    assert!((1..=8).contains(&width), "label width");
    let expected = packed_fixed_len(out.len(), width);
    if bytes.len() != expected {
        return Err(Error::new(
            ErrorCode::CodecOutputSize,
            format!("{} labels of {width} bits take {expected} bytes, found {}", out.len(), bytes.len()),
        ));
    }
    let used = out.len() as u64 * u64::from(width);
    if !used.is_multiple_of(8) && bytes.last().is_some_and(|&b| b >> (used % 8) != 0) {
        return Err(Error::new(ErrorCode::ReservedNonzero, "label padding bits are not zero"));
    }
    let mask = (1u64 << width) - 1;
    let (groups, tail) = out.as_chunks_mut::<8>();
    // One loop per width, so the group size is a constant: the loops then vectorize (3x faster
    // than a run-time width, criterion `chunk/decode/m22:bits=1`).
    match width {
        1 => unpack_groups::<1>(bytes, groups),
        2 => unpack_groups::<2>(bytes, groups),
        3 => unpack_groups::<3>(bytes, groups),
        4 => unpack_groups::<4>(bytes, groups),
        5 => unpack_groups::<5>(bytes, groups),
        6 => unpack_groups::<6>(bytes, groups),
        7 => unpack_groups::<7>(bytes, groups),
        _ => unpack_groups::<8>(bytes, groups),
    }
    let done = groups.len() * 8;
    for (k, o) in tail.iter_mut().enumerate() {
        let i = done + k;
        let bit = i as u64 * u64::from(width);
        let at = (bit / 8) as usize;
        let mut buf = [0u8; 2];
        let take = (bytes.len() - at).min(2);
        buf[..take].copy_from_slice(&bytes[at..at + take]);
        *o = ((u64::from(u16::from_le_bytes(buf)) >> (bit % 8)) & mask) as u8;
    }
    Ok(())
}

/// Eight labels of `W` bits take exactly `W` bytes: one little-endian word per group.
fn unpack_groups<const W: usize>(bytes: &[u8], groups: &mut [[u8; 8]]) {
    let mask = (1u64 << W) - 1;
    let (words, _) = bytes.as_chunks::<W>();
    for (g, src) in groups.iter_mut().zip(words) {
        let mut word = [0u8; 8];
        word[..W].copy_from_slice(src);
        let word = u64::from_le_bytes(word);
        for (j, o) in g.iter_mut().enumerate() {
            *o = ((word >> (j * W)) & mask) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fixed_round_trip(width in 1u8..=8, raw in proptest::collection::vec(any::<u8>(), 0..500)) {
            let labels: Vec<u8> = raw.iter().map(|&l| (u16::from(l) & ((1 << width) - 1)) as u8).collect();
            let mut bytes = Vec::new();
            pack_fixed(&labels, width, &mut bytes);
            prop_assert_eq!(bytes.len(), packed_fixed_len(labels.len(), width));
            let mut out = vec![0u8; labels.len()];
            unpack_fixed(&bytes, width, &mut out).unwrap();
            prop_assert_eq!(out, labels);
        }
    }
}
