//! Streaming writer and reader, random access, and the record and chunk helpers they share.

mod chunk;
mod reader;
pub mod record_io;
mod seekable;
mod writer;

pub use chunk::{TensorCodec, values_crc};
pub use reader::{Chunk, DecodedStream, DecodedTensor, EncodedChunk, Event, Reader, ReaderOptions};
pub use seekable::SeekableReader;
pub use writer::{DEFAULT_CHUNK_ELEMENTS, TensorId, TensorSpec, Writer, WriterOptions};
