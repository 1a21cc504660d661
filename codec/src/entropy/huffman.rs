//! Canonical, length-limited Huffman codes over byte symbols (`spec/CODECS.md` §E).
//!
//! - [`code_lengths`]: optimal Huffman lengths from counts, then limited to [`MAX_CODE_LEN`] bits
//!   and completed (Kraft sum exactly 1) by a deterministic repair.
//! - [`HuffmanCode::from_lengths`]: validates untrusted lengths and assigns canonical codes
//!   (shorter codes first, then by symbol), so a decoder rebuilds the code from lengths alone.
//! - [`HuffmanCode::encode`]: codes written least-significant bit first into a byte stream.
//! - [`HuffmanCode::decode`]: one 2^12-entry table lookup yields up to seven symbols, so decoding
//!   costs one lookup per several symbols on skewed label distributions.

use crate::error::{Error, ErrorCode, Result};

/// Longest code, and the number of bits of the decoding table index.
pub const MAX_CODE_LEN: u8 = 12;
const TABLE_SIZE: usize = 1 << MAX_CODE_LEN;
const TABLE_MASK: u64 = (TABLE_SIZE - 1) as u64;
/// Most symbols one look-up of the multi-symbol table yields (seven bytes and a count fit a
/// u64 entry; one-bit codes, common in low-rate chunks, fill a 12-bit window with seven).
const MULTI_SYMBOLS: u32 = 7;

fn data_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::CodecData, detail)
}

/// Huffman code lengths for `counts` (one per symbol, at most 256), limited to `max_len` bits.
///
/// Symbols with count 0 get length 0 (no code). When fewer than two symbols occur, the result
/// still describes a complete code of two symbols (the used one, or symbol 0, and the next), so
/// every code this function returns passes [`HuffmanCode::from_lengths`].
///
/// # Panics
/// If `counts` has fewer than 2 or more than 256 entries, or `max_len` is not in
/// `ceil(log2(symbols))..=MAX_CODE_LEN` (caller bugs).
#[must_use]
pub fn code_lengths(counts: &[u64], max_len: u8) -> Vec<u8> {
    assert!((2..=256).contains(&counts.len()), "2..=256 symbols");
    assert!(max_len <= MAX_CODE_LEN && (1usize << max_len) >= counts.len(), "length limit");
    let mut used: Vec<usize> = (0..counts.len()).filter(|&s| counts[s] > 0).collect();
    if used.len() < 2 {
        // Pad to two symbols so the code stays complete; the extra one is never emitted.
        let first = used.first().copied().unwrap_or(0);
        let other = if first + 1 < counts.len() { first + 1 } else { first - 1 };
        used = vec![first.min(other), first.max(other)];
    }
    let mut lengths = vec![0u8; counts.len()];
    let depths = huffman_depths(&used.iter().map(|&s| counts[s].max(1)).collect::<Vec<_>>());
    for (&s, &d) in used.iter().zip(&depths) {
        lengths[s] = d.min(u32::from(max_len)) as u8;
    }
    limit_and_complete(&mut lengths, &used, counts, max_len);
    lengths
}

/// Depths of an optimal Huffman tree for `weights` (all > 0, at least 2), by the two-queue
/// method over weights sorted ascending (ties by position, so the result is deterministic).
fn huffman_depths(weights: &[u64]) -> Vec<u32> {
    let n = weights.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (weights[i], i));
    // Nodes 0..n are leaves (in sorted order), n.. are internal nodes in creation order.
    let mut weight: Vec<u64> = order.iter().map(|&i| weights[i]).collect();
    let mut parent = vec![usize::MAX; 2 * n - 1];
    let (mut leaf, mut internal) = (0usize, n);
    let take = |weight: &Vec<u64>, leaf: &mut usize, internal: &mut usize, created: usize| {
        if *leaf < n && (*internal >= created || weight[*leaf] <= weight[*internal]) {
            *leaf += 1;
            *leaf - 1
        } else {
            *internal += 1;
            *internal - 1
        }
    };
    for created in n..2 * n - 1 {
        let a = take(&weight, &mut leaf, &mut internal, created);
        let b = take(&weight, &mut leaf, &mut internal, created);
        weight.push(weight[a].saturating_add(weight[b]));
        parent[a] = created;
        parent[b] = created;
    }
    let mut depth = vec![0u32; 2 * n - 1];
    for node in (0..2 * n - 2).rev() {
        depth[node] = depth[parent[node]] + 1;
    }
    let mut out = vec![0u32; n];
    for (sorted, &i) in order.iter().enumerate() {
        out[i] = depth[sorted];
    }
    out
}

