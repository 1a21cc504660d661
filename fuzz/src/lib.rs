//! One harness for every gradwire fuzz target, with three oracles:
//!
//! 1. no panic, no unbounded allocation: every input is decoded under tight [`Limits`];
//! 2. the same result whether the input arrives whole or one byte at a time;
//! 3. round trip: encoding then decoding returns the values (bit for bit for lossless pipelines,
//!    the specified rounding for f16/bf16).
//!
//! Inputs that fail their checksums stop at the first record, so [`fix_crcs`] repairs every CRC
//! a mutated stream's framing allows, letting the fuzzer reach record and codec parsing.

use std::io::{Cursor, Read};
use std::sync::LazyLock;

use gradwire::format::crc32c;
use gradwire::testing::OneByteReader;
use gradwire::{DType, Limits, Reader, Registry, SeekableReader, StreamHeader, TensorSpec, Writer, WriterOptions};

/// Every codec linked into the build, built once (not per input: that would dominate small inputs).
static REGISTRY: LazyLock<Registry> = LazyLock::new(|| gradwire::registry().expect("registry"));

/// Small limits, so that a fuzzer finds allocation bugs instead of exhausting memory.
#[must_use]
pub fn tight_limits() -> Limits {
    Limits {
        max_record_body: 1 << 20,
        max_chunk_decoded: 1 << 18,
        max_header_body: 1 << 16,
        max_tensors: 64,
        max_open_tensors: 8,
        max_rank: 8,
        max_name_len: 64,
        max_stages: 4,
        max_param_len: 64,
        max_tensor_bytes: 1 << 22,
    }
}

/// What a decode produced, comparable across runs (values by bits).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    tensors: Vec<(String, Vec<u64>, Vec<u32>)>,
    error: Option<String>,
}

fn outcome(reader: Reader<'_, impl Read>) -> Outcome {
    let (stream, error) = reader.read_all_salvage();
    Outcome {
        tensors: stream
            .tensors
            .iter()
            .map(|t| {
                (t.descriptor.name.clone(), t.descriptor.shape.clone(), t.values.iter().map(|v| v.to_bits()).collect())
            })
            .collect(),
        error: error.map(|e| e.to_string()),
    }
}

/// Oracles 1 and 2 on arbitrary bytes.
pub fn decode_whole_and_bytewise(data: &[u8]) {
    let registry = &*REGISTRY;
    let options = gradwire::ReaderOptions::default().limits(tight_limits());
    let whole = outcome(Reader::with_options(data, registry, options));
    let bytewise = outcome(Reader::with_options(OneByteReader::new(data), registry, options));
    assert_eq!(whole, bytewise, "whole and byte-at-a-time reads differ");
}

/// Random access must never panic, and must agree with the streaming reader on valid files: a
/// valid stream whose END is the last 64 bytes. (Bytes after END are allowed for a stream but not
/// for a file, FORMAT.md §8: there random access may fail, or see a different END.)
pub fn seekable_agrees(data: &[u8]) {
    let registry = &*REGISTRY;
    let limits = tight_limits();
    let streamed = Reader::with_options(data, registry, gradwire::ReaderOptions::default().limits(limits)).read_all();
    let valid_file = streamed
        .as_ref()
        .ok()
        .and_then(|s| s.end)
        .is_some_and(|e| e.stream_len.checked_add(64) == Some(data.len() as u64));
    let opened = SeekableReader::open(Cursor::new(data), registry, limits);
    let Ok(mut seek) = opened else {
        assert!(!valid_file, "a valid file failed to open: {:?}", opened.err());
        return;
    };
    let n = seek.tensors().count() as u32;
    for id in 0..n {
        let values = seek.read_tensor(id);
        if let (true, Ok(stream)) = (valid_file, &streamed) {
            let got: Vec<u32> = values.expect("a valid file's tensor").iter().map(|v| v.to_bits()).collect();
            let want: Vec<u32> = stream.tensors[id as usize].values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "random access disagrees with streaming");
        }
    }
}

