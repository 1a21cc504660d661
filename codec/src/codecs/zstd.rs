//! `zstd` (ID `0x10`, version 1): the input bytes as exactly one Zstandard frame (RFC 8878) whose
//! header declares its content size. Parameter: the compression level (informational for the
//! decoder, stored so `inspect` can show it).
//!
//! Decoding never trusts the frame: it requires a single frame with a declared content size no
//! larger than the bound the pipeline gives, then decompresses into a buffer of exactly that size,
//! so memory is known before decompression starts and a frame that would exceed it is refused.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::codec;
use crate::registry::{CodecDescriptor, CodecFactory, ParamInfo, TextParams};
use crate::stage::{BytesToBytes, Stage, StageKind};

/// Factory of the `zstd` codec.
#[derive(Debug)]
pub struct ZstdCodec;

/// The registered `zstd` codec.
pub static ZSTD_CODEC: ZstdCodec = ZstdCodec;

/// Magic number of a Zstandard (non-skippable) frame, little-endian 0xFD2FB528.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const DEFAULT_LEVEL: i32 = 3;
const MIN_LEVEL: i32 = -7;
const MAX_LEVEL: i32 = 22;

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: codec::ZSTD,
    name: "zstd",
    kind: StageKind::BytesToBytes,
    version: 1,
    min_version: 1,
    lossless: true,
    summary: "one Zstandard frame with its content size",
    params: &[ParamInfo { name: "level", default: "3", help: "compression level, -7..=22" }],
    examples: &["level=-3", "level=9"],
};

fn parse_level(params: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] = params.try_into().map_err(|_| {
        Error::new(
            ErrorCode::InvalidParams,
            format!("zstd parameters must be 4 bytes (level as i32), found {}", params.len()),
        )
    })?;
    let level = i32::from_le_bytes(bytes);
    if (MIN_LEVEL..=MAX_LEVEL).contains(&level) {
        Ok(level)
    } else {
        Err(Error::new(ErrorCode::InvalidParams, format!("zstd level {level} is outside {MIN_LEVEL}..={MAX_LEVEL}")))
    }
}

impl CodecFactory for ZstdCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, params: &TextParams) -> Result<Vec<u8>> {
        let level = params.int_in("level", i64::from(DEFAULT_LEVEL), i64::from(MIN_LEVEL)..=i64::from(MAX_LEVEL))?;
        Ok((level as i32).to_le_bytes().to_vec())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(format!("level={}", parse_level(params)?))
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::BytesToBytes(Box::new(ZstdStage { level: parse_level(params)? })))
    }
}

struct ZstdStage {
    level: i32,
}

fn data_error(detail: String) -> Error {
    Error::new(ErrorCode::CodecData, detail)
}

impl BytesToBytes for ZstdStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        // ZSTD_COMPRESSBOUND: len + len/256 + (len < 128 KiB ? (128 KiB - len) >> 11 : 0).
        let margin = if len < (128 << 10) { ((128 << 10) - len) >> 11 } else { 0 };
        len.checked_add(len >> 8)?.checked_add(margin)
    }

    fn encode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let frame = zstd::bulk::compress(input, self.level)
            .map_err(|e| Error::new(ErrorCode::Io, format!("zstd compression failed: {e}")))?;
        out.extend_from_slice(&frame);
        Ok(())
    }

    fn decode(&self, input: &[u8], max_decoded_len: usize, out: &mut Vec<u8>) -> Result<()> {
        if input.get(..4) != Some(&ZSTD_MAGIC[..]) {
            return Err(data_error(format!("payload does not start with the zstd frame magic {ZSTD_MAGIC:02x?}")));
        }
        let frame_len = zstd::zstd_safe::find_frame_compressed_size(input).map_err(|code| {
            data_error(format!("not a valid zstd frame ({})", zstd::zstd_safe::get_error_name(code)))
        })?;
        if frame_len != input.len() {
            return Err(data_error(format!(
                "payload must be exactly one zstd frame: frame is {frame_len} bytes, payload {}",
                input.len()
            )));
        }
        let content = match zstd::zstd_safe::get_frame_content_size(input) {
            Ok(Some(n)) => n,
            Ok(None) => return Err(data_error("zstd frame does not declare its content size".into())),
            Err(_) => return Err(data_error("zstd frame header is invalid".into())),
        };
        if content > max_decoded_len as u64 {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("zstd frame declares {content} bytes, the pipeline allows at most {max_decoded_len}"),
            ));
        }
        out.clear();
        out.reserve_exact(content as usize);
        let written = zstd::bulk::Decompressor::new()
            .and_then(|mut d| d.decompress_to_buffer(input, out))
            .map_err(|e| data_error(format!("zstd decompression failed: {e}")))?;
        if written as u64 != content {
            // libzstd itself refuses such frames; kept so no path can return a short buffer.
            return Err(data_error(format!("zstd frame produced {written} bytes but declared {content}")));
        }
        Ok(())
    }
}
