//! # gradwire-signsgd
//!
//! The `signsgd` codec (ID `0x00000100`, `spec/CODECS.md` §5): one truly packed bit per entry
//! (1 = negative; zero counts as +1) plus a scale, for signSGD (Bernstein et al. 2018), scaled
//! sign / EF-signSGD (Karimireddy et al. 2019) and majority vote (Bernstein et al. 2019).
//!
//! Scales (`signsgd:scale=none|mean|block,block=N`):
//! - `none`: decoded values are +1 and -1;
//! - `mean` (default): one f32 per chunk, the mean absolute value of the chunk, so decoded values
//!   have the input's L1 norm (the scaled sign of EF-signSGD, per chunk);
//! - `block`: one mean absolute value per block of `N` values (a multiple of 32), for tensors whose
//!   magnitude varies along their length.
//!
//! The codec implements both aggregation capabilities of the core: its sign plane is copied out
//! for majority votes, and weighted means add `±weight·scale` straight from the bits.
//!
//! Use it with error feedback (`gradwire_codec::ErrorFeedback`) for EF-signSGD.
//!
//! ```
//! use gradwire_codec::{Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_signsgd::registry_with_signsgd();
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.write_tensor(TensorSpec::new("g", &[4], registry.parse_pipeline("signsgd")?), &[0.5, -1.5, 0.0, 1.0])?;
//! let bytes = w.finish()?;
//! let values = Reader::new(&bytes[..], &registry).read_all()?.tensors.remove(0).values;
//! assert_eq!(values, [0.75, -0.75, 0.75, 0.75]); // signs (0 -> +1) times the mean |x|
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

mod params;

use gradwire_codec::signs;
use gradwire_codec::{
    ArrayToBytes, ChunkContext, CodecDescriptor, CodecFactory, Error, ErrorCode, ParamInfo, Registry, Result, Stage,
    StageKind, TextParams,
};

pub use params::{Scale, SignParams};

/// Wire ID of `signsgd` (`spec/REGISTRY.md`).
pub const SIGNSGD_ID: u32 = 0x0000_0100;

/// Factory of the `signsgd` codec.
#[derive(Debug)]
pub struct SignSgdCodec;

/// The registered `signsgd` codec.
pub static SIGNSGD_CODEC: SignSgdCodec = SignSgdCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&SIGNSGD_CODEC) }

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: SIGNSGD_ID,
    name: "signsgd",
    kind: StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "one packed sign bit per entry (0 -> +1) plus none, one, or per-block mean |x| scales",
    params: &[
        ParamInfo { name: "scale", default: "mean", help: "none (+-1), mean (one mean |x| per chunk) or block" },
        ParamInfo { name: "block", default: "4096", help: "values per scale with scale=block; a multiple of 32" },
    ],
    examples: &["scale=none", "scale=block,block=32"],
};

/// The core registry plus `signsgd` (for tests and examples that do not link the facade).
#[must_use]
pub fn registry_with_signsgd() -> Registry {
    Registry::core_with(&SIGNSGD_CODEC)
}

impl CodecFactory for SignSgdCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(SignParams::from_text(text)?.encode().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(SignParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToBytes(Box::new(SignSgdStage { params: SignParams::decode(params)? })))
    }
}

/// The built stage.
struct SignSgdStage {
    params: SignParams,
}

