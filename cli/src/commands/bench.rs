//! `gradwire bench`: what each codec costs and what it does to the values, on the user's own
//! gradients, next to a peer and the bounds: bits per entry with everything counted (each input
//! file is one stream), relative MSE, the `|g|^2`-weighted distortion of M22, the gap to the
//! Gaussian bound, and rows for a uniform quantizer with zstd at each rate, SZ3 (from the JSON
//! of `bench/peers.py`, when given), the Gaussian bound `2^(-2R)`, and the Shannon lower bound
//! and Blahut-Arimoto distortion-rate function of the generalized normal fitted to the data
//! (`gradwire bounds`); every row's gap to each bound at its own rate, in dB.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use gradwire::{Reader, ReaderOptions};

use gradwire::bounds::{gap_db, gaussian_distortion, gennorm_entropy_power_ratio, gennorm_shannon_lower_bound};

use crate::GlobalArgs;
use crate::commands::allocate::resolve_rate;
use crate::commands::bounds::{SAMPLE_STRIDE, SourceModel, interpolate_rd};
use crate::commands::demo::encode_all;
use crate::tensor_io::{NamedTensor, read_tensors};

/// Arguments of `gradwire bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Input .npy, .npz or .safetensors files, or folders (every such file in them); each file
    /// is encoded as one stream and the results are summed over all files.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Pipelines to measure (repeatable); default: m22 with `bits=R` and with `rate=R`, at
    /// M = 0 and M = 2, for every rate of `--rates`.
    #[arg(long)]
    pub codec: Vec<String>,
    /// Rates (bits per entry) of the default pipelines, the uniform+zstd peer and the bounds.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    pub rates: Vec<f64>,
    /// JSON rows written by `bench/peers.py --json` (SZ3) to merge into the table.
    #[arg(long)]
    pub peers: Option<String>,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    pub json: bool,
}

/// Sums over every value of every input.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    values: f64,
    bits: f64,
    squared_error: f64,
    energy: f64,
    /// `sum x^2 (x - y)^2` and `sum x^4`: the M = 2 weighted distortion and its scale.
    weighted_error: f64,
    weighted_energy: f64,
}

impl Totals {
    fn add_values(&mut self, original: &[f32], decoded: &[f32]) {
        for (&a, &b) in original.iter().zip(decoded) {
            let (a, b) = (f64::from(a), f64::from(b));
            let e = (a - b) * (a - b);
            self.squared_error += e;
            self.energy += a * a;
            self.weighted_error += a * a * e;
            self.weighted_energy += a * a * a * a;
        }
        self.values += original.len() as f64;
    }

    fn row(&self, rate: Option<f64>, name: &str) -> serde_json::Value {
        let bpe = self.bits / self.values.max(1.0);
        let relative = self.squared_error / self.energy.max(f64::MIN_POSITIVE);
        serde_json::json!({
            "rate": rate,
            "codec": name,
            "bits_per_entry": bpe,
            "relative_mse": relative,
            "relative_weighted_m2": self.weighted_error / self.weighted_energy.max(f64::MIN_POSITIVE),
        })
    }
}

/// The input files: files as given, folders expanded to their tensor files (sorted).
pub fn input_files(inputs: &[String]) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            let mut found: Vec<String> = std::fs::read_dir(path)
                .with_context(|| format!("listing {input}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors" || x == "npy" || x == "npz"))
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        bail!("no .npy, .npz or .safetensors files in {inputs:?}");
    }
    Ok(files)
}

/// The default pipelines: m22 at `bits=R` and `rate=R`, M = 0 and 2.
fn default_codecs(rates: &[f64]) -> Vec<(Option<f64>, String)> {
    let mut out = Vec::new();
    for &r in rates {
        if r.fract() == 0.0 && (1.0..=8.0).contains(&r) {
            out.push((Some(r), format!("m22:bits={r}")));
            out.push((Some(r), format!("m22:bits={r},m=2")));
        }
        out.push((Some(r), format!("m22:rate={r}")));
        out.push((Some(r), format!("m22:rate={r},m=2")));
    }
    out
}

/// Bytes of a uniform quantizer of width `step` (labels as i8, or i16 when they do not fit,
/// then zstd level 3, plus the width as f32) and its output.
fn uniform_zstd(values: &[f32], step: f32) -> Result<(usize, Vec<f32>)> {
    let labels: Vec<i32> = values.iter().map(|&x| (x / step).round_ties_even() as i32).collect();
    let narrow = labels.iter().all(|&k| i8::try_from(k).is_ok());
    let bytes: Vec<u8> = if narrow {
        labels.iter().map(|&k| k as i8 as u8).collect()
    } else {
        labels.iter().flat_map(|&k| (k.clamp(-32_768, 32_767) as i16).to_le_bytes()).collect()
    };
    let compressed = zstd::bulk::compress(&bytes, 3).context("zstd")?;
    let decoded = labels.iter().map(|&k| k.clamp(-32_768, 32_767) as f32 * step).collect();
    Ok((compressed.len() + 4, decoded))
}

