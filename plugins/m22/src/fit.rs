//! Fitting the gradient model: a generalized normal (GenNorm, shape `beta`) or a double Weibull
//! (shape `c`), each with a scale, by maximum likelihood, on the nonzero entries of a chunk
//! centred at their mean. Exact zeros (ReLU layers hold 25-30 % of them) are modelled
//! separately by the codec as their own symbol, so they never distort the fit.
//!
//! Cost: the fit runs on a deterministic sample of at most [`SAMPLE`] nonzero values (every
//! k-th), whatever the chunk size. `ln|y|` is computed once per sample value; each likelihood
//! evaluation is then one `exp` per value, and a golden-section search needs about 25 of them
//! (about 100 000 `exp`, a fraction of a millisecond).
//!
//! The scale for a fixed shape has a closed form (`scale^shape = shape/m * sum |y|^shape` for
//! GenNorm, `scale^c = 1/m * sum |y|^c` for Weibull), so the search is over the shape alone, on
//! the profile likelihood.

use statrs::function::gamma::ln_gamma;

/// Most sample values a fit looks at.
pub const SAMPLE: usize = 4096;
const SHAPE_MIN: f64 = 0.1;
const SHAPE_MAX: f64 = 8.0;

/// The model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `f(y) = beta / (2 alpha Gamma(1/beta)) exp(-(|y|/alpha)^beta)`.
    GenNorm,
    /// `f(y) = c / (2 lambda) (|y|/lambda)^(c-1) exp(-(|y|/lambda)^c)`.
    Weibull,
}

impl Family {
    /// The command-line and wire spelling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Family::GenNorm => "gennorm",
            Family::Weibull => "weibull",
        }
    }
}

/// A fitted model: `x = loc + scale * z`, `z` from the unit-scale family with this shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Family.
    pub family: Family,
    /// Shape (`beta` or `c`).
    pub shape: f64,
    /// Scale (`alpha` or `lambda`).
    pub scale: f64,
    /// Location: the mean of the nonzero values.
    pub loc: f64,
}

/// A deterministic sample of the nonzero, finite values of `values`: every k-th, at most
/// [`SAMPLE`]. Returns it with the number of nonzero values seen.
#[must_use]
pub fn sample_nonzero(values: &[f32]) -> Vec<f64> {
    let stride = (values.len() / SAMPLE).max(1);
    let mut out: Vec<f64> =
        values.iter().step_by(stride).filter(|x| **x != 0.0 && x.is_finite()).map(|&x| f64::from(x)).collect();
    if out.len() < SAMPLE / 4 && stride > 1 {
        // Sparse chunks: a strided sample holds too few nonzeros, so take them in order.
        out = values.iter().filter(|x| **x != 0.0 && x.is_finite()).take(SAMPLE).map(|&x| f64::from(x)).collect();
    }
    out
}

/// Maximum-likelihood fit of `family` to `sample` (nonzero values). `None` when fewer than two
/// distinct values make a fit meaningless.
#[must_use]
pub fn fit(family: Family, sample: &[f64]) -> Option<Fit> {
    let m = sample.len() as f64;
    if sample.len() < 2 {
        return None;
    }
    let loc = sample.iter().sum::<f64>() / m;
    let logs: Vec<f64> = sample.iter().map(|x| (x - loc).abs()).filter(|a| *a > 0.0).map(f64::ln).collect();
    if logs.len() < 2 {
        return None;
    }
    let mean_log = logs.iter().sum::<f64>() / logs.len() as f64;
    let lm = logs.len() as f64;
    // Scale-free: work with ln|y| - mean(ln|y|), so |y|^shape stays near 1 whatever the scale.
    let centred: Vec<f64> = logs.iter().map(|l| l - mean_log).collect();
    let power_mean = |shape: f64| centred.iter().map(|l| (shape * l).exp()).sum::<f64>() / lm;
    let profile = |shape: f64| -> f64 {
        let p = power_mean(shape);
        match family {
            // ln L/m = ln b - ln 2 - ln a - lnG(1/b) - 1/b, ln a = mean_log + ln(b p)/b
            Family::GenNorm => shape.ln() - (shape * p).ln() / shape - ln_gamma(1.0 / shape) - 1.0 / shape,
            // ln L/m = ln c - ln 2 - c ln l + (c-1) mean_log - 1, ln l = mean_log + ln(p)/c
            Family::Weibull => shape.ln() - p.ln(),
        }
    };
    let shape = golden_max(profile, SHAPE_MIN.ln(), SHAPE_MAX.ln());
    let p = power_mean(shape);
    let scale = match family {
        Family::GenNorm => (mean_log + (shape * p).ln() / shape).exp(),
        Family::Weibull => (mean_log + p.ln() / shape).exp(),
    };
    (scale.is_finite() && scale > 0.0).then_some(Fit { family, shape, scale, loc })
}

