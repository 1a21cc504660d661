//! `gradwire archive`: a whole training run in one appendable, indexed file (`spec/FORMAT.md`
//! §18): append streams or tensor files, list and search entries, extract one, verify every
//! checksum, and repair (rebuild the index, drop a torn tail).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use gradwire::StreamHeader;
use gradwire::archive::{Archive, ArchiveEntry};

use crate::GlobalArgs;
use crate::tensor_io::{FileKind, OutputKind, read_bytes, sniff, tensors_to_bytes, write_bytes};

/// Arguments of `gradwire archive`.
#[derive(Args, Debug)]
pub struct ArchiveArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The archive subcommands.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Append gradwire streams, or .npy/.npz/.safetensors files encoded with --codec (the archive
    /// is created when missing).
    Append(AppendArgs),
    /// List the entries: offset, size, round, client, tensors, codecs.
    Ls(LsArgs),
    /// Write one entry as a stream (.gw) or as tensors (.safetensors, .npy, .npz).
    Extract(ExtractArgs),
    /// Decode every entry and check every checksum; report damaged entries and keep going.
    Verify(PathArgs),
    /// Rebuild the index from the streams; drop a torn tail; report damaged ranges.
    Repair(PathArgs),
}

/// Arguments of `archive append`.
#[derive(Args, Debug)]
pub struct AppendArgs {
    /// The archive.
    pub archive: String,
    /// Streams (.gw) or tensor files to append, in order.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Pipeline for tensor-file inputs.
    #[arg(long, default_value = "raw")]
    pub codec: String,
    /// Round, client, examples and payload kind of tensor-file inputs.
    #[command(flatten)]
    pub update: super::UpdateMetadata,
}

