//! The baseline codecs every build registers (`spec/CODECS.md` §1-§4):
//!
//! | ID | name | kind | lossless |
//! |---|---|---|---|
//! | `0x01` | `raw` | array->bytes | yes |
//! | `0x02` | `f16` | array->bytes | no (round to nearest even) |
//! | `0x03` | `bf16` | array->bytes | no (round to nearest even) |
//! | `0x10` | `zstd` | bytes->bytes | yes |

mod half_float;
mod raw;
mod zstd;

use crate::error::{Error, ErrorCode, Result};
use crate::registry::CodecFactory;

pub use half_float::{BF16_CODEC, F16_CODEC};
pub use raw::RAW_CODEC;
pub use zstd::ZSTD_CODEC;

/// Every baseline codec, in ID order.
pub const CORE: &[&'static dyn CodecFactory] = &[&RAW_CODEC, &F16_CODEC, &BF16_CODEC, &ZSTD_CODEC];

/// Checks that a codec without parameters received none.
pub(crate) fn expect_no_params(name: &str, params: &[u8]) -> Result<()> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidParams,
            format!("codec {name:?} takes no parameters, found {} bytes", params.len()),
        ))
    }
}

/// Checks that `bytes` holds exactly `values * width` bytes.
pub(crate) fn expect_payload_len(name: &str, bytes: usize, values: usize, width: usize) -> Result<()> {
    match values.checked_mul(width) {
        Some(n) if n == bytes => Ok(()),
        _ => Err(Error::new(
            ErrorCode::CodecOutputSize,
            format!("{name} payload of {bytes} bytes does not hold exactly {values} values of {width} bytes"),
        )),
    }
}
