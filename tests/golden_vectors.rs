//! Golden vectors (`spec/vectors/`): valid streams with their expected decoded content and
//! invalid streams with their expected error code, listed in `spec/vectors/manifest.json`.
//!
//! Policy (as pcodec's compatibility assets): a vector is written once per format version, by
//! running this test with `GRADWIRE_WRITE_VECTORS=1`, which writes only vectors that are missing
//! and never overwrites one. The test fails if the bytes of a listed vector change, if a vector
//! stops decoding to its expected result, or if a case below has no vector yet.
//!
//! Every valid vector also goes through every-prefix truncation and every-single-bit-flip sweeps:
//! each mutation must give a typed error, never a panic and never a successful decode.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

mod common;

use std::path::PathBuf;

use common::{OneByte, Rec, fix_header_crc, fix_preamble_crc, join, split};
use gradwire::conformance::{sha256_hex, summary};
use gradwire::format::{ChunkHeader, EndRecord, StageDescriptor, TensorDescriptor};
use gradwire::ids::{codec, record};
use gradwire::{
    DType, ErrorCode, Event, Limits, Metadata, Reader, Registry, SeekableReader, StreamHeader, TensorSpec, Value,
    Writer, WriterOptions,
};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/vectors")
}

struct Case {
    id: &'static str,
    description: &'static str,
    /// `ok`, or the expected error code.
    expect: &'static str,
    build: fn(&Registry) -> Vec<u8>,
}

fn opts() -> WriterOptions {
    WriterOptions::default().chunk_elements(4)
}

fn pipe(registry: &Registry, spec: &str) -> Vec<StageDescriptor> {
    registry.parse_pipeline(spec).unwrap()
}

fn one_tensor(registry: &Registry, spec: &str, shape: &[u64], values: &[f32], options: WriterOptions) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), options).unwrap();
    w.write_tensor(TensorSpec::new("t", shape, pipe(registry, spec)), values).unwrap();
    w.finish().unwrap()
}

/// Float values that exercise rounding and special cases.
fn specials() -> Vec<f32> {
    [
        0x0000_0000u32, // +0
        0x8000_0000,    // -0
        0x3F80_0000,    // 1
        0x3F80_8000,    // 1 + 2^-8: bf16 tie, rounds to even (down)
        0x3F81_8000,    // 1 + 3*2^-8: bf16 tie, rounds to even (up)
        0x3F80_1000,    // 1 + 2^-11: f16 tie, rounds to even (down)
        0x3F80_3000,    // 1 + 3*2^-11: f16 tie, rounds to even (up)
        0x7F7F_FFFF,    // f32::MAX: overflows both
        0x477F_F000,    // 65520: f16 rounds up to infinity
        0x477F_E000,    // 65504: f16 max
        0x3380_0000,    // 2^-24: smallest f16 subnormal
        0x3300_0000,    // 2^-25: f16 tie to zero
        0x0000_0001,    // smallest f32 subnormal
        0x7F80_0000,    // +inf
        0xFF80_0000,    // -inf
        0x7FC0_0000,    // quiet NaN
        0x7F80_0001,    // signalling NaN, low payload
        0xFFA0_2000,    // negative NaN with payload
        0xC2F6_E979,    // -123.456
        0x3DCC_CCCD,    // 0.1
    ]
    .into_iter()
    .map(f32::from_bits)
    .collect()
}

/// The small stream most invalid vectors are derived from: two tensors written interleaved,
/// 4-element chunks, raw, no index (so END can be recomputed after surgery).
fn base(registry: &Registry) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), opts().write_index(false)).unwrap();
    let a = w.begin_tensor(TensorSpec::new("a", &[10], pipe(registry, "raw"))).unwrap();
    let b = w.begin_tensor(TensorSpec::new("b", &[3, 3], pipe(registry, "raw"))).unwrap();
    let va: Vec<f32> = (0..10).map(|i| i as f32 * 0.5 - 2.0).collect();
    let vb: Vec<f32> = (0..9).map(|i| (i as f32).exp2() * 1e-3).collect();
    w.write_values(a, &va[..6]).unwrap();
    w.write_values(b, &vb[..5]).unwrap();
    w.write_values(a, &va[6..]).unwrap();
    w.end_tensor(a).unwrap();
    w.write_values(b, &vb[5..]).unwrap();
    w.end_tensor(b).unwrap();
    w.finish().unwrap()
}

/// Two tensors of 4-element chunks with an INDEX (the stream of `valid-raw-indexed-multichunk`).
fn indexed(registry: &Registry) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), opts()).unwrap();
    w.write_tensor(TensorSpec::new("x", &[9], pipe(registry, "raw")), &(0..9).map(|i| i as f32).collect::<Vec<_>>())
        .unwrap();
    w.write_tensor(TensorSpec::new("y", &[2, 2], pipe(registry, "raw")), &[0.25, 0.5, 0.75, 1.0]).unwrap();
    w.finish().unwrap()
}

fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let (_, recs) = split(bytes);
    let mut pos = 16;
    recs.iter()
        .map(|r| {
            let at = pos;
            pos += 32 + r.body.len() + (8 - r.body.len() % 8) % 8;
            at
        })
        .collect()
}

/// Applies `f` to the records of `bytes` and reassembles them with valid CRCs and END.
fn edit(bytes: &[u8], f: impl FnOnce(&mut Vec<Rec>)) -> Vec<u8> {
    let (pre, mut recs) = split(bytes);
    f(&mut recs);
    join(&pre, &recs, true)
}

fn first(recs: &mut [Rec], rtype: u16) -> &mut Rec {
    recs.iter_mut().find(|r| r.rtype == rtype).unwrap()
}

fn edit_descriptor(bytes: &[u8], f: impl FnOnce(&mut TensorDescriptor)) -> Vec<u8> {
    edit(bytes, |recs| {
        let r = first(recs, record::TENSOR_BEGIN);
        let mut d = TensorDescriptor::decode(&r.body, 0, &Limits::default()).unwrap();
        f(&mut d);
        r.body = d.encode();
    })
}

