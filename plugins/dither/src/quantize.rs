//! Rounding `|x_i|` onto the grid `0, step, 2 step, ...` (`spec/CODECS.md` §10.1) and the two
//! stages built on it: `qsgd` (step `||x|| / s`, stochastic) and `sparse-dither` (step
//! `2 sqrt(nu / n) ||x||`, nearest or stochastic).

use gradwire_codec::rng::SeededRng;
use gradwire_codec::{ArrayToBytes, ChunkContext, Error, ErrorCode, Result};

use crate::levels::{self, Levels, MAX_MAGNITUDE};
use crate::params::{QsgdParams, SparseDitherParams, Variant};

/// How a value between two grid points picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    /// `floor(r + 1/2)`: error at most half a step.
    Nearest,
    /// Up with probability `r - floor(r)` (the chunk's generator draws one number per value):
    /// unbiased, error below one step.
    Stochastic,
}

/// `||x||^2` in f64 (squares summed in f64 in index order), refusing non-finite values.
fn energy(codec: &str, input: &[f32]) -> Result<f64> {
    if let Some(i) = input.iter().position(|v| !v.is_finite()) {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("{codec} cannot quantize value {i} of the chunk, {}", input[i]),
        ));
    }
    // `+ 0.0`: the sum of no values is -0.0 in Rust, and its root would be written as a step
    // with the sign bit set, which decoders refuse (found by fuzzing an empty chunk).
    Ok(input.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() + 0.0)
}

/// Rounds every `|x_i| / step` (f64 division) to a level and returns `||C(x) - x||^2` in f64.
///
/// The loop has no data-dependent branch and no read-modify-write: every value writes its gap,
/// magnitude and sign to slot `m` of buffers sized for the whole chunk, and `m` advances only for
/// a nonzero level. (Branches on "nonzero?" and "negative?" mispredicted on half the values, and
/// or-ing sign bits into a byte chained every value's division to the next: most of the encode
/// time.) [`Levels::keep`] packs the signs afterwards.
fn quantize(
    codec: &str,
    input: &[f32],
    step: f32,
    rounding: Rounding,
    ctx: &ChunkContext<'_>,
    max_magnitude: u64,
    levels: &mut Levels,
) -> Result<f64> {
    // One loop per rounding, so neither carries the other's code.
    match rounding {
        Rounding::Nearest => quantize_with::<false>(codec, input, step, ctx, max_magnitude, levels),
        Rounding::Stochastic => quantize_with::<true>(codec, input, step, ctx, max_magnitude, levels),
    }
}

#[cold]
fn out_of_range(codec: &str, i: usize, x: f32, step: f32) -> Error {
    Error::new(ErrorCode::LimitExceeded, format!("{codec} value {i} ({x}) rounds up beyond f32's range (step {step})"))
}

#[cold]
fn level_too_large(codec: &str, i: usize, k: u64, max_magnitude: u64, step: f32) -> Error {
    Error::new(
        ErrorCode::LimitExceeded,
        format!("{codec} level {k} of value {i} exceeds {max_magnitude} (step {step})"),
    )
}

fn quantize_with<const STOCHASTIC: bool>(
    codec: &str,
    input: &[f32],
    step: f32,
    ctx: &ChunkContext<'_>,
    max_magnitude: u64,
    levels: &mut Levels,
) -> Result<f64> {
    /// Values per block: levels first (arithmetic only), then their slots (stores only). Mixing
    /// both in one loop made every store's address wait on the previous value's division:
    /// 1.8x slower.
    const BLOCK: usize = 64;
    levels.prepare(step, input.len());
    let (gaps, below, negative) = (&mut levels.gaps[..], &mut levels.magnitudes_below[..], &mut levels.negative[..]);
    let mut rng = SeededRng::new(ctx.seed);
    let grid = f64::from(step);
    let (mut m, mut next, mut error) = (0usize, 0usize, 0f64);
    let mut block_levels = [0u64; BLOCK];
    for (b, block) in input.chunks(BLOCK).enumerate() {
        for (o, (slot, &x)) in block_levels.iter_mut().zip(block).enumerate() {
            let r = f64::from(x.abs()) / grid;
            // Conversions through i64 truncate, which is floor for these non-negative values
            // (and saturate for huge ones, caught by the magnitude check below). They are single
            // instructions where `f64::floor` is a libm call and u64 conversions take several:
            // 2.5x faster quantization.
            let mut k = if STOCHASTIC {
                let u = (rng.next_u64() >> 11).cast_signed() as f64 * (1.0 / 9_007_199_254_740_992.0);
                let floor = r as i64;
                (floor + i64::from(u < r - floor as f64)) as u64
            } else {
                (r + 0.5) as i64 as u64
            };
            // The magnitude the decoder will produce (level_value without the sign).
            let mut y = (grid * k.cast_signed() as f64) as f32;
            if y.is_infinite() {
                // Within a step of f32::MAX: nearest rounding takes the level below (the
                // encoder's step schedule keeps the guarantee); stochastic rounding cannot stay
                // unbiased.
                if STOCHASTIC {
                    return Err(out_of_range(codec, b * BLOCK + o, x, step));
                }
                k -= 1;
                y = (grid * k.cast_signed() as f64) as f32;
            }
            if k > max_magnitude {
                return Err(level_too_large(codec, b * BLOCK + o, k, max_magnitude, step));
            }
            *slot = k;
            // y has x's sign or is zero, so |x - y| = ||x| - |y||.
            error += (f64::from(x.abs()) - f64::from(y)).powi(2);
        }
        for (o, (&k, &x)) in block_levels.iter().zip(block).enumerate() {
            let i = b * BLOCK + o;
            let nonzero = k != 0;
            gaps[m] = (i - next) as u64;
            below[m] = k.wrapping_sub(1);
            negative[m] = u8::from(x.is_sign_negative());
            next = if nonzero { i + 1 } else { next };
            m += usize::from(nonzero);
        }
    }
    levels.keep(m);
    Ok(error)
}

