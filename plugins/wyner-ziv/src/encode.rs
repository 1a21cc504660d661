//! The `wyner-ziv` encoder (reference, `spec/CODECS.md` §12.4): the scale, step and modulus
//! chosen from the statistics of `x - a*y`, then one pass that quantizes every entry, predicts
//! it as the decoder will, and escapes every entry the decoder would get wrong.

use gradwire_codec::entropy::{LabelPlan, plan_labels};
use gradwire_codec::rng::SeededRng;
use gradwire_codec::{Error, ErrorCode, Result};

use crate::chunk::{self, Escape, Header};
use crate::lattice::{MAX_INDEX, index, nearest_in_class, reference, residue, value};
use crate::params::{Mode, Rounding, WynerZivParams};

/// Largest modulus the encoder chooses by itself (255 keeps label coding 4, runs, available).
const AUTO_MAX_MODULUS: f64 = 255.0;

/// Entries the step search codes at most (every s-th entry of a longer chunk).
const SEARCH_SAMPLE: usize = 16_384;

/// Bisection steps of the step search (on a log scale over 40 octaves: about 6e-4 octave).
const SEARCH_STEPS: u32 = 16;

/// A chunk's entries, quantized and split into residues and escapes.
#[derive(Debug, Default)]
pub struct Coded {
    /// Residue labels of the entries that are not escaped, in order.
    pub labels: Vec<u8>,
    /// The context of each label (of at most [`chunk::MAX_CONTEXTS`]).
    pub contexts: Vec<u8>,
    /// Positions of the escaped entries.
    pub positions: Vec<u64>,
    /// What they carry.
    pub escapes: Vec<Escape>,
}

/// What the encoder knows of the decoder's prediction.
#[derive(Debug, Clone, Copy)]
pub enum Prediction<'a> {
    /// The side information (of the chunk's length): every entry is checked.
    Side(&'a [f32]),
    /// None: the stream has no side information and the prediction is 0.
    Zero,
    /// The decoder's side information, which the encoder does not have.
    Unknown,
}

/// The lattice a chunk is coded on.
#[derive(Debug, Clone, Copy)]
struct Lattice {
    scale: f32,
    step: f32,
    modulus: u16,
}

impl Lattice {
    /// The context gain: contexts count lattice steps of `|y|`.
    fn gain(&self) -> f32 {
        let g = 1.0 / self.step;
        if g.is_finite() { g } else { 0.0 }
    }
}

/// Codes `x` on `lattice` against `prediction` (centered residues, every entry checked, wide
/// escapes where the residue would be wrong) or, when the prediction is unknown, as plain
/// residues `z mod k`. `draws` gives stochastic rounding. An entry whose lattice value, once
/// rounded to f32, lies farther from it than the rounding allows (half a step for nearest, a
/// step for stochastic: possible when the step is near the f32 spacing of the value) is a raw
/// escape, so the bound holds for every decoded value, not only for `z * eps`.
fn code(x: &[f32], prediction: Prediction<'_>, lattice: Lattice, mut draws: Option<&mut SeededRng>, out: &mut Coded) {
    out.labels.clear();
    out.contexts.clear();
    out.positions.clear();
    out.escapes.clear();
    out.labels.reserve(x.len());
    let step = f64::from(lattice.step);
    let k = f64::from(lattice.modulus);
    let gain = lattice.gain();
    let reach = if draws.is_some() { step } else { step / 2.0 };
    for (i, &xi) in x.iter().enumerate() {
        let u = draws.as_deref_mut().map_or(0.5, |r| f64::from(r.next_unit_f32()));
        let z = index(xi, step, u);
        let decoded = value(z, step);
        let representable = xi.is_finite()
            && z.abs() < MAX_INDEX
            && decoded.is_finite()
            && (f64::from(decoded) - f64::from(xi)).abs() <= reach;
        let escape = if representable {
            let t = match prediction {
                Prediction::Side(y) => crate::lattice::prediction(lattice.scale, y[i], step),
                Prediction::Zero => 0.0,
                Prediction::Unknown => {
                    out.labels.push(residue(z, k) as u8);
                    continue;
                }
            };
            if t.abs() < MAX_INDEX {
                let c = reference(t);
                let v = residue(z - c, k);
                // Exact: both are integers held exactly in f64 (the decoder's own computation).
                #[allow(clippy::float_cmp, reason = "integers held exactly in f64")]
                let recovered = nearest_in_class(c + v, k, t) == z;
                if recovered {
                    out.labels.push(v as u8);
                    if let Prediction::Side(y) = prediction {
                        out.contexts.push(chunk::context(y[i], gain, chunk::MAX_CONTEXTS));
                    }
                    continue;
                }
                let d = z - c;
                if d.abs() <= chunk::MAX_WIDE as f64 { Escape::Wide(d as i64) } else { Escape::Raw(xi) }
            } else {
                Escape::Raw(xi)
            }
        } else {
            Escape::Raw(xi)
        };
        out.positions.push(i as u64);
        out.escapes.push(escape);
    }
}

