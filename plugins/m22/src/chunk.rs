//! The `m22` chunk payload (`spec/CODECS.md` §6.2): a 16-byte header, the reconstruction points,
//! and the labels (fixed width, Huffman, Huffman over pairs, one constant symbol, or, in codec
//! version 2, Huffman with runs of one symbol written as digits).
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
//! ..  labels          S = P (+1 with the zero flag) symbols, see CODECS.md §6.2
//! ```
//!
//! Decoding is table look-ups only: labels to symbols, symbols to values; nothing of the design
//! is recomputed.

use gradwire_codec::entropy::{
    HuffmanCode, MAX_CODE_LEN, code_lengths, coded_bits, pack_fixed, packed_fixed_len, unpack_fixed,
};
use gradwire_codec::{Error, ErrorCode, Result};

/// Bytes before the points.
pub const HEADER_LEN: usize = 16;

/// How the labels are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `ceil(log2 S)` bits per label.
    Fixed = 0,
    /// Canonical Huffman over the `S` symbols.
    Huffman = 1,
    /// Canonical Huffman over pairs `a*S + b` (`S <= 16`).
    Pairs = 2,
    /// One symbol for every value.
    Constant = 3,
    /// Canonical Huffman over the symbols other than a run symbol `z` plus two run digits
    /// (runs of `z` written in bijective base 2, as bzip2 does); codec version 2.
    Runs = 4,
}

/// Run digit 1 (`RUNA`) and run digit 2 (`RUNB`) of coding 4; coded symbol `c >= 2` is a label.
const RUN_A: u8 = 0;
const RUN_B: u8 = 1;
/// Most digits of one run: runs are at most `n < 2^32` long.
const MAX_RUN_DIGITS: u32 = 32;

fn data_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::CodecData, detail)
}

/// Bits of a fixed-width label for `symbols` symbols.
fn width(symbols: usize) -> u8 {
    (usize::BITS - (symbols - 1).leading_zeros()).max(1) as u8
}

