//! # gradwire-spherical
//!
//! Spherical compression (`spherical`, ID `0x00000107`, `spec/CODECS.md` §11; Albasyoni,
//! Safaryan, Condat, Richtárik 2020). A chunk is cut into blocks of `block` values. For a block
//! `x`, both sides can generate the same random points `z_1, z_2, ...` on the sphere of radius
//! `sqrt(1 - alpha) ||x||` (the t-th from a generator seeded with the shared seed, the tensor
//! name, the chunk, the block and `t`); the encoder sends the index `t` of the first point with
//! `||z_t - x||^2 <= alpha ||x||^2`, Golomb-Rice coded, plus `||x||` as a bf16 (16 bits; its
//! rounding is inside the check, which measures what the decoder will output). If none of the
//! first `draws` points qualifies, the block is sent as raw f32 values (index 0). So the
//! guarantee `||C(x) - x||^2 <= alpha ||x||^2` holds for every block, and so for every chunk.
//!
//! The expected number of draws grows like `alpha^(-block/2)`: this is the codec that is optimal
//! on average in the paper's analysis and exponential in cost, practical for small blocks only.
//!
//! Points use integer coordinates (a sum of four 16-bit uniforms, nearly Gaussian) and the
//! decoder scales them with correctly rounded f64 operations only, so every implementation gets
//! the same bits.
//!
//! ```
//! use gradwire_codec::{Reader, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_spherical::registry_with_spherical();
//! let g: Vec<f32> = (0..256).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.write_tensor(TensorSpec::new("g", &[256], registry.parse_pipeline("spherical:alpha=0.3,block=4,seed=7")?), &g)?;
//! let y = Reader::new(&w.finish()?[..], &registry).read_all()?.tensors.remove(0).values;
//! for (x, y) in g.chunks(4).zip(y.chunks(4)) {
//!     let error: f64 = x.iter().zip(y).map(|(a, b)| f64::from(a - b).powi(2)).sum();
//!     assert!(error <= 0.3 * x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>());
//! }
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

mod params;

use gradwire_codec::entropy::{MAX_RICE_PARAMETER, best_rice_parameter, rice_decode, rice_encode};
use gradwire_codec::rng::{SeededRng, chunk_seed, mix64};
use gradwire_codec::{
    ArrayToBytes, ChunkContext, CodecDescriptor, CodecFactory, Error, ErrorCode, ParamInfo, Registry, Result, Stage,
    StageKind, TextParams,
};

pub use params::{ALPHA_RANGE, MAX_BLOCK, MAX_DRAWS, SphericalParams};

/// Wire ID of `spherical` (`spec/REGISTRY.md`).
pub const SPHERICAL_ID: u32 = 0x0000_0107;

/// Factory of the `spherical` codec.
#[derive(Debug)]
pub struct SphericalCodec;

/// The registered `spherical` codec.
pub static SPHERICAL_CODEC: SphericalCodec = SphericalCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&SPHERICAL_CODEC) }

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: SPHERICAL_ID,
    name: "spherical",
    kind: StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "spherical compression: per block the index of the first shared random point within sqrt(alpha) of it",
    params: &[
        ParamInfo {
            name: "alpha",
            default: "0.1",
            help: "error budget per block relative to ||x||^2, in [0.01, 0.99]",
        },
        ParamInfo { name: "block", default: "4", help: "values per block, 1..=16 (draws grow like alpha^(-block/2))" },
        ParamInfo { name: "draws", default: "4096", help: "points tried per block before sending it raw, 1..=2^24" },
        ParamInfo { name: "seed", default: "0", help: "shared seed of the points, 0..=2^64-1" },
    ],
    examples: &["alpha=0.5,block=4,seed=3", "alpha=0.1,block=2", "alpha=0.2,block=8,draws=64,seed=1"],
};

impl CodecFactory for SphericalCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(SphericalParams::from_text(text)?.encode().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(SphericalParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToBytes(Box::new(SphericalStage { params: SphericalParams::decode(params)? })))
    }
}

/// The core registry plus `spherical` (for tests and examples that do not link the facade).
#[must_use]
pub fn registry_with_spherical() -> Registry {
    Registry::core_with(&SPHERICAL_CODEC)
}

