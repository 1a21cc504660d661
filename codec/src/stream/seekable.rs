//! Random access to a stream held in a seekable source (a file): read the END record from the
//! last 64 bytes, follow its INDEX (or, without one, scan the record headers), then decode any
//! tensor or chunk without reading the others.
//!
//! The index is a cache, never trusted on its own: every record it points to must carry a valid
//! header CRC and body CRC and name the tensor and chunk the index says, or the read fails with
//! [`ErrorCode::IndexMismatch`].

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use super::chunk::TensorCodec;
use super::record_io::{RawRecord, body_limit, read_preamble, read_record};
use crate::error::{Error, ErrorCode, Result};
use crate::format::{
    ChunkHeader, END_BODY_LEN, EndRecord, Index, IndexEntry, PREAMBLE_LEN, RECORD_HEADER_LEN, RecordHeader,
    StreamHeader, TensorDescriptor,
};
use crate::ids::record;
use crate::limits::Limits;
use crate::registry::Registry;
use crate::side_info::{self, SideInfoProvider};

/// Random-access reader over `R: Read + Seek`.
///
/// # Examples
/// ```
/// use std::io::Cursor;
/// use gradwire_codec::{Registry, SeekableReader, StreamHeader, TensorSpec, Writer, WriterOptions};
/// let registry = Registry::core();
/// let opts = WriterOptions::default().chunk_elements(2);
/// let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), opts).unwrap();
/// let raw = registry.parse_pipeline("raw").unwrap();
/// w.write_tensor(TensorSpec::new("a", &[4], raw.clone()), &[1.0, 2.0, 3.0, 4.0]).unwrap();
/// w.write_tensor(TensorSpec::new("b", &[1], raw), &[9.0]).unwrap();
/// let bytes = w.finish().unwrap();
///
/// let mut r = SeekableReader::open(Cursor::new(bytes), &registry, Default::default()).unwrap();
/// assert_eq!(r.read_chunk(0, 1).unwrap(), vec![3.0, 4.0]);
/// assert_eq!(r.read_tensor_by_name("b").unwrap(), vec![9.0]);
/// ```
pub struct SeekableReader<R: Read + Seek> {
    input: R,
    limits: Limits,
    header: StreamHeader,
    end: EndRecord,
    index: Index,
    tensors: Vec<TensorCodec>,
    side_info: Option<Arc<dyn SideInfoProvider>>,
}

