//! Packed sign bits: the kernels shared by sign codecs (`signsgd`), compressed-domain majority
//! vote, and any codec that stores signs as a bit plane.
//!
//! Bit layout (`spec/CODECS.md` §5): value `i` of a chunk is bit `i % 8` of byte `i / 8`
//! (least-significant bit first, so the same bits read as little-endian words of any width).
//! A bit is 1 when the value is negative (`x < 0.0`) and 0 otherwise: zero, negative zero and NaN
//! count as +1. Padding bits after the last value are 0.
//!
//! The loops work on 32 or 64 values at a time with no branches, so the compiler vectorizes them; on
//! this project's reference machine a bit-by-bit `bitvec` loop is 11-35x slower
//! (`../shared/reference/perf-limits.md` §3), which is why `bitvec` is not used here.

/// Number of bytes holding `n` sign bits.
#[must_use]
pub const fn packed_len(n: usize) -> usize {
    n.div_ceil(8)
}

/// Whether `x < 0.0`, on the bit pattern: `0x80000001` (the smallest negative subnormal) up to
/// `0xFF800000` (negative infinity); `-0.0` and every NaN fall outside.
#[inline]
fn negative(x: f32) -> u32 {
    u32::from(x.to_bits().wrapping_sub(0x8000_0001) < 0x7F80_0000)
}

/// The sign bits of 64 values as a little-endian word.
///
/// Written as two independent 32-bit halves: in this form LLVM vectorizes within the block (8
/// lanes per compare), and packing 64 MiB runs at about 25 GB/s; the single-word form was
/// vectorized across blocks with scalar loads and ran at 6.7 GB/s (`examples`-style timing of
/// `Writer` on 2^24 values, this machine).
#[inline]
fn sign_word(block: &[f32; 64]) -> u64 {
    let (lo, hi) = block.split_at(32);
    let (mut a, mut b) = (0u32, 0u32);
    for i in 0..32 {
        a |= negative(lo[i]) << i;
        b |= negative(hi[i]) << i;
    }
    u64::from(a) | u64::from(b) << 32
}

/// Packs the signs of `values` into `out` (exactly [`packed_len`] bytes).
///
/// # Panics
/// If `out.len() != packed_len(values.len())` (a caller bug, never input-dependent).
///
/// # Examples
/// ```
/// let mut bits = [0u8; 2];
/// gradwire_codec::signs::pack(&[1.0, -2.0, 0.0, -0.0, -1e-30, 3.0, -4.0, 5.0, -6.0], &mut bits);
/// assert_eq!(bits, [0b0101_0010, 0b0000_0001]);
/// ```
pub fn pack(values: &[f32], out: &mut [u8]) {
    assert_eq!(out.len(), packed_len(values.len()), "sign buffer length");
    let (blocks, tail) = values.as_chunks::<64>();
    let (words, rest) = out.split_at_mut(blocks.len() * 8);
    for (block, dst) in blocks.iter().zip(words.chunks_exact_mut(8)) {
        dst.copy_from_slice(&sign_word(block).to_le_bytes());
    }
    pack_tail(tail, rest);
}

/// Packs the signs of `values` into `out` like [`pack`] and returns the sum of `|x|` (in f64).
///
/// The sum is accumulated in 32 f32 lanes per 4096 values and then in f64, so the pass runs
/// at the speed of [`pack`]; it is an encoder-side estimate, never recomputed by a decoder.
///
/// # Panics
/// If `out.len() != packed_len(values.len())`.
pub fn pack_with_abs_sum(values: &[f32], out: &mut [u8]) -> f64 {
    assert_eq!(out.len(), packed_len(values.len()), "sign buffer length");
    let mut total = 0f64;
    let (blocks, tail) = values.as_chunks::<64>();
    let (words, rest) = out.split_at_mut(blocks.len() * 8);
    for (group, dst) in blocks.chunks(64).zip(words.chunks_mut(64 * 8)) {
        for (block, d) in group.iter().zip(dst.chunks_exact_mut(8)) {
            d.copy_from_slice(&sign_word(block).to_le_bytes());
        }
        // A second pass over the group while it is in L1: 32 independent lanes vectorize into
        // four accumulators, so the adds do not wait on each other.
        let flat = group.as_flattened();
        let mut lanes = [0f32; 32];
        for block in flat.as_chunks::<32>().0 {
            for (l, x) in lanes.iter_mut().zip(block) {
                *l += x.abs();
            }
        }
        let sum: f64 = lanes.iter().map(|&l| f64::from(l)).sum();
        // Values near f32::MAX can overflow an f32 lane; such a group is summed again in f64.
        total += if sum.is_finite() || flat.iter().any(|x| !x.is_finite()) {
            sum
        } else {
            flat.iter().map(|&x| f64::from(x.abs())).sum()
        };
    }
    pack_tail(tail, rest);
    total + tail.iter().map(|&x| f64::from(x.abs())).sum::<f64>()
}

