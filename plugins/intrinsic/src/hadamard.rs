//! The fast Walsh-Hadamard transform in f32 and the split of a chunk into power-of-two blocks
//! (`spec/CODECS.md` §7.3).
//!
//! The transform is unnormalized: stage `h = 1, 2, 4, ..., L/2` replaces every pair
//! `(x[i], x[i + h])` with `i & h == 0` by `(x[i] + x[i + h], x[i] - x[i + h])`. Every f32
//! addition is correctly rounded, so any schedule that performs the same additions on the same
//! operands gives the same bits; this one runs the first stages inside blocks that fit the L1
//! cache and fuses two stages per pass over memory above that, so a 2^20-point transform touches
//! main memory a handful of times instead of twenty.

/// Values per block whose stages all run while the block sits in the L1 cache (8 KiB).
const L1_BLOCK: usize = 1 << 11;

/// Smallest power-of-two block of the split; the tail below it is one block padded with zeros.
pub const MIN_BLOCK: usize = 64;

/// The in-place unnormalized Walsh-Hadamard transform of `x`, whose length is a power of two
/// (or zero).
///
/// # Panics
/// Never for power-of-two lengths; other lengths are a caller bug (debug assertion).
///
/// # Examples
/// ```
/// let mut x = [1.0f32, 0.0, 0.0, 0.0];
/// gradwire_intrinsic::hadamard::fwht(&mut x);
/// assert_eq!(x, [1.0, 1.0, 1.0, 1.0]);
/// ```
pub fn fwht(x: &mut [f32]) {
    let n = x.len();
    debug_assert!(n == 0 || n.is_power_of_two(), "fwht of {n} values");
    if n < 2 {
        return;
    }
    let block = n.min(L1_BLOCK);
    for b in x.chunks_exact_mut(block) {
        stages(b, 1, block);
    }
    stages(x, block, n);
}

/// Runs stages `h = from, 2 from, ..., < to` over `x`, two at a time where possible.
fn stages(x: &mut [f32], from: usize, to: usize) {
    let mut h = from;
    if h == 1 && to >= 8 {
        for g in x.chunks_exact_mut(8) {
            eight_points(g);
        }
        h = 8;
    }
    while h < to {
        if 4 * h <= to {
            radix4(x, h);
            h *= 4;
        } else {
            radix2(x, h);
            h *= 2;
        }
    }
}

/// Stages 1, 2 and 4 of an 8-value group, in registers.
#[inline]
fn eight_points(g: &mut [f32]) {
    let a = [g[0] + g[1], g[0] - g[1], g[2] + g[3], g[2] - g[3], g[4] + g[5], g[4] - g[5], g[6] + g[7], g[6] - g[7]];
    let b = [a[0] + a[2], a[1] + a[3], a[0] - a[2], a[1] - a[3], a[4] + a[6], a[5] + a[7], a[4] - a[6], a[5] - a[7]];
    g[0] = b[0] + b[4];
    g[1] = b[1] + b[5];
    g[2] = b[2] + b[6];
    g[3] = b[3] + b[7];
    g[4] = b[0] - b[4];
    g[5] = b[1] - b[5];
    g[6] = b[2] - b[6];
    g[7] = b[3] - b[7];
}

/// Stage `h` alone.
fn radix2(values: &mut [f32], h: usize) {
    for pair in values.chunks_exact_mut(2 * h) {
        let (low, high) = pair.split_at_mut(h);
        for (u, v) in low.iter_mut().zip(high.iter_mut()) {
            let (p, q) = (*u, *v);
            *u = p + q;
            *v = p - q;
        }
    }
}

/// Stages `h` and `2h` in one pass: quarters `q0..q3` of each run of `4h` values.
fn radix4(values: &mut [f32], h: usize) {
    for quad in values.chunks_exact_mut(4 * h) {
        let (first, second) = quad.split_at_mut(2 * h);
        let (q0, q1) = first.split_at_mut(h);
        let (q2, q3) = second.split_at_mut(h);
        for (((v0, v1), v2), v3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
            let (p0, p1) = (*v0 + *v1, *v0 - *v1);
            let (p2, p3) = (*v2 + *v3, *v2 - *v3);
            *v0 = p0 + p2;
            *v2 = p0 - p2;
            *v1 = p1 + p3;
            *v3 = p1 - p3;
        }
    }
}