/// Repairs the preamble CRC and, record by record while the framing holds, body and header CRCs.
pub fn fix_crcs(data: &mut [u8]) {
    if data.len() < 16 {
        return;
    }
    let crc = crc32c(&data[..12]);
    data[12..16].copy_from_slice(&crc.to_le_bytes());
    let mut pos = 16usize;
    while pos + 32 <= data.len() {
        let body_len = u64::from_le_bytes(data[pos + 8..pos + 16].try_into().unwrap_or_default());
        let Some(end) = usize::try_from(body_len).ok().and_then(|l| pos.checked_add(32)?.checked_add(l)) else { break };
        if end <= data.len() {
            let crc = crc32c(&data[pos + 32..end]);
            data[pos + 20..pos + 24].copy_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32c(&data[pos..pos + 28]);
        data[pos + 28..pos + 32].copy_from_slice(&crc.to_le_bytes());
        let padded = end.saturating_add((8 - end % 8) % 8);
        if end > data.len() {
            break;
        }
        pos = padded;
    }
}

const ARRAY_TO_BYTES: &[&str] = &["raw", "f16", "bf16"];

/// Oracle 3: the first byte picks an array->bytes codec and whether a zstd stage follows, the
/// second the zstd level (-7..=9: levels above 9 only make compression slower, which starves the
/// fuzzer, and their frames take the same decoder paths), the next two a chunk size, the rest are
/// values.
pub fn roundtrip(data: &[u8]) {
    let [p, level, c0, c1, rest @ ..] = data else { return };
    let first = ARRAY_TO_BYTES[usize::from(*p % 3)];
    let spec =
        if *p & 0x80 != 0 { format!("{first}+zstd:level={}", i32::from(*level % 17) - 7) } else { first.to_owned() };
    let spec = spec.as_str();
    let values: Vec<f32> = rest.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    // At most about 8 chunks: each zstd chunk builds a fresh compression context (about 1 ms at
    // level 9), which held this target to ~500 executions per second; many-chunk streams are
    // the decoding targets' business.
    let chunk = u64::from(u16::from_le_bytes([*c0, *c1])).max(1).max(values.len() as u64 / 8);
    let registry = &*REGISTRY;
    let mut w =
        Writer::new(Vec::new(), registry, &StreamHeader::default(), WriterOptions::default().chunk_elements(chunk))
            .expect("header");
    let pipeline = registry.parse_pipeline(spec).expect("pipeline");
    let spec_t = TensorSpec { dtype: DType::F32, ..TensorSpec::new("x", &[values.len() as u64], pipeline) };
    w.write_tensor(spec_t, &values).expect("encode");
    let bytes = w.finish().expect("finish");
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode own output");
    let got: Vec<u32> = decoded.tensors[0].values.iter().map(|v| v.to_bits()).collect();
    let want: Vec<u32> = values
        .iter()
        .map(|&v| match spec.split('+').next() {
            Some("f16") => half::f16::from_f32(v).to_f32().to_bits(),
            Some("bf16") => half::bf16::from_f32(v).to_f32().to_bits(),
            _ => v.to_bits(),
        })
        .collect();
    assert_eq!(got, want, "round trip through {spec} changed values");
}

/// Every registered codec, directly through its stage trait: the first byte picks the codec, the
/// next two the parameter length, then the parameters (arbitrary: the factory must reject bad
/// ones, never panic), two bytes the value count, and the rest is the payload to decode. For an
/// array->bytes stage the payload's first values are also encoded and decoded again: a lossless
/// codec must return the same bits. New plugins are fuzzed here without a new target.
pub fn stages(data: &[u8]) {
    use gradwire::{ChunkContext, Stage};
    let registry = &*REGISTRY;
    let descriptors: Vec<_> = registry.descriptors().copied().collect();
    let [pick, p0, p1, rest @ ..] = data else { return };
    let d = descriptors[usize::from(*pick) % descriptors.len()];
    let param_len = usize::from(u16::from_le_bytes([*p0, *p1]) % 64);
    let Some((params, rest)) = rest.split_at_checked(param_len) else { return };
    let [n0, n1, payload @ ..] = rest else { return };
    let n = usize::from(u16::from_le_bytes([*n0, *n1]) % 4096);
    let factory = registry.get(d.id).expect("registered");
    let Ok(stage) = factory.build_in(d.version, params, registry, &gradwire::Limits::default()) else { return };
    let ctx = ChunkContext { tensor_name: "t", tensor_id: 0, chunk_index: 0, element_offset: 0, seed: 1, side: None };
    match stage {
        Stage::ArrayToBytes(s) => {
            let mut out = vec![0f32; n];
            let _ = s.decode(payload, &ctx, &mut out);
            let values: Vec<f32> =
                payload.chunks_exact(4).take(n).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let mut encoded = Vec::new();
            if s.encode(&values, &ctx, &mut encoded).is_ok() {
                assert!(
                    encoded.len() <= s.max_encoded_len(values.len()).expect("bound"),
                    "{}: encoder exceeds its bound",
                    d.name
                );
                let mut back = vec![0f32; values.len()];
                // A stage that decodes against side information (none here) may only refuse.
                if s.side_info() != gradwire::SideInfoUse::None {
                    let e = s.decode(&encoded, &ctx, &mut back).expect_err("no side information");
                    assert_eq!(e.code(), gradwire::ErrorCode::SideInfoMissing, "{}", d.name);
                    return;
                }
                s.decode(&encoded, &ctx, &mut back).expect("a codec decodes its own output");
                if d.lossless {
                    let same = values.iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{}: lossless round trip changed values", d.name);
                }
            }
        }
        Stage::BytesToBytes(s) => {
            let mut out = Vec::new();
            let _ = s.decode(payload, n * 4, &mut out);
            assert!(out.len() <= n * 4, "{}: decoded past its limit", d.name);
            let mut encoded = Vec::new();
            if s.encode(payload, &mut encoded).is_ok() {
                let mut back = Vec::new();
                s.decode(&encoded, payload.len(), &mut back).expect("a codec decodes its own output");
                assert_eq!(back, payload, "{}: bytes round trip changed the data", d.name);
            }
        }
        Stage::ArrayToArray(s) => {
            let values: Vec<f32> =
                payload.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if let Ok(len) = s.encoded_len(n) {
                if values.len() >= len {
                    let mut out = vec![0f32; n];
                    let _ = s.decode(&values[..len], &ctx, &mut out);
                }
            }
        }
    }
}

/// `signsgd` streams and their aggregation: the first byte picks the scale mode, the number of
/// inputs (1..=5) and whether values are split into chunks of 37; the rest are f32 values, dealt
/// round-robin to the inputs. Oracles: each decoded value is its input's sign (0 -> +1) times a
/// non-negative scale; the compressed-domain majority vote equals a vote over decoded signs;
/// the compressed-domain mean equals the weighted mean of decoded values.
pub fn signsgd(data: &[u8]) {
    use gradwire::aggregate::{AggregateOptions, Rule, aggregate};
    let [pick, rest @ ..] = data else { return };
    let scale = ["signsgd:scale=none", "signsgd:scale=mean", "signsgd:scale=block,block=32"][usize::from(pick % 3)];
    let k = usize::from(pick / 3 % 5) + 1;
    let chunk = if pick & 0x80 != 0 { 37 } else { 1 << 20 };
    let all: Vec<f32> = rest.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let n = all.len() / k;
    let registry = &*REGISTRY;
    let mut streams = Vec::new();
    let mut decoded = Vec::new();
    for i in 0..k {
        let values: Vec<f32> = all.iter().skip(i).step_by(k).take(n).copied().collect();
        let mut w =
            Writer::new(Vec::new(), registry, &StreamHeader::default(), WriterOptions::default().chunk_elements(chunk))
                .expect("header");
        let spec = TensorSpec::new("x", &[n as u64], registry.parse_pipeline(scale).expect("pipeline"));
        if let Err(e) = w.write_tensor(spec, &values) {
            // Only a scale over an infinity or NaN may be refused (the mean of finite values is finite).
            assert!(!scale.ends_with("none") && values.iter().any(|v| !v.is_finite()), "refused: {e}");
            return;
        }
        let bytes = w.finish().expect("finish");
        let got = Reader::new(&bytes[..], registry).read_all().expect("decode own output").tensors.remove(0).values;
        for (v, g) in values.iter().zip(&got) {
            assert_eq!(g.is_sign_negative(), *v < 0.0, "sign of {v} decoded as {g}");
            assert!(g.is_finite(), "scale not finite");
        }
        streams.push(bytes);
        decoded.push(got);
    }
    let inputs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
    let mut options = AggregateOptions::new(Rule::Majority);
    options.output = Some(registry.parse_pipeline("raw").expect("raw"));
    let (out, _) = aggregate(inputs.clone(), registry, &options, Vec::new()).expect("majority");
    let vote = Reader::new(&out[..], registry).read_all().expect("vote decodes").tensors.remove(0).values;
    for (i, v) in vote.iter().enumerate() {
        let negatives = decoded.iter().filter(|d| d[i] < 0.0).count();
        let expect = if 2 * negatives > k { -1.0 } else { 1.0 };
        assert_eq!(v.to_bits(), f32::to_bits(expect), "vote of value {i}");
    }
    let mut options = AggregateOptions::new(Rule::Mean);
    options.output = Some(registry.parse_pipeline("raw").expect("raw"));
    let (out, report) = aggregate(inputs, registry, &options, Vec::new()).expect("mean");
    let mean = Reader::new(&out[..], registry).read_all().expect("mean decodes").tensors.remove(0).values;
    for (i, m) in mean.iter().enumerate() {
        let want = decoded.iter().zip(&report.weights).fold(0f32, |acc, (d, w)| acc + *w as f32 * d[i]);
        assert_eq!(m.to_bits(), want.to_bits(), "mean of value {i}");
    }
}

/// `m22` round trip: the first byte picks bits (1..=8), M and the family, the second how many
/// values are exactly zero (every k-th) and whether an error target is set, the rest are f32
/// values (non-finite ones replaced).
/// Oracles: the stream decodes; every value decodes to the point of the cell it fell in (the
/// midpoints of the chunk's own points, from the payload) or to an exact zero; quantizing the
/// decoded values again changes nothing.
pub fn m22(data: &[u8]) {
    use gradwire::m22::chunk;
    let [pick, zero_every, rest @ ..] = data else { return };
    let bits = pick % 8 + 1;
    let mut spec =
        format!("m22:bits={bits},m={},family={}", (pick / 8) % 5, if pick & 0x80 != 0 { "weibull" } else { "gennorm" });
    // The top three bits of the second byte pick the mode (error target, cell width, rate
    // target), with its value from the low five bits, which also space the exact zeros.
    let low = zero_every & 0x1F;
    let uniform = zero_every >> 5 >= 6;
    match zero_every >> 5 {
        4 | 5 => spec.push_str(&format!(",mse=1e-{low}")),
        6 => spec.push_str(&format!(",step=1e-{}", low % 12)),
        7 => spec.push_str(&format!(",entropy={}", f32::from(low) / 4.0 + 0.1)),
        _ => {}
    }
    let zero_every = &low;
    let values: Vec<f32> = rest
        .chunks_exact(4)
        .enumerate()
        .map(|(i, b)| {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if *zero_every > 0 && i % usize::from(*zero_every) == 0 {
                0.0
            } else if v.is_finite() {
                v
            } else {
                1.0
            }
        })
        .collect();
    let registry = &*REGISTRY;
    let factory = registry.get_by_name("m22").expect("m22 is linked");
    let params = registry.parse_pipeline(&spec).expect("pipeline").remove(0).params;
    let version = factory.version_for(&params);
    let Ok(gradwire::Stage::ArrayToBytes(stage)) = factory.build(version, &params) else { panic!("m22 builds") };
    let ctx = gradwire::ChunkContext {
        tensor_name: "t",
        tensor_id: 0,
        chunk_index: 0,
        element_offset: 0,
        seed: 0,
        side: None,
    };
    let mut bytes = Vec::new();
    stage.encode(&values, &ctx, &mut bytes).expect("finite values encode");
    assert!(bytes.len() <= stage.max_encoded_len(values.len()).expect("bound"), "encoder exceeds its bound");
    let mut out = vec![0f32; values.len()];
    stage.decode(&bytes, &ctx, &mut out).expect("a codec decodes its own output");
    let parsed = chunk::parse(&bytes, 1 << bits, version).expect("parses");
    if uniform {
        // Cells are intervals in order: the output is monotone in the input.
        let mut pairs: Vec<(f32, f32)> = values.iter().copied().zip(out.iter().copied()).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pairs.windows(2).all(|w| w[0].0 == w[1].0 || w[0].1 <= w[1].1), "output not monotone");
        assert!(out.iter().all(|y| parsed.table.contains(y)), "a value that is not a point");
        return;
    }
    let zero = bytes[1] & 1 == 1;
    let points = &parsed.table[usize::from(zero)..];
    let cell = |x: f32| gradwire::m22::reference_quantize(x, points, zero);
    for (i, (&x, &y)) in values.iter().zip(&out).enumerate() {
        assert_eq!(y.to_bits(), cell(x).to_bits(), "value {i} = {x} decoded as {y}");
        assert_eq!(cell(y).to_bits(), y.to_bits(), "point {y} is not in its own cell");
    }
}

