#![allow(clippy::float_cmp, reason = "decoding is bit-exact by contract; parameters are compared as given")]
//! Unit tests of `qsgd` and `sparse-dither`: guarantees, unbiasedness, variance, rate against
//! the compressor bound, the three magnitude codings, hostile payloads, parameters.

use gradwire_codec::testing::{CONTEXT, array_to_bytes, gaussian, laplace, text_params};
use gradwire_codec::{ArrayToBytes, ChunkContext, CodecFactory, ErrorCode, TextParams};

use crate::{QSGD_CODEC, QsgdParams, SPARSE_DITHER_CODEC, SparseDitherParams, Variant};

fn text(t: &str) -> TextParams {
    text_params(t)
}

fn qsgd(t: &str) -> Box<dyn ArrayToBytes> {
    array_to_bytes(&QSGD_CODEC, &QSGD_CODEC.params_from_text(&text(t)).expect("valid"))
}

fn dither(t: &str) -> Box<dyn ArrayToBytes> {
    array_to_bytes(&SPARSE_DITHER_CODEC, &SPARSE_DITHER_CODEC.params_from_text(&text(t)).expect("valid"))
}

fn ctx(seed: u64) -> ChunkContext<'static> {
    ChunkContext { seed, ..CONTEXT }
}

fn round_trip(stage: &dyn ArrayToBytes, x: &[f32], seed: u64) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    stage.encode(x, &ctx(seed), &mut bytes).expect("encode");
    assert!(bytes.len() <= stage.max_encoded_len(x.len()).expect("bound"), "{} bytes over the bound", bytes.len());
    let mut y = vec![f32::NAN; x.len()];
    stage.decode(&bytes, &ctx(seed), &mut y).expect("decode");
    (bytes, y)
}

fn squared_error(x: &[f32], y: &[f32]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum()
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|a| f64::from(*a).powi(2)).sum()
}

/// Inputs chosen to break an error guarantee: flat, one-hot, huge dynamic range, zeros, tiny.
fn adversarial() -> Vec<Vec<f32>> {
    let mut huge = vec![1e-30f32; 257];
    huge[3] = 1e30;
    huge[100] = -3e29;
    let mut one_hot = vec![0f32; 1000];
    one_hot[999] = -2.5;
    vec![
        vec![1.0; 1],
        vec![0.7; 4096],
        vec![-3.0e-20; 333],
        one_hot,
        huge,
        vec![0.0; 50],
        vec![f32::MAX / 4.0, -f32::MAX / 4.0, 1.0],
        vec![1e-36, -2e-36, 5e-37, 0.0, 1e-37],
        (0..1000).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 + 1e-7 * i as f32 }).collect(),
        (0..1000).map(|i| (1.0f32 + i as f32).powi(5)).collect(),
        // Half-way values on a step that is exact in f32: nearest rounding costs exactly nu ||x||^2
        // in real arithmetic, so only a budget with a margin for f64 rounding keeps the promise.
        vec![3.5],
        vec![0.5, -1.5, 2.5, 3.5],
    ]
}

#[test]
fn deterministic_sparse_dither_meets_nu_for_every_input() {
    let mut inputs = adversarial();
    inputs.extend([gaussian(10_000, 1), laplace(65_536, 2), gaussian(7, 3), laplace(2, 4)]);
    for nu in [1e-6, 0.001, 0.01, 0.1, 0.5, 1.0, 4.0, 1.0 / 49.0, 0.25 / 5.25] {
        let stage = dither(&format!("nu={nu}"));
        for (i, x) in inputs.iter().enumerate() {
            let (_, y) = round_trip(stage.as_ref(), x, 0);
            let (error, budget) = (squared_error(x, &y), nu * energy(x));
            assert!(error <= budget, "input {i}, nu {nu}: error {error:e} above {budget:e}");
        }
    }
}

