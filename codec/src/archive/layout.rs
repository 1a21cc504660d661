//! The archive's index block and trailer (`spec/FORMAT.md` §18.2, §18.3): what they hold and
//! their exact bytes. Both are caches of what the streams say; a reader that finds either
//! missing, damaged or inconsistent scans the streams instead.

use crate::error::{Error, ErrorCode, Result};
use crate::format::crc32c;

/// First 8 bytes of an index block.
pub const INDEX_MAGIC: [u8; 8] = *b"GWAINDEX";
/// First 8 bytes of the trailer.
pub const TRAILER_MAGIC: [u8; 8] = *b"GWATRAIL";
/// Length of the trailer, the last bytes of an indexed archive.
pub const TRAILER_LEN: u64 = 32;
/// Version of the index block layout.
pub const INDEX_VERSION: u32 = 1;
/// Bytes of an index block before its entries.
const INDEX_HEADER_LEN: usize = 32;
/// Largest index block (256 MiB, about 4 million entries of one tensor): writers refuse to
/// write a larger one, readers walk the streams instead of reading it.
pub const MAX_INDEX_LEN: u64 = 1 << 28;

/// One tensor of an entry, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTensor {
    /// Tensor name.
    pub name: String,
    /// Number of values.
    pub n_elements: u64,
    /// Its pipeline in text form (`Registry::pipeline_to_text`).
    pub codec: String,
}

/// One stream of an archive and what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Offset of the stream's first byte in the archive file.
    pub offset: u64,
    /// Length of the stream in bytes, preamble to the end of END.
    pub length: u64,
    /// `fl.round` of the stream header, when present.
    pub round: Option<u64>,
    /// `fl.client_id` of the stream header, when present.
    pub client: Option<String>,
    /// The tensors, in stream order.
    pub tensors: Vec<EntryTensor>,
}

impl ArchiveEntry {
    /// Total number of values over every tensor.
    #[must_use]
    pub fn n_values(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements).sum()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The index block listing `entries`.
///
/// # Errors
/// [`ErrorCode::LimitExceeded`] when the block would exceed [`MAX_INDEX_LEN`] (start another
/// archive).
pub fn encode_index(entries: &[ArchiveEntry]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + 64 * entries.len() + 4);
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // block_len, patched below
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        let flags = u32::from(e.round.is_some()) | (u32::from(e.client.is_some()) << 1);
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(e.tensors.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.round.unwrap_or(0).to_le_bytes());
        put_str(&mut out, e.client.as_deref().unwrap_or(""));
        for t in &e.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&t.n_elements.to_le_bytes());
            put_str(&mut out, &t.codec);
        }
    }
    let block_len = out.len() as u64 + 4;
    if block_len > MAX_INDEX_LEN {
        return Err(Error::new(
            ErrorCode::LimitExceeded,
            format!(
                "an index of {} entries takes {block_len} bytes, more than 2^28; start another archive",
                entries.len()
            ),
        ));
    }
    out[16..24].copy_from_slice(&block_len.to_le_bytes());
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A bounds-checked reader over an index block.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            Error::new(ErrorCode::Malformed, format!("archive index ends inside a field at byte {}", self.pos))
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let at = self.pos;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Error::new(ErrorCode::Malformed, format!("archive index string at byte {at} is not UTF-8")))
    }
}

/// The length an index block declares (`block_len`), from its first 24 bytes; `None` when they
/// are not an index block header.
#[must_use]
pub fn index_block_len(head: &[u8]) -> Option<u64> {
    if head.len() < 24 || head[..8] != INDEX_MAGIC {
        return None;
    }
    Some(u64::from_le_bytes([head[16], head[17], head[18], head[19], head[20], head[21], head[22], head[23]]))
}

