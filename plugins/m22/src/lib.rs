//! # gradwire-m22
//!
//! The `m22` codec (ID `0x00000101`, `spec/CODECS.md` §6), after M22 (Liu, Rini, Salehkalaibar,
//! Chen, 2023): per chunk, the nonzero entries are fitted with a generalized normal or a double
//! Weibull model ([`fit`]), a `2^bits`-point quantizer minimizing the M-magnitude-weighted
//! distortion `E[|g|^M (g - q(g))^2]` is designed on the fitted model ([`design`], cached), and
//! the labels are entropy coded with the core's canonical Huffman coder, or packed at fixed width
//! when that is smaller. Exact zeros get their own symbol when that fits the budget of `bits`
//! bits per entry.
//!
//! The chunk carries the reconstruction points as f32, so the decoder does table look-ups only
//! and never repeats the design.
//!
//! ```
//! use gradwire_codec::{Reader, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_m22::registry_with_m22();
//! let values: Vec<f32> = (0..4096).map(|i| ((i * 7919 % 997) as f32 - 498.0) * 1e-5).collect();
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.write_tensor(TensorSpec::new("g", &[4096], registry.parse_pipeline("m22:bits=3")?), &values)?;
//! let bytes = w.finish()?;
//! let decoded = Reader::new(&bytes[..], &registry).read_all()?.tensors.remove(0).values;
//! let mut distinct = decoded.clone();
//! distinct.sort_by(f32::total_cmp);
//! distinct.dedup();
//! assert!(distinct.len() <= 9); // 2^3 reconstruction points, plus exact zero
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod allocate;
pub mod chunk;
pub mod design;
pub mod fit;
mod params;
pub mod uniform;

use gradwire_codec::{
    ArrayToBytes, ChunkContext, CodecDescriptor, CodecFactory, Error, ErrorCode, ParamInfo, Registry, Result, Stage,
    StageKind, TextParams,
};

use gradwire_codec::entropy::plan_labels;

pub use params::{M22Params, Target};

/// Wire ID of `m22` (`spec/REGISTRY.md`).
pub const M22_ID: u32 = 0x0000_0101;

/// Factory of the `m22` codec.
#[derive(Debug)]
pub struct M22Codec;

/// The registered `m22` codec.
pub static M22_CODEC: M22Codec = M22Codec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&M22_CODEC) }

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: M22_ID,
    name: "m22",
    kind: StageKind::ArrayToBytes,
    version: 2,
    min_version: 1,
    lossless: false,
    summary: "fitted GenNorm/Weibull model, |g|^M-weighted Lloyd-Max quantizer, Huffman-coded labels",
    params: &[
        ParamInfo { name: "bits", default: "2", help: "2^bits reconstruction points, 1..=8" },
        ParamInfo { name: "m", default: "0", help: "weight |g|^m of the distortion, 0..=4 (0 = MSE)" },
        ParamInfo { name: "family", default: "gennorm", help: "gradient model: gennorm or weibull" },
        ParamInfo {
            name: "mse",
            default: "none",
            help: "error target per entry: each chunk takes the fewest bits (up to bits, default 8 then) that meet it",
        },
        ParamInfo {
            name: "step",
            default: "none",
            help: "entropy-constrained: uniform cells of this width (absolute), centroid points, coded labels",
        },
        ParamInfo {
            name: "entropy",
            default: "none",
            help: "entropy-constrained: each chunk takes the cell width that fits this many bits per entry",
        },
        ParamInfo {
            name: "rate",
            default: "none",
            help: "bits per entry for the whole stream: `gradwire encode` turns it into one step for every chunk",
        },
    ],
    examples: &[
        "bits=1,m=2,family=weibull",
        "bits=8,m=1",
        "mse=1e-6",
        "step=2e-3",
        "step=4e-3,bits=2",
        "entropy=1,m=2",
    ],
};

/// The core registry plus `m22` (for tests and examples that do not link the facade).
#[must_use]
pub fn registry_with_m22() -> Registry {
    Registry::core_with(&M22_CODEC)
}

