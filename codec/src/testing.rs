//! Helpers for conformance tests and fuzzers of gradwire readers (this crate's tests, the fuzz
//! targets, other implementations' test harnesses). Not needed to read or write streams.

use std::io::Read;

/// A reader that returns at most one byte per `read` call: a stream read through it must give
/// exactly the same result as the stream read whole.
///
/// # Examples
/// ```
/// use std::io::Read;
/// let mut r = gradwire_codec::testing::OneByteReader::new(b"abc");
/// let mut buf = [0u8; 8];
/// assert_eq!(r.read(&mut buf).unwrap(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct OneByteReader<'a>(&'a [u8]);

impl<'a> OneByteReader<'a> {
    /// Reads `bytes` one at a time.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        OneByteReader(bytes)
    }
}

impl Read for OneByteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}