/// Point `t` (from 1) of block `j` of a chunk with seed `chunk_seed`: `d` integer coordinates,
/// each the sum of the four 16-bit quarters of one draw minus 131070, and their squared norm
/// (exact: below 2^53).
#[must_use]
pub fn point(chunk_seed: u64, j: u64, t: u32, coordinates: &mut [i64]) -> u64 {
    let mut rng = SeededRng::new(mix64(chunk_seed ^ mix64(j)) ^ u64::from(t));
    let mut squared = 0u64;
    for v in coordinates.iter_mut() {
        let w = rng.next_u64();
        let sum = (w & 0xFFFF) + (w >> 16 & 0xFFFF) + (w >> 32 & 0xFFFF) + (w >> 48);
        *v = sum.cast_signed() - 131_070;
        squared += v.unsigned_abs() * v.unsigned_abs();
    }
    squared
}

/// The decoded values of a point: `f32((scale * rho) / sqrt(squared) * v_i)` in f64, or zeros
/// when the scale or the point is zero.
fn place(scale: f32, rho: f64, coordinates: &[i64], squared: u64, out: &mut [f32]) {
    if scale == 0.0 || squared == 0 {
        out.fill(0.0);
        return;
    }
    let factor = f64::from(scale) * rho / (squared as f64).sqrt();
    for (o, &v) in out.iter_mut().zip(coordinates) {
        *o = (factor * v as f64) as f32;
    }
}

/// Draws an encoder tries per chunk at most, over all its blocks: once they are used up, the
/// remaining blocks go raw. Parameters come from the stream (an aggregator re-encodes with
/// them), so without this bound `alpha=0.01,block=16,draws=16777216` would cost hours a chunk.
pub const MAX_CHUNK_DRAWS: u64 = 1 << 26;

/// The built `spherical` stage.
pub struct SphericalStage {
    /// Its parameters.
    pub params: SphericalParams,
}

impl SphericalStage {
    fn blocks(&self, n: usize) -> usize {
        n.div_ceil(usize::from(self.params.block))
    }

    /// The first qualifying draw for block `x` among at most `allowed` (`None`: send it raw),
    /// and the draws it took.
    fn search(&self, cs: u64, j: u64, x: &[f32], energy: f64, scale: f32, allowed: u64) -> (Option<u32>, u64) {
        let rho = (1.0 - self.params.alpha).sqrt();
        // alpha ||x||^2, less a margin for the rounding of both f64 sums.
        let budget = self.params.alpha * energy * (1.0 - (x.len() as f64 + 4.0) * f64::EPSILON);
        let mut coordinates = [0i64; MAX_BLOCK as usize];
        let mut y = [0f32; MAX_BLOCK as usize];
        let d = x.len();
        let last = u64::from(self.params.draws).min(allowed) as u32;
        let found = (1..=last).find(|&t| {
            let squared = point(cs, j, t, &mut coordinates[..d]);
            place(scale, rho, &coordinates[..d], squared, &mut y[..d]);
            let mut error = 0f64;
            for (a, b) in x.iter().zip(&y[..d]) {
                error += (f64::from(*a) - f64::from(*b)).powi(2);
                if error > budget {
                    return false;
                }
            }
            true
        });
        (found, found.map_or(u64::from(last), u64::from))
    }
}

