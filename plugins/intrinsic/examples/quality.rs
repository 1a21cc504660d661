//! The quality table of the crate README: on a folder of `.safetensors` gradients, the relative
//! error of each projection family against `d/D`, next to random-k at the same bits per entry.
//!
//! Every tensor of every file is projected onto `d = max(1, round(ratio * n))` coefficients
//! (per tensor, so `d/D` is the same for every layer; chunks are whole tensors here) and written
//! through the container (`intrinsic:...+raw`); bits per entry count the whole stream. Random-k
//! keeps `k = d` entries per tensor at positions drawn from a shared seed (none on the wire), so
//! it costs the same 32 bits per kept value; it is computed here, not by a codec. Errors use the
//! projection scaling, and for random-k the kept entries unscaled (its analogue).
//!
//! Run: `cargo run --release -p gradwire-intrinsic --example quality -- ../shared/data/digits-mlp`
//! (files whose names start with `global` are skipped: they are models, not updates).

use std::collections::BTreeMap;

use gradwire_codec::rng::SeededRng;
use gradwire_codec::{Reader, StreamHeader, TensorSpec, Writer, WriterOptions};

fn read(path: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// (bits, squared error, energy) summed.
#[derive(Default, Clone, Copy)]
struct Sums {
    bits: f64,
    error: f64,
    energy: f64,
    values: f64,
}

fn add(sums: &mut Sums, x: &[f32], y: &[f32]) {
    for (a, b) in x.iter().zip(y) {
        sums.error += (f64::from(*a) - f64::from(*b)).powi(2);
        sums.energy += f64::from(*a).powi(2);
    }
    sums.values += x.len() as f64;
}

fn random_k(x: &[f32], k: usize, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    let mut rows: Vec<usize> = (0..x.len()).collect();
    for j in 0..k {
        let r = j + rng.next_below((x.len() - j) as u64) as usize;
        rows.swap(j, r);
    }
    let mut y = vec![0f32; x.len()];
    for &r in &rows[..k] {
        y[r] = x[r];
    }
    y
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: quality DIR");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "safetensors")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("global"))
        })
        .collect();
    files.sort();
    let registry = gradwire_intrinsic::registry_with_intrinsic();
    let ratios = [1.0 / 64.0, 1.0 / 16.0, 1.0 / 4.0, 1.0 / 2.0];
    let families = ["srht", "rademacher", "sparse,nonzeros=4"];
    let mut table: BTreeMap<(usize, &str), Option<Sums>> = BTreeMap::new();
    let mut dense_values = 0usize;
    for (f, path) in files.iter().enumerate() {
        let tensors = read(path);
        dense_values += tensors.iter().map(|t| t.1.len()).sum::<usize>();
        for (i, &ratio) in ratios.iter().enumerate() {
            for family in families {
                let entry = table.entry((i, family)).or_insert(Some(Sums::default()));
                let Some(sums) = entry else { continue };
                let mut w = Writer::new(
                    Vec::new(),
                    &registry,
                    &StreamHeader::default(),
                    WriterOptions::default().chunk_elements(1 << 24),
                )
                .expect("writer");
                let mut refused = false;
                for (name, values) in &tensors {
                    let d = ((ratio * values.len() as f64).round() as usize).max(1);
                    let spec = format!("intrinsic:dim={d},family={family},seed={f}+raw");
                    let pipeline = registry.parse_pipeline(&spec).expect("pipeline");
                    if w.write_tensor(TensorSpec::new(name.clone(), &[values.len() as u64], pipeline), values).is_err()
                    {
                        refused = true; // rademacher above 2^26 entries
                        break;
                    }
                }
                if refused {
                    *entry = None;
                    continue;
                }
                let bytes = w.finish().expect("finish");
                sums.bits += bytes.len() as f64 * 8.0;
                let decoded = Reader::new(&bytes[..], &registry).read_all().expect("decode");
                for ((_, x), t) in tensors.iter().zip(&decoded.tensors) {
                    add(sums, x, &t.values);
                }
            }
            let sums = table.entry((i, "random-k")).or_insert(Some(Sums::default())).as_mut().expect("always");
            for (t, (_, x)) in tensors.iter().enumerate() {
                let k = ((ratio * x.len() as f64).round() as usize).max(1);
                sums.bits += 32.0 * k as f64;
                add(sums, x, &random_k(x, k, (f * 100 + t) as u64));
            }
        }
    }
    println!(
        "{} update files, {dense_values} values; relative error ||g - g_hat||^2 / ||g||^2 summed over all files\n",
        files.len()
    );
    println!(
        "| d/D | 1 - d/D | bits/entry (srht stream) | srht | rademacher | sparse (s=4) | random-k (32 bits per kept value) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, ratio) in ratios.iter().enumerate() {
        let cell = |family: &str| {
            table[&(i, family)].map_or("refused (n d > 2^26)".to_owned(), |s| format!("{:.3}", s.error / s.energy))
        };
        let srht = table[&(i, "srht")].expect("srht");
        let k = table[&(i, "random-k")].expect("random-k");
        println!(
            "| 1/{:.0} | {:.3} | {:.3} | {} | {} | {} | {} ({:.3} bits/entry) |",
            1.0 / ratio,
            1.0 - ratio,
            srht.bits / srht.values,
            cell("srht"),
            cell("rademacher"),
            cell("sparse,nonzeros=4"),
            cell("random-k"),
            k.bits / k.values
        );
    }
}