/// Parses an untrusted index block whose entries must lie in `0..data_end`, in order, without
/// overlapping.
///
/// # Errors
/// [`ErrorCode::BadMagic`], [`ErrorCode::ChecksumBody`], [`ErrorCode::UnsupportedVersion`],
/// [`ErrorCode::ReservedNonzero`], [`ErrorCode::Malformed`] or [`ErrorCode::IndexMismatch`]:
/// the caller falls back to scanning.
pub fn decode_index(bytes: &[u8], data_end: u64) -> Result<Vec<ArchiveEntry>> {
    if bytes.len() < INDEX_HEADER_LEN + 4 || bytes[..8] != INDEX_MAGIC {
        return Err(Error::new(ErrorCode::BadMagic, "no archive index block"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c(body).to_le_bytes() != crc {
        return Err(Error::new(ErrorCode::ChecksumBody, "archive index CRC32C does not match"));
    }
    let mut f = Fields { bytes: body, pos: 8 };
    let version = f.u32()?;
    if version != INDEX_VERSION {
        return Err(Error::new(ErrorCode::UnsupportedVersion, format!("archive index version {version}")));
    }
    if f.u32()? != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, "archive index reserved field"));
    }
    if f.u64()? != bytes.len() as u64 {
        return Err(Error::new(ErrorCode::Malformed, "archive index block_len does not match its extent"));
    }
    let count = f.u64()?;
    let mut entries = Vec::new();
    let mut previous_end = 0u64;
    for i in 0..count {
        // Each entry takes at least 34 bytes, so a huge count fails here instead of allocating.
        let (offset, length, flags, n_tensors, round) = (f.u64()?, f.u64()?, f.u32()?, f.u32()?, f.u64()?);
        let client = f.string()?;
        if flags & !3 != 0 || (flags & 1 == 0 && round != 0) || (flags & 2 == 0 && !client.is_empty()) {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                format!("archive index entry {i}: flags 0x{flags:x}, or a round or client its flags say is absent"),
            ));
        }
        let end = offset.checked_add(length).filter(|&e| offset >= previous_end && e <= data_end && length > 0);
        let Some(end) = end else {
            return Err(Error::new(
                ErrorCode::IndexMismatch,
                format!("archive index entry {i} ({offset}, {length} bytes) is out of order or outside the streams"),
            ));
        };
        previous_end = end;
        let mut tensors = Vec::new();
        for _ in 0..n_tensors {
            let name = f.string()?;
            let n_elements = f.u64()?;
            tensors.push(EntryTensor { name, n_elements, codec: f.string()? });
        }
        entries.push(ArchiveEntry {
            offset,
            length,
            round: (flags & 1 != 0).then_some(round),
            client: (flags & 2 != 0).then_some(client),
            tensors,
        });
    }
    if f.pos != body.len() {
        return Err(Error::new(ErrorCode::Malformed, "archive index has bytes after its last entry"));
    }
    Ok(entries)
}

/// The 32-byte trailer: magic, index offset, index length, 4 reserved bytes, CRC32C of the first 28.
#[must_use]
pub fn encode_trailer(index_offset: u64, index_len: u64) -> [u8; TRAILER_LEN as usize] {
    let mut out = [0u8; TRAILER_LEN as usize];
    out[..8].copy_from_slice(&TRAILER_MAGIC);
    out[8..16].copy_from_slice(&index_offset.to_le_bytes());
    out[16..24].copy_from_slice(&index_len.to_le_bytes());
    let crc = crc32c(&out[..28]);
    out[28..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The index extent a trailer points at, when the trailer is valid and the extent ends where the
/// trailer begins (`file_len - 32`).
#[must_use]
pub fn decode_trailer(bytes: &[u8], file_len: u64) -> Option<(u64, u64)> {
    if bytes.len() != TRAILER_LEN as usize || bytes[..8] != TRAILER_MAGIC || bytes[24..28] != [0; 4] {
        return None;
    }
    if crc32c(&bytes[..28]).to_le_bytes() != bytes[28..] {
        return None;
    }
    let offset =
        u64::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]]);
    let len =
        u64::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19], bytes[20], bytes[21], bytes[22], bytes[23]]);
    (offset.checked_add(len)?.checked_add(TRAILER_LEN)? == file_len).then_some((offset, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64, length: u64) -> ArchiveEntry {
        ArchiveEntry {
            offset,
            length,
            round: Some(3),
            client: Some("client-7".into()),
            tensors: vec![EntryTensor { name: "fc1.weight".into(), n_elements: 100, codec: "bf16".into() }],
        }
    }

    #[test]
    fn index_and_trailer_round_trip() {
        let entries = vec![entry(0, 100), ArchiveEntry { round: None, client: None, ..entry(100, 50) }];
        let block = encode_index(&entries).unwrap();
        assert_eq!(decode_index(&block, 150).unwrap(), entries);
        assert_eq!(index_block_len(&block), Some(block.len() as u64));
        let t = encode_trailer(150, block.len() as u64);
        assert_eq!(decode_trailer(&t, 150 + block.len() as u64 + 32), Some((150, block.len() as u64)));
        assert_eq!(decode_trailer(&t, 151 + block.len() as u64 + 32), None);
    }

    #[test]
    fn damaged_or_inconsistent_indexes_are_refused() {
        let entries = vec![entry(0, 100), entry(100, 50)];
        let block = encode_index(&entries).unwrap();
        assert!(decode_index(&block, 149).is_err(), "an entry past the streams");
        for i in 0..block.len() {
            let mut b = block.clone();
            b[i] ^= 0x10;
            assert!(decode_index(&b, 150).is_err(), "byte {i}");
        }
        for cut in 0..block.len() {
            assert!(decode_index(&block[..cut], 150).is_err());
        }
        let overlapping = encode_index(&[entry(0, 100), entry(50, 100)]).unwrap();
        assert_eq!(decode_index(&overlapping, 150).unwrap_err().code(), ErrorCode::IndexMismatch);
    }
}
