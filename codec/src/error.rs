//! Typed errors: what went wrong (a closed, stable [`ErrorCode`] from the spec's vocabulary),
//! who is at fault ([`Fault`]), and where ([`Location`]: record, tensor, chunk, byte offset).
//!
//! One error type serves the whole crate so that a caller can match on [`Error::code`] whatever
//! layer failed; the codes are the ones listed in `spec/FORMAT.md` §12 and used by the
//! conformance vectors, so another implementation can report the same code for the same stream.

use std::fmt;

/// Who is at fault for an error; derived from its [`ErrorCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The input bytes are damaged or violate the format.
    Corrupt,
    /// The input ended before the stream was complete.
    Truncated,
    /// The input is valid but uses something this reader does not implement.
    Unsupported,
    /// The input asks for more resources than the configured [`crate::Limits`] allow.
    LimitExceeded,
    /// The caller passed an invalid argument (wrong length, unknown codec name, ...).
    InvalidArgument,
    /// The underlying reader or writer failed.
    Io,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal => $fault:ident, )*) => {
        /// The closed vocabulary of error codes from `spec/FORMAT.md` §12.
        ///
        /// The text form ([`ErrorCode::as_str`]) is stable and is what conformance vectors expect.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in specification order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable text form, e.g. `"checksum_body"`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// Who is at fault for this kind of error.
            #[must_use]
            pub fn fault(self) -> Fault {
                match self { $(ErrorCode::$variant => Fault::$fault,)* }
            }

            /// Parses the stable text form.
            #[must_use]
            pub fn from_str_code(text: &str) -> Option<ErrorCode> {
                match text { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// The first 8 bytes are not the gradwire magic.
    BadMagic = "bad_magic" => Corrupt,
    /// The preamble names a format major version this reader does not implement.
    UnsupportedVersion = "unsupported_version" => Unsupported,
    /// A reserved field or bit is not zero.
    ReservedNonzero = "reserved_nonzero" => Corrupt,
    /// Padding after a record body is not zero.
    NonzeroPadding = "nonzero_padding" => Corrupt,
    /// The preamble CRC32C does not match.
    ChecksumPreamble = "checksum_preamble" => Corrupt,
    /// A record header CRC32C does not match.
    ChecksumHeader = "checksum_header" => Corrupt,
    /// A record body CRC32C does not match.
    ChecksumBody = "checksum_body" => Corrupt,
    /// The CRC32C of a chunk's decoded values does not match.
    ChecksumDecoded = "checksum_decoded" => Corrupt,
    /// The record framing marker is missing.
    BadSync = "bad_sync" => Corrupt,
    /// The stream ended before its END record.
    Truncated = "truncated" => Truncated,
    /// A non-skippable record type this reader does not know.
    UnknownRecord = "unknown_record" => Unsupported,
    /// A record sequence number is out of order (dropped or reordered record).
    Sequence = "sequence" => Corrupt,
    /// A required feature bit this reader does not implement.
    UnsupportedFeature = "unsupported_feature" => Unsupported,
    /// A codec ID (or codec version) this reader does not implement.
    UnsupportedCodec = "unsupported_codec" => Unsupported,
    /// A dtype code this reader does not implement.
    UnsupportedDtype = "unsupported_dtype" => Unsupported,
    /// A pipeline whose stage kinds are not `array->array* array->bytes bytes->bytes*`.
    PipelineInvalid = "pipeline_invalid" => Corrupt,
    /// Codec parameters that do not parse or are out of range.
    InvalidParams = "invalid_params" => Corrupt,
    /// A size or count beyond the reader's limits.
    LimitExceeded = "limit_exceeded" => LimitExceeded,
    /// The product of the dimensions overflows or disagrees with the element count.
    ShapeOverflow = "shape_overflow" => Corrupt,
    /// Two tensors with the same name, or a reused tensor ID.
    DuplicateTensor = "duplicate_tensor" => Corrupt,
    /// A record refers to a tensor that is not open.
    UnknownTensor = "unknown_tensor" => Corrupt,
    /// Chunks missing, repeated or out of order, or a tensor left open.
    ChunkOrder = "chunk_order" => Corrupt,
    /// An INDEX or END record disagrees with the records it describes.
    IndexMismatch = "index_mismatch" => Corrupt,
    /// A codec produced (or a payload declares) a size other than the exact expected one.
    CodecOutputSize = "codec_output_size" => Corrupt,
    /// A codec payload is malformed.
    CodecData = "codec_data" => Corrupt,
    /// Any other structural violation of the format (bad length, bad UTF-8, unsorted keys, ...).
    Malformed = "malformed" => Corrupt,
    /// A tensor decodes against side information (FORMAT.md §19) and none was given for it.
    SideInfoMissing = "side_info_missing" => InvalidArgument,
    /// The side information given for a tensor is not what it was encoded against.
    SideInfoMismatch = "side_info_mismatch" => InvalidArgument,
    /// The caller passed an invalid argument.
    InvalidArgument = "invalid_argument" => InvalidArgument,
    /// The underlying reader or writer failed.
    Io = "io" => Io,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a stream an error was found. Every field is optional: fill in what is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Sequence number of the record (0 = stream header).
    pub record: Option<u64>,
    /// Byte offset from the start of the stream (the preamble is at offset 0).
    pub byte_offset: Option<u64>,
    /// Tensor name, or its ID when the name is not known yet.
    pub tensor: Option<String>,
    /// Chunk index within the tensor.
    pub chunk: Option<u64>,
}

impl Location {
    fn is_empty(&self) -> bool {
        self.record.is_none() && self.byte_offset.is_none() && self.tensor.is_none() && self.chunk.is_none()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(r) = self.record {
            parts.push(format!("record {r}"));
        }
        if let Some(t) = &self.tensor {
            parts.push(format!("tensor {t:?}"));
        }
        if let Some(c) = self.chunk {
            parts.push(format!("chunk {c}"));
        }
        if let Some(o) = self.byte_offset {
            parts.push(format!("byte offset {o}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The error type of every fallible gradwire operation.
///
/// # Examples
/// ```
/// use gradwire_codec::{Error, ErrorCode, Fault};
/// let e = Error::new(ErrorCode::Truncated, "stream ended inside a record header").at_offset(40);
/// assert_eq!(e.code(), ErrorCode::Truncated);
/// assert_eq!(e.fault(), Fault::Truncated);
/// assert!(e.to_string().contains("byte offset 40"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    detail: String,
    location: Location,
}

impl Error {
    /// Creates an error with a code and a human-readable detail (values included).
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Error { code, detail: detail.into(), location: Location::default() }
    }

    /// The stable error code.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Who is at fault.
    #[must_use]
    pub fn fault(&self) -> Fault {
        self.code.fault()
    }

    /// The human-readable detail, without the location.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Where the error was found.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Sets the byte offset unless one is already known (the innermost location wins).
    #[must_use]
    pub fn at_offset(mut self, offset: u64) -> Self {
        self.location.byte_offset.get_or_insert(offset);
        self
    }

    /// Sets the record sequence number unless one is already known.
    #[must_use]
    pub fn at_record(mut self, record: u64) -> Self {
        self.location.record.get_or_insert(record);
        self
    }

    /// Sets the tensor unless one is already known.
    #[must_use]
    pub fn in_tensor(mut self, tensor: impl Into<String>) -> Self {
        if self.location.tensor.is_none() {
            self.location.tensor = Some(tensor.into());
        }
        self
    }

    /// Sets the chunk index unless one is already known.
    #[must_use]
    pub fn in_chunk(mut self, chunk: u64) -> Self {
        self.location.chunk.get_or_insert(chunk);
        self
    }

    /// Prepends `context` to the detail (for example which of several inputs failed), keeping
    /// the code and location.
    #[must_use]
    pub fn context(mut self, context: &str) -> Self {
        self.detail = format!("{context}: {}", self.detail);
        self
    }

    /// Wraps an I/O error; an unexpected end of file becomes [`ErrorCode::Truncated`].
    #[must_use]
    pub fn from_io(err: &std::io::Error, what: &str) -> Self {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::new(ErrorCode::Truncated, format!("stream ended inside {what}"))
        } else {
            Error::new(ErrorCode::Io, format!("{what}: {err}"))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)?;
        if !self.location.is_empty() {
            write!(f, " (at {})", self.location)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Result<T, gradwire_codec::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns `Err(Error::new(code, detail))` unless `cond` holds.
pub(crate) fn ensure(cond: bool, code: ErrorCode, detail: impl FnOnce() -> String) -> Result<()> {
    if cond { Ok(()) } else { Err(Error::new(code, detail())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate text {}", code.as_str());
            assert_eq!(ErrorCode::from_str_code(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_str_code("no_such_code"), None);
    }

    #[test]
    fn innermost_location_wins() {
        let e = Error::new(ErrorCode::Malformed, "x").at_offset(5).at_offset(9).in_chunk(2);
        assert_eq!(e.location().byte_offset, Some(5));
        assert_eq!(e.to_string(), "malformed: x (at chunk 2, byte offset 5)");
    }
}
