//! Every number the wire format assigns, as named constants in one place: record types, codec
//! IDs and their ranges, dtype codes and feature bits (`spec/FORMAT.md`, `spec/REGISTRY.md`).

/// The 8-byte magic at offset 0: `89 47 57 46 0D 0A 1A 0A` (`"\x89GWF\r\n\x1a\n"`).
pub const MAGIC: [u8; 8] = [0x89, b'G', b'W', b'F', 0x0D, 0x0A, 0x1A, 0x0A];
/// The record framing marker: `FF 47 57 52` (`"\xFFGWR"`).
pub const RECORD_SYNC: [u8; 4] = [0xFF, b'G', b'W', b'R'];
/// Format major version written and read by this crate.
pub const FORMAT_MAJOR: u8 = 1;
/// Highest format minor version this crate reads.
pub const FORMAT_MINOR: u8 = 0;

/// Record types (`rtype`). Bit 15 set means the record may be skipped by readers that do not know it.
pub mod record {
    /// Bit 15 of `rtype`: the record is skippable.
    pub const SKIPPABLE_BIT: u16 = 0x8000;
    /// Stream header: features, seed, metadata.
    pub const STREAM_HEADER: u16 = 0x0001;
    /// Tensor descriptor: name, dtype, shape, chunking, pipeline.
    pub const TENSOR_BEGIN: u16 = 0x0002;
    /// One encoded chunk of one tensor.
    pub const CHUNK: u16 = 0x0003;
    /// Closes a tensor.
    pub const TENSOR_END: u16 = 0x0004;
    /// Closes the stream (fixed 32-byte body).
    pub const END: u16 = 0x0005;
    /// Informational key-value metadata.
    pub const METADATA: u16 = 0x8001;
    /// Offsets of every tensor and chunk record, for random access.
    pub const INDEX: u16 = 0x8002;
    /// First record type of the private range (skippable application records).
    pub const PRIVATE_FIRST: u16 = 0xF000;
}

/// Codec IDs and ranges (`spec/REGISTRY.md`). An ID names a bitstream format, never a crate.
pub mod codec {
    /// `raw`: f32 little-endian (array->bytes, lossless).
    pub const RAW: u32 = 0x0000_0001;
    /// `f16`: IEEE binary16, round to nearest even (array->bytes, lossy).
    pub const F16: u32 = 0x0000_0002;
    /// `bf16`: bfloat16, round to nearest even (array->bytes, lossy).
    pub const BF16: u32 = 0x0000_0003;
    /// `zstd`: one Zstandard frame with its content size (bytes->bytes, lossless).
    pub const ZSTD: u32 = 0x0000_0010;

    /// First ID of the core range (defined in the spec itself).
    pub const CORE_FIRST: u32 = 0x0000_0001;
    /// Last ID of the core range.
    pub const CORE_LAST: u32 = 0x0000_00FF;
    /// First ID of the registered-extension range.
    pub const REGISTERED_FIRST: u32 = 0x0000_0100;
    /// Last ID of the registered-extension range.
    pub const REGISTERED_LAST: u32 = 0x00FF_FFFF;
    /// First ID of the private range; private stages carry a name on the wire.
    pub const PRIVATE_FIRST: u32 = 0x8000_0000;
    /// Last ID of the private range.
    pub const PRIVATE_LAST: u32 = 0xFFFF_FFFE;

    /// Whether `id` lies in the private range (and so carries a name on the wire).
    #[must_use]
    pub fn is_private(id: u32) -> bool {
        (PRIVATE_FIRST..=PRIVATE_LAST).contains(&id)
    }
}

/// Feature bits of the stream header. Format 1.0 defines none.
pub mod feature {
    /// Required feature bits known to this reader (none in 1.0).
    pub const KNOWN_REQUIRED: u64 = 0;
}

/// Flags of TENSOR_BEGIN.
pub mod tensor_flags {
    /// Each CHUNK carries the CRC32C of its decoded values.
    pub const DECODED_CRC: u8 = 0x01;
    /// Every flag defined in 1.0.
    pub const KNOWN: u8 = DECODED_CRC;
}