/// `intrinsic` streams: the first byte picks the family, the scaling, the schedule and whether
/// values are split into chunks of 37; the second the dimension (1..=256) and the seed; the rest
/// are f32 values (non-finite ones replaced). Oracles: the stream decodes to the right length;
/// with the projection scaling the adjoint identity `<A c, g> = <c, c>` holds for `c = A^T g`
/// (each chunk's coefficients are read back from the raw payload); an `srht` projection never
/// lengthens a chunk (up to rounding); decoding arbitrary coefficients never panics.
pub fn intrinsic(data: &[u8]) {
    let [pick, dim, rest @ ..] = data else { return };
    let family = ["srht", "rademacher", "sparse,nonzeros=3"][usize::from(pick % 3)];
    let unbiased = pick & 0x04 != 0;
    let schedule = [",schedule=fixed", ",schedule=group,groups=3,round=7", ",schedule=round,round=5", ""]
        [usize::from(pick >> 3 & 3)];
    let chunk: usize = if pick & 0x80 != 0 { 37 } else { 1 << 20 };
    let spec = format!(
        "intrinsic:dim={},family={family},seed={}{schedule}{}+raw",
        u32::from(*dim) + 1,
        dim >> 4,
        if unbiased { ",scaling=unbiased" } else { "" }
    );
    let values: Vec<f32> = rest
        .chunks_exact(4)
        .map(|b| {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if v.is_finite() && v.abs() < 1e30 { v } else { 1.0 }
        })
        .collect();
    let registry = &*REGISTRY;
    let bytes = one_tensor_stream(&spec, &values, chunk);
    let mut reader =
        Reader::with_options(&bytes[..], registry, gradwire::ReaderOptions::default().decode_chunks(false));
    let mut coefficients: Vec<Vec<f32>> = Vec::new();
    while let Some(e) = reader.next_event().expect("events") {
        if let gradwire::Event::EncodedChunk(c) = e {
            coefficients
                .push(c.payload.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
        }
    }
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode own output").tensors.remove(0).values;
    assert_eq!(decoded.len(), values.len());
    for ((g, y), c) in values.chunks(chunk).zip(decoded.chunks(chunk)).zip(&coefficients) {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
        let (gg, yy, cc) = (dot(g, g), dot(y, y), dot(c, c));
        assert!(yy.is_finite() && cc.is_finite(), "{spec}: non-finite output from finite input");
        if !unbiased {
            let gap = (dot(y, g) - cc).abs();
            assert!(gap <= 1e-3 * (yy * gg).sqrt() + 1e-30, "<A c, g> = {} but <c, c> = {cc}", dot(y, g));
            if family == "srht" {
                assert!(yy <= gg * (1.0 + 1e-3) + 1e-30, "projection lengthened a chunk: {yy} > {gg}");
            }
        }
    }
    // Arbitrary coefficients (the input bytes themselves) decode without panic.
    let n = values.len().min(chunk);
    let payload: Vec<u8> = rest.iter().copied().take(4 * n.min(usize::from(*dim) + 1)).collect();
    decode_arbitrary(&spec, n, &payload);
}

/// Archives (`spec/FORMAT.md` §18) of arbitrary bytes, and of valid streams with arbitrary bytes
/// spliced in: finding the layout never panics; every entry it reports decodes or fails with a
/// typed error; entries do not overlap and lie inside the input; the index, when used, lists the
/// same entries a walk finds.
pub fn archive(data: &[u8]) {
    use gradwire::archive::{Window, encode_index, encode_trailer, read_layout};
    let registry = &*REGISTRY;
    let check = |bytes: &[u8]| {
        let mut input = Cursor::new(bytes);
        let layout = read_layout(&mut input, registry, tight_limits()).expect("in-memory input never fails to read");
        let mut end = 0;
        for e in &layout.entries {
            assert!(e.offset >= end && e.offset + e.length <= bytes.len() as u64, "entry outside the input");
            end = e.offset + e.length;
            let window = Window::new(Cursor::new(bytes), e.offset, e.length);
            let _ = Reader::with_options(window, registry, gradwire::ReaderOptions::default().limits(tight_limits()))
                .read_all();
        }
        layout
    };
    check(data);
    // A valid two-entry archive with the input spliced into its middle, then indexed.
    let stream = |v: f32| {
        let options = WriterOptions::default().chunk_elements(2); // within tight_limits()
        let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), options).expect("writer");
        w.write_tensor(TensorSpec::new("x", &[2], registry.parse_pipeline("raw").expect("raw")), &[v, -v])
            .expect("write");
        w.finish().expect("finish")
    };
    let mut bytes = stream(1.0);
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(&stream(2.0));
    let walked = check(&bytes);
    assert!(walked.index_offset.is_none());
    assert!(walked.entries.len() >= 2, "the two intact streams around the damage are found: {:?}", walked.damaged);
    let index = encode_index(&walked.entries).expect("a small index");
    let offset = bytes.len() as u64;
    bytes.extend_from_slice(&index);
    bytes.extend_from_slice(&encode_trailer(offset, index.len() as u64));
    let indexed = check(&bytes);
    assert_eq!(indexed.index_offset, Some(offset));
    assert_eq!(indexed.entries, walked.entries);
}

