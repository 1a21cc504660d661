//! # gradwire-codec
//!
//! The core of gradwire: the versioned, streaming binary container for compressed gradients
//! (`spec/FORMAT.md`), its codec registry and pipeline, and the baseline codecs.
//!
//! - [`Writer`] writes a stream to any [`std::io::Write`]: tensors chunk by chunk, each chunk
//!   through a [`Pipeline`] of codec stages (`array->array* array->bytes bytes->bytes*`).
//! - [`Reader`] reads a stream from any [`std::io::Read`], yielding [`Event`]s as records arrive;
//!   [`SeekableReader`] gives random access to tensors and chunks of a file through its index.
//! - [`Registry`] is the set of codecs a program understands: [`Registry::core`] for the baseline
//!   codecs, [`Registry::linked`] for those plus every plugin crate linked into the binary.
//! - Every failure is an [`Error`] with a stable [`ErrorCode`], a [`Fault`] and a [`Location`].
//! - [`rng`] is the specified integer-only generator that seeded codecs share.
//!
//! ```
//! use gradwire_codec::{Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = Registry::core();
//! let values: Vec<f32> = (0..1000).map(|i| (i as f32).sin()).collect();
//! let mut writer = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! writer.write_tensor(TensorSpec::new("layer.weight", &[10, 100], registry.parse_pipeline("raw+zstd")?), &values)?;
//! let bytes = writer.finish()?;
//! let decoded = Reader::new(&bytes[..], &registry).read_all()?;
//! assert_eq!(decoded.tensors[0].values, values);
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod archive;
pub mod bounds;
pub mod codecs;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod entropy;
pub mod error;
pub mod feedback;
pub mod format;
pub mod ids;
pub mod limits;
pub mod pipeline;
pub mod registry;
pub mod rng;
pub mod side_info;
pub mod signs;
pub mod stage;
pub mod stream;
pub mod testing;

pub use error::{Error, ErrorCode, Fault, Location, Result};
pub use feedback::ErrorFeedback;
pub use format::{DType, Metadata, StageDescriptor, StreamHeader, TensorDescriptor, Value};
pub use limits::Limits;
pub use pipeline::Pipeline;
pub use registry::{CodecDescriptor, CodecFactory, CodecPlugin, ParamInfo, Registry, TextParams};
pub use side_info::{SideBinding, SideInfoMap, SideInfoProvider, SideInfoUse};
pub use stage::{ArrayToArray, ArrayToBytes, BytesToBytes, ChunkContext, Stage, StageKind};
pub use stream::{
    Chunk, DecodedStream, DecodedTensor, EncodedChunk, Event, Reader, ReaderOptions, SeekableReader, TensorId,
    TensorSpec, Writer, WriterOptions,
};

/// Re-exported so plugin crates can call `gradwire_codec::inventory::submit!` without their own
/// dependency on a matching `inventory` version.
pub use inventory;
