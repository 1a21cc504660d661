//! Softmax regression and a one-hidden-layer ReLU MLP over the digits, with hand-written
//! backward passes. Parameters live in one flat `Vec<f32>`; [`Model::tensors`] names its pieces
//! (`fc1.weight`, ...) so that each goes on the wire as its own gradwire tensor.

use gradwire::rng::SeededRng;

use crate::dataset::{CLASSES, Dataset, FEATURES};

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `logits = x W + b`: 650 parameters.
    Softmax,
    /// `logits = relu(x W1 + b1) W2 + b2` with `hidden` units.
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
}

/// One named tensor of the flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSlot {
    /// Name on the wire.
    pub name: &'static str,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Offset in the flat vector.
    pub offset: usize,
}

impl TensorSlot {
    /// Number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This tensor's values in `flat`.
    #[must_use]
    pub fn of<'a>(&self, flat: &'a [f32]) -> &'a [f32] {
        &flat[self.offset..self.offset + self.len()]
    }
}

/// A network: its architecture and the layout of its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    architecture: Architecture,
    tensors: Vec<TensorSlot>,
}

impl Model {
    /// The model of `architecture` (an MLP of 0 hidden units gets 1).
    #[must_use]
    pub fn new(architecture: Architecture) -> Model {
        let shapes: Vec<(&'static str, Vec<usize>)> = match architecture {
            Architecture::Softmax => vec![("weight", vec![FEATURES, CLASSES]), ("bias", vec![CLASSES])],
            Architecture::Mlp { hidden } => vec![
                ("fc1.weight", vec![FEATURES, hidden.max(1)]),
                ("fc1.bias", vec![hidden.max(1)]),
                ("fc2.weight", vec![hidden.max(1), CLASSES]),
                ("fc2.bias", vec![CLASSES]),
            ],
        };
        let mut offset = 0;
        let tensors = shapes
            .into_iter()
            .map(|(name, shape)| {
                let slot = TensorSlot { name, shape, offset };
                offset += slot.len();
                slot
            })
            .collect();
        Model { architecture, tensors }
    }

    /// The named tensors, in order.
    #[must_use]
    pub fn tensors(&self) -> &[TensorSlot] {
        &self.tensors
    }

    /// Total number of parameters.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        self.tensors.iter().map(TensorSlot::len).sum()
    }

    fn hidden(&self) -> usize {
        match self.architecture {
            Architecture::Softmax => 0,
            Architecture::Mlp { hidden } => hidden.max(1),
        }
    }

    /// Seeded Glorot-uniform weights (`±sqrt(6 / (fan_in + fan_out))`, from the specified
    /// generator), zero biases.
    #[must_use]
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = SeededRng::new(seed);
        let mut params = vec![0f32; self.parameter_count()];
        for t in self.tensors.iter().filter(|t| t.shape.len() == 2) {
            let limit = (6.0 / (t.shape[0] + t.shape[1]) as f64).sqrt() as f32;
            for p in &mut params[t.offset..t.offset + t.len()] {
                *p = (2.0 * rng.next_unit_f32() - 1.0) * limit;
            }
        }
        params
    }

    /// Logits of one example into `logits` (`CLASSES` values); `hidden` receives the
    /// post-ReLU activations of an MLP.
    fn forward(&self, params: &[f32], x: &[f32], hidden: &mut [f32], logits: &mut [f32]) {
        let t = &self.tensors;
        match self.architecture {
            Architecture::Softmax => affine(x, t[0].of(params), t[1].of(params), logits),
            Architecture::Mlp { .. } => {
                affine(x, t[0].of(params), t[1].of(params), hidden);
                for h in hidden.iter_mut() {
                    *h = h.max(0.0);
                }
                affine(hidden, t[2].of(params), t[3].of(params), logits);
            }
        }
    }

    /// Mean cross-entropy over the examples `batch` of `data`; adds its gradient to `grad`
    /// (the caller zeroes it).
    ///
    /// # Panics
    /// If `params` or `grad` do not have [`Model::parameter_count`] values, or an index of
    /// `batch` is not below `data.len()`.
    #[must_use]
    pub fn loss_and_gradient(&self, params: &[f32], data: &Dataset, batch: &[usize], grad: &mut [f32]) -> f64 {
        assert_eq!(params.len(), self.parameter_count(), "parameter vector");
        assert_eq!(grad.len(), self.parameter_count(), "gradient vector");
        let scale = 1.0 / batch.len().max(1) as f32;
        let (mut hidden, mut dhidden) = (vec![0f32; self.hidden()], vec![0f32; self.hidden()]);
        let mut logits = [0f32; CLASSES];
        let mut loss = 0f64;
        let t = self.tensors.clone();
        for &i in batch {
            let x = data.example(i);
            let label = usize::from(data.labels[i]);
            self.forward(params, x, &mut hidden, &mut logits);
            loss += softmax_in_place(&mut logits, label);
            // logits now holds d(loss)/d(logits) for this example: p - onehot.
            for d in &mut logits {
                *d *= scale;
            }
            match self.architecture {
                Architecture::Softmax => affine_backward(x, &logits, grad, &t[0], &t[1], None),
                Architecture::Mlp { .. } => {
                    affine_backward(&hidden, &logits, grad, &t[2], &t[3], Some((t[2].of(params), &mut dhidden)));
                    for (d, h) in dhidden.iter_mut().zip(&hidden) {
                        if *h <= 0.0 {
                            *d = 0.0;
                        }
                    }
                    affine_backward(x, &dhidden, grad, &t[0], &t[1], None);
                }
            }
        }
        loss / batch.len().max(1) as f64
    }

    /// Fraction of `data` classified correctly (ties go to the lowest class).
    #[must_use]
    pub fn accuracy(&self, params: &[f32], data: &Dataset) -> f64 {
        let mut hidden = vec![0f32; self.hidden()];
        let mut logits = [0f32; CLASSES];
        let correct = (0..data.len())
            .filter(|&i| {
                self.forward(params, data.example(i), &mut hidden, &mut logits);
                let best = (0..CLASSES).fold(0, |b, c| if logits[c] > logits[b] { c } else { b });
                best == usize::from(data.labels[i])
            })
            .count();
        correct as f64 / data.len().max(1) as f64
    }
}

