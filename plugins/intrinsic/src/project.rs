//! What the three families share: sign draws, sign flips and the decoder's scale factor
//! (`spec/CODECS.md` §7.2), and the dispatch from parameters to a family.

use gradwire_codec::rng::SeededRng;

use crate::params::{Family, IntrinsicParams, Scaling};
use crate::{dense, sparse, srht};

/// `v` with its sign bit flipped when `bit` (0 or 1) is 1: exact multiplication by -1.
#[inline]
pub(crate) fn flip(v: f32, bit: u64) -> f32 {
    f32::from_bits(v.to_bits() ^ ((bit as u32) << 31))
}

/// The next `n` signs, 64 to a draw, least significant bit first (1 = negative); `words` is
/// replaced by `ceil(n / 64)` draws.
pub(crate) fn draw_signs(rng: &mut SeededRng, n: usize, words: &mut Vec<u64>) {
    words.clear();
    words.extend((0..n.div_ceil(64)).map(|_| rng.next_u64()));
}

/// Flips `values[i]` by sign `i` of `words`.
pub(crate) fn apply_signs(values: &mut [f32], words: &[u64]) {
    for (group, &w) in values.chunks_mut(64).zip(words) {
        for (k, v) in group.iter_mut().enumerate() {
            *v = flip(*v, (w >> k) & 1);
        }
    }
}

/// The decoder's factor `gamma / sqrt(m)` rounded once to f32, with `gamma = 1` for the
/// projection and `gamma = num / den` for the unbiased scaling, all in f64.
pub(crate) fn factor(scaling: Scaling, num: usize, den: usize, m: usize) -> f32 {
    let gamma = match scaling {
        Scaling::Projection => 1.0,
        Scaling::Unbiased => num as f64 / den as f64,
    };
    (gamma / (m as f64).sqrt()) as f32
}

/// The encoder's `1 / sqrt(m)` as f32.
pub(crate) fn unit(m: usize) -> f32 {
    (1.0 / (m as f64).sqrt()) as f32
}

/// Appends the `params.dim_for(x.len())` coefficients `A^T x` of one chunk to `out`.
pub fn encode(params: &IntrinsicParams, rng: &mut SeededRng, x: &[f32], out: &mut Vec<f32>) {
    let d = params.dim_for(x.len());
    match params.family {
        Family::Srht => srht::encode(x, d, rng, out),
        Family::Rademacher => dense::encode(x, d, rng, out),
        Family::Sparse => sparse::encode(x, d, params.nonzeros as usize, rng, out),
    }
}

/// Writes `gamma A c` into `out` (one chunk); `c.len()` is `params.dim_for(out.len())`.
///
/// Every NaN of the result becomes [`CANONICAL_NAN`]: coefficients are untrusted (infinities
/// and NaNs, or sums that overflow), and the payload of a NaN produced by f32 arithmetic differs
/// between platforms, so only a fixed pattern keeps decoding bit-exact everywhere.
pub fn decode(params: &IntrinsicParams, rng: &mut SeededRng, c: &[f32], out: &mut [f32]) {
    match params.family {
        Family::Srht => srht::decode(c, params.scaling, rng, out),
        Family::Rademacher => dense::decode(c, params.scaling, rng, out),
        Family::Sparse => sparse::decode(c, params.nonzeros as usize, params.scaling, rng, out),
    }
    for v in out {
        if v.is_nan() {
            *v = f32::from_bits(CANONICAL_NAN);
        }
    }
}

/// The bit pattern of every NaN a decoder returns (the quiet NaN with a clear sign bit).
pub const CANONICAL_NAN: u32 = 0x7FC0_0000;
