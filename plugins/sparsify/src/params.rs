//! Parameters of `randk` in text (`fraction=0.01,scaling=unbiased,seed=7`) and on the wire
//! (16 bytes, `spec/CODECS.md` §8), and the kept count and `fraction` text shared with `topk`.

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

/// What the decoder multiplies the kept values by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// 1: the kept values as they were (0).
    None,
    /// `n / k`: unbiased over seeds (1).
    Unbiased,
}

/// Parameters of one `randk` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandKParams {
    /// Fraction of values kept, as a numerator over 2^32 (`1..=2^32-1`).
    pub fraction: u32,
    /// The decoder's scaling.
    pub scaling: Scaling,
    /// The shared seed of the positions.
    pub seed: u64,
}

/// Values kept of a chunk of `n` for a `fraction` stored over 2^32 (`randk` and `topk`):
/// `n * fraction` rounded to the nearest integer (halves up), `(n * fraction + 2^31) >> 32` in
/// integers, at least 1 when `n > 0`. Rounding to nearest, not up, because a decimal fraction
/// such as 0.01 is stored a hair above its value.
#[must_use]
pub fn kept_count(fraction: u32, n: usize) -> usize {
    let k = ((u128::from(fraction) * n as u128 + (1 << 31)) >> 32) as usize;
    k.clamp(usize::from(n > 0), n)
}

/// The head shared by `randk` and `topk` parameters: `u32 fraction, u8 mode, 3 reserved bytes`,
/// checked in the spec's order (reserved bytes zero, then a nonzero fraction); returns the
/// fraction and the mode byte, which the caller checks.
pub(crate) fn fraction_head(b: &[u8], codec: &str) -> Result<(u32, u8)> {
    if b.len() < 8 {
        return Err(Error::new(ErrorCode::InvalidParams, format!("{codec} parameters are shorter than 8 bytes")));
    }
    if b[5..8] != [0, 0, 0] {
        return Err(Error::new(
            ErrorCode::ReservedNonzero,
            format!("{codec} parameter bytes 5..8 are reserved and must be zero"),
        ));
    }
    let fraction = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if fraction == 0 {
        return Err(Error::new(ErrorCode::InvalidParams, format!("{codec} fraction 0 keeps nothing")));
    }
    Ok((fraction, b[4]))
}

/// The `fraction=F` text parameter of `codec` (default 0.01) as its numerator over 2^32.
pub(crate) fn parse_fraction(text: &TextParams, codec: &str) -> Result<u32> {
    let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
    let given = text.get("fraction").unwrap_or("0.01");
    let f: f64 = given.parse().map_err(|_| arg(format!("{codec} fraction={given:?} is not a number")))?;
    let fraction = (f * 4_294_967_296.0).round();
    if !(fraction >= 1.0 && fraction <= f64::from(u32::MAX)) {
        return Err(arg(format!("{codec} fraction={f} must be in (0, 1) (at least 2^-32, below 1)")));
    }
    Ok(fraction as u32)
}

/// A numerator over 2^32 as the shortest decimal that parses back to it.
pub(crate) fn fraction_text(fraction: u32) -> String {
    let exact = f64::from(fraction) / 4_294_967_296.0;
    let text = (1..=17)
        .map(|digits| format!("{exact:.digits$}"))
        .find(|t| t.parse::<f64>().is_ok_and(|v| (v * 4_294_967_296.0).round() as u64 == u64::from(fraction)))
        .unwrap_or_else(|| exact.to_string());
    text.trim_end_matches('0').to_owned()
}

impl RandKParams {
    /// Values kept of a chunk of `n` ([`kept_count`]).
    #[must_use]
    pub fn kept(&self, n: usize) -> usize {
        kept_count(self.fraction, n)
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for a fraction outside `(0, 1)`, an unknown scaling or a
    /// bad seed.
    pub fn from_text(text: &TextParams) -> Result<RandKParams> {
        let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
        let fraction = parse_fraction(text, "randk")?;
        let scaling = match text.get("scaling").unwrap_or("none") {
            "none" => Scaling::None,
            "unbiased" => Scaling::Unbiased,
            other => return Err(arg(format!("randk scaling={other:?} is not none or unbiased"))),
        };
        let seed = match text.get("seed") {
            None => 0,
            Some(v) => {
                v.parse::<u64>().map_err(|_| arg(format!("randk seed={v:?} must be an integer in 0..=2^64-1")))?
            }
        };
        Ok(RandKParams { fraction, scaling, seed })
    }

    /// The text form, as `gradwire inspect` prints it: the fraction as the shortest decimal that
    /// parses back to the same numerator.
    #[must_use]
    pub fn to_text(&self) -> String {
        let fraction = fraction_text(self.fraction);
        let scaling = if self.scaling == Scaling::Unbiased { ",scaling=unbiased" } else { "" };
        format!("fraction={fraction}{scaling},seed={}", self.seed)
    }

    /// The 16 wire bytes: `u32 fraction, u8 scaling, 3 reserved, u64 seed`.
    #[must_use]
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.fraction.to_le_bytes());
        out[4] = u8::from(self.scaling == Scaling::Unbiased);
        out[8..].copy_from_slice(&self.seed.to_le_bytes());
        out
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length, a zero fraction or an unknown scaling;
    /// [`ErrorCode::ReservedNonzero`] for nonzero reserved bytes.
    pub fn decode(bytes: &[u8]) -> Result<RandKParams> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let b: [u8; 16] = bytes
            .try_into()
            .map_err(|_| invalid(format!("randk parameters must be 16 bytes, found {}", bytes.len())))?;
        let (fraction, mode) = fraction_head(&b, "randk")?;
        let scaling = match mode {
            0 => Scaling::None,
            1 => Scaling::Unbiased,
            s => return Err(invalid(format!("randk scaling {s} is not 0 (none) or 1 (unbiased)"))),
        };
        let seed = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        Ok(RandKParams { fraction, scaling, seed })
    }
}
