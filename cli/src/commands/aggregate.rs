//! `gradwire aggregate`: combine client updates of one round into one stream (majority vote of
//! signs or weighted mean), in the compressed domain where the codec allows it
//! (`spec/FORMAT.md` §17).

use std::io::BufReader;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gradwire::WriterOptions;
use gradwire::aggregate::{AggregateOptions, Rule, aggregate};

use crate::GlobalArgs;

/// The aggregation rule on the command line.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum RuleArg {
    /// Sign of the sum of signs, ties +1, every input counted once.
    Majority,
    /// Mean weighted by fl.num_examples (or --weights, or equal weights).
    Mean,
}

/// Arguments of `gradwire aggregate`.
#[derive(Args, Debug)]
pub struct AggregateArgs {
    /// Input streams: updates of the same round with the same tensors and shapes.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<String>,
    /// Output stream (replaced only once the aggregate is complete; never one of the inputs).
    #[arg(short, long)]
    pub output: String,
    /// How to combine the inputs.
    #[arg(long, value_enum, default_value = "mean")]
    pub rule: RuleArg,
    /// Output pipeline; default signsgd:scale=none for majority, the inputs' pipeline for mean.
    #[arg(long)]
    pub codec: Option<String>,
    /// Comma-separated weights, one per input (mean only); default fl.num_examples.
    #[arg(long, value_delimiter = ',')]
    pub weights: Option<Vec<f64>>,
    /// Refuse what cannot be combined in the compressed domain instead of decoding and
    /// re-encoding it: inputs whose pipelines differ (another codec, or a projection with another
    /// seed), and projections written with another output pipeline or rule.
    #[arg(long)]
    pub compressed_only: bool,
}

/// Runs `gradwire aggregate`.
pub fn run(args: &AggregateArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let rule = match args.rule {
        RuleArg::Majority => Rule::Majority,
        RuleArg::Mean => Rule::Mean,
    };
    let mut options = AggregateOptions::new(rule);
    options.output = args.codec.as_deref().map(|c| registry.parse_pipeline(c)).transpose()?;
    options.weights.clone_from(&args.weights);
    options.compressed_only = args.compressed_only;
    options.writer = WriterOptions::default().threads(g.threads_or_all());
    if let Some(input) = args.inputs.iter().find(|i| crate::atomic::same_file(i, &args.output)) {
        anyhow::bail!(gradwire::Error::new(
            gradwire::ErrorCode::InvalidArgument,
            format!("the output {} is also an input ({input}); write the aggregate elsewhere", args.output)
        ));
    }
    let inputs = args
        .inputs
        .iter()
        .map(|p| {
            std::fs::File::open(p).map(|f| BufReader::with_capacity(1 << 20, f)).with_context(|| format!("opening {p}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut report = None;
    crate::atomic::replace_file(&args.output, |out| {
        let (_, r) = aggregate(inputs, &registry, &options, out)
            .map_err(|e| anyhow::Error::new(e.clone()).context(input_named(&e, &args.inputs)))?;
        report = Some(r);
        Ok(())
    })?;
    let report = report.context("aggregation produced no report")?;
    if !g.quiet {
        let weights: Vec<String> = report.weights.iter().map(|w| format!("{w:.4}")).collect();
        eprintln!(
            "aggregated {} updates ({}, weights {}) into {}: {} tensors, {} values",
            args.inputs.len(),
            rule.as_str(),
            weights.join(", "),
            args.output,
            report.tensors,
            report.values
        );
    }
    Ok(())
}

/// Names the file behind "input K" in an aggregation error.
fn input_named(e: &gradwire::Error, paths: &[String]) -> String {
    let k = e.detail().strip_prefix("input ").and_then(|rest| rest.split([':', ' ']).next()?.parse::<usize>().ok());
    match k.and_then(|k| paths.get(k)) {
        Some(path) => format!("aggregating (input {} is {path})", k.unwrap_or(0)),
        None => "aggregating".to_owned(),
    }
}
