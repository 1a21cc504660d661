//! Finding an archive's streams (`spec/FORMAT.md` §18.4): from the index when the trailer and
//! the index check out, otherwise by walking the file stream by stream, skipping old index
//! blocks and trailers, and resynchronizing on the next stream magic after damage.

use std::io::{BufReader, Read, Seek, SeekFrom};

use super::layout::{
    ArchiveEntry, EntryTensor, INDEX_MAGIC, MAX_INDEX_LEN, TRAILER_LEN, TRAILER_MAGIC, decode_index, decode_trailer,
    index_block_len,
};
use super::window::Window;
use crate::error::{Error, ErrorCode, Result};
use crate::format::Value;
use crate::ids::MAGIC;
use crate::limits::Limits;
use crate::registry::Registry;
use crate::stream::{Event, Reader, ReaderOptions};

/// A byte range of an archive that holds no intact stream.
#[derive(Debug, Clone)]
pub struct Damage {
    /// Offset of the range in the archive.
    pub offset: u64,
    /// Its length.
    pub length: u64,
    /// Why the stream that starts there (if any) could not be read.
    pub error: Error,
    /// Whether the range ends with a valid END record whose stream starts inside the range: a
    /// complete stream, damaged, which must never be dropped.
    pub ends_with_stream: bool,
}

impl Damage {
    /// Whether this is a torn tail, as a crash while appending leaves it: at the end of the file,
    /// a stream, index block or trailer cut short (`truncated`), not ending with a valid END
    /// record. Anything else (a damaged complete stream, bytes that start nothing) is kept.
    #[must_use]
    pub fn is_torn_tail(&self, file_len: u64) -> bool {
        self.offset + self.length == file_len && self.error.code() == ErrorCode::Truncated && !self.ends_with_stream
    }
}

/// Where an archive's streams are.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Intact streams, in file order.
    pub entries: Vec<ArchiveEntry>,
    /// Ranges without an intact stream, in file order.
    pub damaged: Vec<Damage>,
    /// Length of the file when it was read.
    pub file_len: u64,
    /// Offset of the index block, when the layout came from a valid index.
    pub index_offset: Option<u64>,
}

impl Layout {
    /// Where the next stream goes: after the last intact stream or damaged range, dropping the
    /// index and trailer and a torn tail.
    #[must_use]
    pub fn append_at(&self) -> u64 {
        if let Some(offset) = self.index_offset {
            return offset;
        }
        let entries_end = self.entries.last().map_or(0, |e| e.offset + e.length);
        let damage_end = self
            .damaged
            .iter()
            .filter(|d| !d.is_torn_tail(self.file_len))
            .map(|d| d.offset + d.length)
            .max()
            .unwrap_or(0);
        entries_end.max(damage_end)
    }
}

/// Reads the stream at `offset` (at most `max_len` bytes) structurally, every record checksum
/// verified, and describes it.
pub(crate) fn read_entry<R: Read + Seek>(
    input: R,
    offset: u64,
    max_len: u64,
    registry: &Registry,
    limits: Limits,
) -> Result<ArchiveEntry> {
    let window = BufReader::with_capacity(1 << 16, Window::new(input, offset, max_len));
    let mut reader =
        Reader::with_options(window, registry, ReaderOptions::default().limits(limits).decode_chunks(false));
    let mut entry = ArchiveEntry { offset, length: 0, round: None, client: None, tensors: Vec::new() };
    while let Some(event) = reader.next_event()? {
        match event {
            Event::Header(h) => {
                entry.round = match h.metadata.get("fl.round") {
                    Some(Value::U64(r)) => Some(*r),
                    _ => None,
                };
                entry.client = match h.metadata.get("fl.client_id") {
                    Some(Value::Utf8(c)) => Some(c.clone()),
                    _ => None,
                };
            }
            Event::TensorBegin(d) => {
                let codec = registry.pipeline_to_text(&d.pipeline)?;
                entry.tensors.push(EntryTensor { name: d.name.clone(), n_elements: d.n_elements, codec });
            }
            Event::End(_) => {
                entry.length = reader.position();
                return Ok(entry);
            }
            _ => {}
        }
    }
    Err(Error::new(ErrorCode::Truncated, "the stream ends before its END record"))
}

/// The first offset after `from` where the stream magic appears, or `file_len`.
fn next_magic<R: Read + Seek>(input: &mut R, from: u64, file_len: u64) -> Result<u64> {
    const BLOCK: usize = 1 << 20;
    let io = |e: std::io::Error| Error::from_io(&e, "scanning the archive");
    let mut pos = from;
    let mut buf = vec![0u8; BLOCK + MAGIC.len()];
    while pos < file_len {
        input.seek(SeekFrom::Start(pos)).map_err(io)?;
        let want = (file_len - pos).min(buf.len() as u64) as usize;
        if input.read_exact(&mut buf[..want]).is_err() {
            return Ok(file_len); // the file shrank while being read: no further stream
        }
        if let Some(i) = buf[..want].windows(MAGIC.len()).position(|w| w == MAGIC) {
            return Ok(pos + i as u64);
        }
        if want < MAGIC.len() {
            break;
        }
        pos += (want - MAGIC.len() + 1) as u64;
    }
    Ok(file_len)
}

