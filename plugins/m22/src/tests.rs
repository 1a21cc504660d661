#![allow(clippy::float_cmp, reason = "decoding is table look-up, exact by contract")]

use super::*;
use gradwire_codec::rng::SeededRng;
use proptest::prelude::*;

use gradwire_codec::testing::CONTEXT as CTX;

fn stage(params: M22Params) -> Box<dyn ArrayToBytes> {
    gradwire_codec::testing::array_to_bytes(&M22_CODEC, &params.encode())
}

/// The stage for `p` and its encoding of `values`.
fn encoded(p: M22Params, values: &[f32]) -> (Box<dyn ArrayToBytes>, Vec<u8>) {
    let s = stage(p);
    let mut bytes = Vec::new();
    s.encode(values, &CTX, &mut bytes).unwrap();
    (s, bytes)
}

fn laplace(n: usize, zero_fraction: f64, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| {
            if f64::from(rng.next_unit_f32()) < zero_fraction {
                return 0.0;
            }
            let u = f64::from(rng.next_unit_f32()).max(1e-9);
            let s = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
            (s * -u.ln() * 1e-3) as f32
        })
        .collect()
}

fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| {
            let (u, v) = (f64::from(rng.next_unit_f32()).max(1e-12), f64::from(rng.next_unit_f32()));
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() * 0.01) as f32
        })
        .collect()
}

use crate::reference_quantize as reference;

fn params() -> impl Strategy<Value = M22Params> {
    let target = prop_oneof![Just(None), (1e-12f32..1e-5).prop_map(Some)];
    (1u8..=8, 0u8..=4, prop_oneof![Just(fit::Family::GenNorm), Just(fit::Family::Weibull)], target)
        .prop_map(|(bits, m, family, target)| M22Params { bits, m, family, target })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_value_decodes_to_the_point_of_its_cell(
        p in params(),
        n in 0usize..3000,
        zeros in 0.0f64..0.5,
        seed in any::<u64>(),
    ) {
        let values = laplace(n, zeros, seed);
        let (s, bytes) = encoded(p, &values);
        prop_assert!(bytes.len() <= s.max_encoded_len(n).unwrap());
        let mut out = vec![f32::NAN; n];
        s.decode(&bytes, &CTX, &mut out).unwrap();
        let parsed = chunk::parse(&bytes, p.levels()).unwrap();
        let zero = bytes[1] & 1 == 1;
        let points = &parsed.table[usize::from(zero)..];
        prop_assert!(points.len() <= p.levels());
        for (i, (&x, &y)) in values.iter().zip(&out).enumerate() {
            prop_assert_eq!(y, reference(x, points, zero), "value {} = {}", i, x);
        }
        // Quantizing the output again changes nothing (every point lies in its own cell).
        let requantized: Vec<f32> = out.iter().map(|&y| reference(y, points, zero)).collect();
        prop_assert_eq!(&requantized, &out);
    }

    #[test]
    fn damaged_payloads_are_refused_or_decode_within_bounds(
        p in params(),
        n in 1usize..600,
        zeros in 0.0f64..0.5,
        seed in any::<u64>(),
        at in any::<usize>(),
        xor in 1u8..=255,
        cut in any::<bool>(),
    ) {
        // Mutations of valid encodings reach every label coding, not just the header checks.
        let values = laplace(n, zeros, seed);
        let (s, mut bytes) = encoded(p, &values);
        if cut {
            bytes.truncate(at % bytes.len());
        } else {
            let i = at % bytes.len();
            bytes[i] ^= xor;
        }
        let mut out = vec![f32::NAN; n];
        if s.decode(&bytes, &CTX, &mut out).is_ok() {
            let parsed = chunk::parse(&bytes, p.levels()).unwrap();
            prop_assert!(out.iter().all(|y| parsed.table.iter().any(|t| t.to_bits() == y.to_bits())));
        }
    }
}