/// `randk` streams: the first byte picks the fraction (odd numerators over 128, 1/128..=127/128)
/// and the scaling, the second the seed and whether values are split into chunks of 37; the rest
/// are f32 values. Oracles: the kept positions are exactly `partial_shuffle(n, k)` of the chunk's
/// generator (FORMAT.md §9.4, recomputed here); a kept value decodes to its input (times `n/k`,
/// NaN canonical, with the unbiased scaling) and every other value to `+0.0`; decoding arbitrary
/// kept values never panics.
pub fn randk(data: &[u8]) {
    let [pick, seed, rest @ ..] = data else { return };
    let fraction = f64::from(pick >> 1 | 1) / 128.0;
    let unbiased = pick & 1 != 0;
    let chunk: usize = if seed & 0x80 != 0 { 37 } else { 1 << 20 };
    let spec = format!("randk:fraction={fraction},seed={seed}{}+raw", if unbiased { ",scaling=unbiased" } else { "" });
    let values: Vec<f32> = rest.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let registry = &*REGISTRY;
    let bytes = one_tensor_stream(&spec, &values, chunk);
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode own output").tensors.remove(0).values;
    assert_eq!(decoded.len(), values.len());
    for (c, (x, y)) in values.chunks(chunk).zip(decoded.chunks(chunk)).enumerate() {
        let n = x.len();
        let k = gradwire::sparsify::kept_count((fraction * 4_294_967_296.0).round() as u32, n);
        let g = (n as f64 / k.max(1) as f64) as f32;
        let mut table = Vec::new();
        gradwire::rng::SeededRng::new(gradwire::rng::chunk_seed(u64::from(*seed), "x", c as u64))
            .partial_shuffle(n as u32, k, &mut table);
        let mut kept = vec![false; n];
        table[..k].iter().for_each(|&p| kept[p as usize] = true);
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            let scaled = if unbiased { a * g } else { *a };
            let want = if !kept[i] {
                0
            } else if scaled.is_nan() && unbiased {
                0x7FC0_0000
            } else {
                scaled.to_bits()
            };
            assert_eq!(b.to_bits(), want, "value {i} ({a}, kept: {}) decoded as {b}", kept[i]);
        }
    }
    decode_arbitrary(&spec, values.len().min(chunk), rest);
}

