//! # gradwire-dither
//!
//! Codecs that quantize `x / ||x||` to signed levels on a uniform grid (`spec/CODECS.md` §10):
//!
//! - `qsgd` (ID `0x00000105`, Alistarh et al. 2017): `s` levels, stochastic rounding, so the
//!   decoded chunk is an unbiased estimate of the input with
//!   `E ||C(x) - x||^2 <= min(n / s^2, sqrt(n) / s) ||x||^2`.
//! - `sparse-dither` (ID `0x00000106`, Albasyoni, Safaryan, Condat, Richtárik 2020): grid step
//!   `2 sqrt(nu / n) ||x||`; the deterministic variant rounds to the nearest level, so
//!   `||C(x) - x||^2 <= nu ||x||^2` holds for every input chunk; the unbiased variant rounds
//!   stochastically (`E ||C(x) - x||^2 <= nu ||x||^2`).
//!
//! Both write the same chunk (§10.2): the f32 step, then only the nonzero levels: positions as
//! Golomb-Rice coded gaps, one sign bit each, and magnitudes as a constant, a Rice code or a
//! Huffman code, whichever is shortest. The decoder multiplies, nothing else: it never sees
//! nu or the norm. Stochastic rounding draws from the chunk's seed (the stream seed, tensor name
//! and chunk index), so give every round its own stream seed to get fresh dither.
//!
//! ```
//! use gradwire_codec::{Reader, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_dither::registry_with_dither();
//! let g: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 - 500.0).collect();
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.write_tensor(TensorSpec::new("g", &[1000], registry.parse_pipeline("sparse-dither:nu=0.1")?), &g)?;
//! let y = Reader::new(&w.finish()?[..], &registry).read_all()?.tensors.remove(0).values;
//! let error: f64 = g.iter().zip(&y).map(|(a, b)| f64::from(a - b).powi(2)).sum();
//! let energy: f64 = g.iter().map(|a| f64::from(*a).powi(2)).sum();
//! assert!(error <= 0.1 * energy);
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

mod levels;
mod params;
mod quantize;

use gradwire_codec::{CodecDescriptor, CodecFactory, ParamInfo, Registry, Result, Stage, StageKind, TextParams};

pub use levels::MAX_MAGNITUDE;
pub use params::{MAX_LEVELS, NU_RANGE, QsgdParams, SparseDitherParams, Variant};
pub use quantize::{QsgdStage, SparseDitherStage};

/// Wire ID of `qsgd` (`spec/REGISTRY.md`).
pub const QSGD_ID: u32 = 0x0000_0105;

/// Wire ID of `sparse-dither` (`spec/REGISTRY.md`).
pub const SPARSE_DITHER_ID: u32 = 0x0000_0106;

/// Factory of the `qsgd` codec.
#[derive(Debug)]
pub struct QsgdCodec;

/// The registered `qsgd` codec.
pub static QSGD_CODEC: QsgdCodec = QsgdCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&QSGD_CODEC) }

const QSGD_DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: QSGD_ID,
    name: "qsgd",
    kind: StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "QSGD: |x|/||x|| stochastically rounded to s levels (unbiased), nonzeros coded by position, sign, level",
    params: &[ParamInfo { name: "levels", default: "8", help: "s, the number of nonzero levels, 1..=2^24" }],
    examples: &["levels=1", "levels=4", "levels=255"],
};

impl CodecFactory for QsgdCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &QSGD_DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(QsgdParams::from_text(text)?.encode().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(QsgdParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToBytes(Box::new(QsgdStage { params: QsgdParams::decode(params)? })))
    }
}

/// Factory of the `sparse-dither` codec.
#[derive(Debug)]
pub struct SparseDitherCodec;

/// The registered `sparse-dither` codec.
pub static SPARSE_DITHER_CODEC: SparseDitherCodec = SparseDitherCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&SPARSE_DITHER_CODEC) }

const SPARSE_DITHER_DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: SPARSE_DITHER_ID,
    name: "sparse-dither",
    kind: StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "sparse dithering: grid step 2 sqrt(nu/n) ||x||, ||C(x)-x||^2 <= nu ||x||^2 (deterministic) or unbiased",
    params: &[
        ParamInfo { name: "nu", default: "0.1", help: "error budget relative to ||x||^2, in [1e-6, 16]" },
        ParamInfo {
            name: "variant",
            default: "deterministic",
            help: "deterministic (nearest level, guaranteed) or unbiased (stochastic rounding)",
        },
    ],
    examples: &["nu=0.1", "nu=0.01", "nu=0.25,variant=unbiased"],
};

impl CodecFactory for SparseDitherCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &SPARSE_DITHER_DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(SparseDitherParams::from_text(text)?.encode().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(SparseDitherParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToBytes(Box::new(SparseDitherStage { params: SparseDitherParams::decode(params)? })))
    }
}

/// The core registry plus `qsgd` and `sparse-dither` (for tests and examples that do not link
/// the facade).
#[must_use]
pub fn registry_with_dither() -> Registry {
    let mut registry = Registry::core_with(&QSGD_CODEC);
    registry
        .register_static(&SPARSE_DITHER_CODEC)
        .unwrap_or_else(|e| unreachable!("sparse-dither's ID and name are free: {e}"));
    registry
}

#[cfg(test)]
mod tests;
