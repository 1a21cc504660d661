//! `m22:rate=B` on the command line: the one codec parameter that needs the whole stream. Before
//! anything is written, the `rate` of an `m22` stage is replaced by the error target `mse=D`
//! that `gradwire_m22::allocate` predicts will average `B` bits per entry over every tensor.

use anyhow::{Context, Result, bail};
use gradwire::Registry;
use gradwire::m22::M22Params;
use gradwire::m22::allocate::allocate;

use crate::tensor_io::NamedTensor;

/// The pipeline text with any `m22:...rate=B...` stage resolved to `mse=D`.
pub fn resolve_rate(spec: &str, registry: &Registry, tensors: &[NamedTensor], chunk_elements: u64) -> Result<String> {
    let mut stages = Vec::new();
    for stage in spec.split('+') {
        let Some(params) = stage.strip_prefix("m22:") else {
            stages.push(stage.to_owned());
            continue;
        };
        let (rate, rest): (Vec<&str>, Vec<&str>) = params.split(',').partition(|kv| kv.starts_with("rate="));
        let Some(rate) = rate.last() else {
            stages.push(stage.to_owned());
            continue;
        };
        let rate: f64 = rate["rate=".len()..]
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .with_context(|| format!("m22 {rate:?}: the rate must be a positive number of bits per entry"))?;
        if rest.iter().any(|kv| kv.starts_with("mse=")) {
            bail!(gradwire::Error::new(gradwire::ErrorCode::InvalidArgument, "m22 takes rate=B or mse=D, not both"));
        }
        let mut text = String::from("m22");
        if !rest.is_empty() {
            text = format!("m22:{}", rest.join(","));
        }
        let with_bits = if rest.iter().any(|kv| kv.starts_with("bits=")) {
            text.clone()
        } else {
            format!("{text}{}bits=8", if rest.is_empty() { ":" } else { "," })
        };
        let params = M22Params::decode(&registry.parse_pipeline(&with_bits)?[0].params)?;
        let values: Vec<&[f32]> = tensors.iter().map(|t| t.values.as_slice()).collect();
        let resolved = match allocate(&values, chunk_elements as usize, &params, rate) {
            Some(d) => format!("{with_bits},mse={d:e}"),
            None => with_bits,
        };
        stages.push(resolved);
    }
    Ok(stages.join("+"))
}
