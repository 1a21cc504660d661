//! Property tests of the container: random tensor sets, shapes, chunk sizes, pipelines and
//! interleavings of writes round-trip exactly (lossless codecs by bits; lossy codecs to the bits
//! of an independent reference conversion), identically whether read whole or a byte at a time,
//! with one thread or several, streaming or by random access.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

mod common;

use common::OneByte;
use gradwire::{
    Limits, Reader, ReaderOptions, Registry, SeekableReader, StreamHeader, TensorSpec, Writer, WriterOptions,
};
use proptest::prelude::*;

/// Round to nearest even of an f32 to binary16, written from `spec/CODECS.md` §2 (not from `half`).
fn reference_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xFF).cast_signed();
    let man = bits & 0x007F_FFFF;
    if exp == 0xFF {
        return if man == 0 { sign | 0x7C00 } else { sign | 0x7E00 | (man >> 13) as u16 };
    }
    if exp == 0 {
        return sign; // f32 zero or subnormal: below half the smallest f16 subnormal
    }
    let e = exp - 127; // value = 1.man * 2^e
    if e > 15 {
        return sign | 0x7C00;
    }
    // Integer significand q and the dropped bits, then round half to even. For normal results
    // q carries the biased exponent above its 10 mantissa bits, so a carry out of the mantissa
    // correctly bumps the exponent (up to infinity).
    let (q, rest, half) = if e >= -14 {
        ((((e + 15) as u32) << 10) | (man >> 13), man & 0x1FFF, 0x1000)
    } else {
        let shift = (-14 - e) as u32 + 13;
        if shift > 24 {
            return sign;
        }
        let full = man | 0x0080_0000;
        (full >> shift, full & ((1 << shift) - 1), 1 << (shift - 1))
    };
    let q = if rest > half || (rest == half && q & 1 == 1) { q + 1 } else { q };
    sign | q as u16
}

/// Round to nearest even of an f32 to bfloat16, from `spec/CODECS.md` §3.
fn reference_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let lower = bits & 0xFFFF;
    let mut upper = bits >> 16;
    if lower > 0x8000 || (lower == 0x8000 && (upper & 1) == 1) {
        upper += 1;
    }
    upper as u16
}

fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

fn check_half(spec: &str, reference: fn(f32) -> u16, widen: fn(u16) -> f32, values: &[f32]) {
    let registry = Registry::core();
    let mut w =
        Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default().chunk_elements(1000))
            .unwrap();
    w.write_tensor(TensorSpec::new("x", &[values.len() as u64], registry.parse_pipeline(spec).unwrap()), values)
        .unwrap();
    let bytes = w.finish().unwrap();
    let got = Reader::new(&bytes[..], &registry).read_all().unwrap();
    for (x, y) in values.iter().zip(&got.tensors[0].values) {
        let want = widen(reference(*x));
        assert_eq!(
            y.to_bits(),
            want.to_bits(),
            "{spec}: {x:e} (0x{:08x}) decoded to 0x{:08x}, reference 0x{:08x}",
            x.to_bits(),
            y.to_bits(),
            want.to_bits()
        );
    }
}

fn stride_sample() -> Vec<f32> {
    // Every 4093rd f32 bit pattern (a prime stride: every exponent, both signs, NaNs, subnormals)
    // plus every pattern around the rounding boundaries of the 16-bit formats near 1.0.
    let mut v: Vec<f32> = (0..=u32::MAX / 4093).map(|i| f32::from_bits(i * 4093)).collect();
    v.extend((0x3F80_0000u32..0x3F80_0000 + 0x20000).map(f32::from_bits));
    v.extend((0x3380_0000u32 - 0x100..0x3380_0000 + 0x100).map(f32::from_bits));
    v
}

#[test]
fn f16_matches_reference_on_a_million_bit_patterns() {
    check_half("f16", reference_f16, f16_to_f32, &stride_sample());
}

#[test]
fn bf16_matches_reference_on_a_million_bit_patterns() {
    check_half("bf16", reference_bf16, bf16_to_f32, &stride_sample());
}

#[derive(Debug, Clone)]
struct TensorCase {
    shape: Vec<u64>,
    values: Vec<f32>,
    pipeline: &'static str,
    chunk: Option<u64>,
}

const PIPELINES: &[&str] = &["raw", "raw+zstd:level=1", "f16", "bf16", "bf16+zstd", "f16+zstd:level=-1"];

fn tensor_case() -> impl Strategy<Value = TensorCase> {
    (prop::collection::vec(0u64..6, 0..4), prop::sample::select(PIPELINES), prop::option::of(1u64..40)).prop_flat_map(
        |(shape, pipeline, chunk)| {
            let n = shape.iter().product::<u64>() as usize;
            prop::collection::vec(any::<u32>().prop_map(f32::from_bits), n).prop_map(move |values| TensorCase {
                shape: shape.clone(),
                values,
                pipeline,
                chunk,
            })
        },
    )
}

/// The values a lossless or lossy pipeline must return, by the reference conversions.
fn expected_bits(case: &TensorCase) -> Vec<u32> {
    let first = case.pipeline.split('+').next().unwrap_or("raw");
    case.values
        .iter()
        .map(|&v| match first {
            "f16" => f16_to_f32(reference_f16(v)).to_bits(),
            "bf16" => bf16_to_f32(reference_bf16(v)).to_bits(),
            _ => v.to_bits(),
        })
        .collect()
}