/// Makes the Kraft sum of `lengths` over `used` exactly 1 with no length above `max_len`:
/// lengthens the rarest symbols below the limit while it is above 1, then shortens the most
/// frequent of the longest codes while it is below 1.
fn limit_and_complete(lengths: &mut [u8], used: &[usize], counts: &[u64], max_len: u8) {
    let one = 1u64 << max_len;
    let kraft = |lengths: &[u8]| used.iter().map(|&s| 1u64 << (max_len - lengths[s])).sum::<u64>();
    let mut k = kraft(lengths);
    while k > one {
        // The rarest symbol among the longest codes still below the limit.
        let s = used
            .iter()
            .copied()
            .filter(|&s| lengths[s] < max_len)
            .max_by_key(|&s| (lengths[s], std::cmp::Reverse(counts[s]), s))
            .expect("a code of at most 2^max_len symbols can always be lengthened");
        k -= 1u64 << (max_len - lengths[s] - 1);
        lengths[s] += 1;
    }
    while k < one {
        let s = used
            .iter()
            .copied()
            .filter(|&s| lengths[s] > 1)
            .max_by_key(|&s| (lengths[s], counts[s], std::cmp::Reverse(s)))
            .expect("an incomplete code of two or more symbols has a code longer than 1");
        k += 1u64 << (max_len - lengths[s]);
        lengths[s] -= 1;
    }
}

/// A canonical Huffman code and its decoding tables.
#[derive(Clone)]
pub struct HuffmanCode {
    lengths: Vec<u8>,
    /// Code of each symbol, bit-reversed for least-significant-bit-first writing.
    codes: Vec<u16>,
    /// Per 12-bit window: symbol in bits 0..8, code length in bits 8..12.
    single: Vec<u16>,
    /// Per 12-bit window: up to seven symbols (bits 0..56), their count (56..59) and total
    /// length (59..63).
    multi: Vec<u64>,
}

impl std::fmt::Debug for HuffmanCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HuffmanCode").field("lengths", &self.lengths).finish_non_exhaustive()
    }
}

