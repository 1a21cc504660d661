//! `gradwire side-gain DIR`: what side information buys `wyner-ziv` on the gradients of a
//! federated run (`rNN_cK.safetensors`: client K's update in round NN).
//!
//! For every client update of rounds 1 and later, at each lattice step of a sweep, the update is
//! coded by `wyner-ziv:step=S` (a) against the previous round's mean update, (b) against another
//! client's update of the same round (client K+1), (c) without side information (the same
//! lattice quantizer, its indices entropy coded); and (d) by `m22:rate=B` over a sweep of rates
//! (its cell width allocated over the whole update). Sizes are whole streams (container,
//! bindings and every side field counted); errors are pooled over all updates. At one step (a),
//! (b) and (c) decode to the same lattice points, so their relative MSE is the same and their
//! sizes compare directly; (d) is interpolated to that error.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use gradwire::{Reader, SideInfoMap, StreamHeader, Writer, WriterOptions};

use crate::GlobalArgs;
use crate::commands::allocate::resolve_rate;
use crate::tensor_io::{NamedTensor, read_tensors};

/// Arguments of `gradwire side-gain`.
#[derive(Args, Debug)]
pub struct SideGainArgs {
    /// Folder of client updates named rNN_cK.safetensors (round NN, client K).
    pub dir: String,
    /// Lattice steps to sweep (one absolute step for every tensor).
    #[arg(long, value_delimiter = ',', default_values_t = [3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5])]
    pub steps: Vec<f32>,
    /// Rates of the m22 sweep, bits per entry.
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0])]
    pub m22_rates: Vec<f64>,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    pub json: bool,
}

/// Bits, squared error, energy and the largest error in steps, pooled over updates.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    bits: f64,
    entries: f64,
    error: f64,
    energy: f64,
    worst_in_steps: f64,
}

impl Totals {
    fn bpe(&self) -> f64 {
        self.bits / self.entries.max(1.0)
    }
    fn relative_mse(&self) -> f64 {
        self.error / self.energy.max(f64::MIN_POSITIVE)
    }
}

/// The four ways an update is coded.
const SETTINGS: [&str; 4] =
    ["(a) previous round's mean", "(b) another client, same round", "(c) no side information", "(d) m22:rate"];

/// Updates by round, then client.
type Run = BTreeMap<u32, BTreeMap<u32, Vec<NamedTensor>>>;

fn load_run(dir: &str) -> Result<Run> {
    let mut run = Run::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {dir}"))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some((round, client)) = name
            .strip_prefix('r')
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.split_once("_c"))
            .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
        else {
            continue;
        };
        let tensors = read_tensors(&path.to_string_lossy())?;
        run.entry(round).or_default().insert(client, tensors);
    }
    if run.len() < 2 {
        bail!("{dir} holds updates of {} rounds; side-gain needs rNN_cK.safetensors of two or more", run.len());
    }
    Ok(run)
}

/// The tensors of `updates` averaged by name, as side information labelled `label`.
fn mean_side(updates: &BTreeMap<u32, Vec<NamedTensor>>, label: &str) -> Result<SideInfoMap> {
    let mut side = SideInfoMap::new();
    let Some(first) = updates.values().next() else { return Ok(side) };
    for t in first {
        let mut sum = vec![0f64; t.values.len()];
        for (client, u) in updates {
            let Some(same) = u.iter().find(|o| o.name == t.name && o.values.len() == t.values.len()) else {
                bail!("client {client} has no tensor {:?} of {} values", t.name, t.values.len());
            };
            for (s, v) in sum.iter_mut().zip(&same.values) {
                *s += f64::from(*v);
            }
        }
        let n = updates.len() as f64;
        side.insert(t.name.clone(), label, sum.iter().map(|s| (s / n) as f32).collect::<Vec<f32>>());
    }
    Ok(side)
}

