//! The streaming writer: preamble and stream header up front, then tensors chunk by chunk (several
//! may be open at once), then an optional INDEX and the END record.
//!
//! Memory is bounded by the chunk size: a tensor written piecewise keeps at most one partial chunk
//! buffered; a large slice is encoded in batches of `threads * 2` chunks, in parallel when
//! `threads > 1`, and the bytes are identical to a single-threaded run (chunks are independent and
//! written in order).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use rayon::prelude::*;

use super::chunk::TensorCodec;
use crate::error::{Error, ErrorCode, Result};
use crate::format::{
    DType, EndRecord, Index, IndexEntry, Metadata, Preamble, RecordHeader, StageDescriptor, StreamHeader,
    TensorDescriptor, TensorEnd, crc32c,
};
use crate::ids::{record, tensor_flags};
use crate::limits::Limits;
use crate::registry::Registry;
use crate::side_info::{SideBinding, SideInfoProvider, SideInfoUse};

/// Default elements per chunk: 2^20 (4 MiB of f32).
pub const DEFAULT_CHUNK_ELEMENTS: u64 = 1 << 20;

/// Writer settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Elements per chunk for tensors that do not set their own.
    pub chunk_elements: u64,
    /// Threads used to encode chunks (1 = the calling thread only).
    pub threads: usize,
    /// Whether `finish` writes an INDEX record for random access.
    pub write_index: bool,
    /// Whether chunks carry the CRC32C of their decoded values (costs one decode per chunk).
    pub decoded_checksums: bool,
    /// Limits the writer stays within (so its output is readable with the same limits).
    pub limits: Limits,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            chunk_elements: DEFAULT_CHUNK_ELEMENTS,
            threads: 1,
            write_index: true,
            decoded_checksums: false,
            limits: Limits::default(),
        }
    }
}

impl WriterOptions {
    /// Sets the chunk size in elements.
    #[must_use]
    pub fn chunk_elements(mut self, n: u64) -> Self {
        self.chunk_elements = n;
        self
    }
    /// Sets the number of encoding threads.
    #[must_use]
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// Enables or disables the INDEX record.
    #[must_use]
    pub fn write_index(mut self, yes: bool) -> Self {
        self.write_index = yes;
        self
    }
    /// Enables or disables per-chunk CRCs of decoded values.
    #[must_use]
    pub fn decoded_checksums(mut self, yes: bool) -> Self {
        self.decoded_checksums = yes;
        self
    }
}

/// What to write for one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Unique name.
    pub name: String,
    /// Dtype the values came from (informational; values are f32).
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Codec stages, e.g. from [`Registry::parse_pipeline`].
    pub pipeline: Vec<StageDescriptor>,
    /// Elements per chunk; `None` takes [`WriterOptions::chunk_elements`].
    pub chunk_elements: Option<u64>,
}

impl TensorSpec {
    /// A tensor spec with the writer's default chunk size.
    #[must_use]
    pub fn new(name: impl Into<String>, shape: &[u64], pipeline: Vec<StageDescriptor>) -> Self {
        TensorSpec { name: name.into(), dtype: DType::F32, shape: shape.to_vec(), pipeline, chunk_elements: None }
    }
}

/// Handle of a tensor begun with [`Writer::begin_tensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub u32);

struct OpenTensor {
    codec: TensorCodec,
    buffered: Vec<f32>,
    next_chunk: u64,
    written: u64,
    /// Decoded values of the chunks written so far, kept for [`Writer::write_tensor_reconstructed`].
    reconstruction: Option<Vec<f32>>,
}