/// What an encoded chunk says, ready to decode labels.
pub struct Parsed<'a> {
    /// Value of each symbol.
    pub table: Vec<f32>,
    /// Coding of the labels.
    pub coding: Coding,
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
    let coding = match bytes[0] {
        0 => Coding::Fixed,
        1 => Coding::Huffman,
        2 => Coding::Pairs,
        3 => Coding::Constant,
        4 if version >= 2 => Coding::Runs,
        c => {
            let top = if version >= 2 { 4 } else { 3 };
            return Err(data_error(format!("m22 label coding {c} is not 0..={top} (codec version {version})")));
        }
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

/// Decodes the `n = out.len()` symbols of a parsed chunk.
///
/// # Errors
/// As [`HuffmanCode::from_lengths`], [`HuffmanCode::decode`] and
/// [`gradwire_codec::entropy::unpack_fixed`]; [`ErrorCode::CodecData`] for a symbol out of range.
pub fn decode_symbols(parsed: &Parsed<'_>, out: &mut [u8]) -> Result<()> {
    let s = parsed.table.len();
    let bytes = parsed.labels;
    match parsed.coding {
        Coding::Fixed => {
            unpack_fixed(bytes, width(s), out)?;
            if let Some(i) = out.iter().position(|&l| usize::from(l) >= s) {
                return Err(data_error(format!("m22 label {} of value {i} is not below {s}", out[i])));
            }
        }
        Coding::Constant => {
            let [symbol] = bytes else {
                return Err(Error::new(
                    ErrorCode::CodecOutputSize,
                    format!("m22 constant labels take 1 byte, found {}", bytes.len()),
                ));
            };
            if usize::from(*symbol) >= s {
                return Err(data_error(format!("m22 constant symbol {symbol} is not below {s}")));
            }
            out.fill(*symbol);
        }
        Coding::Huffman => {
            let (code, rest) = read_code(bytes, s)?;
            code.decode(rest, out)?;
        }
        Coding::Pairs => {
            if s > 16 {
                return Err(data_error(format!("m22 pair coding needs at most 16 symbols, found {s}")));
            }
            let (code, rest) = read_code(bytes, s * s)?;
            let mut pairs = vec![0u8; out.len().div_ceil(2)];
            code.decode(rest, &mut pairs)?;
            // The two labels of each pair symbol, looked up: a division per pair by the
            // run-time `S` cost more than the Huffman decoding itself.
            let split: Vec<(u8, u8)> = (0..s * s).map(|p| ((p / s) as u8, (p % s) as u8)).collect();
            for (i, &p) in pairs.iter().enumerate() {
                let (a, b) = split.get(usize::from(p)).copied().unwrap_or((0, 0));
                out[2 * i] = a;
                match out.get_mut(2 * i + 1) {
                    Some(o) => *o = b,
                    None if b != 0 => {
                        return Err(Error::new(
                            ErrorCode::ReservedNonzero,
                            "m22 padding label of the last pair is not 0",
                        ));
                    }
                    None => {}
                }
            }
        }
        Coding::Runs => decode_runs(bytes, s, &mut Vec::new(), out, |label| label)?,
    }
    Ok(())
}

/// Decodes a parsed chunk into `out`, with `scratch` for the labels. Pair-coded chunks go from
/// pair symbols straight to value pairs (one table look-up per two values).
///
/// # Errors
/// As [`decode_symbols`].
pub fn decode_values(parsed: &Parsed<'_>, scratch: &mut Vec<u8>, out: &mut [f32]) -> Result<()> {
    let n = out.len();
    let s = parsed.table.len();
    // Every byte value indexes the tables, so no look-up can go out of bounds.
    let mut values = [0f32; 256];
    values[..s].copy_from_slice(&parsed.table);
    if parsed.coding == Coding::Runs {
        return decode_runs(parsed.labels, s, scratch, out, |label| values[usize::from(label)]);
    }
    if parsed.coding == Coding::Pairs && s <= 16 {
        let (code, rest) = read_code(parsed.labels, s * s)?;
        let scratch = scratch_of(scratch, n.div_ceil(2));
        code.decode(rest, scratch)?;
        let mut pair_values = [[0f32; 2]; 256];
        for (p, v) in pair_values.iter_mut().enumerate().take(s * s) {
            *v = [values[p / s], values[p % s]];
        }
        let (whole, last) = out.as_chunks_mut::<2>();
        for (o, &p) in whole.iter_mut().zip(scratch.iter()) {
            *o = pair_values[usize::from(p)];
        }
        if let [o] = last {
            let p = usize::from(scratch[n / 2]);
            if p % s != 0 {
                return Err(Error::new(ErrorCode::ReservedNonzero, "m22 padding label of the last pair is not 0"));
            }
            *o = values[p / s];
        }
        return Ok(());
    }
    let scratch = scratch_of(scratch, n);
    decode_symbols(parsed, scratch)?;
    for (o, &l) in out.iter_mut().zip(scratch.iter()) {
        *o = values[usize::from(l)];
    }
    Ok(())
}

/// Coding 4: `u8 z`, `u32 m`, the code lengths over `S + 1` coded symbols, `m` coded symbols;
/// runs of `z` expanded from their digits.
fn decode_runs<T: Copy>(
    bytes: &[u8],
    symbols: usize,
    scratch: &mut Vec<u8>,
    out: &mut [T],
    value: impl Fn(u8) -> T,
) -> Result<()> {
    let len = out.len();
    if bytes.len() < 5 {
        return Err(Error::new(ErrorCode::CodecOutputSize, "m22 run coding ends inside its header"));
    }
    let run_symbol = bytes[0];
    let coded_len = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if usize::from(run_symbol) >= symbols {
        return Err(data_error(format!("m22 run symbol {run_symbol} is not below {symbols}")));
    }
    if symbols > 255 {
        return Err(data_error(format!("m22 run coding needs at most 255 symbols, found {symbols}")));
    }
    if coded_len == 0 || coded_len > len {
        return Err(data_error(format!("m22 run coding declares {coded_len} coded symbols for {len} values")));
    }
    let (code, rest) = read_code(&bytes[5..], symbols + 1)?;
    let coded = scratch_of(scratch, coded_len);
    code.decode(rest, coded)?;
    let run_value = value(run_symbol);
    let overflow = || data_error(format!("m22 run coding expands beyond the chunk's {len} values"));
    // Writes the pending run (`run` copies of the run symbol's value) at `filled`.
    let flush = |out: &mut [T], filled: &mut usize, run: &mut u64, digit: &mut u32| -> Result<()> {
        let count = usize::try_from(*run).ok().filter(|r| *r <= len - *filled).ok_or_else(overflow)?;
        out[*filled..*filled + count].fill(run_value);
        *filled += count;
        (*run, *digit) = (0, 0);
        Ok(())
    };
    let (mut filled, mut run, mut digit) = (0usize, 0u64, 0u32);
    for &c in coded.iter() {
        if c <= RUN_B {
            if digit == MAX_RUN_DIGITS {
                return Err(data_error(format!("m22 run coding has a run of more than {MAX_RUN_DIGITS} digits")));
            }
            run += u64::from(c + 1) << digit;
            digit += 1;
            continue;
        }
        flush(out, &mut filled, &mut run, &mut digit)?;
        if filled == len {
            return Err(overflow());
        }
        let label = c - 2;
        out[filled] = value(if label < run_symbol { label } else { label + 1 });
        filled += 1;
    }
    flush(out, &mut filled, &mut run, &mut digit)?;
    if filled != len {
        return Err(data_error(format!("m22 run coding gives {filled} values for a chunk of {len}")));
    }
    Ok(())
}

/// The first `n` bytes of `scratch`, grown (zero-filled) only when it is shorter: every byte is
/// overwritten by the caller, so clearing a reused buffer each chunk would be wasted work.
fn scratch_of(scratch: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    &mut scratch[..n]
}

/// The coded symbols of coding 4 for `symbols` with run symbol `z`.
fn run_coded(symbols: &[u8], z: u8) -> Vec<u8> {
    let mut coded = Vec::with_capacity(symbols.len() / 4);
    let mut run = 0usize;
    let flush = |run: &mut usize, coded: &mut Vec<u8>| {
        // Bijective base 2, least significant digit first: digit 1 is RUNA, digit 2 is RUNB.
        while *run > 0 {
            if *run & 1 == 1 {
                coded.push(RUN_A);
                *run = (*run - 1) / 2;
            } else {
                coded.push(RUN_B);
                *run = (*run - 2) / 2;
            }
        }
    };
    // Blocks of 64: a bit mask of the labels that are not `z` (built branch-free, as the sign
    // packer does), then one step per such label; blocks of `z` alone cost one test.
    let (blocks, rest) = symbols.as_chunks::<64>();
    for block in blocks {
        let mut mask = not_equal_mask(block, z);
        let mut at = 0u32;
        while mask != 0 {
            let j = mask.trailing_zeros();
            run += (j - at) as usize;
            flush(&mut run, &mut coded);
            let x = block[j as usize];
            coded.push(if x < z { x + 2 } else { x + 1 });
            at = j + 1;
            mask &= mask - 1;
        }
        run += (64 - at) as usize;
    }
    for &x in rest {
        if x == z {
            run += 1;
            continue;
        }
        flush(&mut run, &mut coded);
        coded.push(if x < z { x + 2 } else { x + 1 });
    }
    flush(&mut run, &mut coded);
    coded
}

/// Bit `j` set when `block[j] != z`, built as two 32-bit halves (the form that vectorizes).
fn not_equal_mask(block: &[u8; 64], z: u8) -> u64 {
    let (mut lo, mut hi) = (0u32, 0u32);
    for j in 0..32 {
        lo |= u32::from(block[j] != z) << j;
        hi |= u32::from(block[j + 32] != z) << j;
    }
    u64::from(lo) | u64::from(hi) << 32
}

/// Reads `symbols` code lengths (4 bits each, low nibble first) and builds the code.
fn read_code(bytes: &[u8], symbols: usize) -> Result<(HuffmanCode, &[u8])> {
    let len = symbols.div_ceil(2);
    if bytes.len() < len {
        return Err(Error::new(ErrorCode::CodecOutputSize, "m22 payload ends inside the code lengths"));
    }
    let lengths: Vec<u8> = (0..symbols).map(|i| (bytes[i / 2] >> (4 * (i % 2))) & 0xF).collect();
    if symbols % 2 == 1 && bytes[len - 1] >> 4 != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, "m22 padding nibble of the code lengths is not 0"));
    }
    Ok((HuffmanCode::from_lengths(&lengths)?, &bytes[len..]))
}

