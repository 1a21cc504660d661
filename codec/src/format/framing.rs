//! The preamble and the record header: the two layouts that never change within a major version
//! (`spec/FORMAT.md` §3 and §4). Both carry a CRC32C that is verified before any field is trusted.

use super::wire::{Cursor, PutLe};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{FORMAT_MAJOR, MAGIC, RECORD_SYNC, record};

/// Length of the preamble in bytes.
pub const PREAMBLE_LEN: usize = 16;
/// Length of a record header in bytes.
pub const RECORD_HEADER_LEN: usize = 32;
/// Records start and end on multiples of this many bytes (bodies are zero-padded).
pub const ALIGN: u64 = 8;

/// CRC32C (Castagnoli) of `bytes`, the only checksum of format 1.
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// The version pair found in a preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// Format major version (1).
    pub major: u8,
    /// Format minor version (0 for 1.0).
    pub minor: u8,
}

impl Preamble {
    /// The preamble this crate writes.
    pub const CURRENT: Preamble = Preamble { major: FORMAT_MAJOR, minor: 0 };

    /// Serializes the 16 preamble bytes.
    #[must_use]
    pub fn encode(self) -> [u8; PREAMBLE_LEN] {
        let mut out = [0u8; PREAMBLE_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8] = self.major;
        out[9] = self.minor;
        let crc = crc32c(&out[..12]);
        out[12..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and validates 16 preamble bytes: magic, CRC, major version, reserved bytes.
    /// A newer minor version is accepted (compatibility is decided by feature bits).
    pub fn decode(bytes: &[u8; PREAMBLE_LEN]) -> Result<Preamble> {
        if bytes[..8] != MAGIC {
            return Err(Error::new(ErrorCode::BadMagic, format!("expected {MAGIC:02x?}, found {:02x?}", &bytes[..8]))
                .at_offset(0));
        }
        let stored = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let computed = crc32c(&bytes[..12]);
        if stored != computed {
            return Err(Error::new(
                ErrorCode::ChecksumPreamble,
                format!("stored 0x{stored:08x}, computed 0x{computed:08x}"),
            )
            .at_offset(12));
        }
        let p = Preamble { major: bytes[8], minor: bytes[9] };
        if p.major != FORMAT_MAJOR {
            return Err(Error::new(
                ErrorCode::UnsupportedVersion,
                format!("format {}.{}; this reader implements major {FORMAT_MAJOR}", p.major, p.minor),
            )
            .at_offset(8));
        }
        if bytes[10] != 0 || bytes[11] != 0 {
            return Err(Error::new(ErrorCode::ReservedNonzero, "preamble bytes 10..12 must be zero").at_offset(10));
        }
        Ok(p)
    }
}

/// The 32-byte header in front of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Record type; bit 15 = skippable.
    pub rtype: u16,
    /// Record flags: bits 0-7 reserved (must be zero), bits 8-15 unused (ignored).
    pub rflags: u16,
    /// Length of the body in bytes, excluding padding.
    pub body_len: u64,
    /// Sequence number: 0 for the stream header, then +1 per record.
    pub seq: u32,
    /// CRC32C of the body bytes.
    pub body_crc: u32,
}

impl RecordHeader {
    /// Whether readers that do not know this record type may skip it.
    #[must_use]
    pub fn is_skippable(&self) -> bool {
        self.rtype & record::SKIPPABLE_BIT != 0
    }

    /// Number of zero bytes that follow the body to reach the next multiple of [`ALIGN`].
    #[must_use]
    pub fn padding_len(&self) -> u64 {
        padding_for(self.body_len)
    }

    /// Total bytes the record occupies: header, body and padding.
    #[must_use]
    pub fn total_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + self.body_len + self.padding_len()
    }

