//! Parameters of `wyner-ziv` (`spec/CODECS.md` §12.1): how the encoder picks the lattice step
//! and modulus, how it rounds, whether it scales the side information, and the binding of the
//! side information the stream was encoded against.
//!
//! ```text
//! 0   u8   mode       1 bits (target bits per entry), 2 step, 3 step and modulus
//! 1   u8   rounding   0 nearest, 1 stochastic (seeded, unbiased)
//! 2   u8   scale      0 fit a per chunk (code x against a*y), 1 a = 1
//! 3   u8   flags      bit 0 BOUND: a side-information binding follows; bits 1..7 reserved
//! 4   f32  value      mode 1: bits per entry in (0, 8]; modes 2, 3: the step, finite and > 0
//! 8   u16  modulus    mode 3: k in 2..=256; modes 1, 2: 0
//! 10  u16  reserved   0
//! 12  (BOUND) u8 label_len, label (UTF-8), 32-byte SHA-256 of the side tensor (FORMAT.md §19)
//! ```

use gradwire_codec::side_info::{DIGEST_LEN, SideBinding};
use gradwire_codec::{Error, ErrorCode, Result, TextParams};

/// Bytes of the parameters without a binding.
pub const FIXED_LEN: usize = 12;

/// Largest modulus: residues are labels of a label section (at most 256 symbols).
pub const MAX_MODULUS: u16 = 256;

/// Largest target bits per entry (the residues are at most 8-bit labels).
pub const MAX_BITS: f32 = 8.0;

/// How the encoder chooses the lattice step `eps` and the modulus `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `bits=B`: the step whose coded chunk takes about `B` bits per entry, `k` to cover the
    /// spread of `x - a*y` (needs the side information at the encoder).
    Bits(f32),
    /// `step=EPS`: the given step, `k` to cover the spread (needs the side information).
    Step(f32),
    /// `step=EPS,modulus=K`: both given; the only mode an encoder without the side information
    /// can use (it then assumes `|x - y| < (K/2 - 1) EPS` and the stream is unbound).
    StepModulus(f32, u16),
}

/// How values are rounded to the lattice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// To the nearest lattice point: error at most `eps / 2`.
    Nearest,
    /// Stochastically between the two nearest points, with draws from the chunk's seed:
    /// unbiased, error below `eps`.
    Stochastic,
}

/// Parameters of one `wyner-ziv` stage.
#[derive(Debug, Clone, PartialEq)]
pub struct WynerZivParams {
    /// Step and modulus choice.
    pub mode: Mode,
    /// Rounding to the lattice.
    pub rounding: Rounding,
    /// Whether the encoder fits a scale `a` per chunk and codes `x` against `a * y`.
    pub fit_scale: bool,
    /// The side information the stream was encoded against, when the writer had it.
    pub binding: Option<SideBinding>,
}

fn arg(detail: String) -> Error {
    Error::new(ErrorCode::InvalidArgument, detail)
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorCode::InvalidParams, detail)
}

/// Parses a positive finite f32 parameter.
fn positive(text: &TextParams, key: &str) -> Result<Option<f32>> {
    let Some(given) = text.get(key) else { return Ok(None) };
    match given.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        _ => Err(arg(format!("wyner-ziv {key}={given:?} must be a positive finite number"))),
    }
}

impl WynerZivParams {
    /// Parses the text form: `bits=B` or `step=EPS[,modulus=K]`, with `rounding=nearest|stochastic`
    /// and `scale=fit|one`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for missing, conflicting or out-of-range values.
    pub fn from_text(text: &TextParams) -> Result<WynerZivParams> {
        let bits = positive(text, "bits")?;
        let step = positive(text, "step")?;
        let modulus = match text.get("modulus") {
            None => None,
            Some(_) => Some(text.int_in("modulus", 0, 2..=i64::from(MAX_MODULUS))? as u16),
        };
        let mode = match (bits, step, modulus) {
            (Some(b), None, None) if b <= MAX_BITS => Mode::Bits(b),
            (Some(b), None, None) => return Err(arg(format!("wyner-ziv bits={b} is above {MAX_BITS}"))),
            (None, Some(s), None) => Mode::Step(s),
            (None, Some(s), Some(k)) => Mode::StepModulus(s, k),
            (None, None, None) => Mode::Bits(2.0),
            (None, None, Some(_)) => return Err(arg("wyner-ziv modulus=K goes with step=EPS".into())),
            (Some(_), Some(_), _) => return Err(arg("wyner-ziv takes bits=B or step=EPS, not both".into())),
            (Some(_), None, Some(_)) => {
                return Err(arg("wyner-ziv modulus=K goes with step=EPS (bits=B chooses both)".into()));
            }
        };
        let rounding = match text.get("rounding").unwrap_or("nearest") {
            "nearest" => Rounding::Nearest,
            "stochastic" => Rounding::Stochastic,
            other => return Err(arg(format!("wyner-ziv rounding={other:?} is not nearest or stochastic"))),
        };
        let fit_scale = match text.get("scale").unwrap_or("fit") {
            "fit" => true,
            "one" => false,
            other => return Err(arg(format!("wyner-ziv scale={other:?} is not fit or one"))),
        };
        Ok(WynerZivParams { mode, rounding, fit_scale, binding: None })
    }

