//! The streaming reader: yields events (header, tensor begin, decoded chunk, tensor end, metadata,
//! end) as records arrive, verifying every checksum and every ordering rule on the way, without
//! ever needing the end of the stream to start.
//!
//! Memory is bounded by the chunk size times the decode batch (`threads * 2` chunks). When a
//! stream is truncated or damaged, every chunk before the damage is delivered before the error,
//! so callers can salvage them ([`Reader::read_all_salvage`]).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::Arc;

use rayon::prelude::*;

use super::chunk::TensorCodec;
use super::record_io::{RawRecord, read_preamble, read_record};
use crate::error::{Error, ErrorCode, Result};
use crate::format::{ChunkHeader, EndRecord, Index, Metadata, PREAMBLE_LEN, StreamHeader, TensorDescriptor, TensorEnd};
use crate::ids::record;
use crate::limits::Limits;
use crate::registry::Registry;
use crate::side_info::{self, SideInfoProvider};

/// A decoded chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Tensor the chunk belongs to.
    pub tensor_id: u32,
    /// Index within the tensor.
    pub chunk_index: u64,
    /// Index of the first value within the tensor.
    pub element_offset: u64,
    /// Decoded values.
    pub values: Vec<f32>,
    /// Size of the encoded payload in bytes.
    pub payload_len: u64,
    /// Size of the whole CHUNK record (header, chunk fields, payload, padding) in bytes.
    pub record_len: u64,
}

/// A chunk as stored, not decoded ([`ReaderOptions::decode_chunks`] set to `false`): its record
/// checksums and ordering are verified, its payload is left to the caller (aggregation in the
/// compressed domain, copying, inspection).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedChunk {
    /// Tensor the chunk belongs to.
    pub tensor_id: u32,
    /// Index within the tensor.
    pub chunk_index: u64,
    /// Index of the first value within the tensor.
    pub element_offset: u64,
    /// Number of values the chunk holds.
    pub len: u64,
    /// CRC32C of the decoded values, or 0 when the tensor does not carry them.
    pub decoded_crc: u32,
    /// The encoded payload.
    pub payload: Vec<u8>,
    /// Stream offset of the CHUNK record.
    pub offset: u64,
}

/// What the reader found next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The stream header (always the first event).
    Header(StreamHeader),
    /// A tensor begins.
    TensorBegin(Arc<TensorDescriptor>),
    /// A decoded chunk.
    Chunk(Chunk),
    /// A chunk left encoded ([`ReaderOptions::decode_chunks`] is `false`).
    EncodedChunk(EncodedChunk),
    /// A tensor is complete.
    TensorEnd(TensorEnd),
    /// A METADATA record.
    Metadata(Metadata),
    /// A skippable record this reader does not interpret (checksums verified, body dropped).
    Skipped {
        /// Record type.
        rtype: u16,
        /// Stream offset of the record.
        offset: u64,
        /// Body length.
        body_len: u64,
    },
    /// The END record: the stream is complete and consistent.
    End(EndRecord),
}

/// Reader settings.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ReaderOptions {
    /// Limits checked before trusting any size in the input.
    pub limits: Limits,
    /// Threads used to decode chunks (1 = the calling thread only).
    pub threads: usize,
    /// Whether chunks are decoded ([`Event::Chunk`]) or delivered as stored ([`Event::EncodedChunk`]).
    pub decode_chunks: bool,
    /// Whether a tensor that decodes against side information the reader was not given has its
    /// chunks delivered encoded instead of failing with `side_info_missing` (for inspecting).
    pub encoded_without_side_info: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions { limits: Limits::default(), threads: 1, decode_chunks: true, encoded_without_side_info: false }
    }
}