/// The label sections of `coded` in `contexts` contexts (1 when it has none), each planned.
fn sections(coded: &Coded, k: u16, contexts: u8) -> Vec<(Vec<u8>, LabelPlan)> {
    if contexts <= 1 || coded.contexts.is_empty() {
        return vec![(coded.labels.clone(), plan_labels(usize::from(k), &coded.labels, true))];
    }
    let top = contexts - 1;
    let mut split = vec![Vec::new(); usize::from(contexts)];
    for (&l, &c) in coded.labels.iter().zip(&coded.contexts) {
        split[usize::from(c.min(top))].push(l);
    }
    split
        .into_iter()
        .map(|labels| {
            let plan = plan_labels(usize::from(k), &labels, true);
            (labels, plan)
        })
        .collect()
}

/// The sections of `coded` in the fewer bytes: one context, or as many as its labels use.
/// Returns them with the chunk's bytes and the bytes of its code-length tables.
fn best_sections(coded: &Coded, k: u16) -> (Vec<(Vec<u8>, LabelPlan)>, usize, usize) {
    let size = |sections: &[(Vec<u8>, LabelPlan)]| {
        let labels: usize = sections.iter().map(|(_, p)| chunk::SECTION_HEADER_LEN + p.label_bytes()).sum();
        let tables: usize = sections.iter().map(|(_, p)| chunk::SECTION_HEADER_LEN + p.table_bytes()).sum();
        (chunk::HEADER_LEN + chunk::escapes_len(&coded.positions, &coded.escapes) + labels, tables)
    };
    let single = sections(coded, k, 1);
    let (single_len, single_tables) = size(&single);
    let used = coded.contexts.iter().max().map_or(1, |&c| c + 1);
    if used > 1 {
        let split = sections(coded, k, used);
        let (len, tables) = size(&split);
        if len < single_len {
            return (split, len, tables);
        }
    }
    (single, single_len, single_tables)
}

/// The least-squares scale of `side` for `x` (`<x, y> / <y, y>` over finite pairs, as f32), or 0
/// when the side information is zero or the fit is not finite.
fn fitted_scale(x: &[f32], side: &[f32]) -> f32 {
    let (mut xy, mut yy) = (0f64, 0f64);
    for (&a, &b) in x.iter().zip(side) {
        if a.is_finite() && b.is_finite() {
            xy += f64::from(a) * f64::from(b);
            yy += f64::from(b) * f64::from(b);
        }
    }
    let a = (xy / yy) as f32;
    if yy > 0.0 && a.is_finite() { a } else { 0.0 }
}

/// Largest `|x - t*eps|` over finite entries: `|x - a*y|` against side information, `|x|`
/// against a zero prediction.
fn spread(x: &[f32], prediction: Prediction<'_>, scale: f32) -> f64 {
    let mut m = 0f64;
    for (i, &xi) in x.iter().enumerate() {
        let p = match prediction {
            Prediction::Side(y) => f64::from(scale) * f64::from(y[i]),
            _ => 0.0,
        };
        let r = (f64::from(xi) - p).abs();
        if r.is_finite() {
            m = m.max(r);
        }
    }
    m
}

/// The modulus that covers a spread of `spread / step` lattice steps with stochastic rounding
/// (`|z - t| < spread/step + 1 < k/2`), at most 255; wider entries are escaped.
fn covering_modulus(spread: f64, step: f32) -> u16 {
    let k = 2.0 * (spread / f64::from(step)).ceil() + 4.0;
    if k.is_finite() { k.clamp(2.0, AUTO_MAX_MODULUS) as u16 } else { AUTO_MAX_MODULUS as u16 }
}

/// Every s-th entry of a chunk (the whole chunk when short), on which the encoder measures the
/// sizes of its choices.
struct Sample {
    x: Vec<f32>,
    side: Option<Vec<f32>>,
    /// Entries of the whole chunk.
    n: usize,
}