fn write_lengths(lengths: &[u8], out: &mut Vec<u8>) {
    for pair in lengths.chunks(2) {
        out.push(pair[0] | pair.get(1).map_or(0, |&l| l << 4));
    }
}

/// The cheapest coding of a chunk's symbols and its size.
pub struct Plan {
    coding: Coding,
    /// Code lengths for Huffman codings.
    lengths: Vec<u8>,
    /// Bytes of the labels section.
    label_bytes: usize,
    /// Number of symbols.
    symbols: usize,
    /// Codings 2 and 4: the coded symbols (pairs, or runs and labels), kept from planning.
    coded: Vec<u8>,
    /// Coding 4: the run symbol.
    run_symbol: u8,
}

impl Plan {
    /// Size of the whole payload with `points` points.
    #[must_use]
    pub fn total_len(&self, points: usize) -> usize {
        HEADER_LEN + 4 * points + self.label_bytes
    }

    /// Bytes of the code lengths within the labels section (0 for fixed width and constant).
    #[must_use]
    pub fn table_bytes(&self) -> usize {
        match self.coding {
            Coding::Huffman => self.symbols.div_ceil(2),
            Coding::Pairs => (self.symbols * self.symbols).div_ceil(2),
            Coding::Runs => 5 + (self.symbols + 1).div_ceil(2),
            Coding::Fixed | Coding::Constant => 0,
        }
    }
}