fn tensors_side(tensors: &[NamedTensor], label: &str) -> SideInfoMap {
    let mut side = SideInfoMap::new();
    for t in tensors {
        side.insert(t.name.clone(), label, t.values.clone());
    }
    side
}

/// Encodes `tensors` through `spec` (against `side` when given), decodes, and adds the result.
fn measure(
    registry: &gradwire::Registry,
    tensors: &[NamedTensor],
    spec: &str,
    side: Option<Arc<SideInfoMap>>,
    step: f32,
    totals: &mut Totals,
) -> Result<()> {
    let pipeline = registry.parse_pipeline(spec)?;
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), WriterOptions::default())?;
    let mut r_side = None;
    if let Some(side) = side {
        w.set_side_info(side.clone());
        r_side = Some(side);
    }
    for t in tensors {
        w.write_tensor(t.spec(&pipeline, false), &t.values).with_context(|| format!("{spec}: tensor {}", t.name))?;
    }
    let bytes = w.finish()?;
    let mut reader = Reader::new(&bytes[..], registry);
    if let Some(side) = r_side {
        reader.set_side_info(side);
    }
    let decoded = reader.read_all().with_context(|| format!("decoding {spec}"))?;
    totals.bits += bytes.len() as f64 * 8.0;
    for (t, d) in tensors.iter().zip(&decoded.tensors) {
        totals.entries += t.values.len() as f64;
        for (x, y) in t.values.iter().zip(&d.values) {
            let e = f64::from(*x) - f64::from(*y);
            totals.error += e * e;
            totals.energy += f64::from(*x) * f64::from(*x);
            totals.worst_in_steps = totals.worst_in_steps.max(e.abs() / f64::from(step));
        }
    }
    Ok(())
}

/// Bits per entry of the curve `points` (bpe, relative MSE) at `target` relative MSE, linear in
/// log(MSE) between the two nearest points; `None` outside the curve.
fn interpolate(points: &[(f64, f64)], target: f64) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1 > 0.0).collect();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
    sorted.windows(2).find_map(|w| {
        let ((b0, e0), (b1, e1)) = (w[0], w[1]);
        (e0 <= target && target <= e1).then(|| {
            let f = (target.ln() - e0.ln()) / (e1.ln() - e0.ln()).max(f64::MIN_POSITIVE);
            b0 + f * (b1 - b0)
        })
    })
}

