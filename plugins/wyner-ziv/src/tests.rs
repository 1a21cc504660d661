use std::sync::Arc;

use gradwire_codec::rng::SeededRng;
use gradwire_codec::side_info::SideInfoMap;
use gradwire_codec::testing::CONTEXT;
use gradwire_codec::{ErrorCode, Reader, StreamHeader, TensorSpec, Writer, WriterOptions};
use proptest::prelude::*;

use super::*;

fn stage(text: &str) -> WynerZivStage {
    let pairs = gradwire_codec::testing::text_params(text);
    WynerZivStage::new(WynerZivParams::from_text(&pairs).unwrap())
}

/// A stage whose parameters bind `side`, as a writer holding it makes them.
fn bound(text: &str, side: &[f32]) -> WynerZivStage {
    let mut params = WynerZivParams::from_text(&gradwire_codec::testing::text_params(text)).unwrap();
    params.binding = Some(gradwire_codec::SideBinding::of("test", side).unwrap());
    WynerZivStage::new(params)
}

fn gaussian(rng: &mut SeededRng, n: usize, sigma: f32) -> Vec<f32> {
    // Sum of four uniforms: close enough to normal for coding tests, integer-seeded.
    (0..n).map(|_| ((0..4).map(|_| rng.next_unit_f32()).sum::<f32>() - 2.0) * sigma * 1.732).collect()
}

/// Side information `y` and an input `x = y + noise`.
fn correlated(seed: u64, n: usize, noise: f32) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SeededRng::new(seed);
    let y = gaussian(&mut rng, n, 1.0);
    let e = gaussian(&mut rng, n, noise);
    (y.iter().zip(&e).map(|(a, b)| a + b).collect(), y)
}

fn round_trip(
    s: &WynerZivStage,
    x: &[f32],
    enc_side: Option<&[f32]>,
    dec_side: &[f32],
    seed: u64,
) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    s.encode(x, &ChunkContext { side: enc_side, seed, ..CONTEXT }, &mut bytes).unwrap();
    assert!(bytes.len() <= s.max_encoded_len(x.len()).unwrap());
    let mut out = vec![0f32; x.len()];
    s.decode(&bytes, &ChunkContext { side: Some(dec_side), seed, ..CONTEXT }, &mut out).unwrap();
    (bytes, out)
}

fn header(bytes: &[u8]) -> chunk::Header {
    chunk::parse(bytes, usize::MAX).unwrap().header
}

fn escapes(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Exact recovery: when `|x - y| < (k/2 - 1) eps`, a decoder holding `y` recovers every
    /// lattice index, with or without the sender holding `y` too, and nothing is escaped.
    #[test]
    fn exact_recovery_within_the_bound(seed in any::<u64>(), n in 1usize..3000, k in 4u16..=256, stochastic in any::<bool>()) {
        let step = 0.01f32;
        let mut rng = SeededRng::new(seed);
        let y = gaussian(&mut rng, n, 1.0);
        let reach = (f32::from(k) / 2.0 - 1.0) * step * 0.999;
        let x: Vec<f32> = y.iter().map(|v| v + (rng.next_unit_f32() * 2.0 - 1.0) * reach).collect();
        let rounding = if stochastic { ",rounding=stochastic" } else { "" };
        let s = stage(&format!("step={step},modulus={k},scale=one{rounding}"));
        let tolerance = if stochastic { step } else { step / 2.0 } * 1.0001;
        for enc_side in [Some(&y[..]), None] {
            let (bytes, out) = round_trip(&s, &x, enc_side, &y, seed);
            prop_assert_eq!(escapes(&bytes), 0);
            prop_assert_eq!(header(&bytes).centered, enc_side.is_some());
            for (a, b) in x.iter().zip(&out) {
                prop_assert!((a - b).abs() <= tolerance, "{} decoded as {}", a, b);
            }
        }
    }

    /// Never silently wrong: a sender with the side information escapes whatever the decoder
    /// would get wrong, however far `x` is from `y`, so every entry decodes within the step.
    #[test]
    fn escapes_keep_every_entry_within_the_step(seed in any::<u64>(), n in 1usize..2000, far in 0.0f32..1.0) {
        let mut rng = SeededRng::new(seed);
        let y = gaussian(&mut rng, n, 1.0);
        let x: Vec<f32> = y
            .iter()
            .map(|v| if rng.next_unit_f32() < far { v + 50.0 * (rng.next_unit_f32() - 0.5) } else { v + 0.001 })
            .collect();
        let s = stage("step=0.01,modulus=8");
        let (_, out) = round_trip(&s, &x, Some(&y), &y, seed);
        for (a, b) in x.iter().zip(&out) {
            prop_assert!((a - b).abs() <= 0.005 * 1.0001, "{} decoded as {}", a, b);
        }
    }
}