/// `topk` streams: the first byte picks the fraction (odd numerators over 32, 1/32..=31/32), the
/// value format (f32 or bf16, built in or through the nested pipelines `(raw+zstd:level=1)` and
/// `(bf16+zstd:level=1)`) and whether values are split into chunks of 37; the rest are f32 values
/// (non-finite ones replaced). Also: at most `k` values decode to a nonzero, and at least `k`
/// minus those whose (rounded) value is a zero.
/// Oracles: every decoded value is `+0.0` or its input (bf16-rounded with `values=bf16`); every
/// kept magnitude is at least every dropped one; the payload fits the declared bound (the writer
/// checks); arbitrary payloads decode or fail with a typed error.
pub fn topk(data: &[u8]) {
    let [pick, rest @ ..] = data else { return };
    let fraction = f64::from(pick >> 1 & 0x1F | 1) / 32.0;
    let bf16 = pick & 1 != 0;
    let nested = pick & 0x40 != 0;
    let chunk: usize = if pick & 0x80 != 0 { 37 } else { 1 << 20 };
    let values_text = match (bf16, nested) {
        (false, false) => "",
        (true, false) => ",values=bf16",
        (false, true) => ",values=(raw+zstd:level=1)",
        (true, true) => ",values=(bf16+zstd:level=1)",
    };
    let spec = format!("topk:fraction={fraction}{values_text}");
    let values = finite_values(rest);
    let registry = &*REGISTRY;
    let bytes = one_tensor_stream(&spec, &values, chunk);
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode own output").tensors.remove(0).values;
    for (x, y) in values.chunks(chunk).zip(decoded.chunks(chunk)) {
        // Kept: decoded to its (rounded) input, not a zero. A value that is or rounds to a zero
        // cannot be told kept from dropped, and is left out of both.
        let mut smallest_kept = f32::INFINITY;
        let mut largest_dropped = 0f32;
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            let want = if bf16 { half::bf16::from_f32(*a).to_f32() } else { *a };
            if *b != 0.0 {
                assert_eq!(b.to_bits(), want.to_bits(), "value {i}: {a} decoded as {b}");
                smallest_kept = smallest_kept.min(a.abs());
            } else if want != 0.0 {
                assert_eq!(b.to_bits(), 0, "value {i}: dropped, so +0.0, not {b}");
                largest_dropped = largest_dropped.max(a.abs());
            }
        }
        assert!(smallest_kept >= largest_dropped, "kept {smallest_kept} < dropped {largest_dropped}");
        let n = x.len();
        let k = gradwire::sparsify::kept_count((fraction * 4_294_967_296.0).round() as u32, n);
        let nonzero = y.iter().filter(|v| **v != 0.0).count();
        let zeros =
            x.iter().filter(|a| if bf16 { half::bf16::from_f32(**a).to_f32() == 0.0 } else { **a == 0.0 }).count();
        assert!(nonzero <= k && nonzero + zeros >= k, "{nonzero} nonzero of k = {k} ({zeros} zeros)");
    }
    decode_arbitrary(&spec, values.len().min(chunk), rest);
}

