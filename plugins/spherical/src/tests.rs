#![allow(clippy::float_cmp, reason = "decoding is bit-exact by contract")]
//! Unit tests of `spherical`: the per-block guarantee, the fallback, draws against the cap
//! probability, hostile payloads, parameters.

use gradwire_codec::testing::{CONTEXT, array_to_bytes, gaussian, laplace, text_params};
use gradwire_codec::{ArrayToBytes, CodecFactory, ErrorCode, TextParams};

use crate::{SPHERICAL_CODEC, SphericalParams};

fn text(t: &str) -> TextParams {
    text_params(t)
}

fn stage(t: &str) -> Box<dyn ArrayToBytes> {
    array_to_bytes(&SPHERICAL_CODEC, &SPHERICAL_CODEC.params_from_text(&text(t)).expect("valid"))
}

fn round_trip(stage: &dyn ArrayToBytes, x: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    stage.encode(x, &CONTEXT, &mut bytes).expect("encode");
    assert!(bytes.len() <= stage.max_encoded_len(x.len()).expect("bound"));
    let mut y = vec![f32::NAN; x.len()];
    stage.decode(&bytes, &CONTEXT, &mut y).expect("decode");
    (bytes, y)
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|v| f64::from(*v).powi(2)).sum()
}

#[test]
fn every_block_meets_alpha_whatever_the_input() {
    let mut huge = vec![1e-30f32; 37];
    huge[5] = 3e38;
    let inputs = [
        gaussian(1000, 1),
        laplace(999, 2),
        vec![0.5; 64],
        huge,
        vec![0.0; 9],
        vec![-2.0],
        // Norms bf16 cannot hold (infinite, or rounded to 0): sent raw.
        vec![3e38, 3e38],
        vec![f32::MAX],
        vec![1e-45, -1e-45, 1e-45],
        {
            let mut one_hot = vec![0f32; 40];
            one_hot[17] = 1.0;
            one_hot
        },
    ];
    for t in ["alpha=0.5,block=4", "alpha=0.1,block=2,seed=9", "alpha=0.2,block=8,draws=64", "alpha=0.05,block=1"] {
        let s = stage(t);
        let block = SphericalParams::from_text(&text(t)).expect("valid").block as usize;
        for x in &inputs {
            let (_, y) = round_trip(s.as_ref(), x);
            for (j, (a, b)) in x.chunks(block).zip(y.chunks(block)).enumerate() {
                let error: f64 = a.iter().zip(b).map(|(p, q)| (f64::from(*p) - f64::from(*q)).powi(2)).sum();
                let alpha = SphericalParams::from_text(&text(t)).expect("valid").alpha;
                assert!(error <= alpha * energy(a), "{t}, block {j}: {error:e} > {alpha} * {:e}", energy(a));
            }
        }
    }
}

#[test]
fn blocks_without_a_point_within_the_cap_go_raw_and_come_back_exactly() {
    // Eight values at alpha = 0.05 need about 10^5 draws on average: with 4 allowed, almost every
    // block falls back to raw f32 values, decoded bit for bit.
    let x = gaussian(800, 3);
    let (bytes, y) = round_trip(stage("alpha=0.05,block=8,draws=4").as_ref(), &x);
    let exact = x.iter().zip(&y).filter(|(a, b)| a.to_bits() == b.to_bits()).count();
    assert!(exact >= 700, "{exact} of 800 values exact");
    assert!(bytes.len() >= 4 * exact, "raw values are on the wire");
}

#[test]
fn mean_draws_follow_the_cap_probability() {
    // Two values: the qualifying points form an arc of the circle, a fraction
    // acos(sqrt(1 - alpha)) / pi of it, so about 1/p draws on average (the points are only nearly
    // uniform on the circle, so allow 15 %).
    let alpha: f64 = 0.1;
    let p = (1.0 - alpha).sqrt().acos() / std::f64::consts::PI;
    let x = gaussian(20_000, 4);
    let s = stage("alpha=0.1,block=2,draws=100000,seed=5");
    let mut bytes = Vec::new();
    s.encode(&x, &CONTEXT, &mut bytes).expect("encode");
    let b = bytes[0];
    let mut indices = Vec::new();
    gradwire_codec::entropy::rice_decode(&bytes[1 + 2 * 10_000..], b, 10_000, 100_000, &mut indices).expect("indices");
    let mean = indices.iter().sum::<u64>() as f64 / indices.len() as f64;
    assert!((mean * p - 1.0).abs() < 0.15, "mean draws {mean}, 1/p = {}", 1.0 / p);
}

