//! Parameters of `qsgd` (`levels=8`, 4 wire bytes) and `sparse-dither`
//! (`nu=0.1,variant=deterministic`, 16 wire bytes), `spec/CODECS.md` §10.

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

/// Largest `qsgd` level count.
pub const MAX_LEVELS: u32 = 1 << 24;

/// Smallest and largest `sparse-dither` nu.
pub const NU_RANGE: std::ops::RangeInclusive<f64> = 1e-6..=16.0;

/// Parameters of one `qsgd` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QsgdParams {
    /// `s`: the nonzero levels `1/s, 2/s, ..., 1` of `|x_i| / ||x||` (`1..=2^24`).
    pub levels: u32,
}

impl QsgdParams {
    /// Parses the text form.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for levels outside `1..=2^24`.
    pub fn from_text(text: &TextParams) -> Result<QsgdParams> {
        let levels = text.int_in("levels", 8, 1..=i64::from(MAX_LEVELS))?;
        Ok(QsgdParams { levels: levels as u32 })
    }

    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("levels={}", self.levels)
    }

    /// The 4 wire bytes: `u32 levels`.
    #[must_use]
    pub fn encode(&self) -> [u8; 4] {
        self.levels.to_le_bytes()
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length or levels outside `1..=2^24`.
    pub fn decode(bytes: &[u8]) -> Result<QsgdParams> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let b: [u8; 4] =
            bytes.try_into().map_err(|_| invalid(format!("qsgd parameters must be 4 bytes, found {}", bytes.len())))?;
        let levels = u32::from_le_bytes(b);
        if !(1..=MAX_LEVELS).contains(&levels) {
            return Err(invalid(format!("qsgd levels {levels} is not in 1..=2^24")));
        }
        Ok(QsgdParams { levels })
    }
}

/// How `sparse-dither` rounds to its grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Nearest level: `||C(x) - x||^2 <= nu ||x||^2` for every input (0).
    Deterministic,
    /// Stochastic rounding between the two nearest levels: unbiased,
    /// `E ||C(x) - x||^2 <= nu ||x||^2` (1).
    Unbiased,
}

/// Parameters of one `sparse-dither` stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseDitherParams {
    /// The error budget nu: grid step `2 sqrt(nu / n) ||x||` for a chunk of `n` values.
    pub nu: f64,
    /// Rounding.
    pub variant: Variant,
}

impl SparseDitherParams {
    /// Parses the text form.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for nu outside `[1e-6, 16]` or an unknown variant.
    pub fn from_text(text: &TextParams) -> Result<SparseDitherParams> {
        let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
        let given = text.get("nu").unwrap_or("0.1");
        let nu: f64 = given.parse().map_err(|_| arg(format!("sparse-dither nu={given:?} is not a number")))?;
        if !NU_RANGE.contains(&nu) {
            return Err(arg(format!("sparse-dither nu={nu} is not in [1e-6, 16]")));
        }
        let variant = match text.get("variant").unwrap_or("deterministic") {
            "deterministic" => Variant::Deterministic,
            "unbiased" => Variant::Unbiased,
            other => return Err(arg(format!("sparse-dither variant={other:?} is not deterministic or unbiased"))),
        };
        Ok(SparseDitherParams { nu, variant })
    }

    /// The text form (nu as the shortest decimal that parses back to the same f64).
    #[must_use]
    pub fn to_text(&self) -> String {
        let variant = if self.variant == Variant::Unbiased { ",variant=unbiased" } else { "" };
        format!("nu={}{variant}", self.nu)
    }

    /// The 16 wire bytes: `f64 nu, u8 variant, 7 reserved`.
    #[must_use]
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.nu.to_le_bytes());
        out[8] = u8::from(self.variant == Variant::Unbiased);
        out
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length, nu outside `[1e-6, 16]` or an unknown
    /// variant; [`ErrorCode::ReservedNonzero`] for nonzero reserved bytes.
    pub fn decode(bytes: &[u8]) -> Result<SparseDitherParams> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let b: [u8; 16] = bytes
            .try_into()
            .map_err(|_| invalid(format!("sparse-dither parameters must be 16 bytes, found {}", bytes.len())))?;
        if b[9..].iter().any(|&r| r != 0) {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                "sparse-dither parameter bytes 9..16 are reserved and must be zero",
            ));
        }
        let nu = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        if !NU_RANGE.contains(&nu) {
            return Err(invalid(format!("sparse-dither nu {nu} is not in [1e-6, 16]")));
        }
        let variant = match b[8] {
            0 => Variant::Deterministic,
            1 => Variant::Unbiased,
            v => return Err(invalid(format!("sparse-dither variant {v} is not 0 (deterministic) or 1 (unbiased)"))),
        };
        Ok(SparseDitherParams { nu, variant })
    }
}
