//! Aggregation of several client updates into one stream, in the compressed domain where the
//! codec allows it (`spec/FORMAT.md` §17).
//!
//! The inputs are read in lockstep, chunk by chunk, with chunk decoding switched off
//! ([`ReaderOptions::decode_chunks`]), so memory stays at a few chunks per input whatever the
//! tensor sizes. For each chunk:
//!
//! - [`Rule::Majority`]: each input's sign plane ([`Pipeline::sign_plane_chunk`]: copied from the
//!   payload of codecs that store one, such as `signsgd`; decoded and packed otherwise), then a
//!   bit-sliced majority vote ([`crate::signs::majority`], ties give +1). Every input counts once
//!   (Bernstein et al. 2019); the output holds +1 and -1 and is written as `signsgd:scale=none`
//!   unless another pipeline is given.
//! - [`Rule::Mean`]: the weighted mean `sum_k w_k x_k / sum_k w_k`, added straight from each payload
//!   where the codec implements [`crate::ArrayToBytes::accumulate`] (scaled signs), decoded
//!   otherwise; written with the inputs' own pipeline unless another is given.
//!
//! Projections (pipelines whose array->array stages are linear, such as `intrinsic`): when every
//! input has the same pipeline (so the same seed and subspace) and the output keeps it, the mean
//! is taken of the coefficients, which are never expanded to the tensor's length
//! ([`crate::Pipeline::accumulate_inner_chunk`], [`Writer::write_inner_chunk`]). Inputs whose
//! pipelines differ (another seed, another codec) are decoded, averaged and re-encoded with the
//! output pipeline (input 0's unless given), or refused with
//! [`AggregateOptions::compressed_only`].
//!
//! Weights come from `fl.num_examples` when every input has it, are equal when none has it, and
//! may be given explicitly. Inputs must match: same tensors in the same order with the same
//! shapes and chunking, and the same `fl.round` when present; anything else is refused
//! with [`ErrorCode::InvalidArgument`] naming the input and what differs.
//!
//! Payloads are checked by their record CRC32C. A tensor that carries decoded-value checksums is
//! decoded and checked chunk by chunk instead of combined in the compressed domain.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};
use crate::format::{ChunkHeader, Metadata, StageDescriptor, StreamHeader, TensorDescriptor, Value};
use crate::limits::Limits;
use crate::registry::Registry;
use crate::signs;
use crate::stream::{
    EncodedChunk, Event, Reader, ReaderOptions, TensorCodec, TensorId, TensorSpec, Writer, WriterOptions,
};

/// How updates are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Sign of the sum of signs, ties +1; unweighted.
    Majority,
    /// Weighted mean of the decoded values.
    Mean,
}

impl Rule {
    /// The command-line spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Majority => "majority",
            Rule::Mean => "mean",
        }
    }
}

impl std::str::FromStr for Rule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Rule> {
        match s {
            "majority" => Ok(Rule::Majority),
            "mean" => Ok(Rule::Mean),
            _ => Err(Error::new(ErrorCode::InvalidArgument, format!("aggregation rule {s:?} is not majority or mean"))),
        }
    }
}

/// Settings of [`aggregate`].
#[derive(Debug, Clone)]
pub struct AggregateOptions {
    /// The rule.
    pub rule: Rule,
    /// Pipeline of every output tensor; `None` for the rule's default (see the module docs).
    pub output: Option<Vec<StageDescriptor>>,
    /// One weight per input for [`Rule::Mean`]; `None` takes `fl.num_examples` or equal weights.
    pub weights: Option<Vec<f64>>,
    /// Options of the output writer.
    pub writer: WriterOptions,
    /// Limits applied to every input.
    pub limits: Limits,
    /// Refuse to expand coefficients: every input must share one pipeline, and a pipeline with
    /// array->array stages must be linear and kept for the output (see the module docs).
    pub compressed_only: bool,
}

impl AggregateOptions {
    /// Defaults for `rule`.
    #[must_use]
    pub fn new(rule: Rule) -> Self {
        AggregateOptions {
            rule,
            output: None,
            weights: None,
            writer: WriterOptions::default(),
            limits: Limits::default(),
            compressed_only: false,
        }
    }
}

