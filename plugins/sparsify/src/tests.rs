//! Unit tests of `randk`: kept counts, positions, unbiasedness, parameters.

use gradwire_codec::rng::{SeededRng, chunk_seed};
use gradwire_codec::{ArrayToArray, ChunkContext, CodecFactory, Stage, TextParams};

use crate::{RANDK_CODEC, RandKParams, Scaling};

fn params(text: &str) -> RandKParams {
    RandKParams::from_text(&gradwire_codec::testing::text_params(text)).expect("valid")
}

fn stage(text: &str) -> Box<dyn ArrayToArray> {
    match RANDK_CODEC.build(1, &params(text).encode()).expect("builds") {
        Stage::ArrayToArray(s) => s,
        _ => unreachable!("randk is array->array"),
    }
}

const CTX: ChunkContext<'static> =
    ChunkContext { tensor_name: "fc1.weight", tensor_id: 0, chunk_index: 0, element_offset: 0, seed: 0 };

#[test]
fn kept_counts_round_to_nearest_and_never_vanish() {
    let p = params("fraction=0.01");
    assert_eq!((p.kept(0), p.kept(1), p.kept(100), p.kept(150), p.kept(1_000_000)), (0, 1, 1, 2, 10_000));
    assert_eq!(params("fraction=0.5").kept(7), 4);
    assert_eq!(params("fraction=0.999999999").kept(5), 5);
}

#[test]
fn kept_values_come_back_at_their_positions_and_zeros_elsewhere() {
    let x: Vec<f32> = (0..1000).map(|i| i as f32 + 0.5).collect();
    let s = stage("fraction=0.1,seed=3");
    let mut c = Vec::new();
    s.encode(&x, &CTX, &mut c).expect("encode");
    assert_eq!(c.len(), 100);
    let mut y = vec![0f32; 1000];
    s.decode(&c, &CTX, &mut y).expect("decode");
    let kept: Vec<usize> = (0..1000).filter(|&i| y[i] != 0.0).collect();
    assert_eq!(kept.len(), 100);
    assert!(kept.iter().all(|&i| y[i].to_bits() == x[i].to_bits()));
    // The positions are partial_shuffle(n, k) of the chunk's generator (CODECS.md §8.1).
    let mut table = Vec::new();
    SeededRng::new(chunk_seed(3, "fc1.weight", 0)).partial_shuffle(1000, 100, &mut table);
    let mut want: Vec<usize> = table[..100].iter().map(|&p| p as usize).collect();
    let mut first = Vec::new();
    SeededRng::new(chunk_seed(3, "fc1.weight", 0)).partial_shuffle(1000, 4, &mut first);
    assert_eq!(first[..4], [692, 343, 857, 771], "the positions listed in CODECS.md §8.2");
    want.sort_unstable();
    assert_eq!(kept, want);
    assert!(s.decode(&c[..99], &CTX, &mut y).is_err());
}

#[test]
fn unbiased_scaling_averages_to_the_input_over_seeds() {
    let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
    let seeds = 4000;
    let mut mean = [0f64; 64];
    for seed in 0..seeds {
        let s = stage(&format!("fraction=0.25,scaling=unbiased,seed={seed}"));
        let mut c = Vec::new();
        s.encode(&x, &CTX, &mut c).expect("encode");
        let mut y = vec![0f32; 64];
        s.decode(&c, &CTX, &mut y).expect("decode");
        for (m, v) in mean.iter_mut().zip(&y) {
            *m += f64::from(*v) / f64::from(seeds);
        }
    }
    // Each mean has standard deviation |x| sqrt((n/k - 1) / seeds) <= 1.7 * 0.027: allow 5 sigma.
    for (m, v) in mean.iter().zip(&x) {
        assert!((m - f64::from(*v)).abs() < 0.25, "{m} vs {v}");
    }
}

#[test]
fn params_round_trip_and_bad_ones_are_refused() {
    for text in
        ["fraction=0.01,seed=0", "fraction=0.25,scaling=unbiased,seed=18446744073709551615", "fraction=0.3333,seed=2"]
    {
        let p = params(text);
        assert_eq!(RandKParams::decode(&p.encode()).expect("decodes"), p);
        assert_eq!(params(&p.to_text()), p, "{text} -> {}", p.to_text());
    }
    assert_eq!(params("fraction=0.5").to_text(), "fraction=0.5,seed=0");
    for bad in ["fraction=0", "fraction=1", "fraction=-0.1", "fraction=x", "scaling=all", "seed=-1"] {
        let (k, v) = bad.split_once('=').expect("kv");
        assert!(RandKParams::from_text(&TextParams { pairs: vec![(k.into(), v.into())] }).is_err(), "{bad}");
    }
    let good = params("fraction=0.5").encode();
    for (i, v) in [(4usize, 2u8), (5, 1), (7, 1)] {
        let mut b = good;
        b[i] = v;
        assert!(RandKParams::decode(&b).is_err(), "byte {i}");
    }
    assert!(RandKParams::decode(&[0u8; 16]).is_err(), "fraction 0");
    assert!(RandKParams::decode(&good[..15]).is_err());
    assert_eq!(params("scaling=unbiased").scaling, Scaling::Unbiased);
}

