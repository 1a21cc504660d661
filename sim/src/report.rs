//! Reports of simulation runs: a Markdown summary and JSON with the per-round curves (the
//! command line draws the plot).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::federated::SimulationResult;

/// A Markdown table: one row per run.
#[must_use]
pub fn markdown(runs: &[SimulationResult], clients: usize, target: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| codec | final accuracy | best accuracy | uplink MB | bits/entry | per-bit accuracy (pp/Mbit) | Mbit to {:.0} % |",
        100.0 * target
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    for r in runs {
        let best = r.rounds.iter().map(|x| x.accuracy).fold(r.initial_accuracy, f64::max);
        let reach =
            r.bits_to_reach(target).map_or_else(|| "not reached".to_owned(), |b| format!("{:.3}", b as f64 / 1e6));
        let _ = writeln!(
            out,
            "| `{}` | {:.2} % | {:.2} % | {:.4} | {:.3} | {:.3} | {} |",
            r.codec,
            100.0 * r.final_accuracy(),
            100.0 * best,
            r.total_bits() as f64 / 8e6,
            r.bits_per_entry(clients),
            r.per_bit_accuracy(),
            reach
        );
    }
    out
}

/// JSON: per run its summary and every round.
#[must_use]
pub fn json(runs: &[SimulationResult], clients: usize) -> Value {
    Value::Array(
        runs.iter()
            .map(|r| {
                json!({
                    "codec": r.codec,
                    "parameters": r.parameters,
                    "initial_accuracy": r.initial_accuracy,
                    "final_accuracy": r.final_accuracy(),
                    "total_bits": r.total_bits(),
                    "bits_per_entry": r.bits_per_entry(clients),
                    "per_bit_accuracy": r.per_bit_accuracy(),
                    "rounds": r.rounds.iter().map(|x| json!({
                        "round": x.round,
                        "accuracy": x.accuracy,
                        "train_loss": x.train_loss,
                        "uplink_bits": x.uplink_bits,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