impl SignSgdStage {
    /// Checks an untrusted payload of `n` values; returns its scales (as read) and sign plane.
    fn split<'b>(&self, bytes: &'b [u8], n: usize) -> Result<(&'b [u8], &'b [u8])> {
        let n_scales = self.params.n_scales(n);
        let expected = n_scales.checked_mul(4).and_then(|s| s.checked_add(signs::packed_len(n)));
        if expected != Some(bytes.len()) {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!(
                    "signsgd payload of {} bytes does not hold {n_scales} scales and {n} sign bits ({expected:?} bytes)",
                    bytes.len()
                ),
            ));
        }
        let (scales, bits) = bytes.split_at(n_scales * 4);
        for (i, s) in scales.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            if v >> 31 != 0 || v & 0x7F80_0000 == 0x7F80_0000 {
                return Err(Error::new(
                    ErrorCode::CodecData,
                    format!("signsgd scale {i} is 0x{v:08x}; a scale must be finite with its sign bit clear"),
                ));
            }
        }
        if !signs::padding_is_zero(bits, n) {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                "signsgd padding bits after the last value are not zero",
            ));
        }
        Ok((scales, bits))
    }

    /// Calls `apply(bits, scale, range)` for each run of values that shares a scale.
    fn for_each_run(
        &self,
        scales: &[u8],
        bits: &[u8],
        n: usize,
        mut apply: impl FnMut(&[u8], f32, std::ops::Range<usize>),
    ) {
        let scale_at =
            |i: usize| f32::from_le_bytes([scales[4 * i], scales[4 * i + 1], scales[4 * i + 2], scales[4 * i + 3]]);
        match self.params.scale {
            Scale::None => apply(bits, 1.0, 0..n),
            Scale::Mean if n == 0 => {}
            Scale::Mean => apply(bits, scale_at(0), 0..n),
            Scale::Block(block) => {
                let block = block as usize;
                for (i, start) in (0..n).step_by(block).enumerate() {
                    let end = (start + block).min(n);
                    apply(&bits[start / 8..signs::packed_len(end)], scale_at(i), start..end);
                }
            }
        }
    }
}

/// The mean |x| of a run as f32. A positive mean that rounds to zero becomes the smallest
/// subnormal, so a negative value never decodes as `-0.0` (which is not `< 0`, CODECS.md §5).
fn scale_of(sum: f64, len: usize) -> Result<f32> {
    let scale = (sum / len as f64) as f32;
    if scale == 0.0 && sum > 0.0 {
        Ok(f32::from_bits(1))
    } else if scale.is_finite() {
        Ok(scale)
    } else {
        Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("signsgd cannot scale values whose mean |x| is {scale} (the input holds inf or NaN)"),
        ))
    }
}

impl ArrayToBytes for SignSgdStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        self.params.n_scales(len).checked_mul(4)?.checked_add(signs::packed_len(len))
    }

    fn encode(&self, input: &[f32], _ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        let n = input.len();
        let n_scales = self.params.n_scales(n);
        let start = out.len();
        out.resize(start + n_scales * 4 + signs::packed_len(n), 0);
        let (scales, bits) = out[start..].split_at_mut(n_scales * 4);
        match self.params.scale {
            Scale::None => signs::pack(input, bits),
            Scale::Mean => {
                let sum = signs::pack_with_abs_sum(input, bits);
                if n > 0 {
                    scales.copy_from_slice(&scale_of(sum, n)?.to_le_bytes());
                }
            }
            Scale::Block(block) => {
                let block = block as usize;
                for ((values, b), s) in
                    input.chunks(block).zip(bits.chunks_mut(block / 8)).zip(scales.chunks_exact_mut(4))
                {
                    let sum = signs::pack_with_abs_sum(values, b);
                    s.copy_from_slice(&scale_of(sum, values.len())?.to_le_bytes());
                }
            }
        }
        Ok(())
    }

    fn decode(&self, bytes: &[u8], _ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let (scales, bits) = self.split(bytes, n)?;
        self.for_each_run(scales, bits, n, |b, s, range| signs::unpack_scaled(b, s, &mut out[range]));
        Ok(())
    }

    fn accumulate(&self, bytes: &[u8], weight: f32, _ctx: &ChunkContext<'_>, acc: &mut [f32]) -> Result<()> {
        let n = acc.len();
        let (scales, bits) = self.split(bytes, n)?;
        self.for_each_run(scales, bits, n, |b, s, range| signs::accumulate_scaled(b, weight * s, &mut acc[range]));
        Ok(())
    }

    fn sign_plane(&self, bytes: &[u8], _ctx: &ChunkContext<'_>, n: usize, out: &mut [u8]) -> Result<bool> {
        let (scales, bits) = self.split(bytes, n)?;
        out.copy_from_slice(bits);
        // A run with a zero scale decodes to ±0, and neither is `< 0`: its plane counts as +1.
        // (Conforming encoders never write such a run with a set bit, but it is valid.)
        self.for_each_run(scales, bits, n, |_, s, range| {
            if s == 0.0 {
                out[range.start / 8..signs::packed_len(range.end)].fill(0);
            }
        });
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