    /// The text form (the binding is not part of it: a writer adds it from the side tensor).
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = match self.mode {
            Mode::Bits(b) => format!("bits={b}"),
            Mode::Step(s) => format!("step={s}"),
            Mode::StepModulus(s, k) => format!("step={s},modulus={k}"),
        };
        if self.rounding == Rounding::Stochastic {
            text.push_str(",rounding=stochastic");
        }
        if !self.fit_scale {
            text.push_str(",scale=one");
        }
        text
    }

    /// The wire bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (mode, value, modulus) = match self.mode {
            Mode::Bits(b) => (1u8, b, 0u16),
            Mode::Step(s) => (2, s, 0),
            Mode::StepModulus(s, k) => (3, s, k),
        };
        let mut out = vec![
            mode,
            u8::from(self.rounding == Rounding::Stochastic),
            u8::from(!self.fit_scale),
            u8::from(self.binding.is_some()),
        ];
        out.extend_from_slice(&value.to_le_bytes());
        out.extend_from_slice(&modulus.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        if let Some(b) = &self.binding {
            out.push(b.label.len() as u8);
            out.extend_from_slice(b.label.as_bytes());
            out.extend_from_slice(&b.digest);
        }
        out
    }

    /// Parses untrusted wire bytes, checks in the order of `spec/CODECS.md` §12.1.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length or a value out of range;
    /// [`ErrorCode::ReservedNonzero`] for reserved flag bits or bytes.
    pub fn decode(bytes: &[u8]) -> Result<WynerZivParams> {
        if bytes.len() < FIXED_LEN {
            return Err(invalid(format!(
                "wyner-ziv parameters must be at least {FIXED_LEN} bytes, found {}",
                bytes.len()
            )));
        }
        let flags = bytes[3];
        if flags & !1 != 0 || bytes[10] != 0 || bytes[11] != 0 {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                format!("wyner-ziv parameters set reserved bits (flags 0x{flags:02x}, bytes 10..12)"),
            ));
        }
        let binding = if flags & 1 == 1 {
            let label_len = bytes.get(FIXED_LEN).map_or(0, |&l| usize::from(l));
            let expected = FIXED_LEN + 1 + label_len + DIGEST_LEN;
            if bytes.len() != expected {
                return Err(invalid(format!(
                    "bound wyner-ziv parameters with a {label_len}-byte label are {expected} bytes, found {}",
                    bytes.len()
                )));
            }
            let label = std::str::from_utf8(&bytes[FIXED_LEN + 1..FIXED_LEN + 1 + label_len])
                .map_err(|_| invalid("wyner-ziv side-information label is not UTF-8".into()))?;
            let mut digest = [0u8; DIGEST_LEN];
            digest.copy_from_slice(&bytes[expected - DIGEST_LEN..]);
            Some(SideBinding { label: label.to_owned(), digest })
        } else {
            if bytes.len() != FIXED_LEN {
                return Err(invalid(format!(
                    "unbound wyner-ziv parameters are {FIXED_LEN} bytes, found {}",
                    bytes.len()
                )));
            }
            None
        };
        let value = f32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let modulus = u16::from_le_bytes([bytes[8], bytes[9]]);
        let positive = value.is_finite() && value > 0.0;
        let mode = match bytes[0] {
            1 if positive && value <= MAX_BITS && modulus == 0 => Mode::Bits(value),
            2 if positive && modulus == 0 => Mode::Step(value),
            3 if positive && (2..=MAX_MODULUS).contains(&modulus) => Mode::StepModulus(value, modulus),
            m @ 1..=3 => {
                return Err(invalid(format!(
                    "wyner-ziv mode {m} with value {value} and modulus {modulus} is out of range"
                )));
            }
            m => return Err(invalid(format!("wyner-ziv mode {m} is not 1 (bits), 2 (step) or 3 (step, modulus)"))),
        };
        let rounding = match bytes[1] {
            0 => Rounding::Nearest,
            1 => Rounding::Stochastic,
            r => return Err(invalid(format!("wyner-ziv rounding {r} is not 0 (nearest) or 1 (stochastic)"))),
        };
        let fit_scale = match bytes[2] {
            0 => true,
            1 => false,
            s => return Err(invalid(format!("wyner-ziv scale {s} is not 0 (fit) or 1 (one)"))),
        };
        Ok(WynerZivParams { mode, rounding, fit_scale, binding })
    }
}
