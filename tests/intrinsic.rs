//! `intrinsic` and `randk` through the whole stack: cost on the wire, determinism across thread
//! counts, and aggregation, which averages coefficients (kept values) when the inputs share a
//! subspace (positions).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

use gradwire::aggregate::{AggregateOptions, Rule, aggregate};
use gradwire::{ErrorCode, Event, Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};

fn registry() -> Registry {
    gradwire::registry().unwrap()
}

use gradwire::testing::laplace as gradient;

const N: usize = 5000;

fn encode(registry: &Registry, codec: &str, values: &[f32], options: WriterOptions) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), options).unwrap();
    w.write_tensor(
        TensorSpec::new("fc.weight", &[values.len() as u64], registry.parse_pipeline(codec).unwrap()),
        values,
    )
    .unwrap();
    w.finish().unwrap()
}

fn decode(registry: &Registry, bytes: &[u8]) -> Vec<f32> {
    Reader::new(bytes, registry).read_all().unwrap().tensors.remove(0).values
}

/// Chunks of 2048: 5000 values in chunks of 2048, 2048 and 904.
fn chunked() -> WriterOptions {
    WriterOptions::default().chunk_elements(2048)
}

fn max_relative_gap(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn a_chunk_costs_32_bits_per_coefficient() {
    let registry = registry();
    let bytes = encode(&registry, "intrinsic:dim=300,seed=7+raw", &gradient(N, 1), chunked());
    let mut payloads = Vec::new();
    let mut reader =
        Reader::with_options(&bytes[..], &registry, gradwire::ReaderOptions::default().decode_chunks(false));
    while let Some(e) = reader.next_event().unwrap() {
        if let Event::EncodedChunk(c) = e {
            payloads.push(c.payload.len());
        }
    }
    assert_eq!(payloads, [1200, 1200, 1200]);
}

#[test]
fn the_same_seed_gives_the_same_bytes_on_any_number_of_threads() {
    let registry = registry();
    let g = gradient(N, 2);
    for family in ["srht", "rademacher", "sparse"] {
        let codec = format!("intrinsic:dim=64,family={family},seed=3+raw");
        let one = encode(&registry, &codec, &g, chunked().threads(1));
        let two = encode(&registry, &codec, &g, chunked().threads(2));
        assert_eq!(one, two, "{family}");
        assert_ne!(one, encode(&registry, &codec.replace("seed=3", "seed=4"), &g, chunked()), "{family}");
    }
}

fn clients(registry: &Registry, codecs: &[&str]) -> (Vec<Vec<u8>>, Vec<Vec<f32>>) {
    let streams: Vec<Vec<u8>> =
        codecs.iter().enumerate().map(|(k, c)| encode(registry, c, &gradient(N, 10 + k as u64), chunked())).collect();
    let decoded = streams.iter().map(|s| decode(registry, s)).collect();
    (streams, decoded)
}

fn mean(decoded: &[Vec<f32>]) -> Vec<f32> {
    (0..N).map(|i| decoded.iter().map(|d| d[i]).sum::<f32>() / decoded.len() as f32).collect()
}

#[test]
fn averaging_coefficients_commutes_with_decoding() {
    let registry = registry();
    for codec in [
        "intrinsic:dim=300,seed=7+raw",
        "intrinsic:dim=100,family=sparse,scaling=unbiased,seed=1+raw",
        "randk:fraction=0.05,scaling=unbiased,seed=4+raw",
    ] {
        let (streams, decoded) = clients(&registry, &[codec; 3]);
        let inputs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
        let mut options = AggregateOptions::new(Rule::Mean);
        options.compressed_only = true;
        let (out, _) = aggregate(inputs, &registry, &options, Vec::new()).unwrap();
        // The aggregate is as small as one input: coefficients, not expanded values.
        assert!(out.len() < streams[0].len() + 200, "{codec}: {} vs {}", out.len(), streams[0].len());
        let got = decode(&registry, &out);
        let gap = max_relative_gap(&got, &mean(&decoded));
        assert!(gap < 1e-5, "{codec}: decode(mean of coefficients) is {gap} from the mean of decodes");
    }
}

#[test]
fn different_seeds_are_decoded_and_re_encoded_or_refused() {
    let registry = registry();
    let codecs = ["intrinsic:dim=300,seed=7+raw", "intrinsic:dim=300,seed=8+raw"];
    let (streams, decoded) = clients(&registry, &codecs);
    let inputs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
    let mut options = AggregateOptions::new(Rule::Mean);
    options.compressed_only = true;
    let err = aggregate(inputs.clone(), &registry, &options, Vec::new()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("fc.weight") && err.to_string().contains("pipelines differ"), "{err}");
    options.compressed_only = false;
    let (out, _) = aggregate(inputs, &registry, &options, Vec::new()).unwrap();
    // The mean of the decodes, projected again onto input 0's subspace.
    let want = decode(&registry, &encode(&registry, codecs[0], &mean(&decoded), chunked()));
    let gap = max_relative_gap(&decode(&registry, &out), &want);
    assert!(gap < 1e-5, "{gap}");
}

#[test]
fn compressed_only_refuses_another_output_pipeline() {
    let registry = registry();
    let (streams, decoded) = clients(&registry, &["intrinsic:dim=300,seed=7+raw"; 2]);
    let inputs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
    let mut options = AggregateOptions::new(Rule::Mean);
    options.output = Some(registry.parse_pipeline("raw").unwrap());
    options.compressed_only = true;
    let err = aggregate(inputs.clone(), &registry, &options, Vec::new()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.detail().contains("only averaged by the mean into the inputs' own pipeline"), "{err}");
    options.compressed_only = false;
    let (out, _) = aggregate(inputs, &registry, &options, Vec::new()).unwrap();
    assert!(max_relative_gap(&decode(&registry, &out), &mean(&decoded)) < 1e-5);
}
