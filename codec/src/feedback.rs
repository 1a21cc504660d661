//! Error feedback: an encoder-side wrapper that makes any lossy pipeline unbiased over time
//! (Karimireddy et al. 2019, `spec/FORMAT.md` §16).
//!
//! For each tensor the sender keeps a residual `e` (zero at first). To send `g` it encodes
//! `p = g + e`, and keeps `e <- p - decode(encode(p))`: whatever the codec dropped is added back
//! next round, so the sum of everything transmitted plus the current residual equals the sum of
//! every input (up to f32 rounding). The residual is state of the sender, never on the wire; the
//! caller owns the [`ErrorFeedback`] session and may checkpoint it with [`ErrorFeedback::save`]
//! (a gradwire stream of raw tensors marked `gradwire.kind = "error-feedback-state"`).
//!
//! Apply any learning rate before handing `g` over (EF-signSGD compresses `eta * g`).
//!
//! Design decision: error feedback is not an `array->array` stage, although the architecture
//! proposal listed it as one. A stage is named on the wire and is stateless across chunks and
//! rounds; error feedback changes nothing a reader sees and needs state that outlives a stream.
//! So it wraps the writer ([`Writer::write_tensor_reconstructed`] returns exactly what readers
//! decode) and works with every lossy pipeline, present and future, without a codec ID.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::error::{Error, ErrorCode, Result};
use crate::format::{Metadata, StreamHeader, Value};
use crate::registry::Registry;
use crate::stream::{Reader, TensorId, TensorSpec, Writer, WriterOptions};

/// Value of the `gradwire.kind` metadata key that marks a saved error-feedback state.
pub const STATE_KIND: &str = "error-feedback-state";

/// One tensor's residual.
#[derive(Debug, Clone, PartialEq)]
struct Residual {
    shape: Vec<u64>,
    values: Vec<f32>,
}

/// The sender's error-feedback state: one residual per tensor name.
///
/// # Examples
/// ```
/// use gradwire_codec::{ErrorFeedback, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};
/// let registry = Registry::core();
/// let mut feedback = ErrorFeedback::new();
/// let mut sent = 0f32;
/// for _round in 0..3 {
///     let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
///     let spec = TensorSpec::new("g", &[1], registry.parse_pipeline("bf16")?);
///     let decoded = feedback.write_tensor(&mut w, spec, &[1.001])?;
///     sent += decoded[0];
/// }
/// // Everything sent plus what is still owed equals everything that came in.
/// assert!((sent + feedback.residual("g").unwrap()[0] - 3.003).abs() < 1e-6);
/// # Ok::<(), gradwire_codec::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorFeedback {
    residuals: BTreeMap<String, Residual>,
}

impl ErrorFeedback {
    /// A session with every residual at zero.
    #[must_use]
    pub fn new() -> Self {
        ErrorFeedback::default()
    }

    /// Writes `values + residual` as tensor `spec` and updates the residual; returns what every
    /// reader will decode.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] when the stored residual of this name has another shape
    /// (stale state); otherwise as [`Writer::write_tensor`].
    pub fn write_tensor<W: Write>(
        &mut self,
        writer: &mut Writer<'_, W>,
        spec: TensorSpec,
        values: &[f32],
    ) -> Result<Vec<f32>> {
        self.write_tensor_with_id(writer, spec, values).map(|(_, decoded)| decoded)
    }

