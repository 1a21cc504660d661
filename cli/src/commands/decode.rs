//! `gradwire decode`: a stream into .safetensors, .npy or .npz; `--salvage` keeps every intact
//! chunk of a damaged or truncated stream and reports what was lost.

use anyhow::{Result, bail};
use clap::Args;
use gradwire::{Reader, ReaderOptions};

use crate::GlobalArgs;
use crate::tensor_io::{OutputKind, tensors_to_bytes, write_bytes};

/// Arguments of `gradwire decode`.
#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Input stream (- for standard input).
    pub input: String,
    /// Output file: .safetensors, .npy (one tensor) or .npz; - writes safetensors to standard
    /// output; default: the input path with extension .safetensors.
    #[arg(short, long)]
    pub output: Option<String>,
    /// On a damaged or truncated stream, write every intact chunk (an incomplete tensor as the 1-D
    /// prefix that arrived), say what was lost, and still exit with the error's code.
    #[arg(long)]
    pub salvage: bool,
    /// Write each tensor in the dtype it was encoded from (f16, bf16, f64) instead of f32.
    #[arg(long)]
    pub keep_dtype: bool,
    /// Side information for tensors coded against it (the sender's, or the decode fails).
    #[command(flatten)]
    pub side: super::SideInfoArgs,
}

/// Opens a file or standard input for streaming reads, with a progress bar for large files.
/// Call `finish_and_clear` on the returned bar when done.
pub fn open_input(path: &str, quiet: bool, what: &str) -> Result<(Box<dyn std::io::Read>, indicatif::ProgressBar)> {
    if path == "-" {
        return Ok((Box::new(std::io::stdin().lock()), indicatif::ProgressBar::hidden()));
    }
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("opening {path}: {e}"))?;
    let len = file.metadata().map_or(0, |m| m.len());
    let bar = crate::progress::bytes_bar(len, quiet, what);
    let reader = bar.wrap_read(std::io::BufReader::with_capacity(1 << 20, file));
    Ok((Box::new(reader), bar))
}

/// Runs `gradwire decode`.
pub fn run(args: &DecodeArgs, g: GlobalArgs) -> Result<()> {
    let output = crate::tensor_io::default_output(&args.input, args.output.as_deref(), "safetensors");
    let kind = if output == "-" { OutputKind::Safetensors } else { OutputKind::from_path(&output)? };
    let registry = gradwire::registry()?;
    let options = ReaderOptions::default().threads(g.threads_or_all());
    let (input, bar) = open_input(&args.input, g.quiet, "decoding")?;
    let mut reader = Reader::with_options(input, &registry, options);
    if let Some(side) = args.side.provider()? {
        reader.set_side_info(side);
    }
    let (stream, error) = reader.read_all_salvage();
    bar.finish_and_clear();
    if let Some(e) = &error
        && !args.salvage
    {
        return Err(e.clone().into());
    }
    // What salvage lost, noted before the values move into the output.
    let lost: Vec<String> = stream
        .tensors
        .iter()
        .filter(|t| !t.complete)
        .map(|t| {
            let d = &t.descriptor;
            let got = t.chunks_received;
            format!(
                "tensor {:?} (shape {:?}): {got} of {} chunks recovered, written as the 1-D prefix of its first {} values; values {}..{} lost",
                d.name,
                d.shape,
                d.n_chunks(),
                t.values.len(),
                t.values.len(),
                d.n_elements
            )
        })
        .collect();
    let (tensors, meta) = super::stream_tensors(stream);
    if tensors.is_empty() && kind == OutputKind::Npy {
        bail!("the stream holds no tensors");
    }
    let bytes = tensors_to_bytes(kind, &tensors, args.keep_dtype, meta)?;
    write_bytes(&output, &bytes)?;
    if let Some(e) = error {
        eprintln!("gradwire: salvage: the stream is damaged: {e}");
        for line in &lost {
            eprintln!("gradwire: salvage: {line}");
        }
        if lost.is_empty() {
            eprintln!(
                "gradwire: salvage: every tensor begun in the stream is complete; tensors after the damage, if any, are lost"
            );
        } else {
            eprintln!("gradwire: salvage: tensors after the damage, if any, are lost");
        }
        eprintln!("gradwire: salvage: wrote {} with {} tensors", output, tensors.len());
        return Err(e.into());
    }
    if !g.quiet && output != "-" {
        eprintln!("wrote {} ({} tensors)", output, tensors.len());
    }
    Ok(())
}
