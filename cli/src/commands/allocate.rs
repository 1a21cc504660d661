//! `m22:rate=B` on the command line: the one codec parameter that needs the whole stream. Before
//! anything is written, the `rate` of an `m22` stage is replaced by the cell width `step=S` of
//! the entropy-constrained mode that `gradwire_m22::allocate` finds for `B` bits per entry over
//! every tensor, the container's own bytes included.

use anyhow::{Context, Result, bail};
use gradwire::Registry;
use gradwire::m22::M22Params;
use gradwire::m22::allocate::allocate;
use gradwire::m22::chunk::HEADER_LEN;

use crate::tensor_io::NamedTensor;

/// Payload bytes of an `m22` chunk whose values all fall in one cell: header, one point, and
/// the one-byte constant label.
const ONE_CELL_PAYLOAD: u64 = HEADER_LEN as u64 + 4 + 1;

/// The pipeline text with any `m22:...rate=B...` stage resolved to `step=S`. `stream_len`
/// encodes the tensors with a pipeline (given as text) and returns the stream's length in bytes:
/// the caller writes with its own header and options, so the container's bytes (framing,
/// descriptors, metadata, index) are measured, not guessed.
pub fn resolve_rate(
    spec: &str,
    registry: &Registry,
    tensors: &[NamedTensor],
    chunk_elements: u64,
    stream_len: &dyn Fn(&str) -> Result<u64>,
) -> Result<String> {
    let parts: Vec<&str> = spec.split('+').collect();
    let Some(at) = parts
        .iter()
        .position(|p| p.strip_prefix("m22:").is_some_and(|q| q.split(',').any(|kv| kv.starts_with("rate="))))
    else {
        return Ok(spec.to_owned());
    };
    let params = &parts[at]["m22:".len()..];
    let (rate, rest): (Vec<&str>, Vec<&str>) = params.split(',').partition(|kv| kv.starts_with("rate="));
    let rate_text = rate.last().copied().unwrap_or_default();
    let rate: f64 = rate_text["rate=".len()..]
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r > 0.0)
        .with_context(|| format!("m22 {rate_text:?}: the rate must be a positive number of bits per entry"))?;
    if rest.iter().any(|kv| ["mse=", "step=", "entropy="].iter().any(|k| kv.starts_with(k))) {
        bail!(gradwire::Error::new(
            gradwire::ErrorCode::InvalidArgument,
            "m22 takes rate=B or one of mse, step and entropy, not both"
        ));
    }
    let base = if rest.is_empty() { "m22".to_owned() } else { format!("m22:{}", rest.join(",")) };
    let sep = if rest.is_empty() { ":" } else { "," };
    // The whole pipeline with the m22 stage at cell width `step`: stages after it (zstd, say)
    // are part of what is measured.
    let pipeline_with = |step: f32| {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        p[at] = format!("{base}{sep}step={step:e}");
        p.join("+")
    };
    let params = M22Params::decode(&registry.parse_pipeline(&format!("{base}{sep}step=1"))?[0].params)?;
    let values: Vec<&[f32]> = tensors.iter().map(|t| t.values.as_slice()).collect();
    // The container's bytes: a stream whose every chunk is one cell, less those payloads.
    let chunks: u64 = tensors.iter().map(|t| (t.values.len() as u64).div_ceil(chunk_elements.max(1))).sum();
    let mut overhead = stream_len(&pipeline_with(f32::MAX))?.saturating_sub(chunks * ONE_CELL_PAYLOAD) as f64 * 8.0;
    let total: u64 = tensors.iter().map(|t| t.values.len() as u64).sum();
    let budget = rate * total as f64;
    // The sizes are predicted (exactly for chunks of up to 16 Ki values, from a sample for
    // larger ones) and the framing, later stages and error feedback change them: a stream found
    // over budget is allocated again with the excess (doubled each time) taken off, up to 7
    // times; one still over budget is an error, not a silent overrun.
    let mut smallest = f64::INFINITY;
    for attempt in 0..8 {
        // Every value zero: any width gives the same stream.
        let width = allocate(&values, chunk_elements as usize, &params, rate, overhead).unwrap_or(1.0);
        let resolved = pipeline_with(width);
        let bits = stream_len(&resolved)? as f64 * 8.0;
        if bits <= budget {
            return Ok(resolved);
        }
        smallest = smallest.min(bits);
        overhead += (bits - budget) * f64::from(1u32 << attempt);
    }
    let one_cell = stream_len(&pipeline_with(f32::MAX))? as f64 * 8.0;
    bail!(gradwire::Error::new(
        gradwire::ErrorCode::InvalidArgument,
        format!(
            "m22:rate={rate} cannot be met: the smallest stream found takes {:.3} bits per entry, and one cell \
             per chunk (every value 0) already {:.3} ({total} values; fewer, larger chunks cost less framing)",
            smallest / total.max(1) as f64,
            one_cell / total.max(1) as f64
        )
    ));
}
