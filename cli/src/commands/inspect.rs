//! `gradwire inspect`: what a stream holds (header metadata, tensors, pipelines, chunk counts,
//! bits per entry with and without framing) and whether every checksum verified.

use anyhow::Result;
use clap::Args;
use gradwire::{Event, Reader, ReaderOptions, SideInfoUse, TensorDescriptor};

use super::decode::open_input;
use super::{metadata_json, metadata_pairs, shape_text};
use crate::GlobalArgs;

/// Arguments of `gradwire inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Stream to inspect (- for standard input).
    pub input: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Side information for tensors coded against it (needed to decode and verify them).
    #[command(flatten)]
    pub side: super::SideInfoArgs,
}

struct TensorStats {
    descriptor: std::sync::Arc<TensorDescriptor>,
    pipeline: String,
    /// What the pipeline decodes against, as text ("" for nothing).
    side: String,
    /// Whether its chunks arrived encoded (side information not given).
    undecoded: bool,
    chunks: u64,
    payload: u64,
    records: u64,
}

impl TensorStats {
    fn bits_per_entry(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.descriptor.n_elements.max(1) as f64
    }
}

/// Runs `gradwire inspect`.
#[allow(clippy::too_many_lines, reason = "gathering, JSON and text output of one report, kept in reading order")]
pub fn run(args: &InspectArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    // Tensors whose side information is not given are listed and checked as records, their
    // chunks not decoded.
    let options = ReaderOptions::default().threads(g.threads_or_all()).encoded_without_side_info(true);
    let (input, bar) = open_input(&args.input, g.quiet, "inspecting")?;
    let mut reader = Reader::with_options(input, &registry, options);
    if let Some(side) = args.side.provider()? {
        reader.set_side_info(side);
    }
    let mut header = None;
    let mut tensors: Vec<TensorStats> = Vec::new();
    let mut end = None;
    let mut skipped = 0u64;
    let error = loop {
        match reader.next_event() {
            Ok(None) => break None,
            Ok(Some(Event::Header(h))) => header = Some(h),
            Ok(Some(Event::TensorBegin(d))) => {
                let pipeline = registry.pipeline_to_text(&d.pipeline).unwrap_or_else(|e| format!("<{e}>"));
                let side = side_text(&registry, &d);
                tensors.push(TensorStats {
                    descriptor: d,
                    pipeline,
                    side,
                    undecoded: false,
                    chunks: 0,
                    payload: 0,
                    records: 0,
                });
            }
            Ok(Some(Event::Chunk(c))) => {
                if let Some(t) = tensors.get_mut(c.tensor_id as usize) {
                    t.chunks += 1;
                    t.payload += c.payload_len;
                    t.records += c.record_len;
                }
            }
            Ok(Some(Event::EncodedChunk(c))) => {
                if let Some(t) = tensors.get_mut(c.tensor_id as usize) {
                    let body = (gradwire::format::CHUNK_HEADER_LEN + c.payload.len()) as u64;
                    t.undecoded = true;
                    t.chunks += 1;
                    t.payload += c.payload.len() as u64;
                    t.records += gradwire::format::RECORD_HEADER_LEN as u64 + body.next_multiple_of(8);
                }
            }
            Ok(Some(Event::End(e))) => end = Some(e),
            Ok(Some(Event::Skipped { .. })) => skipped += 1,
            Ok(Some(_)) => {}
            Err(e) => break Some(e),
        }
    };
    bar.finish_and_clear();
    let bytes = reader.position();
    let values: u64 = tensors.iter().map(|t| t.descriptor.n_elements).sum();
    let payload: u64 = tensors.iter().map(|t| t.payload).sum();
    if args.json {
        let json = serde_json::json!({
            "bytes": bytes,
            "seed": header.as_ref().map(|h| h.seed),
            "metadata": header.as_ref().map(|h| metadata_json(&h.metadata)),
            "values": values,
            "payload_bytes": payload,
            "bits_per_entry": bytes as f64 * 8.0 / values.max(1) as f64,
            "index": end.is_some_and(|e| e.index_offset != 0),
            "tensors": tensors.iter().map(|t| serde_json::json!({
                "name": t.descriptor.name,
                "dtype": t.descriptor.dtype.name(),
                "shape": t.descriptor.shape,
                "chunk_elements": t.descriptor.chunk_elements,
                "pipeline": t.pipeline,
                "side_information": t.side,
                "chunks": t.chunks,
                "payload_bytes": t.payload,
                "chunk_record_bytes": t.records,
                "bits_per_entry_payload": t.bits_per_entry(t.payload),
                "bits_per_entry_with_framing": t.bits_per_entry(t.records),
            })).collect::<Vec<_>>(),
            "status": match &error {
                None => serde_json::json!("ok"),
                Some(e) => serde_json::json!({"error": e.code().as_str(), "message": e.to_string()}),
            },
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("gradwire stream: {bytes} bytes, {} tensors, {values} values", tensors.len());
        if let Some(h) = &header {
            println!("seed: {}", h.seed);
            for (k, v) in metadata_pairs(&h.metadata) {
                println!("metadata: {k} = {v}");
            }
        }
        if let Some(e) = &end {
            println!(
                "records: {} (+ END), index: {}, skippable records: {skipped}",
                e.n_records,
                if e.index_offset != 0 { "yes" } else { "no" }
            );
        }
        if values > 0 {
            let overhead = bytes.saturating_sub(payload);
            println!(
                "size: {:.4} bits per entry in all; payload {payload} bytes, container overhead {overhead} bytes ({:.4}% of payload)",
                bytes as f64 * 8.0 / values as f64,
                overhead as f64 * 100.0 / payload.max(1) as f64
            );
        }
        println!(
            "\n{:<24} {:<5} {:<14} {:<24} {:>6} {:>12} {:>10} {:>10}",
            "tensor", "dtype", "shape", "pipeline", "chunks", "payload B", "bpe", "bpe+frame"
        );
        for t in &tensors {
            println!(
                "{:<24} {:<5} {:<14} {:<24} {:>6} {:>12} {:>10.4} {:>10.4}",
                t.descriptor.name,
                t.descriptor.dtype.name(),
                shape_text(&t.descriptor.shape),
                t.pipeline,
                t.chunks,
                t.payload,
                t.bits_per_entry(t.payload),
                t.bits_per_entry(t.records)
            );
        }
        for t in tensors.iter().filter(|t| !t.side.is_empty()) {
            println!("side information of {:?}: {}", t.descriptor.name, t.side);
        }
        let undecoded: Vec<&str> = tensors.iter().filter(|t| t.undecoded).map(|t| t.descriptor.name.as_str()).collect();
        match &error {
            None if !undecoded.is_empty() => println!(
                "\nchecksums: records verified; stream complete; not decoded for want of side information \
                 (give --side-info): {}",
                undecoded.join(", ")
            ),
            None => println!("\nchecksums: all verified; stream complete"),
            Some(e) => println!("\nchecksums: FAILED: {e}"),
        }
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// What a tensor's pipeline decodes against: `label (sha256 ...)` for bound side information,
/// a note for unbound, "" for none.
fn side_text(registry: &gradwire::Registry, d: &TensorDescriptor) -> String {
    let Ok(pipeline) = registry.build_pipeline(&d.pipeline, &gradwire::Limits::default()) else { return String::new() };
    match pipeline.side_info() {
        SideInfoUse::None => String::new(),
        SideInfoUse::Unbound => "unbound (the sender did not have it)".to_owned(),
        SideInfoUse::Bound(b) => {
            let digest = gradwire::conformance::hex(&b.digest);
            format!("{:?} (sha256 {digest})", b.label)
        }
    }
}
