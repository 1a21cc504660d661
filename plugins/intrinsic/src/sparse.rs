//! `family=sparse`: each column holds `s` entries +-1 at rows drawn with replacement, a count
//! sketch (`spec/CODECS.md` §7.5). O(d s) time besides one pass over the chunk.

use gradwire_codec::rng::SeededRng;

use crate::params::Scaling;
use crate::project::{factor, flip, unit};

/// Appends the `d` coefficients of `x`: per column, one draw of signs then `s` rows.
pub fn encode(x: &[f32], d: usize, s: usize, rng: &mut SeededRng, out: &mut Vec<f32>) {
    let n = x.len() as u64;
    let scale = unit(s);
    for _ in 0..d {
        let signs = rng.next_u64();
        let mut sum = 0f32;
        for k in 0..s {
            let row = rng.next_below(n) as usize;
            sum += flip(x[row], (signs >> k) & 1);
        }
        out.push(sum * scale);
    }
}

/// Writes `gamma A c` into `out`: `acc[row] += sign c_j` in column-then-entry order, then each
/// sum times the factor.
pub fn decode(c: &[f32], s: usize, scaling: Scaling, rng: &mut SeededRng, out: &mut [f32]) {
    let n = out.len();
    out.fill(0.0);
    for &cj in c {
        let signs = rng.next_u64();
        for k in 0..s {
            let row = rng.next_below(n as u64) as usize;
            out[row] += flip(cj, (signs >> k) & 1);
        }
    }
    let f = factor(scaling, n, c.len(), s);
    for o in out {
        *o *= f;
    }
}