impl Sample {
    fn of(x: &[f32], prediction: Prediction<'_>) -> Sample {
        let stride = x.len().div_ceil(SEARCH_SAMPLE).max(1);
        let side = match prediction {
            Prediction::Side(y) => Some(y.iter().step_by(stride).copied().collect()),
            _ => None,
        };
        Sample { x: x.iter().step_by(stride).copied().collect(), side, n: x.len() }
    }

    fn prediction(&self, like: Prediction<'_>) -> Prediction<'_> {
        match (&self.side, like) {
            (Some(y), _) => Prediction::Side(y),
            (None, Prediction::Zero) => Prediction::Zero,
            (None, _) => Prediction::Unknown,
        }
    }

    /// Estimated bytes of the whole chunk on `lattice`: the sample's payload scaled to the
    /// chunk, plus the header; and of its coded entries alone (escapes and labels without the
    /// code lengths), on which mode `bits` sets its budget, so that the fixed cost of a chunk
    /// does not starve a small tensor.
    fn chunk_bytes(&self, like: Prediction<'_>, lattice: Lattice, coded: &mut Coded) -> (f64, f64) {
        code(&self.x, self.prediction(like), lattice, None, coded);
        let (_, len, tables) = best_sections(coded, lattice.modulus);
        let scale = self.n as f64 / self.x.len().max(1) as f64;
        let entries = (len - chunk::HEADER_LEN - tables) as f64 * scale;
        (entries + (chunk::HEADER_LEN + tables) as f64, entries)
    }

    /// The cheapest modulus for `step` among a few that cover less than the spread (their wider
    /// entries escaped) and the one that covers it all, with the estimated chunk bytes.
    fn best_modulus(
        &self,
        like: Prediction<'_>,
        scale: f32,
        step: f32,
        spread: f64,
        coded: &mut Coded,
    ) -> (u16, f64, f64) {
        let cover = covering_modulus(spread, step);
        let mut best = (cover, f64::INFINITY, f64::INFINITY);
        for modulus in [16, 64, cover] {
            if modulus > cover {
                continue;
            }
            let (bytes, entries) = self.chunk_bytes(like, Lattice { scale, step, modulus }, coded);
            if bytes < best.1 {
                best = (modulus, bytes, entries);
            }
        }
        best
    }

    /// The 99.9th percentiles (the largest value below which 999 in 1000 entries lie) of
    /// `|x - a*y|` and of `|x|` over the sample's finite entries.
    fn percentiles(&self, like: Prediction<'_>, scale: f32) -> (f64, f64) {
        let percentile = |mut v: Vec<f64>| {
            if v.is_empty() {
                return 0.0;
            }
            let at = (v.len() - 1) * 999 / 1000;
            *v.select_nth_unstable_by(at, f64::total_cmp).1
        };
        let residual = self
            .x
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let p = match self.prediction(like) {
                    Prediction::Side(y) => f64::from(scale) * f64::from(y[i]),
                    _ => 0.0,
                };
                (f64::from(x) - p).abs()
            })
            .filter(|r| r.is_finite())
            .collect();
        let magnitude = self.x.iter().filter(|v| v.is_finite()).map(|v| f64::from(*v).abs()).collect();
        (percentile(residual), percentile(magnitude))
    }

    /// The smallest step (bisection on a log scale) whose coded entries take at most `bits`
    /// per entry (estimated), with its best modulus.
    fn step_for_bits(&self, like: Prediction<'_>, scale: f32, bits: f32, spread: f64) -> (f32, u16) {
        let mut coded = Coded::default();
        let budget = f64::from(bits) * self.n as f64 / 8.0;
        // The search codes with the covering modulus only (a third of the work of trying all
        // three); the cheapest modulus is chosen once, at the step found.
        let mut fits = |log_step: f64| {
            let step = to_step(log_step);
            let modulus = covering_modulus(spread, step);
            let (_, entries) = self.chunk_bytes(like, Lattice { scale, step, modulus }, &mut coded);
            (entries <= budget, step, modulus)
        };
        // Anchored on the bulk of the entries, not on outliers (which become escapes): the
        // 99.9th percentile of |x - a*y| and of |x| over the sample.
        let (typical, largest) = self.percentiles(like, scale);
        let mut hi = (typical.max(largest * 1e-7).max(f64::from(f32::MIN_POSITIVE)) * 4.0).log2();
        let mut lo = hi - 40.0;
        if let (true, step, _) = fits(lo) {
            return (step, self.best_modulus(like, scale, step, spread, &mut coded).0);
        }
        let mut found = None;
        for _ in 0..SEARCH_STEPS {
            let mid = 0.5 * (lo + hi);
            match fits(mid) {
                (true, step, modulus) => {
                    hi = mid;
                    found = Some((step, modulus));
                }
                _ => lo = mid,
            }
        }
        let step = found.map_or_else(|| fits(hi).1, |(step, _)| step);
        (step, self.best_modulus(like, scale, step, spread, &mut coded).0)
    }
}

