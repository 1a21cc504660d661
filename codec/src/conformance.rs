//! The conformance contract (`spec/FORMAT.md` §14): the canonical JSON of a decoded stream that
//! every implementation must reproduce, the manifest of the golden vectors, a runner that checks
//! every vector, and a generator of random valid streams for testing other implementations.
//!
//! Enabled by the `conformance` feature (it brings `serde`, `serde_json` and `sha2`).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};
use crate::format::{DType, Metadata, Value};
use crate::registry::Registry;
use crate::rng::SeededRng;
use crate::side_info::{SideInfoMap, SideInfoProvider};
use crate::stream::{DecodedStream, Reader, TensorSpec, Writer, WriterOptions};

/// Tensors with at most this many values list them as hex bit patterns in the canonical JSON.
pub const MAX_LISTED_VALUES: usize = 64;

/// One vector of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable identifier.
    pub id: String,
    /// File name, relative to the manifest.
    pub file: String,
    /// What the vector exercises.
    pub description: String,
    /// `ok`, or the expected error code.
    pub expect: String,
    /// SHA-256 of the file (golden bytes never change).
    pub sha256: String,
    /// For valid vectors, the canonical JSON of the decoded stream.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<Json>,
    /// The side information the reader is given (`spec/FORMAT.md` §19): a stream file of `raw`
    /// tensors beside the manifest, whose tensors by name are the side tensors.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub side_info: Option<String>,
}

/// Lower-case hexadecimal of bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    crate::side_info::hex(bytes)
}

/// Lower-case hexadecimal SHA-256.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn values_le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn metadata_json(m: &Metadata) -> Json {
    let map = m
        .iter()
        .map(|(k, v)| {
            let j = match v {
                Value::U64(x) => json!({ "u64": x }),
                Value::I64(x) => json!({ "i64": x }),
                Value::F64(x) => json!({ "f64_bits": format!("{:016x}", x.to_bits()) }),
                Value::Utf8(s) => json!({ "utf8": s }),
                Value::Bytes(b) => json!({ "bytes": hex(b) }),
            };
            (k.to_owned(), j)
        })
        .collect();
    Json::Object(map)
}

/// The canonical JSON of a decoded stream (`spec/FORMAT.md` §14).
#[must_use]
pub fn summary(stream: &DecodedStream) -> Json {
    let tensors: Vec<Json> = stream
        .tensors
        .iter()
        .map(|t| {
            let d = &t.descriptor;
            let mut j = json!({
                "name": d.name,
                "dtype": d.dtype.name(),
                "shape": d.shape,
                "chunk_elements": d.chunk_elements,
                "sha256": sha256_hex(&values_le(&t.values)),
            });
            if t.values.len() <= MAX_LISTED_VALUES {
                j["values_hex"] = t.values.iter().map(|v| format!("{:08x}", v.to_bits())).collect();
            }
            j
        })
        .collect();
    json!({ "seed": stream.header.seed, "metadata": metadata_json(&stream.header.metadata), "tensors": tensors })
}

/// Decodes a whole stream into its canonical JSON.
///
/// # Errors
/// The first error the reader meets.
pub fn decode_json(bytes: &[u8], registry: &Registry) -> Result<Json> {
    decode_json_with(bytes, registry, None)
}

/// As [`decode_json`], with side information for tensors that decode against it.
///
/// # Errors
/// The first error the reader meets.
pub fn decode_json_with(bytes: &[u8], registry: &Registry, side: Option<Arc<dyn SideInfoProvider>>) -> Result<Json> {
    let mut reader = Reader::new(bytes, registry);
    if let Some(side) = side {
        reader.set_side_info(side);
    }
    reader.read_all().map(|s| summary(&s))
}

/// The side information a stream of tensors holds (how vectors ship theirs, FORMAT.md §14):
/// each tensor, by name, under `label`.
///
/// # Errors
/// The reader's errors for a stream that does not decode.
pub fn side_info_from_stream(bytes: &[u8], registry: &Registry, label: &str) -> Result<SideInfoMap> {
    SideInfoMap::from_stream(bytes, registry, label)
}

