//! The `wyner-ziv` chunk payload (`spec/CODECS.md` §12.2):
//!
//! ```text
//! 0   u8   contexts   C, 1..=16: label sections, chosen per entry from |y| (the side information)
//! 1   u8   flags      bit 0 CENTERED: residues count from the prediction; bits 1..7 reserved
//! 2   u16  modulus    k, 2..=256
//! 4   f32  step       eps, finite and > 0
//! 8   f32  scale      a, finite: indices are predicted from a * y
//! 12  f32  gain       g, finite and >= 0: an entry's context grows with log2(1 + |y| g)
//! 16  u32  escapes    m, at most the chunk length n
//! 20  (m > 0) u8 Rice parameter, m Rice-coded position gaps (§E.3),
//!             u8 Exp-Golomb order, m Exp-Golomb codes e (§E.5),
//!             f32 values of the escapes whose e is 0, in order
//! ..  C times: u8 coding, u32 length L, a label section of L bytes (§E.4): the residues below k
//!     of the entries (not escaped) in that context, in order
//! ```
//!
//! An escape with `e >= 1` carries its lattice index as a wide residue: `z = base + d`, with
//! `e - 1` the zigzag code of `d` and `base` the rounded prediction (CENTERED) or 0; one with
//! `e = 0` carries its value as f32 (values the lattice cannot hold: non-finite, huge).
//!
//! Contexts are the decoder's use of the side information beyond prediction: where `|y|` is
//! small `x` tends to be small too (the zeros of ReLU layers are shared), so residues coded
//! apart by the size of `y` cost fewer bits than coded together.

use gradwire_codec::entropy::{
    LabelCoding, LabelPlan, MAX_EXP_GOLOMB_ORDER, MAX_RICE_PARAMETER, best_exp_golomb_order, best_rice_parameter,
    exp_golomb_bits, exp_golomb_decode, exp_golomb_encode, max_labels_len, rice_bits, rice_decode, rice_encode,
    write_labels,
};
use gradwire_codec::{Error, ErrorCode, Result};

use crate::params::MAX_MODULUS;

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 20;

/// Most label contexts.
pub const MAX_CONTEXTS: u8 = 16;

/// Bytes before each label section: its coding and length.
pub const SECTION_HEADER_LEN: usize = 5;

/// The context of an entry whose side value is `y`, with `contexts` contexts and gain `gain`:
/// 0 for `y = 0`, else the bit length of `floor(1 + |y| g)` (1 for `|y| g < 1`, 2 below 3, ...),
/// at most `contexts - 1`, which also takes non-finite and huge products.
#[inline]
#[must_use]
pub fn context(y: f32, gain: f32, contexts: u8) -> u8 {
    if contexts <= 1 {
        return 0;
    }
    let v = f64::from(y).abs() * f64::from(gain);
    let top = contexts - 1;
    if v == 0.0 {
        0
    } else if v < 4_611_686_018_427_387_904.0 {
        // 2^62: floor(1 + v) fits a u64 exactly.
        // 1 + v >= 1: the truncating conversion is the floor.
        let bits = 64 - ((1.0 + v) as u64).leading_zeros();
        (bits as u8).min(top)
    } else {
        top
    }
}

/// Largest lattice difference `|d|` a wide escape carries. Beyond it an escape is raw: its code
/// (about 33 bits) would cost as much as the f32 value, and the cap keeps every escape within
/// 33 bits, which bounds the payload (§12.2).
pub const MAX_WIDE: i64 = 32_767;

/// Largest Exp-Golomb code of an escape: `1 + zigzag(d)` for `|d| <= 32767`.
pub const MAX_ESCAPE_CODE: u64 = 65_535;

/// What an escape carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Escape {
    /// The lattice index relative to the base (`z - base`).
    Wide(i64),
    /// The value itself.
    Raw(f32),
}

impl Escape {
    /// Its Exp-Golomb code `e`.
    #[must_use]
    pub fn code(self) -> u64 {
        match self {
            Escape::Raw(_) => 0,
            Escape::Wide(d) => 1 + ((d << 1) ^ (d >> 63)) as u64,
        }
    }
}

/// Flag bit: residues are `(z - c) mod k`, `c` the rounded prediction (the sender had the side
/// information); otherwise they are `z mod k`.
pub const CENTERED: u8 = 1;

fn data_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::CodecData, detail)
}

fn short(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::CodecOutputSize, detail)
}

/// The fixed header of a chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Number of label contexts.
    pub contexts: u8,
    /// Whether residues count from the prediction.
    pub centered: bool,
    /// The modulus `k`.
    pub modulus: u16,
    /// The lattice step `eps`.
    pub step: f32,
    /// The scale `a` of the side information.
    pub scale: f32,
    /// The context gain `g`.
    pub gain: f32,
}

