//! Label sections (`spec/CODECS.md` §E.4): `n` labels, each below an alphabet size `S <= 256`,
//! coded the cheapest of five ways: fixed width, Huffman, Huffman over label pairs, one constant
//! symbol, or Huffman with runs of one symbol written as digits (bzip2's RUNA/RUNB).
//!
//! A codec writes the [`LabelCoding`] byte in its own header and the section after it; `m22`
//! codes its quantizer labels this way and `wyner-ziv` its lattice residues. The code lengths
//! travel in the section, so a decoder rebuilds the code with integer arithmetic alone.

use super::{HuffmanCode, MAX_CODE_LEN, code_lengths, coded_bits, pack_fixed, packed_fixed_len, unpack_fixed};
use crate::error::{Error, ErrorCode, Result};

/// How a label section is coded (the byte a codec stores before the section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelCoding {
    /// `ceil(log2 S)` bits per label.
    Fixed = 0,
    /// Canonical Huffman over the `S` symbols.
    Huffman = 1,
    /// Canonical Huffman over pairs `a*S + b` (`S <= 16`).
    Pairs = 2,
    /// One symbol for every value.
    Constant = 3,
    /// Canonical Huffman over the symbols other than a run symbol `z` plus two run digits
    /// (runs of `z` written in bijective base 2, as bzip2 does); not in `m22` version 1.
    Runs = 4,
}

/// Run digit 1 (`RUNA`) and run digit 2 (`RUNB`) of coding 4; coded symbol `c >= 2` is a label.
const RUN_A: u8 = 0;
const RUN_B: u8 = 1;
/// Most digits of one run: runs are at most `n < 2^32` long.
const MAX_RUN_DIGITS: u32 = 32;

impl LabelCoding {
    /// The coding of byte `b`; coding 4 only when `runs` (codecs that predate it refuse it).
    #[must_use]
    pub fn from_byte(b: u8, runs: bool) -> Option<LabelCoding> {
        match b {
            0 => Some(LabelCoding::Fixed),
            1 => Some(LabelCoding::Huffman),
            2 => Some(LabelCoding::Pairs),
            3 => Some(LabelCoding::Constant),
            4 if runs => Some(LabelCoding::Runs),
            _ => None,
        }
    }
}

fn data_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::CodecData, detail)
}

/// Bits of a fixed-width label for an alphabet of `symbols` symbols.
#[must_use]
pub fn fixed_width(symbols: usize) -> u8 {
    (usize::BITS - (symbols.max(2) - 1).leading_zeros()) as u8
}

/// The cheapest coding of a list of labels and its size, from [`plan_labels`].
pub struct LabelPlan {
    coding: LabelCoding,
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

impl LabelPlan {
    /// The chosen coding.
    #[must_use]
    pub fn coding(&self) -> LabelCoding {
        self.coding
    }

    /// Bytes of the whole label section.
    #[must_use]
    pub fn label_bytes(&self) -> usize {
        self.label_bytes
    }

    /// Bytes of the code lengths within the labels section (0 for fixed width and constant).
    #[must_use]
    pub fn table_bytes(&self) -> usize {
        match self.coding {
            LabelCoding::Huffman => self.symbols.div_ceil(2),
            LabelCoding::Pairs => (self.symbols * self.symbols).div_ceil(2),
            LabelCoding::Runs => 5 + (self.symbols + 1).div_ceil(2),
            LabelCoding::Fixed | LabelCoding::Constant => 0,
        }
    }
}

/// Chooses the smallest coding for `symbols` (each below `s`): of codings 0-3, and of coding 4
/// too when `runs` (codecs that allow it) and one symbol holds at least half of the values.
#[must_use]
pub fn plan_labels(s: usize, symbols: &[u8], runs: bool) -> LabelPlan {
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
        LabelPlan { coding, lengths, label_bytes, symbols: s, coded, run_symbol }
    };
    if counts.iter().filter(|&&c| c > 0).count() <= 1 && !symbols.is_empty() {
        return candidate(LabelCoding::Constant, 1, Vec::new(), &[], Vec::new(), 0);
    }
    let mut best =
        candidate(LabelCoding::Fixed, packed_fixed_len(symbols.len(), fixed_width(s)), Vec::new(), &[], Vec::new(), 0);
    let mut offer = |plan: LabelPlan| {
        if plan.label_bytes < best.label_bytes {
            best = plan;
        }
    };
    if s >= 2 {
        let lengths = code_lengths(&counts, MAX_CODE_LEN);
        offer(candidate(LabelCoding::Huffman, s.div_ceil(2), lengths, &counts, Vec::new(), 0));
    }
    if pair_alphabet > 0 {
        let lengths = code_lengths(&pc, MAX_CODE_LEN);
        offer(candidate(LabelCoding::Pairs, (s * s).div_ceil(2), lengths, &pc, pair_symbols, 0));
    }
    let (z, most) = counts.iter().enumerate().max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i))).unwrap_or((0, &0));
    if runs && (2..=255).contains(&s) && 2 * *most >= symbols.len() as u64 {
        let z = z as u8;
        let coded = run_coded(symbols, z);
        let mut cc = vec![0u64; s + 1];
        histogram(&coded, &mut cc);
        let lengths = code_lengths(&cc, MAX_CODE_LEN);
        offer(candidate(LabelCoding::Runs, 5 + (s + 1).div_ceil(2), lengths, &cc, coded, z));
    }
    best
}

