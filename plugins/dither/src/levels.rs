//! The signed-levels chunk (`spec/CODECS.md` §10.2) that `qsgd` and `sparse-dither` share: a
//! step, then for every nonzero value its position (Golomb-Rice coded gaps), its sign (one bit)
//! and its magnitude (a constant, Rice or Huffman coded). Value `j` decodes to
//! `±f32(step · magnitude_j)`, the product taken in f64 (exact: at most 24 + 26 significant
//! bits) and rounded once to f32, so every implementation gets the same bits.

use gradwire_codec::entropy::{
    HuffmanCode, MAX_CODE_LEN, MAX_RICE_PARAMETER, best_rice_parameter, code_lengths, coded_bits, rice_bits,
    rice_decode, rice_encode,
};
use gradwire_codec::{Error, ErrorCode, Result};

/// Largest magnitude either codec writes (keeps `step · magnitude` exact in f64).
pub const MAX_MAGNITUDE: u64 = 1 << 26;

/// How the magnitudes of a chunk are coded (`spec/CODECS.md` §10.2).
const CONSTANT: u8 = 0;
const RICE: u8 = 1;
const HUFFMAN: u8 = 2;

/// The nonzero levels of one chunk, as the quantizer produces them. The buffers hold a slot
/// per value of the chunk (written by index, never zero-filled again); the first `count` are
/// the nonzeros.
#[derive(Debug, Default)]
pub struct Levels {
    /// Grid step: value = ±step · magnitude.
    pub step: f32,
    /// Number of nonzero levels.
    pub count: usize,
    /// Gap before each nonzero: its position minus the previous one's minus 1 (the first: its position).
    pub gaps: Vec<u64>,
    /// Magnitudes of the nonzeros minus 1 (as the Rice and Huffman codes take them), each
    /// below `MAX_MAGNITUDE`.
    pub magnitudes_below: Vec<u64>,
    /// One byte per slot: 1 when the value is negative.
    pub negative: Vec<u8>,
    /// Sign bits of the nonzeros, least significant bit first, packed by [`Levels::keep`].
    signs: Vec<u8>,
}

impl Levels {
    /// Makes room for the levels of a chunk of `n` values on grid `step`: the quantizer writes
    /// slot by slot, then [`Levels::keep`] records how many are nonzero.
    pub fn prepare(&mut self, step: f32, n: usize) {
        self.step = step;
        self.count = 0;
        if self.gaps.len() < n {
            self.gaps.resize(n, 0);
            self.magnitudes_below.resize(n, 0);
            self.negative.resize(n, 0);
        }
    }

    /// Keeps the first `m` levels and packs their signs, eight at a time (each byte 0 or 1,
    /// gathered into one by a multiplication).
    pub fn keep(&mut self, m: usize) {
        self.count = m;
        self.signs.clear();
        let chunks = self.negative[..m].chunks_exact(8);
        let tail = chunks.remainder();
        self.signs.extend(chunks.map(|eight| {
            let word = u64::from_le_bytes(eight.try_into().unwrap_or_default());
            (word.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
        }));
        if !tail.is_empty() {
            self.signs.push(tail.iter().enumerate().fold(0u8, |acc, (i, &b)| acc | b << i));
        }
    }

    /// Writes the chunk payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.step.to_le_bytes());
        let m = self.count;
        out.extend_from_slice(&(m as u32).to_le_bytes());
        if m == 0 {
            return;
        }
        let gaps = &self.gaps[..m];
        let gap_parameter = best_rice_parameter(gaps);
        out.push(gap_parameter);
        let below = &self.magnitudes_below[..m];
        let plan = MagnitudePlan::choose(below);
        match &plan {
            MagnitudePlan::Constant => {
                out.push(CONSTANT);
                out.extend_from_slice(&(below[0] as u32 + 1).to_le_bytes());
            }
            MagnitudePlan::Rice(b) => out.extend_from_slice(&[RICE, *b]),
            MagnitudePlan::Huffman(lengths) => {
                out.extend_from_slice(&[HUFFMAN, (lengths.len() - 1) as u8]);
                for pair in lengths.chunks(2) {
                    out.push(pair[0] | pair.get(1).map_or(0, |l| l << 4));
                }
            }
        }
        rice_encode(gaps, gap_parameter, out);
        out.extend_from_slice(&self.signs);
        match plan {
            MagnitudePlan::Constant => {}
            MagnitudePlan::Rice(b) => rice_encode(below, b, out),
            MagnitudePlan::Huffman(lengths) => {
                let symbols: Vec<u8> = below.iter().map(|&v| v as u8).collect();
                let code = HuffmanCode::from_lengths(&lengths)
                    .unwrap_or_else(|e| unreachable!("code_lengths returns complete codes: {e}"));
                code.encode(&symbols, out).unwrap_or_else(|e| unreachable!("every symbol has a code: {e}"));
            }
        }
    }
}