/// Runs `gradwire side-gain`.
pub fn run(args: &SideGainArgs, g: GlobalArgs) -> Result<()> {
    let registry = gradwire::registry()?;
    let run = load_run(&args.dir)?;
    let mut totals = vec![[Totals::default(); 3]; args.steps.len()];
    let mut m22 = vec![Totals::default(); args.m22_rates.len()];
    let rounds: Vec<u32> = run.keys().copied().collect();
    for pair in rounds.windows(2) {
        let (previous, round) = (pair[0], pair[1]);
        let mean = Arc::new(mean_side(&run[&previous], &format!("round {previous} mean"))?);
        let clients = &run[&round];
        let ids: Vec<u32> = clients.keys().copied().collect();
        if ids.len() < 2 {
            bail!("round {round} has {} client update; (b) needs another client of the same round", ids.len());
        }
        for (k, &client) in ids.iter().enumerate() {
            let x = &clients[&client];
            let other_id = ids[(k + 1) % ids.len()];
            let other = Arc::new(tensors_side(&clients[&other_id], &format!("round {round} client {other_id}")));
            for (step, t) in args.steps.iter().zip(&mut totals) {
                let wz = format!("wyner-ziv:step={step}");
                measure(&registry, x, &wz, Some(mean.clone()), *step, &mut t[0])?;
                measure(&registry, x, &wz, Some(other.clone()), *step, &mut t[1])?;
                measure(&registry, x, &wz, None, *step, &mut t[2])?;
            }
            for (rate, t) in args.m22_rates.iter().zip(&mut m22) {
                let stream_len = |s: &str| -> Result<u64> {
                    let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
                    let pipeline = registry.parse_pipeline(s)?;
                    for t in x {
                        w.write_tensor(t.spec(&pipeline, false), &t.values)?;
                    }
                    Ok(w.finish()?.len() as u64)
                };
                let chunk = gradwire::stream::DEFAULT_CHUNK_ELEMENTS;
                let spec = resolve_rate(&format!("m22:rate={rate}"), &registry, x, chunk, &stream_len)?;
                measure(&registry, x, &spec, None, 1.0, t)?;
            }
            if !g.quiet {
                eprintln!("round {round} client {client}: done");
            }
        }
    }
    let m22_curve: Vec<(f64, f64)> = m22.iter().map(|t| (t.bpe(), t.relative_mse())).collect();
    let rows: Vec<serde_json::Value> = args
        .steps
        .iter()
        .zip(&totals)
        .map(|(step, t)| {
            let target = t[2].relative_mse();
            serde_json::json!({
                "step": step,
                "relative_mse": target,
                "relative_mse_with_side": [t[0].relative_mse(), t[1].relative_mse()],
                "largest_error_in_steps": t.iter().map(|s| s.worst_in_steps).fold(0f64, f64::max),
                "bpe_previous_mean": t[0].bpe(),
                "bpe_other_client": t[1].bpe(),
                "bpe_no_side": t[2].bpe(),
                "bpe_m22": interpolate(&m22_curve, target),
            })
        })
        .collect();
    if args.json {
        let m22: Vec<serde_json::Value> = args
            .m22_rates
            .iter()
            .zip(&m22_curve)
            .map(|(rate, (bpe, mse))| serde_json::json!({ "rate": rate, "bpe": bpe, "relative_mse": mse }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "steps": rows, "m22": m22 }))?);
        return Ok(());
    }
    let updates: usize = rounds.iter().skip(1).map(|r| run[r].len()).sum();
    print_markdown(&rows, updates, &rounds, &args.m22_rates, &m22_curve);
    Ok(())
}

/// The Markdown table and notes of `gradwire side-gain`.
fn print_markdown(
    rows: &[serde_json::Value],
    updates: usize,
    rounds: &[u32],
    m22_rates: &[f64],
    m22_curve: &[(f64, f64)],
) {
    println!(
        "{updates} client updates (rounds {}..={}), bits per entry at equal relative MSE, everything counted:\n",
        rounds[1],
        rounds[rounds.len() - 1]
    );
    println!(
        "| step | relative MSE | {} | {} | {} | {} at that MSE | (a) vs (c) | (b) vs (c) |",
        SETTINGS[0], SETTINGS[1], SETTINGS[2], SETTINGS[3]
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let m22 = r["bpe_m22"].as_f64().map_or_else(|| "beyond its sweep".to_owned(), |b| format!("{b:.3}"));
        println!(
            "| {} | {:.3e} | {:.3} | {:.3} | {:.3} | {m22} | {:+.3} | {:+.3} |",
            r["step"].as_f64().map_or(f32::NAN, |s| s as f32),
            f("relative_mse"),
            f("bpe_previous_mean"),
            f("bpe_other_client"),
            f("bpe_no_side"),
            f("bpe_previous_mean") - f("bpe_no_side"),
            f("bpe_other_client") - f("bpe_no_side"),
        );
    }
    let worst = rows.iter().map(|r| r["largest_error_in_steps"].as_f64().unwrap_or(0.0)).fold(0f64, f64::max);
    println!("\nLargest decoded error of (a), (b), (c): {worst:.4} steps (nearest rounding: at most 0.5).");
    let curve: Vec<String> = m22_rates
        .iter()
        .zip(m22_curve)
        .map(|(rate, (bpe, mse))| format!("rate={rate}: {bpe:.3} bpe, {mse:.3e}"))
        .collect();
    println!("(d) m22:rate sweep (bits per entry, relative MSE): {}.", curve.join("; "));
}
