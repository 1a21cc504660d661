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
    ChunkContext { tensor_name: "fc1.weight", tensor_id: 0, chunk_index: 0, element_offset: 0, seed: 0, side: None };

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

/// The `topk` stage of pipeline text `topk:TEXT`, parsed and built by the sparsify registry (the
/// core codecs are there for nested values pipelines), after a wire round trip of its parameters.
fn topk_stage(text: &str) -> Box<dyn gradwire_codec::ArrayToBytes> {
    let registry = crate::registry_with_sparsify();
    let stages = registry.parse_pipeline(&format!("topk:{text}")).expect("valid");
    let d = &stages[0];
    let limits = gradwire_codec::Limits::default();
    let params = crate::TopKParams::decode(d.version, &d.params, &limits).expect("decodes");
    assert_eq!(params.encode(), d.params);
    assert_eq!(registry.pipeline_to_text(&stages).expect("renders"), format!("topk:{text}"));
    match crate::TOPK_CODEC.build_in(d.version, &d.params, &registry, &limits).expect("builds") {
        Stage::ArrayToBytes(s) => s,
        _ => unreachable!("topk is array->bytes"),
    }
}

fn topk_round_trip(text: &str, x: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let s = topk_stage(text);
    let mut bytes = Vec::new();
    s.encode(x, &CTX, &mut bytes).expect("encode");
    assert!(bytes.len() <= s.max_encoded_len(x.len()).expect("bound"), "{text}: over the bound");
    let mut y = vec![0f32; x.len()];
    s.decode(&bytes, &CTX, &mut y).expect("decode");
    (bytes, y)
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

#[test]
fn topk_values_go_through_a_nested_pipeline() {
    let x: Vec<f32> = (0..1000).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 7.0).collect();
    let (plain, exact) = topk_round_trip("fraction=0.05", &x);
    // `(raw)` decodes to the same values as the built-in f32 mode, in as many bytes.
    let (nested, same) = topk_round_trip("fraction=0.05,values=(raw)", &x);
    assert_eq!(
        same.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        exact.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(nested.len(), plain.len());
    // f16 values then zstd: what f16 decodes to at the kept positions, zeros elsewhere.
    let (_, y) = topk_round_trip("fraction=0.05,values=(f16+zstd:level=3)", &x);
    let f16 = gradwire_codec::testing::array_to_bytes(&gradwire_codec::codecs::F16_CODEC, &[]);
    let (mut half, mut expected) = (Vec::new(), vec![0f32; exact.len()]);
    f16.encode(&exact, &CTX, &mut half).expect("f16 encodes");
    f16.decode(&half, &CTX, &mut expected).expect("f16 decodes");
    for (i, (&a, &b)) in expected.iter().zip(&y).enumerate() {
        assert_eq!(b.to_bits(), a.to_bits(), "value {i}: through f16 {a}, decoded {b}");
    }
    assert!(y.iter().zip(&x).filter(|(a, _)| **a != 0.0).all(|(a, b)| (a - b).abs() <= b.abs() / 1024.0));
}

#[test]
fn topk_refuses_bad_values_pipelines() {
    let registry = crate::registry_with_sparsify();
    for text in [
        "values=(topk)",
        "values=((raw))",
        "values=(zstd)",
        "values=(raw+raw)",
        "values=(nonesuch)",
        "values=raw",
        "values=(raw",
    ] {
        let e = registry.parse_pipeline(&format!("topk:{text}")).expect_err(text);
        assert_eq!(e.code(), gradwire_codec::ErrorCode::InvalidArgument, "{text}: {e}");
    }
    let limits = gradwire_codec::Limits::default();
    let nested = registry.parse_pipeline("topk:values=(bf16)").expect("valid").remove(0);
    assert_eq!(nested.version, 2, "values through a pipeline need version 2");
    let code = |version: u16, params: &[u8]| {
        crate::TOPK_CODEC.build_in(version, params, &registry, &limits).err().map(|e| e.code())
    };
    assert_eq!(code(1, &nested.params), Some(gradwire_codec::ErrorCode::InvalidParams), "mode 2 in version 1");
    assert_eq!(code(2, &nested.params), None);
    let plain = registry.parse_pipeline("topk:values=bf16").expect("valid").remove(0);
    assert_eq!(plain.version, 1, "f32 and bf16 values stay readable by version 1 decoders");
    let mut longer = plain.params.clone();
    longer.push(0);
    assert_eq!(code(2, &longer), Some(gradwire_codec::ErrorCode::InvalidParams), "a byte after mode 1");
    // A nested topk written by hand (the text form refuses it).
    let mut inner = nested.params.clone();
    inner.truncate(8);
    inner.extend_from_slice(&gradwire_codec::StageDescriptor::encode_list(std::slice::from_ref(&plain)));
    assert_eq!(code(2, &inner), Some(gradwire_codec::ErrorCode::InvalidParams), "topk inside topk");
    let mut cut = nested.params.clone();
    cut.pop();
    assert_eq!(code(2, &cut), Some(gradwire_codec::ErrorCode::InvalidParams), "nested entry cut short");
    let mut zstd_only = nested.params[..8].to_vec();
    zstd_only.extend_from_slice(&gradwire_codec::StageDescriptor::encode_list(
        &registry.parse_pipeline("zstd").expect("valid"),
    ));
    assert_eq!(code(2, &zstd_only), Some(gradwire_codec::ErrorCode::PipelineInvalid), "no array->bytes stage");
    let mut unknown = nested.params[..8].to_vec();
    unknown.extend_from_slice(&[1, 0x99, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(code(2, &unknown), Some(gradwire_codec::ErrorCode::UnsupportedCodec), "unknown nested codec");
}

#[test]
fn topk_refuses_damaged_nested_payloads() {
    let x: Vec<f32> = (0..100).map(|i| i as f32 - 50.5).collect();
    let s = topk_stage("fraction=0.1,values=(bf16)");
    let mut bytes = Vec::new();
    s.encode(&x, &CTX, &mut bytes).expect("encode");
    let mut y = vec![0f32; 100];
    let code = |b: &[u8], y: &mut [f32]| s.decode(b, &CTX, y).unwrap_err().code();
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(code(&b, &mut y), gradwire_codec::ErrorCode::CodecOutputSize, "a trailing byte");
    assert_eq!(code(&bytes[..bytes.len() - 1], &mut y), gradwire_codec::ErrorCode::CodecOutputSize, "values cut");
    assert_eq!(code(&bytes[..3], &mut y), gradwire_codec::ErrorCode::CodecData, "positions cut");
}
