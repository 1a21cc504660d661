//! The three kinds of codec stage, typed as in Zarr v3: `array->array`, `array->bytes`,
//! `bytes->bytes` (`spec/FORMAT.md` §7).
//!
//! A pipeline is `array->array* array->bytes bytes->bytes*`. Stages are called once per chunk
//! through a trait object; their inner loops run over plain slices. Every stage reports an upper
//! bound on its output size, so a reader knows every buffer size before it decodes a byte, and
//! every decode receives the exact (arrays) or maximum (bytes) size it may produce.

use crate::error::Result;
use crate::side_info::SideInfoUse;

/// Where a chunk sits and the randomness it may use. Passed to every stage call.
#[derive(Debug, Clone, Copy)]
pub struct ChunkContext<'a> {
    /// Name of the tensor.
    pub tensor_name: &'a str,
    /// Stream-local tensor ID.
    pub tensor_id: u32,
    /// Index of the chunk within the tensor.
    pub chunk_index: u64,
    /// Index of the chunk's first element within the tensor.
    pub element_offset: u64,
    /// Seed of this chunk (`crate::rng::chunk_seed` of stream seed, tensor name, chunk index).
    pub seed: u64,
    /// The chunk's slice of the tensor's side information (`crate::side_info`), one value per
    /// element of the chunk, when the caller gave some and the pipeline uses it.
    pub side: Option<&'a [f32]>,
}

/// A stage that maps f32 arrays to f32 arrays (projection, error feedback, ...).
pub trait ArrayToArray: Send + Sync {
    /// Length of the encoded array for an input of `len` values; a function of `len` and the
    /// stage's parameters only.
    ///
    /// # Errors
    /// Fails when the stage cannot encode arrays of this length.
    fn encoded_len(&self, len: usize) -> Result<usize>;

    /// Encodes `input`, replacing the contents of `out` (which must end with `encoded_len` values).
    ///
    /// # Errors
    /// Fails on input the stage cannot represent.
    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<f32>) -> Result<()>;

    /// Decodes `input` into exactly `out.len()` values.
    ///
    /// # Errors
    /// Fails on inconsistent input; never panics.
    fn decode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()>;

    /// Aggregation capability: whether decoding is linear in the encoded array and the same for
    /// every stream whose stage has these parameters (a projection regenerated from a shared
    /// seed). Then the weighted mean of encoded arrays decodes to the weighted mean of the
    /// decoded values, and aggregation averages encoded arrays without expanding them.
    /// Default: `false`.
    fn is_linear(&self) -> bool {
        false
    }
}

/// The one stage that turns an f32 array into bytes (raw, f16, quantizers, sign packing, ...).
pub trait ArrayToBytes: Send + Sync {
    /// Upper bound on the encoded size of `len` values, per-chunk side information included;
    /// `None` if it overflows.
    fn max_encoded_len(&self, len: usize) -> Option<usize>;

    /// Appends the encoding of `input` (with any per-chunk parameters) to `out`.
    ///
    /// # Errors
    /// Fails on input the codec cannot represent.
    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()>;

    /// Decodes untrusted `bytes` into exactly `out.len()` values; never panics or over-allocates.
    ///
    /// # Errors
    /// [`crate::ErrorCode::CodecOutputSize`] when `bytes` does not hold exactly `out.len()` values,
    /// [`crate::ErrorCode::CodecData`] for other malformed payloads.
    fn decode(&self, bytes: &[u8], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()>;

    /// Aggregation capability: adds `weight * decode(bytes)` to `acc` (`acc.len()` values).
    ///
    /// The default decodes into a scratch buffer and adds; a codec whose payload allows it (signs
    /// times scales, coefficients, ...) overrides this to add straight from its payload.
    ///
    /// # Errors
    /// As [`ArrayToBytes::decode`].
    fn accumulate(&self, bytes: &[u8], weight: f32, ctx: &ChunkContext<'_>, acc: &mut [f32]) -> Result<()> {
        let mut decoded = vec![0f32; acc.len()];
        self.decode(bytes, ctx, &mut decoded)?;
        for (a, d) in acc.iter_mut().zip(&decoded) {
            *a += weight * d;
        }
        Ok(())
    }

    /// Aggregation capability: when the payload stores the signs of its values as a packed plane
    /// (`crate::signs` layout), copies that plane into `out` (`signs::packed_len(n)` bytes) and
    /// returns `true`. The default returns `false`, and callers decode and pack instead.
    ///
    /// # Errors
    /// As [`ArrayToBytes::decode`], for a payload that does not validate.
    fn sign_plane(&self, bytes: &[u8], ctx: &ChunkContext<'_>, n: usize, out: &mut [u8]) -> Result<bool> {
        let _ = (bytes, ctx, n, out);
        Ok(false)
    }

    /// Whether the stage decodes against side information ([`ChunkContext::side`]) and which
    /// ([`crate::side_info`]). Readers check what they were given against it before decoding
    /// any chunk. Default: [`SideInfoUse::None`].
    fn side_info(&self) -> SideInfoUse {
        SideInfoUse::None
    }
}

/// A stage that maps bytes to bytes (general-purpose compression, ...).
pub trait BytesToBytes: Send + Sync {
    /// Upper bound on the encoded size of `len` input bytes; `None` if it overflows.
    fn max_encoded_len(&self, len: usize) -> Option<usize>;

    /// Appends the encoding of `input` to `out`.
    ///
    /// # Errors
    /// Fails if the underlying compressor fails.
    fn encode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()>;

    /// Decodes untrusted `input`, replacing the contents of `out`; producing more than
    /// `max_decoded_len` bytes is an error, not a reallocation.
    ///
    /// # Errors
    /// [`crate::ErrorCode::CodecOutputSize`] beyond `max_decoded_len`,
    /// [`crate::ErrorCode::CodecData`] for malformed input.
    fn decode(&self, input: &[u8], max_decoded_len: usize, out: &mut Vec<u8>) -> Result<()>;
}

/// The kind of a stage, used for pipeline typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// f32 array in, f32 array out.
    ArrayToArray,
    /// f32 array in, bytes out.
    ArrayToBytes,
    /// Bytes in, bytes out.
    BytesToBytes,
}

impl StageKind {
    /// The spelling used in the spec and in `gradwire codecs`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::ArrayToArray => "array->array",
            StageKind::ArrayToBytes => "array->bytes",
            StageKind::BytesToBytes => "bytes->bytes",
        }
    }
}

/// A built stage of one of the three kinds.
pub enum Stage {
    /// An array->array stage.
    ArrayToArray(Box<dyn ArrayToArray>),
    /// An array->bytes stage.
    ArrayToBytes(Box<dyn ArrayToBytes>),
    /// A bytes->bytes stage.
    BytesToBytes(Box<dyn BytesToBytes>),
}

impl Stage {
    /// The kind of this stage.
    #[must_use]
    pub fn kind(&self) -> StageKind {
        match self {
            Stage::ArrayToArray(_) => StageKind::ArrayToArray,
            Stage::ArrayToBytes(_) => StageKind::ArrayToBytes,
            Stage::BytesToBytes(_) => StageKind::BytesToBytes,
        }
    }
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stage({})", self.kind().as_str())
    }
}
