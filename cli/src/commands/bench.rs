//! `gradwire bench`: what each codec costs and what it does to the values, on the user's own
//! gradients, next to a peer and the bounds: bits per entry with everything counted (each input
//! file is one stream), relative MSE, the `|g|^2`-weighted distortion of M22, the gap to the
//! Gaussian bound, and rows for a uniform quantizer with zstd at each rate, SZ3 (from the JSON
//! of `bench/peers.py`, when given), the Gaussian bound `2^(-2R)`, and the Shannon lower bound
//! and Blahut-Arimoto distortion-rate function of the generalized normal fitted to the data
//! (`gradwire bounds`); every row's gap to each bound at its own rate, in dB.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use gradwire::{Reader, ReaderOptions};

use gradwire::bounds::{gap_db, gaussian_distortion, gennorm_entropy_power_ratio, gennorm_shannon_lower_bound};

use crate::GlobalArgs;
use crate::commands::allocate::resolve_rate;
use crate::commands::bounds::{SAMPLE_STRIDE, SourceModel, interpolate_rd};
use crate::commands::demo::encode_all;
use crate::plot::{Plot, Series};
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
    /// Stream seeds per codec for the bias column: the squared bias is estimated from seeds
    /// 0..N with the variance of their mean removed (a codec whose output does not change with
    /// the seed is measured once; `randk` and `intrinsic` take their seed from their parameters).
    #[arg(long, default_value_t = 4)]
    pub seeds: u64,
    /// Write a plot of relative MSE against bits per entry, with the bounds drawn in: SVG, or PNG
    /// when the name ends in .png.
    #[arg(long)]
    pub plot: Option<String>,
}

