//! The entropy-constrained modes of `m22` (`step=S` and `entropy=B`, `spec/CODECS.md` §6): a
//! uniform-threshold quantizer whose labels are entropy coded.
//!
//! Cells have width `S` and are centred on zero: value `x` falls in cell
//! `k = sign(x) * round(|x| * (1/S))` (f32 arithmetic, ties to even). Cell 0 decodes to exactly `0.0`
//! (exact zeros stay exact, and most entries of a gradient land there at low rates); every other
//! occupied cell decodes to the `|x|^M`-weighted centroid of the values in it, measured on the
//! chunk. Only occupied cells get a point, and when more cells are occupied than the stage allows
//! points (`2^bits`), adjacent cells are merged greedily, the merge that adds the least weighted
//! error first (computed on the cells' statistics, not on the values).
//!
//! Why this and not more Lloyd-Max levels: on real gradients the energy sits in a few large
//! entries while most entries are tiny. A fixed level count spends at least a bit on every entry;
//! uniform cells with entropy coding spend a fraction of a bit on the tiny ones (pair codes, and
//! runs of the zero cell: coding 4) and keep fine cells for the large ones. One width for every chunk of a stream is the equal-slope
//! condition of reverse water-filling at high rate, which is why `rate=B` resolves to one `step`.
//!
//! The decoder sees an ordinary `m22` chunk: points and labels. Nothing here is normative.
//!
//! Cost per value: one pass for the cell statistics (a scatter into per-cell counts and sums,
//! four interleaved tables), one for the labels (table-free when the occupied cells are
//! contiguous and need no merge), then the coding plan and the Huffman writer of `chunk`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::chunk;
use gradwire_codec::entropy::plan_labels;

/// The most cells on either side of zero. A width finer than `max|x| / MAX_CELL` is widened to
/// it ([`effective_step`]): with at most 256 points, finer cells would all be merged anyway.
const MAX_CELL: i32 = 32_767;

/// The width actually used for `step` on values of magnitude at most `max_abs`: `step`, or
/// `max_abs / 32767` when that is wider, so that no value lies beyond the last cell, and at
/// least the smallest normal f32 (about 1.2e-38), so that its inverse is finite.
#[must_use]
pub fn effective_step(step: f32, max_abs: f32) -> f32 {
    step.max(max_abs / MAX_CELL as f32).max(f32::MIN_POSITIVE)
}

/// Values of a chunk whose statistics are sampled when a width is searched for (`entropy=B`,
/// `rate=B`); smaller chunks are measured whole.
pub const SEARCH_SAMPLE: usize = 16_384;

/// The cell rule: widths and the cell of a value.
#[derive(Debug, Clone, Copy)]
pub struct Cells {
    inv_step: f32,
    /// Largest cell index in use (at most [`MAX_CELL`]).
    cap: i32,
}

/// `2^23`: adding it to a float in `[0, 2^22)` rounds it to an integer (ties to even) held in the
/// low mantissa bits.
const ROUNDING: f32 = 8_388_608.0;

impl Cells {
    /// Cells of width `step` for values of magnitude at most `max_abs`.
    #[must_use]
    pub fn new(step: f32, max_abs: f32) -> Cells {
        let step = effective_step(step, max_abs);
        let inv_step = 1.0 / step;
        let top = (max_abs * inv_step).round_ties_even();
        let cap = if top.is_finite() && top < MAX_CELL as f32 { top as i32 } else { MAX_CELL };
        Cells { inv_step, cap }
    }

    /// Cell of `x` plus `cap` (`0..=2 cap`): `|x| * (1/w)`, capped, rounded to the nearest
    /// integer (ties to even) by the magic-number addition, signed by the sign bit. Integer
    /// and float operations only, so the loops around it vectorize (a `floor` or a saturating
    /// float-to-int cast does not on baseline x86-64: this form is five times faster).
    #[inline]
    fn index(self, x: f32) -> u16 {
        let cap = self.cap as f32;
        let scaled = x.abs() * self.inv_step;
        let capped = if scaled < cap { scaled } else { cap };
        let magnitude = ((capped + ROUNDING).to_bits() ^ ROUNDING.to_bits()).cast_signed();
        let sign = x.to_bits().cast_signed() >> 31;
        (self.cap + ((magnitude ^ sign) - sign)) as u16
    }

