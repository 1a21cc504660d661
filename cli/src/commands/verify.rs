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
    /// Side information for tensors coded against it (needed to decode and verify them).
    #[command(flatten)]
    pub side: super::SideInfoArgs,
}

/// Runs `gradwire verify`.
pub fn run(args: &VerifyArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let options = ReaderOptions::default().threads(g.threads_or_all());
    let (input, bar) = open_input(&args.input, g.quiet, "verifying")?;
    let mut reader = Reader::with_options(input, &registry, options);
    if let Some(side) = args.side.provider()? {
        reader.set_side_info(side);
    }
    let (mut tensors, mut chunks, mut values) = (0u64, 0u64, 0u64);
    let result = loop {
        match reader.next_event() {
            Ok(None) => break Ok(()),
            Ok(Some(Event::TensorBegin(_))) => tensors += 1,
            Ok(Some(Event::Chunk(c))) => {
                chunks += 1;
                values += c.values.len() as u64;
            }
            Ok(Some(_)) => {}
            Err(e) => break Err(e),
        }
    };
    bar.finish_and_clear();
    result?;
    if !g.quiet {
        println!(
            "OK: {} bytes, {tensors} tensors, {chunks} chunks, {values} values; every checksum and rule verified",
            reader.position()
        );
    }
    Ok(())
}
