//! Reading one record from a byte source with every framing check of `spec/FORMAT.md` §4:
//! header CRC, reserved fields, the body length against the limits (before any allocation),
//! body CRC and zero padding. Shared by the streaming and the seekable reader.

use std::io::Read;

use crate::error::{Error, ErrorCode, Result};
use crate::format::{PREAMBLE_LEN, Preamble, RECORD_HEADER_LEN, RecordHeader, records::END_BODY_LEN};
use crate::ids::MAGIC;
use crate::ids::record;
use crate::limits::Limits;

/// Bytes read per step while a body streams in; allocation grows with bytes actually present,
/// so a truncated stream that declares a huge body costs no more memory than it holds.
const READ_STEP: usize = 1 << 20;

/// A record as read: header, stream offset of its first byte, and body.
#[derive(Debug)]
pub struct RawRecord {
    /// The validated header.
    pub header: RecordHeader,
    /// Stream offset of the record header.
    pub offset: u64,
    /// The body (empty when it was skipped without keeping it).
    pub body: Vec<u8>,
}

impl RawRecord {
    /// Stream offset of the first body byte.
    #[must_use]
    pub fn body_offset(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN as u64
    }
}

/// Fills `buf` from `r`; `Ok(false)` if the source ended before the first byte.
pub(crate) fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8], offset: u64, what: &str) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::new(
                    ErrorCode::Truncated,
                    format!("stream ended inside {what} ({filled} of {} bytes present)", buf.len()),
                )
                .at_offset(offset + filled as u64));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from_io(&e, what).at_offset(offset + filled as u64)),
        }
    }
    Ok(true)
}

/// Reads and checks the 16-byte preamble. A source shorter than that is `bad_magic` if the bytes
/// present already differ from the magic, `truncated` otherwise (FORMAT.md §3).
///
/// # Errors
/// [`ErrorCode::BadMagic`], [`ErrorCode::Truncated`], [`ErrorCode::ChecksumPreamble`],
/// [`ErrorCode::UnsupportedVersion`], [`ErrorCode::ReservedNonzero`], [`ErrorCode::Io`].
pub fn read_preamble(r: &mut impl Read) -> Result<Preamble> {
    let mut bytes = [0u8; PREAMBLE_LEN];
    let mut got = 0;
    while got < PREAMBLE_LEN {
        match r.read(&mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from_io(&e, "the preamble").at_offset(got as u64)),
        }
    }
    if got < PREAMBLE_LEN {
        let n = got.min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(Error::new(ErrorCode::BadMagic, format!("found {:02x?}, not the gradwire magic", &bytes[..n]))
                .at_offset(0));
        }
        return Err(Error::new(ErrorCode::Truncated, format!("stream ended inside the preamble ({got} of 16 bytes)"))
            .at_offset(got as u64));
    }
    Preamble::decode(&bytes)
}

/// The largest body a record of type `rtype` may have under `limits`.
#[must_use]
pub fn body_limit(rtype: u16, limits: &Limits) -> u64 {
    match rtype {
        record::STREAM_HEADER | record::TENSOR_BEGIN | record::METADATA => limits.max_header_body,
        record::TENSOR_END => 16,
        record::END => END_BODY_LEN as u64,
        _ => limits.max_record_body,
    }
}

/// Reads the record at `offset`. Returns `Ok(None)` when the source ends exactly at a record
/// boundary (the caller decides whether that is truncation). With `keep_body == false` the body is
/// streamed through the CRC and dropped. With `expected_seq`, the sequence number is checked right
/// after the header CRC, before the body length (FORMAT.md §4 step 2).
///
/// # Errors
/// Framing errors ([`ErrorCode::BadSync`], [`ErrorCode::ChecksumHeader`],
/// [`ErrorCode::ReservedNonzero`], [`ErrorCode::LimitExceeded`], [`ErrorCode::Truncated`],
/// [`ErrorCode::ChecksumBody`], [`ErrorCode::NonzeroPadding`], [`ErrorCode::Sequence`]) located
/// at the record.
pub fn read_record(
    r: &mut impl Read,
    offset: u64,
    limits: &Limits,
    keep_body: bool,
    expected_seq: Option<u32>,
) -> Result<Option<RawRecord>> {
    let mut hbytes = [0u8; RECORD_HEADER_LEN];
    if !read_exact_or_eof(r, &mut hbytes, offset, "a record header")? {
        return Ok(None);
    }
    let header = RecordHeader::decode(&hbytes, offset)?;
    if let Some(seq) = expected_seq
        && header.seq != seq
    {
        return Err(Error::new(
            ErrorCode::Sequence,
            format!("record sequence number {} where {seq} was expected", header.seq),
        )
        .at_record(u64::from(seq))
        .at_offset(offset));
    }
    let locate = |e: Error| e.at_record(u64::from(header.seq)).at_offset(offset);
    Limits::check(
        header.body_len,
        body_limit(header.rtype, limits),
        &format!("body length of record type 0x{:04x}", header.rtype),
    )
    .map_err(locate)?;
    let body_offset = offset + RECORD_HEADER_LEN as u64;
    let len = header.body_len as usize;
    let truncated = |done: usize| {
        locate(
            Error::new(
                ErrorCode::Truncated,
                format!("stream ended inside a record body ({done} of {len} bytes present)"),
            )
            .at_offset(body_offset + done as u64),
        )
    };
    let mut body = Vec::new();
    let crc = if keep_body {
        // `take` + `read_to_end` grows the buffer only as bytes arrive: a truncated stream that
        // declares a large body costs no more memory than it holds.
        body.reserve_exact(len.min(READ_STEP));
        let got = r
            .by_ref()
            .take(len as u64)
            .read_to_end(&mut body)
            .map_err(|e| locate(Error::from_io(&e, "a record body")))?;
        if got < len {
            return Err(truncated(got));
        }
        crc32c::crc32c(&body)
    } else {
        let mut crc = 0u32;
        let mut done = 0usize;
        let mut step = vec![0u8; len.min(READ_STEP)];
        while done < len {
            let piece = &mut step[..(len - done).min(READ_STEP)];
            if !read_exact_or_eof(r, piece, body_offset + done as u64, "a record body")? {
                return Err(truncated(done));
            }
            crc = crc32c::crc32c_append(crc, piece);
            done += piece.len();
        }
        crc
    };
    if crc != header.body_crc {
        return Err(locate(Error::new(
            ErrorCode::ChecksumBody,
            format!("stored 0x{:08x}, computed 0x{crc:08x} over {len} bytes", header.body_crc),
        )));
    }
    let mut pad = [0u8; 8];
    let pad = &mut pad[..header.padding_len() as usize];
    let pad_offset = body_offset + header.body_len;
    if !read_exact_or_eof(r, pad, pad_offset, "record padding")? && !pad.is_empty() {
        return Err(locate(
            Error::new(ErrorCode::Truncated, "stream ended before the record padding").at_offset(pad_offset),
        ));
    }
    if pad.iter().any(|&b| b != 0) {
        return Err(locate(
            Error::new(ErrorCode::NonzeroPadding, format!("padding bytes {pad:02x?} must be zero"))
                .at_offset(pad_offset),
        ));
    }
    Ok(Some(RawRecord { header, offset, body }))
}