impl<R: Read + Seek> SeekableReader<R> {
    /// Opens a stream: preamble, header, END, INDEX (or a header scan), every TENSOR_BEGIN.
    ///
    /// # Errors
    /// Framing and checksum errors; [`ErrorCode::IndexMismatch`] when END or INDEX disagree with
    /// the records; [`ErrorCode::UnsupportedCodec`] for unknown codecs; I/O errors.
    pub fn open(mut input: R, registry: &Registry, limits: Limits) -> Result<Self> {
        let io = |what: &'static str| move |e: std::io::Error| Error::from_io(&e, what);
        input.seek(SeekFrom::Start(0)).map_err(io("seeking to the start"))?;
        read_preamble(&mut input)?;
        let first = read_record(&mut input, PREAMBLE_LEN as u64, &limits, true, Some(0))?
            .ok_or_else(|| Error::new(ErrorCode::Truncated, "no stream header").at_offset(PREAMBLE_LEN as u64))?;
        if first.header.rtype != record::STREAM_HEADER || first.header.seq != 0 {
            return Err(Error::new(ErrorCode::Malformed, "the first record is not STREAM_HEADER")
                .at_offset(PREAMBLE_LEN as u64));
        }
        let header = StreamHeader::decode(&first.body, first.body_offset())?;

        let (end, end_offset) = Self::read_end(&mut input, &limits)?;
        let index = if end.index_offset == 0 {
            Self::scan(&mut input, end_offset, &limits)?
        } else {
            if end.index_offset >= end_offset || end.index_offset % 8 != 0 {
                return Err(Error::new(
                    ErrorCode::IndexMismatch,
                    format!("END points at an INDEX at {} outside the stream", end.index_offset),
                ));
            }
            let rec = Self::indexed_record(&mut input, end.index_offset, &limits)?;
            if rec.header.rtype != record::INDEX {
                return Err(Error::new(
                    ErrorCode::IndexMismatch,
                    format!(
                        "END points at offset {}, which holds record type 0x{:04x}, not INDEX",
                        end.index_offset, rec.header.rtype
                    ),
                ));
            }
            Index::decode(&rec.body, rec.body_offset())?
        };
        Limits::check(index.tensors.len() as u64, limits.max_tensors, "number of tensors")?;
        if index.tensors.len() != end.n_tensors as usize {
            return Err(Error::new(
                ErrorCode::IndexMismatch,
                format!("INDEX lists {} tensors, END says {}", index.tensors.len(), end.n_tensors),
            ));
        }
        let mut tensors = Vec::with_capacity(index.tensors.len());
        for (i, entry) in index.tensors.iter().enumerate() {
            let rec = Self::indexed_record(&mut input, entry.begin_offset, &limits)?;
            if rec.header.rtype != record::TENSOR_BEGIN {
                return Err(Error::new(
                    ErrorCode::IndexMismatch,
                    format!("index entry {i} points at record type 0x{:04x}, not TENSOR_BEGIN", rec.header.rtype),
                )
                .at_offset(entry.begin_offset));
            }
            let d = TensorDescriptor::decode(&rec.body, rec.body_offset(), &limits)?;
            if d.tensor_id as usize != i || entry.chunk_offsets.len() as u64 != d.n_chunks() {
                return Err(Error::new(
                    ErrorCode::IndexMismatch,
                    format!(
                        "index entry {i} points at tensor ID {} with {} chunks; the index lists {}",
                        d.tensor_id,
                        d.n_chunks(),
                        entry.chunk_offsets.len()
                    ),
                )
                .in_tensor(d.name));
            }
            let pipeline = registry.build_pipeline(&d.pipeline, &limits).map_err(|e| e.in_tensor(d.name.clone()))?;
            if d.n_elements > 0 {
                pipeline
                    .bounds(d.chunk_elements.min(d.n_elements) as usize)
                    .map_err(|e| e.in_tensor(d.name.clone()))?;
            }
            tensors.push(TensorCodec {
                descriptor: Arc::new(d),
                pipeline: Arc::new(pipeline),
                stream_seed: header.seed,
                side: None,
            });
        }
        Ok(SeekableReader { input, limits, header, end, index, tensors, side_info: None })
    }

    /// Reads the END record from the last 64 bytes; whatever is wrong with them is truncation
    /// (FORMAT.md §8). Returns END and its offset.
    fn read_end(input: &mut R, limits: &Limits) -> Result<(EndRecord, u64)> {
        let io = |what: &'static str| move |e: std::io::Error| Error::from_io(&e, what);
        let len = input.seek(SeekFrom::End(0)).map_err(io("seeking to the end"))?;
        let end_len = (RECORD_HEADER_LEN + END_BODY_LEN) as u64;
        let end_offset = len.checked_sub(end_len).filter(|&o| o >= PREAMBLE_LEN as u64).ok_or_else(|| {
            Error::new(ErrorCode::Truncated, format!("{len} bytes cannot hold a stream with its END record"))
        })?;
        // Whatever is wrong with the last 64 bytes, the END record is missing: the file is cut.
        let end_rec = match Self::record_at(input, end_offset, limits) {
            Ok(rec) if rec.header.rtype == record::END => rec,
            Err(e) if e.code() == ErrorCode::Io => return Err(e),
            Ok(_) => {
                return Err(
                    Error::new(ErrorCode::Truncated, "the last 64 bytes are not an END record").at_offset(end_offset)
                );
            }
            Err(e) => {
                return Err(Error::new(ErrorCode::Truncated, format!("no END record in the last 64 bytes ({e})"))
                    .at_offset(end_offset));
            }
        };
        let end = EndRecord::decode(&end_rec.body, end_rec.body_offset()).map_err(|e| {
            Error::new(ErrorCode::Truncated, format!("no valid END record in the last 64 bytes ({e})"))
                .at_offset(end_offset)
        })?;
        if end.stream_len != end_offset || end.n_records != u64::from(end_rec.header.seq) {
            return Err(Error::new(
                ErrorCode::IndexMismatch,
                format!(
                    "END says the stream is {} bytes and {} records; found {end_offset} bytes before END, seq {}",
                    end.stream_len, end.n_records, end_rec.header.seq
                ),
            )
            .at_offset(end_offset));
        }
        Ok((end, end_offset))
    }

