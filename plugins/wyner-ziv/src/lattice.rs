//! The lattice arithmetic of `wyner-ziv` (`spec/CODECS.md` §12.3), shared by the encoder and the
//! decoder so that the encoder's check of every entry is the decoder's own computation.
//!
//! Every step is one IEEE 754 binary64 operation (f32 inputs widened exactly), so another
//! implementation (NumPy's float64, for one) gets the same bits. Lattice indices are integers
//! held in f64; the encoder escapes any entry whose index or prediction reaches [`MAX_INDEX`],
//! where f64 still holds every integer and every residue exactly.

/// `v.floor()`, without the libm call that `f64::floor` compiles to on baseline x86-64 (no
/// SSE4.1): a truncating conversion and a correction, exact for every f64 (beyond 2^52 every
/// finite value is an integer already; NaN, infinities and zeros come back as they are).
/// Measured with `cargo bench --bench codecs -- wyner`: decode 180 -> see BENCHMARKS.md.
#[inline]
#[must_use]
pub fn floor(v: f64) -> f64 {
    if v.abs() < 4_503_599_627_370_496.0 && v != 0.0 {
        let t = v as i64 as f64;
        if t > v { t - 1.0 } else { t }
    } else {
        v
    }
}

/// Largest lattice index (and prediction) magnitude the encoder sends without an escape.
pub const MAX_INDEX: f64 = 1_099_511_627_776.0; // 2^40

/// The decoder's prediction of the lattice index: `t = (a * y) / eps`.
#[inline]
#[must_use]
pub fn prediction(scale: f32, side: f32, step: f64) -> f64 {
    f64::from(scale) * f64::from(side) / step
}

/// The integer nearest the prediction, `c = floor(t + 1/2)`: where centered residues count from.
#[inline]
#[must_use]
pub fn reference(t: f64) -> f64 {
    floor(t + 0.5)
}

/// `z mod k` in `[0, k)` for an integer-valued `z` with `|z| < 2^41`.
#[inline]
#[must_use]
pub fn residue(z: f64, k: f64) -> f64 {
    z - k * floor(z / k)
}

/// The member of the residue class of `q` (mod `k`) nearest to `t`, ties upward:
/// `q + k * floor((t - q) / k + 1/2)`. It is the lattice index `z` whenever `|z - t| < k/2`.
#[inline]
#[must_use]
pub fn nearest_in_class(q: f64, k: f64, t: f64) -> f64 {
    q + k * floor((t - q) / k + 0.5)
}

/// The value of lattice index `z`: `f32(z * eps)`, a NaN (from non-finite side information) as
/// `0x7FC00000`, since the bits of a NaN that arithmetic produces differ between platforms.
#[inline]
#[must_use]
pub fn value(z: f64, step: f64) -> f32 {
    let v = (z * step) as f32;
    if v.is_nan() { f32::from_bits(0x7FC0_0000) } else { v }
}

/// The index `z` of `x`: `floor(x / eps + u)`, with `u = 1/2` (nearest) or a uniform draw in
/// `[0, 1)` (stochastic, so that `E[z * eps] = x`).
#[inline]
#[must_use]
pub fn index(x: f32, step: f64, u: f64) -> f64 {
    floor(f64::from(x) / step + u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp, reason = "floor is exact: compared bit for bit")]
    fn floor_is_f64_floor() {
        let mut rng = gradwire_codec::rng::SeededRng::new(3);
        let specials = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2f64.powi(52),
            -(2f64.powi(52)) - 0.5,
            2f64.powi(52) - 0.5,
            1e300,
            -1e300,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let random: Vec<f64> = (0..100_000).map(|_| f64::from_bits(rng.next_u64())).collect();
        let scaled: Vec<f64> =
            (0..100_000u32).map(|i| (f64::from(rng.next_u32()) - 2f64.powi(31)) / f64::from(i % 1000 + 1)).collect();
        for v in specials.into_iter().chain(random).chain(scaled) {
            let (a, b) = (floor(v), v.floor());
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{v:e}: {a:e} vs {b:e}");
        }
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "integers held exactly in f64")]
    fn class_member_nearest_to_the_prediction() {
        for k in [2.0, 3.0, 4.0, 7.0, 256.0] {
            for z in -600i32..600 {
                let z = f64::from(z);
                let w = residue(z, k);
                assert!((0.0..k).contains(&w) && (z - w) % k == 0.0, "z {z} k {k} w {w}");
                // Every prediction strictly within k/2 of z recovers z.
                for t in [z - k / 2.0 + 1e-9, z - 0.3, z, z + 0.49, z + k / 2.0 - 1e-9] {
                    assert_eq!(nearest_in_class(w, k, t), z, "z {z} k {k} t {t}");
                    assert_eq!(nearest_in_class(reference(t) + residue(z - reference(t), k), k, t), z);
                }
            }
        }
    }
}
