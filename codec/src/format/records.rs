//! Bodies of the record types of format 1.0 (`spec/FORMAT.md` §6): their fields, their
//! serialization, and every check a reader makes on a single body. Checks that span records
//! (ordering, open tensors, END totals) live in [`crate::stream`].

use super::metadata::Metadata;
use super::wire::{Cursor, PutLe};
use crate::error::{Error, ErrorCode, Result, ensure};
use crate::ids::{codec, feature, tensor_flags};
use crate::limits::Limits;

/// The dtype a producer held a tensor in. Pipelines operate on f32 in format 1; the dtype tells a
/// consumer what to cast back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// IEEE binary32 (code 1).
    F32,
    /// IEEE binary16 (code 2).
    F16,
    /// bfloat16 (code 3).
    BF16,
    /// IEEE binary64 (code 4).
    F64,
}

impl DType {
    /// The wire code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F16 => 2,
            DType::BF16 => 3,
            DType::F64 => 4,
        }
    }

    /// Parses a wire code.
    ///
    /// # Errors
    /// [`ErrorCode::UnsupportedDtype`] for codes not defined in format 1.0.
    pub fn from_code(code: u8) -> Result<DType> {
        Ok(match code {
            1 => DType::F32,
            2 => DType::F16,
            3 => DType::BF16,
            4 => DType::F64,
            other => {
                return Err(Error::new(
                    ErrorCode::UnsupportedDtype,
                    format!("dtype code {other} is not defined in format 1.0"),
                ));
            }
        })
    }

    /// Lower-case name (`f32`, `f16`, `bf16`, `f64`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
        }
    }
}

/// The number of elements of a shape: 0 if any dimension is 0, otherwise the product computed
/// left to right with overflow checks (`None` on overflow).
#[must_use]
pub fn shape_product(shape: &[u64]) -> Option<u64> {
    if shape.contains(&0) { Some(0) } else { shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)) }
}

/// Whether `name` is a valid codec name (`^[a-z][a-z0-9_.-]*$`, at most 255 bytes).
#[must_use]
pub fn is_valid_codec_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_lowercase()
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-'))
}

/// Body of STREAM_HEADER.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamHeader {
    /// Required feature bits; a reader rejects any it does not know. None are defined in 1.0.
    pub required_features: u64,
    /// Optional feature bits; a reader ignores any it does not know.
    pub optional_features: u64,
    /// Stream seed from which per-chunk seeds are derived (`crate::rng::chunk_seed`).
    pub seed: u64,
    /// Key-value metadata (FL round, client, example count, ...).
    pub metadata: Metadata,
}

impl StreamHeader {
    /// Serializes the body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u64(self.required_features);
        out.put_u64(self.optional_features);
        out.put_u64(self.seed);
        self.metadata.encode_into(&mut out);
        out
    }

    /// Parses and validates the body (unknown required features are rejected).
    pub fn decode(bytes: &[u8], base: u64) -> Result<StreamHeader> {
        let mut c = Cursor::new(bytes, base);
        let required_features = c.u64("required_features")?;
        // Checked before anything after it is parsed: an unknown feature may change that layout.
        let unknown = required_features & !feature::KNOWN_REQUIRED;
        if unknown != 0 {
            return Err(Error::new(
                ErrorCode::UnsupportedFeature,
                format!("required feature bits 0x{unknown:016x} are not implemented by this reader"),
            )
            .at_offset(base));
        }
        let optional_features = c.u64("optional_features")?;
        let seed = c.u64("seed")?;
        let metadata = Metadata::decode_from(&mut c)?;
        c.finish("stream header")?;
        Ok(StreamHeader { required_features, optional_features, seed, metadata })
    }
}

/// One stage of a pipeline as it appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageDescriptor {
    /// Codec ID (`spec/REGISTRY.md`).
    pub codec_id: u32,
    /// Codec format version.
    pub version: u16,
    /// Codec parameters, in the codec's own layout (`spec/CODECS.md`).
    pub params: Vec<u8>,
    /// Name, present exactly when `codec_id` is in the private range.
    pub private_name: Option<String>,
}

impl StageDescriptor {
    /// Appends the stage entry (`u32 codec_id, u16 version, u16 param_len, params`, then for a
    /// private ID `u8 name_len, name`; FORMAT.md §6.2).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_u32(self.codec_id);
        out.put_u16(self.version);
        out.put_u16(self.params.len() as u16);
        out.extend_from_slice(&self.params);
        if let Some(name) = &self.private_name {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
    }

