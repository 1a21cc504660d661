//! The bytes on the wire: preamble, record framing, record bodies and metadata
//! (`spec/FORMAT.md`). Public so that tools (conformance generators, fuzzers, the Python
//! decoder's cross-checks) can build and inspect records directly.

pub mod framing;
pub mod metadata;
pub mod records;
pub mod wire;

pub use framing::{ALIGN, PREAMBLE_LEN, Preamble, RECORD_HEADER_LEN, RecordHeader, crc32c, encode_record, padding_for};
pub use metadata::{Metadata, Value};
pub use records::{
    CHUNK_HEADER_LEN, ChunkHeader, DType, END_BODY_LEN, EndRecord, Index, IndexEntry, StageDescriptor, StreamHeader,
    TensorDescriptor, TensorEnd, is_valid_codec_name, shape_product,
};