    fn record_at(input: &mut R, offset: u64, limits: &Limits) -> Result<RawRecord> {
        input.seek(SeekFrom::Start(offset)).map_err(|e| Error::from_io(&e, "seeking to a record").at_offset(offset))?;
        read_record(input, offset, limits, true, None)?
            .ok_or_else(|| Error::new(ErrorCode::Truncated, "no record at this offset").at_offset(offset))
    }

    /// Reads a record the index (or END) points at: a record header that fails its checks there
    /// means the pointer is wrong (`index_mismatch`); a valid header with a damaged body is the
    /// record's own damage (`checksum_body`, `nonzero_padding`).
    fn indexed_record(input: &mut R, offset: u64, limits: &Limits) -> Result<RawRecord> {
        Self::record_at(input, offset, limits).map_err(|e| match e.code() {
            ErrorCode::ChecksumBody | ErrorCode::NonzeroPadding | ErrorCode::Io => e,
            _ => {
                Error::new(ErrorCode::IndexMismatch, format!("no valid record where the index points: {}", e.detail()))
                    .at_offset(offset)
            }
        })
    }

    /// Builds the index by walking record headers (bodies are skipped, not read), checking each
    /// header, its sequence number, its type and its body length against the limits.
    fn scan(input: &mut R, end_offset: u64, limits: &Limits) -> Result<Index> {
        let mut index = Index::default();
        let mut offset = PREAMBLE_LEN as u64;
        let mut seq = 0u32;
        while offset < end_offset {
            input.seek(SeekFrom::Start(offset)).map_err(|e| Error::from_io(&e, "seeking").at_offset(offset))?;
            let mut h = [0u8; RECORD_HEADER_LEN];
            input.read_exact(&mut h).map_err(|e| Error::from_io(&e, "a record header").at_offset(offset))?;
            let header = RecordHeader::decode(&h, offset)?;
            if header.seq != seq {
                return Err(Error::new(
                    ErrorCode::Sequence,
                    format!("record sequence number {} where {seq} was expected", header.seq),
                )
                .at_offset(offset));
            }
            seq = seq.checked_add(1).ok_or_else(|| {
                Error::new(ErrorCode::LimitExceeded, "a stream holds at most 2^32 records").at_offset(offset)
            })?;
            Limits::check(header.body_len, body_limit(header.rtype, limits), "record body length")
                .map_err(|e| e.at_offset(offset))?;
            match header.rtype {
                record::TENSOR_BEGIN => {
                    Limits::check(index.tensors.len() as u64 + 1, limits.max_tensors, "number of tensors")?;
                    index.tensors.push(IndexEntry { begin_offset: offset, chunk_offsets: Vec::new() });
                }
                record::CHUNK => {
                    let mut b = [0u8; 4];
                    input.read_exact(&mut b).map_err(|e| Error::from_io(&e, "a chunk header").at_offset(offset))?;
                    let id = u32::from_le_bytes(b) as usize;
                    let t = index.tensors.get_mut(id).ok_or_else(|| {
                        Error::new(ErrorCode::UnknownTensor, format!("chunk of tensor ID {id} before its TENSOR_BEGIN"))
                            .at_offset(offset)
                    })?;
                    t.chunk_offsets.push(offset);
                }
                record::STREAM_HEADER | record::TENSOR_END | record::END => {}
                other if header.is_skippable() => {
                    let _ = other;
                }
                other => {
                    return Err(Error::new(
                        ErrorCode::UnknownRecord,
                        format!("record type 0x{other:04x} is not defined and not skippable"),
                    )
                    .at_offset(offset));
                }
            }
            offset = offset
                .checked_add(header.total_len())
                .ok_or_else(|| Error::new(ErrorCode::Malformed, "record length overflows"))?;
        }
        if offset != end_offset {
            return Err(Error::new(ErrorCode::IndexMismatch, "records do not end where the END record starts")
                .at_offset(offset));
        }
        Ok(index)
    }

