//! The lattice arithmetic of `wyner-ziv` (`spec/CODECS.md` §12.3), shared by the encoder and the
//! decoder so that the encoder's check of every entry is the decoder's own computation.
//!
//! Every step is one IEEE 754 binary64 operation (f32 inputs widened exactly), so another
//! implementation (NumPy's float64, for one) gets the same bits. Lattice indices are integers
//! held in f64; the encoder escapes any entry whose index or prediction reaches [`MAX_INDEX`],
//! where f64 still holds every integer and every residue exactly.

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
    (t + 0.5).floor()
}

/// `z mod k` in `[0, k)` for an integer-valued `z` with `|z| < 2^41`.
#[inline]
#[must_use]
pub fn residue(z: f64, k: f64) -> f64 {
    z - k * (z / k).floor()
}

/// The member of the residue class of `q` (mod `k`) nearest to `t`, ties upward:
/// `q + k * floor((t - q) / k + 1/2)`. It is the lattice index `z` whenever `|z - t| < k/2`.
#[inline]
#[must_use]
pub fn nearest_in_class(q: f64, k: f64, t: f64) -> f64 {
    q + k * ((t - q) / k + 0.5).floor()
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
    (f64::from(x) / step + u).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

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
