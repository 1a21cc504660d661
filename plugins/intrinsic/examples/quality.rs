//! The quality table of the crate README: on a folder of `.safetensors` gradients, the relative
//! error of each projection family against `d/D`, next to random-k at the same bits per entry.
//!
//! Every tensor of every file is projected onto `d = max(1, round(ratio * n))` coefficients
//! (per tensor, so `d/D` is the same for every layer; chunks are whole tensors here) and written
//! through the container (`intrinsic:...+raw`); bits per entry count the whole stream. Random-k
//! (the `randk` codec, `randk:...+raw`) keeps `k = d` entries per tensor at positions drawn from
//! a shared seed (none on the wire), so it costs the same 32 bits per kept value, and its bits
//! count its whole stream too. Errors use the projection scaling, and for random-k the kept
//! entries unscaled (its analogue).
//!
//! Run: `cargo run --release -p gradwire-intrinsic --example quality -- ../shared/data/digits-mlp`
//! (files whose names start with `global` are skipped: they are models, not updates).

use std::collections::BTreeMap;

use gradwire_codec::{Reader, Registry, StreamHeader, TensorSpec, Writer, WriterOptions};

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

impl Sums {
    fn plus(&self, other: &Sums) -> Sums {
        Sums {
            bits: self.bits + other.bits,
            error: self.error + other.error,
            energy: self.energy + other.energy,
            values: self.values + other.values,
        }
    }
}

/// Writes every tensor through the pipeline `spec(n)` into one stream, decodes it and sums bits
/// and errors; `None` when a pipeline refuses a tensor.
fn measure(registry: &Registry, tensors: &[(String, Vec<f32>)], spec: impl Fn(usize) -> String) -> Option<Sums> {
    let options = WriterOptions::default().chunk_elements(1 << 24);
    let mut w = Writer::new(Vec::new(), registry, &StreamHeader::default(), options).expect("writer");
    for (name, values) in tensors {
        let pipeline = registry.parse_pipeline(&spec(values.len())).expect("pipeline");
        w.write_tensor(TensorSpec::new(name.clone(), &[values.len() as u64], pipeline), values).ok()?;
    }
    let bytes = w.finish().expect("finish");
    let mut sums = Sums { bits: bytes.len() as f64 * 8.0, ..Sums::default() };
    let decoded = Reader::new(&bytes[..], registry).read_all().expect("decode");
    for ((_, x), t) in tensors.iter().zip(&decoded.tensors) {
        add(&mut sums, x, &t.values);
    }
    Some(sums)
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
    let mut registry = gradwire_intrinsic::registry_with_intrinsic();
    registry.register_static(&gradwire_sparsify::RANDK_CODEC).expect("randk");
    let ratios = [1.0 / 64.0, 1.0 / 16.0, 1.0 / 4.0, 1.0 / 2.0];
    let families = ["srht", "rademacher", "sparse,nonzeros=4"];
    let mut table: BTreeMap<(usize, &str), Option<Sums>> = BTreeMap::new();
    let mut dense_values = 0usize;
    for (f, path) in files.iter().enumerate() {
        let tensors = read(path);
        dense_values += tensors.iter().map(|t| t.1.len()).sum::<usize>();
        for (i, &ratio) in ratios.iter().enumerate() {
            // d = round(ratio * n) per tensor, for every family and for random-k (the `randk`
            // codec with the fraction whose kept count is exactly d, CODECS.md §8).
            let spec = |kind: &str, n: usize| {
                let d = ((ratio * n as f64).round() as usize).max(1);
                if kind == "random-k" {
                    format!("randk:fraction={},seed={f}+raw", d as f64 / n as f64)
                } else {
                    format!("intrinsic:dim={d},family={kind},seed={f}+raw")
                }
            };
            for kind in families.iter().copied().chain(["random-k"]) {
                let entry = table.entry((i, kind)).or_insert(Some(Sums::default()));
                if let Some(sums) = entry {
                    // Refused: rademacher above 2^26 entries.
                    *entry = measure(&registry, &tensors, |n| spec(kind, n)).map(|m| sums.plus(&m));
                }
            }
        }
    }
    println!(
        "{} update files, {dense_values} values; relative error ||g - g_hat||^2 / ||g||^2 summed over all files\n",
        files.len()
    );
    println!(
        "| d/D | 1 - d/D | bits/entry (srht stream) | srht | rademacher | sparse (s=4) | randk (bits/entry of its stream) |"
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
