//! One module per subcommand.

pub mod aggregate;
pub mod allocate;
pub mod archive;
pub mod bench;
pub mod codecs;
pub mod conformance;
pub mod decode;
pub mod demo;
pub mod encode;
pub mod inspect;
pub mod verify;

use gradwire::{Metadata, Value};

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
