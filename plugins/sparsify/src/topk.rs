//! `topk` (`spec/CODECS.md` §9): the `k` values of largest magnitude, their positions as
//! Golomb-Rice coded gaps, their values through the core `raw` or `bf16` codec or through a
//! nested pipeline (`values=(m22:bits=4)`).

use gradwire_codec::entropy::{MAX_RICE_PARAMETER, best_rice_parameter, rice_decode, rice_encode};
use gradwire_codec::{
    ArrayToBytes, ChunkContext, CodecFactory, Error, ErrorCode, Limits, Pipeline, Registry, Result, Stage,
};

use crate::topk_params::{TopKParams, Values, refuse_nested_topk};

/// The built `topk` stage.
pub struct TopKStage {
    params: TopKParams,
    values: ValueCoder,
}

/// What codes the kept values.
enum ValueCoder {
    /// The core `raw` or `bf16` codec (modes 0 and 1), written before the positions.
    Core(Box<dyn ArrayToBytes>),
    /// A nested pipeline (mode 2): the kept values are one chunk of it, written after the positions.
    Pipeline(Pipeline),
}

impl TopKStage {
    /// Builds the stage with its value codec; a nested pipeline is built from `registry` under
    /// `limits`.
    ///
    /// # Errors
    /// `invalid_params` for a values pipeline that holds `topk` or decodes against side
    /// information (`crate`-level docs of `gradwire_codec::side_info`); the errors of building the
    /// nested pipeline (`unsupported_codec`, `invalid_params`, `pipeline_invalid`,
    /// `limit_exceeded`), prefixed with `topk values`.
    pub fn new(params: TopKParams, registry: &Registry, limits: &Limits) -> Result<TopKStage> {
        let core: &dyn CodecFactory = match &params.values {
            Values::F32 => &gradwire_codec::codecs::RAW_CODEC,
            Values::Bf16 => &gradwire_codec::codecs::BF16_CODEC,
            Values::Pipeline(stages) => {
                refuse_nested_topk(stages)?;
                let pipeline = Pipeline::build(registry, stages, limits)
                    .map_err(|e| Error::new(e.code(), format!("topk values: {}", e.detail())))?;
                if pipeline.side_info() != gradwire_codec::SideInfoUse::None {
                    // The kept values have no side information of their own.
                    return Err(Error::new(
                        ErrorCode::InvalidParams,
                        "topk values pipelines cannot decode against side information",
                    ));
                }
                return Ok(TopKStage { params, values: ValueCoder::Pipeline(pipeline) });
            }
        };
        match core.build(1, &[])? {
            Stage::ArrayToBytes(values) => Ok(TopKStage { params, values: ValueCoder::Core(values) }),
            _ => Err(Error::new(ErrorCode::InvalidParams, "the value codec is not array->bytes")),
        }
    }

    /// Size bound of the values of a chunk that keeps `k` (exact for modes 0 and 1).
    fn max_value_bytes(&self, k: usize) -> Option<usize> {
        match (&self.values, &self.params.values) {
            // A nested bound over the limits leaves the whole bound undefined, which the
            // pipeline reports as limit_exceeded.
            (ValueCoder::Pipeline(p), _) => p.bounds(k).ok().map(|b| b.max_payload()),
            (ValueCoder::Core(_), Values::Bf16) => k.checked_mul(2),
            (ValueCoder::Core(_), _) => k.checked_mul(4),
        }
    }
}

impl ArrayToBytes for TopKStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        if len > u32::MAX as usize {
            return None; // positions are u32: refused as limit_exceeded by the pipeline
        }
        let k = self.params.kept(len);
        // Parameter 0 codes gap g in g + 1 bits, and the k gaps sum to at most n - k: at most
        // n bits in all (n + k is a safe bound). The encoder picks the shortest code, so it never
        // writes more.
        1usize.checked_add(self.max_value_bytes(k)?)?.checked_add(len.checked_add(k)?.div_ceil(8))
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        if let Some(i) = input.iter().position(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("topk cannot rank value {i} of the chunk, {}", input[i]),
            ));
        }
        let n = input.len();
        if n > u32::MAX as usize {
            return Err(Error::new(
                ErrorCode::LimitExceeded,
                format!("topk chunks hold at most 2^32-1 values, this one {n}"),
            ));
        }
        let k = self.params.kept(n);
        // The k largest magnitudes (ties: whichever the selection keeps), then in position order.
        let mut order: Vec<u32> = (0..n as u32).collect();
        if k < n {
            order.select_nth_unstable_by_key(k, |&i| std::cmp::Reverse(input[i as usize].abs().to_bits()));
        }
        let mut positions = order[..k].to_vec();
        positions.sort_unstable();
        let gaps: Vec<u64> = positions
            .iter()
            .scan(None, |previous: &mut Option<u32>, &p| {
                let gap = previous.map_or(u64::from(p), |q| u64::from(p - q - 1));
                *previous = Some(p);
                Some(gap)
            })
            .collect();
        let b = best_rice_parameter(&gaps);
        out.push(b);
        let kept: Vec<f32> = positions.iter().map(|&p| input[p as usize]).collect();
        match &self.values {
            ValueCoder::Core(values) => {
                values.encode(&kept, ctx, out)?;
                rice_encode(&gaps, b, out);
            }
            ValueCoder::Pipeline(pipeline) => {
                rice_encode(&gaps, b, out);
                pipeline.encode_chunk(&kept, ctx, out)?;
            }
        }
        Ok(())
    }

    fn decode(&self, bytes: &[u8], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let k = self.params.kept(n);
        let value_len = match self.values {
            ValueCoder::Core(_) => self.max_value_bytes(k).unwrap_or(usize::MAX),
            ValueCoder::Pipeline(_) => 0,
        };
        let Some((&b, rest)) = bytes.split_first().filter(|(_, rest)| rest.len() >= value_len) else {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("topk payload of {} bytes cannot hold {k} values", bytes.len()),
            ));
        };
        if b > MAX_RICE_PARAMETER {
            return Err(Error::new(ErrorCode::CodecData, format!("topk Rice parameter {b} is above 31")));
        }
        let mut kept = vec![0f32; k];
        let mut gaps = Vec::with_capacity(k);
        match &self.values {
            ValueCoder::Core(values) => {
                let (value_bytes, code) = rest.split_at(value_len);
                values.decode(value_bytes, ctx, &mut kept)?;
                let used = rice_decode(code, b, k, n as u64, &mut gaps)?;
                if used != code.len() {
                    return Err(Error::new(
                        ErrorCode::CodecOutputSize,
                        format!("topk payload has {} bytes after its positions", code.len() - used),
                    ));
                }
            }
            ValueCoder::Pipeline(pipeline) => {
                let used = rice_decode(rest, b, k, n as u64, &mut gaps)?;
                pipeline
                    .decode_chunk(&rest[used..], ctx, &mut kept)
                    .map_err(|e| Error::new(e.code(), format!("topk values: {}", e.detail())))?;
            }
        }
        out.fill(0.0);
        let mut next = 0u64;
        for (j, (gap, v)) in gaps.iter().zip(kept).enumerate() {
            let p = next + gap;
            if p >= n as u64 {
                return Err(Error::new(
                    ErrorCode::CodecData,
                    format!("topk position {j} is {p}, past the chunk of {n}"),
                ));
            }
            out[p as usize] = v;
            next = p + 1;
        }
        Ok(())
    }
}