/// `2^log_step` as a positive, finite f32.
fn to_step(log_step: f64) -> f32 {
    (log_step.exp2() as f32).clamp(f32::MIN_POSITIVE, f32::MAX)
}

/// The lattice for a chunk: for each candidate scale (the fitted one and 0, or 1), the step and
/// modulus the mode asks for; then the finer step (mode `bits`) or the smaller estimate.
fn choose_lattice(params: &WynerZivParams, x: &[f32], prediction: Prediction<'_>) -> Lattice {
    let scales: Vec<f32> = match prediction {
        Prediction::Side(y) if params.fit_scale => {
            let a = fitted_scale(x, y);
            if a == 0.0 { vec![0.0] } else { vec![a, 0.0] }
        }
        Prediction::Side(_) | Prediction::Unknown => vec![1.0],
        Prediction::Zero => vec![0.0],
    };
    if let Mode::StepModulus(step, modulus) = params.mode
        && scales.len() == 1
    {
        return Lattice { scale: scales[0], step, modulus };
    }
    let sample = Sample::of(x, prediction);
    let mut coded = Coded::default();
    let mut best: Option<(Lattice, f64)> = None;
    for scale in scales {
        let (lattice, score) = match params.mode {
            Mode::StepModulus(step, modulus) => {
                let lattice = Lattice { scale, step, modulus };
                (lattice, sample.chunk_bytes(prediction, lattice, &mut coded).0)
            }
            Mode::Step(step) => {
                let (modulus, bytes, _) =
                    sample.best_modulus(prediction, scale, step, spread(x, prediction, scale), &mut coded);
                (Lattice { scale, step, modulus }, bytes)
            }
            Mode::Bits(bits) => {
                let (step, modulus) = sample.step_for_bits(prediction, scale, bits, spread(x, prediction, scale));
                (Lattice { scale, step, modulus }, f64::from(step))
            }
        };
        if best.as_ref().is_none_or(|(_, s)| score < *s) {
            best = Some((lattice, score));
        }
    }
    best.map_or(Lattice { scale: 0.0, step: 1.0, modulus: 2 }, |(l, _)| l)
}

/// Encodes one chunk, appending the payload to `out`. `side` is the chunk's side information
/// when the encoder has it. Without a binding, modes `bits` and `step` code against a zero
/// prediction (a stream without side information: the plain lattice quantizer), and mode
/// `step,modulus` against side information the encoder may not have.
///
/// # Errors
/// [`ErrorCode::SideInfoMissing`] when the parameters bind side information and the encoder has
/// none; [`ErrorCode::SideInfoMismatch`] for side information of the wrong length.
pub fn encode(params: &WynerZivParams, x: &[f32], side: Option<&[f32]>, seed: u64, out: &mut Vec<u8>) -> Result<()> {
    if let Some(y) = side
        && y.len() != x.len()
    {
        return Err(Error::new(
            ErrorCode::SideInfoMismatch,
            format!("wyner-ziv side information of {} values for a chunk of {}", y.len(), x.len()),
        ));
    }
    let prediction = match (&params.binding, params.mode, side) {
        (Some(_), _, Some(y)) | (None, Mode::StepModulus(..), Some(y)) => Prediction::Side(y),
        (None, Mode::StepModulus(..), None) => Prediction::Unknown,
        (None, _, _) => Prediction::Zero,
        (Some(b), _, None) => {
            return Err(Error::new(
                ErrorCode::SideInfoMissing,
                format!(
                    "wyner-ziv parameters bind the side information {:?}, which the encoder was not given",
                    b.label
                ),
            ));
        }
    };
    let lattice = choose_lattice(params, x, prediction);
    let mut rng = (params.rounding == Rounding::Stochastic).then(|| SeededRng::new(seed));
    let mut coded = Coded::default();
    code(x, prediction, lattice, rng.as_mut(), &mut coded);
    let (sections, _, _) = best_sections(&coded, lattice.modulus);
    let header = Header {
        contexts: sections.len() as u8,
        centered: !matches!(prediction, Prediction::Unknown),
        modulus: lattice.modulus,
        step: lattice.step,
        scale: lattice.scale,
        gain: if sections.len() > 1 { lattice.gain() } else { 0.0 },
    };
    chunk::write(&header, &coded.positions, &coded.escapes, &sections, out);
    Ok(())
}
