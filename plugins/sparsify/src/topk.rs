//! `topk` (`spec/CODECS.md` §9): the `k` values of largest magnitude, their positions as
//! Golomb-Rice coded gaps, their values through the core `raw` or `bf16` codec.

use gradwire_codec::entropy::{MAX_RICE_PARAMETER, best_rice_parameter, rice_decode, rice_encode};
use gradwire_codec::{ArrayToBytes, ChunkContext, CodecFactory, Error, ErrorCode, Result, Stage};

use crate::params::{TopKParams, Values};

/// The built `topk` stage.
pub struct TopKStage {
    params: TopKParams,
    /// The core codec of the kept values.
    values: Box<dyn ArrayToBytes>,
}

impl TopKStage {
    /// Builds the stage with its value codec.
    ///
    /// # Errors
    /// Never for valid parameters (the core codecs take no parameters).
    pub fn new(params: TopKParams) -> Result<TopKStage> {
        let factory: &dyn CodecFactory = match params.values {
            Values::F32 => &gradwire_codec::codecs::RAW_CODEC,
            Values::Bf16 => &gradwire_codec::codecs::BF16_CODEC,
        };
        match factory.build(1, &[])? {
            Stage::ArrayToBytes(values) => Ok(TopKStage { params, values }),
            _ => Err(Error::new(ErrorCode::InvalidParams, "the value codec is not array->bytes")),
        }
    }

    fn value_bytes(&self, k: usize) -> usize {
        k * if self.params.values == Values::F32 { 4 } else { 2 }
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
        1usize.checked_add(self.value_bytes(k))?.checked_add(len.checked_add(k)?.div_ceil(8))
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
        self.values.encode(&kept, ctx, out)?;
        rice_encode(&gaps, b, out);
        Ok(())
    }

    fn decode(&self, bytes: &[u8], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let k = self.params.kept(n);
        let value_len = self.value_bytes(k);
        let Some((&b, rest)) = bytes.split_first().filter(|(_, rest)| rest.len() >= value_len) else {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("topk payload of {} bytes cannot hold {k} values", bytes.len()),
            ));
        };
        if b > MAX_RICE_PARAMETER {
            return Err(Error::new(ErrorCode::CodecData, format!("topk Rice parameter {b} is above 31")));
        }
        let (value_bytes, code) = rest.split_at(value_len);
        let mut kept = vec![0f32; k];
        self.values.decode(value_bytes, ctx, &mut kept)?;
        let mut gaps = Vec::with_capacity(k);
        let used = rice_decode(code, b, k, n as u64, &mut gaps)?;
        if used != code.len() {
            return Err(Error::new(
                ErrorCode::CodecOutputSize,
                format!("topk payload has {} bytes after its positions", code.len() - used),
            ));
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
