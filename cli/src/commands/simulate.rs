//! `gradwire simulate`: federated training of scikit-learn's digits on this machine
//! ([`gradwire_sim`]), once per codec, every client update sent as a real stream. Prints test
//! accuracy against uplink bits and the per-bit accuracy (docs/SIMULATION.md), as Markdown or
//! JSON, and draws accuracy against bits as SVG.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gradwire_sim::{Algorithm, Architecture, SimulationConfig, SimulationResult, Split, report, simulate};
use rayon::prelude::*;

use crate::GlobalArgs;
use crate::plot::{Plot, Series};

/// Codecs compared when no `--codec` is given: the exact baseline and one or two settings of
/// each family, from about 16 bits per entry down to well under one.
pub const DEFAULT_CODECS: &[&str] = &[
    "raw",
    "bf16",
    "m22:bits=4",
    "m22:bits=2",
    "qsgd:levels=16",
    "sparse-dither:nu=0.1",
    "signsgd:scale=mean",
    "topk:fraction=0.1,values=(m22:bits=4)",
    "randk:fraction=0.1,scaling=unbiased+bf16",
];

/// The network.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelChoice {
    /// Softmax regression (650 parameters).
    Softmax,
    /// One hidden ReLU layer of `--hidden` units.
    Mlp,
}

/// How training examples are dealt to clients.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SplitChoice {
    /// Shuffled, dealt round-robin.
    Iid,
    /// Two label-sorted shards per client (about two classes each).
    LabelSkew,
}

/// What clients send.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmChoice {
    /// One minibatch gradient per round; the server steps by -lr times the mean.
    Fedsgd,
    /// The model change after --local-steps SGD steps; the server adds the mean.
    Fedavg,
}

/// Arguments of `gradwire simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Pipelines for the client uplink, each run separately (repeat the flag; quote specs with
    /// parentheses). Default: a set spanning about 16 bits per entry to well under one.
    #[arg(long = "codec")]
    pub codecs: Vec<String>,
    /// The network.
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelChoice,
    /// Hidden units of the MLP.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub hidden: u32,
    /// Number of clients.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub clients: u32,
    /// How the training examples are dealt to clients.
    #[arg(long, value_enum, default_value = "iid")]
    pub split: SplitChoice,
    /// FedSGD or FedAvg.
    #[arg(long, value_enum, default_value = "fedavg")]
    pub algorithm: AlgorithmChoice,
    /// Communication rounds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub rounds: u32,
    /// Local SGD steps per client per round (FedAvg).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub local_steps: u32,
    /// Minibatch size.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub batch: u32,
    /// Learning rate (clients' SGD for FedAvg, the server's step for FedSGD).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f32,
    /// Each client keeps an error-feedback residual (what its codec dropped is sent later).
    #[arg(long)]
    pub error_feedback: bool,
    /// Give clients and server the previous round's mean update as side information (the
    /// server broadcasts it with the model); wyner-ziv codes against it.
    #[arg(long)]
    pub previous_mean_side_info: bool,
    /// Test accuracy whose uplink cost the table reports.
    #[arg(long, default_value_t = 0.9)]
    pub target: f64,
    /// Print JSON (every round of every codec) instead of the Markdown table.
    #[arg(long)]
    pub json: bool,
    /// Write a plot of test accuracy against cumulative uplink bits: SVG, or PNG when the name
    /// ends in .png.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

