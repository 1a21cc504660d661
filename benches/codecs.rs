#![allow(clippy::unwrap_used, reason = "setup failures in a benchmark are bugs to surface at once")]
//! Throughput of every registered codec, in GB/s of f32 input, at two levels:
//!
//! - `chunk/*`: one pipeline on one chunk of 2^20 values (4 MiB), buffers reused: the codec's own
//!   speed, without framing.
//! - `stream/*`: a 2^24-value tensor (64 MiB, 16 chunks) through `Writer` into a reused buffer and
//!   back through `Reader` events: what an application sees, checksums and framing included.
//!
//! The data is Laplace-distributed (heavy-tailed like real gradients) from the specified generator.
//! Like the `gradwire` binary, this bench uses mimalloc: with the system allocator, multi-megabyte
//! chunk buffers are returned to the OS and faulted back in on every chunk.
//!
//! - `threads/*`: some of the `stream/*` pipelines with 1 and with 2 threads (scaling).
//! - `aggregate/*`: four updates combined by majority vote or weighted mean.
//! - `container/*`: the framing alone (many small `raw` tensors written and read).
//!
//! Run: `cargo bench --bench codecs` (one thread; `GRADWIRE_BENCH_FILTER` is criterion's filter).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gradwire::{
    ChunkContext, Event, Limits, Reader, ReaderOptions, Registry, StreamHeader, TensorSpec, Writer, WriterOptions,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PIPELINES: &[&str] = &[
    "raw",
    "f16",
    "bf16",
    "raw+zstd:level=1",
    "bf16+zstd:level=1",
    "signsgd:scale=none",
    "signsgd:scale=mean",
    "signsgd:scale=block,block=4096",
    "m22:bits=1",
    "m22:bits=2",
    "m22:bits=3,m=2",
    "m22:bits=4",
    "m22:step=1e-3",
    "m22:step=4e-3",
    "m22:entropy=2",
    "intrinsic:dim=65536+raw",
    "intrinsic:dim=262144+raw",
    "intrinsic:dim=16384,family=sparse+raw",
    "intrinsic:dim=16,family=rademacher+raw",
    "randk:fraction=0.01+raw",
    "randk:fraction=0.1,scaling=unbiased+raw",
    "topk:fraction=0.01",
    "topk:fraction=0.1,values=bf16",
    "topk:fraction=0.1,values=(m22:bits=4)",
    "qsgd:levels=1",
    "qsgd:levels=16",
    "sparse-dither:nu=0.1",
    "sparse-dither:nu=0.01",
    "sparse-dither:nu=0.5,variant=unbiased",
    "spherical:alpha=0.5,block=4",
    "spherical:alpha=0.1,block=2",
    "wyner-ziv:bits=2",
];

/// Pipelines that decode against side information: `chunk/*` binds them to a side tensor (the
/// input plus Laplace noise of a tenth of its scale) and gives it to every call.
const SIDE_PIPELINES: &[&str] =
    &["wyner-ziv:bits=2", "wyner-ziv:bits=4", "wyner-ziv:step=0.01", "wyner-ziv:step=0.01,modulus=64"];

use gradwire::testing::laplace;