/// Writes one gradwire stream to `W`.
///
/// # Examples
/// ```
/// use gradwire_codec::{Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
/// let registry = Registry::core();
/// let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
/// let pipeline = registry.parse_pipeline("bf16+zstd").unwrap();
/// w.write_tensor(TensorSpec::new("g", &[2, 2], pipeline), &[1.0, -2.0, 0.5, 3.0]).unwrap();
/// let bytes = w.finish().unwrap();
///
/// let stream = Reader::new(&bytes[..], &registry).read_all().unwrap();
/// assert_eq!(stream.tensors[0].values, vec![1.0, -2.0, 0.5, 3.0]);
/// ```
pub struct Writer<'r, W: Write> {
    out: W,
    pos: u64,
    seq: u32,
    registry: &'r Registry,
    options: WriterOptions,
    seed: u64,
    names: HashSet<String>,
    index: Vec<IndexEntry>,
    open: BTreeMap<u32, OpenTensor>,
    pool: Option<rayon::ThreadPool>,
    scratch: Vec<u8>,
    /// Reused chunk bodies of a parallel batch.
    batch_scratch: Vec<Vec<u8>>,
    failed: bool,
    side_info: Option<Arc<dyn SideInfoProvider>>,
}

impl<'r, W: Write> Writer<'r, W> {
    /// Writes the preamble and the stream header.
    ///
    /// # Errors
    /// [`ErrorCode::Io`] if writing fails; [`ErrorCode::InvalidArgument`] for unknown feature bits
    /// or a header larger than the limits.
    pub fn new(out: W, registry: &'r Registry, header: &StreamHeader, options: WriterOptions) -> Result<Self> {
        if header.required_features != 0 {
            return Err(Error::new(ErrorCode::InvalidArgument, "format 1.0 defines no required features"));
        }
        let pool = if options.threads > 1 {
            Some(rayon::ThreadPoolBuilder::new().num_threads(options.threads).build().map_err(|e| {
                Error::new(ErrorCode::InvalidArgument, format!("cannot start {} threads: {e}", options.threads))
            })?)
        } else {
            None
        };
        let mut w = Writer {
            out,
            pos: 0,
            seq: 0,
            registry,
            options,
            seed: header.seed,
            names: HashSet::new(),
            index: Vec::new(),
            open: BTreeMap::new(),
            pool,
            scratch: Vec::new(),
            batch_scratch: Vec::new(),
            failed: false,
            side_info: None,
        };
        w.write_bytes(&Preamble::CURRENT.encode())?;
        let body = header.encode();
        w.check_header_size(&body, "stream header")?;
        w.write_record(record::STREAM_HEADER, &body)?;
        Ok(w)
    }

