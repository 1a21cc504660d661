//! A built, type-checked codec pipeline and the encode and decode of one chunk through it.
//!
//! Typing (`spec/FORMAT.md` §7): zero or more `array->array` stages, exactly one `array->bytes`
//! stage, zero or more `bytes->bytes` stages, in that order. Before a reader decodes any chunk it
//! computes, from the chunk length alone, the size of every intermediate array and an upper bound
//! on every intermediate byte buffer; each bound must fit the limits, and each decode call is told
//! the exact or maximum size it may produce.

use std::borrow::Cow;

use crate::error::{Error, ErrorCode, Result};
use crate::format::StageDescriptor;
use crate::limits::Limits;
use crate::registry::Registry;
use crate::side_info::SideInfoUse;
use crate::stage::{ArrayToArray, ArrayToBytes, BytesToBytes, ChunkContext, Stage};

/// A pipeline ready to encode or decode chunks.
pub struct Pipeline {
    array_stages: Vec<Box<dyn ArrayToArray>>,
    bytes_stage: Box<dyn ArrayToBytes>,
    byte_stages: Vec<Box<dyn BytesToBytes>>,
    lossless: bool,
    max_buffer: u64,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("array_stages", &self.array_stages.len())
            .field("byte_stages", &self.byte_stages.len())
            .field("lossless", &self.lossless)
            .finish_non_exhaustive()
    }
}

/// Sizes through the pipeline for one chunk length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkBounds {
    /// Array length before each array stage and after the last (`len + 1` entries).
    pub array_lens: Vec<usize>,
    /// Upper bound on the byte length after the array->bytes stage and after each bytes stage.
    pub byte_bounds: Vec<usize>,
}

impl ChunkBounds {
    /// Upper bound on the chunk payload.
    #[must_use]
    pub fn max_payload(&self) -> usize {
        self.byte_bounds.last().copied().unwrap_or(0)
    }
}

impl Pipeline {
    /// Builds every stage and checks the stage order.
    ///
    /// # Errors
    /// [`ErrorCode::UnsupportedCodec`] for unknown IDs or versions, [`ErrorCode::InvalidParams`]
    /// from a codec, [`ErrorCode::PipelineInvalid`] for a bad stage order,
    /// [`ErrorCode::LimitExceeded`] for too many stages.
    pub fn build(registry: &Registry, stages: &[StageDescriptor], limits: &Limits) -> Result<Pipeline> {
        Limits::check(stages.len() as u64, limits.max_stages, "number of pipeline stages")?;
        let mut array_stages = Vec::new();
        let mut bytes_stage = None;
        let mut byte_stages = Vec::new();
        let mut lossless = true;
        for (i, s) in stages.iter().enumerate() {
            let factory = registry.factory_for(s)?;
            let d = factory.descriptor();
            lossless &= d.lossless;
            let misplaced = |what: &str| {
                Error::new(
                    ErrorCode::PipelineInvalid,
                    format!(
                        "stage {i} ({}, {}) {what}; a pipeline is array->array* array->bytes bytes->bytes*",
                        d.name,
                        d.kind.as_str()
                    ),
                )
            };
            match factory
                .build_in(s.version, &s.params, registry, limits)
                .map_err(|e| Error::new(e.code(), format!("codec {:?}: {}", d.name, e.detail())))?
            {
                Stage::ArrayToArray(st) if bytes_stage.is_none() => array_stages.push(st),
                Stage::ArrayToArray(_) => return Err(misplaced("comes after the array->bytes stage")),
                Stage::ArrayToBytes(st) if bytes_stage.is_none() => bytes_stage = Some(st),
                Stage::ArrayToBytes(_) => return Err(misplaced("is a second array->bytes stage")),
                Stage::BytesToBytes(st) if bytes_stage.is_some() => byte_stages.push(st),
                Stage::BytesToBytes(_) => return Err(misplaced("comes before the array->bytes stage")),
            }
        }
        let bytes_stage =
            bytes_stage.ok_or_else(|| Error::new(ErrorCode::PipelineInvalid, "pipeline has no array->bytes stage"))?;
        if !array_stages.is_empty() && bytes_stage.side_info() != SideInfoUse::None {
            // Side information stands beside the tensor's elements, not a projection of them.
            return Err(Error::new(
                ErrorCode::PipelineInvalid,
                "a stage that decodes against side information cannot follow array->array stages",
            ));
        }
        Ok(Pipeline { array_stages, bytes_stage, byte_stages, lossless, max_buffer: limits.max_record_body })
    }

    /// Whether the pipeline decodes against side information, and which: its array->bytes
    /// stage's [`ArrayToBytes::side_info`].
    #[must_use]
    pub fn side_info(&self) -> SideInfoUse {
        self.bytes_stage.side_info()
    }

    /// Whether every stage is lossless.
    #[must_use]
    pub fn is_lossless(&self) -> bool {
        self.lossless
    }

