//! Encoding and decoding of one CHUNK body (`spec/FORMAT.md` §6.3), shared by the writer and both
//! readers so the three agree on context, seeds and checks.

use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};
use crate::format::{ChunkHeader, TensorDescriptor};
use crate::pipeline::Pipeline;
use crate::rng::chunk_seed;
use crate::stage::ChunkContext;

/// What a chunk is encoded from: its values, or the array that enters the array->bytes stage.
enum ChunkInput<'a> {
    Values(&'a [f32]),
    Inner { inner: &'a [f32], len: usize },
}

impl<'a> From<&'a [f32]> for ChunkInput<'a> {
    fn from(values: &'a [f32]) -> Self {
        ChunkInput::Values(values)
    }
}

/// A tensor whose pipeline has been built: what is needed to encode or decode its chunks.
#[derive(Debug, Clone)]
pub struct TensorCodec {
    /// The tensor's descriptor.
    pub descriptor: Arc<TensorDescriptor>,
    /// Its built pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The stream seed.
    pub stream_seed: u64,
    /// The tensor's side information (`crate::side_info`), when its pipeline uses some.
    pub side: Option<Arc<[f32]>>,
}

impl TensorCodec {
    /// The context stages see for chunk `chunk_index`: position, seed, and the chunk's slice of
    /// the side information.
    #[must_use]
    pub fn context(&self, chunk_index: u64) -> ChunkContext<'_> {
        let d = &self.descriptor;
        let element_offset = chunk_index.saturating_mul(d.chunk_elements);
        let side = self.side.as_deref().and_then(|s| {
            let start = usize::try_from(element_offset).ok()?;
            let len = usize::try_from(d.chunk_len(chunk_index)).ok()?;
            s.get(start..start.checked_add(len)?)
        });
        ChunkContext {
            tensor_name: &d.name,
            tensor_id: d.tensor_id,
            chunk_index,
            element_offset,
            seed: chunk_seed(self.stream_seed, &d.name, chunk_index),
            side,
        }
    }

    /// Encodes chunk `chunk_index` (its `values`) into a complete CHUNK body.
    ///
    /// # Errors
    /// Codec errors, located at the tensor and chunk.
    pub fn encode_chunk(&self, chunk_index: u64, values: &[f32]) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        self.encode_chunk_into(chunk_index, values, &mut body)?;
        Ok(body)
    }

    /// As [`TensorCodec::encode_chunk`], replacing the contents of `body` (whose allocation is reused).
    ///
    /// # Errors
    /// Codec errors, located at the tensor and chunk.
    pub fn encode_chunk_into(&self, chunk_index: u64, values: &[f32], body: &mut Vec<u8>) -> Result<()> {
        self.encode_chunk_inner(chunk_index, values, body, None)
    }

    /// As [`TensorCodec::encode_chunk_into`], and appends to `reconstruction` the values every
    /// reader will decode from the chunk (what error feedback subtracts).
    ///
    /// # Errors
    /// Codec errors, located at the tensor and chunk.
    pub fn encode_chunk_reconstructing(
        &self,
        chunk_index: u64,
        values: &[f32],
        body: &mut Vec<u8>,
        reconstruction: &mut Vec<f32>,
    ) -> Result<()> {
        self.encode_chunk_inner(chunk_index, values, body, Some(reconstruction))
    }

    /// As [`TensorCodec::encode_chunk_into`] for a chunk of `len` values given as the array that
    /// enters the pipeline's array->bytes stage ([`Pipeline::encode_inner_chunk`]): the averaged
    /// coefficients of a projection, in aggregation.
    ///
    /// # Errors
    /// Codec errors, located at the tensor and chunk.
    pub fn encode_inner_chunk_into(
        &self,
        chunk_index: u64,
        inner: &[f32],
        len: usize,
        body: &mut Vec<u8>,
    ) -> Result<()> {
        self.encode_chunk_inner(chunk_index, ChunkInput::Inner { inner, len }, body, None)
    }

    fn encode_chunk_inner<'v>(
        &self,
        chunk_index: u64,
        input: impl Into<ChunkInput<'v>>,
        body: &mut Vec<u8>,
        reconstruction: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        let d = &self.descriptor;
        let locate = |e: Error| e.in_tensor(d.name.clone()).in_chunk(chunk_index);
        let ctx = self.context(chunk_index);
        body.clear();
        ChunkHeader { tensor_id: d.tensor_id, chunk_index, decoded_crc: 0 }.encode_into(body);
        let len = match input.into() {
            ChunkInput::Values(values) => {
                self.pipeline.encode_chunk(values, &ctx, body).map_err(locate)?;
                values.len()
            }
            ChunkInput::Inner { inner, len } => {
                self.pipeline.encode_inner_chunk(inner, len, &ctx, body).map_err(locate)?;
                len
            }
        };
        if !d.has_decoded_crc() && reconstruction.is_none() {
            return Ok(());
        }
        // Decode our own output: the CRC describes what every reader will get, and the round
        // trip checks the encoder (a lossy codec's output is only known after decoding).
        let mut decoded = vec![0f32; len];
        self.pipeline.decode_chunk(&body[crate::format::CHUNK_HEADER_LEN..], &ctx, &mut decoded).map_err(|e| {
            locate(if e.code() == ErrorCode::SideInfoMissing {
                // What readers decode depends on side information the writer was not given.
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "the writer has no side information for this tensor, so it cannot reconstruct what \
                         readers decode (error feedback, decoded checksums): {}",
                        e.detail()
                    ),
                )
            } else {
                Error::new(e.code(), format!("encoder self-check failed: {}", e.detail()))
            })
        })?;
        if d.has_decoded_crc() {
            let crc = values_crc(&decoded);
            body[16..20].copy_from_slice(&crc.to_le_bytes());
        }
        if let Some(r) = reconstruction {
            r.extend_from_slice(&decoded);
        }
        Ok(())
    }

    /// Checks the chunk header fields that do not need the payload: `decoded_crc32c` is zero
    /// unless the tensor sets DECODED_CRC.
    ///
    /// # Errors
    /// [`ErrorCode::ReservedNonzero`], located at the tensor and chunk.
    pub fn check_header(&self, header: &ChunkHeader) -> Result<()> {
        let d = &self.descriptor;
        if !d.has_decoded_crc() && header.decoded_crc != 0 {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                "decoded_crc32c must be zero when the tensor does not set DECODED_CRC",
            )
            .in_tensor(d.name.clone())
            .in_chunk(header.chunk_index));
        }
        Ok(())
    }

    /// Decodes a CHUNK's payload; `header` has already been matched to this tensor.
    ///
    /// # Errors
    /// Codec errors and [`ErrorCode::ChecksumDecoded`], located at the tensor and chunk.
    pub fn decode_chunk(&self, header: &ChunkHeader, payload: &[u8]) -> Result<Vec<f32>> {
        let d = &self.descriptor;
        let locate = |e: Error| e.in_tensor(d.name.clone()).in_chunk(header.chunk_index);
        self.check_header(header)?;
        let len = d.chunk_len(header.chunk_index) as usize;
        // The payload is checked against the pipeline's bound before the output is allocated.
        let bound = self.pipeline.bounds(len).map_err(locate)?.max_payload();
        if payload.len() > bound {
            return Err(locate(Error::new(
                ErrorCode::CodecOutputSize,
                format!(
                    "chunk payload of {} bytes exceeds the pipeline's bound of {bound} bytes for {len} values",
                    payload.len()
                ),
            )));
        }
        let mut values = vec![0f32; len];
        self.pipeline.decode_chunk(payload, &self.context(header.chunk_index), &mut values).map_err(locate)?;
        if d.has_decoded_crc() {
            let crc = values_crc(&values);
            if crc != header.decoded_crc {
                return Err(locate(Error::new(
                    ErrorCode::ChecksumDecoded,
                    format!("stored 0x{:08x}, computed 0x{crc:08x}", header.decoded_crc),
                )));
            }
        }
        Ok(values)
    }
}

/// CRC32C of f32 values as little-endian bytes.
#[must_use]
pub fn values_crc(values: &[f32]) -> u32 {
    let mut crc = 0;
    let mut buf = [0u8; 4096];
    for block in values.chunks(1024) {
        let bytes = &mut buf[..block.len() * 4];
        for (d, v) in bytes.chunks_exact_mut(4).zip(block) {
            d.copy_from_slice(&v.to_le_bytes());
        }
        crc = crc32c::crc32c_append(crc, bytes);
    }
    crc
}