    fn len(self) -> usize {
        2 * self.cap as usize + 1
    }
}

/// The quantizer of one chunk: its points (the labels are written by [`UniformQuantizer::design`]).
pub struct UniformQuantizer {
    /// Ascending reconstruction points.
    pub points: Vec<f32>,
}

impl UniformQuantizer {
    /// Designs the quantizer of `values` (finite, at most `max_abs` in magnitude) with cells of
    /// width `step`, weight `|x|^m`, at most `max_points` (`1..=256`) points, and writes the
    /// symbol of every value to `labels`.
    pub fn design(
        values: &[f32],
        max_abs: f32,
        step: f32,
        m: u8,
        max_points: usize,
        labels: &mut Vec<u8>,
    ) -> UniformQuantizer {
        let cells = Cells::new(step, max_abs);
        let (count, weight, moment) = cell_statistics(values, cells, m);
        let centre = cells.cap as usize;
        let mut runs: Vec<Run> = (0..cells.len())
            .filter(|&i| count[i] > 0)
            .map(|i| {
                let w = weight.as_ref().map_or(f64::from(count[i]), |w| w[i]);
                Run { lo: i, hi: i, weight: w, centroid: centroid(w, moment[i]), zero: i == centre }
            })
            .collect();
        // Fast path: every cell from the first occupied to the last is occupied and no merge is
        // needed, so the symbol is the cell index less the first, computed without a table.
        let contiguous = runs.len() <= max_points.max(1)
            && runs.first().zip(runs.last()).is_some_and(|(a, b)| b.hi - a.lo + 1 == runs.len());
        merge_runs(&mut runs, max_points.max(1));
        let mut points = Vec::with_capacity(runs.len());
        let mut lut = vec![0u8; cells.len()];
        for run in &runs {
            let p = if run.zero { 0.0 } else { run.centroid as f32 };
            // Points must be strictly ascending: a cell whose centroid rounds onto the previous
            // point (cells narrower than the f32 spacing) shares that point.
            if points.last().is_none_or(|&last| p > last) {
                points.push(p);
            }
            lut[run.lo..=run.hi].fill((points.len() - 1) as u8);
        }
        if points.is_empty() {
            points.push(0.0); // no values: one point, never used
        }
        // The cell is computed again rather than kept from the statistics pass: a few vector
        // operations cost less than writing and reading back two bytes per value.
        labels.clear();
        match runs.first() {
            Some(first) if contiguous && points.len() == runs.len() => {
                let first = first.lo as u16;
                labels.extend(values.iter().map(|&x| cells.index(x).wrapping_sub(first) as u8));
            }
            _ => labels.extend(values.iter().map(|&x| lut[usize::from(cells.index(x))])),
        }
        UniformQuantizer { points }
    }
}

fn centroid(weight: f64, moment: f64) -> f64 {
    if weight > 0.0 { moment / weight } else { 0.0 }
}