#[test]
fn decoded_values_lie_on_the_signed_grid() {
    let x = laplace(5000, 9);
    for stage in [qsgd("levels=5"), dither("nu=0.05"), dither("nu=0.3,variant=unbiased")] {
        let (bytes, y) = round_trip(stage.as_ref(), &x, 4);
        let step = f64::from(f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")));
        for (a, b) in x.iter().zip(&y) {
            let k = f64::from(*b) / step;
            assert!((k - k.round()).abs() < 1e-5, "{b} is not on the grid of {step}");
            assert!(*b == 0.0 || a.signum() == b.signum(), "{a} decoded with the other sign: {b}");
        }
    }
}

/// Mean of the decoded values over `runs` seeds, and the mean squared error.
fn average(stage: &dyn ArrayToBytes, x: &[f32], runs: u64) -> (Vec<f64>, f64) {
    let mut mean = vec![0f64; x.len()];
    let mut error = 0.0;
    for seed in 0..runs {
        let (_, y) = round_trip(stage, x, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for (m, v) in mean.iter_mut().zip(&y) {
            *m += f64::from(*v) / runs as f64;
        }
        error += squared_error(x, &y) / runs as f64;
    }
    (mean, error)
}

#[test]
fn stochastic_codecs_are_unbiased_over_seeds() {
    let x = laplace(64, 5);
    let runs = 4000;
    for (name, stage) in
        [("qsgd:levels=2", qsgd("levels=2")), ("sparse-dither unbiased", dither("nu=0.5,variant=unbiased"))]
    {
        let (mean, _) = average(stage.as_ref(), &x, runs);
        let (_, y) = round_trip(stage.as_ref(), &x, 0);
        let bytes = {
            let mut b = Vec::new();
            stage.encode(&x, &ctx(0), &mut b).expect("encode");
            b
        };
        let step = f64::from(f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")));
        assert!(y.iter().any(|v| *v != 0.0));
        for (i, (m, v)) in mean.iter().zip(&x).enumerate() {
            // Rounding between adjacent levels: standard deviation at most step / 2 per run.
            let sigma = step / 2.0 / (runs as f64).sqrt();
            assert!((m - f64::from(*v)).abs() <= 5.0 * sigma, "{name} value {i}: mean {m} for {v} (sigma {sigma})");
        }
    }
}

#[test]
fn qsgd_variance_stays_within_its_bound() {
    for (n, s) in [(256usize, 1u32), (256, 4), (4096, 16), (1000, 200)] {
        let x = gaussian(n, u64::from(s));
        let stage = qsgd(&format!("levels={s}"));
        let (_, mse) = average(stage.as_ref(), &x, 200);
        let bound = (n as f64 / f64::from(s * s)).min((n as f64).sqrt() / f64::from(s)) * energy(&x);
        assert!(mse <= bound, "n {n}, s {s}: E error {mse:e} above {bound:e}");
    }
}

#[test]
fn rates_respect_the_compressor_and_gaussian_bounds() {
    let n = 1 << 16;
    let x = gaussian(n, 11);
    for nu in [0.01f64, 0.1, 0.5] {
        let (bytes, y) = round_trip(dither(&format!("nu={nu}")).as_ref(), &x, 0);
        let bpe = bytes.len() as f64 * 8.0 / n as f64;
        assert!(bpe >= 0.5 * (1.0 / nu).log2(), "nu {nu}: {bpe} bits per entry below the compressor bound");
        let rel = squared_error(&x, &y) / energy(&x);
        assert!(rel >= 4f64.powf(-bpe), "nu {nu}: error {rel} below the Gaussian distortion-rate bound at {bpe}");
        // The paper's deterministic bound at nu = 0.1: at most 3.35 bits per entry (plus the header).
        if nu == 0.1 {
            assert!(bpe <= 3.35, "nu 0.1 costs {bpe} bits per entry");
        }
    }
    for s in [1u32, 4, 64] {
        let (bytes, y) = round_trip(qsgd(&format!("levels={s}")).as_ref(), &x, 1);
        let bpe = bytes.len() as f64 * 8.0 / n as f64;
        let rel = squared_error(&x, &y) / energy(&x);
        assert!(rel >= 4f64.powf(-bpe), "qsgd s {s}: error {rel} below the bound at {bpe}");
    }
}

#[test]
fn every_magnitude_coding_round_trips() {
    // s = 1: all magnitudes 1 (constant); s = 255 on 4096 Gaussian values: magnitudes
    // around 4, half-normal rather than geometric (Huffman); nu = 1e-6 on Laplace: magnitudes in the thousands (Rice).
    let mut seen = [false; 3];
    for (stage, x) in [
        (qsgd("levels=1"), laplace(20_000, 3)),
        (qsgd("levels=255"), gaussian(4096, 3)),
        (dither("nu=1e-6"), laplace(20_000, 3)),
    ] {
        let (bytes, y) = round_trip(stage.as_ref(), &x, 2);
        seen[usize::from(bytes[9])] = true;
        // Every value decodes to its level times the step: the nearest or an adjacent level of
        // |x_i| / step, with x_i's sign.
        let step = f64::from(f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")));
        for (a, b) in x.iter().zip(&y) {
            let (r, k) = (f64::from(a.abs()) / step, f64::from(b.abs()) / step);
            let on_grid = (k - k.round()).abs() <= 1e-6 * k.max(1.0);
            assert!(on_grid && (k - r).abs() < 1.0 + 1e-6, "{a} decoded as {b}, step {step}");
            assert!(*b == 0.0 || a.signum() == b.signum(), "{a} decoded as {b}");
        }
    }
    assert_eq!(seen, [true; 3], "constant, Rice and Huffman magnitudes all exercised");
}

#[test]
fn non_finite_input_is_refused() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for stage in [qsgd("levels=3"), dither("nu=0.1")] {
            let err = stage.encode(&[1.0, bad, 2.0], &CONTEXT, &mut Vec::new()).expect_err("refused");
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
        }
    }
}

#[test]
fn truncated_payloads_fail_and_flipped_bits_never_panic() {
    let x = laplace(3000, 8);
    for stage in [qsgd("levels=1"), qsgd("levels=6"), dither("nu=1e-5"), dither("nu=0.2")] {
        let mut bytes = Vec::new();
        stage.encode(&x, &CONTEXT, &mut bytes).expect("encode");
        let mut out = vec![0f32; x.len()];
        for cut in 0..bytes.len() {
            assert!(stage.decode(&bytes[..cut], &CONTEXT, &mut out).is_err(), "cut at {cut} accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(stage.decode(&longer, &CONTEXT, &mut out).expect_err("trailing").code(), ErrorCode::CodecOutputSize);
        for i in 0..bytes.len().min(400) {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                let _ = stage.decode(&flipped, &CONTEXT, &mut out); // must not panic
            }
        }
    }
}

#[test]
fn decoder_rejects_what_the_spec_forbids() {
    let stage = qsgd("levels=3");
    let mut out = [0f32; 4];
    let chunk = |step: f32, m: u32, rest: &[u8]| [&step.to_le_bytes()[..], &m.to_le_bytes(), rest].concat();
    let code = |bytes: Vec<u8>, out: &mut [f32]| stage.decode(&bytes, &CONTEXT, out).expect_err("refused").code();
    assert_eq!(code(chunk(-1.0, 0, &[]), &mut out), ErrorCode::CodecData);
    assert_eq!(code(chunk(f32::NAN, 0, &[]), &mut out), ErrorCode::CodecData);
    assert_eq!(code(chunk(1.0, 5, &[]), &mut out), ErrorCode::CodecData);
    assert_eq!(code(chunk(0.0, 1, &[0, 0, 1, 0, 0, 0, 0, 0]), &mut out), ErrorCode::CodecData);
    // One nonzero at position 0 (gap 0 at parameter 0: bit 0), positive, magnitude 4 > s = 3.
    assert_eq!(code(chunk(1.0, 1, &[0, 0, 4, 0, 0, 0, 0, 0]), &mut out), ErrorCode::CodecData);
    // Magnitude 2: decodes; then a sign padding bit set; then an unknown coding.
    stage.decode(&chunk(1.5, 1, &[0, 0, 2, 0, 0, 0, 0, 1]), &CONTEXT, &mut out).expect("valid");
    assert_eq!(out, [-3.0, 0.0, 0.0, 0.0]);
    assert_eq!(code(chunk(1.5, 1, &[0, 0, 2, 0, 0, 0, 0, 3]), &mut out), ErrorCode::ReservedNonzero);
    assert_eq!(code(chunk(1.5, 1, &[0, 3, 2, 0, 0, 0, 0, 1]), &mut out), ErrorCode::CodecData);
    // Gaps 3 and 0 (parameter 2): positions 3 and 4, past the chunk of 4.
    assert_eq!(code(chunk(1.5, 2, &[2, 0, 2, 0, 0, 0, 0b0110, 0]), &mut out), ErrorCode::CodecData);
}

#[test]
fn parameters_round_trip_and_reserved_bytes_are_checked() {
    let p = QsgdParams::from_text(&text("levels=255")).expect("valid");
    assert_eq!((QsgdParams::decode(&p.encode()).expect("wire"), p.to_text()), (p, "levels=255".to_owned()));
    assert!(QsgdParams::from_text(&text("levels=0")).is_err());
    assert_eq!(QsgdParams::decode(&0u32.to_le_bytes()).expect_err("0").code(), ErrorCode::InvalidParams);
    let d = SparseDitherParams::from_text(&text("nu=0.1,variant=unbiased")).expect("valid");
    assert_eq!((d.nu, d.variant), (0.1, Variant::Unbiased));
    assert_eq!(SparseDitherParams::decode(&d.encode()).expect("wire"), d);
    assert_eq!(d.to_text(), "nu=0.1,variant=unbiased");
    let mut wire = d.encode();
    wire[15] = 1;
    assert_eq!(SparseDitherParams::decode(&wire).expect_err("reserved").code(), ErrorCode::ReservedNonzero);
    for bad in ["nu=0", "nu=1e-7", "nu=17", "nu=nan", "variant=biased"] {
        assert!(SparseDitherParams::from_text(&text(bad)).is_err(), "{bad} accepted");
    }
}

#[test]
fn steps_beyond_f32_are_clamped_or_refused() {
    let x = [3e38f32, -3e38, 1.0];
    // sparse-dither: a step above f32::MAX is clamped (both guarantees still hold).
    for t in ["nu=16,variant=unbiased", "nu=16"] {
        let (bytes, y) = round_trip(dither(t).as_ref(), &x, 0);
        assert_eq!(f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")), f32::MAX, "{t}");
        assert!(y.iter().all(|v| v.is_finite()), "{t}: {y:?}");
        assert!(squared_error(&x, &y) <= 16.0 * energy(&x), "{t}");
    }
    // qsgd needs step >= ||x|| / s: above f32's range it refuses.
    let err = qsgd("levels=1").encode(&x, &CONTEXT, &mut Vec::new()).expect_err("refused");
    assert_eq!(err.code(), ErrorCode::LimitExceeded, "{err}");
    assert!(qsgd("levels=4").encode(&x, &CONTEXT, &mut Vec::new()).is_ok());
}

#[test]
fn values_near_f32_max_keep_the_deterministic_guarantee() {
    // -3.33e38 at nu = 0.01 would round up to 9 steps, beyond f32::MAX (found by fuzzing).
    let x = [f32::from_bits(0xFF7A_FFFF), 1.0, 1.0];
    for nu in [0.01, 0.1, 1e-6] {
        let (_, y) = round_trip(dither(&format!("nu={nu}")).as_ref(), &x, 0);
        assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
        assert!(squared_error(&x, &y) <= nu * energy(&x), "nu {nu}: {y:?}");
    }
    // Stochastic rounding either stays finite or refuses (it cannot take the level below and
    // stay unbiased).
    let stage = dither("nu=0.01,variant=unbiased");
    for seed in 0..64 {
        let mut bytes = Vec::new();
        match stage.encode(&x, &ctx(seed), &mut bytes) {
            Ok(()) => {
                let mut y = [0f32; 3];
                stage.decode(&bytes, &ctx(seed), &mut y).expect("decode");
                assert!(y.iter().all(|v| v.is_finite()), "seed {seed}: {y:?}");
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::LimitExceeded, "seed {seed}: {e}"),
        }
    }
}

#[test]
fn empty_and_all_zero_chunks_round_trip_with_a_positive_zero_step() {
    for stage in [qsgd("levels=3"), dither("nu=0.1"), dither("nu=0.1,variant=unbiased")] {
        for x in [vec![], vec![0.0f32; 5], vec![-0.0f32; 3]] {
            let (bytes, y) = round_trip(stage.as_ref(), &x, 0);
            assert_eq!(bytes, [0u8; 8], "step +0.0 and no nonzeros");
            assert!(y.iter().all(|v| v.to_bits() == 0));
        }
    }
}