impl ReaderOptions {
    /// Sets the limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Sets whether chunks are decoded (the default) or delivered encoded.
    #[must_use]
    pub fn decode_chunks(mut self, yes: bool) -> Self {
        self.decode_chunks = yes;
        self
    }
    /// Sets whether tensors lacking their side information are delivered encoded (for
    /// inspecting) rather than refused.
    #[must_use]
    pub fn encoded_without_side_info(mut self, yes: bool) -> Self {
        self.encoded_without_side_info = yes;
        self
    }
    /// Sets the number of decoding threads.
    #[must_use]
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
}

struct OpenTensor {
    codec: TensorCodec,
    next_chunk: u64,
    /// Whether its chunks are decoded (not when they need side information the reader lacks
    /// and [`ReaderOptions::encoded_without_side_info`] allows that).
    decode: bool,
}

/// Where a tensor's records were, kept in O(1) per tensor so an INDEX can be checked exactly
/// without storing every chunk offset: the TENSOR_BEGIN offset, the chunk count, and a CRC32C of
/// the chunk record offsets (u64 little-endian, in chunk order).
#[derive(Debug, Clone, Copy, Default)]
struct TensorTrace {
    begin_offset: u64,
    chunks: u64,
    offsets_crc: u32,
}

impl TensorTrace {
    fn of_index_entry(e: &crate::format::IndexEntry) -> TensorTrace {
        let offsets_crc = e.chunk_offsets.iter().fold(0, |crc, o| crc32c::crc32c_append(crc, &o.to_le_bytes()));
        TensorTrace { begin_offset: e.begin_offset, chunks: e.chunk_offsets.len() as u64, offsets_crc }
    }

    fn same_as(&self, other: &TensorTrace) -> bool {
        (self.begin_offset, self.chunks, self.offsets_crc) == (other.begin_offset, other.chunks, other.offsets_crc)
    }
}

struct ChunkJob {
    codec: TensorCodec,
    decode: bool,
    header: ChunkHeader,
    body: Vec<u8>,
    seq: u64,
    offset: u64,
    record_len: u64,
}

impl ChunkJob {
    fn decode(self) -> Result<Event> {
        let element_offset = self.header.chunk_index * self.codec.descriptor.chunk_elements;
        if !self.decode {
            self.codec.check_header(&self.header).map_err(|e| e.at_record(self.seq).at_offset(self.offset))?;
            let mut payload = self.body;
            payload.drain(..crate::format::CHUNK_HEADER_LEN.min(payload.len()));
            return Ok(Event::EncodedChunk(EncodedChunk {
                tensor_id: self.header.tensor_id,
                chunk_index: self.header.chunk_index,
                element_offset,
                len: self.codec.descriptor.chunk_len(self.header.chunk_index),
                decoded_crc: self.header.decoded_crc,
                payload,
                offset: self.offset,
            }));
        }
        let payload = self.body.get(crate::format::CHUNK_HEADER_LEN..).unwrap_or_default();
        let values =
            self.codec.decode_chunk(&self.header, payload).map_err(|e| e.at_record(self.seq).at_offset(self.offset))?;
        Ok(Event::Chunk(Chunk {
            tensor_id: self.header.tensor_id,
            chunk_index: self.header.chunk_index,
            element_offset,
            values,
            payload_len: payload.len() as u64,
            record_len: self.record_len,
        }))
    }
}

enum Step {
    Ready(Event),
    Chunk(Box<ChunkJob>),
}

/// Reads one gradwire stream from `R`.
///
/// # Examples
/// ```
/// use gradwire_codec::{Event, Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
/// let registry = Registry::core();
/// let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
/// w.write_tensor(TensorSpec::new("g", &[3], registry.parse_pipeline("raw").unwrap()), &[1.0, 2.0, 3.0]).unwrap();
/// let bytes = w.finish().unwrap();
///
/// let mut reader = Reader::new(&bytes[..], &registry);
/// let mut values = Vec::new();
/// while let Some(event) = reader.next_event().unwrap() {
///     if let Event::Chunk(chunk) = event {
///         values.extend(chunk.values);
///     }
/// }
/// assert_eq!(values, [1.0, 2.0, 3.0]);
/// ```
pub struct Reader<'r, R: Read> {
    input: R,
    registry: &'r Registry,
    options: ReaderOptions,
    pos: u64,
    started: bool,
    ended: bool,
    seq: u64,
    seed: u64,
    n_tensors: u32,
    names: HashSet<String>,
    open: BTreeMap<u32, OpenTensor>,
    index_offset: Option<u64>,
    traces: Vec<TensorTrace>,
    queue: VecDeque<Result<Event>>,
    pending: Option<Result<Step>>,
    failed: Option<Error>,
    pool: Option<rayon::ThreadPool>,
    side_info: Option<Arc<dyn SideInfoProvider>>,
}