/// Appends the label section of `symbols` coded as `plan` says (the coding byte not included:
/// the codec stores [`LabelPlan::coding`] in its header).
pub fn write_labels(symbols: &[u8], plan: &LabelPlan, out: &mut Vec<u8>) {
    let s = plan.symbols;
    match plan.coding {
        LabelCoding::Constant => out.push(symbols[0]),
        LabelCoding::Fixed => pack_fixed(symbols, fixed_width(s), out),
        LabelCoding::Huffman => {
            write_lengths(&plan.lengths, out);
            if let Ok(code) = HuffmanCode::from_lengths(&plan.lengths) {
                // Cannot fail: every symbol that occurs has a code.
                let _ = code.encode(symbols, out);
            }
        }
        LabelCoding::Pairs => {
            write_lengths(&plan.lengths, out);
            if let Ok(code) = HuffmanCode::from_lengths(&plan.lengths) {
                let _ = code.encode(&plan.coded, out);
            }
        }
        LabelCoding::Runs => {
            out.push(plan.run_symbol);
            out.extend_from_slice(&(plan.coded.len() as u32).to_le_bytes());
            write_lengths(&plan.lengths, out);
            if let Ok(code) = HuffmanCode::from_lengths(&plan.lengths) {
                let _ = code.encode(&plan.coded, out);
            }
        }
    }
}

/// Upper bound on a label section of `n` labels: the encoder never chooses a coding larger than
/// fixed width, at most 8 bits a label (plus one byte for the constant coding of `n = 0`).
#[must_use]
pub fn max_labels_len(n: usize) -> Option<usize> {
    packed_fixed_len(n, 8).checked_add(1)
}

/// Decodes the label section `bytes` (coding `coding`, alphabet `s`) into `out.len()` labels.
///
/// # Errors
/// As [`HuffmanCode::from_lengths`], [`HuffmanCode::decode`] and [`unpack_fixed`];
/// [`ErrorCode::CodecData`] for a label not below `s` or a coding that does not fit `s`;
/// [`ErrorCode::ReservedNonzero`] for nonzero padding.
pub fn decode_labels(coding: LabelCoding, bytes: &[u8], s: usize, out: &mut [u8]) -> Result<()> {
    decode_labels_mapped(coding, bytes, s, &mut Vec::new(), out, |label| label)
}

