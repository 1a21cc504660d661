//! `gradwire bounds`: what no codec can beat on the given gradients, treated as an i.i.d. source
//! of their mean square (`gradwire_codec::bounds`): at each rate, the Gaussian distortion-rate
//! bound, the Shannon lower bound and the Blahut-Arimoto distortion-rate function of the
//! generalized normal (GenNorm) fitted to the nonzero values, and the compressor bound on the
//! worst-case error. For two or more inputs of equal size (client updates of one round), the
//! CEO sum-rate of aggregating them next to coding each separately.
//!
//! `gradwire bench` places every codec against the same model ([`SourceModel`]).

use anyhow::Result;
use clap::Args;
use gradwire::bounds::{self, ceo::CeoModel};
use rayon::prelude::*;

use crate::GlobalArgs;
use crate::commands::bench::input_files;
use crate::tensor_io::read_tensors;

/// Arguments of `gradwire bounds`.
#[derive(Args, Debug)]
pub struct BoundsArgs {
    /// Input .npy, .npz or .safetensors files, or folders (every such file in them). Two or
    /// more inputs of equal size are also treated as the updates of clients for the CEO bound.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Rates in bits per entry.
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2,3,4")]
    pub rates: Vec<f64>,
    /// Print JSON instead of Markdown tables.
    #[arg(long)]
    pub json: bool,
}

/// Every `SAMPLE_STRIDE`-th nonzero value is used for the GenNorm fit.
pub const SAMPLE_STRIDE: usize = 16;

/// The i.i.d. model the bounds are computed for: the mean square of all values, and the shape
/// of the GenNorm fitted by maximum likelihood (location at the mean, as M22 fits) to every
/// [`SAMPLE_STRIDE`]-th nonzero value.
#[derive(Debug, Default)]
pub struct SourceModel {
    /// Values seen.
    pub values: u64,
    /// Of which exact zeros.
    pub zeros: u64,
    /// Infinities and NaN seen, left out of everything.
    pub non_finite: u64,
    energy: f64,
    sample: Vec<f64>,
    /// Fitted GenNorm shape, once [`SourceModel::fit`] has run (`None` for fewer than two distinct nonzero values).
    pub beta: Option<f64>,
}

/// The bounds at one rate, as distortions relative to the mean square.
#[derive(Debug, Clone, Copy)]
pub struct BoundsAt {
    /// Bits per entry.
    pub rate: f64,
    /// `2^(-2R)`.
    pub gaussian: f64,
    /// GenNorm Shannon lower bound.
    pub gennorm_slb: Option<f64>,
    /// GenNorm distortion-rate function (Blahut-Arimoto).
    pub gennorm_rd: Option<f64>,
    /// Smallest worst-case `alpha` of any compressor at this rate: `4^(-R)`.
    pub compressor_alpha: f64,
}

impl SourceModel {
    /// Adds values (infinities and NaN are counted in `non_finite` and otherwise left out).
    pub fn add(&mut self, values: &[f32]) {
        let finite = || values.iter().copied().filter(|v| v.is_finite());
        self.non_finite += values.len() as u64 - finite().count() as u64;
        self.values += finite().count() as u64;
        self.zeros += finite().filter(|v| *v == 0.0).count() as u64;
        self.energy += finite().map(|v| f64::from(v) * f64::from(v)).sum::<f64>();
        self.sample.extend(finite().filter(|v| *v != 0.0).step_by(SAMPLE_STRIDE).map(f64::from));
    }

    /// Fits the GenNorm shape to the sample.
    pub fn fit(&mut self) {
        self.beta = gradwire::m22::fit::fit(gradwire::m22::fit::Family::GenNorm, &self.sample).map(|f| f.shape);
    }

    /// Mean square of the values.
    #[must_use]
    pub fn mean_square(&self) -> f64 {
        self.energy / (self.values.max(1)) as f64
    }

    /// The bounds at each rate, the Blahut-Arimoto ones computed in parallel.
    #[must_use]
    pub fn at(&self, rates: &[f64]) -> Vec<BoundsAt> {
        rates
            .par_iter()
            .map(|&rate| BoundsAt {
                rate,
                gaussian: bounds::gaussian_distortion(rate),
                gennorm_slb: self.beta.map(|b| bounds::gennorm_shannon_lower_bound(b, rate)),
                gennorm_rd: self.beta.map(|b| bounds::gennorm_distortion(b, rate)),
                compressor_alpha: bounds::compressor_alpha(rate),
            })
            .collect()
    }
}

/// The GenNorm distortion-rate function at `rate`, from Blahut-Arimoto `points` sorted by rate:
/// `ln D` interpolated linearly in `R` between the two nearest points (extrapolated along the
/// end segment outside them). `None` without a fitted shape or with fewer than two points.
#[must_use]
pub fn interpolate_rd(points: &[BoundsAt], rate: f64) -> Option<f64> {
    let known: Vec<(f64, f64)> = points.iter().filter_map(|p| Some((p.rate, p.gennorm_rd?.ln()))).collect();
    if let Some(&(r, ln_d)) = known.iter().find(|(r, _)| r.to_bits() == rate.to_bits()) {
        return Some(ln_d.exp()).filter(|_| r.is_finite());
    }
    if known.len() < 2 {
        return None;
    }
    let upper = known.iter().position(|(r, _)| *r > rate).unwrap_or(known.len() - 1).max(1);
    let ((r0, d0), (r1, d1)) = (known[upper - 1], known[upper]);
    Some((d0 + (d1 - d0) * (rate - r0) / (r1 - r0)).exp())
}