    /// Reads one stage entry, refusing a `param_len` above the limit before taking the bytes.
    fn decode_from(c: &mut Cursor<'_>, limits: &Limits) -> Result<StageDescriptor> {
        let codec_id = c.u32("codec_id")?;
        let version = c.u16("codec_version")?;
        let param_len = c.u16("param_len")?;
        Limits::check(u64::from(param_len), limits.max_param_len, "codec parameter length")
            .map_err(|e| e.at_offset(c.offset()))?;
        let params = c.take(usize::from(param_len), "codec params")?.to_vec();
        let private_name = if codec::is_private(codec_id) {
            let len = c.u8("private codec name_len")?;
            let at = c.offset();
            let text = std::str::from_utf8(c.take(usize::from(len), "private codec name")?)
                .map_err(|_| Error::new(ErrorCode::Malformed, "private codec name is not UTF-8").at_offset(at))?;
            Some(text.to_owned())
        } else {
            None
        };
        Ok(StageDescriptor { codec_id, version, params, private_name })
    }

    /// The checks on one entry that need no registry: parameter length, a valid ID, a name
    /// exactly for private IDs.
    fn validate(&self, limits: &Limits) -> Result<()> {
        Limits::check(self.params.len() as u64, limits.max_param_len, "codec parameter length")?;
        ensure(self.codec_id != 0 && self.codec_id != u32::MAX, ErrorCode::UnsupportedCodec, || {
            format!("codec ID 0x{:08x} is invalid", self.codec_id)
        })?;
        ensure(codec::is_private(self.codec_id) == self.private_name.is_some(), ErrorCode::Malformed, || {
            "private codec IDs, and only they, carry a name".into()
        })?;
        if let Some(name) = &self.private_name {
            ensure(is_valid_codec_name(name) && name.contains('.'), ErrorCode::Malformed, || {
                format!("private codec name {name:?} is not a vendor.codec name")
            })?;
        }
        Ok(())
    }

    /// A pipeline nested in a codec's parameters (`topk`'s values, CODECS.md §9): `u8 n_stages`
    /// and the stage entries as in TENSOR_BEGIN.
    ///
    /// The caller keeps to the field widths, as [`crate::Registry::parse_pipeline`] does: 1 to 255
    /// stages, parameters of at most 65,535 bytes, private names of at most 255 bytes (longer ones
    /// would be cut, and a reader refuses an empty list).
    #[must_use]
    pub fn encode_list(stages: &[StageDescriptor]) -> Vec<u8> {
        let mut out = vec![stages.len() as u8];
        for s in stages {
            s.encode_into(&mut out);
        }
        out
    }

    /// Parses a nested pipeline written by [`StageDescriptor::encode_list`] from untrusted bytes,
    /// in TENSOR_BEGIN's order: `n_stages ≤ max_stages` and each `param_len ≤ max_param_len` when
    /// read; every entry present and no byte left over; `n_stages ≥ 1`; each entry's ID and name.
    /// Offsets in errors are not stream offsets: they are dropped.
    ///
    /// # Errors
    /// [`ErrorCode::PipelineInvalid`] for no stage, [`ErrorCode::LimitExceeded`] for too many
    /// stages or parameter bytes, [`ErrorCode::InvalidParams`] for bytes that do not parse (too
    /// few, too many, a private name that is not one), [`ErrorCode::UnsupportedCodec`] for ID 0
    /// or `0xFFFFFFFF`.
    pub fn decode_list(bytes: &[u8], limits: &Limits) -> Result<Vec<StageDescriptor>> {
        StageDescriptor::decode_list_unmapped(bytes, limits).map_err(|e| {
            let code = match e.code() {
                ErrorCode::Truncated | ErrorCode::Malformed => ErrorCode::InvalidParams,
                code => code,
            };
            Error::new(code, format!("nested pipeline: {}", e.detail()))
        })
    }

