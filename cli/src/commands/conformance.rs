//! `gradwire conformance`: the contract other implementations are tested against
//! (`spec/FORMAT.md` §14).
//!
//! - `decode FILE`: the canonical JSON of a stream, or `{"error": CODE, "message": ...}` and exit 1;
//! - `run DIR`: checks every vector of `DIR/manifest.json`, prints `N passed, N failed`;
//! - `generate DIR`: writes random valid streams and their manifest, for testing other decoders.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use gradwire::conformance::{Entry, decode_json_with, generate, run, sha256_hex};

use crate::GlobalArgs;
use crate::tensor_io::read_bytes;

/// Arguments of `gradwire conformance`.
#[derive(Args, Debug)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    command: ConformanceCommand,
}

#[derive(Subcommand, Debug)]
enum ConformanceCommand {
    /// Print the canonical JSON of a stream (exit 1 with {"error": CODE} when it is rejected).
    Decode {
        /// Stream to decode (- for standard input).
        file: String,
        /// Side information for tensors that decode against it.
        #[command(flatten)]
        side: super::SideInfoArgs,
    },
    /// Check every vector listed in DIR/manifest.json; prints `N passed, N failed`.
    Run {
        /// Folder holding manifest.json and the vectors.
        dir: PathBuf,
    },
    /// Write random valid streams and their manifest.json, for testing other implementations.
    Generate {
        /// Output folder (created; existing files are not overwritten).
        dir: PathBuf,
        /// Number of streams.
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
}

/// Runs `gradwire conformance`.
pub fn run_command(args: &ConformanceArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    match &args.command {
        ConformanceCommand::Decode { file, side } => {
            let bytes = read_bytes(file)?;
            let side = side.provider()?.map(|s| s as std::sync::Arc<dyn gradwire::SideInfoProvider>);
            match decode_json_with(&bytes, &registry, side) {
                Ok(json) => println!("{}", serde_json::to_string(&json)?),
                Err(e) => {
                    println!("{}", serde_json::json!({ "error": e.code().as_str(), "message": e.to_string() }));
                    std::process::exit(1);
                }
            }
        }
        ConformanceCommand::Run { dir } => {
            let results = run(dir, &registry)?;
            let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
            for r in &failed {
                println!("FAIL {}: {}", r.id, r.failure.as_deref().unwrap_or_default());
            }
            println!("{} passed, {} failed", results.len() - failed.len(), failed.len());
            if !failed.is_empty() {
                bail!("{} of {} vectors failed", failed.len(), results.len());
            }
        }
        ConformanceCommand::Generate { dir, count } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let manifest_path = dir.join("manifest.json");
            if manifest_path.exists() {
                bail!("{} exists; generate into an empty folder", manifest_path.display());
            }
            let seed = g.seed.unwrap_or(1);
            let mut manifest = Vec::new();
            for (id, bytes, json) in generate(&registry, seed, *count)? {
                let file = format!("{id}.gw");
                std::fs::write(dir.join(&file), &bytes)?;
                manifest.push(Entry {
                    id,
                    file,
                    description: format!("random valid stream (generator seed {seed})"),
                    expect: "ok".into(),
                    sha256: sha256_hex(&bytes),
                    expected: Some(json),
                    side_info: None,
                });
            }
            std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest)? + "\n")?;
            if !g.quiet {
                eprintln!("wrote {count} streams and manifest.json to {}", dir.display());
            }
        }
    }
    Ok(())
}
