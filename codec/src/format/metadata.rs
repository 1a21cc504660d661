//! The canonical key-value map carried by STREAM_HEADER and METADATA records
//! (`spec/FORMAT.md` §6.1), with the registered federated-learning keys and their types.
//!
//! Canonical means: keys sorted by their bytes, no duplicates, keys matching
//! `^[a-z][a-z0-9_.-]*$`. Encoding is therefore deterministic, and a reader rejects any other
//! order. Unknown keys are kept and ignored; anything that changes how bytes decode is never a key.

use std::collections::BTreeMap;

use super::wire::{Cursor, PutLe};
use crate::error::{Error, ErrorCode, Result};

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 255;
/// Longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 64 << 10;

/// A typed metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Raw bytes (type 0).
    Bytes(Vec<u8>),
    /// UTF-8 text (type 1).
    Utf8(String),
    /// Unsigned integer (type 2).
    U64(u64),
    /// Signed integer (type 3).
    I64(i64),
    /// IEEE binary64 (type 4), compared by bits on the wire.
    F64(f64),
}

impl Value {
    /// The wire type code.
    #[must_use]
    pub fn type_code(&self) -> u8 {
        match self {
            Value::Bytes(_) => 0,
            Value::Utf8(_) => 1,
            Value::U64(_) => 2,
            Value::I64(_) => 3,
            Value::F64(_) => 4,
        }
    }

    /// The name of the type, as used in the spec and in `inspect`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        ["bytes", "utf8", "u64", "i64", "f64"][self.type_code() as usize]
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bytes(b) => {
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Value::Utf8(s) => write!(f, "{s:?}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

/// Registered keys and the type each must have (`spec/FORMAT.md` §6.1).
pub const WELL_KNOWN_KEYS: &[(&str, u8, &str)] = &[
    ("fl.base_model_digest", 0, "digest of the model the update is relative to"),
    ("fl.client_id", 1, "identifier of the sending client"),
    ("fl.num_examples", 2, "number of training examples behind the update (aggregation weight)"),
    ("fl.payload_kind", 1, "one of gradient, delta, weights"),
    ("fl.num_updates", 2, "number of client updates an aggregate combines"),
    ("fl.round", 2, "federated round number"),
    ("gradwire.kind", 1, "what a stream that is not an update holds: aggregate, error-feedback-state"),
    ("producer", 1, "name and version of the writing software"),
];

/// An ordered metadata map.
///
/// # Examples
/// ```
/// use gradwire_codec::{Metadata, Value};
/// let mut m = Metadata::new();
/// m.insert("fl.round", Value::U64(3)).unwrap();
/// assert!(m.insert("fl.round", Value::Utf8("three".into())).is_err()); // registered type is u64
/// assert!(m.insert("Bad Key", Value::U64(1)).is_err());
/// let bytes = m.encode();
/// assert_eq!(Metadata::decode(&bytes, 0).unwrap(), m);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: BTreeMap<String, Value>,
}

fn check_key(key: &str) -> Result<()> {
    let b = key.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_KEY_LEN
        && b[0].is_ascii_lowercase()
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::Malformed,
            format!("metadata key {key:?} does not match ^[a-z][a-z0-9_.-]*$ (1..=255 bytes)"),
        ))
    }
}

fn check_entry(key: &str, value: &Value) -> Result<()> {
    check_key(key)?;
    if let Some(&(_, ty, _)) = WELL_KNOWN_KEYS.iter().find(|(k, _, _)| *k == key)
        && value.type_code() != ty
    {
        return Err(Error::new(
            ErrorCode::Malformed,
            format!(
                "metadata key {key:?} must have type {}, found {}",
                ["bytes", "utf8", "u64", "i64", "f64"][ty as usize],
                value.type_name()
            ),
        ));
    }
    if key == "fl.payload_kind"
        && let Value::Utf8(s) = value
        && !matches!(s.as_str(), "gradient" | "delta" | "weights")
    {
        return Err(Error::new(
            ErrorCode::Malformed,
            format!("fl.payload_kind must be gradient, delta or weights, found {s:?}"),
        ));
    }
    let len = match value {
        Value::Bytes(b) => b.len(),
        Value::Utf8(s) => s.len(),
        _ => 8,
    };
    if len > MAX_VALUE_LEN {
        return Err(Error::new(
            ErrorCode::LimitExceeded,
            format!("metadata value of {key:?} is {len} bytes, limit is {MAX_VALUE_LEN}"),
        ));
    }
    Ok(())
}