/// A parsed chunk: header, escapes and the label section, ready to decode.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The fixed header.
    pub header: Header,
    /// Positions of the escaped entries, strictly increasing.
    pub positions: Vec<u64>,
    /// What each escaped entry carries.
    pub escapes: Vec<Escape>,
    /// The rest of the payload: the label sections.
    pub sections: &'a [u8],
}

/// Parses an untrusted payload of a chunk of `n` values, checks in the order of §12.2.
///
/// # Errors
/// [`ErrorCode::CodecOutputSize`] for a payload that ends early; [`ErrorCode::CodecData`] for
/// fields out of range; [`ErrorCode::ReservedNonzero`] for reserved flag bits.
pub fn parse(bytes: &[u8], n: usize) -> Result<Parsed<'_>> {
    if bytes.len() < HEADER_LEN {
        return Err(short(format!("wyner-ziv payload of {} bytes has no header", bytes.len())));
    }
    let contexts = bytes[0];
    if !(1..=MAX_CONTEXTS).contains(&contexts) {
        return Err(data_error(format!("wyner-ziv chunk has {contexts} contexts, not 1..={MAX_CONTEXTS}")));
    }
    let flags = bytes[1];
    if flags & !CENTERED != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, format!("wyner-ziv flags 0x{flags:02x} set reserved bits")));
    }
    let modulus = u16::from_le_bytes([bytes[2], bytes[3]]);
    if !(2..=MAX_MODULUS).contains(&modulus) {
        return Err(data_error(format!("wyner-ziv modulus {modulus} is not 2..={MAX_MODULUS}")));
    }
    let f32_at = |o: usize| f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let step = f32_at(4);
    if !(step.is_finite() && step > 0.0) {
        return Err(data_error(format!("wyner-ziv step {step} is not finite and positive")));
    }
    let scale = f32_at(8);
    if !scale.is_finite() {
        return Err(data_error(format!("wyner-ziv scale {scale} is not finite")));
    }
    let gain = f32_at(12);
    if !(gain.is_finite() && gain >= 0.0) {
        return Err(data_error(format!("wyner-ziv context gain {gain} is not finite and non-negative")));
    }
    let m = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
    if m > n {
        return Err(data_error(format!("wyner-ziv chunk of {n} values declares {m} escapes")));
    }
    let header = Header { contexts, centered: flags & CENTERED != 0, modulus, step, scale, gain };
    let mut rest = &bytes[HEADER_LEN..];
    let mut positions = Vec::new();
    let mut escapes = Vec::new();
    if m > 0 {
        let Some((&b, code)) = rest.split_first() else {
            return Err(short("wyner-ziv payload ends before its escapes"));
        };
        if b > MAX_RICE_PARAMETER {
            return Err(data_error(format!("wyner-ziv Rice parameter {b} is above {MAX_RICE_PARAMETER}")));
        }
        // Every gap takes at least one bit: no more can be reserved than the bytes hold.
        let mut gaps = Vec::with_capacity(m.min(8 * code.len()));
        let used = rice_decode(code, b, m, n as u64, &mut gaps)?;
        positions.reserve(m);
        let mut next = 0u64;
        for gap in gaps {
            let p = next + gap;
            if p >= n as u64 {
                return Err(data_error(format!("wyner-ziv escape at position {p} of a chunk of {n}")));
            }
            positions.push(p);
            next = p + 1;
        }
        rest = &code[used..];
        let Some((&order, code)) = rest.split_first() else {
            return Err(short("wyner-ziv payload ends before its escape codes"));
        };
        if order > MAX_EXP_GOLOMB_ORDER {
            return Err(data_error(format!("wyner-ziv Exp-Golomb order {order} is above {MAX_EXP_GOLOMB_ORDER}")));
        }
        let mut codes = Vec::with_capacity(m.min(8 * code.len()));
        let used = exp_golomb_decode(code, order, m, MAX_ESCAPE_CODE, &mut codes)?;
        rest = &code[used..];
        let raw = codes.iter().filter(|&&e| e == 0).count();
        let Some((values, after)) = rest.split_at_checked(4 * raw) else {
            return Err(short(format!("wyner-ziv payload ends inside its {raw} escaped values")));
        };
        let mut values = values.chunks_exact(4).map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        escapes.extend(codes.iter().map(|&e| match e {
            0 => Escape::Raw(values.next().unwrap_or(0.0)),
            e => {
                let z = e - 1;
                Escape::Wide((z >> 1).cast_signed() ^ -(z & 1).cast_signed())
            }
        }));
        rest = after;
    }
    Ok(Parsed { header, positions, escapes, sections: rest })
}

