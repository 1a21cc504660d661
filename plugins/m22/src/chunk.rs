//! The `m22` chunk payload (`spec/CODECS.md` §6.2): a 16-byte header, the reconstruction points,
//! and the labels: a label section of the core (`gradwire_codec::entropy`, `spec/CODECS.md` §E.4),
//! whose coding 4 (runs) codec version 2 allows.
//!
//! ```text
//! 0   u8  coding      0 fixed-width labels, 1 Huffman, 2 Huffman over label pairs, 3 constant,
//!                     4 Huffman with runs (version 2)
//! 1   u8  flags       bit 0: symbol 0 is an exact zero; bits 1..7 reserved (zero)
//! 2   u16 points      number of reconstruction points P, 1..=256
//! 4   f32 shape       fitted model (informational: never used to decode), finite
//! 8   f32 scale         "
//! 12  f32 loc           "
//! 16  f32 x P         reconstruction points, finite, strictly ascending
//! ..  labels          S = P (+1 with the zero flag) symbols, see CODECS.md §E.4
//! ```
//!
//! Decoding is table look-ups only: labels to symbols, symbols to values; nothing of the design
//! is recomputed.

use gradwire_codec::entropy::{
    LabelCoding, LabelPlan, decode_labels, decode_labels_mapped, max_labels_len, write_labels,
};
use gradwire_codec::{Error, ErrorCode, Result};

/// Bytes before the points.
pub const HEADER_LEN: usize = 16;

fn data_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::CodecData, detail)
}

/// What an encoded chunk says, ready to decode labels.
pub struct Parsed<'a> {
    /// Value of each symbol.
    pub table: Vec<f32>,
    /// Coding of the labels.
    pub coding: LabelCoding,
    /// The bytes after the points.
    pub labels: &'a [u8],
}

/// Parses and checks the header and points of an untrusted payload written by codec version
/// `version` (coding 4 is version 2's).
///
/// # Errors
/// [`ErrorCode::CodecOutputSize`] for a payload shorter than its header and points;
/// [`ErrorCode::CodecData`] for an unknown coding, a point count out of range, a non-finite
/// field, or points out of order; [`ErrorCode::ReservedNonzero`] for reserved flag bits.
pub fn parse(bytes: &[u8], max_points: usize, version: u16) -> Result<Parsed<'_>> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::new(
            ErrorCode::CodecOutputSize,
            format!("m22 payload of {} bytes has no header", bytes.len()),
        ));
    }
    let Some(coding) = LabelCoding::from_byte(bytes[0], version >= 2) else {
        let top = if version >= 2 { 4 } else { 3 };
        return Err(data_error(format!("m22 label coding {} is not 0..={top} (codec version {version})", bytes[0])));
    };
    let flags = bytes[1];
    if flags & !1 != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, format!("m22 flags 0x{flags:02x} set reserved bits")));
    }
    let points = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
    if !(1..=max_points).contains(&points) {
        return Err(data_error(format!("m22 chunk has {points} points, the stage allows 1..={max_points}")));
    }
    let f32_at = |o: usize| f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    if (4..HEADER_LEN).step_by(4).any(|o| !f32_at(o).is_finite()) {
        return Err(data_error("m22 fitted model fields must be finite"));
    }
    let end = HEADER_LEN + 4 * points;
    if bytes.len() < end {
        return Err(Error::new(
            ErrorCode::CodecOutputSize,
            format!("m22 payload of {} bytes cannot hold {points} points", bytes.len()),
        ));
    }
    let mut table = Vec::with_capacity(points + 1);
    let zero = flags & 1 == 1;
    if zero {
        if points == 256 {
            return Err(data_error("m22 zero symbol with 256 points would need 257 symbols"));
        }
        table.push(0.0);
    }
    for i in 0..points {
        let p = f32_at(HEADER_LEN + 4 * i);
        if !p.is_finite() {
            return Err(data_error(format!("m22 point {i} is not finite")));
        }
        if i > 0 && p <= f32_at(HEADER_LEN + 4 * (i - 1)) {
            return Err(data_error(format!("m22 points must be strictly ascending (point {i})")));
        }
        table.push(p);
    }
    Ok(Parsed { table, coding, labels: &bytes[end..] })
}

/// Decodes the `n = out.len()` labels of a parsed chunk.
///
/// # Errors
/// As [`decode_labels`].
pub fn decode_symbols(parsed: &Parsed<'_>, out: &mut [u8]) -> Result<()> {
    decode_labels(parsed.coding, parsed.labels, parsed.table.len(), out)
}

/// Decodes a parsed chunk into `out`, with `scratch` for the labels: one table look-up per
/// label (per two labels when pair-coded).
///
/// # Errors
/// As [`decode_labels`].
pub fn decode_values(parsed: &Parsed<'_>, scratch: &mut Vec<u8>, out: &mut [f32]) -> Result<()> {
    let table = &parsed.table;
    decode_labels_mapped(parsed.coding, parsed.labels, table.len(), scratch, out, |label| table[usize::from(label)])
}

/// Size of the whole payload with `points` points and labels coded as `plan` says.
#[must_use]
pub fn total_len(plan: &LabelPlan, points: usize) -> usize {
    HEADER_LEN + 4 * points + plan.label_bytes()
}

/// Appends the header, the points and the labels coded as `plan` says.
pub fn write(fit: [f32; 3], points: &[f32], zero: bool, symbols: &[u8], plan: &LabelPlan, out: &mut Vec<u8>) {
    out.reserve(total_len(plan, points.len()));
    out.push(plan.coding() as u8);
    out.push(u8::from(zero));
    out.extend_from_slice(&(points.len() as u16).to_le_bytes());
    for f in fit {
        out.extend_from_slice(&f.to_le_bytes());
    }
    for p in points {
        out.extend_from_slice(&p.to_le_bytes());
    }
    write_labels(symbols, plan, out);
}

/// Upper bound on the payload of `n` values with at most `points` points.
#[must_use]
pub fn max_len(n: usize, points: usize) -> Option<usize> {
    HEADER_LEN.checked_add(points.checked_mul(4)?)?.checked_add(max_labels_len(n)?)
}