/// The uniform+zstd peer at `rate` bits per entry on one file: the smallest width (bisection)
/// whose output fits.
fn uniform_zstd_at(values: &[f32], rate: f64) -> Result<(usize, Vec<f32>)> {
    let top = values.iter().fold(0f32, |m, x| m.max(x.abs())).max(f32::MIN_POSITIVE);
    let budget = (rate * values.len() as f64 / 8.0) as usize;
    let (mut lo, mut hi) = ((top * 1e-7).ln(), (top * 4.0).ln());
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if uniform_zstd(values, mid.exp())?.0 <= budget {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    uniform_zstd(values, hi.exp())
}

/// Runs `gradwire bench`.
pub fn run(args: &BenchArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let files = input_files(&args.inputs)?;
    let codecs: Vec<(Option<f64>, String)> = if args.codec.is_empty() {
        default_codecs(&args.rates)
    } else {
        args.codec.iter().map(|c| (None, c.clone())).collect()
    };
    let threads = g.threads.unwrap_or(1);
    let mut totals = vec![Totals::default(); codecs.len()];
    let mut peer = vec![Totals::default(); args.rates.len()];
    let mut model = SourceModel::default();
    for file in &files {
        let tensors: Vec<NamedTensor> = read_tensors(file)?;
        let flat: Vec<f32> = tensors.iter().flat_map(|t| t.values.iter().copied()).collect();
        model.add(&flat);
        for ((_, spec), total) in codecs.iter().zip(&mut totals) {
            let stream_len = |s: &str| Ok(encode_all(&registry, &tensors, s, threads, 0)?.len() as u64);
            let chunk = gradwire::stream::DEFAULT_CHUNK_ELEMENTS;
            let resolved = resolve_rate(spec, &registry, &tensors, chunk, &stream_len)
                .with_context(|| format!("{spec} on {file}"))?;
            let bytes = encode_all(&registry, &tensors, &resolved, threads, 0)?;
            let decoded = Reader::with_options(&bytes[..], &registry, ReaderOptions::default().threads(threads))
                .read_all()
                .with_context(|| format!("decoding {spec} on {file}"))?;
            total.bits += bytes.len() as f64 * 8.0;
            for (t, d) in tensors.iter().zip(&decoded.tensors) {
                total.add_values(&t.values, &d.values);
            }
        }
        for (&rate, total) in args.rates.iter().zip(&mut peer) {
            let (bytes, decoded) = uniform_zstd_at(&flat, rate)?;
            total.bits += bytes as f64 * 8.0;
            total.add_values(&flat, &decoded);
        }
    }
    let mut rows: Vec<serde_json::Value> = codecs.iter().zip(&totals).map(|((r, c), t)| t.row(*r, c)).collect();
    rows.extend(args.rates.iter().zip(&peer).map(|(&r, t)| t.row(Some(r), "uniform+zstd:level=3")));
    if let Some(path) = &args.peers {
        rows.extend(peer_rows(path)?);
    }
    model.fit();
    add_bounds(&model, &args.rates, &mut rows);
    rows.sort_by(|a, b| a["rate"].as_f64().unwrap_or(f64::MAX).total_cmp(&b["rate"].as_f64().unwrap_or(f64::MAX)));
    if args.json {
        let fitted =
            model.beta.map(|b| serde_json::json!({"beta": b, "entropy_power_ratio": gennorm_entropy_power_ratio(b)}));
        let out = serde_json::json!({"inputs": files, "gennorm_fit": fitted, "rows": rows});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let values = totals.first().or(peer.first()).map_or(0.0, |t| t.values);
    println!("gradwire bench: {} files, {values} values; bits per entry count whole streams", files.len());
    if let Some(beta) = model.beta {
        println!(
            "GenNorm fitted to every {SAMPLE_STRIDE}th nonzero value: beta {beta:.3}; Shannon lower bound = {:.3} x 2^(-2R) \
             (i.i.d. data of that shape); gaps in dB at each row's own rate (`gradwire bounds` for the bounds alone; \
             codecs that exploit exact zeros or differences between tensors can sit below the i.i.d. bounds)",
            gennorm_entropy_power_ratio(beta)
        );
    }
    println!(
        "\n| R | codec | bits/entry | relative MSE | M=2 weighted | vs Gaussian bound | vs GenNorm SLB | vs GenNorm D(R) |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let db = |v: &serde_json::Value| v.as_f64().map_or_else(|| "-".to_owned(), |x| format!("{x:+.2} dB"));
    for r in &rows {
        let weighted = r["relative_weighted_m2"].as_f64().map_or(String::new(), |w| format!("{w:.3e}"));
        println!(
            "| {} | {} | {:.3} | {:.3e} | {weighted} | {} | {} | {} |",
            r["rate"].as_f64().map_or(String::new(), |x| format!("{x}")),
            r["codec"].as_str().unwrap_or(""),
            r["bits_per_entry"].as_f64().unwrap_or(f64::NAN),
            r["relative_mse"].as_f64().unwrap_or(f64::NAN),
            db(&r["gap_to_gaussian_db"]),
            db(&r["gap_to_gennorm_slb_db"]),
            db(&r["gap_to_gennorm_rd_db"]),
        );
    }
    Ok(())
}

/// Appends the bound rows at each of `rates` and gives every row its gap to each bound at its
/// own rate. The bounds are relative to the energy (the gradients' mean is about zero).
/// Blahut-Arimoto runs at `rates` and at every row's rate rounded to a quarter bit; between
/// those points `ln D` is interpolated linearly in `R`.
fn add_bounds(model: &SourceModel, rates: &[f64], rows: &mut Vec<serde_json::Value>) {
    let mut grid: Vec<f64> = rates.to_vec();
    grid.extend(rows.iter().filter_map(|r| r["bits_per_entry"].as_f64()).map(|b| ((b * 4.0).round() / 4.0).max(0.25)));
    grid.sort_by(f64::total_cmp);
    grid.dedup_by(|a, b| a.to_bits() == b.to_bits());
    let points = model.at(&grid);
    for &r in rates {
        let (slb, rd) = (model.beta.map(|b| gennorm_shannon_lower_bound(b, r)), interpolate_rd(&points, r));
        rows.push(serde_json::json!({"rate": r, "codec": "Gaussian bound 2^(-2R)", "bits_per_entry": r,
            "relative_mse": gaussian_distortion(r), "relative_weighted_m2": null}));
        if let Some(slb) = slb {
            rows.push(serde_json::json!({"rate": r, "codec": "GenNorm Shannon lower bound", "bits_per_entry": r,
                "relative_mse": slb, "relative_weighted_m2": null}));
        }
        if let Some(rd) = rd {
            rows.push(serde_json::json!({"rate": r, "codec": "GenNorm D(R) (Blahut-Arimoto)", "bits_per_entry": r,
                "relative_mse": rd, "relative_weighted_m2": null}));
        }
    }
    for row in rows.iter_mut() {
        let (Some(bpe), Some(mse)) = (row["bits_per_entry"].as_f64(), row["relative_mse"].as_f64()) else { continue };
        row["gap_to_gaussian_db"] = serde_json::json!(gap_db(mse, gaussian_distortion(bpe)));
        row["gap_to_gennorm_slb_db"] =
            serde_json::json!(model.beta.map(|b| gap_db(mse, gennorm_shannon_lower_bound(b, bpe))));
        row["gap_to_gennorm_rd_db"] = serde_json::json!(interpolate_rd(&points, bpe).map(|d| gap_db(mse, d)));
    }
}

/// SZ3 rows from `bench/peers.py --json`, summed per target rate over the files.
fn peer_rows(path: &str) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
    let mut by_rate: Vec<(f64, String, Totals)> = Vec::new();
    for r in &rows {
        let field = |k: &str| r[k].as_f64().with_context(|| format!("{path}: a row without {k:?}"));
        let rate = field("target_bits_per_entry")?;
        let name = format!("{} (bench/peers.py)", r["peer"].as_str().unwrap_or("peer"));
        // Rates are compared by their bits: the same number written twice is the same row.
        let same = |(x, n, _): &(f64, String, Totals)| x.to_bits() == rate.to_bits() && *n == name;
        let i = if let Some(i) = by_rate.iter().position(same) {
            i
        } else {
            by_rate.push((rate, name, Totals::default()));
            by_rate.len() - 1
        };
        let t = &mut by_rate[i].2;
        t.values += field("values")?;
        t.bits += field("bits")?;
        t.squared_error += field("squared_error")?;
        t.energy += field("energy")?;
        t.weighted_error += field("weighted_error")?;
        t.weighted_energy += field("weighted_energy")?;
    }
    Ok(by_rate.iter().map(|(r, n, t)| t.row(Some(*r), n)).collect())
}
