//! # gradwire-sparsify
//!
//! Sparsifying codecs (`spec/CODECS.md` §8, §9). `topk` (ID `0x00000104`, [`TopKStage`]): the
//! largest magnitudes, positions as Golomb-Rice coded gaps, values as f32, bf16 or through any
//! other pipeline (`topk:fraction=0.1,values=(m22:bits=4)`: on the `digits-mlp` gradients 1.01
//! bits per entry where bf16 values take 2.24, at about the same error).
//! `randk` (ID `0x00000103`): random-k. A chunk of `n`
//! values keeps `k = round(n * fraction)` (at least 1) of them at positions drawn from a seed both sides share,
//! so no position goes on the wire; the decoder puts them back (times `n/k` with
//! `scaling=unbiased`) and zeros elsewhere. It is an array->array stage: the kept values go on
//! through any other stage (`randk:fraction=0.01,seed=7+raw` costs 32 bits per kept value,
//! `+bf16` 16). Several frameworks send int64 indices and fp32 values for sparsified updates,
//! 96 bits per kept value; here positions cost nothing.
//!
//! Use it with error feedback (`gradwire_codec::ErrorFeedback`) so dropped values are sent later.
//! Like `intrinsic`, decoding is linear and fixed by the parameters, so updates that share a
//! seed are averaged in the compressed domain by `gradwire aggregate`.
//!
//! ```
//! use gradwire_codec::{Reader, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_sparsify::registry_with_sparsify();
//! let g: Vec<f32> = (0..1000).map(|i| i as f32).collect();
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.write_tensor(TensorSpec::new("g", &[1000], registry.parse_pipeline("randk:fraction=0.1,seed=3+raw")?), &g)?;
//! let bytes = w.finish()?;
//! let y = Reader::new(&bytes[..], &registry).read_all()?.tensors.remove(0).values;
//! assert_eq!(y.iter().filter(|v| **v != 0.0).count(), 100); // (value 0 is never kept as nonzero)
//! assert!(y.iter().zip(&g).all(|(a, b)| *a == 0.0 || a == b));
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

mod params;
mod topk;
mod topk_params;

use std::cell::RefCell;

use gradwire_codec::rng::{SeededRng, chunk_seed};
use gradwire_codec::{
    ArrayToArray, ChunkContext, CodecDescriptor, CodecFactory, Error, ErrorCode, Limits, ParamInfo, Registry, Result,
    Stage, StageKind, TextParams,
};

pub use params::{RandKParams, Scaling, kept_count};
pub use topk::TopKStage;
pub use topk_params::{TopKParams, Values};

/// Wire ID of `randk` (`spec/REGISTRY.md`).
pub const RANDK_ID: u32 = 0x0000_0103;

/// Factory of the `randk` codec.
#[derive(Debug)]
pub struct RandKCodec;

/// The registered `randk` codec.
pub static RANDK_CODEC: RandKCodec = RandKCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&RANDK_CODEC) }

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: RANDK_ID,
    name: "randk",
    kind: StageKind::ArrayToArray,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "random-k: round(n * fraction) values at positions drawn from a shared seed (none on the wire)",
    params: &[
        ParamInfo { name: "fraction", default: "0.01", help: "fraction of values kept, in (0, 1); stored over 2^32" },
        ParamInfo { name: "scaling", default: "none", help: "none (kept values as they are) or unbiased (times n/k)" },
        ParamInfo { name: "seed", default: "0", help: "shared seed of the positions, 0..=2^64-1" },
    ],
    examples: &["fraction=0.25,scaling=unbiased,seed=5", "fraction=0.5,seed=9"],
};

/// Wire ID of `topk` (`spec/REGISTRY.md`).
pub const TOPK_ID: u32 = 0x0000_0104;

/// Factory of the `topk` codec.
#[derive(Debug)]
pub struct TopKCodec;

/// The registered `topk` codec.
pub static TOPK_CODEC: TopKCodec = TopKCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&TOPK_CODEC) }

const TOPK_DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: TOPK_ID,
    name: "topk",
    kind: StageKind::ArrayToBytes,
    version: 2,
    min_version: 1,
    lossless: false,
    summary: "top-k: the round(n * fraction) largest magnitudes, positions as Rice-coded gaps, values f32, bf16 or \
              through a nested pipeline",
    params: &[
        ParamInfo { name: "fraction", default: "0.01", help: "fraction of values kept, in (0, 1); stored over 2^32" },
        ParamInfo {
            name: "values",
            default: "f32",
            help: "f32 (exact), bf16 (16 bits per kept value) or a pipeline in parentheses, e.g. (m22:bits=4)",
        },
    ],
    examples: &["fraction=0.25,values=bf16", "fraction=0.5", "fraction=0.3,values=(f16+zstd:level=3)"],
};

