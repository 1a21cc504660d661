//! Rate-distortion bounds: how many bits per entry any codec needs for a given error, so a
//! codec's measured point can be placed against them (`gradwire bounds`, `gradwire bench`).
//!
//! Distortions are relative to the source variance (MSE / sigma^2), rates in bits per entry.
//!
//! - [`gaussian_distortion`]: `2^(-2R)`, the distortion-rate function of a Gaussian source and
//!   an upper bound on that of any source of the same variance.
//! - [`gennorm_shannon_lower_bound`]: the Shannon lower bound of a generalized normal
//!   (GenNorm) source of shape `beta`, tight at high rate.
//! - [`gennorm_distortion`]: the GenNorm distortion-rate function itself, by Blahut-Arimoto
//!   ([`blahut_arimoto`]) on a discretized source.
//! - [`compressor_bound_bits`]: no compressor with `||C(x) - x||^2 <= alpha ||x||^2` for every `x`
//!   of dimension `d` uses fewer than `(d/2) log2(1/alpha)` bits (Safaryan et al. 2020).
//! - [`ceo`]: the sum-rate of aggregating correlated client gradients (vector Gaussian CEO).
//!
//! ```
//! use gradwire_codec::bounds;
//! assert!((bounds::gaussian_distortion(2.0) - 0.0625).abs() < 1e-15);
//! // Heavy tails (beta < 2) need fewer bits than a Gaussian for the same error.
//! assert!(bounds::gennorm_shannon_lower_bound(1.0, 2.0) < bounds::gaussian_distortion(2.0));
//! assert!((bounds::compressor_bound_bits(1000, 0.1) - 1660.96).abs() < 0.01);
//! ```

pub mod blahut_arimoto;
pub mod ceo;

pub use blahut_arimoto::{RdPoint, gennorm_distortion};

use statrs::function::gamma::ln_gamma;

/// `2^(-2R)`: relative distortion of a Gaussian source at `rate` bits per entry.
#[must_use]
pub fn gaussian_distortion(rate: f64) -> f64 {
    (-2.0 * rate).exp2()
}

/// `max(0, log2(1/D) / 2)`: bits per entry a Gaussian source needs for relative distortion `d`.
#[must_use]
pub fn gaussian_rate(d: f64) -> f64 {
    (0.5 * (1.0 / d).log2()).max(0.0)
}

/// Scale `alpha` of the unit-variance GenNorm of shape `beta`:
/// `sqrt(Gamma(1/beta) / Gamma(3/beta))` (density `beta / (2 alpha Gamma(1/beta)) exp(-(|x|/alpha)^beta)`).
#[must_use]
pub fn gennorm_unit_scale(beta: f64) -> f64 {
    (0.5 * (ln_gamma(1.0 / beta) - ln_gamma(3.0 / beta))).exp()
}

/// Differential entropy in bits of the unit-variance GenNorm of shape `beta`:
/// `(1/beta - ln(beta / (2 alpha Gamma(1/beta)))) / ln 2`.
///
/// ```
/// // 2.047 bits for the Gaussian, 1.943 for the Laplacian, 1.432 for beta = 0.5.
/// let h = gradwire_codec::bounds::gennorm_entropy_bits;
/// assert!((h(2.0) - 2.047).abs() < 1e-3 && (h(1.0) - 1.943).abs() < 1e-3 && (h(0.5) - 1.432).abs() < 1e-3);
/// ```
#[must_use]
pub fn gennorm_entropy_bits(beta: f64) -> f64 {
    let alpha = gennorm_unit_scale(beta);
    (1.0 / beta - (beta.ln() - (2.0 * alpha).ln() - ln_gamma(1.0 / beta))) / std::f64::consts::LN_2
}

/// Entropy power over variance, `2^(2h) / (2 pi e)` for unit variance: 1 for the Gaussian
/// (`beta = 2`), less for heavier tails. The Shannon lower bound is this factor times `2^(-2R)`.
#[must_use]
pub fn gennorm_entropy_power_ratio(beta: f64) -> f64 {
    (2.0 * gennorm_entropy_bits(beta)).exp2() / (2.0 * std::f64::consts::PI * std::f64::consts::E)
}

/// Shannon lower bound on the relative distortion of an i.i.d. GenNorm source of shape `beta` at
/// `rate` bits per entry: `D_SLB(R) = 2^(2h) / (2 pi e) * 2^(-2R)`. Every codec's distortion on
/// such a source is at least this; the bound is tight as the rate grows.
#[must_use]
pub fn gennorm_shannon_lower_bound(beta: f64, rate: f64) -> f64 {
    gennorm_entropy_power_ratio(beta) * gaussian_distortion(rate)
}

/// `(d/2) log2(1/alpha)`: the fewest bits of any compressor whose error
/// `||C(x) - x||^2 <= alpha ||x||^2` holds for every `x` in dimension `d` (equivalently, at `b`
/// bits its worst-case `alpha` is at least `4^(-b/d)`).
#[must_use]
pub fn compressor_bound_bits(d: u64, alpha: f64) -> f64 {
    d as f64 / 2.0 * (1.0 / alpha).log2()
}

/// The smallest worst-case `alpha` any compressor reaches at `rate` bits per entry: `4^(-rate)`.
#[must_use]
pub fn compressor_alpha(rate: f64) -> f64 {
    gaussian_distortion(rate)
}

/// `10 log10(measured / bound)`: how far a distortion sits above a bound, in dB.
#[must_use]
pub fn gap_db(measured: f64, bound: f64) -> f64 {
    10.0 * (measured / bound).log10()
}

#[cfg(test)]
mod tests;
