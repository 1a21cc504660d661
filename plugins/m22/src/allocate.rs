//! Rate allocation across a whole stream (`m22:rate=B`): one cell width for every chunk of the
//! entropy-constrained mode (at high rate, equal widths are the equal-slope condition of reverse
//! water-filling: every chunk buys error at the same price in bits), the smallest width whose
//! stream takes at most `B` bits per entry, then written as `m22:step=S`.
//!
//! The allocation needs every tensor before the first is written, so it runs in front of the
//! writer ([`allocate`]); the stream only records the resulting width, and each chunk stays
//! self-describing. Sizes are measured by coding the chunks' labels (chunks of up to
//! [`uniform::SEARCH_SAMPLE`] values whole, larger ones through a deterministic sample of that
//! many), 25 times over in a bisection of the width: about 25 quantize-and-count passes over at
//! most 16 Ki values per chunk.

use crate::params::M22Params;
use crate::uniform;

/// The cell width under which the chunks of `tensors` (cut into chunks of `chunk_elements`)
/// take at most `rate` bits per entry in all, `overhead_bits` of container framing included,
/// with the weight and point limit of `params`. `None` when every value is zero: any width then
/// gives the same stream.
#[must_use]
pub fn allocate(
    tensors: &[&[f32]],
    chunk_elements: usize,
    params: &M22Params,
    rate: f64,
    overhead_bits: f64,
) -> Option<f32> {
    let chunks: Vec<(std::borrow::Cow<'_, [f32]>, usize, f32)> = tensors
        .iter()
        .flat_map(|t| t.chunks(chunk_elements.max(1)))
        .map(|c| (uniform::search_sample(c), c.len(), uniform::max_abs(c)))
        .collect();
    let max_abs = chunks.iter().fold(0f32, |m, c| m.max(c.2));
    if max_abs == 0.0 {
        return None;
    }
    let total: usize = chunks.iter().map(|c| c.1).sum();
    let budget = rate * total as f64 - overhead_bits;
    let step = uniform::smallest_step(max_abs, budget, |step| {
        chunks
            .iter()
            .map(|(sample, n, top)| uniform::predicted_bits(sample, *n, *top, step, params.m, params.levels()).total())
            .sum()
    });
    // Kept in the normal f32 range: the text form and the wire take a positive finite f32.
    Some(step.clamp(f32::MIN_POSITIVE, f32::MAX))
}
