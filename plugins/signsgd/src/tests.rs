#![allow(clippy::float_cmp, reason = "decoding is bit-exact by contract")]

use super::*;
use proptest::prelude::*;

use gradwire_codec::testing::CONTEXT as CTX;

fn stage(params: SignParams) -> Box<dyn ArrayToBytes> {
    gradwire_codec::testing::array_to_bytes(&SIGNSGD_CODEC, &params.encode())
}

fn scale() -> impl Strategy<Value = Scale> {
    prop_oneof![Just(Scale::None), Just(Scale::Mean), (1u32..8).prop_map(|k| Scale::Block(32 * k))]
}

/// The decode the spec describes, written plainly: sign from `x < 0`, scale = mean |x| of its run.
fn reference(values: &[f32], scale: Scale) -> Vec<f32> {
    let run = match scale {
        Scale::None | Scale::Mean => values.len().max(1),
        Scale::Block(b) => b as usize,
    };
    let mut out = Vec::new();
    for block in values.chunks(run) {
        let m = match scale {
            Scale::None => 1.0,
            _ => (block.iter().map(|x| f64::from(x.abs())).sum::<f64>() / block.len() as f64) as f32,
        };
        out.extend(block.iter().map(|&x| if x < 0.0 { -m } else { m }));
    }
    out
}

proptest! {
    #[test]
    fn round_trip_matches_reference(
        values in proptest::collection::vec(prop_oneof![-1e3f32..1e3, Just(0.0), Just(-0.0)], 0..700),
        scale in scale(),
        weight in -2.0f32..2.0,
    ) {
        let params = SignParams { scale };
        let s = stage(params);
        let mut bytes = Vec::new();
        s.encode(&values, &CTX, &mut bytes).unwrap();
        prop_assert_eq!(bytes.len(), s.max_encoded_len(values.len()).unwrap());
        prop_assert_eq!(bytes.len(), 4 * params.n_scales(values.len()) + values.len().div_ceil(8));
        let mut out = vec![f32::NAN; values.len()];
        s.decode(&bytes, &CTX, &mut out).unwrap();
        let expected = reference(&values, scale);
        for (i, (x, e)) in out.iter().zip(&expected).enumerate() {
            prop_assert_eq!(x.is_sign_negative(), values[i] < 0.0, "sign of value {}", i);
            prop_assert!((x - e).abs() <= 1e-5 * e.abs(), "value {}: {} vs {}", i, x, e);
        }
        // Aggregation capabilities agree with decoding.
        let mut acc = vec![1.0f32; values.len()];
        s.accumulate(&bytes, weight, &CTX, &mut acc).unwrap();
        for (a, x) in acc.iter().zip(&out) {
            prop_assert_eq!(*a, 1.0 + weight * x);
        }
        let mut plane = vec![0u8; values.len().div_ceil(8)];
        prop_assert!(s.sign_plane(&bytes, &CTX, values.len(), &mut plane).unwrap());
        let mut packed = vec![0u8; plane.len()];
        signs::pack(&values, &mut packed);
        prop_assert_eq!(plane, packed);
    }

    #[test]
    fn damaged_payloads_are_refused_not_misread(
        values in proptest::collection::vec(-1.0f32..1.0, 1..300),
        scale in scale(),
        flip in any::<usize>(),
        cut in any::<usize>(),
    ) {
        let s = stage(SignParams { scale });
        let mut bytes = Vec::new();
        s.encode(&values, &CTX, &mut bytes).unwrap();
        let mut out = vec![0f32; values.len()];
        let short = &bytes[..cut % bytes.len()];
        prop_assert_eq!(s.decode(short, &CTX, &mut out).unwrap_err().code(), ErrorCode::CodecOutputSize);
        let mut long = bytes.clone();
        long.push(0);
        prop_assert_eq!(s.decode(&long, &CTX, &mut out).unwrap_err().code(), ErrorCode::CodecOutputSize);
        // A flipped bit is refused (a scale made negative or non-finite, a padding bit) or
        // changes exactly what it encodes: one value's sign, or the magnitude of one run.
        let mut original = vec![0f32; values.len()];
        s.decode(&bytes, &CTX, &mut original).unwrap();
        let params = SignParams { scale };
        let scale_bits = 32 * params.n_scales(values.len());
        let mut flipped = bytes.clone();
        let bit = flip % (flipped.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        match s.decode(&flipped, &CTX, &mut out) {
            Err(e) => prop_assert!(matches!(e.code(), ErrorCode::CodecData | ErrorCode::ReservedNonzero), "{}", e),
            Ok(()) if bit >= scale_bits => {
                let i = bit - scale_bits;
                for (j, (a, b)) in original.iter().zip(&out).enumerate() {
                    let want = if j == i { -a } else { *a };
                    prop_assert_eq!(b.to_bits(), want.to_bits(), "value {} after flipping sign bit {}", j, i);
                }
            }
            Ok(()) => {
                let run = match scale { Scale::Block(b) => b as usize, _ => values.len() };
                let k = bit / 32;
                for (j, (a, b)) in original.iter().zip(&out).enumerate() {
                    prop_assert_eq!(a.to_bits() == b.to_bits(), j / run != k, "value {} after flipping scale {}", j, k);
                }
            }
        }
    }

    #[test]
    fn params_round_trip(scale in scale()) {
        let p = SignParams { scale };
        prop_assert_eq!(SignParams::decode(&p.encode()).unwrap(), p);
        let text = TextParams {
            pairs: p.to_text().split(',').map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            }).collect(),
        };
        prop_assert_eq!(SignParams::from_text(&text).unwrap(), p);
    }
}