/// Decodes a label section straight into values: `out[i] = value(label i)`, with `scratch` for
/// the labels. Pair-coded sections go from pair symbols to value pairs (one table look-up per
/// two values); run-coded ones fill runs without materializing their labels.
///
/// # Errors
/// As [`decode_labels`].
pub fn decode_labels_mapped<T: Copy + Default>(
    coding: LabelCoding,
    bytes: &[u8],
    s: usize,
    scratch: &mut Vec<u8>,
    out: &mut [T],
    value: impl Fn(u8) -> T,
) -> Result<()> {
    if !(1..=256).contains(&s) {
        return Err(data_error(format!("label alphabet of {s} symbols is not 1..=256")));
    }
    let n = out.len();
    // Every byte value indexes the table, so no look-up can go out of bounds.
    let mut values = [T::default(); 256];
    for (label, v) in values.iter_mut().enumerate().take(s) {
        *v = value(label as u8);
    }
    match coding {
        LabelCoding::Fixed => {
            let labels = scratch_of(scratch, n);
            unpack_fixed(bytes, fixed_width(s), labels)?;
            if let Some(i) = labels.iter().position(|&l| usize::from(l) >= s) {
                return Err(data_error(format!("label {} of value {i} is not below {s}", labels[i])));
            }
            for (o, &l) in out.iter_mut().zip(labels.iter()) {
                *o = values[usize::from(l)];
            }
        }
        LabelCoding::Constant => {
            let [symbol] = bytes else {
                return Err(Error::new(
                    ErrorCode::CodecOutputSize,
                    format!("constant labels take 1 byte, found {}", bytes.len()),
                ));
            };
            if usize::from(*symbol) >= s {
                return Err(data_error(format!("constant label {symbol} is not below {s}")));
            }
            out.fill(values[usize::from(*symbol)]);
        }
        LabelCoding::Huffman => {
            let (code, rest) = read_code(bytes, s)?;
            let labels = scratch_of(scratch, n);
            code.decode(rest, labels)?;
            for (o, &l) in out.iter_mut().zip(labels.iter()) {
                *o = values[usize::from(l)];
            }
        }
        LabelCoding::Pairs => {
            if s > 16 {
                return Err(data_error(format!("pair coding needs at most 16 symbols, found {s}")));
            }
            let (code, rest) = read_code(bytes, s * s)?;
            let pairs = scratch_of(scratch, n.div_ceil(2));
            code.decode(rest, pairs)?;
            let mut pair_values = [[T::default(); 2]; 256];
            for (p, v) in pair_values.iter_mut().enumerate().take(s * s) {
                *v = [values[p / s], values[p % s]];
            }
            let (whole, last) = out.as_chunks_mut::<2>();
            for (o, &p) in whole.iter_mut().zip(pairs.iter()) {
                *o = pair_values[usize::from(p)];
            }
            if let [o] = last {
                let p = usize::from(pairs[n / 2]);
                if p % s != 0 {
                    return Err(Error::new(ErrorCode::ReservedNonzero, "padding label of the last pair is not 0"));
                }
                *o = values[p / s];
            }
        }
        LabelCoding::Runs => decode_runs(bytes, s, scratch, out, |label| values[usize::from(label)])?,
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
        return Err(Error::new(ErrorCode::CodecOutputSize, "run coding ends inside its header"));
    }
    let run_symbol = bytes[0];
    let coded_len = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if usize::from(run_symbol) >= symbols {
        return Err(data_error(format!("run symbol {run_symbol} is not below {symbols}")));
    }
    if symbols > 255 {
        return Err(data_error(format!("run coding needs at most 255 symbols, found {symbols}")));
    }
    if coded_len == 0 || coded_len > len {
        return Err(data_error(format!("run coding declares {coded_len} coded symbols for {len} values")));
    }
    let (code, rest) = read_code(&bytes[5..], symbols + 1)?;
    let coded = scratch_of(scratch, coded_len);
    code.decode(rest, coded)?;
    let run_value = value(run_symbol);
    let overflow = || data_error(format!("run coding expands beyond the chunk's {len} values"));
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
                return Err(data_error(format!("run coding has a run of more than {MAX_RUN_DIGITS} digits")));
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
        return Err(data_error(format!("run coding gives {filled} values for a chunk of {len}")));
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
        return Err(Error::new(ErrorCode::CodecOutputSize, "payload ends inside the code lengths"));
    }
    let lengths: Vec<u8> = (0..symbols).map(|i| (bytes[i / 2] >> (4 * (i % 2))) & 0xF).collect();
    if symbols % 2 == 1 && bytes[len - 1] >> 4 != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, "padding nibble of the code lengths is not 0"));
    }
    Ok((HuffmanCode::from_lengths(&lengths)?, &bytes[len..]))
}

fn write_lengths(lengths: &[u8], out: &mut Vec<u8>) {
    for pair in lengths.chunks(2) {
        out.push(pair[0] | pair.get(1).map_or(0, |&l| l << 4));
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