#[test]
fn escapes_carry_exact_values_and_non_finite_input() {
    let y = vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    let x = vec![0.01f32, f32::NAN, 2.0, 1e30, f32::NEG_INFINITY, 5.02];
    let s = stage("step=0.01,modulus=16,scale=one");
    let (bytes, out) = round_trip(&s, &x, Some(&y), &y, 0);
    assert_eq!(escapes(&bytes), 3);
    assert!(out[1].is_nan() && out[1].to_bits() == f32::NAN.to_bits());
    assert_eq!((out[3], out[4]), (1e30, f32::NEG_INFINITY));
    for i in [0, 2, 5] {
        assert!((out[i] - x[i]).abs() <= 0.005 * 1.0001, "{i}: {} vs {}", out[i], x[i]);
    }
}

#[test]
fn an_unbound_stream_outside_its_bound_decodes_wrong_as_the_spec_says() {
    // A sender without y cannot check; the stream declares it (no CENTERED flag, unbound
    // parameters), and a value beyond the bound lands in another lattice period.
    let y = vec![0.0f32; 4];
    let x = vec![0.0f32, 0.01, 0.2, -0.3];
    let s = stage("step=0.01,modulus=8");
    let (_, out) = round_trip(&s, &x, None, &y, 0);
    assert!((out[1] - 0.01).abs() < 1e-6);
    assert!((out[2] - 0.2).abs() > 0.01 && (out[3] + 0.3).abs() > 0.01, "{out:?}");
    assert_eq!(s.side_info(), SideInfoUse::Unbound);
}

#[test]
fn stochastic_rounding_is_unbiased_over_seeds() {
    let (x, y) = correlated(3, 512, 0.05);
    let s = bound("step=0.1,rounding=stochastic", &y);
    let mut mean = vec![0f64; x.len()];
    let seeds = 2000u64;
    for seed in 0..seeds {
        let (_, out) = round_trip(&s, &x, Some(&y), &y, seed);
        for (m, v) in mean.iter_mut().zip(&out) {
            *m += f64::from(*v) / seeds as f64;
        }
    }
    // Each entry's mean over seeds has standard deviation at most 0.05/sqrt(2000) ~ 0.0011.
    let worst = x.iter().zip(&mean).map(|(a, m)| (f64::from(*a) - m).abs()).fold(0f64, f64::max);
    assert!(worst < 0.006, "largest bias {worst}");
    let mean_bias: f64 = x.iter().zip(&mean).map(|(a, m)| f64::from(*a) - m).sum::<f64>() / x.len() as f64;
    assert!(mean_bias.abs() < 3e-4, "mean bias {mean_bias}");
    // Nearest rounding, by contrast, is deterministic and biased per entry.
    let near = bound("step=0.1", &y);
    let (_, a) = round_trip(&near, &x, Some(&y), &y, 1);
    let (_, b) = round_trip(&near, &x, Some(&y), &y, 2);
    assert_eq!(a, b);
}

