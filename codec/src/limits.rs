//! Resource limits a reader enforces before it trusts any size found in the input.
//!
//! Every number a stream declares (record length, element count, rank, name length, ...) is
//! checked against a [`Limits`] value before anything is allocated from it. The defaults are
//! generous for real gradients; the *interop floor* ([`Limits::INTEROP_FLOOR`]) is what every
//! conforming decoder must accept and what writers should not exceed (`spec/FORMAT.md` §11).

use crate::error::{Error, ErrorCode, Result};

/// Budget for one reader or writer. Units are bytes unless the name says otherwise.
///
/// # Examples
/// ```
/// use gradwire_codec::Limits;
/// let tight = Limits { max_record_body: 1 << 20, ..Limits::default() };
/// assert!(tight.max_record_body < Limits::default().max_record_body);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest CHUNK, INDEX, private or unknown record body (checked after the header CRC and
    /// sequence number, before allocation).
    pub max_record_body: u64,
    /// Largest decoded chunk, in bytes of f32 (`chunk_elements * 4`).
    pub max_chunk_decoded: u64,
    /// Largest STREAM_HEADER, TENSOR_BEGIN or METADATA body (INDEX counts as a record body).
    pub max_header_body: u64,
    /// Most tensors in one stream.
    pub max_tensors: u64,
    /// Most tensors open (begun, not ended) at once.
    pub max_open_tensors: u64,
    /// Highest tensor rank.
    pub max_rank: u64,
    /// Longest tensor name, in bytes.
    pub max_name_len: u64,
    /// Most stages in one pipeline.
    pub max_stages: u64,
    /// Longest parameter block of one stage.
    pub max_param_len: u64,
    /// Largest tensor, in bytes of f32 (`n_elements * 4`).
    pub max_tensor_bytes: u64,
}

impl Limits {
    /// The defaults: 64 MiB chunks, 16 GiB tensors.
    pub const DEFAULT: Limits = Limits {
        max_record_body: 80 << 20,
        max_chunk_decoded: 64 << 20,
        max_header_body: 1 << 20,
        max_tensors: 1 << 20,
        max_open_tensors: 64,
        max_rank: 32,
        max_name_len: 1024,
        max_stages: 8,
        max_param_len: 4096,
        max_tensor_bytes: 16 << 30,
    };

    /// The smallest limits every conforming decoder must accept (`spec/FORMAT.md` §11).
    pub const INTEROP_FLOOR: Limits = Limits {
        max_record_body: 20 << 20,
        max_chunk_decoded: 16 << 20,
        max_header_body: 256 << 10,
        max_tensors: 65_536,
        max_open_tensors: 16,
        max_rank: 8,
        max_name_len: 256,
        max_stages: 4,
        max_param_len: 1024,
        max_tensor_bytes: 4 << 30,
    };

    /// Fails with [`ErrorCode::LimitExceeded`] when `value > limit`, naming the limit.
    pub(crate) fn check(value: u64, limit: u64, what: &str) -> Result<()> {
        if value > limit {
            Err(Error::new(ErrorCode::LimitExceeded, format!("{what} is {value}, limit is {limit}")))
        } else {
            Ok(())
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_at_least_the_interop_floor() {
        let (d, f) = (Limits::DEFAULT, Limits::INTEROP_FLOOR);
        assert!(d.max_record_body >= f.max_record_body);
        assert!(d.max_chunk_decoded >= f.max_chunk_decoded);
        assert!(d.max_header_body >= f.max_header_body);
        assert!(d.max_tensors >= f.max_tensors);
        assert!(d.max_open_tensors >= f.max_open_tensors);
        assert!(d.max_rank >= f.max_rank);
        assert!(d.max_name_len >= f.max_name_len);
        assert!(d.max_stages >= f.max_stages);
        assert!(d.max_param_len >= f.max_param_len);
        assert!(d.max_tensor_bytes >= f.max_tensor_bytes);
    }

    #[test]
    fn check_names_the_limit() {
        let e = Limits::check(10, 9, "rank").unwrap_err();
        assert_eq!(e.code(), ErrorCode::LimitExceeded);
        assert_eq!(e.detail(), "rank is 10, limit is 9");
        assert!(Limits::check(9, 9, "rank").is_ok());
    }
}