fn pack_tail(tail: &[f32], out: &mut [u8]) {
    out.fill(0);
    for (i, &x) in tail.iter().enumerate() {
        out[i / 8] |= u8::from(x < 0.0) << (i % 8);
    }
}

/// Whether bit `i` of a packed plane is set (value `i` is negative).
#[inline]
#[must_use]
pub fn bit(bits: &[u8], i: usize) -> bool {
    bits[i / 8] >> (i % 8) & 1 == 1
}

/// Calls `apply(slot, ±magnitude)` for each value: `magnitude` with its sign bit flipped where
/// the bit is 1. One loop for unpacking and accumulating; `apply` inlines, so both vectorize.
#[inline]
fn for_each_signed(bits: &[u8], magnitude: f32, out: &mut [f32], apply: impl Fn(&mut f32, f32)) {
    let m = magnitude.to_bits();
    let (blocks, tail) = out.as_chunks_mut::<32>();
    let (words, rest) = bits.split_at(blocks.len() * 4);
    for (block, w) in blocks.iter_mut().zip(words.chunks_exact(4)) {
        let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        for (i, v) in block.iter_mut().enumerate() {
            apply(v, f32::from_bits(m ^ ((w >> i) & 1) << 31));
        }
    }
    for (i, v) in tail.iter_mut().enumerate() {
        apply(v, f32::from_bits(m ^ u32::from(bit(rest, i)) << 31));
    }
}

/// Writes `magnitude` with the sign of each bit: `out[i]` is `magnitude` with bit 31 set when bit
/// `i` is 1. `magnitude` must have its sign bit clear.
///
/// # Panics
/// If `bits` is shorter than [`packed_len`] of `out.len()`.
pub fn unpack_scaled(bits: &[u8], magnitude: f32, out: &mut [f32]) {
    for_each_signed(bits, magnitude, out, |v, x| *v = x);
}

/// Adds `magnitude`, negated where the bit is 1, to `acc` (`acc[i] += ±magnitude`); a negative
/// `magnitude` (a negative weight) flips every term.
///
/// # Panics
/// If `bits` is shorter than [`packed_len`] of `acc.len()`.
pub fn accumulate_scaled(bits: &[u8], magnitude: f32, acc: &mut [f32]) {
    for_each_signed(bits, magnitude, acc, |v, x| *v += x);
}

/// Whether the padding bits after `n` values in the last byte are all zero.
#[must_use]
pub fn padding_is_zero(bits: &[u8], n: usize) -> bool {
    match (n % 8, bits.last()) {
        (0, _) | (_, None) => true,
        (r, Some(&last)) => last >> r == 0,
    }
}