/// What [`aggregate`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateReport {
    /// Weight of each input, normalized to sum to 1 (equal for [`Rule::Majority`]).
    pub weights: Vec<f64>,
    /// Number of tensors written.
    pub tensors: usize,
    /// Number of values written.
    pub values: u64,
}

/// One tensor being aggregated.
struct OpenTensor {
    output: TensorId,
    codecs: Vec<TensorCodec>,
    /// Whether chunks are averaged as projection coefficients.
    projected: bool,
}

/// Combines the streams `inputs` into one stream written to `out`.
///
/// # Errors
/// Any reader error of an input (its message says which input); [`ErrorCode::InvalidArgument`]
/// for inputs that do not match, bad weights, or no inputs; [`ErrorCode::UnsupportedCodec`] when
/// the default majority output (`signsgd`) is not registered; writer errors.
///
/// # Examples
/// ```
/// use gradwire_codec::aggregate::{aggregate, AggregateOptions, Rule};
/// use gradwire_codec::{Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
/// let registry = Registry::core();
/// let update = |v: &[f32]| {
///     let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
///     w.write_tensor(TensorSpec::new("g", &[2], registry.parse_pipeline("raw").unwrap()), v).unwrap();
///     w.finish().unwrap()
/// };
/// let (a, b) = (update(&[1.0, 2.0]), update(&[3.0, -2.0]));
/// let (out, _) = aggregate(vec![&a[..], &b[..]], &registry, &AggregateOptions::new(Rule::Mean), Vec::new())?;
/// assert_eq!(Reader::new(&out[..], &registry).read_all()?.tensors[0].values, [2.0, 0.0]);
/// # Ok::<(), gradwire_codec::Error>(())
/// ```
pub fn aggregate<R: Read, W: Write>(
    inputs: Vec<R>,
    registry: &Registry,
    options: &AggregateOptions,
    out: W,
) -> Result<(W, AggregateReport)> {
    if inputs.is_empty() {
        return Err(Error::new(ErrorCode::InvalidArgument, "nothing to aggregate: no inputs"));
    }
    let reader_options = ReaderOptions::default().limits(options.limits).decode_chunks(false);
    let mut readers: Vec<Reader<'_, R>> =
        inputs.into_iter().map(|r| Reader::with_options(r, registry, reader_options)).collect();
    let headers = readers
        .iter_mut()
        .enumerate()
        .map(|(k, r)| match next_structural(r, k)? {
            Some(Event::Header(h)) => Ok(h),
            _ => Err(Error::new(ErrorCode::Malformed, format!("input {k}: no stream header"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let weights = resolve_weights(&headers, options)?;
    let header = output_header(&headers)?;
    let mut writer = Writer::new(out, registry, &header, options.writer.clone())?;
    let majority_pipeline = match (options.rule, &options.output) {
        (Rule::Majority, None) => Some(registry.parse_pipeline("signsgd:scale=none").map_err(|e| {
            Error::new(
                ErrorCode::UnsupportedCodec,
                format!(
                    "a majority vote is written as signsgd, which this build lacks ({}); give an output pipeline",
                    e.detail()
                ),
            )
        })?),
        _ => None,
    };
    let mut open: BTreeMap<u32, OpenTensor> = BTreeMap::new();
    let mut report = AggregateReport { weights: weights.clone(), tensors: 0, values: 0 };
    loop {
        let events = readers.iter_mut().enumerate().map(|(k, r)| next_structural(r, k)).collect::<Result<Vec<_>>>()?;
        let first = events[0].as_ref().ok_or_else(|| Error::new(ErrorCode::Truncated, "input 0 ended without END"))?;
        match first {
            Event::TensorBegin(d) => {
                let descriptors = same_kind(&events, |e| match e {
                    Event::TensorBegin(d) => Some(Arc::clone(d)),
                    _ => None,
                })?;
                check_descriptors(&descriptors)?;
                let pipeline =
                    options.output.clone().or_else(|| majority_pipeline.clone()).unwrap_or_else(|| d.pipeline.clone());
                let (codecs, projected) = input_codecs(registry, options, &descriptors, &headers, &pipeline)?;
                let spec = TensorSpec {
                    name: d.name.clone(),
                    dtype: d.dtype,
                    shape: d.shape.clone(),
                    pipeline,
                    chunk_elements: Some(d.chunk_elements),
                };
                let output = writer.begin_tensor(spec)?;
                open.insert(d.tensor_id, OpenTensor { output, codecs, projected });
                report.tensors += 1;
            }
            Event::EncodedChunk(c) => {
                let chunks = same_kind(&events, |e| match e {
                    Event::EncodedChunk(c) => Some(c),
                    _ => None,
                })?;
                for (k, other) in chunks.iter().enumerate() {
                    if (other.tensor_id, other.chunk_index) != (c.tensor_id, c.chunk_index) {
                        return Err(mismatch(k, format!("chunk {} of tensor {}", other.chunk_index, other.tensor_id)));
                    }
                }
                let t = open
                    .get(&c.tensor_id)
                    .ok_or_else(|| Error::new(ErrorCode::Malformed, "chunk of no open tensor"))?;
                if t.projected {
                    let coefficients = combine_coefficients(&t.codecs, &chunks, &weights)?;
                    writer.write_inner_chunk(t.output, c.len as usize, &coefficients)?;
                } else {
                    let values = combine(options.rule, &t.codecs, &chunks, &weights)?;
                    writer.write_values(t.output, &values)?;
                }
                report.values += c.len;
            }
            Event::TensorEnd(end) => {
                let ends = same_kind(&events, |e| match e {
                    Event::TensorEnd(e) => Some(e.tensor_id),
                    _ => None,
                })?;
                if let Some(k) = ends.iter().position(|id| *id != end.tensor_id) {
                    return Err(mismatch(k, format!("the end of tensor {}", ends[k])));
                }
                let t = open
                    .remove(&end.tensor_id)
                    .ok_or_else(|| Error::new(ErrorCode::Malformed, "end of no open tensor"))?;
                writer.end_tensor(t.output)?;
            }
            Event::End(_) => {
                same_kind(&events, |e| matches!(e, Event::End(_)).then_some(()))?;
                return Ok((writer.finish()?, report));
            }
            _ => return Err(Error::new(ErrorCode::Malformed, "unexpected event")),
        }
    }
}

/// Builds every input's pipeline for one tensor, and decides whether its chunks are averaged as
/// projection coefficients: the mean, one pipeline for every input, kept for the output, with
/// linear array->array stages. Refuses what does not qualify when only compressed-domain
/// aggregation is allowed.
fn input_codecs(
    registry: &Registry,
    options: &AggregateOptions,
    descriptors: &[Arc<TensorDescriptor>],
    headers: &[StreamHeader],
    output: &[StageDescriptor],
) -> Result<(Vec<TensorCodec>, bool)> {
    let d = &descriptors[0];
    let shared = descriptors.iter().all(|other| other.pipeline == d.pipeline);
    let codecs = descriptors
        .iter()
        .zip(headers)
        .map(|(d, h)| {
            let pipeline = registry.build_pipeline(&d.pipeline, &options.limits)?;
            Ok(TensorCodec { descriptor: Arc::clone(d), pipeline: Arc::new(pipeline), stream_seed: h.seed, side: None })
        })
        .collect::<Result<Vec<_>>>()?;
    let has_projection = codecs[0].pipeline.has_linear_projection();
    let projected = options.rule == Rule::Mean && shared && output == d.pipeline.as_slice() && has_projection;
    if options.compressed_only && !projected && (!shared || codecs[0].pipeline.has_array_stages()) {
        let why = if shared && has_projection {
            "its projection is only averaged by the mean into the inputs' own pipeline"
        } else if shared {
            "its array->array stages are not linear, so their outputs cannot be averaged"
        } else {
            "the inputs' pipelines differ (another seed or codec), so their coefficients do not add up"
        };
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("tensor {:?} cannot be aggregated without decoding: {why}", d.name),
        ));
    }
    Ok((codecs, projected))
}

/// The next event that shapes the stream (headers, tensors, chunks, END), skipping metadata and
/// unknown skippable records; errors name the input.
fn next_structural<R: Read>(reader: &mut Reader<'_, R>, k: usize) -> Result<Option<Event>> {
    loop {
        match reader.next_event().map_err(|e| e.context(&format!("input {k}")))? {
            Some(Event::Metadata(_) | Event::Skipped { .. }) => {}
            other => return Ok(other),
        }
    }
}

fn mismatch(k: usize, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InvalidArgument, format!("input {k} does not match input 0: it has {what}"))
}

fn describe(event: Option<&Event>) -> String {
    match event {
        None => "no more records".into(),
        Some(Event::TensorBegin(d)) => format!("tensor {:?}", d.name),
        Some(Event::EncodedChunk(c)) => format!("chunk {} of tensor {}", c.chunk_index, c.tensor_id),
        Some(Event::TensorEnd(e)) => format!("the end of tensor {}", e.tensor_id),
        Some(Event::End(_)) => "the end of the stream".into(),
        Some(_) => "another record".into(),
    }
}

/// Extracts the same kind of event from every input, or names the first input that differs.
fn same_kind<'e, T>(events: &'e [Option<Event>], pick: impl Fn(&'e Event) -> Option<T>) -> Result<Vec<T>> {
    events
        .iter()
        .enumerate()
        .map(|(k, e)| e.as_ref().and_then(&pick).ok_or_else(|| mismatch(k, describe(e.as_ref()))))
        .collect()
}

fn check_descriptors(descriptors: &[Arc<TensorDescriptor>]) -> Result<()> {
    let d0 = &descriptors[0];
    for (k, d) in descriptors.iter().enumerate().skip(1) {
        if d.name != d0.name {
            return Err(mismatch(k, format!("tensor {:?} where input 0 has {:?}", d.name, d0.name)));
        }
        if d.shape != d0.shape {
            return Err(mismatch(k, format!("tensor {:?} with shape {:?}, not {:?}", d.name, d.shape, d0.shape)));
        }
        if d.dtype != d0.dtype {
            return Err(mismatch(
                k,
                format!("tensor {:?} of dtype {}, not {}", d.name, d.dtype.name(), d0.dtype.name()),
            ));
        }
        if d.chunk_elements != d0.chunk_elements {
            return Err(mismatch(
                k,
                format!("tensor {:?} in chunks of {} values, not {}", d.name, d.chunk_elements, d0.chunk_elements),
            ));
        }
    }
    Ok(())
}

/// The weighted mean of one chunk's projection coefficients over every input (which share one
/// pipeline). Decoded-value checksums are checked by decoding first.
fn combine_coefficients(codecs: &[TensorCodec], chunks: &[&EncodedChunk], weights: &[f64]) -> Result<Vec<f32>> {
    let n = chunks[0].len as usize;
    let index = chunks[0].chunk_index;
    let inner = codecs[0].pipeline.bounds(n)?.array_lens.last().copied().unwrap_or(n);
    let mut acc = vec![0f32; inner];
    for (k, (codec, chunk)) in codecs.iter().zip(chunks).enumerate() {
        let locate = |e: Error| {
            e.in_tensor(codec.descriptor.name.clone())
                .in_chunk(index)
                .at_offset(chunk.offset)
                .context(&format!("input {k}"))
        };
        if codec.descriptor.has_decoded_crc() {
            let header = ChunkHeader { tensor_id: chunk.tensor_id, chunk_index: index, decoded_crc: chunk.decoded_crc };
            codec.decode_chunk(&header, &chunk.payload).map_err(locate)?;
        }
        codec
            .pipeline
            .accumulate_inner_chunk(&chunk.payload, n, weights[k] as f32, &codec.context(index), &mut acc)
            .map_err(locate)?;
    }
    Ok(acc)
}

/// Combines one chunk of every input. A tensor with decoded-value checksums is decoded and
/// checked first (FORMAT.md §17); otherwise the codec's aggregation capabilities are used.
fn combine(rule: Rule, codecs: &[TensorCodec], chunks: &[&EncodedChunk], weights: &[f64]) -> Result<Vec<f32>> {
    let n = chunks[0].len as usize;
    let index = chunks[0].chunk_index;
    let locate = |k: usize, e: Error| {
        e.in_tensor(codecs[k].descriptor.name.clone())
            .in_chunk(index)
            .at_offset(chunks[k].offset)
            .context(&format!("input {k}"))
    };
    let checked = |k: usize| -> Result<Vec<f32>> {
        let c = chunks[k];
        let header = ChunkHeader { tensor_id: c.tensor_id, chunk_index: c.chunk_index, decoded_crc: c.decoded_crc };
        codecs[k].decode_chunk(&header, &c.payload).map_err(|e| locate(k, e))
    };
    let mut values = vec![0f32; n];
    match rule {
        Rule::Majority => {
            let mut planes = vec![vec![0u8; signs::packed_len(n)]; chunks.len()];
            for (k, (codec, chunk)) in codecs.iter().zip(chunks).enumerate() {
                if codec.descriptor.has_decoded_crc() {
                    signs::pack(&checked(k)?, &mut planes[k]);
                    continue;
                }
                codec
                    .pipeline
                    .sign_plane_chunk(&chunk.payload, &codec.context(index), n, &mut planes[k])
                    .map_err(|e| locate(k, e))?;
            }
            let refs: Vec<&[u8]> = planes.iter().map(Vec::as_slice).collect();
            let mut vote = vec![0u8; signs::packed_len(n)];
            signs::majority(&refs, n, &mut vote);
            signs::unpack_scaled(&vote, 1.0, &mut values);
        }
        Rule::Mean => {
            for (k, (codec, chunk)) in codecs.iter().zip(chunks).enumerate() {
                let w = weights[k] as f32;
                if codec.descriptor.has_decoded_crc() {
                    for (v, d) in values.iter_mut().zip(checked(k)?) {
                        *v += w * d;
                    }
                    continue;
                }
                codec
                    .pipeline
                    .accumulate_chunk(&chunk.payload, w, &codec.context(index), &mut values)
                    .map_err(|e| locate(k, e))?;
            }
        }
    }
    Ok(values)
}

fn u64_key(header: &StreamHeader, key: &str) -> Option<u64> {
    match header.metadata.get(key) {
        Some(Value::U64(v)) => Some(*v),
        _ => None,
    }
}

/// Normalized weights: explicit, else `fl.num_examples` of every input, else equal.
fn resolve_weights(headers: &[StreamHeader], options: &AggregateOptions) -> Result<Vec<f64>> {
    let n = headers.len();
    let raw: Vec<f64> = if options.rule == Rule::Majority {
        if options.weights.is_some() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "a majority vote counts every input once; weights apply to the mean",
            ));
        }
        vec![1.0; n]
    } else if let Some(w) = &options.weights {
        if w.len() != n {
            return Err(Error::new(ErrorCode::InvalidArgument, format!("{} weights for {n} inputs", w.len())));
        }
        w.clone()
    } else {
        let examples: Vec<Option<u64>> = headers.iter().map(|h| u64_key(h, "fl.num_examples")).collect();
        match examples.iter().position(Option::is_none) {
            None => examples.iter().map(|e| e.unwrap_or(0) as f64).collect(),
            Some(_) if examples.iter().all(Option::is_none) => vec![1.0; n],
            Some(k) => {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("input {k} has no fl.num_examples while others do; give weights explicitly"),
                ));
            }
        }
    };
    let total: f64 = raw.iter().sum();
    if raw.iter().any(|w| !w.is_finite() || *w < 0.0) || !(total > 0.0 && total.is_finite()) {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("weights must be finite, non-negative and not all zero, got {raw:?}"),
        ));
    }
    Ok(raw.iter().map(|w| w / total).collect())
}