fn chunk_level(c: &mut Criterion) {
    let registry = gradwire::registry().unwrap();
    let values = laplace(1 << 20, 1);
    let ctx = ChunkContext { tensor_name: "g", tensor_id: 0, chunk_index: 0, element_offset: 0, seed: 0, side: None };
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Bytes((values.len() * 4) as u64));
    let side: Vec<f32> = values.iter().zip(laplace(values.len(), 3)).map(|(x, e)| x + 0.1 * e).collect();
    let binding = gradwire::SideBinding::of("bench", &side).unwrap();
    let with_side = ChunkContext { side: Some(&side), ..ctx };
    let cases = PIPELINES
        .iter()
        .map(|s| (s.to_string(), false))
        .chain(SIDE_PIPELINES.iter().map(|s| (format!("{s} (side)"), true)));
    for (name, bound) in cases {
        let spec = name.trim_end_matches(" (side)");
        let mut stages = registry.parse_pipeline(spec).unwrap();
        if bound {
            registry.bind_side_info(&mut stages, &binding).unwrap();
        }
        let pipeline = registry.build_pipeline(&stages, &Limits::default()).unwrap();
        let ctx = if bound { with_side } else { ctx };
        let spec = &name;
        let mut encoded = Vec::new();
        pipeline.encode_chunk(&values, &ctx, &mut encoded).unwrap();
        group.bench_function(BenchmarkId::new("encode", spec), |b| {
            let mut out = Vec::with_capacity(values.len() * 4 + 4096);
            b.iter(|| {
                out.clear();
                pipeline.encode_chunk(&values, &ctx, &mut out).unwrap();
            });
        });
        group.bench_function(BenchmarkId::new("decode", spec), |b| {
            let mut out = vec![0f32; values.len()];
            b.iter(|| pipeline.decode_chunk(&encoded, &ctx, &mut out).unwrap());
        });
    }
    group.finish();
}

fn write_stream(registry: &Registry, spec: &str, values: &[f32], out: &mut Vec<u8>) {
    write_stream_threads(registry, spec, values, out, 1);
}

fn write_stream_threads(registry: &Registry, spec: &str, values: &[f32], out: &mut Vec<u8>, threads: usize) {
    out.clear();
    let options = WriterOptions::default().threads(threads);
    let mut w = Writer::new(out, registry, &StreamHeader::default(), options).unwrap();
    let pipeline = registry.parse_pipeline(spec).unwrap();
    w.write_tensor(TensorSpec::new("g", &[values.len() as u64], pipeline), values).unwrap();
    w.finish().unwrap();
}

fn stream_level(c: &mut Criterion) {
    let registry = gradwire::registry().unwrap();
    let values = laplace(1 << 24, 2);
    let mut group = c.benchmark_group("stream");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((values.len() * 4) as u64));
    for spec in PIPELINES {
        let mut encoded = Vec::new();
        write_stream(&registry, spec, &values, &mut encoded);
        group.bench_function(BenchmarkId::new("encode", spec), |b| {
            let mut out = Vec::with_capacity(values.len() * 4 + (1 << 20));
            b.iter(|| write_stream(&registry, spec, &values, &mut out));
        });
        group.bench_function(BenchmarkId::new("decode", spec), |b| {
            b.iter(|| {
                let mut reader = Reader::new(&encoded[..], &registry);
                let mut n = 0;
                while let Some(ev) = reader.next_event().unwrap() {
                    if let Event::Chunk(chunk) = ev {
                        n += chunk.values.len();
                    }
                }
                assert_eq!(n, values.len());
            });
        });
    }
    group.finish();
}

/// Pipelines whose scaling from one to two threads `threads/*` measures.
const SCALING_PIPELINES: &[&str] = &[
    "bf16",
    "bf16+zstd:level=1",
    "signsgd:scale=mean",
    "m22:bits=2",
    "qsgd:levels=16",
    "sparse-dither:nu=0.1",
    "topk:fraction=0.01",
    "topk:fraction=0.1,values=(m22:bits=4)",
];

/// Scaling from one to two threads: the 2^24-value tensor of `stream/*` (16 chunks of 2^20)
/// encoded by `Writer` and decoded by `Reader::read_all` (a fresh output vector per run) with
/// 1 and with 2 threads.
fn thread_scaling(c: &mut Criterion) {
    let registry = gradwire::registry().unwrap();
    let values = laplace(1 << 24, 2);
    let mut group = c.benchmark_group("threads");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((values.len() * 4) as u64));
    for spec in SCALING_PIPELINES {
        let mut encoded = Vec::new();
        write_stream(&registry, spec, &values, &mut encoded);
        for threads in [1usize, 2] {
            group.bench_function(BenchmarkId::new(format!("encode-{threads}t"), spec), |b| {
                let mut out = Vec::with_capacity(values.len() * 4 + (1 << 20));
                b.iter(|| write_stream_threads(&registry, spec, &values, &mut out, threads));
            });
            group.bench_function(BenchmarkId::new(format!("decode-{threads}t"), spec), |b| {
                b.iter(|| {
                    let options = ReaderOptions::default().threads(threads);
                    let stream = Reader::with_options(&encoded[..], &registry, options).read_all().unwrap();
                    assert_eq!(stream.tensors[0].values.len(), values.len());
                });
            });
        }
    }
    group.finish();
}