/// `out = x W + b` with `W` row-major `x.len() x out.len()`.
fn affine(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    out.copy_from_slice(b);
    for (xi, row) in x.iter().zip(w.chunks_exact(out.len())) {
        if *xi != 0.0 {
            out.iter_mut().zip(row).for_each(|(o, wij)| *o += xi * wij);
        }
    }
}

/// Backward of [`affine`] for one example: adds `x^T dout` to the weight's gradient and `dout` to
/// the bias's; with `Some((W, dx))`, also sets `dx = dout W^T`.
fn affine_backward(
    x: &[f32],
    dout: &[f32],
    grad: &mut [f32],
    weight: &TensorSlot,
    bias: &TensorSlot,
    input_gradient: Option<(&[f32], &mut [f32])>,
) {
    let gw = &mut grad[weight.offset..weight.offset + weight.len()];
    for (xi, row) in x.iter().zip(gw.chunks_exact_mut(dout.len())) {
        if *xi != 0.0 {
            row.iter_mut().zip(dout).for_each(|(g, d)| *g += xi * d);
        }
    }
    grad[bias.offset..bias.offset + bias.len()].iter_mut().zip(dout).for_each(|(g, d)| *g += d);
    if let Some((w, dx)) = input_gradient {
        for (d, row) in dx.iter_mut().zip(w.chunks_exact(dout.len())) {
            *d = row.iter().zip(dout).map(|(a, b)| a * b).sum();
        }
    }
}

/// Turns logits into `softmax - onehot(label)` and returns the cross-entropy `-log p[label]`.
fn softmax_in_place(logits: &mut [f32], label: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let shifted_label = f64::from(logits[label] - max);
    let mut sum = 0f64;
    for l in logits.iter_mut() {
        *l = (*l - max).exp();
        sum += f64::from(*l);
    }
    // log-sum-exp minus the label's shifted logit: finite however far the label lags.
    let loss = sum.ln() - shifted_label;
    for l in logits.iter_mut() {
        *l = (f64::from(*l) / sum) as f32;
    }
    logits[label] -= 1.0;
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite differences in f64-accumulated loss against the analytic gradient, for
    /// every parameter of a small MLP and of softmax regression.
    #[test]
    fn gradients_match_finite_differences() {
        let data = Dataset::digits().subset(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let batch: Vec<usize> = (0..data.len()).collect();
        for architecture in [Architecture::Softmax, Architecture::Mlp { hidden: 5 }] {
            let model = Model::new(architecture);
            let mut params = model.init(11);
            // Nonzero biases so that every ReLU branch is exercised.
            for t in model.tensors().iter().filter(|t| t.shape.len() == 1) {
                for (j, p) in params[t.offset..t.offset + t.len()].iter_mut().enumerate() {
                    *p = 0.1 * (j as f32 - 2.0);
                }
            }
            let mut grad = vec![0f32; params.len()];
            let _ = model.loss_and_gradient(&params, &data, &batch, &mut grad);
            let h = 1e-2f32;
            let mut worst = 0f64;
            for k in 0..params.len() {
                let keep = params[k];
                params[k] = keep + h;
                let up = model.loss_and_gradient(&params, &data, &batch, &mut vec![0f32; params.len()]);
                params[k] = keep - h;
                let down = model.loss_and_gradient(&params, &data, &batch, &mut vec![0f32; params.len()]);
                params[k] = keep;
                let numeric = (up - down) / (2.0 * f64::from(h));
                let err = (numeric - f64::from(grad[k])).abs() / (1e-3 + numeric.abs().max(f64::from(grad[k]).abs()));
                worst = worst.max(err);
            }
            assert!(worst < 2e-2, "{architecture:?}: worst relative gradient error {worst}");
        }
    }

    #[test]
    fn layouts_name_every_parameter_once() {
        let m = Model::new(Architecture::Mlp { hidden: 32 });
        assert_eq!(m.parameter_count(), 64 * 32 + 32 + 32 * 10 + 10);
        let names: Vec<_> = m.tensors().iter().map(|t| t.name).collect();
        assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
        assert_eq!(Model::new(Architecture::Softmax).parameter_count(), 650);
        assert_eq!(m.init(1), m.init(1));
        assert_ne!(m.init(1), m.init(2));
    }
}