/// `qsgd` and `sparse-dither` streams: the first byte picks the codec, its parameter (levels
/// 1, 2, 4, ..., 128 or nu 1e-6, 1e-4, 0.01, 0.1, 0.5, 1, 4, 16), the variant and whether values
/// are split into chunks of 37; the rest are f32 values (non-finite ones replaced).
/// Oracles: every decoded value is `+0.0` or has its input's sign and lies within one grid step
/// of it; deterministic sparse dithering keeps
/// `||y - x||^2 <= nu ||x||^2` per chunk; `qsgd` never decodes a magnitude above the norm (`s`
/// levels at most); the only refusal is `limit_exceeded` (a step outside f32's range, or a value
/// that stochastic rounding would take beyond it); arbitrary payloads decode or fail with a
/// typed error.
pub fn dither(data: &[u8]) {
    let [pick, rest @ ..] = data else { return };
    let qsgd = pick & 1 != 0;
    let unbiased = pick & 2 != 0;
    let chunk: usize = if pick & 0x80 != 0 { 37 } else { 1 << 20 };
    let which = usize::from(pick >> 2 & 7);
    let levels = 1u32 << which;
    let nu = [1e-6, 1e-4, 0.01, 0.1, 0.5, 1.0 / 49.0, 4.0, 16.0][which];
    let spec = if qsgd {
        format!("qsgd:levels={levels}")
    } else {
        format!("sparse-dither:nu={nu}{}", if unbiased { ",variant=unbiased" } else { "" })
    };
    let values = finite_values(rest);
    let registry = &*REGISTRY;
    let options = WriterOptions::default().chunk_elements(chunk as u64);
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), options).expect("header");
    let pipeline = registry.parse_pipeline(&spec).expect("pipeline");
    if let Err(e) = w.write_tensor(TensorSpec::new("x", &[values.len() as u64], pipeline), &values) {
        assert_eq!(e.code(), gradwire::ErrorCode::LimitExceeded, "{spec}: {e}");
        return;
    }
    let bytes = w.finish().expect("finish");
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode own output").tensors.remove(0).values;
    for (x, y) in values.chunks(chunk).zip(decoded.chunks(chunk)) {
        let energy: f64 = x.iter().map(|v| f64::from(*v).powi(2)).sum();
        let norm = energy.sqrt();
        let n = x.len() as f64;
        // One grid step, with slack for the f32 step and the f32 rounding of decoded values.
        let step = if qsgd { norm / f64::from(levels) } else { 2.0 * (nu / n).sqrt() * norm } * (1.0 + 1e-6);
        // One step at most: half a step for nearest rounding, except next to f32::MAX, where it
        // takes the level below (the chunk's total error still meets nu, checked below).
        let reach = step;
        // A subnormal step is only exact to 2^-149, and each decoded value carries that k times.
        let quantum = 2f64.powi(-149);
        let mut error = 0f64;
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            let diff = (f64::from(*a) - f64::from(*b)).abs();
            let levels_here = if step > 0.0 { f64::from(a.abs()) / step + 2.0 } else { 0.0 };
            let slack = f64::from(b.abs()) * 1e-7 + levels_here * quantum;
            assert!(b.to_bits() == 0 || a.signum() == b.signum(), "{spec}: value {i}: {a} decoded as {b}");
            assert!(diff <= reach + slack, "{spec}: value {i}: {a} decoded as {b}, step {step}");
            if qsgd {
                let most = norm * (1.0 + 1e-6) + f64::from(levels) * quantum;
                assert!(f64::from(b.abs()) <= most, "{spec}: value {i}: {b} above the norm {norm}");
            }
            error += diff * diff;
        }
        if !qsgd && !unbiased {
            assert!(error <= nu * energy, "{spec}: error {error:e} above nu ||x||^2 = {:e}", nu * energy);
        }
    }
    decode_arbitrary(&spec, values.len().min(chunk), rest);
}