impl<'r, R: Read> Reader<'r, R> {
    /// A reader with default options (default limits, one thread).
    pub fn new(input: R, registry: &'r Registry) -> Self {
        Reader::with_options(input, registry, ReaderOptions::default())
    }

    /// A reader with the given options.
    pub fn with_options(input: R, registry: &'r Registry, options: ReaderOptions) -> Self {
        let pool = (options.threads > 1)
            .then(|| rayon::ThreadPoolBuilder::new().num_threads(options.threads).build().ok())
            .flatten();
        Reader {
            input,
            registry,
            options,
            pos: 0,
            started: false,
            ended: false,
            seq: 0,
            seed: 0,
            n_tensors: 0,
            names: HashSet::new(),
            open: BTreeMap::new(),
            index_offset: None,
            traces: Vec::new(),
            queue: VecDeque::new(),
            pending: None,
            failed: None,
            pool,
            side_info: None,
        }
    }

    /// Gives the reader side information (`crate::side_info`): tensors whose pipeline decodes
    /// against it take theirs from `provider` by name, checked when their TENSOR_BEGIN is read.
    /// Without a provider such tensors fail with [`ErrorCode::SideInfoMissing`] (when decoding).
    pub fn set_side_info(&mut self, provider: Arc<dyn SideInfoProvider>) {
        self.side_info = Some(provider);
    }

    /// Bytes consumed so far.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Returns the inner reader (positioned after END once the stream is complete).
    pub fn into_inner(self) -> R {
        self.input
    }

