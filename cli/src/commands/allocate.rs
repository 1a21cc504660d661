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
    let mut stages = Vec::new();
    for stage in spec.split('+') {
        let Some(params) = stage.strip_prefix("m22:") else {
            stages.push(stage.to_owned());
            continue;
        };
        let (rate, rest): (Vec<&str>, Vec<&str>) = params.split(',').partition(|kv| kv.starts_with("rate="));
        let Some(rate) = rate.last() else {
            stages.push(stage.to_owned());
            continue;
        };
        let rate: f64 = rate["rate=".len()..]
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .with_context(|| format!("m22 {rate:?}: the rate must be a positive number of bits per entry"))?;
        if rest.iter().any(|kv| ["mse=", "step=", "entropy="].iter().any(|k| kv.starts_with(k))) {
            bail!(gradwire::Error::new(
                gradwire::ErrorCode::InvalidArgument,
                "m22 takes rate=B or one of mse, step and entropy, not both"
            ));
        }
        let base = if rest.is_empty() { "m22".to_owned() } else { format!("m22:{}", rest.join(",")) };
        let sep = if rest.is_empty() { ":" } else { "," };
        let with_step = |step: f32| format!("{base}{sep}step={step:e}");
        let params = M22Params::decode(&registry.parse_pipeline(&with_step(1.0))?[0].params)?;
        let values: Vec<&[f32]> = tensors.iter().map(|t| t.values.as_slice()).collect();
        // The container's bytes: a stream whose every chunk is one cell, less those payloads.
        let chunks: u64 = tensors.iter().map(|t| (t.values.len() as u64).div_ceil(chunk_elements.max(1))).sum();
        let probe = stages.iter().cloned().chain([with_step(f32::MAX)]).collect::<Vec<_>>().join("+");
        let mut overhead = stream_len(&probe)?.saturating_sub(chunks * ONE_CELL_PAYLOAD) as f64 * 8.0;
        let total: u64 = tensors.iter().map(|t| t.values.len() as u64).sum();
        let budget = rate * total as f64;
        let mut resolved = with_step(1.0); // every value is zero: any width gives the same stream
        // The sizes are predicted (exactly for chunks of up to 16 Ki values, from a sample for
        // larger ones) and the framing varies a little with them: a stream found over budget
        // is allocated again with the excess (doubled each time) taken off, up to 7 times.
        for attempt in 0..8 {
            let Some(width) = allocate(&values, chunk_elements as usize, &params, rate, overhead) else { break };
            resolved = with_step(width);
            let probe = stages.iter().cloned().chain([resolved.clone()]).collect::<Vec<_>>().join("+");
            let excess = stream_len(&probe)? as f64 * 8.0 - budget;
            if excess <= 0.0 {
                break;
            }
            overhead += excess * f64::from(1u32 << attempt);
        }
        stages.push(resolved);
    }
    Ok(stages.join("+"))
}