    /// Sizes of every intermediate buffer for a chunk of `len` values.
    ///
    /// # Errors
    /// [`ErrorCode::LimitExceeded`] when a bound overflows or exceeds the record body limit.
    pub fn bounds(&self, len: usize) -> Result<ChunkBounds> {
        let mut array_lens = vec![len];
        let mut n = len;
        for st in &self.array_stages {
            n = st.encoded_len(n)?;
            array_lens.push(n);
        }
        let overflow = || {
            Error::new(ErrorCode::LimitExceeded, format!("pipeline size bound for a chunk of {len} values overflows"))
        };
        let mut b = self.bytes_stage.max_encoded_len(n).ok_or_else(overflow)?;
        let mut byte_bounds = vec![b];
        for st in &self.byte_stages {
            b = st.max_encoded_len(b).ok_or_else(overflow)?;
            byte_bounds.push(b);
        }
        for &b in &byte_bounds {
            Limits::check(b as u64, self.max_buffer, "pipeline buffer bound in bytes")?;
        }
        Ok(ChunkBounds { array_lens, byte_bounds })
    }

    /// Encodes one chunk, appending the payload to `out`.
    ///
    /// # Errors
    /// Codec errors, or [`ErrorCode::CodecOutputSize`] if a stage breaks its own size bound.
    pub fn encode_chunk(&self, values: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        let bounds = self.bounds(values.len())?;
        let mut owned: Option<Vec<f32>> = None;
        for (i, st) in self.array_stages.iter().enumerate() {
            let mut next = Vec::with_capacity(bounds.array_lens[i + 1]);
            st.encode(owned.as_deref().unwrap_or(values), ctx, &mut next)?;
            if next.len() != bounds.array_lens[i + 1] {
                return Err(Error::new(
                    ErrorCode::CodecOutputSize,
                    format!("array stage {i} produced {} values, declared {}", next.len(), bounds.array_lens[i + 1]),
                ));
            }
            owned = Some(next);
        }
        let current = owned.as_deref().unwrap_or(values);
        self.encode_inner(current, ctx, &bounds, out)
    }

    /// Whether the pipeline has array->array stages (of any kind).
    #[must_use]
    pub fn has_array_stages(&self) -> bool {
        !self.array_stages.is_empty()
    }

    /// Whether the pipeline has array->array stages, all of them linear
    /// ([`ArrayToArray::is_linear`]): a weighted mean can then be taken of the arrays that enter
    /// its array->bytes stage ([`Pipeline::accumulate_inner_chunk`], [`Pipeline::encode_inner_chunk`]).
    #[must_use]
    pub fn has_linear_projection(&self) -> bool {
        !self.array_stages.is_empty() && self.array_stages.iter().all(|s| s.is_linear())
    }