fn topk_stage(text: &str) -> Box<dyn gradwire_codec::ArrayToBytes> {
    let pairs = text.split(',').map(|p| {
        let (k, v) = p.split_once('=').expect("key=value");
        (k.to_owned(), v.to_owned())
    });
    let params = crate::TopKParams::from_text(&TextParams { pairs: pairs.collect() }).expect("valid");
    assert_eq!(crate::TopKParams::decode(&params.encode()).expect("decodes"), params);
    match crate::TOPK_CODEC.build(1, &params.encode()).expect("builds") {
        Stage::ArrayToBytes(s) => s,
        _ => unreachable!("topk is array->bytes"),
    }
}

#[test]
fn topk_keeps_the_largest_magnitudes_exactly() {
    let x: Vec<f32> = (0..1000).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 7.0).collect();
    let s = topk_stage("fraction=0.05");
    let mut bytes = Vec::new();
    s.encode(&x, &CTX, &mut bytes).expect("encode");
    assert!(bytes.len() <= s.max_encoded_len(1000).expect("bound"));
    let mut y = vec![0f32; 1000];
    s.decode(&bytes, &CTX, &mut y).expect("decode");
    let kept: Vec<usize> = (0..1000).filter(|&i| y[i] != 0.0).collect();
    assert_eq!(kept.len(), 50);
    let smallest_kept = kept.iter().map(|&i| x[i].abs()).fold(f32::INFINITY, f32::min);
    let largest_dropped = (0..1000).filter(|i| !kept.contains(i)).map(|i| x[i].abs()).fold(0f32, f32::max);
    assert!(smallest_kept >= largest_dropped, "{smallest_kept} < {largest_dropped}");
    assert!(kept.iter().all(|&i| y[i].to_bits() == x[i].to_bits()));
    // 1 byte of Rice parameter, 50 f32 values, and gaps of about 20 in about 6 bits each.
    assert!(bytes.len() < 1 + 200 + 50, "{} bytes", bytes.len());
    let s = topk_stage("fraction=0.05,values=bf16");
    let mut half = Vec::new();
    s.encode(&x, &CTX, &mut half).expect("encode");
    assert_eq!(half.len(), bytes.len() - 100, "bf16 values take half the room");
    s.decode(&half, &CTX, &mut y).expect("decode");
    assert!(kept.iter().all(|&i| (y[i] - x[i]).abs() <= x[i].abs() / 128.0));
}

#[test]
fn topk_refuses_damaged_payloads() {
    let x: Vec<f32> = (0..100).map(|i| i as f32 - 50.5).collect();
    let s = topk_stage("fraction=0.1");
    let mut bytes = Vec::new();
    s.encode(&x, &CTX, &mut bytes).expect("encode");
    let mut y = vec![0f32; 100];
    let code = |b: &[u8], y: &mut [f32]| s.decode(b, &CTX, y).unwrap_err().code();
    let mut b = bytes.clone();
    b[0] = 32;
    assert_eq!(code(&b, &mut y), gradwire_codec::ErrorCode::CodecData, "Rice parameter");
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(code(&b, &mut y), gradwire_codec::ErrorCode::CodecOutputSize, "a trailing byte");
    assert_eq!(code(&bytes[..bytes.len() - 1], &mut y), gradwire_codec::ErrorCode::CodecData, "positions cut");
    assert_eq!(code(&bytes[..20], &mut y), gradwire_codec::ErrorCode::CodecOutputSize, "values cut");
    // Gaps that run past the chunk: ten gaps of 15 with parameter 4.
    let mut b = bytes[..41].to_vec();
    b[0] = 4;
    gradwire_codec::entropy::rice_encode(&[15; 10], 4, &mut b);
    assert_eq!(code(&b, &mut y), gradwire_codec::ErrorCode::CodecData, "position past the chunk");
    assert!(s.encode(&[1.0, f32::NAN], &CTX, &mut Vec::new()).is_err(), "non-finite input refused");
}