impl SimulateArgs {
    /// The simulation settings; `seed` (the global `--seed`, default 1) seeds the split,
    /// initialisation, minibatches and stream seeds.
    fn config(&self, seed: u64) -> SimulationConfig {
        SimulationConfig {
            architecture: match self.model {
                ModelChoice::Softmax => Architecture::Softmax,
                ModelChoice::Mlp => Architecture::Mlp { hidden: self.hidden as usize },
            },
            clients: self.clients as usize,
            split: match self.split {
                SplitChoice::Iid => Split::Iid,
                SplitChoice::LabelSkew => Split::LabelSkew,
            },
            algorithm: match self.algorithm {
                AlgorithmChoice::Fedsgd => Algorithm::FedSgd,
                AlgorithmChoice::Fedavg => Algorithm::FedAvg,
            },
            rounds: self.rounds as usize,
            local_steps: self.local_steps as usize,
            batch: self.batch as usize,
            learning_rate: self.lr,
            test_fraction: 0.2,
            error_feedback: self.error_feedback,
            previous_mean_side_info: self.previous_mean_side_info,
            seed,
        }
    }
}

/// Runs `gradwire simulate`.
///
/// # Errors
/// A pipeline that does not parse, a codec error, or an unwritable plot file.
pub fn run(args: &SimulateArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let config = args.config(g.seed.unwrap_or(1));
    let codecs: Vec<String> = if args.codecs.is_empty() {
        DEFAULT_CODECS.iter().map(|&c| c.to_owned()).collect()
    } else {
        args.codecs.clone()
    };
    for codec in &codecs {
        registry.parse_pipeline(codec).with_context(|| format!("--codec {codec}"))?;
    }
    // Runs are independent and each is deterministic: run them on all threads.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(g.threads.unwrap_or(0)).build()?;
    let runs: Vec<SimulationResult> = pool.install(|| {
        codecs
            .par_iter()
            .map(|codec| simulate(&config, &registry, codec).with_context(|| format!("simulating {codec}")))
            .collect::<Result<_>>()
    })?;
    if let Some(path) = &args.plot {
        let title = format!("digits, {}", describe(&config));
        accuracy_plot(&runs, title).save(path).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let out = serde_json::json!({
            "config": format!("{config:?}"),
            "runs": report::json(&runs, config.clients),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let parameters = runs.first().map_or(0, |r| r.parameters);
        println!(
            "digits: {}; {parameters} parameters, initial test accuracy {:.2} %\n",
            describe(&config),
            100.0 * runs.first().map_or(0.0, |r| r.initial_accuracy),
        );
        print!("{}", report::markdown(&runs, config.clients, args.target));
        println!(
            "\nper-bit accuracy: test accuracy gained over the initial model, in percentage points per megabit of uplink (docs/SIMULATION.md)."
        );
    }
    Ok(())
}

/// Test accuracy against cumulative uplink bits, one line per codec, starting from the initial
/// model at the first round's bits.
fn accuracy_plot(runs: &[SimulationResult], title: String) -> Plot {
    Plot {
        title,
        x_label: "cumulative uplink bits (all clients)".into(),
        y_label: "test accuracy".into(),
        log_x: true,
        log_y: false,
        series: runs
            .iter()
            .map(|r| Series {
                name: r.codec.clone(),
                points: r.rounds.iter().map(|x| (x.uplink_bits as f64, x.accuracy)).collect(),
                line: true,
                dashed: false,
            })
            .collect(),
    }
}

/// `MLP 64-64-10, 4 clients (IID), FedAvg (5 local steps), 30 rounds, error feedback`.
fn describe(config: &SimulationConfig) -> String {
    let model = match config.architecture {
        Architecture::Softmax => "softmax regression".to_owned(),
        Architecture::Mlp { hidden } => format!("MLP 64-{hidden}-10"),
    };
    let split = match config.split {
        Split::Iid => "IID",
        Split::LabelSkew => "label-skewed",
    };
    let algorithm = match config.algorithm {
        Algorithm::FedSgd => "FedSGD".to_owned(),
        Algorithm::FedAvg => format!("FedAvg ({} local steps)", config.local_steps),
    };
    format!(
        "{model}, {} clients ({split}), {algorithm}, {} rounds, batch {}, lr {}{}{}",
        config.clients,
        config.rounds,
        config.batch,
        config.learning_rate,
        if config.error_feedback { ", error feedback" } else { "" },
        if config.previous_mean_side_info { ", previous mean update as side information" } else { "" }
    )
}