#[test]
fn non_finite_input_is_refused_and_hostile_payloads_fail_cleanly() {
    let s = stage("alpha=0.3,block=4");
    let err = s.encode(&[1.0, f32::NAN], &CONTEXT, &mut Vec::new()).expect_err("NaN");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let x = gaussian(101, 6);
    let (bytes, _) = round_trip(s.as_ref(), &x);
    let mut out = vec![0f32; x.len()];
    for cut in 0..bytes.len() {
        assert!(s.decode(&bytes[..cut], &CONTEXT, &mut out).is_err(), "cut at {cut} accepted");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(s.decode(&longer, &CONTEXT, &mut out).expect_err("trailing").code(), ErrorCode::CodecOutputSize);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << bit;
            let _ = s.decode(&flipped, &CONTEXT, &mut out); // must not panic
        }
    }
    // A negative scale.
    let mut negative = bytes.clone();
    negative[2] |= 0x80;
    assert_eq!(s.decode(&negative, &CONTEXT, &mut out).expect_err("sign").code(), ErrorCode::CodecData);
    // A raw block (index 0) whose scale is not +0: the first block of a stream where every
    // block went raw.
    let raw_stage = stage("alpha=0.05,block=8,draws=1");
    let x = gaussian(16, 7);
    let (mut bytes, y) = round_trip(raw_stage.as_ref(), &x);
    assert_eq!(x, y, "both blocks raw");
    bytes[1..3].copy_from_slice(&0x3F80u16.to_le_bytes());
    let err = raw_stage.decode(&bytes, &CONTEXT, &mut [0f32; 16]).expect_err("raw scale");
    assert_eq!(err.code(), ErrorCode::CodecData, "{err}");
}

#[test]
fn a_chunk_stops_searching_after_its_draw_budget() {
    // 2^26 draws at most per chunk: at alpha = 0.01 and blocks of 16, a block needs about 10^15
    // draws, so the first four blocks use 2^24 draws each, the whole budget, and the last four
    // go raw without a search. The encode must finish (in seconds), with every value exact.
    let x = gaussian(128, 8);
    let (_, y) = round_trip(stage("alpha=0.01,block=16,draws=16777216").as_ref(), &x);
    assert_eq!(x, y);
}

#[test]
fn parameters_round_trip_and_reserved_bytes_are_checked() {
    let p = SphericalParams::from_text(&text("alpha=0.25,block=6,draws=100,seed=42")).expect("valid");
    assert_eq!(SphericalParams::decode(&p.encode()).expect("wire"), p);
    assert_eq!(p.to_text(), "alpha=0.25,block=6,draws=100,seed=42");
    let mut wire = p.encode();
    wire[14] = 1;
    assert_eq!(SphericalParams::decode(&wire).expect_err("reserved").code(), ErrorCode::ReservedNonzero);
    for bad in ["alpha=0", "alpha=1", "block=0", "block=17", "draws=0", "draws=16777217", "seed=-1"] {
        assert!(SphericalParams::from_text(&text(bad)).is_err(), "{bad} accepted");
    }
}

#[test]
fn bits_per_entry_never_beat_the_compressor_bound_on_gaussian_input() {
    // Any compressor with ||C(x) - x||^2 <= alpha ||x||^2 needs (1/2) log2(1/alpha) bits per entry.
    let x = gaussian(1 << 14, 10);
    for t in ["alpha=0.5,block=4", "alpha=0.3,block=8,draws=65536", "alpha=0.1,block=2"] {
        let (bytes, _) = round_trip(stage(t).as_ref(), &x);
        let alpha = SphericalParams::from_text(&text(t)).expect("valid").alpha;
        let bpe = bytes.len() as f64 * 8.0 / x.len() as f64;
        assert!(bpe >= 0.5 * (1.0 / alpha).log2(), "{t}: {bpe} bits per entry");
    }
}