/// Per cell: the number of values, their total weight `|x|^m` (`None` for `m = 0`: the count)
/// and their weighted sum. Four interleaved copies of the tables break the chains of updates to
/// one cell (most values fall in a few cells), which otherwise wait on each other.
fn cell_statistics(values: &[f32], cells: Cells, m: u8) -> (Vec<u32>, Option<Vec<f64>>, Vec<f64>) {
    let len = cells.len();
    let mut count = vec![0u32; 4 * len];
    let mut moment = vec![0f64; 4 * len];
    let mut weight = if m == 0 { Vec::new() } else { vec![0f64; 4 * len] };
    let (blocks, rest) = values.as_chunks::<4>();
    for block in blocks {
        for (lane, &x) in block.iter().enumerate() {
            let i = lane * len + usize::from(cells.index(x));
            count[i] += 1;
            if m == 0 {
                moment[i] += f64::from(x);
            } else {
                let w = f64::from(x.abs()).powi(i32::from(m));
                weight[i] += w;
                moment[i] += w * f64::from(x);
            }
        }
    }
    for &x in rest {
        let i = usize::from(cells.index(x));
        count[i] += 1;
        let w = if m == 0 { 1.0 } else { f64::from(x.abs()).powi(i32::from(m)) };
        if m > 0 {
            weight[i] += w;
        }
        moment[i] += w * f64::from(x);
    }
    let counts = (0..len).map(|i| (0..4).map(|l| count[l * len + i]).sum()).collect();
    let sum_lanes = |t: &[f64]| (0..len).map(|i| (0..4).map(|l| t[l * len + i]).sum()).collect::<Vec<f64>>();
    let weight = (m > 0).then(|| sum_lanes(&weight));
    (counts, weight, sum_lanes(&moment))
}

/// Consecutive cells sharing one point.
#[derive(Debug, Clone, Copy)]
struct Run {
    lo: usize,
    hi: usize,
    weight: f64,
    centroid: f64,
    /// The run is the zero cell alone (decodes to exactly 0).
    zero: bool,
}

/// Weighted error added by merging two runs into one point at their joint centroid.
fn merge_cost(a: &Run, b: &Run) -> f64 {
    let w = a.weight + b.weight;
    if w <= 0.0 {
        return 0.0;
    }
    a.weight * b.weight / w * (a.centroid - b.centroid).powi(2)
}

/// A candidate merge of run `left` with the next live run; stale once either has changed.
struct Candidate {
    cost: f64,
    left: usize,
    stamp: (u32, u32),
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Reversed, so the max-heap pops the cheapest merge (ties: the leftmost).
    fn cmp(&self, other: &Self) -> Ordering {
        other.cost.total_cmp(&self.cost).then(other.left.cmp(&self.left))
    }
}

/// Merges adjacent runs, cheapest first, until at most `max` (at least 1) remain. A run that
/// absorbs the zero cell decodes to its centroid from then on.
fn merge_runs(runs: &mut Vec<Run>, max: usize) {
    if runs.len() <= max {
        return;
    }
    let count = runs.len();
    let mut next: Vec<usize> = (1..=count).collect();
    let mut prev: Vec<usize> = (0..count).map(|i| i.wrapping_sub(1)).collect();
    let mut stamp = vec![0u32; count];
    let mut alive = vec![true; count];
    let mut heap: BinaryHeap<Candidate> = (0..count - 1)
        .map(|i| Candidate { cost: merge_cost(&runs[i], &runs[i + 1]), left: i, stamp: (0, 0) })
        .collect();
    let mut live = count;
    while live > max {
        let Some(best) = heap.pop() else { break };
        let left = best.left;
        let right = next[left];
        if !alive[left] || right >= count || best.stamp != (stamp[left], stamp[right]) {
            continue; // stale: one of the two runs has changed since
        }
        let (a, b) = (runs[left], runs[right]);
        let weight = a.weight + b.weight;
        let centroid = if weight > 0.0 { (a.weight * a.centroid + b.weight * b.centroid) / weight } else { a.centroid };
        runs[left] = Run { lo: a.lo, hi: b.hi, weight, centroid, zero: false };
        alive[right] = false;
        stamp[left] += 1;
        next[left] = next[right];
        if next[right] < count {
            prev[next[right]] = left;
        }
        live -= 1;
        let before = prev[left];
        if before < count {
            heap.push(Candidate {
                cost: merge_cost(&runs[before], &runs[left]),
                left: before,
                stamp: (stamp[before], stamp[left]),
            });
        }
        if next[left] < count {
            let after = next[left];
            heap.push(Candidate {
                cost: merge_cost(&runs[left], &runs[after]),
                left,
                stamp: (stamp[left], stamp[after]),
            });
        }
    }
    let mut i = 0;
    runs.retain(|_| {
        i += 1;
        alive[i - 1]
    });
}

