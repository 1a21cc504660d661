//! Every registered lossy codec, with every example parameter set its descriptor lists, on
//! i.i.d. Gaussian values: the error it reaches at its own bits per entry (the whole stream
//! counted, headers and side information included) is never below the Gaussian
//! distortion-rate bound `2^(-2R)`, which no code can beat on this source. A codec that forgot
//! to count some of its bits, or a decoder that looked at the input, would land below it.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

use gradwire::testing::gaussian;
use gradwire::{Reader, StageKind, StreamHeader, TensorSpec, Writer, WriterOptions};

#[test]
fn no_lossy_codec_beats_the_gaussian_distortion_rate_bound() {
    let registry = gradwire::registry().unwrap();
    let n = 1 << 16;
    let x = gaussian(n, 5);
    let energy: f64 = x.iter().map(|v| f64::from(*v).powi(2)).sum();
    let mut checked = 0;
    for d in registry.descriptors().filter(|d| !d.lossless) {
        for example in std::iter::once("").chain(d.examples.iter().copied()) {
            let stage = if example.is_empty() { d.name.to_owned() } else { format!("{}:{example}", d.name) };
            // Array->array stages need a stage that makes bytes after them.
            let spec = if d.kind == StageKind::ArrayToArray { format!("{stage}+raw") } else { stage };
            let pipeline = registry.parse_pipeline(&spec).unwrap();
            let options = WriterOptions::default().chunk_elements(n as u64);
            let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), options).unwrap();
            w.write_tensor(TensorSpec::new("g", &[n as u64], pipeline), &x).unwrap();
            let bytes = w.finish().unwrap();
            let y = Reader::new(&bytes[..], &registry).read_all().unwrap().tensors.remove(0).values;
            let error: f64 = x.iter().zip(&y).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
            let bpe = bytes.len() as f64 * 8.0 / n as f64;
            let (relative, bound) = (error / energy, (-2.0 * bpe).exp2());
            assert!(relative >= bound, "{spec}: relative MSE {relative:e} at {bpe:.3} bits per entry, below {bound:e}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} lossy pipelines checked");
}