/// Reads `DIR/manifest.json`.
///
/// # Errors
/// [`ErrorCode::Io`] if it cannot be read, [`ErrorCode::InvalidArgument`] if it does not parse.
pub fn load_manifest(dir: &Path) -> Result<Vec<Entry>> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::new(ErrorCode::Io, format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::new(ErrorCode::InvalidArgument, format!("{}: {e}", path.display())))
}

/// The outcome of checking one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorResult {
    /// The vector's id.
    pub id: String,
    /// `None` when the vector passed, otherwise what went wrong.
    pub failure: Option<String>,
}

/// The side information of a manifest entry, read from its file in `dir`.
///
/// # Errors
/// [`ErrorCode::Io`] when the file cannot be read; the reader's errors when it does not decode.
pub fn entry_side_info(dir: &Path, entry: &Entry, registry: &Registry) -> Result<Option<Arc<dyn SideInfoProvider>>> {
    let Some(file) = &entry.side_info else { return Ok(None) };
    let bytes = std::fs::read(dir.join(file))
        .map_err(|e| Error::new(ErrorCode::Io, format!("reading the side information {file}: {e}")))?;
    Ok(Some(Arc::new(side_info_from_stream(&bytes, registry, file)?)))
}

/// Checks every vector of a manifest: the file's SHA-256, then the decode result against the
/// expectation (the canonical JSON, or the error code), with the entry's side information; a
/// valid vector with side information must also fail with `side_info_missing` without it.
///
/// # Errors
/// Only when the manifest itself cannot be read; vector failures are in the results.
pub fn run(dir: &Path, registry: &Registry) -> Result<Vec<VectorResult>> {
    let manifest = load_manifest(dir)?;
    Ok(manifest
        .into_iter()
        .map(|e| {
            let failure = match (std::fs::read(dir.join(&e.file)), entry_side_info(dir, &e, registry)) {
                (Err(err), _) => Some(format!("cannot read {}: {err}", e.file)),
                (_, Err(err)) => Some(format!("side information: {err}")),
                (Ok(bytes), _) if sha256_hex(&bytes) != e.sha256 => {
                    Some("file bytes differ from the manifest's SHA-256".into())
                }
                (Ok(bytes), Ok(side)) => {
                    let has_side = side.is_some();
                    match (decode_json_with(&bytes, registry, side), e.expect.as_str()) {
                        (Ok(got), "ok") if Some(&got) != e.expected.as_ref() => {
                            Some("decoded content differs from the expected JSON".into())
                        }
                        (Ok(_), "ok") if has_side => match decode_json(&bytes, registry) {
                            Err(err) if err.code() == ErrorCode::SideInfoMissing => None,
                            Err(err) => Some(format!("without its side information: {err}, not side_info_missing")),
                            Ok(_) => Some("decoded without its side information".into()),
                        },
                        (Ok(_), "ok") => None,
                        (Ok(_), code) => Some(format!("decoded, but {code} was expected")),
                        (Err(err), code) if err.code().as_str() == code => None,
                        (Err(err), code) => Some(format!("expected {code}, got {err}")),
                    }
                }
            };
            VectorResult { id: e.id, failure }
        })
        .collect())
}