#[test]
fn bits_mode_meets_its_rate_and_side_information_pays() {
    let n = 50_000;
    let (x, y) = correlated(7, n, 0.1);
    for bits in [1.0f32, 2.0, 4.0] {
        let (bytes, out) = round_trip(&bound(&format!("bits={bits}"), &y), &x, Some(&y), &y, 0);
        let bpe = bytes.len() as f64 * 8.0 / n as f64;
        assert!(bpe <= f64::from(bits) * 1.02 && bpe >= f64::from(bits) * 0.8, "bits={bits}: {bpe} bpe");
        let step = header(&bytes).step;
        assert!(x.iter().zip(&out).all(|(a, b)| (a - b).abs() <= step / 2.0 * 1.0001));
        // The same budget without side information (unbound parameters: the plain lattice
        // quantizer, its labels entropy coded) buys a step about ten times coarser
        // (sigma_x / sigma_noise).
        let zeros = vec![0f32; n];
        let plain_stage = stage(&format!("bits={bits}"));
        assert_eq!(plain_stage.side_info(), SideInfoUse::None);
        let (plain, _) = round_trip(&plain_stage, &x, None, &zeros, 0);
        let plain_step = header(&plain).step;
        assert!(plain_step > 5.0 * step, "bits={bits}: step {step} with y, {plain_step} without");
    }
}

#[test]
fn the_scale_fits_anti_correlated_side_information() {
    let (x, y) = correlated(11, 20_000, 0.05);
    let flipped: Vec<f32> = y.iter().map(|v| -0.5 * v).collect();
    let (fit, out) = round_trip(&bound("step=0.01", &flipped), &x, Some(&flipped), &flipped, 0);
    assert!((header(&fit).scale + 2.0).abs() < 0.05, "scale {}", header(&fit).scale);
    assert!(x.iter().zip(&out).all(|(a, b)| (a - b).abs() <= 0.005 * 1.0001));
    let (one, _) = round_trip(&bound("step=0.01,scale=one", &flipped), &x, Some(&flipped), &flipped, 0);
    assert!(fit.len() * 2 < one.len(), "fitted {} bytes, a = 1 {} bytes", fit.len(), one.len());
}

#[test]
fn bound_stages_need_the_side_information_and_unbound_ones_predict_zero() {
    let y = [1.0f32, 2.0];
    for text in ["bits=2", "step=0.1", "step=0.1,modulus=8"] {
        let err = bound(text, &y).encode(&[1.0, 2.0], &CONTEXT, &mut Vec::new()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SideInfoMissing, "{text}");
    }
    // Unbound bits and step modes are the plain lattice quantizer: no side information either way.
    let plain = stage("step=0.1");
    let mut bytes = Vec::new();
    plain.encode(&[1.0, 2.04], &ChunkContext { side: Some(&[9.0, 9.0]), ..CONTEXT }, &mut bytes).unwrap();
    let mut out = [0f32; 2];
    plain.decode(&bytes, &CONTEXT, &mut out).unwrap();
    assert!((out[0] - 1.0).abs() < 1e-6 && (out[1] - 2.0).abs() < 1e-6, "{out:?}");
    // A bound stage refuses to decode without its side information, or with the wrong length.
    let s = bound("step=0.1", &y);
    bytes.clear();
    s.encode(&[1.0, 2.0], &ChunkContext { side: Some(&y), ..CONTEXT }, &mut bytes).unwrap();
    assert_eq!(s.decode(&bytes, &CONTEXT, &mut out).unwrap_err().code(), ErrorCode::SideInfoMissing);
    let short = ChunkContext { side: Some(&[1.0]), ..CONTEXT };
    assert_eq!(s.decode(&bytes, &short, &mut out).unwrap_err().code(), ErrorCode::SideInfoMismatch);
}

