//! Golomb-Rice codes of non-negative integers (`spec/CODECS.md` §E.3): the gaps between sorted
//! positions (top-k), and later the indices of spherical codes.
//!
//! Value `v` with parameter `b` is `q = v >> b` one-bits, a zero-bit, then the `b` low bits of
//! `v`, least significant first; bits fill bytes from the least significant bit, and the last
//! byte is padded with zero bits. The encoder picks `b`; the decoder reads it from the payload.

use crate::error::{Error, ErrorCode, Result};

/// Largest Rice parameter.
pub const MAX_RICE_PARAMETER: u8 = 31;

/// Bits of `values` coded with parameter `b`.
#[must_use]
pub fn rice_bits(values: &[u64], b: u8) -> u64 {
    values.iter().map(|&v| (v >> b) + 1 + u64::from(b)).sum()
}

/// The parameter in `0..=31` that codes `values` in the fewest bits (the lowest of equals).
#[must_use]
pub fn best_rice_parameter(values: &[u64]) -> u8 {
    (0..=MAX_RICE_PARAMETER).min_by_key(|&b| rice_bits(values, b)).unwrap_or(0)
}

/// Appends the Rice code of `values` with parameter `b` to `out`.
///
/// # Panics
/// If `b` exceeds [`MAX_RICE_PARAMETER`] (a caller bug: the bit accumulator takes 32 bits at a time).
pub fn rice_encode(values: &[u64], b: u8, out: &mut Vec<u8>) {
    assert!(b <= MAX_RICE_PARAMETER, "Rice parameter {b} above {MAX_RICE_PARAMETER}");
    let mut acc = 0u64;
    let mut filled = 0u32;
    let mut put = |bits: u64, count: u32, out: &mut Vec<u8>| {
        // Callers pass at most 32 bits at a time, so `acc` never overflows.
        acc |= bits << filled;
        filled += count;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    };
    for &v in values {
        let mut q = v >> b;
        while q >= 32 {
            put(u64::from(u32::MAX), 32, out);
            q -= 32;
        }
        put((1u64 << q) - 1, q as u32 + 1, out); // q ones, then the zero
        put(v & ((1u64 << b) - 1), u32::from(b), out);
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// Decodes `count` values with parameter `b` from the start of `bytes`, each at most `max_value`;
/// returns the number of bytes the code occupies (its padding bits must be zero).
///
/// # Errors
/// [`ErrorCode::CodecData`] for a parameter above 31, when the code ends early or a value exceeds `max_value` (checked
/// before the unary part can run long); [`ErrorCode::ReservedNonzero`] for nonzero padding.
pub fn rice_decode(bytes: &[u8], b: u8, count: usize, max_value: u64, out: &mut Vec<u64>) -> Result<usize> {
    if b > MAX_RICE_PARAMETER {
        return Err(Error::new(ErrorCode::CodecData, format!("Rice parameter {b} above {MAX_RICE_PARAMETER}")));
    }
    let bit = |i: u64| -> Option<u64> { bytes.get((i / 8) as usize).map(|byte| u64::from(byte >> (i % 8)) & 1) };
    let short = || Error::new(ErrorCode::CodecData, format!("Rice code ends before its {count} values"));
    let max_q = max_value >> b;
    let mut pos = 0u64;
    for j in 0..count {
        let mut q = 0u64;
        while bit(pos).ok_or_else(short)? == 1 {
            q += 1;
            pos += 1;
            if q > max_q {
                return Err(Error::new(ErrorCode::CodecData, format!("Rice value {j} exceeds {max_value}")));
            }
        }
        pos += 1;
        let mut low = 0u64;
        for i in 0..u64::from(b) {
            low |= bit(pos + i).ok_or_else(short)? << i;
        }
        pos += u64::from(b);
        let v = (q << b) | low;
        if v > max_value {
            return Err(Error::new(ErrorCode::CodecData, format!("Rice value {j} is {v}, more than {max_value}")));
        }
        out.push(v);
    }
    let used = pos.div_ceil(8) as usize;
    if !pos.is_multiple_of(8) && bytes[used - 1] >> (pos % 8) != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, "Rice code padding bits are not zero"));
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_counts_bits() {
        let values: Vec<u64> = vec![0, 1, 2, 3, 7, 8, 100, 1000, 5, 0, 65, 40_000];
        for b in [0u8, 1, 3, 6, 12, 31] {
            let mut bytes = Vec::new();
            rice_encode(&values, b, &mut bytes);
            assert_eq!(bytes.len() as u64, rice_bits(&values, b).div_ceil(8), "b = {b}");
            let mut got = Vec::new();
            assert_eq!(rice_decode(&bytes, b, values.len(), 40_000, &mut got).unwrap(), bytes.len());
            assert_eq!(got, values, "b = {b}");
        }
        let b = best_rice_parameter(&values);
        assert!((0..=31).all(|c| rice_bits(&values, b) <= rice_bits(&values, c)));
    }

    #[test]
    fn known_bits() {
        // 5 with b = 1: q = 2 -> 1, 1, 0; low bit 1 -> bits 1101 from the LSB: 0b1011.
        let mut bytes = Vec::new();
        rice_encode(&[5], 1, &mut bytes);
        assert_eq!(bytes, [0b1011]);
    }

    #[test]
    fn bad_codes_are_refused() {
        let mut got = Vec::new();
        assert_eq!(rice_decode(&[0xFF, 0xFF], 0, 1, 1000, &mut got).unwrap_err().code(), ErrorCode::CodecData);
        assert_eq!(rice_decode(&[0xFF], 0, 1, 3, &mut got).unwrap_err().code(), ErrorCode::CodecData);
        assert_eq!(rice_decode(&[0b10], 0, 1, 10, &mut got).unwrap_err().code(), ErrorCode::ReservedNonzero);
        assert_eq!(rice_decode(&[], 0, 1, 10, &mut got).unwrap_err().code(), ErrorCode::CodecData);
    }
}
