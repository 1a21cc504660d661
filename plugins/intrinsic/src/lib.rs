//! # gradwire-intrinsic
//!
//! The `intrinsic` codec (ID `0x00000102`, `spec/CODECS.md` §7): intrinsic gradient compression
//! (Melas-Kyriazi and Wang 2022). A chunk of `n` values `g` becomes `d` coefficients `c = A^T g`,
//! where the `n x d` matrix `A` is regenerated from a seed both sides share; the decoder returns
//! `gamma A c`. It is an array->array stage: the coefficients go on through the rest of the
//! pipeline (`intrinsic:dim=4096+bf16`, `...+m22:bits=4`), and cost 32 bits each with `raw`.
//!
//! Families (`family=`), each an `A` with columns of unit norm in expectation:
//! - `srht` (default): random signs, the orthonormal Walsh-Hadamard transform and `d` rows drawn
//!   without replacement, per power-of-two block of the chunk; O(n log n), `A` never stored;
//! - `rademacher`: dense `+-1/sqrt(n)`; O(n d), refused above 2^26 entries per chunk;
//! - `sparse`: `nonzeros` entries `+-1/sqrt(s)` per column (a count sketch); O(d s).
//!
//! Scaling (`scaling=`): `projection` (gamma = 1, `A A^T g`, relative error about `1 - d/n`) or
//! `unbiased` (gamma = `n/d`, or `padded/dim` per SRHT block, so `E[gamma A A^T g] = g` over seeds).
//!
//! Seeds (`seed=S,schedule=fixed|group|round,groups=K,round=R`) express the paper's three
//! protocols: one subspace for the whole training, K subspaces in turn, or a new one every round.
//! Clients that share the parameters share `A`, and the weighted mean of their coefficients
//! decodes to the mean of their decoded updates: `gradwire aggregate` averages coefficients
//! without expanding them ([`gradwire_codec::ArrayToArray::is_linear`]).
//!
//! ```
//! use gradwire_codec::{Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_intrinsic::registry_with_intrinsic();
//! let g: Vec<f32> = (0..1024).map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0).collect();
//! let pipeline = registry.parse_pipeline("intrinsic:dim=256,seed=7+raw")?;
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.write_tensor(TensorSpec::new("g", &[1024], pipeline), &g)?;
//! let bytes = w.finish()?;
//! let decoded = Reader::new(&bytes[..], &registry).read_all()?.tensors.remove(0).values;
//! let err: f32 = g.iter().zip(&decoded).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
//! let norm: f32 = g.iter().map(|a| a * a).sum();
//! assert!(err / norm > 0.6 && err / norm < 0.9); // about 1 - 256/1024 of the energy is lost
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

mod dense;
pub mod hadamard;
mod params;
mod project;
mod sparse;
mod srht;

use gradwire_codec::rng::{SeededRng, chunk_seed};
use gradwire_codec::{
    ArrayToArray, ChunkContext, CodecDescriptor, CodecFactory, Error, ErrorCode, ParamInfo, Registry, Result, Stage,
    StageKind, TextParams,
};

pub use params::{
    DEFAULT_DIM, DEFAULT_NONZEROS, Family, IntrinsicParams, MAX_DENSE_ENTRIES, MAX_NONZEROS, Scaling, Schedule,
};

/// Wire ID of `intrinsic` (`spec/REGISTRY.md`).
pub const INTRINSIC_ID: u32 = 0x0000_0102;

/// Factory of the `intrinsic` codec.
#[derive(Debug)]
pub struct IntrinsicCodec;

/// The registered `intrinsic` codec.
pub static INTRINSIC_CODEC: IntrinsicCodec = IntrinsicCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&INTRINSIC_CODEC) }

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: INTRINSIC_ID,
    name: "intrinsic",
    kind: StageKind::ArrayToArray,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "d coefficients A^T g of a random n x d projection regenerated from a shared seed (SRHT, Rademacher, sparse)",
    params: &[
        ParamInfo {
            name: "dim",
            default: "256",
            help: "coefficients per chunk (a shorter chunk keeps all its values' count)",
        },
        ParamInfo {
            name: "family",
            default: "srht",
            help: "srht (O(n log n)), rademacher (dense, small chunks) or sparse",
        },
        ParamInfo { name: "nonzeros", default: "4", help: "entries per column with family=sparse, 1..=64" },
        ParamInfo { name: "scaling", default: "projection", help: "projection (A A^T g) or unbiased (times n/d)" },
        ParamInfo { name: "seed", default: "0", help: "shared base seed, 0..=2^64-1" },
        ParamInfo {
            name: "schedule",
            default: "fixed",
            help: "fixed (one subspace), group (groups=K in turn) or round (new each round)",
        },
        ParamInfo { name: "groups", default: "1", help: "number of subspaces with schedule=group" },
        ParamInfo { name: "round", default: "0", help: "training round with schedule=group or round" },
    ],
    examples: &[
        "dim=40,scaling=unbiased,seed=3",
        "dim=16,family=rademacher,seed=5",
        "dim=24,family=sparse,nonzeros=3,scaling=unbiased,schedule=group,groups=4,round=6",
        "dim=300,schedule=round,round=2,seed=11",
    ],
};

/// The core registry plus `intrinsic` (for tests and examples that do not link the facade).
#[must_use]
pub fn registry_with_intrinsic() -> Registry {
    Registry::core_with(&INTRINSIC_CODEC)
}

impl CodecFactory for IntrinsicCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(IntrinsicParams::from_text(text)?.encode().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(IntrinsicParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        let params = IntrinsicParams::decode(params)?;
        Ok(Stage::ArrayToArray(Box::new(IntrinsicStage { params, seed: params.projection_seed() })))
    }
}

/// The built stage.
struct IntrinsicStage {
    params: IntrinsicParams,
    /// `params.projection_seed()`.
    seed: u64,
}

impl IntrinsicStage {
    /// The generator of one chunk: seeded with `chunk_seed(projection seed, name, chunk index)`.
    fn rng(&self, ctx: &ChunkContext<'_>) -> SeededRng {
        SeededRng::new(chunk_seed(self.seed, ctx.tensor_name, ctx.chunk_index))
    }
}

impl ArrayToArray for IntrinsicStage {
    fn encoded_len(&self, len: usize) -> Result<usize> {
        let d = self.params.dim_for(len);
        if len > u32::MAX as usize {
            return Err(Error::new(
                ErrorCode::LimitExceeded,
                format!("intrinsic chunks hold at most 2^32-1 values, this one {len}"),
            ));
        }
        if self.params.family == Family::Rademacher && (len as u64).saturating_mul(d as u64) > MAX_DENSE_ENTRIES {
            return Err(Error::new(
                ErrorCode::LimitExceeded,
                format!(
                    "a rademacher projection of {len} values onto {d} coefficients has more than 2^26 entries; \
                     use family=srht or sparse, or smaller chunks"
                ),
            ));
        }
        Ok(d)
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<f32>) -> Result<()> {
        if let Some(i) = input.iter().position(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "intrinsic cannot project value {i} of the chunk, {}: a projection spreads it over every coefficient",
                    input[i]
                ),
            ));
        }
        out.clear();
        project::encode(&self.params, &mut self.rng(ctx), input, out);
        Ok(())
    }

    fn decode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let d = self.encoded_len(out.len())?;
        if input.len() != d {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("intrinsic chunk of {} values has {d} coefficients, got {}", out.len(), input.len()),
            ));
        }
        project::decode(&self.params, &mut self.rng(ctx), input, out);
        Ok(())
    }

    fn is_linear(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
