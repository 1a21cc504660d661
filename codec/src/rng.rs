//! The specified seeded random generator (`spec/FORMAT.md` §9).
//!
//! Codecs that need randomness shared by encoder and decoder (projections, dithering, random-k)
//! draw it from here, so another implementation reproduces it bit for bit. Everything is integer
//! arithmetic on `u64` with wrapping operations; no floating point takes part except the final,
//! exact conversion in [`SeededRng::next_unit_f32`].
//!
//! - [`splitmix64`]: seed expansion (Steele, Lea, Flood 2014).
//! - [`SeededRng`]: xoshiro256** (Blackman, Vigna 2018), state filled by four SplitMix64 outputs.
//! - [`SeededRng::next_below`]: Lemire's multiply-and-reject bounded integers.
//! - [`chunk_seed`]: the per-chunk seed from stream seed, tensor name and chunk index.
//!
//! These are written here rather than taken from a crate on purpose: the output sequence is part
//! of the wire format and must not change with a dependency upgrade (the `rand` family has changed
//! `gen_range` and seeding between versions). Test vectors in this module and in the spec pin them.

/// The SplitMix64 increment (the golden-ratio constant).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Advances a SplitMix64 state and returns its next output.
///
/// # Examples
/// ```
/// let mut s = 0u64;
/// assert_eq!(gradwire_codec::rng::splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
/// ```
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One SplitMix64 output from state `x`: a bijective 64-bit mixer.
#[must_use]
pub fn mix64(x: u64) -> u64 {
    let mut s = x;
    splitmix64(&mut s)
}

/// 64-bit FNV-1a hash of a byte string (used to key seeds by tensor name).
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// The seed of one chunk: `mix64(stream_seed ^ mix64(fnv1a64(name) ^ mix64(chunk_index)))`.
///
/// Keyed by the tensor *name*, not its stream-local ID, so every client of a federated round
/// derives the same randomness for the same tensor whatever order it writes tensors in.
#[must_use]
pub fn chunk_seed(stream_seed: u64, tensor_name: &str, chunk_index: u64) -> u64 {
    mix64(stream_seed ^ mix64(fnv1a64(tensor_name.as_bytes()) ^ mix64(chunk_index)))
}

/// xoshiro256** seeded from one `u64` through SplitMix64.
///
/// # Examples
/// ```
/// use gradwire_codec::rng::SeededRng;
/// let mut a = SeededRng::new(42);
/// let mut b = SeededRng::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.next_below(10) < 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededRng {
    s: [u64; 4],
}

impl SeededRng {
    /// Seeds the state with four successive SplitMix64 outputs from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        SeededRng { s }
    }

    /// Builds a generator from a raw state (for test vectors). An all-zero state is invalid for
    /// xoshiro and is replaced by the state of `SeededRng::new(0)`.
    #[must_use]
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] { SeededRng::new(0) } else { SeededRng { s } }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// The upper 32 bits of the next output.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform integer in `0..bound` (Lemire's method, 64-bit): `m = x * bound` as u128; while
    /// the low 64 bits of `m` are below `(2^64 - bound) mod bound`, draw again; return `m >> 64`.
    /// Returns 0 when `bound` is 0.
    pub fn next_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(bound);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// `k` distinct positions in `0..n`, uniformly: the first `k` steps of a Fisher-Yates
    /// shuffle (`spec/FORMAT.md` §9.4): `out` becomes `0, 1, ..., n-1`, then for `j` in `0..k`
    /// entry `j` is swapped with entry `j + next_below(n - j)`; the positions are `out[..k]`.
    /// O(n) time and memory for the table, O(k) draws.
    ///
    /// # Panics
    /// If `k > n` (a caller bug).
    ///
    /// # Examples
    /// ```
    /// let mut rows = Vec::new();
    /// gradwire_codec::rng::SeededRng::new(7).partial_shuffle(10, 3, &mut rows);
    /// assert_eq!(rows.len(), 10);
    /// assert!(rows[..3].iter().all(|&r| r < 10) && rows[0] != rows[1] && rows[1] != rows[2]);
    /// ```
    pub fn partial_shuffle(&mut self, n: u32, k: usize, out: &mut Vec<u32>) {
        assert!(k <= n as usize, "partial_shuffle of {k} out of {n}");
        out.clear();
        out.extend(0..n);
        for j in 0..k {
            let r = j + self.next_below(u64::from(n) - j as u64) as usize;
            out.swap(j, r);
        }
    }

    /// A uniform `f32` in `[0, 1)`: the top 24 bits of the next output times 2^-24 (exact).
    pub fn next_unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference_sequence() {
        // Reference outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
        let mut s = 0;
        let got: Vec<u64> = (0..3).map(|_| splitmix64(&mut s)).collect();
        assert_eq!(got, [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F]);
    }

    #[test]
    fn xoshiro256starstar_matches_reference_for_state_1_2_3_4() {
        // Reference outputs of xoshiro256** from state {1, 2, 3, 4} (Vigna's xoshiro256starstar.c).
        let mut r = SeededRng::from_state([1, 2, 3, 4]);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, [11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn spec_test_vectors() {
        // The values listed in spec/FORMAT.md §9.6 (printed by `--example rng_vectors`).
        assert_eq!(mix64(1), 0x910a_2dec_8902_5cc1);
        assert_eq!(fnv1a64(b"fc1.weight"), 0x0fc5_ab63_8962_69ed);
        assert_eq!(chunk_seed(0, "fc1.weight", 0), 0xf131_7712_62dd_3e06);
        assert_eq!(chunk_seed(42, "fc1.weight", 0), 0x8073_6970_3104_26de);
        assert_eq!(chunk_seed(42, "fc1.weight", 1), 0xe02b_f1e1_632a_579e);
        assert_eq!(chunk_seed(42, "fc2.bias", 7), 0x4beb_5646_83a9_d8fd);
        let mut r = SeededRng::new(42);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1, 0xecb8_ad47_03b3_60a1]);
        let mut r = SeededRng::new(42);
        let below: Vec<u64> = (0..8).map(|_| r.next_below(10)).collect();
        assert_eq!(below, [0, 3, 6, 9, 9, 7, 7, 8]);
        let mut r = SeededRng::new(42);
        let units: Vec<u32> = (0..3).map(|_| r.next_unit_f32().to_bits()).collect();
        assert_eq!(units, [0x3dab_c058, 0x3ec2_09b2, 0x3f2e_1753]);
    }

    #[test]
    fn fnv1a64_matches_reference() {
        assert_eq!(fnv1a64(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xAF63_DC4C_8601_EC8C);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_F739_67E8);
    }

    #[test]
    fn next_below_is_in_range_and_roughly_uniform() {
        let mut r = SeededRng::new(7);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[r.next_below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.next_below(0), 0);
        assert_eq!(r.next_below(1), 0);
    }

    #[test]
    fn unit_f32_is_in_half_open_interval() {
        let mut r = SeededRng::new(1);
        for _ in 0..10_000 {
            let u = r.next_unit_f32();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn chunk_seeds_differ_by_name_and_index() {
        let a = chunk_seed(1, "fc1.weight", 0);
        assert_ne!(a, chunk_seed(1, "fc1.weight", 1));
        assert_ne!(a, chunk_seed(1, "fc2.weight", 0));
        assert_ne!(a, chunk_seed(2, "fc1.weight", 0));
        assert_eq!(a, chunk_seed(1, "fc1.weight", 0));
    }
}
