//! Parameters of `m22`: text `bits=R,m=M,family=gennorm|weibull`; wire 4 bytes `u8 bits, u8 m,
//! u8 family, u8 reserved` (`spec/CODECS.md` §6.1).

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

use crate::fit::Family;

/// Parameters of one `m22` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct M22Params {
    /// Bits of the quantizer: `2^bits` reconstruction points, 1..=8.
    pub bits: u8,
    /// Magnitude weight exponent of the distortion `|g|^M (g - q(g))^2`, 0..=4.
    pub m: u8,
    /// Model family.
    pub family: Family,
}

impl M22Params {
    /// Number of reconstruction points of the design.
    #[must_use]
    pub fn levels(&self) -> usize {
        1 << self.bits
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for values out of range or an unknown family.
    pub fn from_text(text: &TextParams) -> Result<M22Params> {
        let bits = text.int_in("bits", 2, 1..=8)? as u8;
        let m = text.int_in("m", 0, 0..=4)? as u8;
        let family = match text.get("family").unwrap_or("gennorm") {
            "gennorm" => Family::GenNorm,
            "weibull" => Family::Weibull,
            other => {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("m22 family={other:?} is not gennorm or weibull"),
                ));
            }
        };
        Ok(M22Params { bits, m, family })
    }

    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("bits={},m={},family={}", self.bits, self.m, self.family.name())
    }

    /// The 4 wire bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; 4] {
        [self.bits, self.m, u8::from(self.family == Family::Weibull), 0]
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length or a value out of range,
    /// [`ErrorCode::ReservedNonzero`] for a nonzero reserved byte.
    pub fn decode(bytes: &[u8]) -> Result<M22Params> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let b: [u8; 4] =
            bytes.try_into().map_err(|_| invalid(format!("m22 parameters must be 4 bytes, found {}", bytes.len())))?;
        if b[3] != 0 {
            return Err(Error::new(ErrorCode::ReservedNonzero, "m22 parameter byte 3 is reserved and must be zero"));
        }
        if !(1..=8).contains(&b[0]) {
            return Err(invalid(format!("m22 bits must be in 1..=8, found {}", b[0])));
        }
        if b[1] > 4 {
            return Err(invalid(format!("m22 m must be in 0..=4, found {}", b[1])));
        }
        let family = match b[2] {
            0 => Family::GenNorm,
            1 => Family::Weibull,
            f => return Err(invalid(format!("m22 family {f} is not 0 (gennorm) or 1 (weibull)"))),
        };
        Ok(M22Params { bits: b[0], m: b[1], family })
    }
}