/// Generates `count` random valid streams from `seed`: random tensor counts, shapes (empty and
/// scalar included), chunk sizes, pipelines, interleaved writes, metadata, METADATA and private
/// skippable records, with or without INDEX and decoded CRCs. Pipelines are drawn from a fixed
/// list over the core codecs plus, for every other registered array->bytes codec, the codec with
/// its default parameters alone and followed by zstd, and with each of its example parameters
/// ([`crate::CodecDescriptor::examples`]), and for every other array->array codec the same
/// followed by `raw` (and once by `bf16+zstd`); tensors through those get finite values
/// only (NaN and infinity patterns are the core codecs' edge cases). Returns (name, bytes,
/// canonical JSON) triples.
///
/// # Errors
/// Only if the writer fails, which would be a bug.
pub fn generate(registry: &Registry, seed: u64, count: usize) -> Result<Vec<(String, Vec<u8>, Json)>> {
    const PIPELINES: &[&str] = &["raw", "f16", "bf16", "raw+zstd:level=1", "f16+zstd:level=-3", "bf16+zstd:level=9"];
    let mut pipelines: Vec<String> = PIPELINES.iter().map(|p| (*p).to_owned()).collect();
    let n_core = pipelines.len();
    for d in registry.descriptors() {
        if d.kind == crate::stage::StageKind::ArrayToBytes && d.id > crate::ids::codec::CORE_LAST {
            pipelines.push(d.name.to_owned());
            pipelines.push(format!("{}+zstd:level=1", d.name));
            pipelines.extend(d.examples.iter().map(|e| format!("{}:{e}", d.name)));
        }
        if d.kind == crate::stage::StageKind::ArrayToArray && d.id > crate::ids::codec::CORE_LAST {
            pipelines.push(format!("{}+raw", d.name));
            pipelines.push(format!("{}+bf16+zstd:level=1", d.name));
            pipelines.extend(d.examples.iter().map(|e| format!("{}:{e}+raw", d.name)));
        }
    }
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let mut metadata = Metadata::new();
        metadata.insert("fl.round", Value::U64(rng.next_below(1000)))?;
        if rng.next_below(2) == 0 {
            metadata.insert("fl.client_id", Value::Utf8(format!("client-{}", rng.next_below(100))))?;
        }
        if rng.next_below(2) == 0 {
            metadata.insert("x.note", Value::Bytes((0..rng.next_below(9)).map(|_| rng.next_u32() as u8).collect()))?;
        }
        let header = crate::format::StreamHeader { seed: rng.next_u64(), metadata, ..Default::default() };
        let options = WriterOptions::default()
            .chunk_elements(1 + rng.next_below(64))
            .write_index(rng.next_below(3) != 0)
            .decoded_checksums(rng.next_below(3) == 0);
        let mut w = Writer::new(Vec::new(), registry, &header, options)?;
        let n_tensors = 1 + rng.next_below(4) as usize;
        let mut tensors = Vec::new();
        for t in 0..n_tensors {
            let rank = rng.next_below(4) as usize;
            let shape: Vec<u64> = (0..rank).map(|_| rng.next_below(9)).collect();
            let len = crate::format::shape_product(&shape).unwrap_or(0) as usize;
            let pick = rng.next_below(pipelines.len() as u64) as usize;
            let values: Vec<f32> = (0..len)
                .map(|_| {
                    let v = if rng.next_below(8) == 0 {
                        f32::from_bits(rng.next_u32())
                    } else {
                        (rng.next_unit_f32() - 0.5) * 1e-2
                    };
                    if pick >= n_core && !v.is_finite() { 0.25 } else { v }
                })
                .collect();
            let spec = registry.parse_pipeline(&pipelines[pick])?;
            let dtype = [DType::F32, DType::F16, DType::BF16, DType::F64][rng.next_below(4) as usize];
            let id =
                w.begin_tensor(TensorSpec { dtype, ..TensorSpec::new(format!("layer{t}.weight"), &shape, spec) })?;
            tensors.push((id, values, 0usize));
        }
        if rng.next_below(2) == 0 {
            let mut m = Metadata::new();
            m.insert("note", Value::Utf8("generated".into()))?;
            w.write_metadata(&m)?;
        }
        // Interleave pieces of every tensor until all are written.
        while let Some(i) = {
            let open: Vec<usize> = (0..tensors.len()).filter(|&i| tensors[i].2 < tensors[i].1.len()).collect();
            (!open.is_empty()).then(|| open[rng.next_below(open.len() as u64) as usize])
        } {
            let (id, values, done) = &mut tensors[i];
            let take = (1 + rng.next_below(40) as usize).min(values.len() - *done);
            w.write_values(*id, &values[*done..*done + take])?;
            *done += take;
        }
        for (id, _, _) in &tensors {
            w.end_tensor(*id)?;
        }
        let bytes = w.finish()?;
        let json = decode_json(&bytes, registry)?;
        out.push((format!("gen-{seed}-{n:04}"), bytes, json));
    }
    Ok(out)
}