/// The cheapest coding of the magnitudes minus 1 (ties: the earlier of constant, Rice, Huffman).
enum MagnitudePlan {
    Constant,
    Rice(u8),
    Huffman(Vec<u8>),
}

impl MagnitudePlan {
    fn choose(below: &[u64]) -> MagnitudePlan {
        if below.iter().all(|&v| v == below[0]) {
            return MagnitudePlan::Constant;
        }
        let b = best_rice_parameter(below);
        let rice_bytes = rice_bits(below, b).div_ceil(8);
        let max = below.iter().copied().max().unwrap_or(0);
        if max < 256 {
            let mut counts = vec![0u64; max as usize + 1];
            for &v in below {
                counts[v as usize] += 1;
            }
            let lengths = code_lengths(&counts, MAX_CODE_LEN);
            let huffman_bytes = (lengths.len() as u64).div_ceil(2) + coded_bits(&counts, &lengths).div_ceil(8);
            if huffman_bytes < rice_bytes {
                return MagnitudePlan::Huffman(lengths);
            }
        }
        MagnitudePlan::Rice(b)
    }
}

/// Bytes a chunk of `n` values can take at most when magnitudes are at most `max_magnitude`.
pub fn max_len(n: usize, max_magnitude: u64) -> Option<usize> {
    // Header and the largest magnitude header (a Huffman table of 256 nibbles), gaps (at most
    // n bits at parameter 0, the encoder picks no longer), signs (n bits), magnitudes (Rice at
    // parameter bits(max) costs at most 2 + bits(max) bits each; the encoder picks no longer).
    let magnitude_bits = 2 + u64::from(64 - max_magnitude.leading_zeros());
    let bits = (n as u64).checked_mul(2 + magnitude_bits)?;
    usize::try_from(bits.div_ceil(8) + 8 + 2 + 130 + 3).ok()
}

fn data_error(codec: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::CodecData, format!("{codec} chunk: {detail}"))
}

fn short(codec: &str, what: &str) -> Error {
    Error::new(ErrorCode::CodecOutputSize, format!("{codec} chunk ends inside {what}"))
}

/// Decodes a chunk payload of `out.len()` values whose magnitudes may not exceed `max_magnitude`.
///
/// # Errors
/// [`ErrorCode::CodecOutputSize`] for a payload that ends early or has bytes left over;
/// [`ErrorCode::CodecData`] for a bad step, count, parameter, code or position;
/// [`ErrorCode::ReservedNonzero`] for nonzero padding bits.
pub fn decode(codec: &str, bytes: &[u8], max_magnitude: u64, out: &mut [f32]) -> Result<()> {
    let n = out.len();
    let Some((head, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(short(codec, "its step and count"));
    };
    let step = f32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let m = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if !step.is_finite() || step.is_sign_negative() {
        return Err(data_error(codec, format_args!("step {step} is not a finite value >= +0")));
    }
    if m > n {
        return Err(data_error(codec, format_args!("{m} nonzeros in a chunk of {n}")));
    }
    out.fill(0.0);
    if m == 0 {
        return if rest.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("{codec} chunk has {} bytes after its count 0", rest.len()),
            ))
        };
    }
    if step == 0.0 {
        return Err(data_error(codec, format_args!("step 0 with {m} nonzeros")));
    }
    let [gap_parameter, coding, rest @ ..] = rest else { return Err(short(codec, "its code parameters")) };
    if *gap_parameter > MAX_RICE_PARAMETER {
        return Err(data_error(codec, format_args!("gap Rice parameter {gap_parameter} is above 31")));
    }
    let (magnitude_code, rest) = read_magnitude_code(codec, *coding, rest, max_magnitude)?;
    // Each gap takes at least one bit: a hostile count cannot reserve more than the payload backs.
    let mut gaps = Vec::with_capacity(m.min(8 * rest.len()));
    let used = rice_decode(rest, *gap_parameter, m, n as u64 - 1, &mut gaps)?;
    let rest = &rest[used..];
    let sign_len = m.div_ceil(8);
    if rest.len() < sign_len {
        return Err(short(codec, "its sign bits"));
    }
    let (signs, rest) = rest.split_at(sign_len);
    if !m.is_multiple_of(8) && signs[sign_len - 1] >> (m % 8) != 0 {
        return Err(Error::new(ErrorCode::ReservedNonzero, format!("{codec} sign padding bits are not zero")));
    }
    let magnitudes = magnitude_code.decode(codec, rest, m, max_magnitude)?;
    let mut next = 0u64;
    for (j, &gap) in gaps.iter().enumerate() {
        let p = next + gap;
        if p >= n as u64 {
            return Err(data_error(codec, format_args!("nonzero {j} is at {p}, past the chunk of {n}")));
        }
        let magnitude = magnitudes.get(j);
        // Through i64: one instruction, where a u64 conversion takes several.
        let value = (f64::from(step) * magnitude.cast_signed() as f64) as f32;
        out[p as usize] = if (signs[j / 8] >> (j % 8)) & 1 == 1 { -value } else { value };
        next = p + 1;
    }
    Ok(())
}