impl HuffmanCode {
    /// Builds the canonical code for untrusted `lengths` (one per symbol, 0 = unused).
    ///
    /// # Errors
    /// [`ErrorCode::CodecData`] unless there are 2..=256 lengths, each at most [`MAX_CODE_LEN`],
    /// at least two nonzero, with a Kraft sum of exactly 1 (a complete code).
    ///
    /// # Examples
    /// ```
    /// use gradwire_codec::entropy::HuffmanCode;
    /// let code = HuffmanCode::from_lengths(&[1, 2, 3, 3])?;
    /// let mut bytes = Vec::new();
    /// let bits = code.encode(&[0, 1, 2, 3, 0], &mut bytes)?;
    /// assert_eq!(bits, 1 + 2 + 3 + 3 + 1);
    /// let mut out = [0u8; 5];
    /// code.decode(&bytes, &mut out)?;
    /// assert_eq!(out, [0, 1, 2, 3, 0]);
    /// # Ok::<(), gradwire_codec::Error>(())
    /// ```
    pub fn from_lengths(lengths: &[u8]) -> Result<HuffmanCode> {
        if !(2..=256).contains(&lengths.len()) {
            return Err(data_error(format!("a Huffman code has 2..=256 symbols, found {}", lengths.len())));
        }
        if let Some(s) = lengths.iter().position(|&l| l > MAX_CODE_LEN) {
            return Err(data_error(format!("Huffman code length {} of symbol {s} exceeds {MAX_CODE_LEN}", lengths[s])));
        }
        let used = lengths.iter().filter(|&&l| l > 0).count();
        let kraft: u64 = lengths.iter().filter(|&&l| l > 0).map(|&l| 1u64 << (MAX_CODE_LEN - l)).sum();
        if used < 2 || kraft != TABLE_SIZE as u64 {
            return Err(data_error(format!(
                "Huffman code lengths do not form a complete code ({used} symbols, Kraft sum {kraft}/{TABLE_SIZE})"
            )));
        }
        // Canonical assignment: by length, then by symbol.
        let mut codes = vec![0u16; lengths.len()];
        let mut next = 0u32;
        let mut prev_len = 0u8;
        let mut order: Vec<usize> = (0..lengths.len()).filter(|&s| lengths[s] > 0).collect();
        order.sort_by_key(|&s| (lengths[s], s));
        for &s in &order {
            let l = lengths[s];
            next <<= l - prev_len;
            prev_len = l;
            codes[s] = (next.reverse_bits() >> (32 - u32::from(l))) as u16;
            next += 1;
        }
        let mut single = vec![0u16; TABLE_SIZE];
        for &s in &order {
            let l = lengths[s];
            let step = 1usize << l;
            let mut i = usize::from(codes[s]);
            while i < TABLE_SIZE {
                single[i] = s as u16 | u16::from(l) << 8;
                i += step;
            }
        }
        let mut multi = vec![0u64; TABLE_SIZE];
        for (i, m) in multi.iter_mut().enumerate() {
            let (mut bits, mut count, mut syms) = (0u32, 0u32, 0u64);
            while count < MULTI_SYMBOLS {
                let e = single[(i >> bits) & (TABLE_SIZE - 1)];
                let l = u32::from(e >> 8);
                if bits + l > u32::from(MAX_CODE_LEN) {
                    break;
                }
                syms |= u64::from(e & 0xFF) << (8 * count);
                bits += l;
                count += 1;
            }
            *m = syms | u64::from(count) << 56 | u64::from(bits) << 59;
        }
        Ok(HuffmanCode { lengths: lengths.to_vec(), codes, single, multi })
    }

    /// The code lengths.
    #[must_use]
    pub fn lengths(&self) -> &[u8] {
        &self.lengths
    }

    /// Bits needed to encode symbols with these counts.
    #[must_use]
    pub fn encoded_bits(&self, counts: &[u64]) -> u64 {
        coded_bits(counts, &self.lengths)
    }