/// `spherical` streams: the first byte picks the block length (1..=16) and alpha (0.05, 0.2, 0.5
/// or 0.9), the second the cap on draws (1..=64, kept small so a run stays fast) and whether
/// values are split into chunks of 37; the rest are f32 values (non-finite ones replaced).
/// Oracles: every block of the decoded chunk is within `alpha ||x||^2` of its input; arbitrary
/// payloads decode or fail with a typed error.
pub fn spherical(data: &[u8]) {
    let [pick, cap, rest @ ..] = data else { return };
    let block = usize::from(pick & 0x0F) + 1;
    let alpha = [0.05, 0.2, 0.5, 0.9][usize::from(pick >> 4 & 3)];
    let draws = u32::from(cap & 0x3F) + 1;
    let chunk: usize = if cap & 0x80 != 0 { 37 } else { 1 << 20 };
    let spec = format!("spherical:alpha={alpha},block={block},draws={draws},seed={}", pick >> 6);
    let values = finite_values(rest);
    let registry = &*REGISTRY;
    let bytes = one_tensor_stream(&spec, &values, chunk);
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode own output").tensors.remove(0).values;
    for (x, y) in values.chunks(chunk).zip(decoded.chunks(chunk)) {
        for (a, b) in x.chunks(block).zip(y.chunks(block)) {
            let error: f64 = a.iter().zip(b).map(|(p, q)| (f64::from(*p) - f64::from(*q)).powi(2)).sum();
            let energy: f64 = a.iter().map(|p| f64::from(*p).powi(2)).sum();
            assert!(error <= alpha * energy, "{spec}: block {a:?} decoded as {b:?}");
        }
    }
    decode_arbitrary(&spec, values.len().min(chunk), rest);
}