/// Largest magnitude of `values` (finite).
#[must_use]
pub fn max_abs(values: &[f32]) -> f32 {
    // Eight running maxima written as comparisons, which the compiler turns into `maxps`
    // (`f32::max` keeps NaN semantics that stop it from vectorizing).
    let (blocks, rest) = values.as_chunks::<8>();
    let mut top = [0f32; 8];
    for block in blocks {
        for (t, x) in top.iter_mut().zip(block) {
            let a = x.abs();
            *t = if a > *t { a } else { *t };
        }
    }
    rest.iter().chain(&top).fold(0f32, |m, x| if x.abs() > m { x.abs() } else { m })
}

/// Predicted size of a chunk, in bits.
#[derive(Debug, Clone, Copy)]
pub struct PredictedBits {
    /// Header, points and code lengths.
    pub side: f64,
    /// The coded labels.
    pub labels: f64,
}

impl PredictedBits {
    /// The whole payload.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.side + self.labels
    }
}

/// Predicted size of a chunk of `n` values of which `sample` is a deterministic sample (every
/// k-th value, or all of them, when the prediction is exact), with cells of width `step`: the
/// sample's coded labels scaled to `n`, plus the header, points and code lengths.
#[must_use]
pub fn predicted_bits(sample: &[f32], n: usize, max_abs: f32, step: f32, m: u8, max_points: usize) -> PredictedBits {
    let mut labels = Vec::new();
    let q = UniformQuantizer::design(sample, max_abs, step, m, max_points, &mut labels);
    let plan = plan_labels(q.points.len(), &labels, true);
    let side = chunk::HEADER_LEN + 4 * q.points.len() + plan.table_bytes();
    let coded = (chunk::total_len(&plan, q.points.len()) - side) as f64;
    let scale = n as f64 / sample.len().max(1) as f64;
    PredictedBits { side: 8.0 * side as f64, labels: 8.0 * coded * scale }
}

/// Every k-th value of `values`, at most [`SEARCH_SAMPLE`] of them (all when they fit).
#[must_use]
pub fn search_sample(values: &[f32]) -> std::borrow::Cow<'_, [f32]> {
    if values.len() <= SEARCH_SAMPLE {
        return std::borrow::Cow::Borrowed(values);
    }
    let k = values.len().div_ceil(SEARCH_SAMPLE);
    std::borrow::Cow::Owned(values.iter().step_by(k).copied().collect())
}

/// The smallest cell width (bisection on a log scale, 24 steps) whose predicted size is at
/// most `budget_bits` in all, given `size(step)` in bits (non-increasing in the width, up to
/// the noise of the greedy merge); the widest (one cell, the smallest encoding) when none fits.
pub fn smallest_step(max_abs: f32, budget_bits: f64, mut size: impl FnMut(f32) -> f64) -> f32 {
    // Widths from the finest that is used (max|x| / 32767) to 4 max|x| (one cell).
    let top = (max_abs.max(f32::MIN_POSITIVE) * 4.0).min(f32::MAX);
    let finest = effective_step(f32::MIN_POSITIVE, max_abs).max(f32::MIN_POSITIVE);
    // exp(ln(w)) may round above w, past f32::MAX at the top: every width tried is clamped.
    let width = |log: f32| log.exp().clamp(finest, top);
    let (mut lo, mut hi) = (finest.ln(), top.ln());
    if size(finest) <= budget_bits {
        return finest;
    }
    for _ in 0..24 {
        let mid = 0.5 * (lo + hi);
        if size(width(mid)) <= budget_bits {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    width(hi)
}
