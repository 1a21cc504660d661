//! Parameters of `m22`: text `bits=R,m=M,family=gennorm|weibull[,mse=D]`; wire 4 bytes `u8 bits,
//! u8 m, u8 family, u8 reserved`, followed by `f32 D` when an error target is set (8 bytes;
//! `spec/CODECS.md` §6).

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

use crate::fit::Family;

/// Parameters of one `m22` stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct M22Params {
    /// Bits of the quantizer: `2^bits` reconstruction points, 1..=8; with an error target, the
    /// most bits a chunk may use.
    pub bits: u8,
    /// Magnitude weight exponent of the distortion `|g|^M (g - q(g))^2`, 0..=4.
    pub m: u8,
    /// Model family.
    pub family: Family,
    /// Error target: each chunk uses the fewest bits (up to `bits`) whose design, on the fitted
    /// model, predicts a (weighted) distortion per entry of at most this.
    pub target: Option<f32>,
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
        if text.get("rate").is_some() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "m22:rate=B allocates over a whole stream before it is written: `gradwire encode` resolves it \
                 into mse=D (library: gradwire_m22::allocate::allocate)",
            ));
        }
        let target = match text.get("mse") {
            None => None,
            Some(t) => match t.parse::<f32>() {
                Ok(d) if d.is_finite() && d > 0.0 => Some(d),
                _ => {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        format!("m22 mse={t:?} must be a positive number (error per entry)"),
                    ));
                }
            },
        };
        let bits = text.int_in("bits", if target.is_some() { 8 } else { 2 }, 1..=8)? as u8;
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
        Ok(M22Params { bits, m, family, target })
    }

    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let base = format!("bits={},m={},family={}", self.bits, self.m, self.family.name());
        match self.target {
            Some(d) => format!("{base},mse={d:e}"),
            None => base,
        }
    }

    /// The wire bytes: 4, or 8 with an error target.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.bits, self.m, u8::from(self.family == Family::Weibull), 0];
        if let Some(d) = self.target {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length or a value out of range,
    /// [`ErrorCode::ReservedNonzero`] for a nonzero reserved byte.
    pub fn decode(bytes: &[u8]) -> Result<M22Params> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        if bytes.len() != 4 && bytes.len() != 8 {
            return Err(invalid(format!("m22 parameters must be 4 or 8 bytes, found {}", bytes.len())));
        }
        let b = &bytes[..4];
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
        let target = match bytes.get(4..8) {
            None => None,
            Some(d) => {
                let d = f32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                if !(d.is_finite() && d > 0.0) {
                    return Err(invalid(format!("m22 error target {d} must be positive and finite")));
                }
                Some(d)
            }
        };
        Ok(M22Params { bits: b[0], m: b[1], family, target })
    }
}