#[test]
fn params_round_trip_and_refuse_bad_bytes() {
    for text in ["bits=2", "bits=0.5,rounding=stochastic", "step=0.25,scale=one", "step=0.01,modulus=256"] {
        let p = WynerZivParams::from_text(&gradwire_codec::testing::text_params(text)).unwrap();
        assert_eq!(p.to_text(), text);
        assert_eq!(WynerZivParams::decode(&p.encode()).unwrap(), p);
    }
    let defaults = WynerZivParams::from_text(&gradwire_codec::testing::text_params("")).unwrap();
    assert_eq!(defaults.to_text(), "bits=2");
    for bad in [
        "bits=9",
        "bits=0",
        "step=-1",
        "step=1,bits=2",
        "bits=2,modulus=4",
        "step=1,modulus=1",
        "rounding=up",
        "modulus=16",
    ] {
        assert!(WynerZivParams::from_text(&gradwire_codec::testing::text_params(bad)).is_err(), "{bad}");
    }
    let good = WynerZivParams::from_text(&gradwire_codec::testing::text_params("step=0.5,modulus=8")).unwrap().encode();
    let mut bound = good.clone();
    bound[3] = 1;
    bound.push(3);
    bound.extend_from_slice(b"abc");
    bound.extend_from_slice(&[7; 32]);
    let p = WynerZivParams::decode(&bound).unwrap();
    assert_eq!(p.binding.as_ref().map(|b| b.label.as_str()), Some("abc"));
    let code = |b: &[u8]| WynerZivParams::decode(b).unwrap_err().code();
    assert_eq!(code(&good[..11]), ErrorCode::InvalidParams);
    assert_eq!(code(&bound[..bound.len() - 1]), ErrorCode::InvalidParams);
    for (at, v, expected) in [
        (3, 2, ErrorCode::ReservedNonzero),
        (10, 1, ErrorCode::ReservedNonzero),
        (0, 4, ErrorCode::InvalidParams),
        (1, 2, ErrorCode::InvalidParams),
        (2, 2, ErrorCode::InvalidParams),
        (8, 1, ErrorCode::InvalidParams),
    ] {
        let mut b = good.clone();
        b[at] = v;
        assert_eq!(code(&b), expected, "byte {at} = {v}");
    }
}

#[test]
fn corrupt_payloads_are_refused_without_panic() {
    let (x, y) = correlated(5, 3000, 0.005);
    let mut far = x.clone();
    far[17] = 40.0;
    far[2500] = -40.0;
    let (bytes, _) = round_trip(&stage("step=0.01,modulus=16,scale=one"), &far, Some(&y), &y, 0);
    assert_eq!(escapes(&bytes), 2);
    let s = stage("step=0.01,modulus=16,scale=one");
    let ctx = ChunkContext { side: Some(&y), ..CONTEXT };
    let mut out = vec![0f32; x.len()];
    for cut in 0..bytes.len().min(200) {
        assert!(s.decode(&bytes[..cut], &ctx, &mut out).is_err(), "cut at {cut}");
    }
    let mut rng = SeededRng::new(9);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let i = rng.next_below(b.len() as u64) as usize;
        b[i] ^= 1 << rng.next_below(8);
        let _ = s.decode(&b, &ctx, &mut out);
    }
    let code = |b: &[u8]| s.decode(b, &ctx, &mut out.clone()).unwrap_err().code();
    let mut b = bytes.clone();
    b[1] = 2;
    assert_eq!(code(&b), ErrorCode::ReservedNonzero);
    let mut b = bytes.clone();
    b[2..4].copy_from_slice(&257u16.to_le_bytes());
    assert_eq!(code(&b), ErrorCode::CodecData);
    let mut b = bytes.clone();
    b[4..8].copy_from_slice(&0f32.to_le_bytes());
    assert_eq!(code(&b), ErrorCode::CodecData);
    let mut b = bytes.clone();
    b[16..20].copy_from_slice(&3001u32.to_le_bytes());
    assert_eq!(code(&b), ErrorCode::CodecData);
}

fn stream(x: &[f32], side: Option<SideInfoMap>, pipeline: &str) -> Vec<u8> {
    let registry = registry_with_wyner_ziv();
    let mut w =
        Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default().chunk_elements(1000))
            .unwrap();
    if let Some(side) = side {
        w.set_side_info(Arc::new(side));
    }
    w.write_tensor(TensorSpec::new("fc1.weight", &[x.len() as u64], registry.parse_pipeline(pipeline).unwrap()), x)
        .unwrap();
    w.finish().unwrap()
}

fn read(bytes: &[u8], side: Option<SideInfoMap>) -> gradwire_codec::Result<Vec<f32>> {
    let registry = registry_with_wyner_ziv();
    let mut r = Reader::new(bytes, &registry);
    if let Some(side) = side {
        r.set_side_info(Arc::new(side));
    }
    Ok(r.read_all()?.tensors.remove(0).values)
}

