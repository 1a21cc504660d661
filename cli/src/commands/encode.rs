//! `gradwire encode`: tensors from .npy/.npz/.safetensors (or standard input) into a stream.

use std::io::{BufWriter, Write};

use anyhow::{Context, Result};
use clap::Args;
use gradwire::{ErrorFeedback, StreamHeader, Writer, WriterOptions};
use indicatif::ProgressBar;

use crate::GlobalArgs;
use crate::progress::values_bar;
use crate::tensor_io::{NamedTensor, begins_with_projection, read_tensors};

/// Arguments of `gradwire encode`.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// Input .npy, .npz or .safetensors file, or - for standard input.
    pub input: String,
    /// Output stream (- for standard output); default: the input path with extension .gw.
    #[arg(short, long)]
    pub output: Option<String>,
    /// Codec pipeline, e.g. raw, bf16+zstd:level=3 (see `gradwire codecs`).
    #[arg(long, default_value = "raw")]
    pub codec: String,
    /// Elements per chunk (default 1048576; with a pipeline that begins with a projection such as
    /// intrinsic, each tensor is one chunk of up to 2^24 values, so `dim` counts per tensor).
    #[arg(long, value_name = "N")]
    pub chunk_size: Option<u64>,
    /// Store the CRC32C of each chunk's decoded values (costs one decode per chunk).
    #[arg(long)]
    pub decoded_checksums: bool,
    /// Omit the INDEX record (random access then scans record headers).
    #[arg(long)]
    pub no_index: bool,
    /// Round, client, examples and payload kind of the update.
    #[command(flatten)]
    pub update: super::UpdateMetadata,
    /// Error feedback: add the residuals kept in STATE (created when missing) before encoding,
    /// and store the new residuals there once the output is complete. If the command fails,
    /// discard its output: the state was not advanced.
    #[arg(long, value_name = "STATE")]
    pub error_feedback: Option<String>,
    /// Side information for codecs that code against it.
    #[command(flatten)]
    pub side: super::SideInfoArgs,
}

/// Runs `gradwire encode`.
pub fn run(args: &EncodeArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    if !args.codec.contains("rate=") {
        registry.parse_pipeline(&args.codec)?; // refuse a bad pipeline before reading the input
    }
    let tensors = read_tensors(&args.input)?;
    let side = args.side.provider()?;
    if let Some(side) = &side {
        warn_missing_side_info(&registry, &args.codec, &tensors, side, g.quiet);
    }
    let chunk_elements = args.chunk_size.unwrap_or(gradwire::stream::DEFAULT_CHUNK_ELEMENTS);
    // Loaded before the output is created, so a bad state file leaves an existing output alone.
    let mut feedback = args.error_feedback.as_deref().map(load_feedback).transpose()?;
    let output = crate::tensor_io::default_output(&args.input, args.output.as_deref(), "gw");
    let metadata = args.update.to_metadata()?;
    let header = StreamHeader { seed: g.seed.unwrap_or(0), metadata, ..StreamHeader::default() };
    let threads = g.threads_or_all();
    let mut options =
        WriterOptions::default().threads(threads).write_index(!args.no_index).decoded_checksums(args.decoded_checksums);
    if let Some(n) = args.chunk_size {
        options = options.chunk_elements(n);
    }
    let piece_len = (options.chunk_elements as usize).saturating_mul(threads * 2);
    let stream_len = |spec: &str| -> Result<u64> {
        let pipeline = registry.parse_pipeline(spec)?;
        let mut writer = Writer::new(Vec::new(), &registry, &header, options.clone())?;
        if let Some(side) = &side {
            writer.set_side_info(side.clone());
        }
        // With error feedback the stream carries values plus residuals: measured on a copy of
        // the state, which this trial must not advance.
        let mut trial = feedback.clone();
        let whole = args.chunk_size.is_none() && begins_with_projection(&registry, &pipeline);
        Ok(write_tensors(writer, &tensors, &pipeline, trial.as_mut(), piece_len, &ProgressBar::hidden(), whole)?.len()
            as u64)
    };
    // The allocation sees what will be encoded: with error feedback, values plus residuals.
    let with_residuals: Option<Vec<NamedTensor>> = feedback.as_ref().map(|f| {
        tensors
            .iter()
            .map(|t| {
                let mut t = t.clone();
                if let Some(r) = f.residual(&t.name).filter(|r| r.len() == t.values.len()) {
                    t.values.iter_mut().zip(r).for_each(|(v, e)| *v += e);
                }
                t
            })
            .collect()
    });
    let planned = with_residuals.as_deref().unwrap_or(&tensors);
    let codec = crate::commands::allocate::resolve_rate(&args.codec, &registry, planned, chunk_elements, &stream_len)?;
    let pipeline = registry.parse_pipeline(&codec)?;
    let sink: Box<dyn Write> = if output == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&output).with_context(|| format!("creating {output}"))?)
    };
    let total: u64 = tensors.iter().map(|t| t.values.len() as u64).sum();
    let bar = values_bar(total, g.quiet, "encoding");
    let mut writer = Writer::new(BufWriter::with_capacity(1 << 20, sink), &registry, &header, options)?;
    if let Some(side) = side {
        writer.set_side_info(side);
    }
    let whole = args.chunk_size.is_none() && begins_with_projection(&registry, &pipeline);
    write_tensors(writer, &tensors, &pipeline, feedback.as_mut(), piece_len, &bar, whole)?
        .flush()
        .context("flushing the output")?;
    bar.finish_and_clear();
    if let (Some(path), Some(feedback)) = (&args.error_feedback, &feedback) {
        save_feedback(path, feedback)?;
    }
    if !g.quiet && output != "-" {
        let written = std::fs::metadata(&output).map_or(0, |m| m.len());
        let bpe = written as f64 * 8.0 / total.max(1) as f64;
        eprintln!(
            "wrote {} ({} tensors, {total} values, {written} bytes, {bpe:.3} bits per entry)",
            output,
            tensors.len()
        );
    }
    Ok(())
}