    fn check_header_size(&self, body: &[u8], what: &str) -> Result<()> {
        Limits::check(body.len() as u64, self.options.limits.max_header_body, &format!("{what} size"))
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, e.detail().to_owned()))
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::new(ErrorCode::InvalidArgument, "the writer failed earlier and cannot continue"));
        }
        if let Err(e) = self.out.write_all(bytes) {
            self.failed = true;
            return Err(Error::from_io(&e, "writing the stream").at_offset(self.pos));
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes one record; returns its offset.
    fn write_record(&mut self, rtype: u16, body: &[u8]) -> Result<u64> {
        let offset = self.pos;
        let header =
            RecordHeader { rtype, rflags: 0, body_len: body.len() as u64, seq: self.seq, body_crc: crc32c(body) };
        self.write_bytes(&header.encode())?;
        self.write_bytes(body)?;
        self.write_bytes(&[0u8; 8][..header.padding_len() as usize])?;
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| Error::new(ErrorCode::LimitExceeded, "more than 2^32 records in one stream"))?;
        Ok(offset)
    }

    /// Gives the writer side information (`crate::side_info`): a tensor begun later whose
    /// pipeline decodes against side information takes its side tensor from `provider` by name,
    /// and its stages bind it (label and digest) so that readers check theirs against it.
    pub fn set_side_info(&mut self, provider: Arc<dyn SideInfoProvider>) {
        self.side_info = Some(provider);
    }

    /// Bytes written so far.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Writes a skippable METADATA record.
    ///
    /// # Errors
    /// [`ErrorCode::Io`], or [`ErrorCode::InvalidArgument`] if it exceeds the header size limit.
    pub fn write_metadata(&mut self, metadata: &Metadata) -> Result<()> {
        let body = metadata.encode();
        self.check_header_size(&body, "metadata")?;
        self.write_record(record::METADATA, &body).map(|_| ())
    }

    /// Starts a tensor: validates the spec, builds its pipeline and writes TENSOR_BEGIN.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for a duplicate name, an invalid shape or pipeline, or too
    /// many open tensors; [`ErrorCode::Io`].
    pub fn begin_tensor(&mut self, spec: TensorSpec) -> Result<TensorId> {
        let invalid = |e: Error| Error::new(ErrorCode::InvalidArgument, e.to_string());
        let limits = self.options.limits;
        if self.names.contains(&spec.name) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("tensor {:?} was already written to this stream", spec.name),
            ));
        }
        Limits::check(self.open.len() as u64 + 1, limits.max_open_tensors, "open tensors").map_err(invalid)?;
        Limits::check(self.index.len() as u64 + 1, limits.max_tensors, "tensors").map_err(invalid)?;
        let n_elements = crate::format::shape_product(&spec.shape)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("shape {:?} overflows", spec.shape)))?;
        let mut spec = spec;
        let side = self.bind_side_info(&mut spec, n_elements)?;
        let descriptor = TensorDescriptor {
            tensor_id: self.index.len() as u32,
            name: spec.name,
            dtype: spec.dtype,
            shape: spec.shape,
            n_elements,
            chunk_elements: spec.chunk_elements.unwrap_or(self.options.chunk_elements),
            flags: if self.options.decoded_checksums { tensor_flags::DECODED_CRC } else { 0 },
            pipeline: spec.pipeline,
        };
        descriptor.validate(&limits).map_err(invalid)?;
        let pipeline = self.registry.build_pipeline(&descriptor.pipeline, &limits).map_err(invalid)?;
        pipeline.bounds(descriptor.chunk_elements.min(n_elements.max(1)) as usize).map_err(invalid)?;
        if side.is_none() && self.options.decoded_checksums && pipeline.side_info() != SideInfoUse::None {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "tensor {:?} decodes against side information the writer does not have, so it cannot \
                     checksum the decoded values",
                    descriptor.name
                ),
            ));
        }
        let body = descriptor.encode();
        self.check_header_size(&body, "tensor descriptor")?;
        let offset = self.write_record(record::TENSOR_BEGIN, &body)?;
        let id = descriptor.tensor_id;
        self.names.insert(descriptor.name.clone());
        self.index.push(IndexEntry { begin_offset: offset, chunk_offsets: Vec::new() });
        let side = side.filter(|_| pipeline.side_info() != SideInfoUse::None);
        let codec = TensorCodec {
            descriptor: Arc::new(descriptor),
            pipeline: Arc::new(pipeline),
            stream_seed: self.seed,
            side,
        };
        self.open
            .insert(id, OpenTensor { codec, buffered: Vec::new(), next_chunk: 0, written: 0, reconstruction: None });
        Ok(TensorId(id))
    }

    /// The side tensor the provider holds for `spec`, bound to the stages of its pipeline that
    /// decode against side information.
    fn bind_side_info(&self, spec: &mut TensorSpec, n_elements: u64) -> Result<Option<Arc<[f32]>>> {
        let Some(provider) = &self.side_info else { return Ok(None) };
        // Only a pipeline with a stage that takes a binding looks for side information (and
        // hashes it): probed with a placeholder binding on a copy.
        if !self.registry.takes_side_info(&spec.pipeline) {
            return Ok(None);
        }
        let Some(side) = provider.side_tensor(&spec.name) else { return Ok(None) };
        if side.values.len() as u64 != n_elements {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "tensor {:?} has {n_elements} values but its side information {:?} has {}",
                    spec.name,
                    side.label,
                    side.values.len()
                ),
            ));
        }
        let binding = SideBinding::of(&side.label, &side.values)?;
        let bound = self
            .registry
            .bind_side_info(&mut spec.pipeline, &binding)
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, e.to_string()).in_tensor(spec.name.clone()))?;
        Ok(bound.then_some(side.values))
    }

    /// Appends values to an open tensor; every completed chunk is encoded and written.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for an unknown tensor or more values than its shape holds;
    /// codec errors; [`ErrorCode::Io`].
    pub fn write_values(&mut self, id: TensorId, mut values: &[f32]) -> Result<()> {
        let t = self
            .open
            .get_mut(&id.0)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("tensor {} is not open", id.0)))?;
        let d = Arc::clone(&t.codec.descriptor);
        let remaining = d.n_elements - t.written;
        if values.len() as u64 > remaining {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("tensor {:?} holds {} more values, got {}", d.name, remaining, values.len()),
            ));
        }
        t.written += values.len() as u64;
        // Complete a partially buffered chunk first.
        if !t.buffered.is_empty() {
            let need = d.chunk_len(t.next_chunk) as usize - t.buffered.len();
            let take = need.min(values.len());
            t.buffered.extend_from_slice(&values[..take]);
            values = &values[take..];
            if t.buffered.len() == d.chunk_len(t.next_chunk) as usize {
                let chunk = std::mem::take(&mut t.buffered);
                self.write_chunks(id, &[&chunk])?;
            }
        }
        // Whole chunks straight from the caller's slice, in parallel batches.
        let batch = self.options.threads * 2;
        loop {
            let t = &self.open[&id.0];
            let mut chunks = Vec::new();
            let mut idx = t.next_chunk;
            while chunks.len() < batch {
                let len = d.chunk_len(idx) as usize;
                if len == 0 || len > values.len() {
                    break;
                }
                let (head, tail) = values.split_at(len);
                chunks.push(head);
                values = tail;
                idx += 1;
            }
            if chunks.is_empty() {
                break;
            }
            self.write_chunks(id, &chunks)?;
        }
        if !values.is_empty() {
            let t = self.open.get_mut(&id.0).ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "tensor closed"))?;
            t.buffered.extend_from_slice(values);
        }
        Ok(())
    }

    /// Encodes consecutive chunks of tensor `id` (in parallel when configured) and writes them in order.
    fn write_chunks(&mut self, id: TensorId, chunks: &[&[f32]]) -> Result<()> {
        let t = &self.open[&id.0];
        let codec = t.codec.clone();
        let first = t.next_chunk;
        if t.reconstruction.is_some() {
            return self.write_chunks_reconstructing(id, &codec, first, chunks);
        }
        match &self.pool {
            Some(pool) if chunks.len() > 1 => {
                // One reused buffer per chunk of the batch, as the sequential path reuses one:
                // fresh multi-megabyte bodies cost page faults, which threads take in turn.
                // At most `2 x threads` buffers are kept, the memory one batch needs anyway.
                let mut bodies = std::mem::take(&mut self.batch_scratch);
                if bodies.len() < chunks.len() {
                    bodies.resize_with(chunks.len(), Vec::new);
                }
                let encode = |(i, (c, body)): (usize, (&&[f32], &mut Vec<u8>))| {
                    codec.encode_chunk_into(first + i as u64, c, body)
                };
                let results: Vec<Result<()>> =
                    pool.install(|| chunks.par_iter().zip(bodies.par_iter_mut()).enumerate().map(encode).collect());
                for (result, body) in results.into_iter().zip(&bodies[..chunks.len()]) {
                    result?;
                    self.write_chunk_record(id, body)?;
                }
                self.batch_scratch = bodies;
            }
            _ => {
                // One reused buffer: no fresh allocation (and page faults) per chunk.
                let mut body = std::mem::take(&mut self.scratch);
                for (i, c) in chunks.iter().enumerate() {
                    codec.encode_chunk_into(first + i as u64, c, &mut body)?;
                    self.write_chunk_record(id, &body)?;
                }
                self.scratch = body;
            }
        }
        Ok(())
    }

    /// As [`Writer::write_chunks`], also appending each chunk's decoded values to the tensor's
    /// reconstruction.
    fn write_chunks_reconstructing(
        &mut self,
        id: TensorId,
        codec: &TensorCodec,
        first: u64,
        chunks: &[&[f32]],
    ) -> Result<()> {
        let encode = |(i, c): (usize, &&[f32])| {
            let (mut body, mut decoded) = (Vec::new(), Vec::with_capacity(c.len()));
            codec.encode_chunk_reconstructing(first + i as u64, c, &mut body, &mut decoded).map(|()| (body, decoded))
        };
        let results: Vec<Result<(Vec<u8>, Vec<f32>)>> = match &self.pool {
            Some(pool) if chunks.len() > 1 => pool.install(|| chunks.par_iter().enumerate().map(encode).collect()),
            _ => chunks.iter().enumerate().map(encode).collect(),
        };
        for result in results {
            let (body, decoded) = result?;
            self.write_chunk_record(id, &body)?;
            if let Some(r) = self.open.get_mut(&id.0).and_then(|t| t.reconstruction.as_mut()) {
                r.extend_from_slice(&decoded);
            }
        }
        Ok(())
    }

    fn write_chunk_record(&mut self, id: TensorId, body: &[u8]) -> Result<()> {
        Limits::check(body.len() as u64, self.options.limits.max_record_body, "chunk record body")
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, e.detail().to_owned()))?;
        let offset = self.write_record(record::CHUNK, body)?;
        self.index[id.0 as usize].chunk_offsets.push(offset);
        if let Some(t) = self.open.get_mut(&id.0) {
            t.next_chunk += 1;
        }
        Ok(())
    }

    /// Writes the next chunk of tensor `id`, `len` values given as the array that enters its
    /// pipeline's array->bytes stage: averaged projection coefficients, in aggregation
    /// ([`crate::Pipeline::encode_inner_chunk`]).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for an unknown tensor, values buffered by
    /// [`Writer::write_values`], a tensor that keeps its reconstruction, or a `len` that is not the
    /// next chunk's length; codec errors; [`ErrorCode::Io`].
    pub fn write_inner_chunk(&mut self, id: TensorId, len: usize, inner: &[f32]) -> Result<()> {
        let t = self
            .open
            .get_mut(&id.0)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("tensor {} is not open", id.0)))?;
        let d = Arc::clone(&t.codec.descriptor);
        let next_exists = t.next_chunk < d.n_chunks();
        if !next_exists
            || !t.buffered.is_empty()
            || t.reconstruction.is_some()
            || d.chunk_len(t.next_chunk) != len as u64
        {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "tensor {:?}: chunk {} takes {} values whole, not {len} (after {} buffered values)",
                    d.name,
                    t.next_chunk,
                    d.chunk_len(t.next_chunk),
                    t.buffered.len()
                ),
            ));
        }
        let codec = t.codec.clone();
        let mut body = std::mem::take(&mut self.scratch);
        let result = codec.encode_inner_chunk_into(t.next_chunk, inner, len, &mut body);
        let result = result.and_then(|()| self.write_chunk_record(id, &body));
        self.scratch = body;
        result?;
        if let Some(t) = self.open.get_mut(&id.0) {
            t.written += len as u64;
        }
        Ok(())
    }

    /// Closes a tensor after all its values were written.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] if the tensor is not open or is missing values; [`ErrorCode::Io`].
    pub fn end_tensor(&mut self, id: TensorId) -> Result<()> {
        self.close_tensor(id).map(drop)
    }

    /// Ends a tensor and returns what it held.
    fn close_tensor(&mut self, id: TensorId) -> Result<OpenTensor> {
        let t = self
            .open
            .get(&id.0)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("tensor {} is not open", id.0)))?;
        let d = &t.codec.descriptor;
        if t.written != d.n_elements {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("tensor {:?} got {} of its {} values", d.name, t.written, d.n_elements),
            ));
        }
        if !t.buffered.is_empty() {
            let chunk = t.buffered.clone();
            self.write_chunks(id, &[&chunk])?;
        }
        let t = self.open.remove(&id.0).ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "tensor closed"))?;
        self.write_record(record::TENSOR_END, &TensorEnd { tensor_id: id.0, n_chunks: t.next_chunk }.encode())?;
        Ok(t)
    }

    /// Writes a whole tensor: begin, values, end.
    ///
    /// # Errors
    /// As [`Writer::begin_tensor`], [`Writer::write_values`] and [`Writer::end_tensor`];
    /// [`ErrorCode::InvalidArgument`] when `values` does not match the shape.
    pub fn write_tensor(&mut self, spec: TensorSpec, values: &[f32]) -> Result<TensorId> {
        check_value_count(&spec, values)?;
        let id = self.begin_tensor(spec)?;
        self.write_values(id, values)?;
        self.end_tensor(id)?;
        Ok(id)
    }

    /// Writes a whole tensor like [`Writer::write_tensor`] and returns, with its ID, the values
    /// every reader will decode from it: the encoder's own output decoded chunk by chunk, as error
    /// feedback needs (`crate::feedback`).
    ///
    /// # Errors
    /// As [`Writer::write_tensor`].
    ///
    /// # Examples
    /// ```
    /// use gradwire_codec::{Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
    /// let registry = Registry::core();
    /// let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
    /// let spec = TensorSpec::new("g", &[2], registry.parse_pipeline("bf16")?);
    /// let (_, decoded) = w.write_tensor_reconstructed(spec, &[1.0, 1.001])?;
    /// assert_eq!(decoded, [1.0, 1.0]); // what bf16 keeps
    /// # Ok::<(), gradwire_codec::Error>(())
    /// ```
    pub fn write_tensor_reconstructed(&mut self, spec: TensorSpec, values: &[f32]) -> Result<(TensorId, Vec<f32>)> {
        check_value_count(&spec, values)?;
        let id = self.begin_tensor(spec)?;
        if let Some(t) = self.open.get_mut(&id.0) {
            t.reconstruction = Some(Vec::with_capacity(values.len()));
        }
        self.write_values(id, values)?;
        let t = self.close_tensor(id)?;
        Ok((id, t.reconstruction.unwrap_or_default()))
    }

    /// Writes the INDEX (if enabled) and END records, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] if a tensor is still open; [`ErrorCode::Io`].
    pub fn finish(mut self) -> Result<W> {
        if let Some(t) = self.open.values().next() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("tensor {:?} is still open", t.codec.descriptor.name),
            ));
        }
        let index_offset = if self.options.write_index {
            let index = Index { tensors: std::mem::take(&mut self.index) };
            let n = index.tensors.len();
            let offset = self.write_record(record::INDEX, &index.encode())?;
            self.index = vec![IndexEntry::default(); n];
            offset
        } else {
            0
        };
        let end = EndRecord {
            n_records: u64::from(self.seq),
            stream_len: self.pos,
            index_offset,
            n_tensors: self.index.len() as u32,
        };
        self.write_record(record::END, &end.encode())?;
        self.out.flush().map_err(|e| Error::from_io(&e, "flushing the stream"))?;
        Ok(self.out)
    }
}

/// Checks that `values` fills `spec`'s shape exactly.
fn check_value_count(spec: &TensorSpec, values: &[f32]) -> Result<()> {
    if crate::format::shape_product(&spec.shape) == Some(values.len() as u64) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("tensor {:?} has shape {:?} but {} values", spec.name, spec.shape, values.len()),
        ))
    }
}
