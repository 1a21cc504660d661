//! Little-endian reading and writing of fixed-width fields.
//!
//! [`Cursor`] reads from an untrusted byte slice: every read is bounds-checked and fails with
//! [`ErrorCode::Malformed`] naming the field and its byte offset, so parsers never index slices.

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::{Error, ErrorCode, Result};

/// A checked reader over a record body; `base` is the stream offset of `bytes[0]` for messages.
#[derive(Debug)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    /// Starts reading `bytes`, which sit at stream offset `base`.
    #[must_use]
    pub fn new(bytes: &'a [u8], base: u64) -> Self {
        Cursor { bytes, pos: 0, base }
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Stream offset of the next byte.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::new(
                ErrorCode::Malformed,
                format!("{field} needs {n} bytes, only {} left in the record body", self.remaining()),
            )
            .at_offset(self.offset()));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        out
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }
    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(LE::read_u16(self.take(2, field)?))
    }
    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(LE::read_u32(self.take(4, field)?))
    }
    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(LE::read_u64(self.take(8, field)?))
    }

    /// Reads a reserved field of `n` bytes and fails unless it is all zero.
    pub fn reserved(&mut self, n: usize, field: &str) -> Result<()> {
        let at = self.offset();
        let bytes = self.take(n, field)?;
        if bytes.iter().any(|&b| b != 0) {
            return Err(Error::new(ErrorCode::ReservedNonzero, format!("{field} must be zero, found {bytes:02x?}"))
                .at_offset(at));
        }
        Ok(())
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, what: &str) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::Malformed,
                format!("{} unexpected trailing bytes after {what}", self.remaining()),
            )
            .at_offset(self.offset()))
        }
    }
}

/// Appends little-endian fields to a byte vector.
pub trait PutLe {
    /// Appends a `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a `u64`.
    fn put_u64(&mut self, v: u64);
}

impl PutLe for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_reports_short_input_with_offset() {
        let bytes = [1, 0, 2, 0, 0, 0, 9];
        let mut c = Cursor::new(&bytes, 100);
        assert_eq!(c.u16("a").unwrap(), 1);
        assert_eq!(c.u32("b").unwrap(), 2);
        let e = c.u16("c").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Malformed);
        assert_eq!(e.location().byte_offset, Some(106));
        assert!(c.finish("x").is_err());
    }

    #[test]
    fn reserved_rejects_nonzero() {
        let mut c = Cursor::new(&[0, 1], 0);
        assert_eq!(c.reserved(2, "r").unwrap_err().code(), ErrorCode::ReservedNonzero);
    }
}