    /// As [`ErrorFeedback::write_tensor`], also returning the tensor's ID in the stream.
    ///
    /// # Errors
    /// As [`ErrorFeedback::write_tensor`].
    pub fn write_tensor_with_id<W: Write>(
        &mut self,
        writer: &mut Writer<'_, W>,
        spec: TensorSpec,
        values: &[f32],
    ) -> Result<(TensorId, Vec<f32>)> {
        let mut compensated = values.to_vec();
        if let Some(r) = self.residuals.get(&spec.name) {
            if r.shape != spec.shape || r.values.len() != values.len() {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "error-feedback residual of {:?} has shape {:?}, the tensor has shape {:?}",
                        spec.name, r.shape, spec.shape
                    ),
                ));
            }
            for (p, e) in compensated.iter_mut().zip(&r.values) {
                *p += e;
            }
        }
        let (name, shape) = (spec.name.clone(), spec.shape.clone());
        let (id, decoded) = writer.write_tensor_reconstructed(spec, &compensated)?;
        for (p, d) in compensated.iter_mut().zip(&decoded) {
            *p -= d;
        }
        self.residuals.insert(name, Residual { shape, values: compensated });
        Ok((id, decoded))
    }

    /// The current residual of tensor `name`.
    #[must_use]
    pub fn residual(&self, name: &str) -> Option<&[f32]> {
        self.residuals.get(name).map(|r| r.values.as_slice())
    }

    /// Names of the tensors with a residual, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.residuals.keys().map(String::as_str)
    }

    /// Forgets the residual of `name` (for example when a layer is re-initialized).
    pub fn reset(&mut self, name: &str) {
        self.residuals.remove(name);
    }

    /// Saves the state as a gradwire stream of raw f32 tensors (exact), marked with
    /// `gradwire.kind = "error-feedback-state"`.
    ///
    /// # Errors
    /// [`ErrorCode::Io`] from `out`.
    pub fn save<W: Write>(&self, out: W) -> Result<W> {
        let registry = Registry::core();
        let mut metadata = Metadata::new();
        metadata.insert("gradwire.kind", Value::Utf8(STATE_KIND.into()))?;
        let header = StreamHeader { metadata, ..StreamHeader::default() };
        let mut writer = Writer::new(out, &registry, &header, WriterOptions::default())?;
        for (name, r) in &self.residuals {
            let pipeline = registry.parse_pipeline("raw")?;
            writer.write_tensor(TensorSpec::new(name.clone(), &r.shape, pipeline), &r.values)?;
        }
        writer.finish()
    }

    /// Loads a state written by [`ErrorFeedback::save`].
    ///
    /// # Errors
    /// Any reader error; [`ErrorCode::InvalidArgument`] when the stream is not marked as an
    /// error-feedback state.
    pub fn load<R: Read>(input: R) -> Result<ErrorFeedback> {
        let registry = Registry::core();
        let stream = Reader::new(input, &registry).read_all()?;
        match stream.header.metadata.get("gradwire.kind") {
            Some(Value::Utf8(kind)) if kind == STATE_KIND => {}
            other => {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("not an error-feedback state: gradwire.kind is {other:?}, expected {STATE_KIND:?}"),
                ));
            }
        }
        let raw = registry.parse_pipeline("raw")?;
        let mut residuals = BTreeMap::new();
        for t in stream.tensors {
            let d = &t.descriptor;
            if d.pipeline != raw || d.dtype != crate::format::DType::F32 {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("error-feedback residual {:?} must be f32 through raw (FORMAT.md §16)", d.name),
                ));
            }
            residuals.insert(d.name.clone(), Residual { shape: d.shape.clone(), values: t.values });
        }
        Ok(ErrorFeedback { residuals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telescoping_sum_holds_and_state_round_trips() {
        let registry = Registry::core();
        let mut feedback = ErrorFeedback::new();
        let mut rng = crate::rng::SeededRng::new(7);
        let n = 1000;
        let (mut inputs, mut sent) = (vec![0f64; n], vec![0f64; n]);
        for _ in 0..20 {
            let g: Vec<f32> = (0..n).map(|_| (rng.next_unit_f32() - 0.5) * 1e-3).collect();
            let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
            let spec = TensorSpec::new("w", &[10, 100], registry.parse_pipeline("f16").unwrap());
            let decoded = feedback.write_tensor(&mut w, spec, &g).unwrap();
            let bytes = w.finish().unwrap();
            let read = Reader::new(&bytes[..], &registry).read_all().unwrap();
            assert_eq!(read.tensors[0].values, decoded, "the reconstruction is what a reader decodes");
            for i in 0..n {
                inputs[i] += f64::from(g[i]);
                sent[i] += f64::from(decoded[i]);
            }
        }
        let e = feedback.residual("w").unwrap();
        for i in 0..n {
            assert!((sent[i] + f64::from(e[i]) - inputs[i]).abs() < 1e-8, "entry {i}");
        }
        assert!(e.iter().any(|&x| x != 0.0), "f16 is lossy, so something is owed");
        let saved = feedback.save(Vec::new()).unwrap();
        assert_eq!(ErrorFeedback::load(&saved[..]).unwrap(), feedback);
    }

    #[test]
    fn stale_shape_and_foreign_files_are_refused() {
        let registry = Registry::core();
        let mut feedback = ErrorFeedback::new();
        let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default()).unwrap();
        feedback
            .write_tensor(&mut w, TensorSpec::new("w", &[2], registry.parse_pipeline("f16").unwrap()), &[1.0, 2.0])
            .unwrap();
        let err = feedback
            .write_tensor(&mut w, TensorSpec::new("w", &[3], registry.parse_pipeline("f16").unwrap()), &[1.0, 2.0, 3.0])
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        let plain = w.finish().unwrap();
        assert_eq!(ErrorFeedback::load(&plain[..]).unwrap_err().code(), ErrorCode::InvalidArgument);
    }
}