/// Writes every tensor through `pipeline` (adding and updating the residuals of `feedback` when
/// given), in pieces of a few chunks per thread so that the writer encodes them in parallel.
fn write_tensors<W: Write>(
    mut writer: Writer<W>,
    tensors: &[NamedTensor],
    pipeline: &[gradwire::StageDescriptor],
    mut feedback: Option<&mut ErrorFeedback>,
    piece_len: usize,
    bar: &ProgressBar,
    whole: bool,
) -> Result<W> {
    for t in tensors {
        let spec = t.spec(pipeline, whole);
        if let Some(feedback) = feedback.as_deref_mut() {
            feedback.write_tensor(&mut writer, spec, &t.values).with_context(|| format!("tensor {:?}", t.name))?;
            bar.inc(t.values.len() as u64 * 4);
            continue;
        }
        let id = writer.begin_tensor(spec).with_context(|| format!("tensor {:?}", t.name))?;
        for piece in t.values.chunks(piece_len.max(1)) {
            writer.write_values(id, piece)?;
            bar.inc(piece.len() as u64 * 4);
        }
        writer.end_tensor(id)?;
    }
    Ok(writer.finish()?)
}

/// The error-feedback state in `path`, or a fresh one when the file does not exist.
fn load_feedback(path: &str) -> Result<ErrorFeedback> {
    match std::fs::File::open(path) {
        Ok(f) => ErrorFeedback::load(std::io::BufReader::new(f)).with_context(|| format!("reading the state {path}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ErrorFeedback::new()),
        Err(e) => Err(e).with_context(|| format!("opening the state {path}")),
    }
}

/// Replaces the state file atomically (`crate::atomic`): a crash leaves the old state or the new.
fn save_feedback(path: &str, feedback: &ErrorFeedback) -> Result<()> {
    crate::atomic::replace_file(path, |out| {
        feedback.save(out)?;
        Ok(())
    })
}

/// Warns about tensors the side information does not name when the pipeline would use it: they
/// are coded without (a plain quantizer, or refused), which is rarely what was meant.
fn warn_missing_side_info(
    registry: &gradwire::Registry,
    codec: &str,
    tensors: &[NamedTensor],
    side: &gradwire::SideInfoMap,
    quiet: bool,
) {
    use gradwire::SideInfoProvider;
    if quiet || !registry.parse_pipeline(codec).is_ok_and(|p| registry.takes_side_info(&p)) {
        return;
    }
    let missing: Vec<&str> =
        tensors.iter().filter(|t| side.side_tensor(&t.name).is_none()).map(|t| t.name.as_str()).collect();
    if !missing.is_empty() {
        eprintln!(
            "gradwire: warning: the side information has no tensor named {}; coded without it",
            missing.join(", ")
        );
    }
}