    /// Appends the codes of `symbols` to `out`, least-significant bit first, the last byte
    /// zero-padded; returns the number of bits written.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for a symbol without a code.
    pub fn encode(&self, symbols: &[u8], out: &mut Vec<u8>) -> Result<u64> {
        // Branch-free bit writer: after every 4 codes (at most 48 bits on top of fewer than 8
        // pending) the accumulator's 8 bytes are stored and the position advanced by the whole
        // bytes filled, so no branch depends on the data (twice as fast as flushing 32 bits
        // when full: criterion `chunk/encode/m22:*`).
        let table = self.write_table();
        let start = out.len();
        let (mut pos, mut acc, mut filled, mut missing) = (start, 0u64, 0u32, false);
        // The output grows a segment at a time, with room for every code of the segment at full
        // length plus the 8-byte stores: zero-filling room for the whole input at 12 bits a
        // symbol up front cost more page faults than the coding itself on large chunks.
        for segment in symbols.chunks(4096) {
            let need = pos + (segment.len() * usize::from(MAX_CODE_LEN)).div_ceil(8) + 16;
            if out.len() < need {
                out.resize(need + (need - start) / 2, 0);
            }
            let (blocks, rest) = segment.as_chunks::<4>();
            for block in blocks.iter().map(|b| &b[..]).chain(std::iter::once(rest)) {
                for &s in block {
                    let e = table[usize::from(s)];
                    missing |= e >> 16 == 0;
                    acc |= u64::from(e & 0xFFFF) << filled;
                    filled += e >> 16;
                }
                out[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
                let bytes = filled / 8;
                pos += bytes as usize;
                acc = acc.checked_shr(8 * bytes).unwrap_or(0);
                filled -= 8 * bytes;
            }
        }
        if out.len() < pos + 1 {
            out.resize(pos + 1, 0); // no symbols at all: room for the (empty) tail
        }
        if missing {
            out.truncate(start);
            return Err(Error::new(ErrorCode::InvalidArgument, "a symbol has no Huffman code"));
        }
        out.truncate(pos + filled.div_ceil(8) as usize);
        Ok(8 * (pos - start) as u64 + u64::from(filled))
    }

    /// Per byte value: the code in bits 0..16, its length in bits 16..20 (0 for a symbol
    /// without a code, and for byte values beyond the alphabet).
    fn write_table(&self) -> [u32; 256] {
        let mut table = [0u32; 256];
        for (e, (&c, &l)) in table.iter_mut().zip(self.codes.iter().zip(&self.lengths)) {
            *e = u32::from(c) | u32::from(l) << 16;
        }
        table
    }

    /// Decodes exactly `out.len()` symbols from `bytes`, which must hold exactly the bits they
    /// use, zero-padded to a whole byte.
    ///
    /// # Errors
    /// [`ErrorCode::CodecData`] when the codes run past the end of `bytes`, when bytes are left
    /// over, or when the padding bits are not zero.
    pub fn decode(&self, bytes: &[u8], out: &mut [u8]) -> Result<()> {
        let n = out.len();
        let total_bits = bytes.len() as u64 * 8;
        let mut pos = 0u64; // bits consumed
        let mut i = 0usize;
        // Fast path: a full 8-byte window is available and eight bytes fit in `out` (an entry
        // is stored whole; only its `count` symbols are kept).
        let fast_end = bytes.len().saturating_sub(8);
        while i + 8 <= n && ((pos >> 3) as usize) < fast_end {
            let at = (pos >> 3) as usize;
            let window = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default()) >> (pos & 7);
            // Four lookups use at most 48 of the window's 56 or more valid bits.
            let mut w = window;
            for _ in 0..4 {
                if i + 8 > n {
                    break;
                }
                let e = self.multi[(w & TABLE_MASK) as usize];
                out[i..i + 8].copy_from_slice(&e.to_le_bytes());
                let count = (e >> 56) & 7;
                let bits = e >> 59;
                i += count as usize;
                pos += bits;
                w >>= bits;
            }
        }
        // Careful path: one symbol at a time, with the window zero-extended past the end.
        while i < n {
            let at = (pos >> 3) as usize;
            let mut buf = [0u8; 8];
            if at < bytes.len() {
                let take = (bytes.len() - at).min(8);
                buf[..take].copy_from_slice(&bytes[at..at + take]);
            }
            let window = u64::from_le_bytes(buf) >> (pos & 7);
            let e = self.single[(window & TABLE_MASK) as usize];
            out[i] = (e & 0xFF) as u8;
            pos += u64::from(e >> 8);
            i += 1;
            if pos > total_bits {
                return Err(data_error(format!("Huffman data ends inside symbol {} of {n}", i - 1)));
            }
        }
        if pos.div_ceil(8) != bytes.len() as u64 {
            return Err(data_error(format!(
                "Huffman data holds {} bytes but its {n} symbols use {pos} bits",
                bytes.len()
            )));
        }
        if !pos.is_multiple_of(8) && bytes.last().is_some_and(|&b| b >> (pos % 8) != 0) {
            return Err(Error::new(ErrorCode::ReservedNonzero, "Huffman padding bits are not zero"));
        }
        Ok(())
    }
}

/// Bits that symbols with these `counts` take under a code of these `lengths` (no code needs
/// to be built: a planner comparing codings calls this on the lengths of [`code_lengths`]).
#[must_use]
pub fn coded_bits(counts: &[u64], lengths: &[u8]) -> u64 {
    counts.iter().zip(lengths).map(|(&c, &l)| c * u64::from(l)).sum()
}

