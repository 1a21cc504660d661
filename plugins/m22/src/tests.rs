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
    let target = prop_oneof![
        Just(None),
        (1e-12f32..1e-5).prop_map(|d| Some(Target::Mse(d))),
        (1e-6f32..1e-2).prop_map(|s| Some(Target::Step(s))),
        (0.05f32..7.0).prop_map(|b| Some(Target::Entropy(b))),
    ];
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
        if let Some(Target::Step(_) | Target::Entropy(_)) = p.target {
            return check_uniform(p, &values, &bytes, &out);
        }
        let parsed = chunk::parse(&bytes, p.levels(), 2).unwrap();
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
            let parsed = chunk::parse(&bytes, p.levels(), 2).unwrap();
            prop_assert!(out.iter().all(|y| parsed.table.iter().any(|t| t.to_bits() == y.to_bits())));
        }
    }
}

/// The entropy-constrained modes against the documented cell rule, written plainly: values of
/// one cell decode alike; the output is monotone in the input; the zero cell decodes to 0 and
/// every other cell to its centroid when no cells had to be merged; `entropy=B` meets its budget.
fn check_uniform(p: M22Params, values: &[f32], bytes: &[u8], out: &[f32]) -> Result<(), TestCaseError> {
    let step = f32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let inv = (1.0 / step).min(f32::MAX);
    let max_abs = values.iter().fold(0f32, |m, x| m.max(x.abs()));
    let cap = (max_abs * inv).round_ties_even().min(32_767.0);
    let cell = |x: f32| {
        let k = (x.abs() * inv).min(cap).round_ties_even();
        if x.is_sign_negative() { -k } else { k }
    };
    let mut cells: std::collections::BTreeMap<i64, (f64, usize, f32)> = std::collections::BTreeMap::new();
    for (&x, &y) in values.iter().zip(out) {
        let e = cells.entry(cell(x) as i64).or_insert((0.0, 0, y));
        prop_assert_eq!(e.2, y, "cell {} decodes to two values", cell(x));
        e.0 += f64::from(x);
        e.1 += 1;
    }
    let decoded: Vec<f32> = cells.values().map(|c| c.2).collect();
    prop_assert!(decoded.windows(2).all(|w| w[0] <= w[1]), "output not monotone");
    let points = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
    prop_assert!(points <= p.levels());
    if points == cells.len() && p.m == 0 {
        for (&k, &(sum, count, y)) in &cells {
            let expected = if k == 0 { 0.0 } else { (sum / count as f64) as f32 };
            prop_assert_eq!(y, expected, "cell {}", k);
        }
    }
    if let Some(Target::Entropy(rate)) = p.target {
        // The labels (after the points and any code lengths) meet the target, or the chunk is
        // one cell (one constant byte) when no width does.
        let parsed = chunk::parse(bytes, p.levels(), 2).unwrap();
        let s = parsed.table.len();
        let table = match bytes[0] {
            1 => s.div_ceil(2),
            2 => (s * s).div_ceil(2),
            4 => 5 + (s + 1).div_ceil(2),
            _ => 0,
        };
        let label_bits = (parsed.labels.len() - table) as f64 * 8.0;
        let budget = (f64::from(rate) * values.len() as f64).max(8.0);
        prop_assert!(label_bits <= budget, "{} label bits for {} values at {}", label_bits, values.len(), rate);
    }
    Ok(())
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
        let p = M22Params { bits: 8, m: 0, family: fit::Family::GenNorm, target: Some(Target::Mse(target as f32)) };
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
    let step = allocate::allocate(&refs, 1 << 20, &base, 2.0, 0.0).unwrap();
    let (alloc_bpe, alloc_err) = run(M22Params { target: Some(Target::Step(step)), ..base });
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

/// Symbols with one dominant value (`zero_share` of them), the rest spread over `s` symbols.
fn skewed_symbols(n: usize, s: u8, zero_share: f64, seed: u64) -> Vec<u8> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| if f64::from(rng.next_unit_f32()) < zero_share { s / 2 } else { rng.next_below(u64::from(s)) as u8 })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every coding the planner picks decodes back to the symbols, and coding 4 (runs) is
    /// picked for skewed symbols when allowed; the same chunk decoded as one value shorter or
    /// longer is refused (the run expansion must give exactly n labels).
    #[test]
    fn label_codings_round_trip(n in 1usize..5000, s in 2u8..=255, share in 0.0f64..0.999, seed in any::<u64>(), runs in any::<bool>()) {
        let symbols = skewed_symbols(n, s, share, seed);
        let points: Vec<f32> = (0..s).map(f32::from).collect();
        let plan = plan_labels(usize::from(s), &symbols, runs);
        let mut bytes = Vec::new();
        chunk::write([0.0; 3], &points, false, &symbols, &plan, &mut bytes);
        prop_assert_eq!(bytes.len(), chunk::total_len(&plan, points.len()));
        let version = if runs { 2 } else { 1 };
        let parsed = chunk::parse(&bytes, 256, version).unwrap();
        let mut out = vec![0u8; n];
        chunk::decode_symbols(&parsed, &mut out).unwrap();
        prop_assert_eq!(&out, &symbols);
        if bytes[0] == 4 {
            prop_assert!(runs);
            for wrong in [n - 1, n + 1] {
                let mut out = vec![0u8; wrong];
                prop_assert!(chunk::decode_symbols(&parsed, &mut out).is_err(), "decoded as {} values", wrong);
            }
            prop_assert_eq!(chunk::parse(&bytes, 256, 1).err().map(|e| e.code()), Some(ErrorCode::CodecData));
        }
    }
}

#[test]
fn runs_are_chosen_for_mostly_one_symbol() {
    let symbols = skewed_symbols(100_000, 9, 0.95, 3);
    let plan = plan_labels(9, &symbols, true);
    let mut bytes = Vec::new();
    chunk::write([0.0; 3], &(0u8..9).map(f32::from).collect::<Vec<_>>(), false, &symbols, &plan, &mut bytes);
    assert_eq!(bytes[0], 4, "coding 4 for 95 % of one symbol");
    // Entropy of the symbols: 95 % one symbol, 5 % spread over 9 (one of them the same).
    let mut counts = [0u64; 9];
    for &x in &symbols {
        counts[usize::from(x)] += 1;
    }
    let entropy = gradwire_codec::entropy::entropy_bits(&counts);
    let bpe = (chunk::total_len(&plan, 9) - chunk::HEADER_LEN - 36) as f64 * 8.0 / symbols.len() as f64;
    eprintln!("runs: {bpe:.4} bits per label, entropy {entropy:.4}");
    assert!(bpe < 1.15 * entropy, "{bpe} bits per label against entropy {entropy}");
    // Pairs cannot go below half a bit per label; the runs do.
    assert!(bpe < 0.5);
}

/// Found by the m22 fuzz target: with points one ulp apart the midpoint rounds onto the lower
/// point, which then fell in the upper cell.
#[test]
fn points_one_ulp_apart_keep_their_cells() {
    for a in [1.529_124e-13f32, 1.0, -3.5, f32::MIN_POSITIVE] {
        let points = [a, a.next_up(), a.next_up().next_up()];
        for &p in &points {
            assert_eq!(reference(p, &points, false).to_bits(), p.to_bits(), "{p:e}");
        }
    }
}