/// Fit plus design on Gaussian data reproduces the Lloyd-Max MSE (Max 1960) within a few percent
/// (the fit and the sample add a little).
#[test]
fn gaussian_data_reaches_lloyd_max_mse() {
    let values = gaussian(1 << 18, 5);
    let var = values.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / values.len() as f64;
    for (bits, expected) in [(1u8, 0.3634), (2, 0.1175), (3, 0.03455), (4, 0.0095)] {
        let s = stage(M22Params { bits, m: 0, family: fit::Family::GenNorm, target: None });
        let mut bytes = Vec::new();
        s.encode(&values, &CTX, &mut bytes).unwrap();
        let mut out = vec![0f32; values.len()];
        s.decode(&bytes, &CTX, &mut out).unwrap();
        let mse = values.iter().zip(&out).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>()
            / values.len() as f64;
        let relative = mse / var;
        assert!((relative / expected - 1.0).abs() < 0.03, "{bits} bits: {relative} vs {expected}");
        let bpe = bytes.len() as f64 * 8.0 / values.len() as f64;
        assert!(bpe <= f64::from(bits) + 0.01, "{bits} bits: {bpe} bits per entry");
    }
}

#[test]
fn params_round_trip_and_refuse_bad_values() {
    let registry = registry_with_m22();
    let stages = registry.parse_pipeline("m22:bits=3,m=2,family=weibull").unwrap();
    assert_eq!(registry.pipeline_to_text(&stages).unwrap(), "m22:bits=3,m=2,family=weibull");
    for bad in ["m22:bits=0", "m22:bits=9", "m22:m=5", "m22:family=cauchy"] {
        assert_eq!(registry.parse_pipeline(bad).unwrap_err().code(), ErrorCode::InvalidArgument, "{bad}");
    }
    let code = |b: &[u8]| M22Params::decode(b).unwrap_err().code();
    assert_eq!(code(&[2, 0, 0]), ErrorCode::InvalidParams);
    assert_eq!(code(&[2, 0, 0, 1]), ErrorCode::ReservedNonzero);
    assert_eq!(code(&[9, 0, 0, 0]), ErrorCode::InvalidParams);
    assert_eq!(code(&[2, 5, 0, 0]), ErrorCode::InvalidParams);
    assert_eq!(code(&[2, 0, 2, 0]), ErrorCode::InvalidParams);
}

#[test]
fn constant_and_tiny_chunks() {
    let s = stage(M22Params { bits: 2, m: 0, family: fit::Family::GenNorm, target: None });
    for values in [vec![], vec![0.0; 10], vec![0.5; 7], vec![1.0, -1.0, 1.0], vec![0.0, 3.0]] {
        let mut bytes = Vec::new();
        s.encode(&values, &CTX, &mut bytes).unwrap();
        let mut out = vec![f32::NAN; values.len()];
        s.decode(&bytes, &CTX, &mut out).unwrap();
        assert_eq!(out, values, "few distinct values are sent exactly");
    }
    let mut bytes = Vec::new();
    assert_eq!(s.encode(&[1.0, f32::NAN], &CTX, &mut bytes).unwrap_err().code(), ErrorCode::InvalidArgument);
}

/// Found by the m22 fuzz target: values near f32::MAX put the scaled points outside the f32
/// range, and the encoder wrote a chunk with no points.
#[test]
fn huge_values_keep_finite_points() {
    let s = stage(M22Params { bits: 3, m: 4, family: fit::Family::GenNorm, target: None });
    let values: Vec<f32> = (0..64).map(|i| if i % 2 == 0 { f32::MAX } else { -f32::MAX / (1.0 + i as f32) }).collect();
    let mut bytes = Vec::new();
    s.encode(&values, &CTX, &mut bytes).unwrap();
    let mut out = vec![0f32; values.len()];
    s.decode(&bytes, &CTX, &mut out).unwrap();
    assert!(out.iter().all(|x| x.is_finite()));
}