/// The output's header: the common round and payload kind, the summed example and update
/// counts, `gradwire.kind = "aggregate"`, and the first input's seed.
fn output_header(headers: &[StreamHeader]) -> Result<StreamHeader> {
    let mut metadata = Metadata::new();
    let rounds: Vec<Option<u64>> = headers.iter().map(|h| u64_key(h, "fl.round")).collect();
    if let Some(k) = rounds.iter().position(|r| *r != rounds[0]) {
        return Err(mismatch(k, format!("fl.round {:?} where input 0 has {:?}", rounds[k], rounds[0])));
    }
    if let Some(r) = rounds[0] {
        metadata.insert("fl.round", Value::U64(r))?;
    }
    let kinds: Vec<Option<&Value>> = headers.iter().map(|h| h.metadata.get("fl.payload_kind")).collect();
    if let Some(k) = kinds.iter().position(|v| *v != kinds[0]) {
        return Err(mismatch(k, format!("fl.payload_kind {:?} where input 0 has {:?}", kinds[k], kinds[0])));
    }
    if let Some(v) = kinds[0] {
        metadata.insert("fl.payload_kind", v.clone())?;
    }
    let examples: Option<u64> =
        headers.iter().map(|h| u64_key(h, "fl.num_examples")).try_fold(0u64, |acc, e| e.map(|e| acc.saturating_add(e)));
    if let Some(e) = examples {
        metadata.insert("fl.num_examples", Value::U64(e))?;
    }
    let updates = headers.iter().map(|h| u64_key(h, "fl.num_updates").unwrap_or(1)).fold(0u64, u64::saturating_add);
    metadata.insert("fl.num_updates", Value::U64(updates))?;
    metadata.insert("gradwire.kind", Value::Utf8("aggregate".into()))?;
    Ok(StreamHeader { seed: headers[0].seed, metadata, ..StreamHeader::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(
        registry: &Registry,
        round: u64,
        examples: Option<u64>,
        tensors: &[(&str, &[f32])],
        codec: &str,
    ) -> Vec<u8> {
        let mut metadata = Metadata::new();
        metadata.insert("fl.round", Value::U64(round)).unwrap();
        if let Some(e) = examples {
            metadata.insert("fl.num_examples", Value::U64(e)).unwrap();
        }
        let header = StreamHeader { metadata, ..StreamHeader::default() };
        let mut w = Writer::new(Vec::new(), registry, &header, WriterOptions::default().chunk_elements(3)).unwrap();
        for (name, v) in tensors {
            w.write_tensor(TensorSpec::new(*name, &[v.len() as u64], registry.parse_pipeline(codec).unwrap()), v)
                .unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn weighted_mean_and_generic_majority() {
        let registry = Registry::core();
        let a = update(&registry, 4, Some(1), &[("w", &[1.0, -1.0, 2.0, 0.0, 5.0])], "raw+zstd");
        let b = update(&registry, 4, Some(3), &[("w", &[5.0, -5.0, -2.0, 4.0, 1.0])], "raw+zstd");
        let c = update(&registry, 4, Some(4), &[("w", &[-1.0, -1.0, -2.0, 4.0, 1.0])], "raw+zstd");
        let options = AggregateOptions::new(Rule::Mean);
        let (out, report) = aggregate(vec![&a[..], &b[..], &c[..]], &registry, &options, Vec::new()).unwrap();
        assert_eq!(report.weights, [0.125, 0.375, 0.5]);
        let s = Reader::new(&out[..], &registry).read_all().unwrap();
        let expected = [1.5, -2.5, -1.5, 3.5, 1.5];
        for (x, e) in s.tensors[0].values.iter().zip(expected) {
            assert!((x - e).abs() < 1e-6, "{x} vs {e}");
        }
        assert_eq!(s.header.metadata.get("fl.num_examples"), Some(&Value::U64(8)));
        assert_eq!(s.header.metadata.get("fl.num_updates"), Some(&Value::U64(3)));
        assert_eq!(s.tensors[0].descriptor.pipeline, registry.parse_pipeline("raw+zstd").unwrap());

        let mut options = AggregateOptions::new(Rule::Majority);
        options.output = Some(registry.parse_pipeline("raw").unwrap());
        let (out, _) = aggregate(vec![&a[..], &b[..], &c[..]], &registry, &options, Vec::new()).unwrap();
        let s = Reader::new(&out[..], &registry).read_all().unwrap();
        assert_eq!(s.tensors[0].values, [1.0, -1.0, -1.0, 1.0, 1.0]);
        // Without signsgd registered, the default majority output is refused clearly.
        let err = aggregate(vec![&a[..], &b[..]], &registry, &AggregateOptions::new(Rule::Majority), Vec::new());
        assert_eq!(err.unwrap_err().code(), ErrorCode::UnsupportedCodec);
    }

    #[test]
    fn decoded_checksums_are_verified_and_majority_takes_no_weights() {
        let registry = Registry::core();
        let write = |v: &[f32]| {
            let options = WriterOptions::default().decoded_checksums(true);
            let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), options).unwrap();
            w.write_tensor(TensorSpec::new("w", &[2], registry.parse_pipeline("bf16").unwrap()), v).unwrap();
            w.finish().unwrap()
        };
        let (a, mut b) = (write(&[1.0, -2.0]), write(&[3.0, 4.0]));
        let mut raw = AggregateOptions::new(Rule::Mean);
        raw.output = Some(registry.parse_pipeline("raw").unwrap());
        let (out, _) = aggregate(vec![&a[..], &b[..]], &registry, &raw, Vec::new()).unwrap();
        assert_eq!(Reader::new(&out[..], &registry).read_all().unwrap().tensors[0].values, [2.0, 1.0]);
        // Damage the decoded CRC of b's chunk and repair the record's CRCs: the mean refuses it.
        let mut pos = crate::format::PREAMBLE_LEN;
        while u16::from_le_bytes([b[pos + 4], b[pos + 5]]) != crate::ids::record::CHUNK {
            let len = u64::from_le_bytes(b[pos + 8..pos + 16].try_into().unwrap()) as usize;
            pos += 32 + len.div_ceil(8) * 8;
        }
        let len = u64::from_le_bytes(b[pos + 8..pos + 16].try_into().unwrap()) as usize;
        b[pos + 32 + 16] ^= 1;
        let body_crc = crate::format::crc32c(&b[pos + 32..pos + 32 + len]);
        b[pos + 20..pos + 24].copy_from_slice(&body_crc.to_le_bytes());
        let header_crc = crate::format::crc32c(&b[pos..pos + 28]);
        b[pos + 28..pos + 32].copy_from_slice(&header_crc.to_le_bytes());
        let err = aggregate(vec![&a[..], &b[..]], &registry, &raw, Vec::new()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ChecksumDecoded, "{err}");
        let mut majority = AggregateOptions::new(Rule::Majority);
        majority.output = raw.output.clone();
        majority.weights = Some(vec![1.0, 2.0]);
        let err = aggregate(vec![&a[..], &a[..]], &registry, &majority, Vec::new()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn mismatched_inputs_are_refused() {
        let registry = Registry::core();
        let base = update(&registry, 1, None, &[("w", &[1.0, 2.0])], "raw");
        let cases = [
            update(&registry, 2, None, &[("w", &[1.0, 2.0])], "raw"),
            update(&registry, 1, None, &[("v", &[1.0, 2.0])], "raw"),
            update(&registry, 1, None, &[("w", &[1.0, 2.0, 3.0])], "raw"),
            update(&registry, 1, None, &[("w", &[1.0, 2.0]), ("x", &[1.0])], "raw"),
            update(&registry, 1, Some(3), &[("w", &[1.0, 2.0])], "raw"),
        ];
        for (i, other) in cases.iter().enumerate() {
            let err = aggregate(vec![&base[..], &other[..]], &registry, &AggregateOptions::new(Rule::Mean), Vec::new())
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "case {i}: {err}");
            assert!(err.detail().contains("input "), "case {i}: {err}");
        }
        // Another pipeline is decoded with its own, or refused when only compressed-domain
        // aggregation is allowed.
        let other = update(&registry, 1, None, &[("w", &[3.0, 4.0])], "f16");
        let (out, _) =
            aggregate(vec![&base[..], &other[..]], &registry, &AggregateOptions::new(Rule::Mean), Vec::new()).unwrap();
        assert_eq!(Reader::new(&out[..], &registry).read_all().unwrap().tensors[0].values, [2.0, 3.0]);
        let mut strict = AggregateOptions::new(Rule::Mean);
        strict.compressed_only = true;
        let err = aggregate(vec![&base[..], &other[..]], &registry, &strict, Vec::new()).unwrap_err();
        assert!(err.detail().contains("pipelines differ"), "{err}");
        let truncated = &base[..base.len() - 10];
        let err = aggregate(vec![&base[..], truncated], &registry, &AggregateOptions::new(Rule::Mean), Vec::new())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Truncated);
    }
}
