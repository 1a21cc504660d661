//! `gradwire codecs`: every registered codec with its ID, versions, kind, parameters and lossless flag.

use anyhow::Result;
use clap::Args;

use crate::GlobalArgs;

/// Arguments of `gradwire codecs`.
#[derive(Args, Debug)]
pub struct CodecsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gradwire codecs`.
pub fn run(args: &CodecsArgs, _g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    if args.json {
        let list: Vec<_> = registry
            .descriptors()
            .map(|d| {
                serde_json::json!({
                    "id": d.id,
                    "id_hex": format!("0x{:08x}", d.id),
                    "name": d.name,
                    "kind": d.kind.as_str(),
                    "version": d.version,
                    "min_version": d.min_version,
                    "lossless": d.lossless,
                    "summary": d.summary,
                    "params": d.params.iter().map(|p| serde_json::json!({"name": p.name, "default": p.default, "help": p.help})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!("{:<12} {:<10} {:<13} {:<8} {:<9} summary", "id", "name", "kind", "version", "lossless");
    for d in registry.descriptors() {
        let version = if d.min_version == d.version {
            d.version.to_string()
        } else {
            format!("{}..{}", d.min_version, d.version)
        };
        println!(
            "0x{:08x}   {:<10} {:<13} {:<8} {:<9} {}",
            d.id,
            d.name,
            d.kind.as_str(),
            version,
            if d.lossless { "yes" } else { "no" },
            d.summary
        );
        for p in d.params {
            println!("{:>25}{}={} ({})", "", p.name, p.default, p.help);
        }
    }
    println!("\nPipeline grammar: stage(+stage)*, stage = name[:key=value(,key=value)*], e.g. bf16+zstd:level=3");
    Ok(())
}