    /// The next event, `Ok(None)` after END. After an error every later call returns it again.
    ///
    /// # Errors
    /// Any [`ErrorCode`]: framing, checksum, ordering, codec, limits, truncation, I/O; located at
    /// the record, tensor, chunk and byte offset where it was found.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.queue.is_empty() && !self.ended {
            self.fill_queue();
        }
        match self.queue.pop_front() {
            None => Ok(None),
            Some(Ok(ev)) => Ok(Some(ev)),
            Some(Err(e)) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Reads records until at least one event (or error) is queued. Consecutive chunks are
    /// gathered into a batch and decoded together, in parallel when configured.
    fn fill_queue(&mut self) {
        let batch_size = self.options.threads * 2;
        let mut jobs: Vec<ChunkJob> = Vec::new();
        loop {
            let step = match self.pending.take() {
                Some(s) => s,
                None => self.next_step(),
            };
            match step {
                Ok(Step::Chunk(job)) => {
                    jobs.push(*job);
                    if jobs.len() >= batch_size {
                        break;
                    }
                }
                Ok(Step::Ready(event)) if jobs.is_empty() => {
                    self.queue.push_back(Ok(event));
                    return;
                }
                Err(e) if jobs.is_empty() => {
                    self.queue.push_back(Err(e));
                    return;
                }
                other => {
                    self.pending = Some(other);
                    break;
                }
            }
        }
        let results: Vec<Result<Event>> = match &self.pool {
            Some(pool) if jobs.len() > 1 => pool.install(|| jobs.into_par_iter().map(ChunkJob::decode).collect()),
            _ => jobs.into_iter().map(ChunkJob::decode).collect(),
        };
        self.queue.extend(results);
    }

    fn next_step(&mut self) -> Result<Step> {
        if !self.started {
            self.started = true;
            read_preamble(&mut self.input)?;
            self.pos = PREAMBLE_LEN as u64;
        }
        let offset = self.pos;
        let seq = u32::try_from(self.seq).map_err(|_| {
            Error::new(ErrorCode::LimitExceeded, "a stream holds at most 2^32 records").at_offset(offset)
        })?;
        let raw = read_record(&mut self.input, offset, &self.options.limits, true, Some(seq))?.ok_or_else(|| {
            Error::new(ErrorCode::Truncated, format!("stream ended after {} records without an END record", self.seq))
                .at_offset(offset)
        })?;
        self.pos += raw.header.total_len();
        self.seq += 1;
        self.interpret(raw).map_err(|e| e.at_record(u64::from(seq)).at_offset(offset))
    }

    #[allow(clippy::too_many_lines, reason = "one arm per record type, each short; splitting hides the dispatch")]
    fn interpret(&mut self, raw: RawRecord) -> Result<Step> {
        let rtype = raw.header.rtype;
        let base = raw.body_offset();
        if (raw.header.seq == 0) != (rtype == record::STREAM_HEADER) {
            return Err(Error::new(
                ErrorCode::Malformed,
                format!(
                    "record type 0x{rtype:04x} at position {}: a stream starts with exactly one STREAM_HEADER",
                    raw.header.seq
                ),
            ));
        }
        let limits = self.options.limits;
        Ok(Step::Ready(match rtype {
            record::STREAM_HEADER => {
                let h = StreamHeader::decode(&raw.body, base)?;
                self.seed = h.seed;
                Event::Header(h)
            }
            record::TENSOR_BEGIN => {
                let d = TensorDescriptor::decode(&raw.body, base, &limits)?;
                let locate = |e: Error| e.in_tensor(d.name.clone());
                if d.tensor_id != self.n_tensors {
                    return Err(locate(Error::new(
                        ErrorCode::DuplicateTensor,
                        format!(
                            "tensor ID {} where {} was expected (IDs count up from 0)",
                            d.tensor_id, self.n_tensors
                        ),
                    )));
                }
                if self.index_offset.is_some() {
                    return Err(locate(Error::new(ErrorCode::IndexMismatch, "a TENSOR_BEGIN after the INDEX")));
                }
                if self.names.contains(&d.name) {
                    return Err(locate(Error::new(
                        ErrorCode::DuplicateTensor,
                        format!("a tensor named {:?} was already in this stream", d.name),
                    )));
                }
                Limits::check(u64::from(self.n_tensors) + 1, limits.max_tensors, "number of tensors")
                    .map_err(locate)?;
                Limits::check(self.open.len() as u64 + 1, limits.max_open_tensors, "open tensors").map_err(locate)?;
                let pipeline = self.registry.build_pipeline(&d.pipeline, &limits).map_err(locate)?;
                if d.n_elements > 0 {
                    pipeline.bounds(d.chunk_elements.min(d.n_elements) as usize).map_err(locate)?;
                }
                // Side information is needed only to decode: an inspecting reader goes on without.
                let (side, decode) = if self.options.decode_chunks {
                    match side_info::resolve(&d.name, d.n_elements, &pipeline.side_info(), self.side_info.as_deref()) {
                        Ok(side) => (side, true),
                        Err(e) if e.code() == ErrorCode::SideInfoMissing && self.options.encoded_without_side_info => {
                            (None, false)
                        }
                        Err(e) => return Err(locate(e)),
                    }
                } else {
                    (None, false)
                };
                self.n_tensors += 1;
                self.names.insert(d.name.clone());
                self.traces.push(TensorTrace { begin_offset: raw.offset, ..TensorTrace::default() });
                let d = Arc::new(d);
                let codec = TensorCodec {
                    descriptor: Arc::clone(&d),
                    pipeline: Arc::new(pipeline),
                    stream_seed: self.seed,
                    side,
                };
                self.open.insert(d.tensor_id, OpenTensor { codec, next_chunk: 0, decode });
                Event::TensorBegin(d)
            }
            record::CHUNK => {
                let (header, _) = ChunkHeader::decode(&raw.body, base)?;
                let t = self.open.get_mut(&header.tensor_id).ok_or_else(|| {
                    Error::new(
                        ErrorCode::UnknownTensor,
                        format!("chunk of tensor ID {}, which is not open", header.tensor_id),
                    )
                })?;
                let d = &t.codec.descriptor;
                if header.chunk_index != t.next_chunk || header.chunk_index >= d.n_chunks() {
                    return Err(Error::new(
                        ErrorCode::ChunkOrder,
                        format!(
                            "chunk {} where chunk {} of {} was expected",
                            header.chunk_index,
                            t.next_chunk,
                            d.n_chunks()
                        ),
                    )
                    .in_tensor(d.name.clone()));
                }
                t.next_chunk += 1;
                if let Some(trace) = self.traces.get_mut(header.tensor_id as usize) {
                    trace.chunks += 1;
                    trace.offsets_crc = crc32c::crc32c_append(trace.offsets_crc, &raw.offset.to_le_bytes());
                }
                let job = ChunkJob {
                    codec: t.codec.clone(),
                    decode: t.decode,
                    header,
                    record_len: raw.header.total_len(),
                    body: raw.body,
                    seq: u64::from(raw.header.seq),
                    offset: raw.offset,
                };
                return Ok(Step::Chunk(Box::new(job)));
            }
            record::TENSOR_END => {
                let end = TensorEnd::decode(&raw.body, base)?;
                let t = self.open.remove(&end.tensor_id).ok_or_else(|| {
                    Error::new(
                        ErrorCode::UnknownTensor,
                        format!("TENSOR_END of tensor ID {}, which is not open", end.tensor_id),
                    )
                })?;
                let d = &t.codec.descriptor;
                if end.n_chunks != d.n_chunks() || t.next_chunk != d.n_chunks() {
                    return Err(Error::new(
                        ErrorCode::ChunkOrder,
                        format!(
                            "tensor ends after {} chunks (declares {}), needs {}",
                            t.next_chunk,
                            end.n_chunks,
                            d.n_chunks()
                        ),
                    )
                    .in_tensor(d.name.clone()));
                }
                Event::TensorEnd(end)
            }
            record::END => {
                let end = EndRecord::decode(&raw.body, base)?;
                self.check_end(&end, raw.offset)?;
                self.ended = true;
                Event::End(end)
            }
            record::METADATA => Event::Metadata(Metadata::decode(&raw.body, base)?),
            record::INDEX => {
                // Parsed before the placement rules (FORMAT.md §6.0: step 2 before step 4).
                let index = Index::decode(&raw.body, base)?;
                let mismatch = |msg: String| Err(Error::new(ErrorCode::IndexMismatch, msg));
                if self.index_offset.is_some() {
                    return mismatch("a second INDEX record".into());
                }
                if let Some(t) = self.open.values().next() {
                    return mismatch(format!("an INDEX while tensor {:?} is still open", t.codec.descriptor.name));
                }
                if index.tensors.len() != self.n_tensors as usize {
                    return mismatch(format!(
                        "INDEX lists {} tensors, the stream has {}",
                        index.tensors.len(),
                        self.n_tensors
                    ));
                }
                for (id, (entry, seen)) in index.tensors.iter().zip(&self.traces).enumerate() {
                    if !TensorTrace::of_index_entry(entry).same_as(seen) {
                        return mismatch(format!(
                            "INDEX entry {id} (TENSOR_BEGIN at {}, {} chunks) does not list the records read (TENSOR_BEGIN at {}, {} chunks)",
                            entry.begin_offset,
                            entry.chunk_offsets.len(),
                            seen.begin_offset,
                            seen.chunks
                        ));
                    }
                }
                self.index_offset = Some(raw.offset);
                Event::Skipped { rtype, offset: raw.offset, body_len: raw.header.body_len }
            }
            _ if raw.header.is_skippable() => {
                Event::Skipped { rtype, offset: raw.offset, body_len: raw.header.body_len }
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::UnknownRecord,
                    format!("record type 0x{rtype:04x} is not defined and not skippable"),
                ));
            }
        }))
    }

    fn check_end(&self, end: &EndRecord, offset: u64) -> Result<()> {
        if let Some(t) = self.open.values().next() {
            return Err(Error::new(ErrorCode::ChunkOrder, "tensor still open at END")
                .in_tensor(t.codec.descriptor.name.clone()));
        }
        let mismatch = |what: &str, got: u64, want: u64| {
            Err(Error::new(ErrorCode::IndexMismatch, format!("END says {what} is {got}, the stream has {want}")))
        };
        if end.n_records != self.seq - 1 {
            return mismatch("the record count", end.n_records, self.seq - 1);
        }
        if end.stream_len != offset {
            return mismatch("the stream length", end.stream_len, offset);
        }
        if end.n_tensors != self.n_tensors {
            return mismatch("the tensor count", u64::from(end.n_tensors), u64::from(self.n_tensors));
        }
        if end.index_offset != self.index_offset.unwrap_or(0) {
            return mismatch("the INDEX offset", end.index_offset, self.index_offset.unwrap_or(0));
        }
        Ok(())
    }

    /// Reads the whole stream and assembles its tensors.
    ///
    /// # Errors
    /// The first error met; use [`Reader::read_all_salvage`] to keep what came before it.
    pub fn read_all(self) -> Result<DecodedStream> {
        let (stream, err) = self.read_all_salvage();
        match err {
            Some(e) => Err(e),
            None => Ok(stream),
        }
    }

    /// Reads the whole stream, keeping every intact chunk before the first error.
    ///
    /// Chunks arrive in order, so an incomplete tensor's [`DecodedTensor::values`] hold the prefix
    /// that arrived (`chunks_received` chunks); nothing is allocated for values that did not
    /// arrive, whatever size the stream declared.
    pub fn read_all_salvage(mut self) -> (DecodedStream, Option<Error>) {
        let mut out = DecodedStream::default();
        let err = loop {
            match self.next_event() {
                Ok(None) => break None,
                Ok(Some(Event::Header(h))) => out.header = h,
                Ok(Some(Event::TensorBegin(d))) => out.tensors.push(DecodedTensor {
                    descriptor: d,
                    values: Vec::new(),
                    chunks_received: 0,
                    complete: false,
                }),
                Ok(Some(Event::Chunk(c))) => {
                    if let Some(t) = out.tensors.get_mut(c.tensor_id as usize) {
                        t.values.extend_from_slice(&c.values);
                        t.chunks_received += 1;
                    }
                }
                Ok(Some(Event::TensorEnd(e))) => {
                    if let Some(t) = out.tensors.get_mut(e.tensor_id as usize) {
                        t.complete = true;
                    }
                }
                Ok(Some(Event::Metadata(m))) => out.metadata.push(m),
                Ok(Some(Event::End(e))) => out.end = Some(e),
                Ok(Some(_)) => {}
                Err(e) => break Some(e),
            }
        };
        (out, err)
    }
}

/// A whole decoded stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedStream {
    /// The stream header.
    pub header: StreamHeader,
    /// Tensors in stream order.
    pub tensors: Vec<DecodedTensor>,
    /// Contents of METADATA records, in order.
    pub metadata: Vec<Metadata>,
    /// The END record (absent when salvaging a truncated stream).
    pub end: Option<EndRecord>,
}

/// One decoded tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTensor {
    /// Its descriptor.
    pub descriptor: Arc<TensorDescriptor>,
    /// Its values; for an incomplete tensor of a salvaged stream, the prefix that arrived.
    pub values: Vec<f32>,
    /// Number of chunks decoded.
    pub chunks_received: u64,
    /// Whether its TENSOR_END was read.
    pub complete: bool,
}