/// Empirical entropy of `counts` in bits per symbol.
#[must_use]
pub fn entropy_bits(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / t) * (c as f64 / t).log2()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn histogram(symbols: &[u8], n: usize) -> Vec<u64> {
        let mut h = vec![0u64; n];
        for &s in symbols {
            h[usize::from(s)] += 1;
        }
        h
    }

    fn kraft(lengths: &[u8]) -> f64 {
        lengths.iter().filter(|&&l| l > 0).map(|&l| 0.5f64.powi(i32::from(l))).sum()
    }

    proptest! {
        #[test]
        fn round_trip_of_random_streams(
            alphabet in 2usize..=256,
            skew in 0.0f64..3.0,
            n in 0usize..3000,
            seed in any::<u64>(),
        ) {
            let mut rng = crate::rng::SeededRng::new(seed);
            // Geometric-ish symbol distribution: skew 0 is uniform, larger is more peaked.
            let symbols: Vec<u8> = (0..n)
                .map(|_| {
                    let u = f64::from(rng.next_unit_f32()).max(1e-9);
                    ((-u.ln() * (alphabet as f64) / (1.0 + skew * 8.0)) as usize % alphabet) as u8
                })
                .collect();
            let counts = histogram(&symbols, alphabet);
            let lengths = code_lengths(&counts, MAX_CODE_LEN);
            prop_assert!(lengths.iter().all(|&l| l <= MAX_CODE_LEN));
            prop_assert!((kraft(&lengths) - 1.0).abs() < 1e-12, "Kraft sum {}", kraft(&lengths));
            let code = HuffmanCode::from_lengths(&lengths).unwrap();
            let mut bytes = Vec::new();
            let bits = code.encode(&symbols, &mut bytes).unwrap();
            prop_assert_eq!(bits, code.encoded_bits(&counts));
            prop_assert_eq!(bytes.len() as u64, bits.div_ceil(8));
            let mut out = vec![0u8; n];
            code.decode(&bytes, &mut out).unwrap();
            prop_assert_eq!(&out, &symbols);
            // Rebuilding from the lengths alone gives the same code (canonical).
            let again = HuffmanCode::from_lengths(code.lengths()).unwrap();
            prop_assert_eq!(&again.codes, &code.codes);
            if n > 0 {
                // Gallager's bound for Huffman codes: rate < H + p_max + 0.0861 (0.01 of slack
                // for the length limit).
                let h = entropy_bits(&counts);
                let p_max = *counts.iter().max().unwrap() as f64 / n as f64;
                let rate = bits as f64 / n as f64;
                prop_assert!(rate < h + p_max + 0.0961, "rate {} vs entropy {} (p_max {})", rate, h, p_max);
            }
        }

        #[test]
        fn codes_are_prefix_free(lengths_seed in any::<u64>(), alphabet in 2usize..=64) {
            let mut rng = crate::rng::SeededRng::new(lengths_seed);
            let counts: Vec<u64> = (0..alphabet).map(|_| rng.next_below(1000)).collect();
            let lengths = code_lengths(&counts, MAX_CODE_LEN);
            let code = HuffmanCode::from_lengths(&lengths).unwrap();
            let used: Vec<usize> = (0..alphabet).filter(|&s| lengths[s] > 0).collect();
            for &a in &used {
                for &b in &used {
                    if a != b && lengths[a] <= lengths[b] {
                        let mask = (1u16 << lengths[a]) - 1;
                        prop_assert_ne!(code.codes[a], code.codes[b] & mask, "{} is a prefix of {}", a, b);
                    }
                }
            }
        }

        #[test]
        fn damaged_data_is_refused_or_decodes_within_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..100) {
            let code = HuffmanCode::from_lengths(&[2, 2, 2, 3, 3]).unwrap();
            let mut out = vec![0u8; n];
            if code.decode(&bytes, &mut out).is_ok() {
                prop_assert!(out.iter().all(|&s| s < 5));
                let mut again = Vec::new();
                code.encode(&out, &mut again).unwrap();
                prop_assert_eq!(again, bytes, "a stream that decodes is the canonical encoding of what it decodes to");
            }
        }
    }

    /// Labels of Gaussian data through uniform quantizers of 2..=8 bits: the rate is within 5 %
    /// of the empirical entropy of the labels when alphabets of 16 labels or fewer are coded in
    /// pairs (one symbol per two labels, as codecs do); single-label codes of 4 labels are about
    /// 8 % over, since no code spends less than 1 bit a symbol.
    #[test]
    fn rate_is_within_five_percent_of_entropy_on_quantized_gaussians() {
        let mut rng = crate::rng::SeededRng::new(9);
        let gauss: Vec<f64> = (0..200_000)
            .map(|_| {
                let (u, v) = (f64::from(rng.next_unit_f32()).max(1e-9), f64::from(rng.next_unit_f32()));
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        for bits in 2u32..=8 {
            let levels = 1usize << bits;
            let step = 6.0 / levels as f64;
            let labels: Vec<u8> = gauss
                .iter()
                .map(|&x| ((x / step + levels as f64 / 2.0).floor().clamp(0.0, (levels - 1) as f64)) as u8)
                .collect();
            let h = entropy_bits(&histogram(&labels, levels));
            let (symbols, alphabet, per_symbol) = if levels <= 16 {
                (labels.chunks(2).map(|p| p[0] * levels as u8 + p[1]).collect::<Vec<u8>>(), levels * levels, 2.0)
            } else {
                (labels.clone(), levels, 1.0)
            };
            let counts = histogram(&symbols, alphabet);
            let code = HuffmanCode::from_lengths(&code_lengths(&counts, MAX_CODE_LEN)).unwrap();
            let rate = code.encoded_bits(&counts) as f64 / (symbols.len() as f64 * per_symbol);
            assert!(rate <= 1.05 * h, "{bits} bits: rate {rate} vs entropy {h}");
        }
    }

    #[test]
    fn length_limit_holds_on_fibonacci_counts() {
        // Fibonacci weights give the deepest Huffman trees.
        let mut counts = vec![1u64, 1];
        while counts.len() < 40 {
            let n = counts.len();
            counts.push(counts[n - 1] + counts[n - 2]);
        }
        for limit in [6u8, 8, 12] {
            let lengths = code_lengths(&counts, limit);
            assert!(lengths.iter().all(|&l| (1..=limit).contains(&l)), "{lengths:?}");
            assert!((kraft(&lengths) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn degenerate_inputs_still_give_complete_codes() {
        for counts in [vec![0u64, 0], vec![5, 0, 0], vec![0, 0, 7], vec![0; 256]] {
            let lengths = code_lengths(&counts, MAX_CODE_LEN);
            HuffmanCode::from_lengths(&lengths).unwrap();
        }
    }

    #[test]
    fn invalid_lengths_are_refused() {
        for bad in [vec![1u8], vec![1, 1, 1], vec![2, 2, 2], vec![13, 1, 1], vec![0, 1, 0], vec![]] {
            assert_eq!(HuffmanCode::from_lengths(&bad).unwrap_err().code(), ErrorCode::CodecData, "{bad:?}");
        }
    }

    #[test]
    fn trailing_bytes_and_padding_are_refused() {
        let code = HuffmanCode::from_lengths(&[1, 1]).unwrap();
        let mut out = [0u8; 3];
        code.decode(&[0b101], &mut out).unwrap();
        assert_eq!(out, [1, 0, 1]);
        assert_eq!(code.decode(&[0b1101], &mut out).unwrap_err().code(), ErrorCode::ReservedNonzero);
        assert_eq!(code.decode(&[0b101, 0], &mut out).unwrap_err().code(), ErrorCode::CodecData);
        assert_eq!(code.decode(&[], &mut out).unwrap_err().code(), ErrorCode::CodecData);
    }
}
