//! `gradwire demo`: encodes a built-in sample of real gradients (client 0, round 0 of a small
//! federated run: an MLP 64-256-256-10 on scikit-learn's digits, 85,002 values) with every
//! registered codec and prints bits per entry, relative MSE and encode/decode speed.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use gradwire::{Reader, ReaderOptions, Registry, StageKind, StreamHeader, Writer, WriterOptions};

use crate::GlobalArgs;
use crate::tensor_io::{NamedTensor, read_tensors};

/// The built-in sample: `r00_c0.safetensors` from the digits-MLP federated run.
const SAMPLE: &[u8] = include_bytes!("../../fixtures/r00_c0.safetensors");

/// Arguments of `gradwire demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Use this .npy, .npz or .safetensors file instead of the built-in sample.
    #[arg(long)]
    pub input: Option<String>,
    /// Pipelines to compare (repeatable); default: every registered codec.
    #[arg(long)]
    pub codec: Vec<String>,
    /// Minimum time spent timing each direction of each codec, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub min_time_ms: u64,
}

/// The default comparison set: `raw+zstd:level=1` (the fast lossless baseline every speed is
/// compared with), every array->bytes codec alone and followed by every bytes->bytes codec, and
/// every array->array codec followed by `raw`.
pub fn default_pipelines(registry: &Registry) -> Vec<String> {
    let kinds = |k: StageKind| registry.descriptors().filter(move |d| d.kind == k).map(|d| d.name).collect::<Vec<_>>();
    let (a2a, a2b, b2b) =
        (kinds(StageKind::ArrayToArray), kinds(StageKind::ArrayToBytes), kinds(StageKind::BytesToBytes));
    let mut out = Vec::new();
    if registry.get_by_name("zstd").is_some() {
        out.push("raw+zstd:level=1".to_owned());
    }
    for a in &a2b {
        out.push((*a).to_owned());
        out.extend(b2b.iter().map(|b| format!("{a}+{b}")));
    }
    out.extend(a2a.iter().map(|a| format!("{a}+raw")));
    out
}

/// Encodes `tensors` through the pipeline `spec` into one in-memory stream.
pub fn encode_all(
    registry: &Registry,
    tensors: &[NamedTensor],
    spec: &str,
    threads: usize,
    seed: u64,
) -> Result<Vec<u8>> {
    encode_with_header(registry, tensors, spec, threads, &StreamHeader { seed, ..StreamHeader::default() })
}

/// As [`encode_all`], with the given stream header (seed and metadata).
///
/// # Errors
/// Pipeline parsing, codec and writer errors.
pub fn encode_with_header(
    registry: &Registry,
    tensors: &[NamedTensor],
    spec: &str,
    threads: usize,
    header: &StreamHeader,
) -> Result<Vec<u8>> {
    let pipeline = registry.parse_pipeline(spec)?;
    let raw_bytes: usize = tensors.iter().map(|t| t.values.len() * 4).sum();
    let sink = Vec::with_capacity(raw_bytes + raw_bytes / 64 + 4096);
    let mut w = Writer::new(sink, registry, header, WriterOptions::default().threads(threads))?;
    let whole = crate::tensor_io::begins_with_projection(registry, &pipeline);
    for t in tensors {
        let spec = t.spec(&pipeline, whole);
        w.write_tensor(spec, &t.values)?;
    }
    Ok(w.finish()?)
}

/// Median seconds per run of `f`, running it for at least `min_time` (and at least 3 times).
fn time_median(min_time: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || start.elapsed() < min_time {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Runs `gradwire demo`.
pub fn run(args: &DemoArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let tensors = if let Some(path) = &args.input {
        read_tensors(path)?
    } else {
        let dir = std::env::temp_dir().join(format!("gradwire-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("r00_c0.safetensors");
        std::fs::write(&path, SAMPLE)?;
        let t = read_tensors(&path.to_string_lossy());
        let _ = std::fs::remove_dir_all(&dir);
        t?
    };
    let values: usize = tensors.iter().map(|t| t.values.len()).sum();
    if values == 0 {
        bail!("the input holds no values");
    }
    let energy: f64 = tensors.iter().flat_map(|t| &t.values).map(|&v| f64::from(v) * f64::from(v)).sum();
    let threads = g.threads.unwrap_or(1);
    let seed = g.seed.unwrap_or(0);
    let pipelines = if args.codec.is_empty() { default_pipelines(&registry) } else { args.codec.clone() };
    let min_time = Duration::from_millis(args.min_time_ms);
    let in_bytes = (values * 4) as f64;
    println!(
        "gradwire demo: {} tensors, {values} values ({}), {threads} thread(s)",
        tensors.len(),
        args.input.as_deref().unwrap_or("built-in sample: digits-MLP federated run, round 0, client 0")
    );
    println!(
        "bits per entry count the whole stream (headers, descriptors, framing, index); GB/s = f32 input bytes per second\n"
    );
    println!(
        "{:<24} {:>10} {:>8} {:>12} {:>9} {:>10} {:>10}",
        "pipeline", "bits/entry", "ratio", "relative MSE", "vs D(R)", "enc GB/s", "dec GB/s"
    );
    for text in &pipelines {
        // `m22:rate=B` needs every tensor first: resolved here as `gradwire encode` does.
        let stream_len = |s: &str| Ok(encode_all(&registry, &tensors, s, threads, seed)?.len() as u64);
        let chunk = gradwire::stream::DEFAULT_CHUNK_ELEMENTS;
        let resolved = crate::commands::allocate::resolve_rate(text, &registry, &tensors, chunk, &stream_len)?;
        let spec = &resolved;
        let bytes = encode_all(&registry, &tensors, spec, threads, seed)?;
        let opts = ReaderOptions::default().threads(threads);
        let decoded = Reader::with_options(&bytes[..], &registry, opts).read_all()?;
        let mut err = 0f64;
        for (t, d) in tensors.iter().zip(&decoded.tensors) {
            err += t.values.iter().zip(&d.values).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum::<f64>();
        }
        let enc = time_median(min_time, || encode_all(&registry, &tensors, spec, threads, seed).map(drop))?;
        let dec = time_median(min_time, || {
            Reader::with_options(&bytes[..], &registry, opts).read_all().map(drop).map_err(Into::into)
        })?;
        let bpe = bytes.len() as f64 * 8.0 / values as f64;
        let relative = err / energy.max(f64::MIN_POSITIVE);
        // Distance in dB to the Gaussian distortion-rate bound 2^(-2R) at the rate actually spent:
        // no code does better on Gaussian data; negative means the data is easier than Gaussian.
        let gap = if relative > 0.0 {
            format!("{:+.2} dB", 10.0 * (relative / (-2.0 * bpe).exp2()).log10())
        } else {
            "exact".into()
        };
        println!(
            "{text:<24} {bpe:>10.3} {:>7.2}x {relative:>12.3e} {gap:>9} {:>10.2} {:>10.2}",
            32.0 / bpe,
            in_bytes / enc / 1e9,
            in_bytes / dec / 1e9
        );
    }
    println!(
        "\nraw is the uncompressed reference (32 bits per entry plus container); raw+zstd:level=1 and raw+zstd (level 3) are the lossless zstd baselines."
    );
    println!(
        "vs D(R): relative MSE against the Gaussian bound 2^(-2R) at the bits per entry spent (the bound holds for Gaussian data; heavy-tailed gradients can go below it)."
    );
    Ok(())
}
