//! `gradwire`: encode, decode, inspect and verify gradwire streams; aggregate updates; list codecs;
//! run the demo.
//!
//! Exit codes: 0 success; 1 I/O or input-file errors; 2 invalid arguments (unknown codec,
//! bad parameter, usage); 3 corrupt stream; 4 truncated stream; 5 unsupported feature, codec or
//! version; 6 a limit exceeded.

#![forbid(unsafe_code)]

mod atomic;
mod commands;
mod plot;
mod progress;
mod tensor_io;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// mimalloc keeps freed pages for reuse; with the system allocator, every multi-megabyte chunk
/// buffer was unmapped and faulted back in, and page faults took about 35% of decode time
/// (measured with `perf record` on `gradwire demo --input` with an 8M-value tensor).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The gradwire command line tool: a versioned, streaming format for compressed gradients.
#[derive(Parser, Debug)]
#[command(name = "gradwire", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand accepts.
#[derive(Args, Debug, Clone, Copy)]
pub struct GlobalArgs {
    /// Silence progress bars and informational messages.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Worker threads for encoding and decoding chunks (default: all cores; the demo uses 1).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Stream seed for seeded codecs (encode, demo); readers take the seed from the stream.
    #[arg(long, global = true, value_name = "S")]
    pub seed: Option<u64>,
}

impl GlobalArgs {
    /// The thread count to use when none was given: every core.
    #[must_use]
    pub fn threads_or_all(&self) -> usize {
        self.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get)).max(1)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Encode .npy, .npz or .safetensors tensors into a gradwire stream.
    Encode(commands::encode::EncodeArgs),
    /// Decode a gradwire stream into .safetensors, .npy or .npz.
    Decode(commands::decode::DecodeArgs),
    /// Show a stream's header, tensors, pipelines, sizes and checksum status.
    Inspect(commands::inspect::InspectArgs),
    /// Check every checksum and rule of a stream; exit code 0 when it is intact.
    Verify(commands::verify::VerifyArgs),
    /// List the registered codecs.
    Codecs(commands::codecs::CodecsArgs),
    /// Encode a built-in sample of real gradients with every codec and print a table.
    Demo(commands::demo::DemoArgs),
    /// Rate and distortion of codecs on your gradients, next to uniform+zstd, SZ3 and the bounds.
    Bench(commands::bench::BenchArgs),
    /// Rate-distortion bounds of your gradients: Gaussian, GenNorm (Shannon, Blahut-Arimoto), compressor, CEO.
    Bounds(commands::bounds::BoundsArgs),
    /// What side information buys wyner-ziv on a federated run's updates (bits at equal error).
    SideGain(commands::side_gain::SideGainArgs),
    /// Federated training of the digits on this machine, once per codec: accuracy against uplink bits.
    Simulate(commands::simulate::SimulateArgs),
    /// Combine updates of one round: majority vote of signs or weighted mean.
    Aggregate(commands::aggregate::AggregateArgs),
    /// Conformance: canonical JSON of a stream, run test vectors, generate random streams.
    Conformance(commands::conformance::ConformanceArgs),
    /// Archives: many streams in one appendable, indexed file (append, ls, extract, verify, repair).
    Archive(commands::archive::ArchiveArgs),
}

fn exit_code(err: &anyhow::Error) -> u8 {
    use gradwire::Fault;
    match err.downcast_ref::<gradwire::Error>().map(gradwire::Error::fault) {
        Some(Fault::InvalidArgument) => 2,
        Some(Fault::Corrupt) => 3,
        Some(Fault::Truncated) => 4,
        Some(Fault::Unsupported) => 5,
        Some(Fault::LimitExceeded) => 6,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = cli.global;
    let result = match cli.command {
        Command::Encode(a) => commands::encode::run(&a, g),
        Command::Decode(a) => commands::decode::run(&a, g),
        Command::Inspect(a) => commands::inspect::run(&a, g),
        Command::Verify(a) => commands::verify::run(&a, g),
        Command::Codecs(a) => commands::codecs::run(&a, g),
        Command::Demo(a) => commands::demo::run(&a, g),
        Command::Bench(a) => commands::bench::run(&a, g),
        Command::Bounds(a) => commands::bounds::run(&a, g),
        Command::Simulate(a) => commands::simulate::run(&a, g),
        Command::SideGain(a) => commands::side_gain::run(&a, g),
        Command::Aggregate(a) => commands::aggregate::run(&a, g),
        Command::Conformance(a) => commands::conformance::run_command(&a, g),
        Command::Archive(a) => commands::archive::run(&a, g),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gradwire: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}