/// Writes the tensors, splitting each into pieces and interleaving the pieces across tensors in
/// an order chosen by `schedule`.
fn write(registry: &Registry, cases: &[TensorCase], schedule: &[usize], threads: usize, index: bool) -> Vec<u8> {
    let options = WriterOptions::default().chunk_elements(7).threads(threads).write_index(index);
    let mut w =
        Writer::new(Vec::new(), registry, &StreamHeader { seed: 9, ..StreamHeader::default() }, options).unwrap();
    let ids: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let spec = TensorSpec {
                chunk_elements: c.chunk,
                ..TensorSpec::new(format!("t{i}"), &c.shape, registry.parse_pipeline(c.pipeline).unwrap())
            };
            w.begin_tensor(spec).unwrap()
        })
        .collect();
    let mut written = vec![0usize; cases.len()];
    for (step, &s) in schedule.iter().enumerate() {
        let i = s % cases.len();
        let take = (step % 5 + 1) * 3;
        let end = (written[i] + take).min(cases[i].values.len());
        w.write_values(ids[i], &cases[i].values[written[i]..end]).unwrap();
        written[i] = end;
    }
    for (i, c) in cases.iter().enumerate() {
        w.write_values(ids[i], &c.values[written[i]..]).unwrap();
        w.end_tensor(ids[i]).unwrap();
    }
    w.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_round_trip(cases in prop::collection::vec(tensor_case(), 1..5), schedule in prop::collection::vec(0usize..8, 0..30), index in any::<bool>()) {
        let registry = Registry::core();
        let bytes = write(&registry, &cases, &schedule, 1, index);
        prop_assert_eq!(&bytes, &write(&registry, &cases, &schedule, 2, index), "two encoding threads changed the bytes");
        let whole = Reader::new(&bytes[..], &registry).read_all().unwrap();
        let bytewise = Reader::new(OneByte::new(&bytes), &registry).read_all().unwrap();
        let parallel = Reader::with_options(&bytes[..], &registry, ReaderOptions::default().threads(2)).read_all().unwrap();
        prop_assert_eq!(whole.tensors.len(), cases.len());
        let mut seek = SeekableReader::open(std::io::Cursor::new(&bytes), &registry, Limits::default()).unwrap();
        for (i, case) in cases.iter().enumerate() {
            let want = expected_bits(case);
            for decoded in [&whole, &bytewise, &parallel] {
                let t = &decoded.tensors[i];
                prop_assert_eq!(&t.descriptor.shape, &case.shape);
                prop_assert_eq!(t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.clone());
            }
            let random_access = seek.read_tensor(i as u32).unwrap();
            prop_assert_eq!(random_access.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
        }
    }
}

#[test]
fn writer_rejects_misuse_with_invalid_argument() {
    use gradwire::ErrorCode::InvalidArgument;
    let registry = Registry::core();
    let raw = registry.parse_pipeline("raw").unwrap();
    let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
    let id = w.begin_tensor(TensorSpec::new("a", &[2], raw.clone())).unwrap();
    assert_eq!(w.begin_tensor(TensorSpec::new("a", &[2], raw.clone())).unwrap_err().code(), InvalidArgument);
    assert_eq!(w.write_values(id, &[1.0, 2.0, 3.0]).unwrap_err().code(), InvalidArgument);
    w.write_values(id, &[1.0]).unwrap();
    assert_eq!(w.end_tensor(id).unwrap_err().code(), InvalidArgument);
    assert_eq!(w.write_tensor(TensorSpec::new("b", &[3], raw), &[1.0]).unwrap_err().code(), InvalidArgument);
    let two = registry.parse_pipeline("raw+bf16").unwrap();
    assert_eq!(w.begin_tensor(TensorSpec::new("c", &[1], two)).unwrap_err().code(), InvalidArgument);
}

#[test]
fn tight_limits_refuse_before_allocating() {
    let registry = Registry::core();
    let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
    w.write_tensor(TensorSpec::new("big", &[1 << 16], registry.parse_pipeline("raw").unwrap()), &vec![0.5; 1 << 16])
        .unwrap();
    let bytes = w.finish().unwrap();
    let tight = Limits { max_record_body: 1 << 10, ..Limits::default() };
    let err =
        Reader::with_options(&bytes[..], &registry, ReaderOptions::default().limits(tight)).read_all().unwrap_err();
    assert_eq!(err.code(), gradwire::ErrorCode::LimitExceeded, "{err}");
    assert!(err.to_string().contains("limit is 1024"), "{err}");
}

#[test]
fn salvage_allocates_nothing_for_values_that_never_arrived() {
    // A tensor declaring 2^32 elements (16 GiB, within the default limits), one 4-value chunk,
    // then the stream is cut: no TENSOR_END, no END.
    let registry = Registry::core();
    let mut sink = Vec::new();
    {
        let options = WriterOptions::default().chunk_elements(4);
        let mut w = Writer::new(&mut sink, &registry, &StreamHeader::default(), options).unwrap();
        let id = w.begin_tensor(TensorSpec::new("huge", &[1 << 32], registry.parse_pipeline("raw").unwrap())).unwrap();
        w.write_values(id, &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    }
    let (decoded, err) = Reader::new(&sink[..], &registry).read_all_salvage();
    assert_eq!(err.unwrap().code(), gradwire::ErrorCode::Truncated);
    let t = &decoded.tensors[0];
    assert!(!t.complete);
    assert_eq!(t.values, vec![1.0, 2.0, 3.0, 4.0]);
    assert!(t.values.capacity() < 1 << 20, "nothing is allocated for the missing 2^32 values");
    assert_eq!(Reader::new(&sink[..], &registry).read_all().unwrap_err().code(), gradwire::ErrorCode::Truncated);
}