/// Arguments of `archive ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// The archive.
    pub archive: String,
    /// Only entries of this round.
    #[arg(long)]
    pub round: Option<u64>,
    /// Only entries of this client.
    #[arg(long)]
    pub client: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `archive extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The archive.
    pub archive: String,
    /// Position of the entry (as `archive ls` numbers them).
    #[arg(long, conflicts_with_all = ["round", "client"])]
    pub index: Option<usize>,
    /// Round of the entry.
    #[arg(long)]
    pub round: Option<u64>,
    /// Client of the entry.
    #[arg(long)]
    pub client: Option<String>,
    /// Output: .gw (the stream as stored), .safetensors, .npy (one tensor) or .npz.
    #[arg(short, long)]
    pub output: String,
}

/// An archive path alone.
#[derive(Args, Debug)]
pub struct PathArgs {
    /// The archive.
    pub archive: String,
}

/// Runs `gradwire archive`.
pub fn run(args: &ArchiveArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    match &args.action {
        Action::Append(a) => append(a, &registry, g),
        Action::Ls(a) => ls(a, &registry),
        Action::Extract(a) => extract(a, &registry, g),
        Action::Verify(a) => verify(&a.archive, &registry, g),
        Action::Repair(a) => repair(&a.archive, &registry, g),
    }
}

fn append(args: &AppendArgs, registry: &gradwire::Registry, g: GlobalArgs) -> Result<()> {
    let mut archive = if std::path::Path::new(&args.archive).exists() {
        Archive::open(&args.archive, registry)?
    } else {
        Archive::create(&args.archive)?
    };
    for input in &args.inputs {
        let bytes = read_bytes(input)?;
        let stream = if sniff(&bytes) == Some(FileKind::Gradwire) {
            if !args.update.is_empty() {
                bail!(gradwire::Error::new(
                    gradwire::ErrorCode::InvalidArgument,
                    format!(
                        "{input} is a stream: its metadata is in its header; --round and the like apply to tensor files"
                    ),
                ));
            }
            bytes
        } else {
            let tensors = crate::tensor_io::read_tensors(input)?;
            let metadata = args.update.to_metadata()?;
            let header = StreamHeader { seed: g.seed.unwrap_or(0), metadata, ..StreamHeader::default() };
            super::demo::encode_with_header(registry, &tensors, &args.codec, g.threads_or_all(), &header)?
        };
        let entry = archive.append(&stream, registry).with_context(|| format!("appending {input}"))?;
        if !g.quiet {
            eprintln!("appended {input}: {} bytes at offset {}", entry.length, entry.offset);
        }
    }
    Ok(())
}

fn entry_json(i: usize, e: &ArchiveEntry) -> serde_json::Value {
    serde_json::json!({
        "index": i,
        "offset": e.offset,
        "bytes": e.length,
        "round": e.round,
        "client": e.client,
        "values": e.n_values(),
        "tensors": e.tensors.iter().map(|t| serde_json::json!({"name": t.name, "values": t.n_elements, "codec": t.codec})).collect::<Vec<_>>(),
    })
}

fn ls(args: &LsArgs, registry: &gradwire::Registry) -> Result<()> {
    let archive = Archive::open(&args.archive, registry)?;
    let chosen = archive.find(args.round, args.client.as_deref());
    if args.json {
        let out = serde_json::json!({
            "indexed": archive.indexed(),
            "entries": chosen.iter().map(|&i| entry_json(i, &archive.entries()[i])).collect::<Vec<_>>(),
            "damaged": archive.damaged().iter().map(|d| serde_json::json!({"offset": d.offset, "bytes": d.length, "error": d.error.to_string()})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: {} entries ({}){}",
        args.archive,
        archive.entries().len(),
        if archive.indexed() { "from the index" } else { "found by walking the streams: no valid index" },
        if chosen.len() == archive.entries().len() { String::new() } else { format!(", {} shown", chosen.len()) }
    );
    println!(
        "{:>6} {:>12} {:>10} {:>6} {:<12} {:>10}  tensors (codecs)",
        "index", "offset", "bytes", "round", "client", "values"
    );
    for &i in &chosen {
        let e = &archive.entries()[i];
        let mut codecs: Vec<&str> = e.tensors.iter().map(|t| t.codec.as_str()).collect();
        codecs.dedup();
        println!(
            "{i:>6} {:>12} {:>10} {:>6} {:<12} {:>10}  {} ({})",
            e.offset,
            e.length,
            e.round.map_or("-".to_owned(), |r| r.to_string()),
            e.client.as_deref().unwrap_or("-"),
            e.n_values(),
            e.tensors.len(),
            codecs.join(", ")
        );
    }
    for d in archive.damaged() {
        println!("damaged: {} bytes at offset {}: {}", d.length, d.offset, d.error);
    }
    Ok(())
}

fn extract(args: &ExtractArgs, registry: &gradwire::Registry, g: GlobalArgs) -> Result<()> {
    let archive = Archive::open(&args.archive, registry)?;
    let index = if let Some(i) = args.index {
        i
    } else {
        if args.round.is_none() && args.client.is_none() {
            bail!(gradwire::Error::new(
                gradwire::ErrorCode::InvalidArgument,
                "give --index N, or --round and/or --client"
            ));
        }
        let found = archive.find(args.round, args.client.as_deref());
        match found.as_slice() {
            [i] => *i,
            [] => {
                bail!(gradwire::Error::new(gradwire::ErrorCode::InvalidArgument, "no entry has that round and client"))
            }
            many => bail!(gradwire::Error::new(
                gradwire::ErrorCode::InvalidArgument,
                format!("{} entries match (indexes {many:?}); give --index", many.len())
            )),
        }
    };
    let is_stream = std::path::Path::new(&args.output).extension().is_some_and(|e| e.eq_ignore_ascii_case("gw"));
    if is_stream {
        write_bytes(&args.output, &archive.entry_bytes(index)?)?;
    } else {
        let kind = OutputKind::from_path(&args.output)?;
        let (tensors, meta) = super::stream_tensors(archive.decode_entry(index, registry)?);
        write_bytes(&args.output, &tensors_to_bytes(kind, &tensors, false, meta)?)?;
    }
    if !g.quiet {
        eprintln!("wrote entry {index} to {}", args.output);
    }
    Ok(())
}

fn verify(path: &str, registry: &gradwire::Registry, g: GlobalArgs) -> Result<()> {
    let archive = Archive::open(path, registry)?;
    let checks = archive.verify(registry);
    let mut first_error = None;
    for c in &checks {
        match &c.result {
            Ok(()) if g.quiet => {}
            Ok(()) => println!("entry {} at offset {}: ok", c.index, c.offset),
            Err(e) => {
                println!("entry {} at offset {}: DAMAGED: {e}", c.index, c.offset);
                first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    for d in archive.damaged() {
        println!("{} bytes at offset {}: DAMAGED, no intact stream: {}", d.length, d.offset, d.error);
        first_error.get_or_insert_with(|| d.error.clone());
    }
    let bad = checks.iter().filter(|c| c.result.is_err()).count();
    println!(
        "{path}: {} entries, {} intact, {bad} damaged, {} damaged ranges outside entries; index {}",
        checks.len(),
        checks.len() - bad,
        archive.damaged().len(),
        if archive.indexed() { "valid" } else { "missing or stale (run `gradwire archive repair`)" }
    );
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn repair(path: &str, registry: &gradwire::Registry, g: GlobalArgs) -> Result<()> {
    let report = Archive::repair(path, registry)?;
    for d in &report.damaged {
        println!("kept {} damaged bytes at offset {} (not indexed): {}", d.length, d.offset, d.error);
    }
    if !g.quiet {
        println!(
            "{path}: index rebuilt with {} entries; {} bytes of a torn tail dropped; {} damaged ranges kept",
            report.entries,
            report.dropped_tail,
            report.damaged.len()
        );
    }
    Ok(())
}