    /// Serializes the header, computing its CRC.
    #[must_use]
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN);
        out.extend_from_slice(&RECORD_SYNC);
        out.put_u16(self.rtype);
        out.put_u16(self.rflags);
        out.put_u64(self.body_len);
        out.put_u32(self.seq);
        out.put_u32(self.body_crc);
        out.put_u32(0);
        let crc = crc32c(&out);
        out.put_u32(crc);
        let mut arr = [0u8; RECORD_HEADER_LEN];
        arr.copy_from_slice(&out);
        arr
    }

    /// Parses a header found at stream offset `offset`: sync marker, header CRC, reserved fields.
    /// The caller checks `body_len` against its limits and `seq` against its count.
    pub fn decode(bytes: &[u8; RECORD_HEADER_LEN], offset: u64) -> Result<RecordHeader> {
        if bytes[..4] != RECORD_SYNC {
            return Err(Error::new(
                ErrorCode::BadSync,
                format!("expected record marker {RECORD_SYNC:02x?}, found {:02x?}", &bytes[..4]),
            )
            .at_offset(offset));
        }
        let mut c = Cursor::new(bytes, offset);
        c.take(4, "sync")?;
        let rtype = c.u16("rtype")?;
        let rflags = c.u16("rflags")?;
        let body_len = c.u64("body_len")?;
        let seq = c.u32("seq")?;
        let body_crc = c.u32("body_crc32c")?;
        let reserved = c.u32("reserved")?;
        let stored = c.u32("header_crc32c")?;
        let computed = crc32c(&bytes[..28]);
        if stored != computed {
            return Err(Error::new(
                ErrorCode::ChecksumHeader,
                format!("stored 0x{stored:08x}, computed 0x{computed:08x}"),
            )
            .at_offset(offset));
        }
        if reserved != 0 || rflags & 0x00FF != 0 {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                format!("record header reserved field 0x{reserved:08x}, reserved flag bits 0x{:02x}", rflags & 0xFF),
            )
            .at_offset(offset));
        }
        Ok(RecordHeader { rtype, rflags, body_len, seq, body_crc })
    }
}

/// Zero bytes needed after a body of `len` bytes to reach a multiple of [`ALIGN`].
#[must_use]
pub fn padding_for(len: u64) -> u64 {
    (ALIGN - len % ALIGN) % ALIGN
}

/// Serializes a whole record (header, body, zero padding) into `out`.
pub fn encode_record(rtype: u16, seq: u32, body: &[u8], out: &mut Vec<u8>) {
    let header = RecordHeader { rtype, rflags: 0, body_len: body.len() as u64, seq, body_crc: crc32c(body) };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(body);
    out.resize(out.len() + header.padding_len() as usize, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn preamble_round_trips_and_rejects_damage() {
        let bytes = Preamble::CURRENT.encode();
        assert_eq!(Preamble::decode(&bytes).unwrap(), Preamble::CURRENT);
        let mut bad = bytes;
        bad[0] = b'P';
        assert_eq!(Preamble::decode(&bad).unwrap_err().code(), ErrorCode::BadMagic);
        let mut bad = bytes;
        bad[9] = 7;
        assert_eq!(Preamble::decode(&bad).unwrap_err().code(), ErrorCode::ChecksumPreamble);
    }

    #[test]
    fn record_header_round_trips() {
        let h = RecordHeader { rtype: 3, rflags: 0x0100, body_len: 13, seq: 9, body_crc: 0xDEAD_BEEF };
        let back = RecordHeader::decode(&h.encode(), 0).unwrap();
        assert_eq!(back, h);
        assert_eq!(h.padding_len(), 3);
        assert_eq!(h.total_len(), 48);
    }

    #[test]
    fn record_header_rejects_reserved_flags() {
        let h = RecordHeader { rtype: 3, rflags: 0x0001, body_len: 0, seq: 0, body_crc: 0 };
        assert_eq!(RecordHeader::decode(&h.encode(), 0).unwrap_err().code(), ErrorCode::ReservedNonzero);
    }
}