/// Codecs measured by default besides m22 at `--rates`: each registered lossy family at two or
/// three settings, and the lossless baselines.
pub const DEFAULT_SWEEP: &[&str] = &[
    "bf16",
    "bf16+zstd:level=3",
    "signsgd:scale=mean",
    "signsgd:scale=block,block=4096",
    "qsgd:levels=4",
    "qsgd:levels=16",
    "qsgd:levels=64",
    "sparse-dither:nu=0.5",
    "sparse-dither:nu=0.1",
    "sparse-dither:nu=0.01",
    "sparse-dither:nu=0.1,variant=unbiased",
    "spherical:alpha=0.5,block=4",
    "topk:fraction=0.01",
    "topk:fraction=0.1,values=(m22:bits=4)",
    "randk:fraction=0.1,scaling=unbiased+bf16",
    "intrinsic:dim=4096+raw",
];

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
    /// `sum x y` and `sum y^2`, for the cosine similarity.
    cross: f64,
    decoded_energy: f64,
    /// `sum (mean over seeds of y - x)^2`, and whether it was measured.
    bias_error: f64,
    bias_measured: bool,
    /// Encode and decode seconds on one thread and on all threads.
    seconds: [f64; 4],
    timed: bool,
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
            self.cross += a * b;
            self.decoded_energy += b * b;
        }
        self.values += original.len() as f64;
    }

    fn row(&self, rate: Option<f64>, name: &str) -> serde_json::Value {
        let bpe = self.bits / self.values.max(1.0);
        let relative = self.squared_error / self.energy.max(f64::MIN_POSITIVE);
        let norms = (self.energy * self.decoded_energy).sqrt();
        let gbps = |secs: f64| (self.timed && secs > 0.0).then(|| 4.0 * self.values / secs / 1e9);
        serde_json::json!({
            "rate": rate,
            "codec": name,
            "bits_per_entry": bpe,
            "relative_mse": relative,
            "relative_weighted_m2": self.weighted_error / self.weighted_energy.max(f64::MIN_POSITIVE),
            "cosine": (norms > 0.0).then(|| self.cross / norms),
            "relative_bias": self.bias_measured.then(|| self.bias_error / self.energy.max(f64::MIN_POSITIVE)),
            "encode_gbps_1_thread": gbps(self.seconds[0]),
            "decode_gbps_1_thread": gbps(self.seconds[1]),
            "encode_gbps_all_threads": gbps(self.seconds[2]),
            "decode_gbps_all_threads": gbps(self.seconds[3]),
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

/// The default pipelines: m22 at `bits=R` and `rate=R`, M = 0 and 2, then [`DEFAULT_SWEEP`].
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
    out.extend(DEFAULT_SWEEP.iter().map(|c| (None, (*c).to_owned())));
    out
}

/// One encode and decode of a file's tensors.
struct RoundTrip {
    /// The stream.
    bytes: Vec<u8>,
    /// Decoded values per tensor.
    decoded: Vec<Vec<f32>>,
    /// Seconds to encode and to decode.
    encode_secs: f64,
    decode_secs: f64,
}

/// Encodes `tensors` with `spec` and decodes the stream, each on `threads` threads.
fn timed_round_trip(
    registry: &gradwire::Registry,
    tensors: &[NamedTensor],
    spec: &str,
    threads: usize,
    seed: u64,
) -> Result<RoundTrip> {
    let start = Instant::now();
    let bytes = encode_all(registry, tensors, spec, threads, seed)?;
    let encode_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let decoded = Reader::with_options(&bytes[..], registry, ReaderOptions::default().threads(threads)).read_all()?;
    let decode_secs = start.elapsed().as_secs_f64();
    Ok(RoundTrip { bytes, decoded: decoded.tensors.into_iter().map(|t| t.values).collect(), encode_secs, decode_secs })
}

/// Names of the lossless peer rows, in the order of [`lossless_peers`].
const LOSSLESS_PEERS: [&str; 3] =
    ["zstd:level=3 on the f32 bytes (peer)", "byte shuffle+zstd:level=3 (peer)", "pco level 8 (peer)"];

/// Lossless peers on one file's f32 values: zstd level 3 on the bytes as they are, and on the
/// bytes shuffled by significance (all first bytes, then all second bytes, ...; as Blosc does),
/// and pcodec (`pco`, standalone format) at its default configuration (level 8).
fn lossless_peers(flat: &[f32]) -> Result<[usize; 3]> {
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    let shuffled: Vec<u8> = (0..4).flat_map(|b| bytes.iter().skip(b).step_by(4).copied()).collect();
    let pco_len =
        if flat.is_empty() { 0 } else { pco::standalone::simple_compress(flat, &pco::ChunkConfig::default())?.len() };
    Ok([zstd::bulk::compress(&bytes, 3)?.len(), zstd::bulk::compress(&shuffled, 3)?.len(), pco_len])
}

/// The squared bias of one file, `sum (E[y] - x)^2`, estimated from the decoded values of stream
/// seeds 0 to `seeds - 1` without the variance of their mean: `sum (mean - x)^2 - sum s^2 / N`,
/// with `s^2` the unbiased sample variance of each value over the `N` seeds (so an unbiased codec
/// averages to about 0; the estimate may dip below 0). A codec whose output is the same for seeds
/// 0 and 1 is deterministic and its bias is its error; with one seed the error is returned.
fn bias_error(
    registry: &gradwire::Registry,
    tensors: &[NamedTensor],
    spec: &str,
    seeds: u64,
    first: &[Vec<f32>],
) -> Result<f64> {
    let flat_x: Vec<f64> = tensors.iter().flat_map(|t| t.values.iter().map(|&x| f64::from(x))).collect();
    let first: Vec<f64> = first.iter().flat_map(|v| v.iter().map(|&y| f64::from(y))).collect();
    let error = |y: &[f64]| y.iter().zip(&flat_x).map(|(y, x)| (y - x).powi(2)).sum::<f64>();
    if seeds < 2 {
        return Ok(error(&first));
    }
    let (mut sum, mut sum_sq) = (first.clone(), first.iter().map(|y| y * y).collect::<Vec<f64>>());
    for seed in 1..seeds {
        let decoded = timed_round_trip(registry, tensors, spec, 1, seed)?.decoded;
        let flat = decoded.iter().flat_map(|v| v.iter().map(|&y| f64::from(y)));
        if seed == 1 && flat.clone().zip(&first).all(|(a, b)| a.to_bits() == b.to_bits()) {
            return Ok(error(&first)); // deterministic: the mean over seeds is the one output
        }
        for ((s, q), y) in sum.iter_mut().zip(&mut sum_sq).zip(flat) {
            *s += y;
            *q += y * y;
        }
    }
    let n = seeds as f64;
    let mut estimate = 0.0;
    for ((s, q), x) in sum.iter().zip(&sum_sq).zip(&flat_x) {
        let mean = s / n;
        let variance = ((q - n * mean * mean) / (n - 1.0)).max(0.0);
        estimate += (mean - x).powi(2) - variance / n;
    }
    Ok(estimate)
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
    // Speeds on one thread and on all (`--threads N` sets "all").
    let all_threads = g.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut totals = vec![Totals::default(); codecs.len()];
    let mut peer = vec![Totals::default(); args.rates.len()];
    let mut lossless = [Totals::default(); LOSSLESS_PEERS.len()];
    let mut model = SourceModel::default();
    for file in &files {
        let tensors: Vec<NamedTensor> = read_tensors(file)?;
        let flat: Vec<f32> = tensors.iter().flat_map(|t| t.values.iter().copied()).collect();
        model.add(&flat);
        for ((_, spec), total) in codecs.iter().zip(&mut totals) {
            let stream_len = |s: &str| Ok(encode_all(&registry, &tensors, s, all_threads, 0)?.len() as u64);
            let chunk = gradwire::stream::DEFAULT_CHUNK_ELEMENTS;
            let resolved = resolve_rate(spec, &registry, &tensors, chunk, &stream_len)
                .with_context(|| format!("{spec} on {file}"))?;
            let one =
                timed_round_trip(&registry, &tensors, &resolved, 1, 0).with_context(|| format!("{spec} on {file}"))?;
            let all = timed_round_trip(&registry, &tensors, &resolved, all_threads, 0)
                .with_context(|| format!("{spec} on {file}"))?;
            total.bits += one.bytes.len() as f64 * 8.0;
            for (t, d) in tensors.iter().zip(&one.decoded) {
                total.add_values(&t.values, d);
            }
            let seconds = [one.encode_secs, one.decode_secs, all.encode_secs, all.decode_secs];
            for (acc, secs) in total.seconds.iter_mut().zip(seconds) {
                *acc += secs;
            }
            total.timed = true;
            total.bias_error += bias_error(&registry, &tensors, &resolved, args.seeds, &one.decoded)
                .with_context(|| format!("{spec} on {file}, further seeds"))?;
            total.bias_measured = true;
        }
        for (size, total) in lossless_peers(&flat)?.into_iter().zip(&mut lossless) {
            total.bits += size as f64 * 8.0;
            total.add_values(&flat, &flat);
        }
        for (&rate, total) in args.rates.iter().zip(&mut peer) {
            let (bytes, decoded) = uniform_zstd_at(&flat, rate)?;
            total.bits += bytes as f64 * 8.0;
            total.add_values(&flat, &decoded);
        }
    }
    let mut rows: Vec<serde_json::Value> = codecs.iter().zip(&totals).map(|((r, c), t)| t.row(*r, c)).collect();
    rows.extend(args.rates.iter().zip(&peer).map(|(&r, t)| t.row(Some(r), "uniform+zstd:level=3")));
    rows.extend(lossless.iter().zip(LOSSLESS_PEERS).map(|(t, name)| t.row(None, name)));
    if let Some(path) = &args.peers {
        rows.extend(peer_rows(path)?);
    }
    model.fit();
    add_bounds(&model, &args.rates, &mut rows);
    rows.sort_by(|a, b| a["rate"].as_f64().unwrap_or(f64::MAX).total_cmp(&b["rate"].as_f64().unwrap_or(f64::MAX)));
    if let Some(path) = &args.plot {
        let max_bits = 2.0 * args.rates.iter().copied().fold(4.0, f64::max);
        rate_distortion_plot(&rows, files.len(), max_bits)
            .save(std::path::Path::new(path))
            .with_context(|| format!("writing {path}"))?;
    }
    if args.json {
        let fitted =
            model.beta.map(|b| serde_json::json!({"beta": b, "entropy_power_ratio": gennorm_entropy_power_ratio(b)}));
        let out = serde_json::json!({"inputs": files, "gennorm_fit": fitted, "rows": rows});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let values = totals.first().or(peer.first()).map_or(0.0, |t| t.values);
    print_table(&rows, files.len(), values, model.beta, all_threads, args.seeds);
    Ok(())
}

/// The Markdown table of `gradwire bench`.
fn print_table(
    rows: &[serde_json::Value],
    files: usize,
    values: f64,
    beta: Option<f64>,
    all_threads: usize,
    seeds: u64,
) {
    println!("gradwire bench: {files} files, {values} values; bits per entry count whole streams");
    if let Some(beta) = beta {
        println!(
            "GenNorm fitted to every {SAMPLE_STRIDE}th nonzero value: beta {beta:.3}; Shannon lower bound = {:.3} x 2^(-2R) \
             (i.i.d. data of that shape); gaps in dB at each row's own rate (`gradwire bounds` for the bounds alone; \
             codecs that exploit exact zeros or differences between tensors can sit below the i.i.d. bounds)",
            gennorm_entropy_power_ratio(beta)
        );
    }
    println!(
        "encode/decode GB/s of f32 input on 1 thread / {all_threads} threads; bias: squared norm of the mean error \
         over {} stream seeds minus the variance of that mean, relative to the energy (unbiased codecs: about 0; \
         deterministic codecs: their error)",
        seeds.max(1)
    );
    println!(
        "\n| R | codec | bits/entry | relative MSE | M=2 weighted | cosine | bias | encode GB/s | decode GB/s | vs Gaussian bound | vs GenNorm SLB | vs GenNorm D(R) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let db = |v: &serde_json::Value| v.as_f64().map_or_else(|| "-".to_owned(), |x| format!("{x:+.2} dB"));
    let sci = |v: &serde_json::Value| v.as_f64().map_or(String::new(), |w| format!("{w:.3e}"));
    let speed = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => format!("{a:.3} / {b:.3}"),
        _ => String::new(),
    };
    for r in rows {
        println!(
            "| {} | {} | {:.3} | {:.3e} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["rate"].as_f64().map_or(String::new(), |x| format!("{x}")),
            r["codec"].as_str().unwrap_or(""),
            r["bits_per_entry"].as_f64().unwrap_or(f64::NAN),
            r["relative_mse"].as_f64().unwrap_or(f64::NAN),
            sci(&r["relative_weighted_m2"]),
            r["cosine"].as_f64().map_or(String::new(), |c| format!("{c:.4}")),
            sci(&r["relative_bias"]),
            speed(&r["encode_gbps_1_thread"], &r["encode_gbps_all_threads"]),
            speed(&r["decode_gbps_1_thread"], &r["decode_gbps_all_threads"]),
            db(&r["gap_to_gaussian_db"]),
            db(&r["gap_to_gennorm_slb_db"]),
            db(&r["gap_to_gennorm_rd_db"]),
        );
    }
}

/// Relative MSE (log scale) against bits per entry up to `max_bits`: one marker series per
/// codec family (the codec name before `:`) and per peer, the bounds as dashed lines over the
/// rates.
fn rate_distortion_plot(rows: &[serde_json::Value], files: usize, max_bits: f64) -> Plot {
    let mut series: Vec<Series> = Vec::new();
    for r in rows {
        let (Some(bpe), Some(mse)) = (r["bits_per_entry"].as_f64(), r["relative_mse"].as_f64()) else { continue };
        if bpe > max_bits {
            continue;
        }
        let codec = r["codec"].as_str().unwrap_or("");
        let bound = codec.contains("bound") || codec.contains("D(R)");
        let family = if bound || codec.contains("peer") || codec.starts_with("uniform") {
            codec.to_owned()
        } else {
            codec.split(':').next().unwrap_or(codec).to_owned()
        };
        if mse <= 0.0 {
            continue; // lossless rows have no place on a log axis
        }
        match series.iter_mut().find(|s| s.name == family) {
            Some(s) => s.points.push((bpe, mse)),
            None => series.push(Series { name: family, points: vec![(bpe, mse)], line: bound, dashed: bound }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Plot {
        title: format!("rate and distortion on {files} file(s), up to {max_bits} bits per entry"),
        x_label: "bits per entry (whole streams)".into(),
        y_label: "relative MSE".into(),
        log_x: false,
        log_y: true,
        series,
    }
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