/// Whether the range `start..end` ends with a valid END record (header CRC, type END, body)
/// whose stream begins inside the range: a complete stream whose damage lies elsewhere.
fn ends_with_stream<R: Read + Seek>(input: &mut R, start: u64, end: u64) -> bool {
    use crate::format::{END_BODY_LEN, EndRecord, RECORD_HEADER_LEN, RecordHeader};
    let total = (RECORD_HEADER_LEN + END_BODY_LEN) as u64;
    let mut bytes = [0u8; RECORD_HEADER_LEN + END_BODY_LEN];
    if end - start < total || input.seek(SeekFrom::Start(end - total)).is_err() || input.read_exact(&mut bytes).is_err()
    {
        return false;
    }
    let (head, body) = bytes.split_at(RECORD_HEADER_LEN);
    let Ok(head) = <&[u8; RECORD_HEADER_LEN]>::try_from(head) else { return false };
    let Ok(header) = RecordHeader::decode(head, 0) else { return false };
    if header.rtype != crate::ids::record::END || crate::format::crc32c(body) != header.body_crc {
        return false;
    }
    EndRecord::decode(body, 0).is_ok_and(|e| e.stream_len <= end - total - start)
}

/// Whether `len` bytes at `pos` are an index block with a matching CRC (read in pieces, at most
/// `limits.max_record_body` bytes), so that a walk may skip them without skipping a stream.
fn is_index_block<R: Read + Seek>(input: &mut R, pos: u64, len: u64, file_len: u64, limits: Limits) -> bool {
    let _ = limits;
    if len < 36 || len > file_len - pos || len > MAX_INDEX_LEN || input.seek(SeekFrom::Start(pos)).is_err() {
        return false;
    }
    let mut crc = 0u32;
    let mut left = len - 4;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        if input.read_exact(&mut buf[..n]).is_err() {
            return false;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 4];
    input.read_exact(&mut stored).is_ok() && stored == crc.to_le_bytes()
}

/// Whether the 32 bytes at `pos` are a trailer with a matching CRC (of any index: an older one).
fn is_trailer<R: Read + Seek>(input: &mut R, pos: u64, file_len: u64) -> bool {
    let mut t = [0u8; TRAILER_LEN as usize];
    file_len - pos >= TRAILER_LEN
        && input.seek(SeekFrom::Start(pos)).is_ok()
        && input.read_exact(&mut t).is_ok()
        && t[24..28] == [0; 4]
        && crate::format::crc32c(&t[..28]).to_le_bytes() == t[28..]
}

/// The layout from the index, when the file ends with a valid trailer pointing at a valid index.
pub(crate) fn from_index<R: Read + Seek>(input: &mut R, file_len: u64) -> Option<Layout> {
    if file_len < TRAILER_LEN {
        return None;
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    input.seek(SeekFrom::Start(file_len - TRAILER_LEN)).ok()?;
    input.read_exact(&mut trailer).ok()?;
    let (offset, len) = decode_trailer(&trailer, file_len)?;
    if len > MAX_INDEX_LEN {
        return None;
    }
    let mut block = vec![0u8; usize::try_from(len).ok()?];
    input.seek(SeekFrom::Start(offset)).ok()?;
    input.read_exact(&mut block).ok()?;
    let entries = decode_index(&block, offset).ok()?;
    Some(Layout { entries, damaged: Vec::new(), file_len, index_offset: Some(offset) })
}

/// The layout by walking every byte range of the file.
pub(crate) fn scan<R: Read + Seek>(
    input: &mut R,
    file_len: u64,
    registry: &Registry,
    limits: Limits,
) -> Result<Layout> {
    let io = |e: std::io::Error| Error::from_io(&e, "reading the archive");
    let mut layout = Layout { entries: Vec::new(), damaged: Vec::new(), file_len, index_offset: None };
    let mut pos = 0;
    while pos < file_len {
        let mut head = [0u8; 24];
        let n = ((file_len - pos).min(24)) as usize;
        input.seek(SeekFrom::Start(pos)).map_err(io)?;
        if let Err(e) = input.read_exact(&mut head[..n]) {
            // The file shrank since its length was read (a writer truncating its old index).
            let error = Error::from_io(&e, "reading the archive").context(&format!("at archive offset {pos}"));
            layout.damaged.push(Damage { offset: pos, length: file_len - pos, error, ends_with_stream: false });
            break;
        }
        let head = &head[..n];
        let problem = if head.starts_with(&MAGIC) {
            match read_entry(&mut *input, pos, file_len - pos, registry, limits) {
                Ok(entry) => {
                    pos += entry.length;
                    layout.entries.push(entry);
                    continue;
                }
                Err(e) => e,
            }
        } else if let Some(len) = index_block_len(head).filter(|&l| is_index_block(input, pos, l, file_len, limits)) {
            pos += len; // an older index block: a cache, skipped
            continue;
        } else if head.starts_with(&TRAILER_MAGIC) && is_trailer(input, pos, file_len) {
            pos += TRAILER_LEN;
            continue;
        } else if head.starts_with(&INDEX_MAGIC) || head.starts_with(&TRAILER_MAGIC) {
            Error::new(ErrorCode::Truncated, "the file ends inside an index block or trailer, or its length is wrong")
        } else if head.len() < MAGIC.len() && [MAGIC, INDEX_MAGIC, TRAILER_MAGIC].iter().any(|m| m.starts_with(head)) {
            Error::new(ErrorCode::Truncated, "the file ends inside a magic number")
        } else {
            Error::new(ErrorCode::BadMagic, "bytes that start no stream, index block or trailer")
        };
        let next = next_magic(input, pos + 1, file_len)?;
        let error = problem.context(&format!("the stream at archive offset {pos}"));
        let ends_with_stream = ends_with_stream(input, pos, next);
        layout.damaged.push(Damage { offset: pos, length: next - pos, error, ends_with_stream });
        pos = next;
    }
    Ok(layout)
}
