//! Side information (`spec/FORMAT.md` §19): tensors the decoder holds that are correlated with
//! what is sent (the previous round's aggregate, another client's update), so that a codec such
//! as `wyner-ziv` sends only what they cannot predict.
//!
//! Side information never travels in the stream. A caller hands it to the [`crate::Writer`] and
//! the [`crate::Reader`] as a [`SideInfoProvider`] that answers by tensor name; each chunk's
//! stages see the matching slice in [`crate::ChunkContext::side`]. A stage that uses it says so
//! ([`SideInfoUse`]); when the writer had the side tensor, the stage's parameters bind it with a
//! [`SideBinding`]: a caller's label and the SHA-256 of the side tensor's values. A reader given
//! other values refuses the tensor with [`ErrorCode::SideInfoMismatch`] (naming the tensor, both
//! labels and both digests) instead of decoding garbage, and one given none refuses it with
//! [`ErrorCode::SideInfoMissing`].

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

/// Bytes of a side-information digest (SHA-256).
pub const DIGEST_LEN: usize = 32;

/// Longest label a binding holds, in bytes of UTF-8.
pub const MAX_LABEL_LEN: usize = 255;

/// The digest that binds side information: SHA-256 of the values as f32 little-endian bytes.
///
/// # Examples
/// ```
/// use gradwire_codec::side_info::side_digest;
/// let d = side_digest(&[]);
/// assert_eq!(d[..4], [0xe3, 0xb0, 0xc4, 0x42]); // SHA-256 of no bytes
/// ```
#[must_use]
pub fn side_digest(values: &[f32]) -> [u8; DIGEST_LEN] {
    let mut hasher = Sha256::new();
    let mut block = [0u8; 4096];
    for part in values.chunks(block.len() / 4) {
        for (b, v) in block.chunks_exact_mut(4).zip(part) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        hasher.update(&block[..4 * part.len()]);
    }
    hasher.finalize().into()
}

/// What a stage's parameters say about the side information it was encoded against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideBinding {
    /// The caller's label (at most [`MAX_LABEL_LEN`] bytes), e.g. `round 41 aggregate`.
    pub label: String,
    /// [`side_digest`] of the side tensor.
    pub digest: [u8; DIGEST_LEN],
}

impl SideBinding {
    /// The binding of `values` under `label`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for a label longer than [`MAX_LABEL_LEN`] bytes.
    pub fn of(label: &str, values: &[f32]) -> Result<SideBinding> {
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("side information label of {} bytes is longer than {MAX_LABEL_LEN}", label.len()),
            ));
        }
        Ok(SideBinding { label: label.to_owned(), digest: side_digest(values) })
    }
}

/// Whether and how a built stage uses side information.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SideInfoUse {
    /// The stage does not use side information.
    #[default]
    None,
    /// The stage decodes against side information that its stream does not bind (the sender
    /// did not have it); the reader checks only its length.
    Unbound,
    /// The stage decodes against the side information this binding names.
    Bound(SideBinding),
}

/// A side tensor: its values and the caller's label for them.
#[derive(Debug, Clone, PartialEq)]
pub struct SideTensor {
    /// A label for messages and bindings, e.g. the file it came from.
    pub label: String,
    /// The values, one per element of the tensor they stand beside.
    pub values: Arc<[f32]>,
}

/// Answers, by tensor name, with the side information a caller holds.
pub trait SideInfoProvider: Send + Sync + std::fmt::Debug {
    /// The side tensor for `tensor_name`, if the caller holds one.
    fn side_tensor(&self, tensor_name: &str) -> Option<SideTensor>;
}

/// Side tensors in memory, by tensor name: the provider the CLI and most callers use.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use gradwire_codec::side_info::{SideInfoMap, SideInfoProvider};
/// let mut side = SideInfoMap::new();
/// side.insert("fc1.weight", "round 41 aggregate", vec![0.5f32, -0.25]);
/// assert_eq!(side.side_tensor("fc1.weight").unwrap().values[..], [0.5, -0.25]);
/// assert!(side.side_tensor("fc2.weight").is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SideInfoMap {
    tensors: BTreeMap<String, SideTensor>,
}

impl SideInfoMap {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        SideInfoMap::default()
    }

    /// Sets the side tensor of `tensor_name`.
    pub fn insert(&mut self, tensor_name: impl Into<String>, label: impl Into<String>, values: impl Into<Arc<[f32]>>) {
        self.tensors.insert(tensor_name.into(), SideTensor { label: label.into(), values: values.into() });
    }

    /// The tensors of a gradwire stream, by name, under `label` (how the conformance vectors
    /// and the command line take side information from a `.gw` file).
    ///
    /// # Errors
    /// The reader's errors for a stream that does not decode.
    pub fn from_stream(bytes: &[u8], registry: &crate::Registry, label: &str) -> Result<SideInfoMap> {
        let mut side = SideInfoMap::new();
        for t in crate::Reader::new(bytes, registry).read_all()?.tensors {
            side.insert(t.descriptor.name.clone(), label, t.values);
        }
        Ok(side)
    }

    /// Number of side tensors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the map holds no side tensor.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