/// Chooses the smallest coding for `symbols` (each below `s`): of codings 0-3, and of coding 4
/// too when `runs` (codec version 2) and one symbol holds at least half of the values.
#[must_use]
pub fn plan(s: usize, symbols: &[u8], runs: bool) -> Plan {
    // Pair counts first (one pass); the single counts follow from them.
    let pair_alphabet = if (2..=16).contains(&s) { s * s } else { 0 };
    let mut pc = vec![0u64; pair_alphabet];
    let mut counts = vec![0u64; s.max(2)];
    let mut pair_symbols = Vec::new();
    if pair_alphabet > 0 {
        // The pair symbols are formed once (a vectorized pass), counted, and kept for writing.
        let (pairs, last) = symbols.as_chunks::<2>();
        pair_symbols.reserve(symbols.len().div_ceil(2));
        pair_symbols.extend(pairs.iter().map(|p| p[0] * s as u8 + p[1]));
        pair_symbols.extend(last.iter().map(|&a| a * s as u8));
        histogram(&pair_symbols, &mut pc);
        for (i, &c) in pc.iter().enumerate() {
            counts[i / s] += c;
            counts[i % s] += c;
        }
        if last.len() == 1 {
            counts[0] -= 1; // the padding label of the last pair is not a value's label
        }
    } else {
        histogram(symbols, &mut counts);
    }
    // A candidate coding: `header` bytes before the Huffman-coded `coded` symbols (none for
    // fixed width and constant), `lengths` their code.
    let candidate = |coding, header: usize, lengths: Vec<u8>, counts: &[u64], coded, run_symbol| {
        let label_bytes = header + coded_bits(counts, &lengths).div_ceil(8) as usize;
        Plan { coding, lengths, label_bytes, symbols: s, coded, run_symbol }
    };
    if counts.iter().filter(|&&c| c > 0).count() <= 1 && !symbols.is_empty() {
        return candidate(Coding::Constant, 1, Vec::new(), &[], Vec::new(), 0);
    }
    let mut best = candidate(Coding::Fixed, packed_fixed_len(symbols.len(), width(s)), Vec::new(), &[], Vec::new(), 0);
    let mut offer = |plan: Plan| {
        if plan.label_bytes < best.label_bytes {
            best = plan;
        }
    };
    if s >= 2 {
        let lengths = code_lengths(&counts, MAX_CODE_LEN);
        offer(candidate(Coding::Huffman, s.div_ceil(2), lengths, &counts, Vec::new(), 0));
    }
    if pair_alphabet > 0 {
        let lengths = code_lengths(&pc, MAX_CODE_LEN);
        offer(candidate(Coding::Pairs, (s * s).div_ceil(2), lengths, &pc, pair_symbols, 0));
    }
    let (z, most) = counts.iter().enumerate().max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i))).unwrap_or((0, &0));
    if runs && (2..=255).contains(&s) && 2 * *most >= symbols.len() as u64 {
        let z = z as u8;
        let coded = run_coded(symbols, z);
        let mut cc = vec![0u64; s + 1];
        histogram(&coded, &mut cc);
        let lengths = code_lengths(&cc, MAX_CODE_LEN);
        offer(candidate(Coding::Runs, 5 + (s + 1).div_ceil(2), lengths, &cc, coded, z));
    }
    best
}

