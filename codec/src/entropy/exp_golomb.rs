//! Exp-Golomb codes of order `k` (`spec/CODECS.md` §E.5): non-negative integers whose size
//! varies over many octaves (the escaped residues of `wyner-ziv`), at `2 log2(v) + 1 - k` bits or
//! so each, where a Rice code would spend bits linear in the value.
//!
//! Value `v` with order `k`: let `u = v + 2^k` have `L` bits. Written: `L - 1 - k` one-bits, a
//! zero-bit, then the `L - 1` bits of `u` below its leading one, least significant first. Bits
//! fill bytes from the least significant bit (as the Rice codes of §E.3), and the last byte is
//! padded with zero bits. Written here rather than taken from a bit-I/O crate because the bit
//! order is the format's (least significant first, as Rice), which those crates do not offer
//! together with bounded, allocation-free decoding of untrusted input.

use crate::error::{Error, ErrorCode, Result};

/// Largest order.
pub const MAX_EXP_GOLOMB_ORDER: u8 = 31;

/// Largest value the code carries (`u = v + 2^k` stays below 2^63).
pub const MAX_EXP_GOLOMB_VALUE: u64 = (1 << 62) - 1;

/// Bits of `v` coded with order `k`.
#[must_use]
pub fn exp_golomb_bits(v: u64, k: u8) -> u64 {
    let u = v + (1u64 << k);
    let len = 64 - u64::from(u.leading_zeros());
    2 * len - 1 - u64::from(k)
}

/// The order that codes `values` in the fewest bits (the lowest of equals).
#[must_use]
pub fn best_exp_golomb_order(values: &[u64]) -> u8 {
    (0..=MAX_EXP_GOLOMB_ORDER).min_by_key(|&k| values.iter().map(|&v| exp_golomb_bits(v, k)).sum::<u64>()).unwrap_or(0)
}

/// Appends the code of `values` (each at most [`MAX_EXP_GOLOMB_VALUE`]) with order `k`.
///
/// # Panics
/// If `k` exceeds [`MAX_EXP_GOLOMB_ORDER`] or a value exceeds [`MAX_EXP_GOLOMB_VALUE`] (caller bugs).
pub fn exp_golomb_encode(values: &[u64], k: u8, out: &mut Vec<u8>) {
    assert!(k <= MAX_EXP_GOLOMB_ORDER, "Exp-Golomb order {k} above {MAX_EXP_GOLOMB_ORDER}");
    let mut acc = 0u64;
    let mut filled = 0u32;
    // Adds up to 32 bits to fewer than 32 pending ones.
    let mut put = |bits: u64, count: u32, out: &mut Vec<u8>| {
        acc |= bits << filled;
        filled += count;
        if filled >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            filled -= 32;
        }
    };
    for &v in values {
        assert!(v <= MAX_EXP_GOLOMB_VALUE, "Exp-Golomb value {v} above {MAX_EXP_GOLOMB_VALUE}");
        let u = v + (1u64 << k);
        let len = 64 - u.leading_zeros();
        let mut ones = len - 1 - u32::from(k);
        while ones >= 32 {
            put(u64::from(u32::MAX), 32, out);
            ones -= 32;
        }
        put((1u64 << ones) - 1, ones + 1, out); // the ones, then the zero
        let mut low = u & ((1u64 << (len - 1)) - 1);
        let mut left = len - 1;
        while left > 0 {
            let take = left.min(32);
            put(low & ((1u64 << take) - 1), take, out);
            low >>= take;
            left -= take;
        }
    }
    while filled > 0 {
        out.push(acc as u8);
        acc >>= 8;
        filled = filled.saturating_sub(8);
    }
}