/// The magnitudes as read: one constant or a list.
enum Magnitudes {
    Constant(u64),
    List(Vec<u64>),
}

impl Magnitudes {
    fn get(&self, j: usize) -> u64 {
        match self {
            Magnitudes::Constant(v) => *v,
            Magnitudes::List(list) => list[j],
        }
    }
}

/// The magnitude coding as declared before the gaps.
enum MagnitudeCode {
    Constant(u64),
    Rice(u8),
    Huffman(HuffmanCode),
}

fn read_magnitude_code<'a>(
    codec: &str,
    coding: u8,
    rest: &'a [u8],
    max_magnitude: u64,
) -> Result<(MagnitudeCode, &'a [u8])> {
    match coding {
        CONSTANT => {
            let Some((v, rest)) = rest.split_first_chunk::<4>() else { return Err(short(codec, "its magnitude")) };
            let v = u64::from(u32::from_le_bytes(*v));
            if v == 0 || v > max_magnitude {
                return Err(data_error(codec, format_args!("magnitude {v} is not in 1..={max_magnitude}")));
            }
            Ok((MagnitudeCode::Constant(v), rest))
        }
        RICE => {
            let [b, rest @ ..] = rest else { return Err(short(codec, "its magnitude parameter")) };
            if *b > MAX_RICE_PARAMETER {
                return Err(data_error(codec, format_args!("magnitude Rice parameter {b} is above 31")));
            }
            Ok((MagnitudeCode::Rice(*b), rest))
        }
        HUFFMAN => {
            let [s, rest @ ..] = rest else { return Err(short(codec, "its Huffman symbol count")) };
            let symbols = usize::from(*s) + 1;
            if symbols < 2 || symbols as u64 > max_magnitude {
                return Err(data_error(
                    codec,
                    format_args!("{symbols} Huffman symbols for magnitudes 1..={max_magnitude}"),
                ));
            }
            let table = symbols.div_ceil(2);
            if rest.len() < table {
                return Err(short(codec, "its Huffman code lengths"));
            }
            let lengths: Vec<u8> = (0..symbols).map(|i| (rest[i / 2] >> (4 * (i % 2))) & 0xF).collect();
            if symbols % 2 == 1 && rest[table - 1] >> 4 != 0 {
                return Err(Error::new(
                    ErrorCode::ReservedNonzero,
                    format!("{codec} padding nibble of the code lengths is not 0"),
                ));
            }
            Ok((MagnitudeCode::Huffman(HuffmanCode::from_lengths(&lengths)?), &rest[table..]))
        }
        other => Err(data_error(codec, format_args!("magnitude coding {other} is not 0, 1 or 2"))),
    }
}

impl MagnitudeCode {
    /// Reads `m` magnitudes from `bytes`, which must hold exactly their code.
    fn decode(self, codec: &str, bytes: &[u8], m: usize, max_magnitude: u64) -> Result<Magnitudes> {
        let left_over = |extra: usize| {
            Error::new(ErrorCode::CodecOutputSize, format!("{codec} chunk has {extra} bytes after its magnitudes"))
        };
        match self {
            MagnitudeCode::Constant(v) => {
                if bytes.is_empty() {
                    Ok(Magnitudes::Constant(v))
                } else {
                    Err(left_over(bytes.len()))
                }
            }
            MagnitudeCode::Rice(b) => {
                let mut list = Vec::with_capacity(m);
                let used = rice_decode(bytes, b, m, max_magnitude - 1, &mut list)?;
                if used != bytes.len() {
                    return Err(left_over(bytes.len() - used));
                }
                for v in &mut list {
                    *v += 1;
                }
                Ok(Magnitudes::List(list))
            }
            MagnitudeCode::Huffman(code) => {
                let mut symbols = vec![0u8; m];
                code.decode(bytes, &mut symbols)?;
                Ok(Magnitudes::List(symbols.iter().map(|&s| u64::from(s) + 1).collect()))
            }
        }
    }
}