/// Appends the header, the points and the labels coded as `plan` says.
pub fn write(fit: [f32; 3], points: &[f32], zero: bool, symbols: &[u8], plan: &Plan, out: &mut Vec<u8>) {
    let s = plan.symbols;
    out.reserve(plan.total_len(points.len()));
    out.push(plan.coding as u8);
    out.push(u8::from(zero));
    out.extend_from_slice(&(points.len() as u16).to_le_bytes());
    for f in fit {
        out.extend_from_slice(&f.to_le_bytes());
    }
    for p in points {
        out.extend_from_slice(&p.to_le_bytes());
    }
    match plan.coding {
        Coding::Constant => out.push(symbols[0]),
        Coding::Fixed => pack_fixed(symbols, width(s), out),
        Coding::Huffman => {
            write_lengths(&plan.lengths, out);
            if let Ok(code) = HuffmanCode::from_lengths(&plan.lengths) {
                // Cannot fail: every symbol that occurs has a code.
                let _ = code.encode(symbols, out);
            }
        }
        Coding::Pairs => {
            write_lengths(&plan.lengths, out);
            if let Ok(code) = HuffmanCode::from_lengths(&plan.lengths) {
                let _ = code.encode(&plan.coded, out);
            }
        }
        Coding::Runs => {
            out.push(plan.run_symbol);
            out.extend_from_slice(&(plan.coded.len() as u32).to_le_bytes());
            write_lengths(&plan.lengths, out);
            if let Ok(code) = HuffmanCode::from_lengths(&plan.lengths) {
                let _ = code.encode(&plan.coded, out);
            }
        }
    }
}

/// Adds the count of every symbol of `symbols` to `counts` (which covers every symbol), with
/// four interleaved histograms so that runs of one symbol do not wait on one counter.
fn histogram(symbols: &[u8], counts: &mut [u64]) {
    let mut lanes = vec![[0u64; 4]; counts.len()];
    let (blocks, rest) = symbols.as_chunks::<4>();
    for b in blocks {
        for (lane, &x) in b.iter().enumerate() {
            lanes[usize::from(x)][lane] += 1;
        }
    }
    for &x in rest {
        lanes[usize::from(x)][0] += 1;
    }
    for (c, l) in counts.iter_mut().zip(&lanes) {
        *c += l.iter().sum::<u64>();
    }
}

/// Upper bound on the payload of `n` values with at most `points` points.
#[must_use]
pub fn max_len(n: usize, points: usize) -> Option<usize> {
    // The encoder never chooses a coding larger than fixed width, at most 8 bits a label.
    HEADER_LEN.checked_add(points.checked_mul(4)?)?.checked_add(packed_fixed_len(n, 8))?.checked_add(1)
}