/// Splits the label sections off the rest of a payload: `(coding, section)` for each of the
/// `contexts` contexts, checking that they fill the payload exactly.
///
/// # Errors
/// [`ErrorCode::CodecOutputSize`] when a section header or section runs past the payload or
/// bytes are left over; [`ErrorCode::CodecData`] for an unknown coding.
pub fn sections(mut rest: &[u8], contexts: u8) -> Result<Vec<(LabelCoding, &[u8])>> {
    let mut out = Vec::with_capacity(usize::from(contexts));
    for c in 0..contexts {
        let Some((head, after)) = rest.split_at_checked(SECTION_HEADER_LEN) else {
            return Err(short(format!("wyner-ziv payload ends before label section {c}")));
        };
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let Some((section, after)) = after.split_at_checked(len) else {
            return Err(short(format!("wyner-ziv label section {c} of {len} bytes runs past the payload")));
        };
        let coding = LabelCoding::from_byte(head[0], true)
            .ok_or_else(|| data_error(format!("wyner-ziv label section {c} has coding {}, not 0..=4", head[0])))?;
        out.push((coding, section));
        rest = after;
    }
    if !rest.is_empty() {
        return Err(short(format!("wyner-ziv payload has {} bytes after its label sections", rest.len())));
    }
    Ok(out)
}

/// Appends a chunk: header, escapes (`positions` strictly increasing, with what they carry)
/// and, per context, the residue labels coded as its plan says.
pub fn write(
    header: &Header,
    positions: &[u64],
    escapes: &[Escape],
    labels: &[(Vec<u8>, LabelPlan)],
    out: &mut Vec<u8>,
) {
    out.push(header.contexts);
    out.push(if header.centered { CENTERED } else { 0 });
    out.extend_from_slice(&header.modulus.to_le_bytes());
    out.extend_from_slice(&header.step.to_le_bytes());
    out.extend_from_slice(&header.scale.to_le_bytes());
    out.extend_from_slice(&header.gain.to_le_bytes());
    out.extend_from_slice(&(positions.len() as u32).to_le_bytes());
    if !positions.is_empty() {
        let plan = EscapePlan::new(positions, escapes);
        out.push(plan.rice);
        rice_encode(&plan.gaps, plan.rice, out);
        out.push(plan.order);
        exp_golomb_encode(&plan.codes, plan.order, out);
        for e in escapes {
            if let Escape::Raw(v) = e {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    for (symbols, plan) in labels {
        out.push(plan.coding() as u8);
        out.extend_from_slice(&(plan.label_bytes() as u32).to_le_bytes());
        write_labels(symbols, plan, out);
    }
}

/// How the escapes section codes its positions and escape codes.
struct EscapePlan {
    /// Position gaps: the first position, then each distance minus one.
    gaps: Vec<u64>,
    /// Their Rice parameter (the fewest bits, lowest of equals).
    rice: u8,
    /// The escape codes `e`.
    codes: Vec<u64>,
    /// Their Exp-Golomb order (the fewest bits, lowest of equals).
    order: u8,
}

impl EscapePlan {
    fn new(positions: &[u64], escapes: &[Escape]) -> EscapePlan {
        let mut next = 0;
        let gaps: Vec<u64> = positions
            .iter()
            .map(|&p| {
                let g = p - next;
                next = p + 1;
                g
            })
            .collect();
        let codes: Vec<u64> = escapes.iter().map(|e| e.code()).collect();
        EscapePlan { rice: best_rice_parameter(&gaps), order: best_exp_golomb_order(&codes), gaps, codes }
    }

    /// Bytes of the section: the two parameter bytes, both codes and the raw values.
    fn len(&self) -> usize {
        let code_bits: u64 = self.codes.iter().map(|&e| exp_golomb_bits(e, self.order)).sum();
        let raw = self.codes.iter().filter(|&&e| e == 0).count();
        2 + rice_bits(&self.gaps, self.rice).div_ceil(8) as usize + code_bits.div_ceil(8) as usize + 4 * raw
    }
}

/// Bytes of the escapes section (0 without escapes).
#[must_use]
pub fn escapes_len(positions: &[u64], escapes: &[Escape]) -> usize {
    if positions.is_empty() { 0 } else { EscapePlan::new(positions, escapes).len() }
}

/// Upper bound on the payload of `n` values (`spec/CODECS.md` §12.2). Each entry is a label of
/// at most 8 bits or an escape of at most 33 bits (a code of `e <= 65535` takes at most 33 bits
/// at order 0, whose cost bounds the best order's; a raw escape is a 1-bit code and 32 bits of
/// value), plus at most one bit of position gap (Rice parameter 0 costs the last position plus
/// one bits, which bounds the best parameter's); one label section holds at most `n` 8-bit
/// labels, and up to 16 section headers.
#[must_use]
pub fn max_len(n: usize) -> Option<usize> {
    let fixed = HEADER_LEN + 2 + usize::from(MAX_CONTEXTS) * SECTION_HEADER_LEN + max_labels_len(0)? + 1;
    fixed.checked_add(n.div_ceil(8))?.checked_add(n.checked_mul(33)?.div_ceil(8))
}
