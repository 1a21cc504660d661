//! The quadratic Gaussian CEO sum-rate of aggregating client gradients (Zhang, Tao, Wang, Xu
//! 2022; Oohama; Chen, Zhang, Berger, Wicker): `K` clients each observe `Y_k = X + N_k` per
//! coordinate, with `X ~ N(0, sigma_x^2)` the true gradient and `N_k ~ N(0, sigma_n^2)` i.i.d.
//! noise. The server wants an unbiased estimate of `X` with error variance `D_u`.
//!
//! - [`CeoModel::sum_rate`]: `R_u(D_u) = 1/2 log2(1 + sigma_x^2/D_u) + K/2 log2(K D_u / (K D_u - sigma_n^2))`,
//!   bits per coordinate for all clients together, exploiting their correlation (Berger-Tung);
//! - [`CeoModel::separate_rate`]: `R_sep(D_u) = K/2 log2(1 + (sigma_x^2 + sigma_n^2) / (K D_u - sigma_n^2))`,
//!   each client coding its own update independently with unbiased noise, then averaging.
//!
//! Both need `D_u > sigma_n^2 / K` ([`CeoModel::floor`]): the error of averaging uncompressed updates.
//!
//! ```
//! use gradwire_codec::bounds::ceo::CeoModel;
//! let m = CeoModel { signal_variance: 1.0, noise_variance: 1.0, clients: 10 };
//! assert!((m.sum_rate(0.2).unwrap() - 6.29).abs() < 0.01);
//! assert!((m.separate_rate(0.2).unwrap() - 7.92).abs() < 0.01);
//! assert!(m.sum_rate(0.1).is_none()); // at the floor 1/10
//! ```

/// Per-coordinate statistics of a set of client gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CeoModel {
    /// `sigma_x^2`: variance of the mean gradient across coordinates.
    pub signal_variance: f64,
    /// `sigma_n^2`: per-client noise variance (mean over coordinates of the across-client variance).
    pub noise_variance: f64,
    /// `K`, the number of clients.
    pub clients: usize,
}

impl CeoModel {
    /// Estimates the model from `K >= 2` client gradients of equal length: `sigma_x^2` is the
    /// mean square of the client mean minus what the noise adds to it (`sigma_n^2 / K`, floored at
    /// 0), and `sigma_n^2` the mean over coordinates of the unbiased across-client variance.
    /// Returns `None` for fewer than two clients, different lengths or no coordinates.
    #[must_use]
    pub fn estimate(clients: &[&[f32]]) -> Option<CeoModel> {
        let k = clients.len();
        let n = clients.first()?.len();
        if k < 2 || n == 0 || clients.iter().any(|c| c.len() != n) {
            return None;
        }
        let (mut mean_square, mut noise) = (0f64, 0f64);
        for i in 0..n {
            let mean = clients.iter().map(|c| f64::from(c[i])).sum::<f64>() / k as f64;
            let spread = clients.iter().map(|c| (f64::from(c[i]) - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
            mean_square += mean * mean;
            noise += spread;
        }
        let noise_variance = noise / n as f64;
        let signal_variance = (mean_square / n as f64 - noise_variance / k as f64).max(0.0);
        Some(CeoModel { signal_variance, noise_variance, clients: k })
    }

    /// `sigma_n^2 / K`: the error of averaging the uncompressed updates, below which no rate suffices.
    #[must_use]
    pub fn floor(&self) -> f64 {
        self.noise_variance / self.clients as f64
    }

    /// `R_u(D_u)`, bits per coordinate for all clients together; `None` at or below the floor.
    #[must_use]
    pub fn sum_rate(&self, d_u: f64) -> Option<f64> {
        let k = self.clients as f64;
        if d_u <= self.floor() {
            return None;
        }
        Some(
            0.5 * (1.0 + self.signal_variance / d_u).log2()
                + k / 2.0 * (k * d_u / (k * d_u - self.noise_variance)).log2(),
        )
    }

    /// `R_sep(D_u)`, bits per coordinate for all clients coding separately; `None` at or below the floor.
    #[must_use]
    pub fn separate_rate(&self, d_u: f64) -> Option<f64> {
        let k = self.clients as f64;
        if d_u <= self.floor() {
            return None;
        }
        Some(k / 2.0 * (1.0 + (self.signal_variance + self.noise_variance) / (k * d_u - self.noise_variance)).log2())
    }
}
