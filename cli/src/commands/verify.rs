//! `gradwire verify`: reads a whole stream, checking every checksum, ordering rule and codec
//! payload, with memory bounded by the chunk size; exit code 0 only when it is intact.

use anyhow::Result;
use clap::Args;
use gradwire::{Event, Reader, ReaderOptions};

use super::decode::open_input;
use crate::GlobalArgs;

/// Arguments of `gradwire verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Stream to verify (- for standard input).
    pub input: String,
}

/// Runs `gradwire verify`.
pub fn run(args: &VerifyArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let options = ReaderOptions::default().threads(g.threads_or_all());
    let mut reader = Reader::with_options(open_input(&args.input)?, &registry, options);
    let (mut tensors, mut chunks, mut values) = (0u64, 0u64, 0u64);
    while let Some(event) = reader.next_event()? {
        match event {
            Event::TensorBegin(_) => tensors += 1,
            Event::Chunk(c) => {
                chunks += 1;
                values += c.values.len() as u64;
            }
            _ => {}
        }
    }
    if !g.quiet {
        println!(
            "OK: {} bytes, {tensors} tensors, {chunks} chunks, {values} values; every checksum and rule verified",
            reader.position()
        );
    }
    Ok(())
}
