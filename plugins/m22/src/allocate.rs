//! Rate allocation across a whole stream (`m22:rate=B`): one error target `D` for every chunk
//! (the equal-slope condition of reverse water-filling), chosen so that the stream averages at
//! most `B` bits per entry, then written as `m22:mse=D`.
//!
//! The allocation needs every tensor before the first is written, so it runs in front of the
//! writer ([`allocate`]); the stream only records the resulting `D`, and each chunk stays
//! self-describing. Rates are predicted from the fitted models (label entropy of each design
//! plus the chunk's side information), not measured, so the result is close to `B`, not exact.

use crate::design::cached_design;
use crate::fit::{self, Fit};
use crate::params::M22Params;

/// What one chunk of the stream looks like to the allocator.
struct ChunkModel {
    n: f64,
    zero_share: f64,
    fit: Option<Fit>,
}

/// Bytes of a chunk's header and points with `2^bits` points, plus the code lengths.
fn side_bits(bits: u8) -> f64 {
    8.0 * (16.0 + 4.0 * f64::from(1u16 << bits) + f64::from(1u16 << bits) / 2.0 + 1.0)
}

/// The error target `D` (per entry) under which the chunks of `tensors` (cut into chunks of
/// `chunk_elements`) are predicted to take at most `rate` bits per entry in all, with the design
/// parameters of `params` (`bits` is the most a chunk may use). `None` when no chunk has a model
/// (all chunks are constant or tiny): any target then gives the same stream.
#[must_use]
pub fn allocate(tensors: &[&[f32]], chunk_elements: usize, params: &M22Params, rate: f64) -> Option<f32> {
    let chunks: Vec<ChunkModel> = tensors
        .iter()
        .flat_map(|t| t.chunks(chunk_elements.max(1)))
        .map(|c| {
            let zeros = c.iter().filter(|x| **x == 0.0).count();
            let sample = fit::sample_nonzero(c);
            let fit = if sample.len() < 8 { None } else { fit::fit(params.family, &sample) };
            ChunkModel { n: c.len() as f64, zero_share: zeros as f64 / c.len().max(1) as f64, fit }
        })
        .collect();
    let total: f64 = chunks.iter().map(|c| c.n).sum();
    // Candidate targets: every (chunk, bits) distortion; the answer is one of them.
    let predict = |c: &ChunkModel, f: &Fit, bits: u8| {
        let d = cached_design(params.family, f.shape, params.m, 1 << bits);
        let nonzero = 1.0 - c.zero_share;
        let distortion = d.weighted_distortion * f.scale.powi(i32::from(params.m) + 2) * nonzero;
        let z = c.zero_share;
        let zero_bits = if z > 0.0 && z < 1.0 { -(z * z.log2() + (1.0 - z) * (1.0 - z).log2()) } else { 0.0 };
        (distortion, c.n * (zero_bits + nonzero * d.label_entropy) + side_bits(bits))
    };
    let mut candidates: Vec<f64> = chunks
        .iter()
        .filter_map(|c| c.fit.map(|f| (c, f)))
        .flat_map(|(c, f)| (1..=params.bits).map(move |b| (c, f, b)))
        .map(|(c, f, b)| predict(c, &f, b).0)
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let bits_at = |target: f64| -> f64 {
        chunks
            .iter()
            .map(|c| match c.fit {
                None => c.n * f64::from(params.bits) / 4.0,
                Some(f) => {
                    let b = (1..params.bits).find(|&b| predict(c, &f, b).0 <= target).unwrap_or(params.bits);
                    predict(c, &f, b).1
                }
            })
            .sum()
    };
    // Bits fall as the target rises: the smallest target that fits the budget.
    let budget = rate * total;
    let i = candidates.partition_point(|&d| bits_at(d) > budget);
    let d = candidates.get(i).copied().unwrap_or(candidates[candidates.len() - 1]);
    // Rounded up to the next f32 and kept in the normal f32 range (the text form and the wire
    // take a positive finite f32), so rounding never tips a chunk to more bits.
    let up = (d as f32).next_up().clamp(f32::MIN_POSITIVE, f32::MAX);
    Some(up)
}