/// Decodes `count` values with order `k` from the start of `bytes`, each at most `max_value`;
/// returns the number of bytes the code occupies (its padding bits must be zero).
///
/// # Errors
/// [`ErrorCode::CodecData`] for an order above 31, a code that ends early, or a value above
/// `max_value` (checked from the length of the prefix, before the value is read);
/// [`ErrorCode::ReservedNonzero`] for nonzero padding.
pub fn exp_golomb_decode(bytes: &[u8], k: u8, count: usize, max_value: u64, out: &mut Vec<u64>) -> Result<usize> {
    if k > MAX_EXP_GOLOMB_ORDER {
        return Err(Error::new(ErrorCode::CodecData, format!("Exp-Golomb order {k} above {MAX_EXP_GOLOMB_ORDER}")));
    }
    let total = bytes.len() as u64 * 8;
    let short = || Error::new(ErrorCode::CodecData, format!("Exp-Golomb code ends before its {count} values"));
    // The longest prefix a value up to max_value needs.
    let max_value = max_value.min(MAX_EXP_GOLOMB_VALUE);
    let max_ones = u64::from(64 - (max_value + (1u64 << k)).leading_zeros()) - 1 - u64::from(k);
    let mut pos = 0u64;
    for j in 0..count {
        let mut ones = 0u64;
        loop {
            let valid = (total - pos.min(total)).min(57);
            if valid == 0 {
                return Err(short());
            }
            let run = u64::from(window(bytes, pos).trailing_ones()).min(valid);
            ones += run;
            pos += run;
            if ones > max_ones {
                return Err(Error::new(ErrorCode::CodecData, format!("Exp-Golomb value {j} exceeds {max_value}")));
            }
            if run < valid {
                pos += 1; // the zero that ends the prefix
                break;
            }
        }
        let width = ones + u64::from(k);
        if pos + width > total {
            return Err(short());
        }
        let low = read_bits(bytes, pos, width as u32);
        pos += width;
        let v = ((1u64 << width) | low) - (1u64 << k);
        if v > max_value {
            return Err(Error::new(
                ErrorCode::CodecData,
                format!("Exp-Golomb value {j} is {v}, more than {max_value}"),
            ));
        }
        out.push(v);
    }
    let used = pos.div_ceil(8) as usize;
    if !pos.is_multiple_of(8) && bytes[used - 1] >> (pos % 8) != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, "Exp-Golomb code padding bits are not zero"));
    }
    Ok(used)
}

/// `count` (at most 63) bits of `bytes` from bit `pos` on, least significant first.
fn read_bits(bytes: &[u8], pos: u64, count: u32) -> u64 {
    let first = count.min(32);
    let lo = window(bytes, pos) & ((1u64 << first) - 1);
    if count == first {
        return lo;
    }
    let hi = window(bytes, pos + u64::from(first)) & ((1u64 << (count - first)) - 1);
    lo | hi << first
}

/// The bits of `bytes` from bit `pos` on, least significant first (at least 57 of them, zeros
/// past the end).
fn window(bytes: &[u8], pos: u64) -> u64 {
    let at = (pos / 8) as usize;
    let mut buf = [0u8; 8];
    let tail = bytes.get(at..).unwrap_or_default();
    let n = tail.len().min(8);
    buf[..n].copy_from_slice(&tail[..n]);
    u64::from_le_bytes(buf) >> (pos % 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        // Order 0: 0 -> "0", 1 -> "10" + "0", 2 -> "10" + "1", 3 -> "110" + "00".
        let mut out = Vec::new();
        exp_golomb_encode(&[0, 1, 2, 3], 0, &mut out);
        // Bits in order: 0 | 1 0 0 | 1 0 1 | 1 1 0 0 0  -> LSB first.
        let bits = [0u8, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0];
        let expected: Vec<u8> =
            bits.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |acc, (i, &b)| acc | (b << i))).collect();
        assert_eq!(out, expected);
        assert_eq!([0, 1, 2, 3].map(|v| exp_golomb_bits(v, 0)), [1, 3, 3, 5]);
        assert_eq!(exp_golomb_bits(0, 5), 1 + 5);
        assert_eq!(exp_golomb_bits(MAX_EXP_GOLOMB_VALUE, 0), 125);
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(prop_oneof![0u64..300, 0u64..=MAX_EXP_GOLOMB_VALUE], 0..40), k in 0u8..=31) {
            let mut out = Vec::new();
            exp_golomb_encode(&values, k, &mut out);
            let bits: u64 = values.iter().map(|&v| exp_golomb_bits(v, k)).sum();
            prop_assert_eq!(out.len() as u64, bits.div_ceil(8));
            let mut back = Vec::new();
            prop_assert_eq!(exp_golomb_decode(&out, k, values.len(), MAX_EXP_GOLOMB_VALUE, &mut back).unwrap(), out.len());
            prop_assert_eq!(&back, &values);
            let best = best_exp_golomb_order(&values);
            let cost = |k| values.iter().map(|&v| exp_golomb_bits(v, k)).sum::<u64>();
            prop_assert!(cost(best) <= cost(k));
            if let Some(&top) = values.iter().max().filter(|&&m| m > 0) {
                back.clear();
                let e = exp_golomb_decode(&out, k, values.len(), top - 1, &mut back).unwrap_err();
                prop_assert_eq!(e.code(), ErrorCode::CodecData);
            }
            for cut in 0..out.len() {
                back.clear();
                prop_assert!(exp_golomb_decode(&out[..cut], k, values.len(), MAX_EXP_GOLOMB_VALUE, &mut back).is_err());
            }
        }
    }
}