impl CodecFactory for M22Codec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(M22Params::from_text(text)?.encode())
    }
    /// Version 1 for 4- and 8-byte parameters (its streams read in version-1 decoders: the
    /// encoder then keeps to codings 0-3), 2 for the entropy-constrained modes.
    fn version_for(&self, params: &[u8]) -> u16 {
        if params.len() == 12 { 2 } else { 1 }
    }
    fn params_to_text(&self, version: u16, params: &[u8]) -> Result<String> {
        Ok(M22Params::decode_version(version, params)?.to_text())
    }
    fn build(&self, version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToBytes(Box::new(M22Stage { params: M22Params::decode_version(version, params)?, version })))
    }
}

/// The built stage.
struct M22Stage {
    params: M22Params,
    /// Codec version of the stream: coding 4 is read, and written, from version 2 on.
    version: u16,
}

/// The quantizer of one chunk: points ascending and the thresholds between them.
struct Quantizer {
    /// Bits of the design (its budget per entry).
    bits: u8,
    points: Vec<f32>,
    /// `thresholds[i]` separates points `i` and `i + 1`; a value `>=` it is above.
    thresholds: Vec<f32>,
    fit: [f32; 3],
}

impl Quantizer {
    /// Label of `x` (index of its point): the cell it falls in.
    #[inline]
    fn label(&self, x: f32) -> usize {
        self.thresholds.partition_point(|&t| x >= t)
    }

    /// The labels of `values` (`labels[i]` = number of thresholds at or below `values[i]`).
    ///
    /// Up to 15 thresholds (4 bits and less): for each block of 1024 values, one branch-free
    /// pass per threshold adds `x >= t` to every label, a loop the compiler vectorizes. More
    /// thresholds: a binary search per value.
    fn labels(&self, values: &[f32], labels: &mut Vec<u8>) {
        labels.clear();
        labels.resize(values.len(), 0);
        if self.thresholds.len() <= 15 {
            for (block, out) in values.chunks(1024).zip(labels.chunks_mut(1024)) {
                for &t in &self.thresholds {
                    for (l, &x) in out.iter_mut().zip(block) {
                        *l += u8::from(x >= t);
                    }
                }
            }
        } else {
            for (l, &x) in labels.iter_mut().zip(values) {
                *l = self.label(x) as u8;
            }
        }
    }

    fn new(bits: u8, mut points: Vec<f32>, fit: [f32; 3]) -> Quantizer {
        points.sort_by(f32::total_cmp);
        points.dedup();
        let thresholds = points.windows(2).map(|w| threshold(w[0], w[1])).collect();
        Quantizer { bits, points, thresholds, fit }
    }
}

impl M22Stage {
    /// Fits, designs (through the cache) and scales the quantizer of a chunk holding `zeros`
    /// exact zeros.
    fn quantizer(&self, values: &[f32], zeros: usize) -> Quantizer {
        let levels = self.params.levels();
        let bits = self.params.bits;
        let sample = fit::sample_nonzero(values);
        // Few distinct nonzero values: send them exactly.
        if let Some(few) = few_distinct_nonzero(values, levels.min(4)) {
            return Quantizer::new(bits, spread(&few, levels), [0.0; 3]);
        }
        let fitted = if sample.len() < 8 { None } else { fit::fit(self.params.family, &sample) };
        let Some(f) = fitted else {
            let mut distinct: Vec<f32> = values.iter().copied().filter(|x| *x != 0.0).collect();
            distinct.sort_by(f32::total_cmp);
            distinct.dedup();
            return Quantizer::new(bits, spread(&distinct, levels), [0.0; 3]);
        };
        let bits = self.bits_for(&f, zeros as f64 / values.len().max(1) as f64);
        let d = design::cached_design(self.params.family, f.shape, self.params.m, 1 << bits);
        let mut points = Vec::with_capacity(levels);
        // Points beyond the f32 range (huge inputs) are clamped to it, so every point is finite.
        let to_f32 = |v: f64| v.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32;
        for &p in &d.positive {
            points.push(to_f32(f.loc - f.scale * p));
            points.push(to_f32(f.loc + f.scale * p));
        }
        points.retain(|p| p.is_finite());
        if points.is_empty() {
            points.push(to_f32(f.loc));
        }
        // The fitted fields are informational but must be finite (CODECS.md §6): clamped like the points.
        Quantizer::new(bits, points, [to_f32(f.shape), to_f32(f.scale), to_f32(f.loc)])
    }