/// `wyner-ziv` against side information. The first byte picks the mode (bits, step, or step and
/// modulus), rounding, scale, whether the writer holds the side information, and chunks of 37;
/// the second the step (`1.5 * 2^-s`), the modulus and the bits; the rest are 5-byte entries:
/// an f32 `x` (any bits) and a byte `o` that puts the side value `o/4` steps from `x` (or NaN).
/// Oracles: a bound stream decodes with its side information, every entry within the step (half
/// of it when rounding to nearest; non-finite and huge values exact), refuses other side
/// information (`side_info_mismatch`) and none (`side_info_missing`); an unbound stream meets
/// the bound where `|x - y| < (k/2 - 1) eps`; arbitrary payloads decode or fail with a typed
/// error.
pub fn wyner_ziv(data: &[u8]) {
    use gradwire::{ErrorCode, SideInfoMap};
    let [pick, knobs, rest @ ..] = data else { return };
    let stochastic = pick & 4 != 0;
    let writer_side = pick & 16 != 0;
    let chunk: usize = if pick & 32 != 0 { 37 } else { 1 << 20 };
    let step = 1.5f32 * 2f32.powi(-i32::from(knobs & 31));
    let modulus = [2u16, 3, 4, 8, 16, 64, 255, 256][usize::from(knobs >> 5)];
    let bits = 0.5 + f32::from(knobs & 15) / 2.0;
    let mode = match pick & 3 {
        0 => format!("bits={bits}"),
        1 => format!("step={step}"),
        _ => format!("step={step},modulus={modulus}"),
    };
    let spec = format!(
        "wyner-ziv:{mode}{}{}",
        if stochastic { ",rounding=stochastic" } else { "" },
        if pick & 8 != 0 { ",scale=one" } else { "" }
    );
    let (x, y): (Vec<f32>, Vec<f32>) = rest
        .chunks_exact(5)
        .map(|e| {
            let x = f32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            let o = e[4] as i8;
            let y = if o == i8::MAX || !x.is_finite() { f32::NAN } else { x + f32::from(o) * step * 0.25 };
            (x, y)
        })
        .unzip();
    let registry = &*REGISTRY;
    let side_map = |values: &[f32]| {
        let mut m = SideInfoMap::new();
        m.insert("x", "fuzz", values.to_vec());
        std::sync::Arc::new(m)
    };
    let options = WriterOptions::default().chunk_elements(chunk as u64);
    let mut w = Writer::new(
        Vec::new(),
        registry,
        &StreamHeader { seed: u64::from(*knobs), ..StreamHeader::default() },
        options,
    )
    .expect("header");
    if writer_side {
        w.set_side_info(side_map(&y));
    }
    let pipeline = registry.parse_pipeline(&spec).expect("pipeline");
    w.write_tensor(TensorSpec::new("x", &[x.len() as u64], pipeline), &x).expect("encode");
    let bytes = w.finish().expect("finish");
    let read = |side: Option<&[f32]>| {
        let mut r = Reader::new(&bytes[..], registry);
        if let Some(side) = side {
            r.set_side_info(side_map(side));
        }
        r.read_all().map(|mut s| s.tensors.remove(0).values)
    };
    let bound_mode = pick & 3 != 0; // the step is the given one
    let unbound_modulus = !writer_side && pick & 3 >= 2;
    let zero_prediction = !writer_side && pick & 3 < 2;
    let decoded = read((!zero_prediction).then_some(&y[..])).expect("decode own output");
    // Exact (a raw escape: non-finite or beyond the lattice), or within the step.
    let within = |a: f32, b: f32| {
        let reach = if stochastic { f64::from(step) } else { f64::from(step) / 2.0 };
        a.to_bits() == b.to_bits()
            || (a.is_finite()
                && (f64::from(a) - f64::from(b)).abs() <= reach * (1.0 + 1e-6) + f64::from(b.abs()) * 1e-7 + 1e-45)
    };
    for (i, ((&a, &b), &s)) in x.iter().zip(&decoded).zip(&y).enumerate() {
        let inside = !unbound_modulus || {
            let bound = (f64::from(modulus) / 2.0 - 1.0) * f64::from(step);
            s.is_finite() && (f64::from(a) - f64::from(s)).abs() < bound * (1.0 - 1e-9)
        };
        if bound_mode && inside && (writer_side || unbound_modulus || zero_prediction) {
            assert!(within(a, b), "{spec}: entry {i}: {a} decoded as {b} (side {s})");
        }
    }
    if writer_side && !x.is_empty() {
        assert_eq!(read(None).unwrap_err().code(), ErrorCode::SideInfoMissing, "{spec}");
        let mut other = y.clone();
        other[0] = f32::from_bits(other[0].to_bits() ^ 1);
        assert_eq!(read(Some(&other)).unwrap_err().code(), ErrorCode::SideInfoMismatch, "{spec}");
    }
    // Arbitrary payloads, decoded against the side information.
    let n = x.len().min(chunk);
    let built =
        registry.build_pipeline(&registry.parse_pipeline(&spec).expect("pipeline"), &tight_limits()).expect("build");
    let ctx = gradwire::ChunkContext {
        tensor_name: "x",
        tensor_id: 0,
        chunk_index: 0,
        element_offset: 0,
        seed: 0,
        side: Some(&y[..n]),
    };
    let mut out = vec![0f32; n];
    let _ = built.decode_chunk(rest, &ctx, &mut out);
}

/// `bytes` as little-endian f32 values, infinities and NaN replaced by 1.
fn finite_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if v.is_finite() { v } else { 1.0 }
        })
        .collect()
}

/// A stream of one tensor `x` holding `values` through `spec`, in chunks of `chunk` values.
fn one_tensor_stream(spec: &str, values: &[f32], chunk: usize) -> Vec<u8> {
    let registry = &*REGISTRY;
    let options = WriterOptions::default().chunk_elements(chunk as u64);
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), options).expect("header");
    let pipeline = registry.parse_pipeline(spec).expect("pipeline");
    w.write_tensor(TensorSpec::new("x", &[values.len() as u64], pipeline), values).expect("encode");
    w.finish().expect("finish")
}

/// Decodes `payload` as chunk 0 (of `n` values) of tensor `x` through `spec` under tight
/// limits: any outcome but a panic is fine.
fn decode_arbitrary(spec: &str, n: usize, payload: &[u8]) {
    let registry = &*REGISTRY;
    let built =
        registry.build_pipeline(&registry.parse_pipeline(spec).expect("pipeline"), &tight_limits()).expect("build");
    let ctx = gradwire::ChunkContext {
        tensor_name: "x",
        tensor_id: 0,
        chunk_index: 0,
        element_offset: 0,
        seed: 0,
        side: None,
    };
    let mut out = vec![0f32; n];
    let _ = built.decode_chunk(payload, &ctx, &mut out);
}