/// The maximum of `f(exp(t))` over `t` in `[lo, hi]` by golden-section search (to a relative
/// shape tolerance of about 1e-4: designs round the shape to 1/256 anyway), returned as `exp(t)`. Profile likelihoods here are unimodal.
fn golden_max(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut fa, mut fb) = (f(a.exp()), f(b.exp()));
    // 1e-3 in ln(shape): the shape to 0.1 %, finer than the design cache's 1/256 and the 1 %
    // agreement with scipy; each step costs one `exp` per sample value.
    while hi - lo > 1e-3 {
        if fa < fb {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = f(b.exp());
        } else {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = f(a.exp());
        }
    }
    f64::midpoint(lo, hi).exp()
}

/// Entropy power over variance of a generalized normal with shape `beta` (the core's
/// rate-distortion bounds define it; the Shannon lower bound is this factor times `2^(-2R)`).
pub use gradwire_codec::bounds::gennorm_entropy_power_ratio;

#[cfg(test)]
mod tests {
    use super::*;
    use gradwire_codec::rng::SeededRng;

    /// GenNorm(beta, alpha) samples: |z| = alpha * G^(1/beta) with G ~ Gamma(1/beta, 1).
    pub(crate) fn gennorm_samples(beta: f64, alpha: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = SeededRng::new(seed);
        (0..n)
            .map(|_| {
                let g = gamma_sample(1.0 / beta, &mut rng);
                let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
                sign * alpha * g.powf(1.0 / beta)
            })
            .collect()
    }

    fn unit(rng: &mut SeededRng) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Marsaglia-Tsang Gamma(k, 1), boosted for k < 1.
    #[allow(clippy::many_single_char_names, reason = "the names of the published algorithm")]
    fn gamma_sample(k: f64, rng: &mut SeededRng) -> f64 {
        if k < 1.0 {
            let u = unit(rng).max(1e-300);
            return gamma_sample(k + 1.0, rng) * u.powf(1.0 / k);
        }
        let d = k - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let (u1, u2) = (unit(rng).max(1e-300), unit(rng));
            let x = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && unit(rng).max(1e-300).ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    #[test]
    fn gennorm_fit_recovers_shape_and_scale_within_5_percent() {
        for (beta, seed) in [(0.5, 1), (1.0, 2), (2.0, 3)] {
            let samples = gennorm_samples(beta, 1e-3, 1_000_000, seed);
            let f = fit(Family::GenNorm, &samples).unwrap();
            assert!((f.shape / beta - 1.0).abs() < 0.05, "beta {beta}: fitted {f:?}");
            assert!((f.scale / 1e-3 - 1.0).abs() < 0.05, "beta {beta}: fitted {f:?}");
        }
    }

    #[test]
    fn weibull_fit_recovers_shape_and_scale() {
        // Double Weibull(c, lambda): |z| = lambda * E^(1/c), E ~ Exp(1).
        let mut rng = SeededRng::new(4);
        for c in [0.7, 1.5] {
            let samples: Vec<f64> = (0..200_000)
                .map(|_| {
                    let e = -unit(&mut rng).max(1e-300).ln();
                    let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
                    sign * 2e-3 * e.powf(1.0 / c)
                })
                .collect();
            let f = fit(Family::Weibull, &samples).unwrap();
            assert!((f.shape / c - 1.0).abs() < 0.05, "c {c}: {f:?}");
            assert!((f.scale / 2e-3 - 1.0).abs() < 0.05, "c {c}: {f:?}");
        }
    }

    /// Real gradient values against scipy's maximum-likelihood fits of the same values
    /// (`fixtures/make_fit_fixture.py`, run once).
    #[test]
    fn fits_agree_with_scipy_on_real_gradients() {
        let bytes = include_bytes!("../fixtures/fit_data.f32");
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../fixtures/fit_reference.json")).expect("fixture parses");
        let sample = sample_nonzero(&values);
        assert_eq!(sample.len(), 4096, "the fixture is one whole sample");
        let g = fit(Family::GenNorm, &sample).expect("fits");
        let w = fit(Family::Weibull, &sample).expect("fits");
        let close = |a: f64, b: &serde_json::Value| (a / b.as_f64().expect("number") - 1.0).abs() < 0.01;
        assert!(close(g.shape, &reference["gennorm"]["beta"]), "{g:?} vs {reference}");
        assert!(close(g.scale, &reference["gennorm"]["scale"]), "{g:?} vs {reference}");
        assert!(close(w.shape, &reference["dweibull"]["c"]), "{w:?} vs {reference}");
        assert!(close(w.scale, &reference["dweibull"]["scale"]), "{w:?} vs {reference}");
    }

    #[test]
    fn degenerate_samples_do_not_fit() {
        assert!(fit(Family::GenNorm, &[]).is_none());
        assert!(fit(Family::GenNorm, &[1.0]).is_none());
        assert!(fit(Family::Weibull, &[2.0, 2.0]).is_none());
    }
}
