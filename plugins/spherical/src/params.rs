//! Parameters of `spherical` in text (`alpha=0.1,block=4,draws=4096,seed=0`) and on the wire
//! (24 bytes, `spec/CODECS.md` §11).

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

/// Smallest and largest alpha.
pub const ALPHA_RANGE: std::ops::RangeInclusive<f64> = 0.01..=0.99;
/// Largest block length.
pub const MAX_BLOCK: u8 = 16;
/// Largest cap on the draws per block.
pub const MAX_DRAWS: u32 = 1 << 24;

/// Parameters of one `spherical` stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SphericalParams {
    /// Error budget per block: `||C(x) - x||^2 <= alpha ||x||^2`.
    pub alpha: f64,
    /// Values per block (`1..=16`); the last block of a chunk may be shorter.
    pub block: u8,
    /// Draws tried per block before the block is sent as raw f32 values (`1..=2^24`).
    pub draws: u32,
    /// Shared seed of the points.
    pub seed: u64,
}

impl SphericalParams {
    /// Parses the text form.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for alpha outside `[0.01, 0.99]`, a block outside `1..=16`,
    /// draws outside `1..=2^24` or a bad seed.
    pub fn from_text(text: &TextParams) -> Result<SphericalParams> {
        let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
        let given = text.get("alpha").unwrap_or("0.1");
        let alpha: f64 = given.parse().map_err(|_| arg(format!("spherical alpha={given:?} is not a number")))?;
        if !ALPHA_RANGE.contains(&alpha) {
            return Err(arg(format!("spherical alpha={alpha} is not in [0.01, 0.99]")));
        }
        let block = text.int_in("block", 4, 1..=i64::from(MAX_BLOCK))? as u8;
        let draws = text.int_in("draws", 4096, 1..=i64::from(MAX_DRAWS))? as u32;
        let seed = match text.get("seed") {
            None => 0,
            Some(v) => {
                v.parse::<u64>().map_err(|_| arg(format!("spherical seed={v:?} must be an integer in 0..=2^64-1")))?
            }
        };
        Ok(SphericalParams { alpha, block, draws, seed })
    }

    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("alpha={},block={},draws={},seed={}", self.alpha, self.block, self.draws, self.seed)
    }

    /// The 24 wire bytes: `f64 alpha, u32 draws, u8 block, 3 reserved, u64 seed`.
    #[must_use]
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.alpha.to_le_bytes());
        out[8..12].copy_from_slice(&self.draws.to_le_bytes());
        out[12] = self.block;
        out[16..].copy_from_slice(&self.seed.to_le_bytes());
        out
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length or a value out of range;
    /// [`ErrorCode::ReservedNonzero`] for nonzero reserved bytes.
    pub fn decode(bytes: &[u8]) -> Result<SphericalParams> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let b: [u8; 24] = bytes
            .try_into()
            .map_err(|_| invalid(format!("spherical parameters must be 24 bytes, found {}", bytes.len())))?;
        if b[13..16] != [0, 0, 0] {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                "spherical parameter bytes 13..16 are reserved and must be zero",
            ));
        }
        let alpha = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let draws = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let block = b[12];
        let seed = u64::from_le_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]);
        if !ALPHA_RANGE.contains(&alpha) {
            return Err(invalid(format!("spherical alpha {alpha} is not in [0.01, 0.99]")));
        }
        if !(1..=MAX_DRAWS).contains(&draws) {
            return Err(invalid(format!("spherical draws {draws} is not in 1..=2^24")));
        }
        if !(1..=MAX_BLOCK).contains(&block) {
            return Err(invalid(format!("spherical block {block} is not in 1..=16")));
        }
        Ok(SphericalParams { alpha, block, draws, seed })
    }
}