    /// The stream header.
    #[must_use]
    pub fn header(&self) -> &StreamHeader {
        &self.header
    }

    /// The END record.
    #[must_use]
    pub fn end(&self) -> &EndRecord {
        &self.end
    }

    /// Gives the reader side information (`crate::side_info`): a tensor whose pipeline decodes
    /// against it takes its side tensor from `provider` by name, checked when first read.
    pub fn set_side_info(&mut self, provider: Arc<dyn SideInfoProvider>) {
        self.side_info = Some(provider);
        for t in &mut self.tensors {
            t.side = None;
        }
    }

    /// Descriptors of every tensor, by ID.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorDescriptor> {
        self.tensors.iter().map(|t| t.descriptor.as_ref())
    }

    /// Decodes one chunk.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for an unknown tensor or chunk; [`ErrorCode::IndexMismatch`]
    /// when the indexed record is not that chunk; checksum and codec errors.
    pub fn read_chunk(&mut self, tensor_id: u32, chunk_index: u64) -> Result<Vec<f32>> {
        let codec = self
            .tensors
            .get_mut(tensor_id as usize)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("no tensor with ID {tensor_id}")))?;
        if codec.side.is_none() {
            let d = &codec.descriptor;
            codec.side =
                side_info::resolve(&d.name, d.n_elements, &codec.pipeline.side_info(), self.side_info.as_deref())
                    .map_err(|e| e.in_tensor(d.name.clone()))?;
        }
        let codec = codec.clone();
        let name = codec.descriptor.name.clone();
        let offset =
            *self.index.tensors[tensor_id as usize].chunk_offsets.get(chunk_index as usize).ok_or_else(|| {
                Error::new(ErrorCode::InvalidArgument, format!("tensor {name:?} has no chunk {chunk_index}"))
            })?;
        let locate = |e: Error| e.in_tensor(name.clone()).in_chunk(chunk_index).at_offset(offset);
        let rec = Self::indexed_record(&mut self.input, offset, &self.limits).map_err(locate)?;
        if rec.header.rtype != record::CHUNK {
            let msg = format!("the index points at record type 0x{:04x}, not CHUNK", rec.header.rtype);
            return Err(locate(Error::new(ErrorCode::IndexMismatch, msg)));
        }
        let (header, payload) = ChunkHeader::decode(&rec.body, rec.body_offset()).map_err(locate)?;
        if header.tensor_id != tensor_id || header.chunk_index != chunk_index {
            let msg = format!("the index points at chunk {} of tensor ID {}", header.chunk_index, header.tensor_id);
            return Err(locate(Error::new(ErrorCode::IndexMismatch, msg)));
        }
        codec.decode_chunk(&header, payload).map_err(|e| e.at_offset(offset))
    }

    /// Decodes a whole tensor.
    ///
    /// # Errors
    /// As [`SeekableReader::read_chunk`].
    pub fn read_tensor(&mut self, tensor_id: u32) -> Result<Vec<f32>> {
        let n = self
            .tensors
            .get(tensor_id as usize)
            .map(|t| t.descriptor.n_chunks())
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("no tensor with ID {tensor_id}")))?;
        let mut values = Vec::new();
        for c in 0..n {
            values.extend(self.read_chunk(tensor_id, c)?);
        }
        Ok(values)
    }

    /// Decodes the tensor named `name`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for an unknown name; as [`SeekableReader::read_chunk`].
    pub fn read_tensor_by_name(&mut self, name: &str) -> Result<Vec<f32>> {
        let id = self
            .tensors
            .iter()
            .position(|t| t.descriptor.name == name)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("no tensor named {name:?}")))?;
        self.read_tensor(id as u32)
    }
}