impl ArrayToBytes for SphericalStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        if len > u32::MAX as usize {
            return None;
        }
        // Indices are at most 2^24: at parameter 24 each takes at most 26 bits, and the encoder
        // picks the shortest parameter; every block may be raw.
        let nb = self.blocks(len);
        1usize
            .checked_add(nb.checked_mul(2)?)?
            .checked_add(nb.checked_mul(26)?.div_ceil(8))?
            .checked_add(len.checked_mul(4)?)
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        if let Some(i) = input.iter().position(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("spherical cannot encode value {i} of the chunk, {}", input[i]),
            ));
        }
        if input.len() > u32::MAX as usize {
            return Err(Error::new(ErrorCode::LimitExceeded, "spherical chunks hold at most 2^32-1 values"));
        }
        let cs = chunk_seed(self.params.seed, ctx.tensor_name, ctx.chunk_index);
        let nb = self.blocks(input.len());
        let (mut scales, mut indices, mut raw) = (Vec::with_capacity(nb), Vec::with_capacity(nb), Vec::new());
        let mut spent = 0u64;
        for (j, x) in input.chunks(usize::from(self.params.block)).enumerate() {
            let energy: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            if energy == 0.0 {
                scales.push(0u16);
                indices.push(1u64);
                continue;
            }
            // The norm rounded to bf16 (nearest even), as the decoder will read it.
            let scale = half::bf16::from_f32(energy.sqrt() as f32);
            let wide = scale.to_f32();
            // A norm that bf16 cannot hold (infinite, or rounded to 0) sends the block raw, as
            // does a chunk that has used up its draws.
            let found = if wide.is_finite() && wide > 0.0 && spent < MAX_CHUNK_DRAWS {
                let (found, tried) = self.search(cs, j as u64, x, energy, wide, MAX_CHUNK_DRAWS - spent);
                spent += tried;
                found
            } else {
                None
            };
            if let Some(t) = found {
                scales.push(scale.to_bits());
                indices.push(u64::from(t));
            } else {
                scales.push(0);
                indices.push(0);
                raw.extend_from_slice(x);
            }
        }
        let b = best_rice_parameter(&indices);
        out.push(b);
        for s in &scales {
            out.extend_from_slice(&s.to_le_bytes());
        }
        rice_encode(&indices, b, out);
        for v in &raw {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    fn decode(&self, bytes: &[u8], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let nb = self.blocks(n);
        let short = |what: &str| Error::new(ErrorCode::CodecOutputSize, format!("spherical chunk ends inside {what}"));
        let data = |detail: String| Error::new(ErrorCode::CodecData, format!("spherical chunk: {detail}"));
        let Some((&b, rest)) = bytes.split_first().filter(|(_, rest)| rest.len() >= 2 * nb) else {
            return Err(short("its parameter and scales"));
        };
        if b > MAX_RICE_PARAMETER {
            return Err(data(format!("Rice parameter {b} is above 31")));
        }
        let (scale_bytes, rest) = rest.split_at(2 * nb);
        // bf16: the upper half of an f32.
        let scales: Vec<f32> = scale_bytes
            .chunks_exact(2)
            .map(|s| f32::from_bits(u32::from(u16::from_le_bytes([s[0], s[1]])) << 16))
            .collect();
        if let Some(j) = scales.iter().position(|s| !s.is_finite() || s.is_sign_negative()) {
            return Err(data(format!("block {j} has scale {}, not a finite value >= +0", scales[j])));
        }
        let mut indices = Vec::with_capacity(nb.min(8 * rest.len()));
        let used = rice_decode(rest, b, nb, u64::from(self.params.draws), &mut indices)?;
        let raw = &rest[used..];
        let block = usize::from(self.params.block);
        let mut raw_values = 0usize;
        for (j, (&t, &scale)) in indices.iter().zip(&scales).enumerate() {
            let d = block.min(n - j * block);
            if t == 0 {
                if scale.to_bits() != 0 {
                    return Err(data(format!("raw block {j} has scale {scale}, not +0")));
                }
                raw_values += d;
            } else if scale == 0.0 && t != 1 {
                return Err(data(format!("zero block {j} has index {t}, not 1")));
            }
        }
        if raw.len() != 4 * raw_values {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("spherical chunk has {} bytes of raw values, its raw blocks hold {raw_values}", raw.len()),
            ));
        }
        let cs = chunk_seed(self.params.seed, ctx.tensor_name, ctx.chunk_index);
        let rho = (1.0 - self.params.alpha).sqrt();
        let mut coordinates = [0i64; MAX_BLOCK as usize];
        let mut raw_values = raw.chunks_exact(4).map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        for (j, (y, (&t, &scale))) in out.chunks_mut(block).zip(indices.iter().zip(&scales)).enumerate() {
            if t == 0 {
                y.iter_mut().zip(&mut raw_values).for_each(|(o, v)| *o = v);
            } else {
                let d = y.len();
                let squared = if scale == 0.0 { 0 } else { point(cs, j as u64, t as u32, &mut coordinates[..d]) };
                place(scale, rho, &coordinates[..d], squared, y);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