impl CodecFactory for TopKCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &TOPK_DESCRIPTOR
    }
    /// Nested codecs are looked up among the linked ones ([`Registry::linked`]); a registry
    /// uses [`CodecFactory::params_from_text_in`] with itself.
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        self.params_from_text_in(text, &Registry::linked()?)
    }
    fn params_from_text_in(&self, text: &TextParams, registry: &Registry) -> Result<Vec<u8>> {
        Ok(TopKParams::from_text(text, registry)?.encode())
    }
    fn version_for(&self, params: &[u8]) -> u16 {
        TopKParams::decode(TOPK_DESCRIPTOR.version, params, &ANY_FIELD).map_or(TOPK_DESCRIPTOR.version, |p| p.version())
    }
    fn params_to_text(&self, version: u16, params: &[u8]) -> Result<String> {
        self.params_to_text_in(version, params, &Registry::linked()?)
    }
    fn params_to_text_in(&self, version: u16, params: &[u8], registry: &Registry) -> Result<String> {
        TopKParams::decode(version, params, &ANY_FIELD)?.to_text(registry)
    }
    fn build(&self, version: u16, params: &[u8]) -> Result<Stage> {
        self.build_in(version, params, &Registry::linked()?, &Limits::default())
    }
    fn build_in(&self, version: u16, params: &[u8], registry: &Registry, limits: &Limits) -> Result<Stage> {
        let params = TopKParams::decode(version, params, limits)?;
        Ok(Stage::ArrayToBytes(Box::new(TopKStage::new(params, registry, limits)?)))
    }
}

/// Limits no field width can exceed: rendering and versioning parameters that a reader (under
/// its own, perhaps raised, limits) already accepted must not refuse them.
const ANY_FIELD: Limits = Limits { max_stages: u8::MAX as u64, max_param_len: u16::MAX as u64, ..Limits::DEFAULT };

/// The core registry plus `randk` and `topk` (for tests and examples that do not link the facade).
#[must_use]
pub fn registry_with_sparsify() -> Registry {
    let mut registry = Registry::core_with(&RANDK_CODEC);
    registry.register_static(&TOPK_CODEC).unwrap_or_else(|e| unreachable!("topk's ID and name are free: {e}"));
    registry
}

impl CodecFactory for RandKCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(RandKParams::from_text(text)?.encode().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(RandKParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToArray(Box::new(RandKStage { params: RandKParams::decode(params)? })))
    }
}

struct RandKStage {
    params: RandKParams,
}

thread_local! {
    /// The position table, reused across chunks on one thread.
    static POSITIONS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Tables above this many positions are released after use instead of kept for the next chunk.
const KEEP_POSITIONS_UP_TO: usize = 1 << 21;

impl RandKStage {
    /// Calls `f` with the chunk's `k` positions (`partial_shuffle(n, k)` of a generator seeded
    /// with `chunk_seed(seed, name, chunk index)`).
    fn with_positions<T>(&self, n: usize, ctx: &ChunkContext<'_>, f: impl FnOnce(&[u32]) -> T) -> T {
        let k = self.params.kept(n);
        let mut rng = SeededRng::new(chunk_seed(self.params.seed, ctx.tensor_name, ctx.chunk_index));
        POSITIONS.with_borrow_mut(|table| {
            rng.partial_shuffle(n as u32, k, table);
            let out = f(&table[..k]);
            if table.capacity() > KEEP_POSITIONS_UP_TO {
                *table = Vec::new();
            }
            out
        })
    }
}

impl ArrayToArray for RandKStage {
    fn encoded_len(&self, len: usize) -> Result<usize> {
        if len > u32::MAX as usize {
            return Err(Error::new(
                ErrorCode::LimitExceeded,
                format!("randk chunks hold at most 2^32-1 values, this one {len}"),
            ));
        }
        Ok(self.params.kept(len))
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<f32>) -> Result<()> {
        self.encoded_len(input.len())?;
        out.clear();
        self.with_positions(input.len(), ctx, |positions| out.extend(positions.iter().map(|&p| input[p as usize])));
        Ok(())
    }

    fn decode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let k = self.encoded_len(out.len())?;
        if input.len() != k {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("randk chunk of {} values keeps {k}, got {}", out.len(), input.len()),
            ));
        }
        out.fill(0.0);
        let n = out.len();
        self.with_positions(n, ctx, |positions| match self.params.scaling {
            Scaling::None => positions.iter().zip(input).for_each(|(&p, &v)| out[p as usize] = v),
            Scaling::Unbiased => {
                let gamma = (n as f64 / k as f64) as f32;
                for (&p, &v) in positions.iter().zip(input) {
                    let y = v * gamma;
                    // The payload of a NaN from arithmetic differs between platforms (§8.2).
                    out[p as usize] = if y.is_nan() { f32::from_bits(0x7FC0_0000) } else { y };
                }
            }
        });
        Ok(())
    }

    fn is_linear(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