    /// Bits of the chunk's design: `bits`, or with an error target the fewest whose design
    /// predicts at most the target per entry (weighted distortion on the unit-scale model times
    /// `scale^(M+2)`, times the share of nonzero entries: exact zeros cost no error).
    fn bits_for(&self, f: &fit::Fit, zero_share: f64) -> u8 {
        let Some(Target::Mse(target)) = self.params.target else { return self.params.bits };
        let factor = f.scale.powi(i32::from(self.params.m) + 2) * (1.0 - zero_share);
        (1..self.params.bits)
            .find(|&b| {
                let d = design::cached_design(self.params.family, f.shape, self.params.m, 1 << b);
                d.weighted_distortion * factor <= f64::from(target)
            })
            .unwrap_or(self.params.bits)
    }
}

impl M22Stage {
    /// The entropy-constrained modes ([`uniform`]): cells of the given width, or of the width
    /// whose coded labels meet the bits-per-entry target (the header, points and code lengths
    /// come on top: a target on everything would leave a chunk of a few values no bits at all).
    fn encode_uniform(&self, input: &[f32], target: Target, out: &mut Vec<u8>) {
        let max_points = self.params.levels();
        let m = self.params.m;
        let max_abs = uniform::max_abs(input);
        let step = if let Target::Entropy(rate) = target {
            let sample = uniform::search_sample(input);
            let budget = f64::from(rate) * input.len() as f64;
            uniform::smallest_step(max_abs, budget, |step| {
                uniform::predicted_bits(&sample, input.len(), max_abs, step, m, max_points).labels
            })
        } else {
            target.value()
        };
        with_labels(|labels| {
            let q = uniform::UniformQuantizer::design(input, max_abs, step, m, max_points, labels);
            let plan = plan_labels(q.points.len(), labels, self.version >= 2);
            // No model is fitted: the informational fields carry (0, width used, 0).
            chunk::write([0.0, uniform::effective_step(step, max_abs), 0.0], &q.points, false, labels, &plan, out);
        });
    }
}

/// The threshold between consecutive points `lo < hi`: their midpoint (f64 mean rounded to f32),
/// or the next f32 above `lo` when the midpoint rounds onto `lo` (points one ulp apart), so that
/// every point lies in its own cell. Found by the m22 fuzz target.
fn threshold(lo: f32, hi: f32) -> f32 {
    let mid = f64::midpoint(f64::from(lo), f64::from(hi)) as f32;
    if mid <= lo { lo.next_up() } else { mid }
}

/// The reference encoder's cell rule (`spec/CODECS.md` §6, encode step 4), written plainly for
/// tests and fuzzers to check the fast encoder against: the point of the cell `x` falls in, the
/// cells split at the midpoints of consecutive `points` (a value on a midpoint goes up), or an
/// exact zero when the chunk has a zero symbol.
#[must_use]
pub fn reference_quantize(x: f32, points: &[f32], zero: bool) -> f32 {
    if zero && x == 0.0 {
        return 0.0;
    }
    let mut cell = 0;
    for i in 1..points.len() {
        if x >= threshold(points[i - 1], points[i]) {
            cell = i;
        }
    }
    points[cell]
}

