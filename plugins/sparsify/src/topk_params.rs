//! Parameters of `topk` in text (`fraction=0.01,values=bf16`, `values=(m22:bits=4)`) and on the
//! wire (`spec/CODECS.md` §9): 8 bytes, then for values through a pipeline that pipeline's stage
//! entries.

use gradwire_codec::{Error, ErrorCode, Limits, Pipeline, Registry, Result, StageDescriptor, TextParams};

use crate::TOPK_ID;
use crate::params::{fraction_head, fraction_text, kept_count, parse_fraction};

/// How `topk` stores its kept values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// As the core `raw` codec: little-endian f32, exact (mode 0).
    F32,
    /// As the core `bf16` codec: the upper 16 bits, rounded to nearest even (mode 1).
    Bf16,
    /// Through a nested pipeline of any codecs but `topk` (mode 2, codec version 2): the kept
    /// values are one chunk of it.
    Pipeline(Vec<StageDescriptor>),
}

/// Parameters of one `topk` stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopKParams {
    /// Fraction of values kept, as a numerator over 2^32, as for `randk`.
    pub fraction: u32,
    /// Storage of the kept values.
    pub values: Values,
}

/// Length of the fixed part of the parameters.
const FIXED_LEN: usize = 8;

impl TopKParams {
    /// Values kept of a chunk of `n` ([`kept_count`]).
    #[must_use]
    pub fn kept(&self, n: usize) -> usize {
        kept_count(self.fraction, n)
    }

    /// The codec version that reads these parameters: 2 for values through a pipeline, else 1.
    #[must_use]
    pub fn version(&self) -> u16 {
        if matches!(self.values, Values::Pipeline(_)) { 2 } else { 1 }
    }

    /// Parses the text form; a nested pipeline `values=(...)` is parsed with `registry`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for a fraction outside `(0, 1)`, unknown values, a nested
    /// pipeline that does not parse or build, holds `topk` or nests parentheses.
    ///
    /// # Examples
    /// ```
    /// use gradwire_codec::{Registry, TextParams};
    /// use gradwire_sparsify::{TopKParams, Values};
    /// let text = TextParams { pairs: vec![("values".into(), "(bf16+zstd:level=3)".into())] };
    /// let p = TopKParams::from_text(&text, &Registry::core())?;
    /// assert!(matches!(&p.values, Values::Pipeline(stages) if stages.len() == 2));
    /// assert_eq!(p.to_text(&Registry::core())?, "fraction=0.01,values=(bf16+zstd:level=3)");
    /// # Ok::<(), gradwire_codec::Error>(())
    /// ```
    pub fn from_text(text: &TextParams, registry: &Registry) -> Result<TopKParams> {
        let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
        let fraction = parse_fraction(text, "topk")?;
        let values = match text.get("values").unwrap_or("f32") {
            "f32" => Values::F32,
            "bf16" => Values::Bf16,
            other => {
                let inner = other.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(|| {
                    arg(format!("topk values={other:?} is not f32, bf16 or a pipeline in parentheses"))
                })?;
                if inner.contains(['(', ')']) {
                    return Err(arg(format!("topk values={other:?}: values pipelines do not nest")));
                }
                let stages = registry.parse_pipeline(inner).map_err(|e| arg(format!("topk values: {}", e.detail())))?;
                refuse_nested_topk(&stages).map_err(|e| arg(e.detail().to_owned()))?;
                Pipeline::build(registry, &stages, &Limits::default())
                    .map_err(|e| arg(format!("topk values=({inner}): {}", e.detail())))?;
                Values::Pipeline(stages)
            }
        };
        Ok(TopKParams { fraction, values })
    }

    /// The text form; a nested pipeline is rendered with `registry`.
    ///
    /// # Errors
    /// [`ErrorCode::UnsupportedCodec`] when a nested codec is not in `registry`; a nested codec's
    /// [`ErrorCode::InvalidParams`] when its parameters do not parse.
    pub fn to_text(&self, registry: &Registry) -> Result<String> {
        let fraction = fraction_text(self.fraction);
        Ok(match &self.values {
            Values::F32 => format!("fraction={fraction}"),
            Values::Bf16 => format!("fraction={fraction},values=bf16"),
            Values::Pipeline(stages) => format!("fraction={fraction},values=({})", registry.pipeline_to_text(stages)?),
        })
    }

    /// The wire bytes: `u32 fraction, u8 values, 3 reserved`, then for mode 2 the nested
    /// pipeline (`u8 n_stages` and stage entries as in TENSOR_BEGIN).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN);
        out.extend_from_slice(&self.fraction.to_le_bytes());
        out.push(match self.values {
            Values::F32 => 0,
            Values::Bf16 => 1,
            Values::Pipeline(_) => 2,
        });
        out.extend_from_slice(&[0; 3]);
        if let Values::Pipeline(stages) = &self.values {
            out.extend_from_slice(&StageDescriptor::encode_list(stages));
        }
        out
    }

    /// Parses untrusted wire bytes of codec `version`; a nested pipeline is checked against
    /// `limits` (stage count, parameter length) but not built.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length, a zero fraction, unknown values, mode 2
    /// in version 1, a nested pipeline that does not parse or holds `topk`;
    /// [`ErrorCode::ReservedNonzero`] for nonzero reserved bytes; the errors of
    /// [`StageDescriptor::decode_list`].
    pub fn decode(version: u16, bytes: &[u8], limits: &Limits) -> Result<TopKParams> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let Some((b, nested)) = bytes.split_first_chunk::<FIXED_LEN>() else {
            return Err(invalid(format!("topk parameters must be at least 8 bytes, found {}", bytes.len())));
        };
        let (fraction, mode) = fraction_head(b, "topk")?;
        let values = match mode {
            0 => Values::F32,
            1 => Values::Bf16,
            2 if version >= 2 => {
                let stages = StageDescriptor::decode_list(nested, limits)
                    .map_err(|e| Error::new(e.code(), format!("topk values pipeline: {}", e.detail())))?;
                refuse_nested_topk(&stages)?;
                Values::Pipeline(stages)
            }
            2 => return Err(invalid("topk values mode 2 (a pipeline) needs codec version 2, not 1".into())),
            v => return Err(invalid(format!("topk values {v} is not 0 (f32), 1 (bf16) or 2 (a pipeline)"))),
        };
        if !matches!(values, Values::Pipeline(_)) && !nested.is_empty() {
            return Err(invalid(format!("topk parameters must be 8 bytes, found {}", bytes.len())));
        }
        Ok(TopKParams { fraction, values })
    }
}

/// A values pipeline must not hold `topk` (so nesting stays one level deep).
pub(crate) fn refuse_nested_topk(stages: &[StageDescriptor]) -> Result<()> {
    if stages.iter().any(|s| s.codec_id == TOPK_ID) {
        return Err(Error::new(ErrorCode::InvalidParams, "topk values pipelines cannot hold topk"));
    }
    Ok(())
}
