//! `family=rademacher`: a dense matrix of +-1 entries, column by column from the generator
//! (`spec/CODECS.md` §7.4). O(n d) time: for small chunks only (`MAX_DENSE_ENTRIES`).

use gradwire_codec::rng::SeededRng;

use crate::params::Scaling;
use crate::project::{draw_signs, factor, flip, unit};

/// Appends the `d` coefficients of `x`: `sum_i sign(i, j) x_i / sqrt(n)` for each column `j`.
pub fn encode(x: &[f32], d: usize, rng: &mut SeededRng, out: &mut Vec<f32>) {
    let scale = unit(x.len());
    let mut words = Vec::new();
    for _ in 0..d {
        draw_signs(rng, x.len(), &mut words);
        let mut lanes = [0f32; 8];
        for (group, &w) in x.chunks(64).zip(&words) {
            for (k, v) in group.iter().enumerate() {
                lanes[k % 8] += flip(*v, (w >> k) & 1);
            }
        }
        out.push(lanes.iter().sum::<f32>() * scale);
    }
}

/// Writes `gamma A c` into `out`: column after column, `acc_i += sign(i, j) c_j` in f32, then
/// each sum times the factor.
pub fn decode(c: &[f32], scaling: Scaling, rng: &mut SeededRng, out: &mut [f32]) {
    let n = out.len();
    out.fill(0.0);
    let mut words = Vec::new();
    for &cj in c {
        draw_signs(rng, n, &mut words);
        for (group, &w) in out.chunks_mut(64).zip(&words) {
            for (k, o) in group.iter_mut().enumerate() {
                *o += flip(cj, (w >> k) & 1);
            }
        }
    }
    let f = factor(scaling, n, c.len(), n);
    for o in out {
        *o *= f;
    }
}