    /// Encodes a chunk of `len` values given the array that enters the array->bytes stage (the
    /// output of every array->array stage, `bounds(len).array_lens.last()` values), appending the
    /// payload to `out`.
    ///
    /// # Errors
    /// As [`Pipeline::encode_chunk`]; [`ErrorCode::InvalidArgument`] when `inner` has the wrong length.
    pub fn encode_inner_chunk(
        &self,
        inner: &[f32],
        len: usize,
        ctx: &ChunkContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let bounds = self.bounds(len)?;
        if bounds.array_lens.last() != Some(&inner.len()) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "a chunk of {len} values enters the array->bytes stage as {:?} values, not {}",
                    bounds.array_lens.last(),
                    inner.len()
                ),
            ));
        }
        self.encode_inner(inner, ctx, &bounds, out)
    }

    /// The array->bytes and bytes->bytes stages of [`Pipeline::encode_chunk`].
    fn encode_inner(
        &self,
        current: &[f32],
        ctx: &ChunkContext<'_>,
        bounds: &ChunkBounds,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let start = out.len();
        if self.byte_stages.is_empty() {
            self.bytes_stage.encode(current, ctx, out)?;
        } else {
            let mut bytes = Vec::with_capacity(bounds.byte_bounds[0]);
            self.bytes_stage.encode(current, ctx, &mut bytes)?;
            let last = self.byte_stages.len() - 1;
            for (i, st) in self.byte_stages.iter().enumerate() {
                if i == last {
                    st.encode(&bytes, out)?;
                } else {
                    let mut next = Vec::with_capacity(bounds.byte_bounds[i + 1]);
                    st.encode(&bytes, &mut next)?;
                    bytes = next;
                }
            }
        }
        let produced = out.len() - start;
        if produced > bounds.max_payload() {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("encoder produced {produced} bytes, more than its declared bound {}", bounds.max_payload()),
            ));
        }
        Ok(())
    }

    /// Adds `weight` times the decoded chunk to `acc` (aggregation): through the array->bytes
    /// stage's [`ArrayToBytes::accumulate`] when the pipeline has no array->array stage, so
    /// codecs that can add from their payload never materialize the decoded values.
    ///
    /// # Errors
    /// As [`Pipeline::decode_chunk`].
    pub fn accumulate_chunk(&self, payload: &[u8], weight: f32, ctx: &ChunkContext<'_>, acc: &mut [f32]) -> Result<()> {
        if !self.array_stages.is_empty() {
            let mut decoded = vec![0f32; acc.len()];
            self.decode_chunk(payload, ctx, &mut decoded)?;
            for (a, d) in acc.iter_mut().zip(&decoded) {
                *a += weight * d;
            }
            return Ok(());
        }
        let bounds = self.bounds(acc.len())?;
        let bytes = self.unwrap_bytes(payload, &bounds, acc.len())?;
        self.bytes_stage.accumulate(&bytes, weight, ctx, acc)
    }

    /// Adds `weight` times the array that enters the array->bytes stage, decoded from the payload
    /// of a chunk of `len` values, to `acc` (`bounds(len).array_lens.last()` values): the
    /// coefficients of a projection, for aggregation without expanding them.
    ///
    /// # Errors
    /// As [`Pipeline::decode_chunk`]; [`ErrorCode::InvalidArgument`] when `acc` has the wrong length.
    pub fn accumulate_inner_chunk(
        &self,
        payload: &[u8],
        len: usize,
        weight: f32,
        ctx: &ChunkContext<'_>,
        acc: &mut [f32],
    ) -> Result<()> {
        let bounds = self.bounds(len)?;
        if bounds.array_lens.last() != Some(&acc.len()) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "a chunk of {len} values enters the array->bytes stage as {:?} values, not {}",
                    bounds.array_lens.last(),
                    acc.len()
                ),
            ));
        }
        let bytes = self.unwrap_bytes(payload, &bounds, len)?;
        self.bytes_stage.accumulate(&bytes, weight, ctx, acc)
    }

    /// Writes the packed sign plane of the decoded chunk (`crate::signs` layout) into `out`:
    /// copied from the payload when the codec stores one ([`ArrayToBytes::sign_plane`]),
    /// otherwise decoded and packed.
    ///
    /// # Errors
    /// As [`Pipeline::decode_chunk`].
    pub fn sign_plane_chunk(&self, payload: &[u8], ctx: &ChunkContext<'_>, n: usize, out: &mut [u8]) -> Result<()> {
        if self.array_stages.is_empty() {
            let bounds = self.bounds(n)?;
            let bytes = self.unwrap_bytes(payload, &bounds, n)?;
            if self.bytes_stage.sign_plane(&bytes, ctx, n, out)? {
                return Ok(());
            }
        }
        let mut decoded = vec![0f32; n];
        self.decode_chunk(payload, ctx, &mut decoded)?;
        crate::signs::pack(&decoded, out);
        Ok(())
    }

    /// Undoes the bytes->bytes stages: the array->bytes stage's encoding of a chunk of `n` values.
    fn unwrap_bytes<'p>(&self, payload: &'p [u8], bounds: &ChunkBounds, n: usize) -> Result<Cow<'p, [u8]>> {
        if payload.len() > bounds.max_payload() {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!(
                    "chunk payload of {} bytes exceeds the pipeline's bound of {} bytes for {n} values",
                    payload.len(),
                    bounds.max_payload(),
                ),
            ));
        }
        let mut bytes = Cow::Borrowed(payload);
        for (i, st) in self.byte_stages.iter().enumerate().rev() {
            let mut next = Vec::new();
            st.decode(&bytes, bounds.byte_bounds[i], &mut next)?;
            if next.len() > bounds.byte_bounds[i] {
                return Err(Error::new(
                    ErrorCode::CodecOutputSize,
                    format!("bytes stage {i} produced {} bytes, bound is {}", next.len(), bounds.byte_bounds[i]),
                ));
            }
            bytes = Cow::Owned(next);
        }
        Ok(bytes)
    }

    /// Decodes one chunk payload into exactly `out.len()` values.
    ///
    /// # Errors
    /// [`ErrorCode::CodecOutputSize`] when the payload exceeds the pipeline bound or a stage
    /// produces the wrong size, or any codec error.
    pub fn decode_chunk(&self, payload: &[u8], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let bounds = self.bounds(out.len())?;
        let bytes = self.unwrap_bytes(payload, &bounds, out.len())?;
        let bytes: &[u8] = &bytes;
        let Some((&inner_len, _)) = bounds.array_lens.split_last() else { return Ok(()) };
        if self.array_stages.is_empty() {
            return self.bytes_stage.decode(bytes, ctx, out);
        }
        let mut current = vec![0f32; inner_len];
        self.bytes_stage.decode(bytes, ctx, &mut current)?;
        for (i, st) in self.array_stages.iter().enumerate().rev() {
            if i == 0 {
                st.decode(&current, ctx, out)?;
            } else {
                let mut prev = vec![0f32; bounds.array_lens[i]];
                st.decode(&current, ctx, &mut prev)?;
                current = prev;
            }
        }
        Ok(())
    }
}
