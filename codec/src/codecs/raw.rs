//! `raw` (ID `0x01`, version 1): each f32 as its 4 little-endian bytes. Lossless, no parameters.

use super::{expect_no_params, expect_payload_len};
use crate::error::Result;
use crate::ids::codec;
use crate::registry::{CodecDescriptor, CodecFactory, TextParams};
use crate::stage::{ArrayToBytes, ChunkContext, Stage, StageKind};

/// Factory of the `raw` codec.
#[derive(Debug)]
pub struct RawCodec;

/// The registered `raw` codec.
pub static RAW_CODEC: RawCodec = RawCodec;

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: codec::RAW,
    name: "raw",
    kind: StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: true,
    summary: "f32 little-endian, 32 bits per entry",
    params: &[],
    examples: &[],
};

impl CodecFactory for RawCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, _params: &TextParams) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        expect_no_params("raw", params)?;
        Ok(String::new())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        expect_no_params("raw", params)?;
        Ok(Stage::ArrayToBytes(Box::new(RawStage)))
    }
}

struct RawStage;

impl ArrayToBytes for RawStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        len.checked_mul(4)
    }

    fn encode(&self, input: &[f32], _ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + input.len() * 4, 0);
        for (dst, v) in out[start..].chunks_exact_mut(4).zip(input) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    fn decode(&self, bytes: &[u8], _ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        expect_payload_len("raw", bytes.len(), out.len(), 4)?;
        for (dst, src) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
        }
        Ok(())
    }
}