impl SideInfoProvider for SideInfoMap {
    fn side_tensor(&self, tensor_name: &str) -> Option<SideTensor> {
        self.tensors.get(tensor_name).cloned()
    }
}

/// Lower-case hexadecimal of bytes (digests in messages; the conformance JSON uses it too).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The side values a reader decodes tensor `name` (`n_elements` values) against, checked
/// against what its pipeline uses (FORMAT.md §19.2): `None` when the pipeline uses none.
///
/// # Errors
/// [`ErrorCode::SideInfoMissing`] when the pipeline uses side information and `provider` holds
/// none for the tensor; [`ErrorCode::SideInfoMismatch`] when it holds a tensor of another length
/// or, for a bound stage, with another digest.
pub fn resolve(
    name: &str,
    n_elements: u64,
    uses: &SideInfoUse,
    provider: Option<&dyn SideInfoProvider>,
) -> Result<Option<Arc<[f32]>>> {
    if *uses == SideInfoUse::None {
        return Ok(None);
    }
    let expected = match uses {
        SideInfoUse::Bound(b) => format!("side information {:?} (sha256 {})", b.label, hex(&b.digest)),
        _ => "side information (not bound by the sender)".to_owned(),
    };
    let Some(side) = provider.and_then(|p| p.side_tensor(name)) else {
        return Err(Error::new(
            ErrorCode::SideInfoMissing,
            format!("tensor {name:?} decodes against {expected}, and none was given for it"),
        ));
    };
    if side.values.len() as u64 != n_elements {
        return Err(Error::new(
            ErrorCode::SideInfoMismatch,
            format!(
                "tensor {name:?} has {n_elements} values but the side information {:?} given for it has {}",
                side.label,
                side.values.len()
            ),
        ));
    }
    if let SideInfoUse::Bound(b) = uses {
        let digest = side_digest(&side.values);
        if digest != b.digest {
            return Err(Error::new(
                ErrorCode::SideInfoMismatch,
                format!(
                    "tensor {name:?} was encoded against {expected}, but the side information {:?} given has sha256 {}",
                    side.label,
                    hex(&digest)
                ),
            ));
        }
    }
    Ok(Some(side.values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(values: Vec<f32>) -> SideInfoMap {
        let mut m = SideInfoMap::new();
        m.insert("w", "given", values);
        m
    }

    #[test]
    fn digest_is_sha256_of_little_endian_bytes() {
        // SHA-256 of the 8 bytes 00 00 80 3f 00 00 00 c0 (1.0, -2.0), computed with sha256sum.
        let d = side_digest(&[1.0, -2.0]);
        let bytes: Vec<u8> = [1.0f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(&bytes)));
        // Longer than one block of the streaming loop.
        let long: Vec<f32> = (0..3000u16).map(f32::from).collect();
        let bytes: Vec<u8> = long.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(side_digest(&long), <[u8; 32]>::from(Sha256::digest(&bytes)));
    }

    #[test]
    fn resolve_checks_presence_length_and_digest() {
        let values = vec![1.0f32, 2.0, 3.0];
        let bound = SideInfoUse::Bound(SideBinding::of("sent", &values).unwrap());
        let good = provider(values.clone());
        assert_eq!(resolve("w", 3, &bound, Some(&good)).unwrap().unwrap()[..], values[..]);
        assert_eq!(resolve("w", 3, &SideInfoUse::None, None).unwrap(), None);
        let missing = resolve("w", 3, &bound, None).unwrap_err();
        assert_eq!(missing.code(), ErrorCode::SideInfoMissing);
        assert!(missing.detail().contains("\"w\"") && missing.detail().contains("\"sent\""), "{missing}");
        let other = provider(vec![1.0, 2.0, 3.5]);
        let e = resolve("w", 3, &bound, Some(&other)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::SideInfoMismatch);
        assert!(e.detail().contains("\"given\"") && e.detail().contains("\"sent\""), "{e}");
        let short = provider(vec![1.0]);
        assert_eq!(
            resolve("w", 3, &SideInfoUse::Unbound, Some(&short)).unwrap_err().code(),
            ErrorCode::SideInfoMismatch
        );
        assert_eq!(resolve("w", 3, &SideInfoUse::Unbound, Some(&other)).unwrap().unwrap()[..], [1.0, 2.0, 3.5]);
        assert!(SideBinding::of(&"x".repeat(256), &[]).is_err());
    }
}