/// One block of a chunk's split: `len` values from `start`, transformed in a buffer of `padded`
/// values (a power of two) and represented by `dim` coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Index of the block's first value in the chunk.
    pub start: usize,
    /// Values of the chunk in the block.
    pub len: usize,
    /// Transform length: `len` for a power-of-two block, the next power of two for the tail.
    pub padded: usize,
    /// Coefficients of the block.
    pub dim: usize,
}

/// Splits a chunk of `n` values into blocks and shares `d <= n` coefficients among them.
///
/// Blocks are the set bits of `n` from 2^63 down to [`MIN_BLOCK`], largest first, then the
/// remaining `n mod 64` values as one block padded with zeros to the next power of two. Block `b`
/// covering values `start..end` gets `floor(d * end / n) - floor(d * start / n)` coefficients, so
/// the shares sum to `d` and follow the block lengths (integer arithmetic only).
///
/// # Examples
/// ```
/// let blocks = gradwire_intrinsic::hadamard::blocks(200, 100);
/// let lens: Vec<_> = blocks.iter().map(|b| (b.len, b.padded, b.dim)).collect();
/// assert_eq!(lens, [(128, 128, 64), (64, 64, 32), (8, 8, 4)]);
/// ```
#[must_use]
pub fn blocks(n: usize, d: usize) -> Vec<Block> {
    let share = |end: usize| (d as u128 * end as u128 / (n.max(1)) as u128) as usize;
    let mut out = Vec::new();
    let mut start = 0;
    for bit in (MIN_BLOCK.trailing_zeros()..usize::BITS).rev() {
        let len = 1usize << bit;
        if n & len != 0 {
            out.push(Block { start, len, padded: len, dim: share(start + len) - share(start) });
            start += len;
        }
    }
    let tail = n - start;
    if tail > 0 {
        out.push(Block { start, len: tail, padded: tail.next_power_of_two(), dim: share(n) - share(start) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transform by its definition, one stage after another.
    fn reference(x: &mut [f32]) {
        let mut h = 1;
        while h < x.len() {
            radix2(x, h);
            h *= 2;
        }
    }

    #[test]
    fn fused_schedule_gives_the_bits_of_the_definition() {
        let mut state = 1u64;
        for log in 0..=14 {
            let len = 1usize << log;
            let x: Vec<f32> = (0..len)
                .map(|_| {
                    state = gradwire_codec::rng::mix64(state);
                    (state >> 40) as f32 / 3e6 - 2.7
                })
                .collect();
            let (mut a, mut b) = (x.clone(), x);
            fwht(&mut a);
            reference(&mut b);
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "n = {len}"
            );
        }
    }

    #[test]
    fn transform_twice_is_n_times_identity() {
        let x: Vec<f32> = (0..256).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut y = x.clone();
        fwht(&mut y);
        fwht(&mut y);
        for (a, b) in x.iter().zip(&y) {
            assert_eq!((a * 256.0).to_bits(), b.to_bits());
        }
    }

    #[test]
    fn blocks_cover_the_chunk_and_share_every_coefficient() {
        for n in [1usize, 5, 63, 64, 65, 127, 200, 1000, 4096, 100_003] {
            for d in [1usize, 3, n / 2 + 1, n] {
                let d = d.min(n);
                let b = blocks(n, d);
                assert_eq!(b.iter().map(|b| b.len).sum::<usize>(), n);
                assert_eq!(b.iter().map(|b| b.dim).sum::<usize>(), d);
                let mut start = 0;
                for b in &b {
                    assert_eq!(b.start, start);
                    assert!(b.padded.is_power_of_two() && b.padded >= b.len && b.dim <= b.len);
                    start += b.len;
                }
            }
        }
        assert!(blocks(0, 0).is_empty());
    }
}
