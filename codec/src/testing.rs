//! Helpers for conformance tests and fuzzers of gradwire readers and codecs (this crate's tests,
//! plugin tests, the fuzz targets, other implementations' test harnesses). Not needed to read or
//! write streams.

use std::io::Read;

use crate::registry::CodecFactory;
use crate::stage::{ArrayToBytes, ChunkContext, Stage};

/// `n` Laplace-distributed values of scale 1e-3 (heavy-tailed, like real gradients) from the
/// specified generator seeded with `seed`: per value, `u = next_unit_f32` (at least 1e-9), then a
/// sign from the low bit of `next_u32`, then `sign * -ln(u) * 1e-3` in f64 rounded to f32.
/// Benches, tests and golden vectors share it, so their data is the same everywhere.
///
/// # Examples
/// ```
/// let x = gradwire_codec::testing::laplace(1000, 1);
/// assert_eq!(x, gradwire_codec::testing::laplace(1000, 1));
/// assert!(x.iter().all(|v| v.is_finite() && v.abs() < 0.1));
/// ```
#[must_use]
pub fn laplace(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::rng::SeededRng::new(seed);
    (0..n)
        .map(|_| {
            let u = f64::from(rng.next_unit_f32()).max(1e-9);
            let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
            (sign * -u.ln() * 1e-3) as f32
        })
        .collect()
}

/// `n` standard normal values from the specified generator (Box-Muller on two 24-bit uniforms):
/// the source of the Gaussian rate-distortion checks.
///
/// # Examples
/// ```
/// let x = gradwire_codec::testing::gaussian(10_000, 3);
/// let variance = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 1e4;
/// assert!((variance - 1.0).abs() < 0.05);
/// ```
#[must_use]
pub fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::rng::SeededRng::new(seed);
    (0..n)
        .map(|_| {
            let u = f64::from(rng.next_unit_f32()).max(1e-12);
            let v = f64::from(rng.next_unit_f32());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

/// Text parameters from `key=value,key=value` (a test's shorthand for a codec's parameter text).
///
/// # Panics
/// If a non-empty item has no `=` (a test bug).
///
/// # Examples
/// ```
/// let t = gradwire_codec::testing::text_params("levels=4,seed=1");
/// assert_eq!((t.get("levels"), t.get("seed"), t.get("x")), (Some("4"), Some("1"), None));
/// ```
#[must_use]
#[allow(clippy::panic, reason = "a test helper: malformed text is a bug in the test")]
pub fn text_params(text: &str) -> crate::TextParams {
    let pairs = text
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("{p:?} is not key=value"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    crate::TextParams { pairs }
}

/// A chunk context for calling a stage directly: tensor "t", chunk 0, seed 0.
pub const CONTEXT: ChunkContext<'static> =
    ChunkContext { tensor_name: "t", tensor_id: 0, chunk_index: 0, element_offset: 0, seed: 0, side: None };

/// Builds the array->bytes stage of `factory` (the version a writer records for `params`) from wire `params`.
///
/// # Panics
/// If the parameters are refused or the codec is not array->bytes (a test bug).
#[must_use]
#[allow(clippy::panic, reason = "a test helper: a refused parameter is a bug in the test")]
pub fn array_to_bytes(factory: &dyn CodecFactory, params: &[u8]) -> Box<dyn ArrayToBytes> {
    match factory.build(factory.version_for(params), params) {
        Ok(Stage::ArrayToBytes(s)) => s,
        Ok(other) => panic!("{} is {:?}, not array->bytes", factory.descriptor().name, other.kind()),
        Err(e) => panic!("{} refused its parameters: {e}", factory.descriptor().name),
    }
}

/// A reader that returns at most one byte per `read` call: a stream read through it must give
/// exactly the same result as the stream read whole.
///
/// # Examples
/// ```
/// use std::io::Read;
/// let mut r = gradwire_codec::testing::OneByteReader::new(b"abc");
/// let mut buf = [0u8; 8];
/// assert_eq!(r.read(&mut buf).unwrap(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct OneByteReader<'a>(&'a [u8]);

impl<'a> OneByteReader<'a> {
    /// Reads `bytes` one at a time.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        OneByteReader(bytes)
    }
}

impl Read for OneByteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}
