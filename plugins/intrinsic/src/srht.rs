//! `family=srht`: per power-of-two block, random signs, the Walsh-Hadamard transform scaled to be
//! orthonormal, and `dim` rows drawn without replacement (`spec/CODECS.md` §7.3). O(n log n) time,
//! O(n) memory; the matrix is never stored.

use std::cell::RefCell;

use gradwire_codec::rng::SeededRng;

use crate::hadamard::{Block, blocks, fwht};
use crate::params::Scaling;
use crate::project::{apply_signs, draw_signs, factor, unit};

/// Buffers reused across chunks on one thread: the transform, the permutation and the signs.
#[derive(Default)]
struct Scratch {
    values: Vec<f32>,
    rows: Vec<u32>,
    words: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Draws a block's signs and its `dim` rows: the first `dim` entries of a Fisher-Yates shuffle of
/// `0..padded` (step `j` swaps entry `j` with entry `j + next_below(padded - j)`).
fn draw(rng: &mut SeededRng, b: &Block, s: &mut Scratch) {
    draw_signs(rng, b.padded, &mut s.words);
    rng.partial_shuffle(b.padded as u32, b.dim, &mut s.rows);
}

/// The first block's signs (as `ceil(padded/64)` words) and rows of a chunk of `n` values with
/// `d` coefficients: what the spec's test vectors list.
#[must_use]
#[cfg(test)]
pub(crate) fn first_block_draws(rng: &mut SeededRng, n: usize, d: usize) -> (Vec<u64>, Vec<u32>) {
    let mut s = Scratch::default();
    let Some(b) = blocks(n, d).into_iter().next() else { return (Vec::new(), Vec::new()) };
    draw(rng, &b, &mut s);
    s.rows.truncate(b.dim);
    (s.words, s.rows)
}

/// Appends the `d` coefficients of `x`.
pub fn encode(x: &[f32], d: usize, rng: &mut SeededRng, out: &mut Vec<f32>) {
    SCRATCH.with_borrow_mut(|s| {
        for b in blocks(x.len(), d) {
            draw(rng, &b, s);
            s.values.clear();
            s.values.extend_from_slice(&x[b.start..b.start + b.len]);
            s.values.resize(b.padded, 0.0);
            apply_signs(&mut s.values, &s.words);
            fwht(&mut s.values);
            let scale = unit(b.padded);
            out.extend(s.rows[..b.dim].iter().map(|&r| s.values[r as usize] * scale));
        }
    });
}

/// Writes `gamma A c` into `out`.
pub fn decode(c: &[f32], scaling: Scaling, rng: &mut SeededRng, out: &mut [f32]) {
    SCRATCH.with_borrow_mut(|s| {
        let mut coefficients = c;
        for b in blocks(out.len(), c.len()) {
            draw(rng, &b, s);
            let (mine, rest) = coefficients.split_at(b.dim);
            coefficients = rest;
            if b.dim == 0 {
                // No coefficient: zeros (the unbiased factor padded/0 would turn them into NaN).
                out[b.start..b.start + b.len].fill(0.0);
                continue;
            }
            s.values.clear();
            s.values.resize(b.padded, 0.0);
            for (&r, &v) in s.rows[..b.dim].iter().zip(mine) {
                s.values[r as usize] = v;
            }
            fwht(&mut s.values);
            apply_signs(&mut s.values[..b.len], &s.words);
            let f = factor(scaling, b.padded, b.dim, b.padded);
            for (o, v) in out[b.start..b.start + b.len].iter_mut().zip(&s.values) {
                *o = v * f;
            }
        }
    });
}