/// Aggregation of 4 updates of 2^22 values each (throughput counts the f32 input of all four):
/// signsgd in the compressed domain (sign planes for the vote, `±w·scale` for the mean) against
/// bf16, which must be decoded first, and intrinsic projections, whose coefficients are averaged.
fn aggregate_level(c: &mut Criterion) {
    use gradwire::aggregate::{AggregateOptions, Rule, aggregate};
    let registry = gradwire::registry().unwrap();
    let n = 1 << 22;
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((4 * n * 4) as u64));
    for codec in ["signsgd", "bf16", "intrinsic:dim=65536+raw"] {
        let streams: Vec<Vec<u8>> = (0..4)
            .map(|k| {
                let mut out = Vec::new();
                write_stream(&registry, codec, &laplace(n, 10 + k), &mut out);
                out
            })
            .collect();
        for rule in [Rule::Majority, Rule::Mean] {
            let mut options = AggregateOptions::new(rule);
            options.output = Some(registry.parse_pipeline("raw").unwrap());
            if codec.starts_with("intrinsic") {
                if rule == Rule::Majority {
                    continue;
                }
                // The inputs' own pipeline: coefficients are averaged, never expanded.
                options.output = None;
                options.compressed_only = true;
            }
            group.bench_function(BenchmarkId::new(rule.as_str(), codec), |b| {
                let mut out = Vec::with_capacity(n * 4 + (1 << 20));
                b.iter(|| {
                    out.clear();
                    let inputs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
                    aggregate(inputs, &registry, &options, &mut out).unwrap();
                });
            });
        }
    }
    group.finish();
}

/// The container alone, with the exact `raw` codec so that framing is what is measured: 4096
/// tensors of 256 values (4 MiB of f32; a descriptor, a chunk record, checksums and an index
/// entry per 1 KiB) written, read with chunks left encoded (framing, CRCs, ordering rules), and
/// read decoded. Throughput counts the f32 values.
fn container_level(c: &mut Criterion) {
    let registry = gradwire::registry().unwrap();
    let (tensors, len) = (4096usize, 256usize);
    let values = laplace(tensors * len, 4);
    let raw = registry.parse_pipeline("raw").unwrap();
    let write = |out: &mut Vec<u8>| {
        out.clear();
        let mut w = Writer::new(out, &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
        for (i, v) in values.chunks(len).enumerate() {
            w.write_tensor(TensorSpec::new(format!("layer{i}.weight"), &[len as u64], raw.clone()), v).unwrap();
        }
        w.finish().unwrap();
    };
    let mut encoded = Vec::new();
    write(&mut encoded);
    let mut group = c.benchmark_group("container");
    group.throughput(Throughput::Bytes((values.len() * 4) as u64));
    group.bench_function("write/4096x256", |b| {
        let mut out = Vec::with_capacity(encoded.len());
        b.iter(|| write(&mut out));
    });
    for (name, decode) in [("read-encoded/4096x256", false), ("read-decoded/4096x256", true)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let options = ReaderOptions::default().decode_chunks(decode);
                let mut reader = Reader::with_options(&encoded[..], &registry, options);
                let mut chunks = 0;
                while let Some(ev) = reader.next_event().unwrap() {
                    chunks += usize::from(matches!(ev, Event::Chunk(_) | Event::EncodedChunk(_)));
                }
                assert_eq!(chunks, tensors);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, chunk_level, stream_level, thread_scaling, aggregate_level, container_level);
criterion_main!(benches);