thread_local! {
    /// Level buffers reused across chunks on one thread.
    static LEVELS: std::cell::RefCell<Levels> = std::cell::RefCell::new(Levels::default());
}

/// Buffers for chunks above this many values are released after use (17 bytes a value) instead
/// of kept for the next chunk.
const KEEP_LEVELS_UP_TO: usize = 1 << 21;

/// Calls `f` with this thread's level buffers.
fn with_levels<T>(f: impl FnOnce(&mut Levels) -> T) -> T {
    LEVELS.with_borrow_mut(|levels| {
        let out = f(levels);
        if levels.gaps.len() > KEEP_LEVELS_UP_TO {
            *levels = Levels::default();
        }
        out
    })
}

/// The built `qsgd` stage.
pub struct QsgdStage {
    /// Its parameters.
    pub params: QsgdParams,
}

impl ArrayToBytes for QsgdStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        if len > u32::MAX as usize {
            return None;
        }
        levels::max_len(len, u64::from(self.params.levels))
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        check_len("qsgd", input.len())?;
        let norm = energy("qsgd", input)?.sqrt();
        let s = u64::from(self.params.levels);
        // The smallest f32 step with step * s >= norm (the product exact in f64), so
        // |x_i| / step <= s for every value.
        let mut step = (norm / s as f64) as f32;
        while f64::from(step) * (s as f64) < norm {
            step = step.next_up();
        }
        if !step.is_finite() {
            return Err(Error::new(
                ErrorCode::LimitExceeded,
                format!("qsgd step {norm:e} / {s} of the chunk is above f32's range"),
            ));
        }
        with_levels(|levels| {
            quantize("qsgd", input, step, Rounding::Stochastic, ctx, s, levels)?;
            levels.write(out);
            Ok(())
        })
    }

    fn decode(&self, bytes: &[u8], _ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        levels::decode("qsgd", bytes, u64::from(self.params.levels), out)
    }
}

/// The built `sparse-dither` stage.
pub struct SparseDitherStage {
    /// Its parameters.
    pub params: SparseDitherParams,
}

/// Relative shrink of the step when rounding in f32 broke the deterministic guarantee, for the
/// first [`FINE_ATTEMPTS`] attempts; then the step is halved (a value within a step of
/// `f32::MAX` takes the level below, an error of up to one old step, half a new one).
const SHRINK: f64 = 1.0 - 1.0 / 4096.0;
/// Attempts that shrink the step by [`SHRINK`].
const FINE_ATTEMPTS: usize = 8;
/// Attempts before giving up on the deterministic guarantee (never reached in tests).
const ATTEMPTS: usize = 16;

impl ArrayToBytes for SparseDitherStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        if len > u32::MAX as usize {
            return None;
        }
        levels::max_len(len, MAX_MAGNITUDE)
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        check_len("sparse-dither", input.len())?;
        let energy = energy("sparse-dither", input)?;
        let norm = energy.sqrt();
        let n = input.len() as f64;
        let nu = self.params.nu;
        let exact = 2.0 * (nu / n).sqrt() * norm;
        with_levels(|levels| {
            if norm == 0.0 {
                levels.prepare(0.0, 0);
                levels.write(out);
                return Ok(());
            }
            // Nearest f32, at most the largest finite one (a smaller step keeps both guarantees).
            let mut step = (exact as f32).min(f32::MAX);
            let too_small = || {
                Error::new(
                    ErrorCode::LimitExceeded,
                    format!("sparse-dither step {exact:e} of a chunk with norm {norm:e} is below f32's range"),
                )
            };
            if self.params.variant == Variant::Unbiased {
                if step == 0.0 {
                    return Err(too_small());
                }
                quantize("sparse-dither", input, step, Rounding::Stochastic, ctx, MAX_MAGNITUDE, levels)?;
                levels.write(out);
                return Ok(());
            }
            // Deterministic: nearest levels on a step at most the exact one; the f32 step and
            // the f32 rounding of decoded values can still cost a hair, so the error is measured
            // as the decoder will see it and the step shrunk until the guarantee holds.
            if f64::from(step) > exact {
                step = step.next_down();
            }
            // nu ||x||^2, less a margin for the rounding of both f64 sums (error and energy).
            let budget = nu * energy * (1.0 - (n + 4.0) * f64::EPSILON);
            for attempt in 0..ATTEMPTS {
                if step <= 0.0 {
                    return Err(too_small());
                }
                let error = quantize("sparse-dither", input, step, Rounding::Nearest, ctx, MAX_MAGNITUDE, levels)?;
                if error <= budget {
                    levels.write(out);
                    return Ok(());
                }
                let factor = if attempt < FINE_ATTEMPTS { SHRINK } else { 0.5 };
                step = ((f64::from(step) * factor) as f32).min(step.next_down());
            }
            Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("sparse-dither could not meet nu = {nu} in f32 after {ATTEMPTS} steps"),
            ))
        })
    }

    fn decode(&self, bytes: &[u8], _ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        levels::decode("sparse-dither", bytes, MAX_MAGNITUDE, out)
    }
}

fn check_len(codec: &str, n: usize) -> Result<()> {
    if n > u32::MAX as usize {
        return Err(Error::new(
            ErrorCode::LimitExceeded,
            format!("{codec} chunks hold at most 2^32-1 values, this one {n}"),
        ));
    }
    Ok(())
}