/// Runs `gradwire bounds`.
pub fn run(args: &BoundsArgs, _g: GlobalArgs) -> Result<()> {
    let files = input_files(&args.inputs)?;
    let mut model = SourceModel::default();
    let mut clients: Vec<Vec<f32>> = Vec::new();
    for file in &files {
        let flat: Vec<f32> = read_tensors(file)?.into_iter().flat_map(|t| t.values).collect();
        model.add(&flat);
        clients.push(flat);
    }
    model.fit();
    let rows = model.at(&args.rates);
    let views: Vec<&[f32]> = clients.iter().map(Vec::as_slice).collect();
    let ceo = CeoModel::estimate(&views);
    let ceo_rows: Vec<(f64, f64, f64, f64)> = ceo.map_or_else(Vec::new, |m| {
        [1.25, 1.5, 2.0, 5.0, 10.0, 100.0]
            .iter()
            .filter_map(|&times| {
                let d_u = times * m.floor();
                Some((times, d_u, m.sum_rate(d_u)?, m.separate_rate(d_u)?))
            })
            .collect()
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&files, &model, &rows, ceo, &ceo_rows))?);
        return Ok(());
    }
    println!(
        "gradwire bounds: {} files, {} values, mean square {:.4e}, {:.1} % exact zeros",
        files.len(),
        model.values,
        model.mean_square(),
        100.0 * model.zeros as f64 / model.values.max(1) as f64
    );
    if model.non_finite > 0 {
        println!("{} infinities and NaN left out", model.non_finite);
    }
    match model.beta {
        Some(beta) => println!(
            "GenNorm fitted by maximum likelihood to every {SAMPLE_STRIDE}th nonzero value: beta {beta:.4} \
             (entropy power {:.4} of the variance)",
            bounds::gennorm_entropy_power_ratio(beta)
        ),
        None => println!("GenNorm: too few distinct nonzero values to fit"),
    }
    println!(
        "\nDistortion (MSE over the mean square) that no codec beats at each rate on i.i.d. values of this model. \
         Real gradients are not i.i.d. (exact zeros, tensors of different scales): a codec that exploits that can \
         sit below these curves. At high rates on heavy tails, where Blahut-Arimoto's grid cannot resolve D, \
         its column shows the Shannon lower bound, which is tight there.\n"
    );
    println!(
        "| bits/entry | Gaussian 2^(-2R) | GenNorm Shannon lower bound | GenNorm D(R), Blahut-Arimoto | worst-case alpha >= 4^(-R) |"
    );
    println!("|---|---|---|---|---|");
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4e}"));
    for r in &rows {
        println!(
            "| {} | {:.4e} | {} | {} | {:.4e} |",
            r.rate,
            r.gaussian,
            show(r.gennorm_slb),
            show(r.gennorm_rd),
            r.compressor_alpha
        );
    }
    println!(
        "\nThe compressor bound: a codec with ||C(x) - x||^2 <= alpha ||x||^2 for every x needs at least \
         (d/2) log2(1/alpha) bits for d values ({:.0} bits for these {} values at alpha = 0.1).",
        bounds::compressor_bound_bits(model.values, 0.1),
        model.values
    );
    if let Some(m) = ceo {
        println!(
            "\nAggregating the {} inputs as client updates (vector Gaussian CEO): sigma_x^2 {:.4e} (mean update), \
             sigma_n^2 {:.4e} (client noise), floor sigma_n^2/K {:.4e}. Bits per coordinate, all clients together:\n",
            m.clients,
            m.signal_variance,
            m.noise_variance,
            m.floor()
        );
        println!("| D_u / floor | D_u | R_u (joint) | R_sep (separate) | R_u per client | saving |");
        println!("|---|---|---|---|---|---|");
        for &(times, d_u, r_u, r_sep) in &ceo_rows {
            println!(
                "| {times} | {d_u:.4e} | {r_u:.4} | {r_sep:.4} | {:.4} | {:.1} % |",
                r_u / m.clients as f64,
                100.0 * (1.0 - r_u / r_sep)
            );
        }
    }
    Ok(())
}

/// CEO rows: `(D_u / floor, D_u, R_u, R_sep)`.
type CeoRows = [(f64, f64, f64, f64)];

/// The JSON form of `gradwire bounds`.
fn to_json(
    files: &[String],
    model: &SourceModel,
    rows: &[BoundsAt],
    ceo: Option<CeoModel>,
    ceo_rows: &CeoRows,
) -> serde_json::Value {
    serde_json::json!({
        "inputs": files,
        "values": model.values,
        "mean_square": model.mean_square(),
        "zero_fraction": model.zeros as f64 / model.values.max(1) as f64,
        "non_finite": model.non_finite,
        "gennorm_beta": model.beta,
        "fit_sample": format!("every {SAMPLE_STRIDE}th nonzero value"),
        "rows": rows.iter().map(|r| serde_json::json!({
            "rate": r.rate, "gaussian": r.gaussian, "gennorm_shannon_lower_bound": r.gennorm_slb,
            "gennorm_blahut_arimoto": r.gennorm_rd, "compressor_alpha": r.compressor_alpha,
        })).collect::<Vec<_>>(),
        "ceo": ceo.map(|m| serde_json::json!({
            "clients": m.clients, "signal_variance": m.signal_variance, "noise_variance": m.noise_variance,
            "floor": m.floor(),
            "rows": ceo_rows.iter().map(|&(times, d_u, r_u, r_sep)| serde_json::json!({
                "times_floor": times, "d_u": d_u, "sum_rate": r_u, "separate_rate": r_sep,
            })).collect::<Vec<_>>(),
        })),
    })
}