#[allow(clippy::too_many_lines, reason = "one entry per vector, a table")]
fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "valid-empty-stream",
            description: "a stream with no tensors",
            expect: "ok",
            build: |r| {
                Writer::new(Vec::new(), r, &StreamHeader::default(), WriterOptions::default())
                    .unwrap()
                    .finish()
                    .unwrap()
            },
        },
        Case {
            id: "valid-raw-one-chunk",
            description: "one 2x3 f32 tensor, raw, one chunk, with index",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "raw",
                    &[2, 3],
                    &[1.0, -0.0, f32::INFINITY, f32::from_bits(0x7FC0_1234), 1e-40, -3.5],
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-raw-interleaved-multichunk",
            description: "two tensors written interleaved, 4-element chunks, no index",
            expect: "ok",
            build: base,
        },
        Case {
            id: "valid-raw-indexed-multichunk",
            description: "two tensors, 4-element chunks, with index",
            expect: "ok",
            build: indexed,
        },
        Case {
            id: "valid-metadata-and-skippable",
            description: "FL metadata keys, a seed, a METADATA record and a private skippable record",
            expect: "ok",
            build: |r| {
                let mut m = Metadata::new();
                m.insert("fl.round", Value::U64(3)).unwrap();
                m.insert("fl.client_id", Value::Utf8("client-7".into())).unwrap();
                m.insert("fl.num_examples", Value::U64(640)).unwrap();
                m.insert("fl.payload_kind", Value::Utf8("gradient".into())).unwrap();
                m.insert("fl.base_model_digest", Value::Bytes(vec![0xAB; 8])).unwrap();
                m.insert("lr", Value::F64(0.1)).unwrap();
                m.insert("step", Value::I64(-1)).unwrap();
                let header = StreamHeader { seed: 42, metadata: m, ..StreamHeader::default() };
                let mut w = Writer::new(Vec::new(), r, &header, WriterOptions::default().write_index(false)).unwrap();
                let mut extra = Metadata::new();
                extra.insert("note", Value::Utf8("informational".into())).unwrap();
                w.write_metadata(&extra).unwrap();
                w.write_tensor(TensorSpec::new("g", &[3], pipe(r, "raw")), &[1.0, 2.0, 3.0]).unwrap();
                let bytes = w.finish().unwrap();
                edit(&bytes, |recs| recs.insert(2, Rec { rtype: 0xF123, body: b"private application data".to_vec() }))
            },
        },
        Case {
            id: "valid-f16-specials",
            description: "f16 rounding: ties to even, overflow, subnormals, NaN payloads",
            expect: "ok",
            build: |r| {
                let v = specials();
                one_tensor(r, "f16", &[v.len() as u64], &v, WriterOptions::default())
            },
        },
        Case {
            id: "valid-bf16-specials",
            description: "bf16 rounding: ties to even, overflow, subnormals, NaN payloads",
            expect: "ok",
            build: |r| {
                let v = specials();
                one_tensor(r, "bf16", &[v.len() as u64], &v, WriterOptions::default())
            },
        },
        Case {
            id: "valid-raw-zstd-multichunk",
            description: "raw+zstd:level=3, three chunks of 128",
            expect: "ok",
            build: |r| {
                let v: Vec<f32> = (0..300).map(|i| ((i as f32) * 0.05).sin() * 1e-2).collect();
                one_tensor(r, "raw+zstd:level=3", &[300], &v, WriterOptions::default().chunk_elements(128))
            },
        },
        Case {
            id: "valid-bf16-zstd",
            description: "bf16+zstd:level=1, two chunks",
            expect: "ok",
            build: |r| {
                let v: Vec<f32> = (0..200).map(|i| ((i % 17) as f32 - 8.0) * 1e-3).collect();
                one_tensor(r, "bf16+zstd:level=1", &[10, 20], &v, WriterOptions::default().chunk_elements(100))
            },
        },
        Case {
            id: "valid-decoded-crc",
            description: "bf16 with the per-chunk CRC of decoded values",
            expect: "ok",
            build: |r| {
                let v: Vec<f32> = (0..10).map(|i| i as f32 / 3.0).collect();
                one_tensor(r, "bf16", &[10], &v, opts().decoded_checksums(true))
            },
        },
        Case {
            id: "valid-scalar-and-empty",
            description: "a rank-0 tensor and a tensor with zero elements",
            expect: "ok",
            build: |r| {
                let mut w = Writer::new(Vec::new(), r, &StreamHeader::default(), WriterOptions::default()).unwrap();
                w.write_tensor(TensorSpec::new("scalar", &[], pipe(r, "raw")), &[7.5]).unwrap();
                w.write_tensor(
                    TensorSpec { dtype: DType::BF16, ..TensorSpec::new("empty", &[0, 5], pipe(r, "bf16")) },
                    &[],
                )
                .unwrap();
                w.finish().unwrap()
            },
        },
        Case {
            id: "valid-f16-nan-payloads",
            description: "f16 payloads with signalling and quiet NaNs of both signs decode exactly (no quiet bit added)",
            expect: "ok",
            build: |r| {
                let b = one_tensor(r, "f16", &[4], &[0.0; 4], WriterOptions::default().write_index(false));
                edit(&b, |recs| {
                    let c = first(recs, record::CHUNK);
                    c.body.truncate(24);
                    for h in [0x7C01u16, 0xFC01, 0x7D55, 0xFE00] {
                        c.body.extend_from_slice(&h.to_le_bytes());
                    }
                })
            },
        },
        Case {
            id: "valid-bf16-nan-payloads",
            description: "bf16 payloads with signalling and quiet NaNs of both signs decode exactly (bits << 16)",
            expect: "ok",
            build: |r| {
                let b = one_tensor(r, "bf16", &[4], &[0.0; 4], WriterOptions::default().write_index(false));
                edit(&b, |recs| {
                    let c = first(recs, record::CHUNK);
                    c.body.truncate(24);
                    for h in [0x7F81u16, 0xFF81, 0x7FAA, 0xFFC0] {
                        c.body.extend_from_slice(&h.to_le_bytes());
                    }
                })
            },
        },
        Case {
            id: "valid-zero-dim-after-large-dims",
            description: "dims [2^63, 2, 0]: any zero dimension makes the product 0, even after a partial product that overflows",
            expect: "ok",
            build: |r| {
                let mut w = Writer::new(Vec::new(), r, &StreamHeader::default(), WriterOptions::default()).unwrap();
                w.write_tensor(TensorSpec::new("z", &[1 << 63, 2, 0], pipe(r, "raw")), &[]).unwrap();
                w.finish().unwrap()
            },
        },
        Case {
            id: "invalid-short-not-gradwire",
            description: "five bytes of text",
            expect: "bad_magic",
            build: |_| b"hello".to_vec(),
        },
        Case {
            id: "invalid-short-preamble",
            description: "the first 10 bytes of a stream",
            expect: "truncated",
            build: |r| base(r)[..10].to_vec(),
        },
        Case {
            id: "invalid-sequence-before-length",
            description: "a wrong sequence number on a record that also declares a 1 TiB body: the sequence is checked first",
            expect: "sequence",
            build: |r| {
                let mut b = base(r);
                let off = record_offsets(&b)[3];
                b[off + 16] = 9;
                b[off + 8..off + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
                fix_header_crc(&mut b, off);
                b
            },
        },
        Case {
            id: "invalid-tensor-bytes-overflow",
            description: "n_elements 2^63, whose size in bytes overflows",
            expect: "limit_exceeded",
            build: |r| {
                edit_descriptor(&base(r), |d| {
                    d.shape = vec![1 << 63];
                    d.n_elements = 1 << 63;
                })
            },
        },
        Case {
            id: "invalid-decoded-crc-without-flag",
            description: "a nonzero decoded_crc32c in a tensor without DECODED_CRC, on a payload that is also too short: the reserved field is checked first",
            expect: "reserved_nonzero",
            build: |r| {
                edit(&base(r), |recs| {
                    let c = first(recs, record::CHUNK);
                    c.body[16] = 1;
                    c.body.truncate(c.body.len() - 4);
                })
            },
        },
        Case {
            id: "invalid-index-wrong-offsets",
            description: "an INDEX with the right tensor count but a wrong chunk offset",
            expect: "index_mismatch",
            build: |r| {
                let (pre, mut recs) = split(&indexed(r));
                let index = first(&mut recs, record::INDEX);
                let mut i = gradwire::format::Index::decode(&index.body, 0).unwrap();
                i.tensors[0].chunk_offsets[1] += 8;
                index.body = i.encode();
                join(&pre, &recs, false)
            },
        },
        Case {
            id: "invalid-second-index",
            description: "a correct INDEX followed by a copy of it",
            expect: "index_mismatch",
            build: |r| {
                let (pre, mut recs) = split(&indexed(r));
                let at = recs.iter().position(|x| x.rtype == record::INDEX).unwrap();
                let copy = recs[at].clone();
                recs.insert(at + 1, copy);
                join(&pre, &recs, false)
            },
        },
        Case {
            id: "invalid-bad-magic",
            description: "second magic byte changed",
            expect: "bad_magic",
            build: |r| {
                let mut b = base(r);
                b[1] = b'X';
                b
            },
        },
        Case {
            id: "invalid-checksum-preamble",
            description: "minor version changed without fixing the preamble CRC",
            expect: "checksum_preamble",
            build: |r| {
                let mut b = base(r);
                b[9] ^= 1;
                b
            },
        },
        Case {
            id: "invalid-unsupported-version",
            description: "format major 2",
            expect: "unsupported_version",
            build: |r| {
                let mut b = base(r);
                b[8] = 2;
                fix_preamble_crc(&mut b);
                b
            },
        },
        Case {
            id: "invalid-preamble-reserved",
            description: "nonzero reserved preamble byte",
            expect: "reserved_nonzero",
            build: |r| {
                let mut b = base(r);
                b[10] = 1;
                fix_preamble_crc(&mut b);
                b
            },
        },
        Case {
            id: "invalid-bad-sync",
            description: "first record marker damaged",
            expect: "bad_sync",
            build: |r| {
                let mut b = base(r);
                b[16] = 0;
                b
            },
        },
        Case {
            id: "invalid-checksum-header",
            description: "a record header bit flipped",
            expect: "checksum_header",
            build: |r| {
                let mut b = base(r);
                let off = record_offsets(&b)[1];
                b[off + 6] ^= 0x80;
                b
            },
        },
        Case {
            id: "invalid-checksum-body",
            description: "a chunk payload bit flipped",
            expect: "checksum_body",
            build: |r| {
                let mut b = base(r);
                let off = record_offsets(&b)[3];
                b[off + 32 + 30] ^= 0x01;
                b
            },
        },
        Case {
            id: "invalid-truncated",
            description: "the END record cut off",
            expect: "truncated",
            build: |r| {
                let mut b = base(r);
                b.truncate(b.len() - 10);
                b
            },
        },
        Case {
            id: "invalid-unknown-record",
            description: "a non-skippable record of undefined type 0x0123",
            expect: "unknown_record",
            build: |r| edit(&base(r), |recs| recs.insert(1, Rec { rtype: 0x0123, body: vec![] })),
        },
        Case {
            id: "invalid-sequence",
            description: "a record's sequence number skips ahead",
            expect: "sequence",
            build: |r| {
                let mut b = base(r);
                let off = record_offsets(&b)[2];
                b[off + 16] = 9;
                fix_header_crc(&mut b, off);
                b
            },
        },
        Case {
            id: "invalid-unsupported-feature",
            description: "required feature bit 0 set",
            expect: "unsupported_feature",
            build: |r| edit(&base(r), |recs| first(recs, record::STREAM_HEADER).body[0] = 1),
        },
        Case {
            id: "invalid-unsupported-codec",
            description: "a pipeline naming undefined core codec 0xFE",
            expect: "unsupported_codec",
            build: |r| edit_descriptor(&base(r), |d| d.pipeline[0].codec_id = 0xFE),
        },
        Case {
            id: "invalid-unsupported-codec-version",
            description: "raw codec version 9",
            expect: "unsupported_codec",
            build: |r| edit_descriptor(&base(r), |d| d.pipeline[0].version = 9),
        },
        Case {
            id: "invalid-unsupported-dtype",
            description: "dtype code 9",
            expect: "unsupported_dtype",
            build: |r| edit(&base(r), |recs| first(recs, record::TENSOR_BEGIN).body[4] = 9),
        },
        Case {
            id: "invalid-pipeline-two-array-to-bytes",
            description: "pipeline raw+raw",
            expect: "pipeline_invalid",
            build: |r| edit_descriptor(&base(r), |d| d.pipeline.push(d.pipeline[0].clone())),
        },
        Case {
            id: "invalid-pipeline-bytes-first",
            description: "pipeline zstd+raw",
            expect: "pipeline_invalid",
            build: |r| {
                edit_descriptor(&base(r), |d| {
                    d.pipeline.insert(
                        0,
                        StageDescriptor {
                            codec_id: codec::ZSTD,
                            version: 1,
                            params: 3i32.to_le_bytes().to_vec(),
                            private_name: None,
                        },
                    );
                })
            },
        },
        Case {
            id: "invalid-params",
            description: "raw stage with a parameter byte",
            expect: "invalid_params",
            build: |r| edit_descriptor(&base(r), |d| d.pipeline[0].params = vec![1]),
        },
        Case {
            id: "invalid-zstd-level",
            description: "zstd stage with level 99",
            expect: "invalid_params",
            build: |r| {
                let b = one_tensor(r, "raw+zstd", &[4], &[1.0; 4], WriterOptions::default().write_index(false));
                edit_descriptor(&b, |d| d.pipeline[1].params = 99i32.to_le_bytes().to_vec())
            },
        },
        Case {
            id: "invalid-body-len-over-limit",
            description: "a chunk record declaring a 1 TiB body",
            expect: "limit_exceeded",
            build: |r| {
                let mut b = base(r);
                let off = record_offsets(&b)[3];
                b[off + 8..off + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
                fix_header_crc(&mut b, off);
                b
            },
        },
        Case {
            id: "invalid-rank-over-limit",
            description: "a tensor of rank 40",
            expect: "limit_exceeded",
            build: |r| {
                edit_descriptor(&base(r), |d| {
                    d.shape = vec![1; 40];
                    d.shape[0] = 10;
                })
            },
        },
        Case {
            id: "invalid-shape-overflow",
            description: "dimensions whose product overflows u64",
            expect: "shape_overflow",
            build: |r| edit_descriptor(&base(r), |d| d.shape = vec![u64::MAX, 2]),
        },
        Case {
            id: "invalid-shape-mismatch",
            description: "n_elements disagrees with the dimensions",
            expect: "shape_overflow",
            build: |r| edit_descriptor(&base(r), |d| d.n_elements = 11),
        },
        Case {
            id: "invalid-duplicate-tensor",
            description: "two tensors named a",
            expect: "duplicate_tensor",
            build: |r| {
                edit(&base(r), |recs| {
                    let r2 = recs.iter_mut().filter(|x| x.rtype == record::TENSOR_BEGIN).nth(1).unwrap();
                    let mut d = TensorDescriptor::decode(&r2.body, 0, &Limits::default()).unwrap();
                    d.name = "a".into();
                    r2.body = d.encode();
                })
            },
        },
        Case {
            id: "invalid-unknown-tensor",
            description: "a chunk of tensor ID 7",
            expect: "unknown_tensor",
            build: |r| edit(&base(r), |recs| first(recs, record::CHUNK).body[0] = 7),
        },
        Case {
            id: "invalid-chunk-gap",
            description: "the first chunk of a tensor removed",
            expect: "chunk_order",
            build: |r| {
                edit(&base(r), |recs| {
                    let i = recs.iter().position(|x| x.rtype == record::CHUNK).unwrap();
                    recs.remove(i);
                })
            },
        },
        Case {
            id: "invalid-tensor-left-open",
            description: "a TENSOR_END removed",
            expect: "chunk_order",
            build: |r| {
                edit(&base(r), |recs| {
                    let i = recs.iter().position(|x| x.rtype == record::TENSOR_END).unwrap();
                    recs.remove(i);
                })
            },
        },
        Case {
            id: "invalid-end-mismatch",
            description: "END declares 5 tensors",
            expect: "index_mismatch",
            build: |r| {
                let (pre, mut recs) = split(&base(r));
                let end = first(&mut recs, record::END);
                let mut e = EndRecord::decode(&end.body, 0).unwrap();
                e.n_tensors = 5;
                end.body = e.encode();
                join(&pre, &recs, false)
            },
        },
        Case {
            id: "invalid-index-mismatch",
            description: "an INDEX that lists one tensor of two",
            expect: "index_mismatch",
            build: |r| {
                let (pre, mut recs) = split(&base(r));
                let end_at = recs.len() - 1;
                recs.insert(
                    end_at,
                    Rec {
                        rtype: record::INDEX,
                        body: gradwire::format::Index { tensors: vec![gradwire::format::IndexEntry::default()] }
                            .encode(),
                    },
                );
                join(&pre, &recs, false)
            },
        },
        Case {
            id: "invalid-codec-output-size",
            description: "a raw chunk payload 4 bytes short",
            expect: "codec_output_size",
            build: |r| {
                edit(&base(r), |recs| {
                    let c = first(recs, record::CHUNK);
                    c.body.truncate(c.body.len() - 4);
                })
            },
        },
        Case {
            id: "invalid-codec-data",
            description: "a zstd payload whose frame magic is damaged",
            expect: "codec_data",
            build: |r| {
                let b = one_tensor(r, "raw+zstd", &[4], &[1.0; 4], WriterOptions::default().write_index(false));
                edit(&b, |recs| first(recs, record::CHUNK).body[24] ^= 0xFF)
            },
        },
        Case {
            id: "invalid-checksum-decoded",
            description: "a wrong CRC of decoded values",
            expect: "checksum_decoded",
            build: |r| {
                let v: Vec<f32> = (0..10).map(|i| i as f32).collect();
                let b = one_tensor(r, "bf16", &[10], &v, opts().decoded_checksums(true).write_index(false));
                edit(&b, |recs| first(recs, record::CHUNK).body[16] ^= 1)
            },
        },
        Case {
            id: "invalid-malformed-name",
            description: "a tensor name that is not UTF-8",
            expect: "malformed",
            build: |r| {
                edit(&base(r), |recs| {
                    let t = first(recs, record::TENSOR_BEGIN);
                    let n = t.body.len();
                    t.body[n - 9] = 0xFF; // the one-byte name sits before the 8-byte raw stage
                })
            },
        },
        Case {
            id: "invalid-malformed-first-record",
            description: "a stream whose first record is a TENSOR_END",
            expect: "malformed",
            build: |r| edit(&base(r), |recs| recs.insert(0, Rec { rtype: record::TENSOR_END, body: vec![0; 16] })),
        },
        Case {
            id: "invalid-nonzero-padding",
            description: "a nonzero byte in the padding after TENSOR_BEGIN",
            expect: "nonzero_padding",
            build: |r| {
                let mut b = base(r);
                let off = record_offsets(&b)[1];
                let (_, recs) = split(&b);
                let len = recs[1].body.len();
                assert_ne!(len % 8, 0, "the descriptor body must need padding");
                b[off + 32 + len] = 1;
                b
            },
        },
        Case {
            id: "invalid-chunk-reserved",
            description: "nonzero chunk_flags",
            expect: "reserved_nonzero",
            build: |r| edit(&base(r), |recs| first(recs, record::CHUNK).body[4] = 1),
        },
        // signsgd (CODECS.md §5)
        Case {
            id: "valid-signsgd-none",
            description: "signsgd scale=none: 75 values in chunks of 40 and 35 (zeros, -0, NaN, tiny and huge values)",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "signsgd:scale=none",
                    &[3, 25],
                    &signed_values(),
                    WriterOptions::default().chunk_elements(40),
                )
            },
        },
        Case {
            id: "valid-signsgd-mean",
            description: "signsgd scale=mean: one mean |x| per chunk, chunks of 40 and 35",
            expect: "ok",
            build: |r| {
                one_tensor(r, "signsgd", &[75], &finite_signed_values(), WriterOptions::default().chunk_elements(40))
            },
        },
        Case {
            id: "valid-signsgd-block",
            description: "signsgd scale=block,block=32: 75 values in one chunk, scales over 32, 32 and 11 values",
            expect: "ok",
            build: |r| {
                one_tensor(r, "signsgd:scale=block,block=32", &[75], &finite_signed_values(), WriterOptions::default())
            },
        },
        Case {
            id: "invalid-signsgd-params-reserved",
            description: "signsgd parameter byte 1 (reserved) is 1",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&signsgd_mean(r), |d| d.pipeline[0].params[1] = 1),
        },
        Case {
            id: "invalid-signsgd-params-mode",
            description: "signsgd scale mode 3",
            expect: "invalid_params",
            build: |r| edit_descriptor(&signsgd_mean(r), |d| d.pipeline[0].params[0] = 3),
        },
        Case {
            id: "invalid-signsgd-params-block",
            description: "signsgd scale=block with block 48 (not a multiple of 32)",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&signsgd_mean(r), |d| {
                    d.pipeline[0].params[0] = 2;
                    d.pipeline[0].params[4] = 48;
                })
            },
        },
        Case {
            id: "invalid-signsgd-negative-scale",
            description: "signsgd mean scale with its sign bit set",
            expect: "codec_data",
            build: |r| edit(&signsgd_mean(r), |recs| first(recs, record::CHUNK).body[24 + 3] |= 0x80),
        },
        Case {
            id: "invalid-signsgd-infinite-scale",
            description: "signsgd mean scale +inf",
            expect: "codec_data",
            build: |r| {
                edit(&signsgd_mean(r), |recs| {
                    first(recs, record::CHUNK).body[24..28].copy_from_slice(&f32::INFINITY.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-signsgd-padding",
            description: "signsgd padding bit set after the 35th value",
            expect: "reserved_nonzero",
            build: |r| edit(&signsgd_mean(r), |recs| *first(recs, record::CHUNK).body.last_mut().unwrap() |= 0x80),
        },
        Case {
            id: "invalid-signsgd-payload-size",
            description: "signsgd payload one byte short",
            expect: "codec_output_size",
            build: |r| {
                edit(&signsgd_mean(r), |recs| {
                    first(recs, record::CHUNK).body.pop();
                })
            },
        },
        Case {
            id: "valid-signsgd-huge-block",
            description: "signsgd scale=block,block=1073741824 (the largest block) over 5 values: one scale",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "signsgd:scale=block,block=1073741824",
                    &[5],
                    &[1.0, -2.0, 0.0, -0.5, 4.0],
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-signsgd-zero-scale",
            description: "signsgd mean scale 0 with sign bits set: valid, decodes to -0.0 and +0.0",
            expect: "ok",
            build: |r| edit(&signsgd_mean(r), |recs| first(recs, record::CHUNK).body[24..28].copy_from_slice(&[0; 4])),
        },
        Case {
            id: "invalid-signsgd-nan-scale",
            description: "signsgd mean scale is a quiet NaN",
            expect: "codec_data",
            build: |r| {
                edit(&signsgd_mean(r), |recs| {
                    first(recs, record::CHUNK).body[24..28].copy_from_slice(&0x7FC0_0000u32.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-signsgd-params-length",
            description: "signsgd parameter block of 7 bytes",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&signsgd_mean(r), |d| {
                    d.pipeline[0].params.pop();
                })
            },
        },
        Case {
            id: "invalid-signsgd-params-block-zero",
            description: "signsgd scale mode 2 with block 0",
            expect: "invalid_params",
            build: |r| edit_descriptor(&signsgd_mean(r), |d| d.pipeline[0].params[0] = 2),
        },
        Case {
            id: "invalid-signsgd-params-block-too-large",
            description: "signsgd scale mode 2 with block 2^30 + 32",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&signsgd_mean(r), |d| {
                    d.pipeline[0].params[0] = 2;
                    d.pipeline[0].params[4..8].copy_from_slice(&((1u32 << 30) + 32).to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-signsgd-params-mean-with-block",
            description: "signsgd scale mode 1 (mean) with block 32",
            expect: "invalid_params",
            build: |r| edit_descriptor(&signsgd_mean(r), |d| d.pipeline[0].params[4] = 32),
        },
        Case {
            id: "invalid-signsgd-order-reserved-before-mode",
            description: "signsgd reserved parameter byte set and mode 3: the reserved bytes are checked first",
            expect: "reserved_nonzero",
            build: |r| {
                edit_descriptor(&signsgd_mean(r), |d| {
                    d.pipeline[0].params[0] = 3;
                    d.pipeline[0].params[2] = 1;
                })
            },
        },
        Case {
            id: "invalid-signsgd-order-size-before-scale",
            description: "signsgd payload one byte short and its scale negative: the size is checked first",
            expect: "codec_output_size",
            build: |r| {
                edit(&signsgd_mean(r), |recs| {
                    let c = first(recs, record::CHUNK);
                    c.body[24 + 3] |= 0x80;
                    c.body.pop();
                })
            },
        },
        Case {
            id: "invalid-signsgd-order-scale-before-padding",
            description: "signsgd scale negative and a padding bit set: the scale is checked first",
            expect: "codec_data",
            build: |r| {
                edit(&signsgd_mean(r), |recs| {
                    let c = first(recs, record::CHUNK);
                    c.body[24 + 3] |= 0x80;
                    *c.body.last_mut().unwrap() |= 0x80;
                })
            },
        },
        // m22 (CODECS.md §6)
        Case {
            id: "valid-m22-huffman",
            description: "m22:bits=3 on 600 Laplace-like values with 20 % exact zeros (zero symbol, Huffman labels)",
            expect: "ok",
            build: |r| one_tensor(r, "m22:bits=3", &[600], &m22_values(600, 5), WriterOptions::default()),
        },
        Case {
            id: "valid-m22-weibull-fixed",
            description: "m22:bits=1,m=2,family=weibull on 301 values in chunks of 150 (fixed-width labels) and a last chunk of 1",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "m22:bits=1,m=2,family=weibull",
                    &[301],
                    &m22_values(301, 0),
                    WriterOptions::default().chunk_elements(150),
                )
            },
        },
        Case {
            id: "valid-m22-pairs",
            description: "m22:bits=2 on 4001 values without zeros (labels Huffman-coded in pairs, odd last pair)",
            expect: "ok",
            build: |r| one_tensor(r, "m22:bits=2", &[4001], &m22_values(4001, 0), WriterOptions::default()),
        },
        Case {
            id: "valid-m22-fixed-and-constant",
            description: "m22:bits=2: a chunk of 3 distinct values and a chunk of one constant value",
            expect: "ok",
            build: |r| {
                let mut v = vec![0.5f32, -0.25, 0.125, 0.5];
                v.extend([0.75f32; 4]);
                one_tensor(r, "m22:bits=2", &[8], &v, WriterOptions::default().chunk_elements(4))
            },
        },
        Case {
            id: "valid-m22-bits8",
            description: "m22:bits=8,m=1 on 2000 values (256 points, no zero symbol)",
            expect: "ok",
            build: |r| one_tensor(r, "m22:bits=8,m=1", &[2000], &m22_values(2000, 0), WriterOptions::default()),
        },
        Case {
            id: "valid-m22-error-target",
            description: "m22:mse=2e-7 (8-byte parameters): chunks of 500 Laplace-like values, each with the fewest bits that meet the target",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "m22:mse=2e-7",
                    &[1500],
                    &m22_values(1500, 5),
                    WriterOptions::default().chunk_elements(500),
                )
            },
        },
        Case {
            id: "valid-m22-step-runs",
            description: "m22:step=6e-3 (version 2, 12-byte parameters) on 3000 values: most in the zero cell, labels in coding 4 (runs)",
            expect: "ok",
            build: |r| {
                let b = m22_step_runs(r);
                let _ = edit(&b, |recs| assert_eq!(first(recs, record::CHUNK).body[24], 4, "coding 4"));
                b
            },
        },
        Case {
            id: "valid-m22-step-merged",
            description: "m22:bits=3,step=1e-4 on 1000 values: more cells occupied than 8 points, adjacent cells merged",
            expect: "ok",
            build: |r| one_tensor(r, "m22:bits=3,step=1e-4", &[1000], &m22_values(1000, 0), WriterOptions::default()),
        },
        Case {
            id: "valid-m22-entropy",
            description: "m22:entropy=1.5,m=1 on 2000 values in chunks of 700: each chunk's width fits 1.5 bits per entry of labels",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "m22:entropy=1.5,m=1",
                    &[2000],
                    &m22_values(2000, 4),
                    WriterOptions::default().chunk_elements(700),
                )
            },
        },
        Case {
            id: "invalid-m22-params-12-in-version-1",
            description: "m22 12-byte parameters in a stage that declares codec version 1",
            expect: "invalid_params",
            build: |r| edit_descriptor(&m22_step_runs(r), |d| d.pipeline[0].version = 1),
        },
        Case {
            id: "invalid-m22-params-mode",
            description: "m22 12-byte parameters with mode 3",
            expect: "invalid_params",
            build: |r| edit_descriptor(&m22_step_runs(r), |d| d.pipeline[0].params[4] = 3),
        },
        Case {
            id: "invalid-m22-params-reserved-mode-bytes",
            description: "m22 12-byte parameters with reserved byte 6 set",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&m22_step_runs(r), |d| d.pipeline[0].params[6] = 1),
        },
        Case {
            id: "invalid-m22-runs-symbol",
            description: "m22 coding 4 whose run symbol is not below the number of symbols",
            expect: "codec_data",
            build: |r| {
                edit(&m22_step_runs(r), |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    let p = usize::from(u16::from_le_bytes([c[26], c[27]]));
                    c[24 + 16 + 4 * p] = p as u8;
                })
            },
        },
        Case {
            id: "invalid-m22-runs-count",
            description: "m22 coding 4 declaring more coded symbols than the chunk has values",
            expect: "codec_data",
            build: |r| {
                edit(&m22_step_runs(r), |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    let p = usize::from(u16::from_le_bytes([c[26], c[27]]));
                    let at = 24 + 16 + 4 * p + 1;
                    c[at..at + 4].copy_from_slice(&3001u32.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-m22-runs-overflow",
            description: "m22 coding 4 whose run digits RUNB RUNB RUNB (a run of 14) expand beyond the chunk of 4 values",
            expect: "codec_data",
            build: |r| with_m22_payload(r, 4, &m22_runs_payload(&[0.0, 1.0], 0, &[1, 2, 2], &[1, 1, 1])),
        },
        Case {
            id: "invalid-m22-runs-short",
            description: "m22 coding 4 whose one digit RUNA (a run of 1) gives 1 value for a chunk of 4",
            expect: "codec_data",
            build: |r| with_m22_payload(r, 4, &m22_runs_payload(&[0.0, 1.0], 0, &[1, 2, 2], &[0])),
        },
        Case {
            id: "invalid-m22-runs-digits",
            description: "m22 coding 4 with a run of 33 digits (at most 32) in a chunk of 40 values",
            expect: "codec_data",
            build: |r| with_m22_payload(r, 40, &m22_runs_payload(&[0.0, 1.0], 0, &[1, 2, 2], &[0; 33])),
        },
        Case {
            id: "invalid-m22-coding-5",
            description: "m22 label coding 5 in a version 2 stage (codings 0..=4)",
            expect: "codec_data",
            build: |r| edit(&m22_step_runs(r), |recs| first(recs, record::CHUNK).body[24] = 5),
        },
        Case {
            id: "invalid-m22-runs-256-symbols",
            description: "m22 coding 4 with 256 points in a chunk of 200 values (the run coding allows at most 255 symbols)",
            expect: "codec_data",
            build: |r| {
                let points: Vec<f32> = (0u16..256).map(f32::from).collect();
                // 200 values: the payload (points and 257 code lengths) stays within the bound.
                with_m22_payload(r, 200, &m22_runs_payload(&points, 0, &[1, 2, 2], &[0]))
            },
        },
        Case {
            id: "invalid-m22-params-target",
            description: "m22 8-byte parameters with a NaN error target",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&m22_small(r), |d| d.pipeline[0].params.extend_from_slice(&f32::NAN.to_le_bytes()))
            },
        },
        Case {
            id: "invalid-m22-huffman-trailing-byte",
            description: "m22 Huffman labels followed by one extra zero byte (checked before the padding bits)",
            expect: "codec_data",
            build: |r| edit(&m22_small(r), |recs| first(recs, record::CHUNK).body.push(0)),
        },
        Case {
            id: "invalid-m22-fixed-label",
            description: "m22 fixed-width labels equal to 3 with only 3 symbols",
            expect: "codec_data",
            build: |r| {
                let b = one_tensor(
                    r,
                    "m22:bits=2",
                    &[4],
                    &[0.5, -0.25, 0.125, 0.5],
                    WriterOptions::default().write_index(false),
                );
                edit(&b, |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    assert_eq!(c[24], 0, "fixed-width coding");
                    *c.last_mut().unwrap() = 0xFF;
                })
            },
        },
        Case {
            id: "invalid-m22-constant-symbol",
            description: "m22 constant coding with symbol 200 and one point",
            expect: "codec_data",
            build: |r| {
                let b = one_tensor(r, "m22:bits=2", &[4], &[0.75; 4], WriterOptions::default().write_index(false));
                edit(&b, |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    assert_eq!(c[24], 3, "constant coding");
                    *c.last_mut().unwrap() = 200;
                })
            },
        },
        Case {
            id: "invalid-m22-zero-flag-256-points",
            description: "m22:bits=8 chunk of 256 points with the zero flag set",
            expect: "codec_data",
            build: |r| {
                let b = one_tensor(
                    r,
                    "m22:bits=8,m=1",
                    &[2000],
                    &m22_values(2000, 0),
                    WriterOptions::default().write_index(false),
                );
                edit(&b, |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    assert_eq!(u16::from_le_bytes([c[26], c[27]]), 256, "256 points");
                    c[25] |= 1;
                })
            },
        },
        Case {
            id: "invalid-m22-params-reserved",
            description: "m22 reserved parameter byte set",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&m22_small(r), |d| d.pipeline[0].params[3] = 1),
        },
        Case {
            id: "invalid-m22-params-bits",
            description: "m22 bits 9",
            expect: "invalid_params",
            build: |r| edit_descriptor(&m22_small(r), |d| d.pipeline[0].params[0] = 9),
        },
        Case {
            id: "invalid-m22-coding",
            description: "m22 label coding 4",
            expect: "codec_data",
            build: |r| edit(&m22_small(r), |recs| first(recs, record::CHUNK).body[24] = 4),
        },
        Case {
            id: "invalid-m22-flags",
            description: "m22 reserved flag bit 1 set",
            expect: "reserved_nonzero",
            build: |r| edit(&m22_small(r), |recs| first(recs, record::CHUNK).body[25] |= 2),
        },
        Case {
            id: "invalid-m22-too-many-points",
            description: "m22:bits=3 chunk declaring 9 points",
            expect: "codec_data",
            build: |r| edit(&m22_small(r), |recs| first(recs, record::CHUNK).body[26] = 9),
        },
        Case {
            id: "invalid-m22-points-order",
            description: "m22 points not ascending (the first two swapped)",
            expect: "codec_data",
            build: |r| {
                edit(&m22_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    let (p0, p1) = (24 + 16, 24 + 20);
                    for i in 0..4 {
                        b.swap(p0 + i, p1 + i);
                    }
                })
            },
        },
        Case {
            id: "invalid-m22-nan-point",
            description: "m22 point 0 is NaN",
            expect: "codec_data",
            build: |r| {
                edit(&m22_small(r), |recs| {
                    first(recs, record::CHUNK).body[24 + 16..24 + 20].copy_from_slice(&f32::NAN.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-m22-huffman-lengths",
            description: "m22 Huffman code lengths that are not a complete code",
            expect: "codec_data",
            build: |r| {
                edit(&m22_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    assert_eq!(b[24], 1, "the chunk must use Huffman coding");
                    let points = usize::from(u16::from_le_bytes([b[26], b[27]]));
                    b[24 + 16 + 4 * points] = 0x11; // two codes of length 1 for symbols 0 and 1
                    b[24 + 16 + 4 * points + 1] = 0x11;
                })
            },
        },
        Case {
            id: "invalid-m22-truncated-labels",
            description: "m22 Huffman labels one byte short",
            expect: "codec_data",
            build: |r| {
                edit(&m22_small(r), |recs| {
                    first(recs, record::CHUNK).body.pop();
                })
            },
        },
        // intrinsic (CODECS.md §7)
        Case {
            id: "valid-intrinsic-srht",
            description: "intrinsic srht dim=100 seed=42 + raw: 200 values in chunks of 150 (blocks 128 and a tail of 22 padded to 32) and 50 (a tail padded to 64)",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "intrinsic:dim=100,seed=42+raw",
                    &[200],
                    &m22_values(200, 5),
                    WriterOptions::default().chunk_elements(150),
                )
            },
        },
        Case {
            id: "valid-intrinsic-srht-unbiased-round",
            description: "intrinsic srht dim=40, unbiased scaling, schedule=round (round 7) + bf16: 300 values (blocks 256, tail 44 padded to 64)",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "intrinsic:dim=40,scaling=unbiased,seed=3,schedule=round,round=7+bf16",
                    &[3, 100],
                    &m22_values(300, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-intrinsic-rademacher",
            description: "intrinsic rademacher dim=10 seed=5 + raw: 75 values in one chunk",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "intrinsic:dim=10,family=rademacher,seed=5+raw",
                    &[75],
                    &m22_values(75, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-intrinsic-sparse-group",
            description: "intrinsic sparse nonzeros=3, unbiased, schedule=group (4 groups, round 6) + raw + zstd: 90 values in chunks of 64 and 26",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "intrinsic:dim=12,family=sparse,nonzeros=3,scaling=unbiased,seed=9,schedule=group,groups=4,round=6+raw+zstd:level=1",
                    &[90],
                    &m22_values(90, 0),
                    WriterOptions::default().chunk_elements(64),
                )
            },
        },
        Case {
            id: "valid-intrinsic-block-without-coefficients",
            description: "intrinsic srht dim=1, unbiased + raw: 65 values, the block of 64 gets no coefficient and decodes to zeros, the tail of 1 keeps its value",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "intrinsic:dim=1,scaling=unbiased,seed=2+raw",
                    &[65],
                    &m22_values(65, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-intrinsic-nonfinite-coefficients",
            description: "intrinsic rademacher dim=4 + raw on 10 values whose coefficients were replaced by +inf, -inf, 1 and 3e38: each value is +-inf or, where the infinities cancel, NaN, which decodes as 0x7FC00000",
            expect: "ok",
            build: |r| {
                let b = one_tensor(
                    r,
                    "intrinsic:dim=4,family=rademacher,seed=1+raw",
                    &[10],
                    &m22_values(10, 0),
                    WriterOptions::default().write_index(false),
                );
                edit(&b, |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    for (i, v) in [0x7F80_0000u32, 0xFF80_0000, 0x3F80_0000, 3e38f32.to_bits()].iter().enumerate() {
                        c[24 + 4 * i..28 + 4 * i].copy_from_slice(&v.to_le_bytes());
                    }
                })
            },
        },
        Case {
            id: "valid-intrinsic-srht-nonfinite-coefficients",
            description: "intrinsic srht dim=4 + raw on 8 values whose coefficients were replaced by 3e38, 3e38, -3e38 and a negative NaN with a payload in a second chunk: sums overflow to infinities that cancel into NaN, and every NaN decodes as 0x7FC00000",
            expect: "ok",
            build: |r| {
                let b = one_tensor(
                    r,
                    "intrinsic:dim=4,seed=1+raw",
                    &[16],
                    &m22_values(16, 0),
                    WriterOptions::default().chunk_elements(8).write_index(false),
                );
                edit(&b, |recs| {
                    let mut chunks = recs.iter_mut().filter(|r| r.rtype == record::CHUNK);
                    let c = &mut chunks.next().unwrap().body;
                    for (i, v) in [3e38f32, 3e38, -3e38].iter().enumerate() {
                        c[24 + 4 * i..28 + 4 * i].copy_from_slice(&v.to_le_bytes());
                    }
                    let c = &mut chunks.next().unwrap().body;
                    c[24..28].copy_from_slice(&0xFFC0_0001u32.to_le_bytes());
                })
            },
        },
        // randk (CODECS.md §8)
        Case {
            id: "valid-randk",
            description: "randk fraction=0.1 seed=3 + raw: 200 values in chunks of 150 (15 kept) and 50 (5 kept)",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "randk:fraction=0.1,seed=3+raw",
                    &[200],
                    &m22_values(200, 0),
                    WriterOptions::default().chunk_elements(150),
                )
            },
        },
        Case {
            id: "valid-randk-unbiased-bf16",
            description: "randk fraction=0.3, unbiased (times n/k = 90/27) + bf16: 90 values",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "randk:fraction=0.3,scaling=unbiased,seed=8+bf16",
                    &[9, 10],
                    &m22_values(90, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-randk-nonfinite",
            description: "randk fraction=0.5, unbiased + raw on 6 values whose kept values were replaced by +inf, a NaN with a payload and 3e38: times 2 gives +inf, 0x7FC00000 and +inf",
            expect: "ok",
            build: |r| {
                let b = one_tensor(
                    r,
                    "randk:fraction=0.5,scaling=unbiased,seed=1+raw",
                    &[6],
                    &m22_values(6, 0),
                    WriterOptions::default().write_index(false),
                );
                edit(&b, |recs| {
                    let c = &mut first(recs, record::CHUNK).body;
                    for (i, v) in [0x7F80_0000u32, 0xFFC0_0001, 3e38f32.to_bits()].iter().enumerate() {
                        c[24 + 4 * i..28 + 4 * i].copy_from_slice(&v.to_le_bytes());
                    }
                })
            },
        },
        Case {
            id: "valid-randk-tie",
            description: "randk fraction=0.5 + raw on 7 values: 3.5 rounds half up, 4 kept",
            expect: "ok",
            build: |r| {
                one_tensor(r, "randk:fraction=0.5,seed=2+raw", &[7], &m22_values(7, 0), WriterOptions::default())
            },
        },
        Case {
            id: "invalid-randk-params-reserved",
            description: "randk parameter byte 5 (reserved) is 1",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&randk_small(r), |d| d.pipeline[0].params[5] = 1),
        },
        Case {
            id: "invalid-randk-params-length",
            description: "randk parameter block of 15 bytes",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&randk_small(r), |d| {
                    d.pipeline[0].params.pop();
                })
            },
        },
        Case {
            id: "invalid-randk-params-fraction-zero",
            description: "randk fraction 0",
            expect: "invalid_params",
            build: |r| edit_descriptor(&randk_small(r), |d| d.pipeline[0].params[..4].fill(0)),
        },
        Case {
            id: "invalid-randk-params-scaling",
            description: "randk scaling 2",
            expect: "invalid_params",
            build: |r| edit_descriptor(&randk_small(r), |d| d.pipeline[0].params[4] = 2),
        },
        Case {
            id: "invalid-randk-values-short",
            description: "randk + raw chunk one kept value short",
            expect: "codec_output_size",
            build: |r| {
                edit(&randk_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    b.truncate(b.len() - 4);
                })
            },
        },
        // topk (CODECS.md §9)
        Case {
            id: "valid-topk",
            description: "topk fraction=0.05: 300 values in chunks of 200 (10 kept) and 100 (5 kept), f32 values, Rice-coded gaps",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "topk:fraction=0.05",
                    &[300],
                    &m22_values(300, 0),
                    WriterOptions::default().chunk_elements(200),
                )
            },
        },
        Case {
            id: "valid-topk-bf16",
            description: "topk fraction=0.25, bf16 values: 64 values, 16 kept",
            expect: "ok",
            build: |r| {
                one_tensor(r, "topk:fraction=0.25,values=bf16", &[8, 8], &m22_values(64, 0), WriterOptions::default())
            },
        },
        Case {
            id: "valid-topk-values-f16-zstd",
            description: "topk fraction=0.3, values through the nested pipeline f16+zstd:level=3 (topk version 2): 200 values, 60 kept",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "topk:fraction=0.3,values=(f16+zstd:level=3)",
                    &[200],
                    &m22_values(200, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-topk-values-m22",
            description: "topk fraction=0.25, values through m22:bits=3: 400 values in chunks of 300 (75 kept) and 100 (25 kept)",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "topk:fraction=0.25,values=(m22:bits=3)",
                    &[400],
                    &m22_values(400, 0),
                    WriterOptions::default().chunk_elements(300),
                )
            },
        },
        Case {
            id: "invalid-topk-values-in-version-1",
            description: "topk values mode 2 (a nested pipeline) recorded as codec version 1",
            expect: "invalid_params",
            build: |r| edit_descriptor(&topk_nested_small(r), |d| d.pipeline[0].version = 1),
        },
        Case {
            id: "invalid-topk-values-holds-topk",
            description: "topk whose values pipeline is topk:fraction=0.5",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&topk_nested_small(r), |d| {
                    let inner = r.parse_pipeline("topk:fraction=0.5").unwrap();
                    d.pipeline[0].params.truncate(8);
                    d.pipeline[0].params.extend_from_slice(&StageDescriptor::encode_list(&inner));
                })
            },
        },
        Case {
            id: "invalid-topk-values-unknown-codec",
            description: "topk whose values pipeline names codec ID 0x00000099",
            expect: "unsupported_codec",
            build: |r| edit_descriptor(&topk_nested_small(r), |d| d.pipeline[0].params[9] = 0x99),
        },
        Case {
            id: "invalid-topk-values-no-array-to-bytes",
            description: "topk whose values pipeline is zstd alone",
            expect: "pipeline_invalid",
            build: |r| {
                edit_descriptor(&topk_nested_small(r), |d| {
                    let inner = r.parse_pipeline("zstd").unwrap();
                    d.pipeline[0].params.truncate(8);
                    d.pipeline[0].params.extend_from_slice(&StageDescriptor::encode_list(&inner));
                })
            },
        },
        Case {
            id: "invalid-topk-values-params-trailing",
            description: "topk parameters with a byte after the nested pipeline",
            expect: "invalid_params",
            build: |r| edit_descriptor(&topk_nested_small(r), |d| d.pipeline[0].params.push(0)),
        },
        Case {
            id: "invalid-topk-values-list-cut",
            description: "topk values pipeline of n_stages 2 whose second entry is missing (the first has codec ID 0): parsing comes first",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&topk_nested_small(r), |d| {
                    let p = &mut d.pipeline[0].params;
                    p[8] = 2;
                    p[9..13].copy_from_slice(&0u32.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-topk-values-codec-id-zero",
            description: "topk values pipeline whose one stage has codec ID 0",
            expect: "unsupported_codec",
            build: |r| {
                edit_descriptor(&topk_nested_small(r), |d| {
                    d.pipeline[0].params[9..13].copy_from_slice(&0u32.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-topk-values-no-stages",
            description: "topk values pipeline of n_stages 0 and nothing after it",
            expect: "pipeline_invalid",
            build: |r| {
                edit_descriptor(&topk_nested_small(r), |d| {
                    d.pipeline[0].params.truncate(9);
                    d.pipeline[0].params[8] = 0;
                })
            },
        },
        Case {
            id: "invalid-topk-values-too-many-stages",
            description: "topk values pipeline of n_stages 9 (max_stages is 8), its entries missing: the limit is checked when read",
            expect: "limit_exceeded",
            build: |r| edit_descriptor(&topk_nested_small(r), |d| d.pipeline[0].params[8] = 9),
        },
        Case {
            id: "invalid-topk-values-payload-cut",
            description: "topk with values=(bf16): the chunk payload one byte short, inside the nested values",
            expect: "codec_output_size",
            build: |r| {
                edit(&topk_nested_small(r), |recs| {
                    first(recs, record::CHUNK).body.pop();
                })
            },
        },
        Case {
            id: "invalid-topk-positions-cut",
            description: "topk payload one byte short: the Rice code of the positions ends early",
            expect: "codec_data",
            build: |r| {
                edit(&topk_small(r), |recs| {
                    first(recs, record::CHUNK).body.pop();
                })
            },
        },
        Case {
            id: "invalid-topk-values-cut",
            description: "topk payload of 20 bytes, too short for its 10 f32 values",
            expect: "codec_output_size",
            build: |r| edit(&topk_small(r), |recs| first(recs, record::CHUNK).body.truncate(24 + 20)),
        },
        Case {
            id: "invalid-topk-params-reserved",
            description: "topk parameter byte 5 (reserved) is 1",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&topk_small(r), |d| d.pipeline[0].params[5] = 1),
        },
        Case {
            id: "invalid-topk-params-values",
            description: "topk values 2",
            expect: "invalid_params",
            build: |r| edit_descriptor(&topk_small(r), |d| d.pipeline[0].params[4] = 2),
        },
        Case {
            id: "invalid-topk-rice-parameter",
            description: "topk Rice parameter 32",
            expect: "codec_data",
            build: |r| edit(&topk_small(r), |recs| first(recs, record::CHUNK).body[24] = 32),
        },
        Case {
            id: "invalid-topk-trailing-byte",
            description: "topk payload with a zero byte after its Rice code",
            expect: "codec_output_size",
            build: |r| edit(&topk_small(r), |recs| first(recs, record::CHUNK).body.push(0)),
        },
        Case {
            id: "invalid-topk-position-past-chunk",
            description: "topk gaps (ten of 15, parameter 4) that put the last positions past a chunk of 100",
            expect: "codec_data",
            build: |r| {
                edit(&topk_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    b.truncate(24 + 1 + 40);
                    b[24] = 4;
                    gradwire::entropy::rice_encode(&[15; 10], 4, b);
                })
            },
        },
        Case {
            id: "invalid-topk-padding",
            description: "topk Rice code with a nonzero padding bit",
            expect: "reserved_nonzero",
            build: |r| {
                edit(&topk_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    b.truncate(24 + 1 + 40);
                    b[24] = 0;
                    gradwire::entropy::rice_encode(&[0; 10], 0, b); // 10 bits: 6 padding bits
                    *b.last_mut().unwrap() |= 0x80;
                })
            },
        },
        // qsgd and sparse-dither (CODECS.md §10)
        Case {
            id: "valid-qsgd",
            description: "qsgd levels=4: 300 Laplace values in chunks of 200 and 100, stochastic rounding from stream seed 0",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "qsgd:levels=4",
                    &[300],
                    &m22_values(300, 0),
                    WriterOptions::default().chunk_elements(200),
                )
            },
        },
        Case {
            id: "valid-qsgd-constant",
            description: "qsgd levels=1: every nonzero has magnitude 1 (constant magnitude coding); 40 values, a zero chunk of 8 first",
            expect: "ok",
            build: |r| {
                let mut values = m22_values(48, 0);
                values[..8].fill(0.0);
                one_tensor(r, "qsgd:levels=1", &[48], &values, WriterOptions::default().chunk_elements(8))
            },
        },
        Case {
            id: "valid-qsgd-huffman",
            description: "qsgd levels=255 on 1024 values spread evenly over [-1, 1): magnitudes Huffman coded",
            expect: "ok",
            build: |r| one_tensor(r, "qsgd:levels=255", &[32, 32], &spread(1024), WriterOptions::default()),
        },
        Case {
            id: "valid-sparse-dither",
            description: "sparse-dither nu=0.1 (deterministic, nearest level) on 256 values with every 4th zero",
            expect: "ok",
            build: |r| one_tensor(r, "sparse-dither:nu=0.1", &[16, 16], &m22_values(256, 4), WriterOptions::default()),
        },
        Case {
            id: "valid-sparse-dither-fine",
            description: "sparse-dither nu=0.0001 on 500 values: magnitudes in the hundreds, Rice coded",
            expect: "ok",
            build: |r| one_tensor(r, "sparse-dither:nu=0.0001", &[500], &m22_values(500, 0), WriterOptions::default()),
        },
        Case {
            id: "valid-sparse-dither-unbiased",
            description: "sparse-dither nu=0.5, unbiased variant (stochastic rounding from stream seed 0) on 100 values",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "sparse-dither:nu=0.5,variant=unbiased",
                    &[100],
                    &m22_values(100, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "invalid-qsgd-params-length",
            description: "qsgd parameter block of 3 bytes",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&qsgd_small(r), |d| {
                    d.pipeline[0].params.pop();
                })
            },
        },
        Case {
            id: "invalid-qsgd-params-levels",
            description: "qsgd levels 0",
            expect: "invalid_params",
            build: |r| edit_descriptor(&qsgd_small(r), |d| d.pipeline[0].params.fill(0)),
        },
        Case {
            id: "invalid-sparse-dither-params-reserved",
            description: "sparse-dither parameter byte 9 (reserved) is 1",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&dither_small(r), |d| d.pipeline[0].params[9] = 1),
        },
        Case {
            id: "invalid-sparse-dither-params-nu",
            description: "sparse-dither nu 0",
            expect: "invalid_params",
            build: |r| edit_descriptor(&dither_small(r), |d| d.pipeline[0].params[..8].fill(0)),
        },
        Case {
            id: "invalid-sparse-dither-params-variant",
            description: "sparse-dither variant 2",
            expect: "invalid_params",
            build: |r| edit_descriptor(&dither_small(r), |d| d.pipeline[0].params[8] = 2),
        },
        Case {
            id: "invalid-qsgd-magnitude-over-levels",
            description: "qsgd levels=1 chunk whose constant magnitude is 2",
            expect: "codec_data",
            build: |r| edit(&qsgd_small(r), |recs| first(recs, record::CHUNK).body[24 + 10] = 2),
        },
        Case {
            id: "invalid-dither-step-negative",
            description: "sparse-dither chunk whose step has its sign bit set (a negative step)",
            expect: "codec_data",
            build: |r| edit(&dither_small(r), |recs| first(recs, record::CHUNK).body[24 + 3] |= 0x80),
        },
        Case {
            id: "invalid-dither-count-over-chunk",
            description: "sparse-dither chunk claiming 101 nonzeros in a chunk of 100",
            expect: "codec_data",
            build: |r| {
                edit(&dither_small(r), |recs| {
                    first(recs, record::CHUNK).body[24 + 4..24 + 8].copy_from_slice(&101u32.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-dither-magnitude-coding",
            description: "sparse-dither chunk with magnitude coding 3",
            expect: "codec_data",
            build: |r| edit(&dither_small(r), |recs| first(recs, record::CHUNK).body[24 + 9] = 3),
        },
        Case {
            id: "invalid-dither-sign-padding",
            description: "qsgd chunk of 7 nonzeros whose sign byte has padding bit 7 set",
            expect: "reserved_nonzero",
            build: |r| {
                edit(&qsgd_small(r), |recs| {
                    *first(recs, record::CHUNK).body.last_mut().unwrap() |= 0x80;
                })
            },
        },
        Case {
            id: "invalid-dither-trailing-byte",
            description: "sparse-dither payload with a zero byte after its magnitudes",
            expect: "codec_output_size",
            build: |r| edit(&dither_small(r), |recs| first(recs, record::CHUNK).body.push(0)),
        },
        Case {
            id: "invalid-dither-magnitudes-cut",
            description: "sparse-dither payload one byte short: the magnitude code ends early",
            expect: "codec_data",
            build: |r| {
                edit(&dither_small(r), |recs| {
                    first(recs, record::CHUNK).body.pop();
                })
            },
        },
        Case {
            id: "invalid-dither-position-past-chunk",
            description: "qsgd chunk of 7 nonzeros whose gaps (parameter 7, each 30) run past a chunk of 104",
            expect: "codec_data",
            build: |r| {
                edit(&qsgd_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    b.truncate(24 + 14);
                    b[24 + 8] = 7;
                    gradwire::entropy::rice_encode(&[30; 7], 7, b);
                    b.push(0);
                })
            },
        },
        Case {
            id: "invalid-dither-huffman-lengths",
            description: "qsgd levels=255 chunk whose first Huffman code length is raised by one (Kraft sum no longer 1)",
            expect: "codec_data",
            build: |r| {
                let bytes = one_tensor(
                    r,
                    "qsgd:levels=255",
                    &[1024],
                    &spread(1024),
                    WriterOptions::default().write_index(false),
                );
                edit(&bytes, |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    assert_eq!(b[24 + 9], 2, "Huffman magnitudes");
                    b[24 + 11] += 1;
                })
            },
        },
        // spherical (CODECS.md §11)
        Case {
            id: "valid-spherical",
            description: "spherical alpha=0.5, blocks of 4, seed 3: 100 Laplace values, 25 blocks coded as draw indices",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "spherical:alpha=0.5,block=4,seed=3",
                    &[100],
                    &m22_values(100, 0),
                    WriterOptions::default(),
                )
            },
        },
        Case {
            id: "valid-spherical-fallback",
            description: "spherical alpha=0.05, blocks of 8, at most 4 draws: 50 values (a last block of 2, a zero block), most blocks raw",
            expect: "ok",
            build: |r| {
                let mut values = m22_values(50, 0);
                values[8..16].fill(0.0);
                one_tensor(r, "spherical:alpha=0.05,block=8,draws=4,seed=1", &[50], &values, WriterOptions::default())
            },
        },
        Case {
            id: "valid-spherical-block1",
            description: "spherical alpha=0.1, blocks of 1 (each value becomes +-sqrt(0.9)|x|), in chunks of 7",
            expect: "ok",
            build: |r| {
                one_tensor(
                    r,
                    "spherical:alpha=0.1,block=1,seed=2",
                    &[20],
                    &m22_values(20, 0),
                    WriterOptions::default().chunk_elements(7),
                )
            },
        },
        Case {
            id: "invalid-spherical-params-length",
            description: "spherical parameter block of 23 bytes",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&spherical_small(r), |d| {
                    d.pipeline[0].params.pop();
                })
            },
        },
        Case {
            id: "invalid-spherical-params-reserved",
            description: "spherical parameter byte 13 (reserved) is 1",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&spherical_small(r), |d| d.pipeline[0].params[13] = 1),
        },
        Case {
            id: "invalid-spherical-params-alpha",
            description: "spherical alpha 1.0",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&spherical_small(r), |d| d.pipeline[0].params[..8].copy_from_slice(&1f64.to_le_bytes()))
            },
        },
        Case {
            id: "invalid-spherical-params-block",
            description: "spherical block 17",
            expect: "invalid_params",
            build: |r| edit_descriptor(&spherical_small(r), |d| d.pipeline[0].params[12] = 17),
        },
        Case {
            id: "invalid-spherical-index-over-draws",
            description: "spherical chunk whose draw indices exceed the parameters' draws (set to 1)",
            expect: "codec_data",
            build: |r| {
                edit_descriptor(&spherical_small(r), |d| {
                    d.pipeline[0].params[8..12].copy_from_slice(&1u32.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-spherical-scale-negative",
            description: "spherical chunk whose first block scale has its sign bit set",
            expect: "codec_data",
            build: |r| edit(&spherical_small(r), |recs| first(recs, record::CHUNK).body[24 + 2] |= 0x80),
        },
        Case {
            id: "invalid-spherical-rice-parameter",
            description: "spherical Rice parameter 32",
            expect: "codec_data",
            build: |r| edit(&spherical_small(r), |recs| first(recs, record::CHUNK).body[24] = 32),
        },
        Case {
            id: "invalid-spherical-trailing-byte",
            description: "spherical payload with a byte after its indices (no block is raw)",
            expect: "codec_output_size",
            build: |r| edit(&spherical_small(r), |recs| first(recs, record::CHUNK).body.push(0)),
        },
        Case {
            id: "invalid-spherical-params-draws",
            description: "spherical draws 0",
            expect: "invalid_params",
            build: |r| edit_descriptor(&spherical_small(r), |d| d.pipeline[0].params[8..12].fill(0)),
        },
        Case {
            id: "invalid-spherical-scale-minus-zero",
            description: "spherical chunk whose first block scale is bf16 -0.0 (0x8000)",
            expect: "codec_data",
            build: |r| {
                edit(&spherical_small(r), |recs| {
                    first(recs, record::CHUNK).body[24 + 1..24 + 3].copy_from_slice(&0x8000u16.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-spherical-scale-nan",
            description: "spherical chunk whose first block scale is a bf16 NaN (0x7FC0)",
            expect: "codec_data",
            build: |r| {
                edit(&spherical_small(r), |recs| {
                    first(recs, record::CHUNK).body[24 + 1..24 + 3].copy_from_slice(&0x7FC0u16.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-spherical-zero-scale-index",
            description: "spherical chunk whose block 0 scale is set to 0 while its index is not 1",
            expect: "codec_data",
            build: |r| {
                edit(&spherical_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    let mut indices = Vec::new();
                    gradwire::entropy::rice_decode(&b[24 + 21..], b[24], 10, 4096, &mut indices).unwrap();
                    assert_ne!(indices[0], 1, "block 0 needs another index for this vector");
                    b[24 + 1..24 + 3].fill(0);
                })
            },
        },
        Case {
            id: "invalid-spherical-raw-scale",
            description: "spherical chunk (every block raw) whose first raw block has scale 1.0 instead of +0",
            expect: "codec_data",
            build: |r| {
                edit(&spherical_raw(r), |recs| {
                    first(recs, record::CHUNK).body[24 + 1..24 + 3].copy_from_slice(&0x3F80u16.to_le_bytes());
                })
            },
        },
        Case {
            id: "invalid-spherical-raw-short",
            description: "spherical chunk (every block raw) one byte short of its raw values",
            expect: "codec_output_size",
            build: |r| {
                edit(&spherical_raw(r), |recs| {
                    first(recs, record::CHUNK).body.pop();
                })
            },
        },
        Case {
            id: "invalid-spherical-scales-cut",
            description: "spherical payload cut inside its scales",
            expect: "codec_output_size",
            build: |r| edit(&spherical_small(r), |recs| first(recs, record::CHUNK).body.truncate(24 + 1 + 10)),
        },
        Case {
            id: "invalid-intrinsic-params-reserved",
            description: "intrinsic parameter byte 3 (reserved) is 1",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&intrinsic_small(r), |d| d.pipeline[0].params[3] = 1),
        },
        Case {
            id: "invalid-intrinsic-params-length",
            description: "intrinsic parameter block of 31 bytes",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&intrinsic_small(r), |d| {
                    d.pipeline[0].params.pop();
                })
            },
        },
        Case {
            id: "invalid-intrinsic-params-family",
            description: "intrinsic family 3",
            expect: "invalid_params",
            build: |r| edit_descriptor(&intrinsic_small(r), |d| d.pipeline[0].params[0] = 3),
        },
        Case {
            id: "invalid-intrinsic-params-nonzeros",
            description: "intrinsic srht with nonzeros 1 (only sparse has nonzeros)",
            expect: "invalid_params",
            build: |r| edit_descriptor(&intrinsic_small(r), |d| d.pipeline[0].params[8] = 1),
        },
        Case {
            id: "invalid-intrinsic-params-dim-zero",
            description: "intrinsic dim 0",
            expect: "invalid_params",
            build: |r| edit_descriptor(&intrinsic_small(r), |d| d.pipeline[0].params[4..8].fill(0)),
        },
        Case {
            id: "invalid-intrinsic-params-round-fixed",
            description: "intrinsic schedule fixed with round 1",
            expect: "invalid_params",
            build: |r| edit_descriptor(&intrinsic_small(r), |d| d.pipeline[0].params[24] = 1),
        },
        Case {
            id: "invalid-intrinsic-params-groups",
            description: "intrinsic schedule group with 0 groups",
            expect: "invalid_params",
            build: |r| edit_descriptor(&intrinsic_small(r), |d| d.pipeline[0].params[2] = 1),
        },
        Case {
            id: "invalid-intrinsic-dense-limit",
            description: "intrinsic rademacher chunk of 20000 values onto 4096 coefficients (more than 2^26 entries), refused when the tensor begins",
            expect: "limit_exceeded",
            build: |r| {
                let b = one_tensor(
                    r,
                    "intrinsic:dim=16,family=rademacher+raw",
                    &[20000],
                    &vec![0.5; 20000],
                    WriterOptions::default().write_index(false),
                );
                edit_descriptor(&b, |d| d.pipeline[0].params[4..8].copy_from_slice(&4096u32.to_le_bytes()))
            },
        },
        Case {
            id: "side-wyner-ziv-a",
            description: "side information set A of the wyner-ziv vectors: raw tensors t (48 values) and u (3000)",
            expect: "ok",
            build: |r| side_stream(r, &wz_side_a()),
        },
        Case {
            id: "side-wyner-ziv-b",
            description: "side information set B of the wyner-ziv vectors: t with other values, u of 2999 values",
            expect: "ok",
            build: |r| side_stream(r, &wz_side_b()),
        },
        Case {
            id: "side-wyner-ziv-c",
            description: "side information set C of the wyner-ziv vectors: raw tensor t (48 values around 40)",
            expect: "ok",
            build: |r| side_stream(r, &wz_side_c()),
        },
        Case {
            id: "valid-wyner-ziv-plain",
            description: "wyner-ziv:bits=2 without side information (zero prediction: the plain lattice quantizer); the step follows the 1e30 entry (an encoder since then anchors on the 99.9th percentile), so the small entries decode to 0 and NaN is a raw escape",
            expect: "ok",
            build: wz_plain,
        },
        Case {
            id: "invalid-wyner-ziv-side-missing",
            description: "the stream of valid-wyner-ziv-bound-escapes read without side information",
            expect: "side_info_missing",
            build: wz_bound,
        },
        Case {
            id: "invalid-wyner-ziv-unbound-side-missing",
            description: "the stream of valid-wyner-ziv-unbound read without side information",
            expect: "side_info_missing",
            build: wz_unbound,
        },
        Case {
            id: "invalid-wyner-ziv-params-reserved",
            description: "wyner-ziv parameter flags bit 1 (reserved) set",
            expect: "reserved_nonzero",
            build: |r| edit_descriptor(&wz_plain(r), |d| d.pipeline[0].params[3] = 2),
        },
        Case {
            id: "invalid-wyner-ziv-params-bound-short",
            description: "wyner-ziv parameter flag BOUND set on 12 bytes, without the binding",
            expect: "invalid_params",
            build: |r| edit_descriptor(&wz_plain(r), |d| d.pipeline[0].params[3] = 1),
        },
        Case {
            id: "invalid-wyner-ziv-params-mode",
            description: "wyner-ziv mode 4",
            expect: "invalid_params",
            build: |r| edit_descriptor(&wz_plain(r), |d| d.pipeline[0].params[0] = 4),
        },
        Case {
            id: "invalid-wyner-ziv-params-modulus",
            description: "wyner-ziv mode 1 (bits) with a modulus of 16",
            expect: "invalid_params",
            build: |r| edit_descriptor(&wz_plain(r), |d| d.pipeline[0].params[8] = 16),
        },
        Case {
            id: "invalid-wyner-ziv-contexts-zero",
            description: "wyner-ziv chunk with 0 label contexts",
            expect: "codec_data",
            build: |r| wz_plain_payload(r, |p| p[0] = 0),
        },
        Case {
            id: "invalid-wyner-ziv-contexts-without-side",
            description: "wyner-ziv chunk of a stream without side information that declares 2 label contexts",
            expect: "codec_data",
            build: |r| wz_plain_payload(r, |p| p[0] = 2),
        },
        Case {
            id: "invalid-wyner-ziv-flags-reserved",
            description: "wyner-ziv chunk flags bit 1 (reserved) set",
            expect: "reserved_nonzero",
            build: |r| wz_plain_payload(r, |p| p[1] |= 2),
        },
        Case {
            id: "invalid-wyner-ziv-modulus-one",
            description: "wyner-ziv chunk with modulus 1",
            expect: "codec_data",
            build: |r| wz_plain_payload(r, |p| p[2..4].copy_from_slice(&1u16.to_le_bytes())),
        },
        Case {
            id: "invalid-wyner-ziv-step-zero",
            description: "wyner-ziv chunk with step 0",
            expect: "codec_data",
            build: |r| wz_plain_payload(r, |p| p[4..8].copy_from_slice(&0f32.to_le_bytes())),
        },
        Case {
            id: "invalid-wyner-ziv-escapes-count",
            description: "wyner-ziv chunk of 48 values declaring 49 escapes",
            expect: "codec_data",
            build: |r| wz_plain_payload(r, |p| p[16..20].copy_from_slice(&49u32.to_le_bytes())),
        },
        Case {
            id: "invalid-wyner-ziv-trailing-byte",
            description: "wyner-ziv chunk with a byte after its last label section",
            expect: "codec_output_size",
            build: |r| wz_plain_payload(r, |p| p.push(0)),
        },
        Case {
            id: "invalid-wyner-ziv-section-cut",
            description: "wyner-ziv chunk one byte short inside its label section",
            expect: "codec_output_size",
            build: |r| {
                wz_plain_payload(r, |p| {
                    p.pop();
                })
            },
        },
        Case {
            id: "invalid-topk-values-wyner-ziv",
            description: "topk whose nested values pipeline is wyner-ziv:step=0.01,modulus=16 (decodes against side information)",
            expect: "invalid_params",
            build: |r| {
                edit_descriptor(&topk_nested_small(r), |d| {
                    let wz = r.parse_pipeline("wyner-ziv:step=0.01,modulus=16").unwrap();
                    let params = gradwire::sparsify::TopKParams {
                        fraction: u32::from_le_bytes(d.pipeline[0].params[..4].try_into().unwrap()),
                        values: gradwire::sparsify::Values::Pipeline(wz),
                    };
                    d.pipeline[0].params = params.encode();
                })
            },
        },
        Case {
            id: "invalid-intrinsic-coefficients-short",
            description: "intrinsic + raw chunk one coefficient short",
            expect: "codec_output_size",
            build: |r| {
                edit(&intrinsic_small(r), |recs| {
                    let b = &mut first(recs, record::CHUNK).body;
                    b.truncate(b.len() - 4);
                })
            },
        },
    ]
}

/// A vector read with side information: the case and the id of its side file (a valid raw
/// stream among the cases, `spec/FORMAT.md` §14).
struct SideCase {
    case: Case,
    side: &'static str,
}

/// Side set A of the `wyner-ziv` vectors: `t` (48 values) and `u` (3000 values, a quarter exactly 0).
fn wz_side_a() -> Vec<(&'static str, Vec<f32>)> {
    let mut u = gradwire::testing::laplace(3000, 31);
    u.iter_mut().step_by(4).for_each(|v| *v = 0.0);
    vec![("t", gradwire::testing::laplace(48, 30)), ("u", u)]
}

/// Side set B: `t` with other values, `u` one value short (2999).
fn wz_side_b() -> Vec<(&'static str, Vec<f32>)> {
    vec![("t", gradwire::testing::laplace(48, 40)), ("u", gradwire::testing::laplace(2999, 41))]
}

/// The side set as a stream of `raw` tensors.
fn side_stream(r: &Registry, side: &[(&str, Vec<f32>)]) -> Vec<u8> {
    let mut w =
        Writer::new(Vec::new(), r, &StreamHeader::default(), WriterOptions::default().write_index(false)).unwrap();
    for (name, values) in side {
        w.write_tensor(TensorSpec::new(*name, &[values.len() as u64], pipe(r, "raw")), values).unwrap();
    }
    w.finish().unwrap()
}

/// `t`: side value plus small noise, with one far value (a wide escape), a NaN and 1e30 (raw escapes).
fn wz_t() -> Vec<f32> {
    let (_, y) = &wz_side_a()[0];
    let noise = gradwire::testing::laplace(48, 32);
    let mut x: Vec<f32> = y.iter().zip(&noise).map(|(a, b)| a + 0.02 * b).collect();
    x[5] += 3.0;
    x[7] = f32::NAN;
    x[9] = 1e30;
    x
}

/// `u`: 0.8 times the side value plus noise in proportion to it (zero where it is zero).
fn wz_u() -> Vec<f32> {
    let (_, y) = &wz_side_a()[1];
    let noise = gradwire::testing::laplace(3000, 33);
    y.iter().zip(&noise).map(|(a, b)| 0.8 * a + 0.3 * a.abs() * b).collect()
}

/// One `wyner-ziv` tensor (`t` or `u`) through `spec`, the writer given side set A when `with_side`.
fn wz_stream(r: &Registry, spec: &str, name: &str, with_side: bool, options: WriterOptions, seed: u64) -> Vec<u8> {
    let header = StreamHeader { seed, ..StreamHeader::default() };
    let mut w = Writer::new(Vec::new(), r, &header, options.write_index(false)).unwrap();
    if with_side {
        let mut side = gradwire::SideInfoMap::new();
        for (n, v) in wz_side_a() {
            side.insert(n, "side set A", v);
        }
        w.set_side_info(std::sync::Arc::new(side));
    }
    let values = if name == "t" { wz_t() } else { wz_u() };
    w.write_tensor(TensorSpec::new(name, &[values.len() as u64], pipe(r, spec)), &values).unwrap();
    w.finish().unwrap()
}

/// `t` through `wyner-ziv:step=0.01`, bound to side set A, chunks of 16.
fn wz_bound(r: &Registry) -> Vec<u8> {
    wz_stream(r, "wyner-ziv:step=0.01", "t", true, WriterOptions::default().chunk_elements(16), 0)
}

/// `u` through `wyner-ziv:bits=3`, bound to side set A, one chunk with several label contexts.
fn wz_contexts(r: &Registry) -> Vec<u8> {
    let bytes = wz_stream(r, "wyner-ziv:bits=3", "u", true, WriterOptions::default(), 0);
    let (_, recs) = split(&bytes);
    let chunk = recs.iter().find(|c| c.rtype == record::CHUNK).unwrap();
    assert!(chunk.body[24] > 1, "the contexts vector must use contexts");
    bytes
}

/// `t` through `wyner-ziv:step=0.01,modulus=16`, written without side information (unbound).
fn wz_unbound(r: &Registry) -> Vec<u8> {
    wz_stream(r, "wyner-ziv:step=0.01,modulus=16", "t", false, WriterOptions::default(), 0)
}

/// `t` through `wyner-ziv:bits=2` without side information at all (zero prediction).
fn wz_plain(r: &Registry) -> Vec<u8> {
    wz_stream(r, "wyner-ziv:bits=2", "t", false, WriterOptions::default(), 0)
}

/// `wz_plain` with its chunk payload edited by `f`.
fn wz_plain_payload(r: &Registry, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&wz_plain(r), |recs| {
        let body = &mut first(recs, record::CHUNK).body;
        let mut payload = body.split_off(24);
        f(&mut payload);
        body.extend_from_slice(&payload);
    })
}

/// `wz_bound` with the payload of its first chunk edited by `f` (given the chunk length, 16).
fn wz_bound_payload(r: &Registry, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&wz_bound(r), |recs| {
        let body = &mut first(recs, record::CHUNK).body;
        let mut payload = body.split_off(24);
        f(&mut payload);
        body.extend_from_slice(&payload);
    })
}

/// Offsets in a `wyner-ziv` payload with escapes (`n` values): of the Exp-Golomb order byte and
/// of the first raw value.
fn wz_escape_offsets(payload: &[u8], n: usize) -> (usize, usize) {
    let m = u32::from_le_bytes(payload[16..20].try_into().unwrap()) as usize;
    let mut v = Vec::new();
    let used = gradwire::entropy::rice_decode(&payload[21..], payload[20], m, n as u64, &mut v).unwrap();
    let order_at = 21 + used;
    v.clear();
    let used =
        gradwire::entropy::exp_golomb_decode(&payload[order_at + 1..], payload[order_at], m, 65_535, &mut v).unwrap();
    (order_at, order_at + 1 + used)
}

/// `t` of 48 values around 40 (predictions of some 4000 steps of 0.01) through
/// `wyner-ziv:step=0.01`, bound to its side information (`side-wyner-ziv-c`), with far values.
fn wz_large(r: &Registry) -> Vec<u8> {
    let y: Vec<f32> = wz_side_c().remove(0).1;
    let noise = gradwire::testing::laplace(48, 34);
    let mut x: Vec<f32> = y.iter().zip(&noise).map(|(a, b)| a + 0.03 * b).collect();
    x[3] -= 5.0;
    x[40] += 700.0;
    let mut w =
        Writer::new(Vec::new(), r, &StreamHeader::default(), WriterOptions::default().write_index(false)).unwrap();
    let mut side = gradwire::SideInfoMap::new();
    side.insert("t", "side set C", y);
    w.set_side_info(std::sync::Arc::new(side));
    w.write_tensor(TensorSpec::new("t", &[48], pipe(r, "wyner-ziv:step=0.01")), &x).unwrap();
    w.finish().unwrap()
}

/// Side set C: `t` of 48 values around 40.
fn wz_side_c() -> Vec<(&'static str, Vec<f32>)> {
    vec![("t", gradwire::testing::laplace(48, 35).iter().map(|v| 40.0 + v).collect())]
}

/// The `wyner-ziv` vectors read with side information.
#[allow(clippy::too_many_lines, reason = "one entry per vector, a table")]
fn side_cases() -> Vec<SideCase> {
    let side = |id, description, expect, side, build| SideCase { case: Case { id, description, expect, build }, side };
    vec![
        side(
            "valid-wyner-ziv-bound-escapes",
            "wyner-ziv:step=0.01, 48 values bound to side set A in chunks of 16: centered residues, a wide escape, raw escapes for NaN and 1e30",
            "ok",
            "side-wyner-ziv-a",
            wz_bound,
        ),
        side(
            "valid-wyner-ziv-contexts",
            "wyner-ziv:bits=3, 3000 values bound to side set A: fitted scale, label sections in several contexts of |y|",
            "ok",
            "side-wyner-ziv-a",
            wz_contexts,
        ),
        side(
            "valid-wyner-ziv-stochastic",
            "wyner-ziv:step=0.05,rounding=stochastic,scale=one bound to side set A, stream seed 7",
            "ok",
            "side-wyner-ziv-a",
            |r| {
                wz_stream(
                    r,
                    "wyner-ziv:step=0.05,rounding=stochastic,scale=one",
                    "t",
                    true,
                    WriterOptions::default(),
                    7,
                )
            },
        ),
        side(
            "valid-wyner-ziv-unbound",
            "wyner-ziv:step=0.01,modulus=16 written without side information (plain residues, unbound) and read with side set A; entries beyond the bound decode a multiple of k*eps away",
            "ok",
            "side-wyner-ziv-a",
            wz_unbound,
        ),
        side(
            "valid-wyner-ziv-large-predictions",
            "wyner-ziv:step=0.01 bound to side set C (values around 40: predictions of some 4000 steps), with wide escapes far from the reference (500 steps) and beyond the wide range (70000 steps: raw)",
            "ok",
            "side-wyner-ziv-c",
            wz_large,
        ),
        side(
            "invalid-wyner-ziv-rice-parameter",
            "valid-wyner-ziv-bound-escapes with the Rice parameter of the first chunk's escapes set to 32",
            "codec_data",
            "side-wyner-ziv-a",
            |r| wz_bound_payload(r, |p| p[20] = 32),
        ),
        side(
            "invalid-wyner-ziv-positions-beyond",
            "valid-wyner-ziv-bound-escapes with the Rice parameter of the first chunk's escapes set to 31: the gaps run past the chunk",
            "codec_data",
            "side-wyner-ziv-a",
            |r| wz_bound_payload(r, |p| p[20] = 31),
        ),
        side(
            "invalid-wyner-ziv-order",
            "valid-wyner-ziv-bound-escapes with the Exp-Golomb order of the first chunk's escapes set to 32",
            "codec_data",
            "side-wyner-ziv-a",
            |r| {
                wz_bound_payload(r, |p| {
                    let (order_at, _) = wz_escape_offsets(p, 16);
                    p[order_at] = 32;
                })
            },
        ),
        side(
            "invalid-wyner-ziv-raw-cut",
            "valid-wyner-ziv-bound-escapes with the first chunk cut inside its raw escaped values",
            "codec_output_size",
            "side-wyner-ziv-a",
            |r| {
                wz_bound_payload(r, |p| {
                    let (_, raw_at) = wz_escape_offsets(p, 16);
                    p.truncate(raw_at + 3);
                })
            },
        ),
        side(
            "invalid-wyner-ziv-scale-nan",
            "valid-wyner-ziv-bound-escapes with the first chunk's scale NaN",
            "codec_data",
            "side-wyner-ziv-a",
            |r| wz_bound_payload(r, |p| p[8..12].copy_from_slice(&f32::NAN.to_le_bytes())),
        ),
        side(
            "invalid-wyner-ziv-gain-negative",
            "valid-wyner-ziv-bound-escapes with the first chunk's context gain -1",
            "codec_data",
            "side-wyner-ziv-a",
            |r| wz_bound_payload(r, |p| p[12..16].copy_from_slice(&(-1f32).to_le_bytes())),
        ),
        side(
            "invalid-wyner-ziv-contexts-miscounted",
            "valid-wyner-ziv-contexts with the context gain set to 0: every entry falls in context 0, so the label counts of the sections no longer match their bytes",
            "codec_data",
            "side-wyner-ziv-a",
            |r| {
                edit(&wz_contexts(r), |recs| {
                    let body = &mut first(recs, record::CHUNK).body;
                    body[24 + 12..24 + 16].copy_from_slice(&0f32.to_le_bytes());
                })
            },
        ),
        side(
            "invalid-wyner-ziv-side-mismatch",
            "the stream of valid-wyner-ziv-bound-escapes read with side set B (other values of the same length)",
            "side_info_mismatch",
            "side-wyner-ziv-b",
            wz_bound,
        ),
        side(
            "invalid-wyner-ziv-side-length",
            "the stream of valid-wyner-ziv-contexts read with side set B, whose u is one value short",
            "side_info_mismatch",
            "side-wyner-ziv-b",
            wz_contexts,
        ),
    ]
}

/// Laplace-like values from the specified generator, every fifth exactly zero when `zero_every` is 5.
fn m22_values(n: usize, zero_every: usize) -> Vec<f32> {
    let mut values = gradwire::testing::laplace(n, 22);
    if zero_every > 0 {
        values.iter_mut().step_by(zero_every).for_each(|v| *v = 0.0);
    }
    values
}

/// `topk` of 100 values keeping 10, their values through the nested pipeline `bf16`.
fn topk_nested_small(r: &Registry) -> Vec<u8> {
    one_tensor(
        r,
        "topk:fraction=0.1,values=(bf16)",
        &[100],
        &m22_values(100, 0),
        WriterOptions::default().write_index(false),
    )
}

/// One `topk:fraction=0.1` tensor of 100 values in one chunk (10 kept, f32), without an index.
fn topk_small(r: &Registry) -> Vec<u8> {
    one_tensor(r, "topk:fraction=0.1", &[100], &m22_values(100, 0), WriterOptions::default().write_index(false))
}

/// `n` values spread evenly over [-1, 1) in a scrambled order (magnitudes that are not
/// geometric, so Huffman beats Rice).
fn spread(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % n) as f32 / (n / 2) as f32 - 1.0).collect()
}

/// One `spherical:alpha=0.5,block=4` tensor of 40 values in one chunk (10 blocks, none raw), without an index.
fn spherical_small(r: &Registry) -> Vec<u8> {
    let bytes = one_tensor(
        r,
        "spherical:alpha=0.5,block=4,seed=3",
        &[40],
        &m22_values(40, 0),
        WriterOptions::default().write_index(false),
    );
    edit(&bytes, |recs| {
        let b = &first(recs, record::CHUNK).body;
        assert!(b.len() < 24 + 1 + 20 + 40, "no raw block");
    })
}

/// One `spherical:alpha=0.05,block=8,draws=1` tensor of 24 values in one chunk: all three
/// blocks raw. Without an index.
fn spherical_raw(r: &Registry) -> Vec<u8> {
    let bytes = one_tensor(
        r,
        "spherical:alpha=0.05,block=8,draws=1,seed=1",
        &[24],
        &m22_values(24, 0),
        WriterOptions::default().write_index(false),
    );
    edit(&bytes, |recs| assert_eq!(first(recs, record::CHUNK).body.len(), 24 + 1 + 6 + 1 + 96, "all raw"))
}

/// One `qsgd:levels=1` tensor of 104 values in one chunk (7 nonzeros, constant magnitude
/// coding), without an index.
fn qsgd_small(r: &Registry) -> Vec<u8> {
    let bytes =
        one_tensor(r, "qsgd:levels=1", &[104], &m22_values(104, 0), WriterOptions::default().write_index(false));
    edit(&bytes, |recs| {
        let b = &first(recs, record::CHUNK).body;
        assert_eq!((b[24 + 4], b[24 + 9]), (7, 0), "7 nonzeros, constant magnitude");
    })
}

/// One `sparse-dither:nu=0.01` tensor of 100 values in one chunk (Rice-coded magnitudes),
/// without an index.
fn dither_small(r: &Registry) -> Vec<u8> {
    let bytes = one_tensor(
        r,
        "sparse-dither:nu=0.01",
        &[100],
        &m22_values(100, 0),
        WriterOptions::default().write_index(false),
    );
    edit(&bytes, |recs| assert_eq!(first(recs, record::CHUNK).body[24 + 9], 1, "Rice magnitudes"))
}

/// One `randk:fraction=0.2+raw` tensor of 100 values in one chunk, without an index.
fn randk_small(r: &Registry) -> Vec<u8> {
    one_tensor(
        r,
        "randk:fraction=0.2,seed=1+raw",
        &[100],
        &m22_values(100, 0),
        WriterOptions::default().write_index(false),
    )
}

/// One `intrinsic:dim=16+raw` tensor of 100 values in one chunk, without an index.
fn intrinsic_small(r: &Registry) -> Vec<u8> {
    one_tensor(
        r,
        "intrinsic:dim=16,seed=1+raw",
        &[100],
        &m22_values(100, 0),
        WriterOptions::default().write_index(false),
    )
}

/// One m22:bits=3 tensor of 600 values in one chunk, Huffman-coded labels.
fn m22_small(r: &Registry) -> Vec<u8> {
    one_tensor(r, "m22:bits=3", &[600], &m22_values(600, 5), WriterOptions::default().write_index(false))
}

/// An m22 coding-4 payload: `points`, run symbol `z`, code `lengths` over the coded symbols
/// (`S + 1` of them are written, the rest 0), and the `coded` symbols, Huffman-coded.
fn m22_runs_payload(points: &[f32], z: u8, lengths: &[u8], coded: &[u8]) -> Vec<u8> {
    let mut p = vec![4u8, 0];
    p.extend_from_slice(&(points.len() as u16).to_le_bytes());
    p.extend_from_slice(&[0; 12]);
    for x in points {
        p.extend_from_slice(&x.to_le_bytes());
    }
    p.push(z);
    p.extend_from_slice(&(coded.len() as u32).to_le_bytes());
    let mut all = lengths.to_vec();
    all.resize(points.len() + 1, 0);
    for pair in all.chunks(2) {
        p.push(pair[0] | pair.get(1).map_or(0, |&l| l << 4));
    }
    let code = gradwire::entropy::HuffmanCode::from_lengths(lengths).unwrap();
    code.encode(coded, &mut p).unwrap();
    p
}

/// A version-2 m22 stream (`m22:bits=8,step=1`) of one tensor of `n` values whose one chunk
/// carries `payload`.
fn with_m22_payload(r: &Registry, n: usize, payload: &[u8]) -> Vec<u8> {
    let b = one_tensor(r, "m22:step=1", &[n as u64], &vec![0.5f32; n], WriterOptions::default().write_index(false));
    edit(&b, |recs| {
        let c = &mut first(recs, record::CHUNK).body;
        c.truncate(24);
        c.extend_from_slice(payload);
    })
}

/// One m22:step=6e-3 tensor of 3000 values in one chunk (version 2, coding 4).
fn m22_step_runs(r: &Registry) -> Vec<u8> {
    one_tensor(r, "m22:step=6e-3", &[3000], &m22_values(3000, 5), WriterOptions::default().write_index(false))
}

/// 75 values whose signs exercise every rule of CODECS.md §5: +0, -0 and NaN are +1.
fn signed_values() -> Vec<f32> {
    let mut v = finite_signed_values();
    v[0] = 0.0;
    v[1] = -0.0;
    v[2] = f32::NAN;
    v[3] = f32::from_bits(0xFFC0_0000); // NaN with the sign bit set: still +1
    v[4] = f32::NEG_INFINITY;
    v[5] = -f32::from_bits(1); // the smallest negative subnormal
    v
}

/// 75 finite values of mixed signs and magnitudes, zeros included.
fn finite_signed_values() -> Vec<f32> {
    (0..75).map(|i| if i % 7 == 0 { 0.0 } else { ((i * 37 % 23) as f32 - 11.0) * 0.125 }).collect()
}

/// One signsgd:scale=mean tensor of 35 values in one chunk (payload: 4-byte scale, 5 sign bytes).
fn signsgd_mean(r: &Registry) -> Vec<u8> {
    one_tensor(r, "signsgd", &[35], &finite_signed_values()[..35], WriterOptions::default().write_index(false))
}

use gradwire::conformance::Entry;

type Side = Option<std::sync::Arc<dyn gradwire::SideInfoProvider>>;

fn decode(registry: &Registry, bytes: &[u8], side: Side) -> Result<serde_json::Value, gradwire::Error> {
    gradwire::conformance::decode_json_with(bytes, registry, side)
}

/// A reader of `input` given `side`.
fn reader<'r, R: std::io::Read>(input: R, registry: &'r Registry, side: &Side) -> Reader<'r, R> {
    let mut r = Reader::new(input, registry);
    if let Some(side) = side {
        r.set_side_info(side.clone());
    }
    r
}