impl Metadata {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Metadata::default()
    }

    /// Inserts or replaces an entry after checking the key syntax and, for registered keys, the type.
    ///
    /// # Errors
    /// [`ErrorCode::Malformed`] for a bad key or a registered key with the wrong type;
    /// [`ErrorCode::LimitExceeded`] for a value over 64 KiB.
    pub fn insert(&mut self, key: &str, value: Value) -> Result<()> {
        check_entry(key, &value).map_err(|e| Error::new(ErrorCode::InvalidArgument, e.detail().to_owned()))?;
        self.entries.insert(key.to_owned(), value);
        Ok(())
    }

    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Entries in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serializes the map canonically.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical serialization to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_u32(self.entries.len() as u32);
        for (k, v) in &self.entries {
            out.put_u16(k.len() as u16);
            out.extend_from_slice(k.as_bytes());
            out.push(v.type_code());
            let bytes: Vec<u8> = match v {
                Value::Bytes(b) => b.clone(),
                Value::Utf8(s) => s.as_bytes().to_vec(),
                Value::U64(x) => x.to_le_bytes().to_vec(),
                Value::I64(x) => x.to_le_bytes().to_vec(),
                Value::F64(x) => x.to_bits().to_le_bytes().to_vec(),
            };
            out.put_u32(bytes.len() as u32);
            out.extend_from_slice(&bytes);
        }
    }

    /// Parses a whole canonical map from `bytes` (at stream offset `base`).
    ///
    /// # Errors
    /// [`ErrorCode::Malformed`] for unsorted or duplicate keys, bad key syntax, bad UTF-8, wrong
    /// lengths for fixed-size types, unknown type codes or trailing bytes.
    pub fn decode(bytes: &[u8], base: u64) -> Result<Metadata> {
        let mut c = Cursor::new(bytes, base);
        let m = Metadata::decode_from(&mut c)?;
        c.finish("metadata map")?;
        Ok(m)
    }

    /// Parses a canonical map from the cursor's position.
    pub(crate) fn decode_from(c: &mut Cursor<'_>) -> Result<Metadata> {
        let count = c.u32("metadata count")?;
        let mut entries = BTreeMap::new();
        let mut prev: Option<&[u8]> = None;
        for _ in 0..count {
            let at = c.offset();
            let key_len = c.u16("metadata key_len")? as usize;
            let key_bytes = c.take(key_len, "metadata key")?;
            let key = std::str::from_utf8(key_bytes)
                .map_err(|_| Error::new(ErrorCode::Malformed, "metadata key is not UTF-8").at_offset(at))?;
            if prev.is_some_and(|p| p >= key_bytes) {
                return Err(Error::new(
                    ErrorCode::Malformed,
                    format!("metadata key {key:?} is not after the previous key (keys must be sorted and unique)"),
                )
                .at_offset(at));
            }
            prev = Some(key_bytes);
            let ty = c.u8("metadata value type")?;
            let len = c.u32("metadata value length")? as usize;
            if len > MAX_VALUE_LEN {
                return Err(Error::new(
                    ErrorCode::LimitExceeded,
                    format!("metadata value of {key:?} is {len} bytes, limit is {MAX_VALUE_LEN}"),
                )
                .at_offset(at));
            }
            let raw = c.take(len, "metadata value")?;
            let fixed = |raw: &[u8]| -> Result<[u8; 8]> {
                raw.try_into().map_err(|_| {
                    Error::new(
                        ErrorCode::Malformed,
                        format!("metadata value of {key:?} has type code {ty} and must be 8 bytes, found {len}"),
                    )
                    .at_offset(at)
                })
            };
            let value = match ty {
                0 => Value::Bytes(raw.to_vec()),
                1 => Value::Utf8(
                    std::str::from_utf8(raw)
                        .map_err(|_| {
                            Error::new(ErrorCode::Malformed, format!("metadata value of {key:?} is not UTF-8"))
                                .at_offset(at)
                        })?
                        .to_owned(),
                ),
                2 => Value::U64(u64::from_le_bytes(fixed(raw)?)),
                3 => Value::I64(i64::from_le_bytes(fixed(raw)?)),
                4 => Value::F64(f64::from_bits(u64::from_le_bytes(fixed(raw)?))),
                other => {
                    return Err(Error::new(
                        ErrorCode::Malformed,
                        format!("metadata value type {other} of {key:?} is not defined"),
                    )
                    .at_offset(at));
                }
            };
            check_entry(key, &value).map_err(|e| e.at_offset(at))?;
            entries.insert(key.to_owned(), value);
        }
        Ok(Metadata { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let mut m = Metadata::new();
        m.insert("a", Value::Bytes(vec![1, 2])).unwrap();
        m.insert("b", Value::I64(-5)).unwrap();
        m.insert("c", Value::F64(-0.0)).unwrap();
        m.insert("fl.client_id", Value::Utf8("c7".into())).unwrap();
        let back = Metadata::decode(&m.encode(), 0).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.get("c").map(|v| matches!(v, Value::F64(x) if x.to_bits() == (-0.0f64).to_bits())), Some(true));
    }

    #[test]
    fn rejects_unsorted_keys() {
        let mut bytes = Vec::new();
        bytes.put_u32(2);
        for k in ["b", "a"] {
            bytes.put_u16(1);
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(2);
            bytes.put_u32(8);
            bytes.put_u64(1);
        }
        assert_eq!(Metadata::decode(&bytes, 0).unwrap_err().code(), ErrorCode::Malformed);
    }

    #[test]
    fn rejects_wrong_type_for_registered_key_on_decode() {
        let mut bytes = Vec::new();
        bytes.put_u32(1);
        bytes.put_u16(8);
        bytes.extend_from_slice(b"fl.round");
        bytes.push(1);
        bytes.put_u32(1);
        bytes.push(b'x');
        assert_eq!(Metadata::decode(&bytes, 0).unwrap_err().code(), ErrorCode::Malformed);
    }
}
