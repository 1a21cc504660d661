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
///
/// The cost `f(b) = sum (v >> b) + m (1 + b)` is convex in `b`: its step
/// `f(b+1) - f(b) = m - sum ((v >> b) - (v >> (b+1)))` never decreases, because
/// `(v >> b) - (v >> (b+1)) = ceil((v >> b) / 2)` never increases with `b`. So the lowest
/// minimum is the first `b` whose step is not negative, found by bisection in five passes over
/// the values instead of 32 (criterion `chunk/encode/sparse-dither:*`: the 32-pass search took
/// most of the encode time).
#[must_use]
pub fn best_rice_parameter(values: &[u64]) -> u8 {
    let m = values.len() as u64;
    let step_not_negative =
        |b: u8| values.iter().map(|&v| (v >> b) - (v >> (b + 1))).fold(0u64, u64::saturating_add) <= m;
    let (mut lo, mut hi) = (0u8, MAX_RICE_PARAMETER);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if step_not_negative(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Appends the Rice code of `values` with parameter `b` to `out`.
///
/// # Panics
/// If `b` exceeds [`MAX_RICE_PARAMETER`] (a caller bug: the bit accumulator takes 32 bits at a time).
pub fn rice_encode(values: &[u64], b: u8, out: &mut Vec<u8>) {
    assert!(b <= MAX_RICE_PARAMETER, "Rice parameter {b} above {MAX_RICE_PARAMETER}");
    out.reserve(rice_bits(values, b).div_ceil(8) as usize);
    // Bits gather in a 64-bit accumulator and leave 32 at a time (a byte at a time was a third of
    // the `sparse-dither` encode time); every `put` adds at most 32 bits to fewer than 32 pending.
    let mut acc = 0u64;
    let mut filled = 0u32;
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
        let mut q = v >> b;
        while q >= 32 {
            put(u64::from(u32::MAX), 32, out);
            q -= 32;
        }
        put((1u64 << q) - 1, q as u32 + 1, out); // q ones, then the zero
        put(v & ((1u64 << b) - 1), u32::from(b), out);
    }
    while filled > 0 {
        out.push(acc as u8);
        acc >>= 8;
        filled = filled.saturating_sub(8);
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
    let total = bytes.len() as u64 * 8;
    let short = || Error::new(ErrorCode::CodecData, format!("Rice code ends before its {count} values"));
    let max_q = max_value >> b;
    let low_mask = (1u64 << b) - 1;
    let mut pos = 0u64;
    for j in 0..count {
        // The unary part, a 57-bit window at a time: the run of ones, then its zero.
        let mut q = 0u64;
        loop {
            let valid = (total - pos.min(total)).min(57);
            if valid == 0 {
                return Err(short());
            }
            let ones = u64::from(window(bytes, pos).trailing_ones()).min(valid);
            if q + ones > max_q {
                return Err(Error::new(ErrorCode::CodecData, format!("Rice value {j} exceeds {max_value}")));
            }
            q += ones;
            pos += ones;
            if ones < valid {
                pos += 1; // the zero that ends the run
                break;
            }
        }
        if pos + u64::from(b) > total {
            return Err(short());
        }
        let v = (q << b) | (window(bytes, pos) & low_mask);
        pos += u64::from(b);
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

/// The bits of `bytes` from bit `pos` on, least significant first (at least 57 of them, zeros
/// past the end).
fn window(bytes: &[u8], pos: u64) -> u64 {
    let at = (pos / 8) as usize;
    let word = if let Some(eight) = bytes.get(at..at + 8) {
        u64::from_le_bytes(eight.try_into().unwrap_or_default())
    } else {
        let mut buf = [0u8; 8];
        let tail = bytes.get(at..).unwrap_or_default();
        buf[..tail.len()].copy_from_slice(tail);
        u64::from_le_bytes(buf)
    };
    word >> (pos % 8)
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

    /// The definition, one bit at a time: what the word-level decoder must match exactly.
    fn rice_decode_bitwise(bytes: &[u8], b: u8, count: usize, max_value: u64) -> Result<(Vec<u64>, usize)> {
        let bit = |i: u64| -> Option<u64> { bytes.get((i / 8) as usize).map(|byte| u64::from(byte >> (i % 8)) & 1) };
        let short = || Error::new(ErrorCode::CodecData, "short");
        let (mut pos, mut out) = (0u64, Vec::new());
        for _ in 0..count {
            let mut q = 0u64;
            while bit(pos).ok_or_else(short)? == 1 {
                q += 1;
                pos += 1;
                if q > max_value >> b {
                    return Err(Error::new(ErrorCode::CodecData, "exceeds"));
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
                return Err(Error::new(ErrorCode::CodecData, "more than"));
            }
            out.push(v);
        }
        let used = pos.div_ceil(8) as usize;
        if pos % 8 != 0 && bytes[used - 1] >> (pos % 8) != 0 {
            return Err(Error::new(ErrorCode::ReservedNonzero, "padding"));
        }
        Ok((out, used))
    }

    #[test]
    fn word_level_decoder_matches_the_bitwise_definition_on_valid_and_damaged_codes() {
        let mut rng = crate::rng::SeededRng::new(3);
        for trial in 0..400u64 {
            let count = rng.next_below(40) as usize;
            let spread = 1u64 << rng.next_below(20);
            let values: Vec<u64> = (0..count).map(|_| rng.next_below(spread) * rng.next_below(3)).collect();
            let b = best_rice_parameter(&values);
            assert!((0..=31).all(|c| rice_bits(&values, b) <= rice_bits(&values, c)), "{values:?}");
            assert!((0..b).all(|c| rice_bits(&values, c) > rice_bits(&values, b)), "not the lowest: {values:?}");
            let mut bytes = Vec::new();
            rice_encode(&values, b, &mut bytes);
            // Flip, cut or extend the code, decode with tight or loose maxima: both decoders agree.
            match trial % 4 {
                1 if !bytes.is_empty() => {
                    let i = rng.next_below(bytes.len() as u64) as usize;
                    bytes[i] ^= 1 << rng.next_below(8);
                }
                2 if !bytes.is_empty() => bytes.truncate(rng.next_below(bytes.len() as u64) as usize),
                3 => bytes.extend([0xFF; 9]),
                _ => {}
            }
            for max in [spread * 2, spread / 2 + 1, u64::MAX >> 1] {
                let mut got = Vec::new();
                let fast = rice_decode(&bytes, b, count, max, &mut got).map(|used| (got, used));
                let slow = rice_decode_bitwise(&bytes, b, count, max);
                match (fast, slow) {
                    (Ok(f), Ok(s)) => assert_eq!(f, s, "trial {trial}"),
                    (Err(f), Err(s)) => assert_eq!(f.code(), s.code(), "trial {trial}: {f} / {s}"),
                    (f, s) => panic!("trial {trial}: {f:?} against {s:?}"),
                }
            }
        }
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