/// The side information of a manifest entry.
fn side_of(registry: &Registry, e: &Entry) -> Side {
    gradwire::conformance::entry_side_info(&vectors_dir(), e, registry).unwrap()
}

/// Every case with the file of the side information it is read with.
fn all_cases() -> Vec<(Case, Option<&'static str>)> {
    cases().into_iter().map(|c| (c, None)).chain(side_cases().into_iter().map(|s| (s.case, Some(s.side)))).collect()
}

fn manifest_path() -> PathBuf {
    vectors_dir().join("manifest.json")
}

fn load_manifest() -> Vec<Entry> {
    match std::fs::read_to_string(manifest_path()) {
        Ok(text) => serde_json::from_str(&text).expect("manifest.json parses"),
        Err(_) => Vec::new(),
    }
}

/// Writes vectors that are missing; never touches an existing one.
fn write_missing(registry: &Registry) {
    let mut manifest = load_manifest();
    std::fs::create_dir_all(vectors_dir()).unwrap();
    for (case, side_file) in all_cases() {
        if manifest.iter().any(|e| e.id == case.id) {
            continue;
        }
        let file = format!("{}.gw", case.id);
        let path = vectors_dir().join(&file);
        assert!(!path.exists(), "{file} exists but is not in the manifest: fix by hand, never regenerate");
        let bytes = (case.build)(registry);
        let side_info = side_file.map(|s| format!("{s}.gw"));
        let probe = Entry {
            id: case.id.into(),
            file: file.clone(),
            description: String::new(),
            expect: String::new(),
            sha256: String::new(),
            expected: None,
            side_info: side_info.clone(),
        };
        let expected = match decode(registry, &bytes, side_of(registry, &probe)) {
            Ok(summary) => {
                assert_eq!(case.expect, "ok", "{}: decoded but should fail with {}", case.id, case.expect);
                Some(summary)
            }
            Err(e) => {
                assert_eq!(e.code().as_str(), case.expect, "{}: wrong error: {e}", case.id);
                None
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        manifest.push(Entry {
            id: case.id.into(),
            file,
            description: case.description.into(),
            expect: case.expect.into(),
            sha256: sha256_hex(&bytes),
            expected,
            side_info,
        });
    }
    std::fs::write(manifest_path(), serde_json::to_string_pretty(&manifest).unwrap() + "\n").unwrap();
}

fn valid_vectors() -> Vec<(String, Vec<u8>, Side)> {
    let registry = gradwire::registry().unwrap();
    let valid: Vec<_> = load_manifest()
        .into_iter()
        .filter(|e| e.expect == "ok")
        .map(|e| {
            let side = side_of(&registry, &e);
            (e.id, std::fs::read(vectors_dir().join(&e.file)).unwrap(), side)
        })
        .collect();
    let cases = all_cases().iter().filter(|(c, _)| c.expect == "ok").count();
    assert_eq!(valid.len(), cases, "every valid case needs its vector in spec/vectors");
    valid
}

#[test]
fn golden_vectors_are_unchanged_and_decode_as_expected() {
    let registry = gradwire::registry().unwrap();
    if std::env::var_os("GRADWIRE_WRITE_VECTORS").is_some() {
        write_missing(&registry);
    }
    let manifest = load_manifest();
    for (case, _) in all_cases() {
        assert!(
            manifest.iter().any(|e| e.id == case.id),
            "case {} has no vector: run `GRADWIRE_WRITE_VECTORS=1 cargo test --test golden_vectors` once",
            case.id
        );
    }
    let expected_codes: std::collections::HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    for e in &manifest {
        let bytes = std::fs::read(vectors_dir().join(&e.file)).unwrap();
        assert_eq!(sha256_hex(&bytes), e.sha256, "{}: golden bytes changed; vectors are never regenerated", e.id);
        let side = side_of(&registry, e);
        let whole = decode(&registry, &bytes, side.clone());
        let bytewise = reader(OneByte::new(&bytes), &registry, &side).read_all().map(|s| summary(&s));
        assert_eq!(whole, bytewise, "{}: whole and byte-at-a-time reads differ", e.id);
        match whole {
            Ok(got) => {
                assert_eq!(e.expect, "ok", "{}: decoded, expected {}", e.id, e.expect);
                assert_eq!(Some(&got), e.expected.as_ref(), "{}: decoded content differs", e.id);
            }
            Err(err) => {
                assert!(expected_codes.contains(e.expect.as_str()), "{}: unknown code {}", e.id, e.expect);
                assert_eq!(err.code().as_str(), e.expect, "{}: {err}", e.id);
            }
        }
    }
}

#[test]
fn seekable_reader_agrees_with_streaming_reader_on_valid_vectors() {
    let registry = gradwire::registry().unwrap();
    for (id, bytes, side) in valid_vectors() {
        let stream = reader(&bytes[..], &registry, &side).read_all().unwrap();
        let mut seek = SeekableReader::open(std::io::Cursor::new(&bytes), &registry, Limits::default()).unwrap();
        if let Some(side) = &side {
            seek.set_side_info(side.clone());
        }
        for t in &stream.tensors {
            let values = seek.read_tensor(t.descriptor.tensor_id).unwrap();
            let a: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u32> = t.values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(a, b, "{id}: tensor {}", t.descriptor.name);
        }
    }
}

#[test]
fn every_prefix_is_truncated_and_salvage_keeps_complete_chunks() {
    let registry = gradwire::registry().unwrap();
    for (id, bytes, side) in valid_vectors() {
        let chunk_ends: Vec<usize> = {
            let (_, recs) = split(&bytes);
            let mut pos = 16;
            let mut ends = Vec::new();
            for r in &recs {
                pos += 32 + r.body.len() + (8 - r.body.len() % 8) % 8;
                if r.rtype == record::CHUNK {
                    ends.push(pos - (8 - r.body.len() % 8) % 8);
                }
            }
            ends
        };
        for cut in 0..bytes.len() {
            let mut reader = reader(&bytes[..cut], &registry, &side);
            let mut chunks = 0;
            let err = loop {
                match reader.next_event() {
                    Ok(Some(Event::Chunk(_))) => chunks += 1,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("{id}: prefix of {cut} bytes decoded as complete"),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.code(), ErrorCode::Truncated, "{id} cut at {cut}: {err}");
            let complete = chunk_ends.iter().filter(|&&end| end <= cut).count();
            // A chunk counts once its body is complete; its padding may still be missing.
            let with_padding = chunk_ends.iter().filter(|&&end| end + 8 <= cut).count();
            assert!(
                chunks >= with_padding.min(complete) && chunks <= complete,
                "{id} cut at {cut}: {chunks} chunks, {complete} complete"
            );
        }
    }
}

#[test]
fn every_single_bit_flip_is_an_error() {
    let registry = gradwire::registry().unwrap();
    for (id, bytes, side) in valid_vectors() {
        let mut flipped = bytes.clone();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                flipped[i] ^= 1 << bit;
                let result = reader(&flipped[..], &registry, &side).read_all();
                assert!(result.is_err(), "{id}: flipping bit {bit} of byte {i} went undetected");
                flipped[i] ^= 1 << bit;
            }
        }
    }
}

#[test]
fn errors_say_where() {
    let registry = gradwire::registry().unwrap();
    let mut b = base(&registry);
    let off = record_offsets(&b)[3];
    b[off + 40] ^= 1;
    let err = Reader::new(&b[..], &registry).read_all().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ChecksumBody);
    assert_eq!(err.location().record, Some(3));
    assert_eq!(err.location().byte_offset, Some(off as u64));
    let b = edit(&base(&registry), |recs| {
        let c = first(recs, record::CHUNK);
        let (h, _) = ChunkHeader::decode(&c.body, 0).unwrap();
        assert_eq!(h.chunk_index, 0);
        c.body.truncate(c.body.len() - 4);
    });
    let err = Reader::new(&b[..], &registry).read_all().unwrap_err();
    assert_eq!(err.code(), ErrorCode::CodecOutputSize);
    assert_eq!(err.location().tensor.as_deref(), Some("a"));
    assert_eq!(err.location().chunk, Some(0));
    assert!(err.to_string().contains("tensor \"a\", chunk 0"), "{err}");
}