/// Majority vote over sign planes of `n` values each, with ties going to +1 (bit 0), as in
/// Bernstein et al. 2019: bit `i` of `out` is 1 when more than half of the inputs have bit `i` set.
///
/// The count runs bit-sliced: each input word is added into a vertical binary counter of
/// `ceil(log2(N + 1))` words with carries (`O(N log N)` word operations per 64 values), and one
/// bit-sliced comparison with `N / 2` gives the vote.
///
/// # Panics
/// If any plane or `out` differs from [`packed_len`]`(n)`.
///
/// # Examples
/// ```
/// use gradwire_codec::signs::majority;
/// let (a, b, c) = ([0b0000_0111u8], [0b0000_0101u8], [0b0000_0011u8]);
/// let mut out = [0u8];
/// majority(&[&a, &b, &c], 3, &mut out);
/// assert_eq!(out, [0b0000_0111]);
/// majority(&[&a, &b], 3, &mut out); // a tie (one of two) gives +1, bit 0
/// assert_eq!(out, [0b0000_0101]);
/// ```
pub fn majority(planes: &[&[u8]], n: usize, out: &mut [u8]) {
    let len = packed_len(n);
    assert_eq!(out.len(), len, "vote buffer length");
    assert!(planes.iter().all(|p| p.len() == len), "sign plane length");
    let threshold = (planes.len() / 2) as u64; // negative when count > threshold
    let width = (u64::BITS - (planes.len() as u64).leading_zeros()).max(1) as usize;
    let mut counter = vec![0u64; width];
    let mut word_bytes = [0u8; 8];
    for start in (0..len).step_by(8) {
        let end = (start + 8).min(len);
        counter.fill(0);
        for plane in planes {
            word_bytes.fill(0);
            word_bytes[..end - start].copy_from_slice(&plane[start..end]);
            let mut carry = u64::from_le_bytes(word_bytes);
            for c in &mut counter {
                let next = *c & carry;
                *c ^= carry;
                carry = next;
                if carry == 0 {
                    break;
                }
            }
        }
        // counter > threshold, bit-sliced from the most significant bit down.
        let (mut greater, mut equal) = (0u64, u64::MAX);
        for (j, &c) in counter.iter().enumerate().rev() {
            if threshold >> j & 1 == 1 {
                equal &= c;
            } else {
                greater |= equal & c;
                equal &= !c;
            }
        }
        out[start..end].copy_from_slice(&greater.to_le_bytes()[..end - start]);
    }
    if let Some(last) = out.last_mut()
        && !n.is_multiple_of(8)
    {
        *last &= (1u8 << (n % 8)) - 1;
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "decoding is bit-exact by contract")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference_pack(values: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; packed_len(values.len())];
        for (i, &x) in values.iter().enumerate() {
            if x < 0.0 {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        out
    }

    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![any::<f32>(), Just(0.0), Just(-0.0), Just(f32::NAN), -1.0f32..1.0]
    }

    proptest! {
        #[test]
        fn pack_matches_reference(values in proptest::collection::vec(value(), 0..300)) {
            let mut bits = vec![0xAAu8; packed_len(values.len())];
            pack(&values, &mut bits);
            prop_assert_eq!(&bits, &reference_pack(&values));
            prop_assert!(padding_is_zero(&bits, values.len()));
            let mut bits2 = vec![0x55u8; bits.len()];
            let sum = pack_with_abs_sum(&values, &mut bits2);
            prop_assert_eq!(&bits2, &bits);
            let expected: f64 = values.iter().map(|x| f64::from(x.abs())).sum();
            if expected.is_finite() {
                prop_assert!((sum - expected).abs() <= 1e-5 * expected.abs() + 1e-30);
            }
        }

        #[test]
        fn unpack_inverts_pack(
            values in proptest::collection::vec(-10.0f32..10.0, 0..300),
            m in 0.0f32..5.0,
            w in -2.0f32..2.0,
        ) {
            let mut bits = vec![0u8; packed_len(values.len())];
            pack(&values, &mut bits);
            let mut out = vec![f32::NAN; values.len()];
            unpack_scaled(&bits, m, &mut out);
            let mut acc = vec![1.0f32; values.len()];
            accumulate_scaled(&bits, w * m, &mut acc);
            for ((x, y), a) in values.iter().zip(&out).zip(&acc) {
                let expected = if *x < 0.0 { -m } else { m };
                prop_assert_eq!(y.to_bits(), expected.to_bits());
                prop_assert_eq!(*a, 1.0 + w * expected);
            }
        }

        #[test]
        fn majority_matches_reference(n in 0usize..200, k in 1usize..12, seed in any::<u64>()) {
            let mut rng = crate::rng::SeededRng::new(seed);
            let planes: Vec<Vec<u8>> = (0..k)
                .map(|_| {
                    let values: Vec<f32> = (0..n).map(|_| rng.next_unit_f32() - 0.5).collect();
                    reference_pack(&values)
                })
                .collect();
            let refs: Vec<&[u8]> = planes.iter().map(Vec::as_slice).collect();
            let mut out = vec![0xFFu8; packed_len(n)];
            majority(&refs, n, &mut out);
            for i in 0..n {
                let negatives = planes.iter().filter(|p| bit(p, i)).count();
                prop_assert_eq!(bit(&out, i), 2 * negatives > k, "value {}", i);
            }
            prop_assert!(padding_is_zero(&out, n));
        }
    }

    #[test]
    fn abs_sum_spans_many_groups_and_survives_huge_values() {
        let mut rng = crate::rng::SeededRng::new(3);
        for n in [4095, 4096, 4097, 20_000, 70_001] {
            let mut values: Vec<f32> = (0..n).map(|_| rng.next_unit_f32() - 0.5).collect();
            values[n / 2] = f32::MAX;
            values[n / 3] = -f32::MAX;
            let mut bits = vec![0u8; packed_len(n)];
            let sum = pack_with_abs_sum(&values, &mut bits);
            let expected: f64 = values.iter().map(|x| f64::from(x.abs())).sum();
            assert!((sum - expected).abs() <= 1e-6 * expected, "n={n}: {sum} vs {expected}");
            assert_eq!(bits, reference_pack(&values), "n={n}");
        }
    }

    #[test]
    fn padding_check() {
        assert!(padding_is_zero(&[0b0000_0111], 3));
        assert!(!padding_is_zero(&[0b0000_1111], 3));
        assert!(padding_is_zero(&[0xFF], 8));
        assert!(padding_is_zero(&[], 0));
    }
}