#[test]
fn bad_payload_fields_have_their_codes() {
    let s = stage(SignParams { scale: Scale::Mean });
    let mut out = [0f32; 3];
    let negative_scale = [0, 0, 0x80, 0xBF, 0b0000_0010];
    assert_eq!(s.decode(&negative_scale, &CTX, &mut out).unwrap_err().code(), ErrorCode::CodecData);
    let infinite_scale = [0, 0, 0x80, 0x7F, 0b0000_0010];
    assert_eq!(s.decode(&infinite_scale, &CTX, &mut out).unwrap_err().code(), ErrorCode::CodecData);
    let padding = [0, 0, 0x80, 0x3F, 0b0000_1010];
    assert_eq!(s.decode(&padding, &CTX, &mut out).unwrap_err().code(), ErrorCode::ReservedNonzero);
    let good = [0, 0, 0x80, 0x3F, 0b0000_0010];
    s.decode(&good, &CTX, &mut out).unwrap();
    assert_eq!(out, [1.0, -1.0, 1.0]);
}

#[test]
fn empty_chunks_round_trip_in_every_mode() {
    for scale in [Scale::None, Scale::Mean, Scale::Block(32)] {
        let s = stage(SignParams { scale });
        let mut bytes = Vec::new();
        s.encode(&[], &CTX, &mut bytes).unwrap();
        assert!(bytes.is_empty());
        s.decode(&bytes, &CTX, &mut []).unwrap();
        s.accumulate(&bytes, 1.0, &CTX, &mut []).unwrap();
        assert!(s.sign_plane(&bytes, &CTX, 0, &mut []).unwrap());
    }
}

#[test]
fn a_zero_scale_counts_as_positive_and_tiny_means_are_not_zero() {
    // Valid but never written by a conforming encoder: scale 0 with sign bits set decodes to -0.0,
    // which is not < 0, so the sign plane handed to a majority vote is cleared.
    let s = stage(SignParams { scale: Scale::Mean });
    let mut out = [1f32; 3];
    s.decode(&[0, 0, 0, 0, 0b101], &CTX, &mut out).unwrap();
    assert_eq!(out.map(f32::to_bits), [0x8000_0000, 0, 0x8000_0000]);
    let mut plane = [0xFFu8];
    assert!(s.sign_plane(&[0, 0, 0, 0, 0b101], &CTX, 3, &mut plane).unwrap());
    assert_eq!(plane, [0]);
    // An encoder whose mean rounds to zero writes the smallest subnormal instead.
    let mut bytes = Vec::new();
    s.encode(&[-f32::from_bits(1), 0.0, 0.0, 0.0], &CTX, &mut bytes).unwrap();
    let mut out = [0f32; 4];
    s.decode(&bytes, &CTX, &mut out).unwrap();
    assert!(out[0] < 0.0 && out[1] > 0.0, "{out:?}");
}

#[test]
fn bad_params_have_their_codes() {
    let code = |b: &[u8]| SignParams::decode(b).unwrap_err().code();
    assert_eq!(code(&[0; 7]), ErrorCode::InvalidParams);
    assert_eq!(code(&[3, 0, 0, 0, 0, 0, 0, 0]), ErrorCode::InvalidParams);
    assert_eq!(code(&[0, 1, 0, 0, 0, 0, 0, 0]), ErrorCode::ReservedNonzero);
    assert_eq!(code(&[1, 0, 0, 0, 32, 0, 0, 0]), ErrorCode::InvalidParams);
    assert_eq!(code(&[2, 0, 0, 0, 33, 0, 0, 0]), ErrorCode::InvalidParams);
    assert_eq!(code(&[2, 0, 0, 0, 0, 0, 0, 0]), ErrorCode::InvalidParams);
    let registry = registry_with_signsgd();
    for bad in ["signsgd:scale=max", "signsgd:scale=mean,block=64", "signsgd:scale=block,block=48"] {
        assert_eq!(registry.parse_pipeline(bad).unwrap_err().code(), ErrorCode::InvalidArgument, "{bad}");
    }
    let stages = registry.parse_pipeline("signsgd:scale=block,block=64").unwrap();
    assert_eq!(registry.pipeline_to_text(&stages).unwrap(), "signsgd:scale=block,block=64");
}

#[test]
fn non_finite_input_is_refused_where_a_scale_needs_it() {
    let mut bytes = Vec::new();
    let err = stage(SignParams { scale: Scale::Mean }).encode(&[1.0, f32::INFINITY], &CTX, &mut bytes).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    // Without a scale there is nothing to poison: NaN is not negative, so it is +1.
    bytes.clear();
    stage(SignParams { scale: Scale::None }).encode(&[f32::NAN, f32::NEG_INFINITY], &CTX, &mut bytes).unwrap();
    assert_eq!(bytes, [0b10]);
}

#[test]
fn huge_finite_values_have_a_finite_scale() {
    let values = vec![f32::MAX; 300];
    let s = stage(SignParams { scale: Scale::Mean });
    let mut bytes = Vec::new();
    s.encode(&values, &CTX, &mut bytes).unwrap();
    let mut out = vec![0f32; 300];
    s.decode(&bytes, &CTX, &mut out).unwrap();
    assert!(out.iter().all(|&x| x == f32::MAX));
}