/// With an error target, each chunk takes the fewest bits whose design predicts the target, and
/// the error measured on data from the model meets it.
#[test]
fn error_target_picks_the_fewest_bits_that_meet_it() {
    let values = gaussian(1 << 16, 8); // sigma = 0.01
    let var = 1e-4;
    // Lloyd-Max Gaussian MSE/sigma^2: 0.3634, 0.1175, 0.03455, 0.0095, about 0.0025 and 0.0007 (1..6 bits).
    for (target, expected_bits) in
        [(0.5 * var, 1u8), (0.1 * var, 3), (0.03 * var, 4), (0.005 * var, 5), (0.001 * var, 6)]
    {
        let p = M22Params { bits: 8, m: 0, family: fit::Family::GenNorm, target: Some(target as f32) };
        let (s, bytes) = encoded(p, &values);
        let mut out = vec![0f32; values.len()];
        s.decode(&bytes, &CTX, &mut out).unwrap();
        let mse = values.iter().zip(&out).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>()
            / values.len() as f64;
        let points = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
        assert_eq!(points, 1 << expected_bits, "target {target:e}: {points} points, MSE {mse:e}");
        assert!(mse <= target * 1.05, "target {target:e}: MSE {mse:e}");
    }
    let registry = registry_with_m22();
    let stages = registry.parse_pipeline("m22:mse=1e-6").unwrap();
    assert_eq!(registry.pipeline_to_text(&stages).unwrap(), "m22:bits=8,m=0,family=gennorm,mse=1e-6");
    assert_eq!(stages[0].params.len(), 8);
    for bad in ["m22:mse=0", "m22:mse=-1", "m22:mse=inf", "m22:mse=x"] {
        assert_eq!(registry.parse_pipeline(bad).unwrap_err().code(), ErrorCode::InvalidArgument, "{bad}");
    }
    let code = |b: &[u8]| M22Params::decode(b).unwrap_err().code();
    assert_eq!(code(&[8, 0, 0, 0, 0, 0, 0, 0]), ErrorCode::InvalidParams); // target 0
    assert_eq!(code(&[8, 0, 0, 0, 0, 0, 0x80, 0x7F]), ErrorCode::InvalidParams); // +inf
    assert_eq!(code(&[8, 0, 0, 0, 0]), ErrorCode::InvalidParams); // 5 bytes
}

/// Tensors of very different energy: one error target for all (rate=2) spends the bits where the
/// energy is and beats two bits everywhere in total squared error, at no more bits.
#[test]
fn one_error_target_beats_equal_bits_per_tensor() {
    let tensors: Vec<Vec<f32>> = [(1.0f32, 20_000usize, 11u64), (0.05, 60_000, 12), (0.002, 60_000, 13)]
        .iter()
        .map(|&(scale, n, seed)| gaussian(n, seed).iter().map(|x| x * 100.0 * scale).collect())
        .collect();
    let refs: Vec<&[f32]> = tensors.iter().map(Vec::as_slice).collect();
    let total_n: usize = tensors.iter().map(Vec::len).sum();
    let run = |p: M22Params| {
        let (mut bits, mut err) = (0usize, 0f64);
        for t in &tensors {
            let s = stage(p);
            let mut bytes = Vec::new();
            s.encode(t, &CTX, &mut bytes).unwrap();
            let mut out = vec![0f32; t.len()];
            s.decode(&bytes, &CTX, &mut out).unwrap();
            bits += bytes.len() * 8;
            err += t.iter().zip(&out).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>();
        }
        (bits as f64 / total_n as f64, err)
    };
    let base = M22Params { bits: 8, m: 0, family: fit::Family::GenNorm, target: None };
    let d = allocate::allocate(&refs, 1 << 20, &base, 2.0).unwrap();
    let (alloc_bpe, alloc_err) = run(M22Params { target: Some(d), ..base });
    let (equal_bpe, equal_err) = run(M22Params { bits: 2, ..base });
    eprintln!(
        "rate=2: allocated {alloc_bpe:.3} bpe, error {alloc_err:.3e}; bits=2: {equal_bpe:.3} bpe, error {equal_err:.3e}"
    );
    assert!(alloc_bpe <= 2.0 * 1.05, "allocated rate {alloc_bpe}");
    assert!(equal_bpe <= 2.0, "{equal_bpe}");
    assert!(alloc_err < 0.5 * equal_err, "allocated {alloc_err:e} vs equal bits {equal_err:e}");
}

/// Found in review: values near f32::MAX fit a scale above the f32 range; the header field must
/// stay finite or the decoder refuses the chunk.
#[test]
fn huge_values_keep_finite_fit_fields() {
    let values: Vec<f32> =
        (0..64).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } * f32::MAX * (1.0 - i as f32 * 1e-3)).collect();
    for bits in [2u8, 3, 8] {
        let s = stage(M22Params { bits, m: 0, family: fit::Family::GenNorm, target: None });
        let mut bytes = Vec::new();
        s.encode(&values, &CTX, &mut bytes).unwrap();
        let mut out = vec![0f32; values.len()];
        s.decode(&bytes, &CTX, &mut out).unwrap();
    }
}
