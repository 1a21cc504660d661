//! Parameters of `m22`: text `bits=R,m=M,family=gennorm|weibull[,mse=D|step=S|entropy=B]`; wire 4
//! bytes `u8 bits, u8 m, u8 family, u8 reserved`, then `f32 D` for an error target (8 bytes), or
//! `u8 mode, 3 reserved bytes, f32 value` for the entropy-constrained modes (12 bytes;
//! `spec/CODECS.md` §6).

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

use crate::fit::Family;

/// What the encoder aims at besides the level count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Error target `D` per entry: each chunk uses the fewest bits (up to `bits`) whose design,
    /// on the fitted model, predicts a (weighted) distortion per entry of at most `D`.
    Mse(f32),
    /// Entropy-constrained, fixed cell width: uniform cells of this width (absolute, the same in
    /// every chunk: the equal-slope condition across tensors), centroids as points, labels
    /// entropy coded. Wire mode 1.
    Step(f32),
    /// Entropy-constrained, rate target: each chunk takes the smallest cell width whose coded
    /// labels take at most this many bits per entry (the header, points and code lengths come
    /// on top). Wire mode 2.
    Entropy(f32),
}

impl Target {
    /// The number the target carries (error, width or bits per entry).
    #[must_use]
    pub fn value(self) -> f32 {
        match self {
            Target::Mse(v) | Target::Step(v) | Target::Entropy(v) => v,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Mse(_) => "mse",
            Target::Step(_) => "step",
            Target::Entropy(_) => "entropy",
        }
    }
}

/// Parameters of one `m22` stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct M22Params {
    /// Bits of the quantizer: `2^bits` reconstruction points, 1..=8; with a target, the most
    /// points (as bits) a chunk may use.
    pub bits: u8,
    /// Magnitude weight exponent of the distortion `|g|^M (g - q(g))^2`, 0..=4.
    pub m: u8,
    /// Model family (for the fitted designs; the entropy-constrained modes fit no model).
    pub family: Family,
    /// What the encoder aims at besides `2^bits` points, if anything.
    pub target: Option<Target>,
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
                "m22:rate=B allocates over a whole stream before it is written: `gradwire encode`, `demo` and \
                 `bench` resolve it into one step=S for a top-level m22 stage (library: \
                 gradwire_m22::allocate::allocate); elsewhere, and inside a nested pipeline such as topk's \
                 values=(...), give step=S or entropy=B",
            ));
        }
        let mut target = None;
        for (key, make) in
            [("mse", Target::Mse as fn(f32) -> Target), ("step", Target::Step), ("entropy", Target::Entropy)]
        {
            let Some(t) = text.get(key) else { continue };
            let value = match t.parse::<f32>() {
                Ok(v) if v.is_finite() && v > 0.0 => v,
                _ => {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        format!("m22 {key}={t:?} must be a positive number"),
                    ));
                }
            };
            if let Some(other) = target.replace(make(value)) {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("m22 takes one of mse, step and entropy, not both {} and {key}", Target::name(other)),
                ));
            }
        }
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
            Some(Target::Mse(v) | Target::Step(v) | Target::Entropy(v)) => {
                format!("{base},{}={v:e}", self.target.map_or("", Target::name))
            }
            None => base,
        }
    }

    /// The wire bytes: 4, 8 with an error target, 12 in the entropy-constrained modes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.bits, self.m, u8::from(self.family == Family::Weibull), 0];
        match self.target {
            None => {}
            Some(Target::Mse(d)) => out.extend_from_slice(&d.to_le_bytes()),
            Some(Target::Step(v)) => {
                out.extend_from_slice(&[1, 0, 0, 0]);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Some(Target::Entropy(v)) => {
                out.extend_from_slice(&[2, 0, 0, 0]);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Parses untrusted wire bytes of codec version `version`: version 1 knows the 4- and
    /// 8-byte forms, version 2 adds the 12-byte form.
    ///
    /// # Errors
    /// As [`M22Params::decode`]; [`ErrorCode::InvalidParams`] for 12 bytes in version 1.
    pub fn decode_version(version: u16, bytes: &[u8]) -> Result<M22Params> {
        if version < 2 && bytes.len() == 12 {
            return Err(Error::new(
                ErrorCode::InvalidParams,
                "m22 parameters of 12 bytes (entropy-constrained modes) need codec version 2",
            ));
        }
        M22Params::decode(bytes)
    }

    /// Parses untrusted wire bytes (of the current codec version).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length or a value out of range,
    /// [`ErrorCode::ReservedNonzero`] for a nonzero reserved byte.
    pub fn decode(bytes: &[u8]) -> Result<M22Params> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        if ![4, 8, 12].contains(&bytes.len()) {
            return Err(invalid(format!("m22 parameters must be 4, 8 or 12 bytes, found {}", bytes.len())));
        }
        let b = &bytes[..4];
        let reserved = if bytes.len() == 12 { &[3, 5, 6, 7][..] } else { &[3][..] };
        if let Some(i) = reserved.iter().find(|&&i| bytes[i] != 0) {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                format!("m22 parameter byte {i} is reserved and must be zero"),
            ));
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
        let f32_at = |o: usize| f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let target = match bytes.len() {
            8 => Some(Target::Mse(f32_at(4))),
            12 => match bytes[4] {
                1 => Some(Target::Step(f32_at(8))),
                2 => Some(Target::Entropy(f32_at(8))),
                mode => return Err(invalid(format!("m22 mode {mode} is not 1 (step) or 2 (entropy)"))),
            },
            _ => None,
        };
        if let Some(t @ (Target::Mse(v) | Target::Step(v) | Target::Entropy(v))) = target
            && !(v.is_finite() && v > 0.0)
        {
            return Err(invalid(format!("m22 {} value {v} must be positive and finite", t.name())));
        }
        Ok(M22Params { bits: b[0], m: b[1], family, target })
    }
}