    /// The order of TENSOR_BEGIN (FORMAT.md §6.0): limits when their field is read, then the
    /// whole list parsed with nothing left over, then the rules on the parsed entries.
    fn decode_list_unmapped(bytes: &[u8], limits: &Limits) -> Result<Vec<StageDescriptor>> {
        let mut c = Cursor::new(bytes, 0);
        let n_stages = c.u8("n_stages")?;
        Limits::check(u64::from(n_stages), limits.max_stages, "number of nested pipeline stages")?;
        let mut stages = Vec::with_capacity(usize::from(n_stages));
        for _ in 0..n_stages {
            stages.push(StageDescriptor::decode_from(&mut c, limits)?);
        }
        c.finish("nested pipeline")?;
        ensure(n_stages > 0, ErrorCode::PipelineInvalid, || "nested pipeline has no stages".into())?;
        for s in &stages {
            s.validate(limits)?;
        }
        Ok(stages)
    }
}

/// Body of TENSOR_BEGIN: everything needed to decode the tensor's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDescriptor {
    /// Stream-local ID: the number of TENSOR_BEGIN records before this one.
    pub tensor_id: u32,
    /// Name, unique in the stream, UTF-8 without NUL.
    pub name: String,
    /// Dtype the producer held the tensor in.
    pub dtype: DType,
    /// Dimensions; their product is `n_elements`.
    pub shape: Vec<u64>,
    /// Total number of elements.
    pub n_elements: u64,
    /// Elements per chunk (the last chunk may be shorter).
    pub chunk_elements: u64,
    /// TENSOR_BEGIN flags ([`crate::ids::tensor_flags`]).
    pub flags: u8,
    /// Codec stages in encode order.
    pub pipeline: Vec<StageDescriptor>,
}

impl TensorDescriptor {
    /// Number of chunks: `ceil(n_elements / chunk_elements)`.
    #[must_use]
    pub fn n_chunks(&self) -> u64 {
        self.n_elements.div_ceil(self.chunk_elements.max(1))
    }

    /// Elements in chunk `index` (the last one may be short).
    #[must_use]
    pub fn chunk_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(self.chunk_elements);
        self.n_elements.saturating_sub(start).min(self.chunk_elements)
    }

    /// Whether chunks carry the CRC32C of their decoded values.
    #[must_use]
    pub fn has_decoded_crc(&self) -> bool {
        self.flags & tensor_flags::DECODED_CRC != 0
    }

    /// Serializes the body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u32(self.tensor_id);
        out.push(self.dtype.code());
        out.push(self.shape.len() as u8);
        out.push(self.pipeline.len() as u8);
        out.push(self.flags);
        out.put_u64(self.chunk_elements);
        out.put_u64(self.n_elements);
        out.put_u16(self.name.len() as u16);
        out.put_u16(0);
        out.put_u32(0);
        for &d in &self.shape {
            out.put_u64(d);
        }
        out.extend_from_slice(self.name.as_bytes());
        for s in &self.pipeline {
            s.encode_into(&mut out);
        }
        out
    }

    /// Checks the descriptor against the format rules and `limits` (used by writer and reader).
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        Limits::check(self.shape.len() as u64, limits.max_rank, "tensor rank")?;
        Limits::check(self.name.len() as u64, limits.max_name_len, "tensor name length")?;
        ensure(!self.name.contains('\0'), ErrorCode::Malformed, || {
            format!("tensor name {:?} contains NUL", self.name)
        })?;
        let product = shape_product(&self.shape);
        ensure(product == Some(self.n_elements), ErrorCode::ShapeOverflow, || {
            format!(
                "shape {:?} has product {} but n_elements is {}",
                self.shape,
                product.map_or("overflow".into(), |p| p.to_string()),
                self.n_elements
            )
        })?;
        let bytes = self.n_elements.checked_mul(4).ok_or_else(|| {
            Error::new(ErrorCode::LimitExceeded, format!("a tensor of {} elements is too large", self.n_elements))
        })?;
        Limits::check(bytes, limits.max_tensor_bytes, "tensor size in bytes of f32")?;
        ensure(self.chunk_elements > 0, ErrorCode::Malformed, || "chunk_elements must be positive".into())?;
        Limits::check(self.chunk_elements.saturating_mul(4), limits.max_chunk_decoded, "decoded chunk size in bytes")?;
        ensure(!self.pipeline.is_empty(), ErrorCode::PipelineInvalid, || "pipeline has no stages".into())?;
        Limits::check(self.pipeline.len() as u64, limits.max_stages, "number of pipeline stages")?;
        ensure(self.flags & !tensor_flags::KNOWN == 0, ErrorCode::ReservedNonzero, || {
            format!("TENSOR_BEGIN flags 0x{:02x} use reserved bits", self.flags)
        })?;
        for s in &self.pipeline {
            s.validate(limits)?;
        }
        Ok(())
    }

    /// Parses and validates the body.
    pub fn decode(bytes: &[u8], base: u64, limits: &Limits) -> Result<TensorDescriptor> {
        let mut c = Cursor::new(bytes, base);
        let tensor_id = c.u32("tensor_id")?;
        let dtype = DType::from_code(c.u8("dtype")?).map_err(|e| e.at_offset(base + 4))?;
        let rank = c.u8("rank")?;
        let n_stages = c.u8("n_stages")?;
        let flags = c.u8("flags")?;
        let chunk_elements = c.u64("chunk_elements")?;
        let n_elements = c.u64("n_elements")?;
        let name_len = c.u16("name_len")?;
        c.reserved(6, "TENSOR_BEGIN reserved")?;
        Limits::check(u64::from(rank), limits.max_rank, "tensor rank").map_err(|e| e.at_offset(base + 5))?;
        Limits::check(u64::from(name_len), limits.max_name_len, "tensor name length")
            .map_err(|e| e.at_offset(base + 24))?;
        Limits::check(u64::from(n_stages), limits.max_stages, "number of pipeline stages")
            .map_err(|e| e.at_offset(base + 6))?;
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(c.u64("dim")?);
        }
        let name_at = c.offset();
        let name = std::str::from_utf8(c.take(usize::from(name_len), "name")?)
            .map_err(|_| Error::new(ErrorCode::Malformed, "tensor name is not UTF-8").at_offset(name_at))?
            .to_owned();
        let mut pipeline = Vec::with_capacity(usize::from(n_stages));
        for _ in 0..n_stages {
            pipeline.push(StageDescriptor::decode_from(&mut c, limits)?);
        }
        c.finish("TENSOR_BEGIN")?;
        let d = TensorDescriptor { tensor_id, name, dtype, shape, n_elements, chunk_elements, flags, pipeline };
        d.validate(limits).map_err(|e| e.at_offset(base).in_tensor(d.name.clone()))?;
        Ok(d)
    }
}