fn side_map(label: &str, y: &[f32]) -> SideInfoMap {
    let mut m = SideInfoMap::new();
    m.insert("fc1.weight", label, y.to_vec());
    m
}

#[test]
fn streams_bind_their_side_information() {
    let (x, y) = correlated(1, 2500, 0.1);
    let bytes = stream(&x, Some(side_map("round 3 mean", &y)), "wyner-ziv:bits=3");
    let out = read(&bytes, Some(side_map("whatever", &y))).unwrap();
    assert!(x.iter().zip(&out).all(|(a, b)| (a - b).abs() < 0.05));
    // Other side information (another round's), missing side information, a wrong length.
    let (_, other) = correlated(2, 2500, 0.1);
    let err = read(&bytes, Some(side_map("round 4 mean", &other))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SideInfoMismatch);
    let text = err.to_string();
    assert!(text.contains("fc1.weight") && text.contains("round 3 mean") && text.contains("round 4 mean"), "{text}");
    assert_eq!(read(&bytes, None).unwrap_err().code(), ErrorCode::SideInfoMissing);
    assert_eq!(read(&bytes, Some(side_map("short", &y[1..]))).unwrap_err().code(), ErrorCode::SideInfoMismatch);
    // One changed value anywhere is a mismatch.
    let mut nudged = y.clone();
    nudged[2499] = f32::from_bits(nudged[2499].to_bits() ^ 1);
    assert_eq!(read(&bytes, Some(side_map("nudged", &nudged))).unwrap_err().code(), ErrorCode::SideInfoMismatch);
    // A stream written without side information is unbound: any tensor of the right length decodes.
    // A pipeline that takes no side information ignores what is given, whatever its length.
    assert!(read(&stream(&x, Some(side_map("short", &y[1..])), "bf16"), None).is_ok());
    let unbound = stream(&x, None, "wyner-ziv:step=0.01,modulus=64");
    assert!(read(&unbound, Some(side_map("any", &other))).is_ok());
    assert_eq!(read(&unbound, None).unwrap_err().code(), ErrorCode::SideInfoMissing);
}

#[test]
fn the_bound_holds_after_rounding_to_f32() {
    // Steps near the f32 spacing of the value: z * eps rounded to f32 could land nearly a whole
    // step away (found by review); such entries are sent raw, so every decoded value is within
    // half a step (nearest) or a step (stochastic).
    for (x, step, stochastic) in [(0x3f26_4cfd_u32, 0x3381_ea3d_u32, false), (0x3f85_ab7b, 0x3387_5c88, true)] {
        let x = f32::from_bits(x);
        let step = f32::from_bits(step);
        let rounding = if stochastic { ",rounding=stochastic" } else { "" };
        let s = stage(&format!("step={step:e},modulus=16{rounding}"));
        let reach = if stochastic { f64::from(step) } else { f64::from(step) / 2.0 };
        for seed in 0..200 {
            let (_, out) = round_trip(&s, &[x], Some(&[x]), &[x], seed);
            assert!((f64::from(out[0]) - f64::from(x)).abs() <= reach, "{x} decoded as {}, step {step}", out[0]);
        }
    }
}

#[test]
fn outliers_do_not_set_the_step_of_the_bits_mode() {
    // One huge value among small ones: the step follows the bulk, the outlier is escaped.
    let mut x: Vec<f32> = gradwire_codec::testing::laplace(1000, 5).iter().map(|v| v * 1e-3).collect();
    x[500] = 1e30;
    let (bytes, out) = round_trip(&stage("bits=2"), &x, None, &[], 0);
    assert!(header(&bytes).step < 1e-3, "step {}", header(&bytes).step);
    assert_eq!(out[500].to_bits(), 1e30f32.to_bits());
    let error: f64 = x.iter().zip(&out).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    let energy: f64 = x.iter().enumerate().filter(|(i, _)| *i != 500).map(|(_, a)| f64::from(*a).powi(2)).sum();
    assert!(error < 0.2 * energy, "relative error {}", error / energy);
}
