//! One module per subcommand.

pub mod aggregate;
pub mod allocate;
pub mod archive;
pub mod bench;
pub mod bounds;
pub mod codecs;
pub mod conformance;
pub mod decode;
pub mod demo;
pub mod encode;
pub mod inspect;
pub mod side_gain;
pub mod simulate;
pub mod verify;

use gradwire::{Metadata, SideInfoMap, Value};

/// Side information for codecs that decode against it (`wyner-ziv`), by tensor name.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SideInfoArgs {
    /// Side information: a .safetensors, .npz, .npy or gradwire file whose tensors (by name)
    /// the decoder holds, e.g. the previous round's aggregate. Encoder and decoder must give the same values:
    /// the stream binds them by digest and a reader refuses other values.
    #[arg(long, value_name = "FILE")]
    pub side_info: Option<String>,
    /// Label of the side information, stored in the stream's binding and named in errors
    /// (default: the file name).
    #[arg(long, value_name = "TEXT", requires = "side_info")]
    pub side_label: Option<String>,
}

impl SideInfoArgs {
    /// The side information given, if any.
    ///
    /// # Errors
    /// When the file cannot be read as tensors.
    pub fn provider(&self) -> anyhow::Result<Option<std::sync::Arc<SideInfoMap>>> {
        let Some(path) = &self.side_info else { return Ok(None) };
        let label = self.side_label.clone().unwrap_or_else(|| {
            std::path::Path::new(path).file_name().and_then(|s| s.to_str()).unwrap_or(path).to_owned()
        });
        let bytes = crate::tensor_io::read_bytes(path)?;
        if crate::tensor_io::sniff(&bytes) == Some(crate::tensor_io::FileKind::Gradwire) {
            let map = SideInfoMap::from_stream(&bytes, &gradwire::registry()?, &label)
                .map_err(|e| anyhow::anyhow!("reading the side information {path}: {e}"))?;
            return Ok(Some(std::sync::Arc::new(map)));
        }
        let mut map = SideInfoMap::new();
        for t in crate::tensor_io::read_tensors(path)? {
            map.insert(t.name, label.clone(), t.values);
        }
        Ok(Some(std::sync::Arc::new(map)))
    }
}

/// What identifies an update in federated learning, as stream header metadata (`fl.*` keys).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpdateMetadata {
    /// Federated round number (metadata fl.round).
    #[arg(long)]
    pub round: Option<u64>,
    /// Client identifier (metadata fl.client_id).
    #[arg(long)]
    pub client: Option<String>,
    /// Number of training examples behind the update (metadata fl.num_examples).
    #[arg(long)]
    pub num_examples: Option<u64>,
    /// What the tensors are: gradient, delta or weights (metadata fl.payload_kind).
    #[arg(long)]
    pub payload_kind: Option<String>,
}

impl UpdateMetadata {
    /// Whether any field is given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.round.is_none() && self.client.is_none() && self.num_examples.is_none() && self.payload_kind.is_none()
    }

    /// The header metadata: `producer` and the `fl.*` keys that are given.
    ///
    /// # Errors
    /// Metadata errors (a client or kind longer than the format allows).
    pub fn to_metadata(&self) -> gradwire::Result<Metadata> {
        let mut metadata = Metadata::new();
        metadata.insert("producer", Value::Utf8(format!("gradwire-cli/{}", env!("CARGO_PKG_VERSION"))))?;
        if let Some(r) = self.round {
            metadata.insert("fl.round", Value::U64(r))?;
        }
        if let Some(c) = &self.client {
            metadata.insert("fl.client_id", Value::Utf8(c.clone()))?;
        }
        if let Some(n) = self.num_examples {
            metadata.insert("fl.num_examples", Value::U64(n))?;
        }
        if let Some(k) = &self.payload_kind {
            metadata.insert("fl.payload_kind", Value::Utf8(k.clone()))?;
        }
        Ok(metadata)
    }
}

/// A decoded stream as named tensors and its header metadata as `gradwire.*` string pairs (for
/// safetensors' metadata). An incomplete tensor (salvage) keeps only what arrived, as a 1-D
/// prefix, never padding sized by the stream.
#[must_use]
pub fn stream_tensors(
    stream: gradwire::DecodedStream,
) -> (Vec<crate::tensor_io::NamedTensor>, Option<std::collections::HashMap<String, String>>) {
    let meta: std::collections::HashMap<String, String> =
        metadata_pairs(&stream.header.metadata).into_iter().map(|(k, v)| (format!("gradwire.{k}"), v)).collect();
    let tensors = stream
        .tensors
        .into_iter()
        .map(|t| crate::tensor_io::NamedTensor {
            name: t.descriptor.name.clone(),
            dtype: t.descriptor.dtype,
            shape: if t.complete { t.descriptor.shape.clone() } else { vec![t.values.len() as u64] },
            values: t.values,
        })
        .collect();
    (tensors, (!meta.is_empty()).then_some(meta))
}

/// Metadata rendered as `(key, value)` text pairs (text values unquoted, bytes in hex).
pub fn metadata_pairs(m: &Metadata) -> Vec<(String, String)> {
    m.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Utf8(s) => s.clone(),
                other => other.to_string(),
            };
            (k.to_owned(), text)
        })
        .collect()
}

/// Metadata as a JSON object with typed values.
pub fn metadata_json(m: &Metadata) -> serde_json::Value {
    let map = m
        .iter()
        .map(|(k, v)| {
            let j = match v {
                Value::U64(x) => serde_json::json!(x),
                Value::I64(x) => serde_json::json!(x),
                Value::F64(x) => serde_json::json!(x),
                Value::Utf8(s) => serde_json::json!(s),
                Value::Bytes(_) => serde_json::json!(v.to_string()),
            };
            (k.to_owned(), j)
        })
        .collect();
    serde_json::Value::Object(map)
}

/// Formats a shape as `64x256` (`scalar` for rank 0).
pub fn shape_text(shape: &[u64]) -> String {
    if shape.is_empty() { "scalar".to_owned() } else { shape.iter().map(u64::to_string).collect::<Vec<_>>().join("x") }
}