/// Length of the fixed part of a CHUNK body, before the payload.
pub const CHUNK_HEADER_LEN: usize = 24;

/// The fixed fields at the start of a CHUNK body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Tensor the chunk belongs to.
    pub tensor_id: u32,
    /// Index of the chunk within its tensor.
    pub chunk_index: u64,
    /// CRC32C of the decoded values as f32 little-endian (0 unless the tensor sets DECODED_CRC).
    pub decoded_crc: u32,
}

impl ChunkHeader {
    /// Appends the fixed fields to `out`; the payload follows.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_u32(self.tensor_id);
        out.put_u32(0);
        out.put_u64(self.chunk_index);
        out.put_u32(self.decoded_crc);
        out.put_u32(0);
    }

    /// Parses the fixed fields and returns them with the payload.
    pub fn decode(bytes: &[u8], base: u64) -> Result<(ChunkHeader, &[u8])> {
        let mut c = Cursor::new(bytes, base);
        let tensor_id = c.u32("tensor_id")?;
        c.reserved(4, "chunk_flags")?;
        let chunk_index = c.u64("chunk_index")?;
        let decoded_crc = c.u32("decoded_crc32c")?;
        c.reserved(4, "CHUNK reserved")?;
        Ok((ChunkHeader { tensor_id, chunk_index, decoded_crc }, c.rest()))
    }
}

/// Body of TENSOR_END.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorEnd {
    /// Tensor being closed.
    pub tensor_id: u32,
    /// Number of chunks written for it.
    pub n_chunks: u64,
}

impl TensorEnd {
    /// Serializes the body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.put_u32(self.tensor_id);
        out.put_u32(0);
        out.put_u64(self.n_chunks);
        out
    }

    /// Parses the body.
    pub fn decode(bytes: &[u8], base: u64) -> Result<TensorEnd> {
        let mut c = Cursor::new(bytes, base);
        let tensor_id = c.u32("tensor_id")?;
        c.reserved(4, "TENSOR_END reserved")?;
        let n_chunks = c.u64("n_chunks")?;
        c.finish("TENSOR_END")?;
        Ok(TensorEnd { tensor_id, n_chunks })
    }
}

/// Length of the END body; END is always the last 64 bytes of a stream.
pub const END_BODY_LEN: usize = 32;