#[test]
fn random_access_refuses_invalid_vectors_it_can_see() {
    let registry = gradwire::registry().unwrap();
    // Damage a random-access reader meets when opening a file (preamble, header, END, INDEX,
    // descriptors) must be refused with the same code as streaming; damage inside chunks it has
    // not read yet is found when a chunk is read. Nothing may panic.
    let same_code_on_open = [
        "bad_magic",
        "checksum_preamble",
        "unsupported_version",
        "unsupported_feature",
        "unsupported_codec",
        "unsupported_dtype",
        "pipeline_invalid",
        "invalid_params",
        "shape_overflow",
    ];
    for e in load_manifest().into_iter().filter(|e| e.expect != "ok") {
        let bytes = std::fs::read(vectors_dir().join(&e.file)).unwrap();
        let side = side_of(&registry, &e);
        let result =
            SeekableReader::open(std::io::Cursor::new(&bytes), &registry, Limits::default()).and_then(|mut r| {
                if let Some(side) = &side {
                    r.set_side_info(side.clone());
                }
                let ids: Vec<u32> = r.tensors().map(|t| t.tensor_id).collect();
                ids.into_iter().try_for_each(|id| r.read_tensor(id).map(drop))
            });
        if same_code_on_open.contains(&e.expect.as_str()) || e.expect == "truncated" {
            let err = result.expect_err(&e.id);
            assert_eq!(err.code().as_str(), e.expect, "{}: {err}", e.id);
        }
    }
}