/// The distinct nonzero values of `values` when there are at most `limit` of them (one pass,
/// stopping at the first value beyond the limit).
fn few_distinct_nonzero(values: &[f32], limit: usize) -> Option<Vec<f32>> {
    let mut seen: Vec<f32> = Vec::with_capacity(limit + 1);
    for &x in values {
        if x != 0.0 && !seen.contains(&x) {
            if seen.len() == limit {
                return None;
            }
            seen.push(x);
        }
    }
    seen.sort_by(f32::total_cmp);
    Some(seen)
}

/// At most `levels` of the sorted distinct values, evenly spread (all of them when they fit; a
/// single 0 when there are none).
fn spread(distinct: &[f32], levels: usize) -> Vec<f32> {
    if distinct.is_empty() {
        return vec![0.0];
    }
    if distinct.len() <= levels {
        return distinct.to_vec();
    }
    (0..levels).map(|j| distinct[(2 * j + 1) * distinct.len() / (2 * levels)]).collect()
}

impl ArrayToBytes for M22Stage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        chunk::max_len(len, self.params.levels())
    }

    fn encode(&self, input: &[f32], _ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        // One branch-free pass (it vectorizes) counts non-finite values and zeros; the position
        // of a bad value is looked up only when there is one.
        let (mut bad, mut zeros) = (0usize, 0usize);
        for block in input.chunks(4096) {
            bad += block.iter().map(|x| usize::from(!x.is_finite())).sum::<usize>();
            zeros += block.iter().map(|x| usize::from(*x == 0.0)).sum::<usize>();
        }
        if bad > 0 {
            let i = input.iter().position(|x| !x.is_finite()).unwrap_or(0);
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("m22 cannot quantize {} (value {i})", input[i]),
            ));
        }
        if let Some(target @ (Target::Step(_) | Target::Entropy(_))) = self.params.target {
            self.encode_uniform(input, target, out);
            return Ok(());
        }
        let q = self.quantizer(input, zeros);
        with_labels(|labels| self.encode_labels(input, zeros, &q, labels, out));
        Ok(())
    }

    fn decode(&self, bytes: &[u8], _ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let parsed = chunk::parse(bytes, self.params.levels(), self.version)?;
        with_labels(|scratch| chunk::decode_values(&parsed, scratch, out))
    }
}

/// Label buffers reused across the chunks a thread encodes or decodes: a fresh multi-megabyte
/// buffer per chunk cost page faults (5 % of the encode time in a profile).
fn with_labels<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static LABELS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LABELS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut labels) => f(&mut labels),
        Err(_) => f(&mut Vec::new()),
    })
}

impl M22Stage {
    /// The fitted designs: labels of `q`, exact zeros as their own symbol when that pays, and
    /// the cheapest coding.
    fn encode_labels(&self, input: &[f32], zeros: usize, q: &Quantizer, labels: &mut Vec<u8>, out: &mut Vec<u8>) {
        q.labels(input, labels);
        let labels = &*labels;
        // Exact zeros as their own symbol (0), when that stays within the budget of `bits` bits
        // a value or costs no more than folding them into the nearest point.
        if zeros > 0 && q.points.len() < 256 && q.points.iter().all(|p| *p != 0.0) {
            let with_zero: Vec<u8> =
                input.iter().zip(labels).map(|(&x, &l)| if x == 0.0 { 0 } else { l + 1 }).collect();
            let a = plan_labels(q.points.len() + 1, &with_zero, self.version >= 2);
            let b = plan_labels(q.points.len(), labels, self.version >= 2);
            let budget = chunk::HEADER_LEN + 4 * q.points.len() + (input.len() * usize::from(q.bits)).div_ceil(8);
            if chunk::total_len(&a, q.points.len()) <= budget.max(chunk::total_len(&b, q.points.len())) {
                chunk::write(q.fit, &q.points, true, &with_zero, &a, out);
            } else {
                chunk::write(q.fit, &q.points, false, labels, &b, out);
            }
            return;
        }
        let plan = plan_labels(q.points.len(), labels, self.version >= 2);
        chunk::write(q.fit, &q.points, false, labels, &plan, out);
    }
}

#[cfg(test)]
mod tests;