/// Body of END.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndRecord {
    /// Number of records before END (equals END's own `seq`).
    pub n_records: u64,
    /// Byte offset of the END record (the length of everything before it).
    pub stream_len: u64,
    /// Byte offset of the INDEX record, or 0 when there is none.
    pub index_offset: u64,
    /// Number of tensors in the stream.
    pub n_tensors: u32,
}

impl EndRecord {
    /// Serializes the body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(END_BODY_LEN);
        out.put_u64(self.n_records);
        out.put_u64(self.stream_len);
        out.put_u64(self.index_offset);
        out.put_u32(self.n_tensors);
        out.put_u32(0);
        out
    }

    /// Parses the body.
    pub fn decode(bytes: &[u8], base: u64) -> Result<EndRecord> {
        let mut c = Cursor::new(bytes, base);
        let n_records = c.u64("n_records")?;
        let stream_len = c.u64("stream_len")?;
        let index_offset = c.u64("index_offset")?;
        let n_tensors = c.u32("n_tensors")?;
        c.reserved(4, "END reserved")?;
        c.finish("END")?;
        Ok(EndRecord { n_records, stream_len, index_offset, n_tensors })
    }
}

/// One tensor's entry in the INDEX record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexEntry {
    /// Offset of the tensor's TENSOR_BEGIN record.
    pub begin_offset: u64,
    /// Offsets of its CHUNK records, in chunk order.
    pub chunk_offsets: Vec<u64>,
}

/// Body of INDEX: where every tensor and chunk record starts. A cache, never the only copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    /// One entry per tensor, in tensor ID order.
    pub tensors: Vec<IndexEntry>,
}

impl Index {
    /// Serializes the body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u32(self.tensors.len() as u32);
        out.put_u32(0);
        for t in &self.tensors {
            out.put_u64(t.begin_offset);
            out.put_u64(t.chunk_offsets.len() as u64);
            for &o in &t.chunk_offsets {
                out.put_u64(o);
            }
        }
        out
    }

    /// Parses the body; every count is checked against the bytes present before it is used.
    pub fn decode(bytes: &[u8], base: u64) -> Result<Index> {
        let mut c = Cursor::new(bytes, base);
        let n = u64::from(c.u32("n_tensors")?);
        c.reserved(4, "INDEX reserved")?;
        let mut tensors = Vec::new();
        for _ in 0..n {
            let begin_offset = c.u64("begin_offset")?;
            let n_chunks = c.u64("n_chunks")?;
            let fits = n_chunks.checked_mul(8).is_some_and(|b| b <= c.remaining() as u64);
            ensure(fits, ErrorCode::Malformed, || {
                format!("index declares {n_chunks} chunks, more than the record holds")
            })?;
            let chunk_offsets = (0..n_chunks).map(|_| c.u64("chunk_offset")).collect::<Result<Vec<_>>>()?;
            tensors.push(IndexEntry { begin_offset, chunk_offsets });
        }
        c.finish("INDEX")?;
        Ok(Index { tensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor() -> TensorDescriptor {
        TensorDescriptor {
            tensor_id: 0,
            name: "fc1.weight".into(),
            dtype: DType::F32,
            shape: vec![3, 5],
            n_elements: 15,
            chunk_elements: 4,
            flags: 0,
            pipeline: vec![StageDescriptor { codec_id: 1, version: 1, params: vec![], private_name: None }],
        }
    }

    #[test]
    fn descriptor_round_trips_and_counts_chunks() {
        let d = descriptor();
        let back = TensorDescriptor::decode(&d.encode(), 0, &Limits::default()).unwrap();
        assert_eq!(back, d);
        assert_eq!(d.n_chunks(), 4);
        assert_eq!(d.chunk_len(3), 3);
        assert_eq!(d.chunk_len(4), 0);
    }

    #[test]
    fn descriptor_rejects_shape_overflow() {
        let mut d = descriptor();
        d.shape = vec![u64::MAX, 2];
        let e = TensorDescriptor::decode(&d.encode(), 0, &Limits::default()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ShapeOverflow);
    }

    #[test]
    fn index_rejects_chunk_count_beyond_body() {
        let mut bytes = Vec::new();
        bytes.put_u32(1);
        bytes.put_u32(0);
        bytes.put_u64(16);
        bytes.put_u64(u64::MAX);
        assert_eq!(Index::decode(&bytes, 0).unwrap_err().code(), ErrorCode::Malformed);
    }
}
