//! Unit tests of the projections: adjoint identity, unbiasedness, norms, odd lengths, seeds, and
//! the draws listed in the spec (integration tests with the container live in `tests/`).

use gradwire_codec::rng::{SeededRng, chunk_seed};
use gradwire_codec::{ChunkContext, TextParams};

use crate::params::IntrinsicParams;
use crate::project;

fn params(text: &str) -> IntrinsicParams {
    IntrinsicParams::from_text(&gradwire_codec::testing::text_params(text)).expect("valid parameters")
}

/// Laplace-like values with a few large ones, from the specified generator.
fn gradient(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|i| {
            let u = f64::from(rng.next_unit_f32()).max(1e-9);
            let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
            let big = if i % 97 == 0 { 20.0 } else { 1.0 };
            (sign * -u.ln() * big) as f32
        })
        .collect()
}

fn encode(p: &IntrinsicParams, seed: u64, x: &[f32]) -> Vec<f32> {
    let mut out = Vec::new();
    project::encode(p, &mut SeededRng::new(seed), x, &mut out);
    out
}

fn decode(p: &IntrinsicParams, seed: u64, c: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    project::decode(p, &mut SeededRng::new(seed), c, &mut out);
    out
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

fn relative_error(x: &[f32], y: &[f32]) -> f64 {
    let err: f64 = x.iter().zip(y).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
    err / dot(x, x)
}

const FAMILIES: [&str; 3] = ["family=srht", "family=rademacher", "family=sparse,nonzeros=3"];

#[test]
fn adjoint_identity_holds_for_every_family() {
    // <A c, g> = <c, A^T g>: decode (projection scaling) is A, encode is A^T.
    for family in FAMILIES {
        for (n, d) in [(1000usize, 100usize), (64, 64), (333, 7)] {
            let p = params(&format!("{family},dim={d}"));
            let g = gradient(n, 1);
            let c = gradient(d, 2);
            let ac = decode(&p, 9, &c, n);
            let atg = encode(&p, 9, &g);
            let (lhs, rhs) = (dot(&ac, &g), dot(&c, &atg));
            assert!((lhs - rhs).abs() <= 1e-4 * (dot(&ac, &ac) * dot(&g, &g)).sqrt(), "{family} n={n}: {lhs} vs {rhs}");
        }
    }
}

#[test]
fn unbiased_scaling_is_unbiased_over_seeds() {
    // The mean over seeds of gamma A A^T g approaches g; its error shrinks like 1/seeds.
    for family in FAMILIES {
        let n = 200; // blocks 128, 64 and a tail of 8
        let p = params(&format!("{family},dim=50,scaling=unbiased"));
        let g = gradient(n, 3);
        let seeds = 3000;
        let mut mean = vec![0f64; n];
        for seed in 0..seeds {
            for (m, v) in mean.iter_mut().zip(decode(&p, seed, &encode(&p, seed, &g), n)) {
                *m += f64::from(v) / seeds as f64;
            }
        }
        let mean: Vec<f32> = mean.iter().map(|v| *v as f32).collect();
        let one = relative_error(&g, &decode(&p, 0, &encode(&p, 0, &g), n));
        let averaged = relative_error(&g, &mean);
        // One draw errs by about n/d - 1 = 3; the mean of 3000 by about 3/3000.
        assert!(one > 1.0, "{family}: one draw {one}");
        assert!(averaged < 0.01, "{family}: mean over {seeds} seeds errs by {averaged}");
    }
}

#[test]
fn projection_error_is_close_to_one_minus_d_over_n() {
    for family in FAMILIES {
        for (n, d) in [(4096usize, 1024usize), (1000, 250), (100_003, 10_000)] {
            if family.contains("rademacher") && n * d > 1 << 24 {
                continue;
            }
            let p = params(&format!("{family},dim={d}"));
            // Without the heavy entries, which make one draw of a random family vary a lot.
            let g: Vec<f32> = gradient(n, 4).iter().map(|v| v.clamp(-8.0, 8.0)).collect();
            // The mean over 8 seeds: g has heavy entries, so one draw of a random family varies.
            let e =
                (0..8).map(|seed| relative_error(&g, &decode(&p, seed, &encode(&p, seed, &g), n))).sum::<f64>() / 8.0;
            let r = d as f64 / n as f64;
            // SRHT columns are orthonormal: A A^T is a projection. Random +-1 columns are only
            // nearly orthogonal: E[(A A^T)^2] = (r + r^2) I to first order (for sparse columns
            // too), so the error is 1 - r + r^2 rather than 1 - r.
            let expect = if family == "family=srht" { 1.0 - r } else { 1.0 - r + r * r };
            let tolerance = if family == "family=srht" { 0.01 } else { 0.04 };
            assert!((e - expect).abs() < tolerance, "{family} n={n} d={d}: {e} vs {expect}");
        }
    }
}

#[test]
fn srht_is_orthonormal_and_preserves_norms() {
    let g = gradient(4096, 6);
    // d = n: A is orthogonal, so decoding restores g up to rounding.
    let p = params("dim=4096");
    let c = encode(&p, 1, &g);
    assert!((dot(&c, &c) / dot(&g, &g) - 1.0).abs() < 1e-5);
    assert!(relative_error(&g, &decode(&p, 1, &c, 4096)) < 1e-10);
    // d = n/4: the coefficients keep about a quarter of the energy, for every seed.
    let p = params("dim=1024");
    for seed in 0..20 {
        let c = encode(&p, seed, &g);
        let ratio = dot(&c, &c) / dot(&g, &g);
        assert!((ratio - 0.25).abs() < 0.03, "seed {seed}: {ratio}");
    }
}

#[test]
fn odd_lengths_and_tiny_chunks_round_trip_in_shape() {
    for family in FAMILIES {
        for n in [1usize, 2, 3, 63, 65, 127, 129, 1000] {
            let p = params(&format!("{family},dim=40"));
            let g = gradient(n, 7);
            let c = encode(&p, 8, &g);
            assert_eq!(c.len(), n.min(40));
            let y = decode(&p, 8, &c, n);
            assert!(y.iter().all(|v| v.is_finite()));
            if family == "family=srht" && n <= 40 && n.is_power_of_two() {
                // d = n = padded: the orthogonal transform keeps everything.
                assert!(relative_error(&g, &y) < 1e-10, "n={n}");
            }
        }
    }
}

#[test]
fn a_block_without_coefficients_decodes_to_zeros() {
    // n = 65, d = 1: the block of 64 gets no coefficient, the tail of 1 gets it (found by fuzzing:
    // the unbiased factor 64/0 made the block NaN).
    for scaling in ["projection", "unbiased"] {
        let p = params(&format!("dim=1,scaling={scaling}"));
        let g = gradient(65, 11);
        let y = decode(&p, 3, &encode(&p, 3, &g), 65);
        assert!(y[..64].iter().all(|v| v.to_bits() == 0), "{scaling}: {:?}", &y[..4]);
        assert_eq!(y[64].to_bits(), g[64].to_bits(), "{scaling}: the tail of one value is kept exactly");
    }
}

#[test]
fn same_seed_same_bits_and_schedules_change_the_subspace() {
    let g = gradient(3000, 9);
    let bits = |p: &IntrinsicParams, seed| encode(p, seed, &g).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for family in FAMILIES {
        let p = params(&format!("{family},dim=64"));
        assert_eq!(bits(&p, 1), bits(&p, 1));
        assert_ne!(bits(&p, 1), bits(&p, 2));
    }
    let fixed = params("seed=5");
    assert_eq!(fixed.projection_seed(), 5);
    let group = |r: u64| params(&format!("seed=5,schedule=group,groups=3,round={r}")).projection_seed();
    assert_eq!(group(1), group(4));
    assert_ne!(group(1), group(2));
    let round = |r: u64| params(&format!("seed=5,schedule=round,round={r}")).projection_seed();
    assert_ne!(round(1), round(4));
    assert_ne!(round(1), 5);
}

#[test]
fn params_round_trip_and_reject_what_does_not_apply() {
    for text in [
        "dim=256,family=srht,seed=0",
        "dim=3,family=sparse,nonzeros=64,scaling=unbiased,seed=18446744073709551615,schedule=group,groups=7,round=9",
        "dim=1,family=rademacher,seed=1,schedule=round,round=0",
    ] {
        let p = params(text);
        assert_eq!(p.to_text(), text);
        assert_eq!(IntrinsicParams::decode(&p.encode()).expect("decodes"), p);
    }
    for bad in ["dim=0", "nonzeros=2", "family=sparse,nonzeros=65", "groups=2", "round=3", "seed=-1", "family=dct"] {
        let pairs = bad
            .split(',')
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).expect("kv"))
            .collect();
        assert!(IntrinsicParams::from_text(&TextParams { pairs }).is_err(), "{bad}");
    }
    let good = params("dim=8").encode();
    for (i, v, what) in [
        (3usize, 1u8, "reserved"),
        (0, 3, "family"),
        (1, 2, "scaling"),
        (2, 3, "schedule"),
        (8, 1, "nonzeros"),
        (12, 1, "groups"),
        (24, 1, "round"),
    ] {
        let mut b = good;
        b[i] = v;
        assert!(IntrinsicParams::decode(&b).is_err(), "{what}");
    }
    assert!(IntrinsicParams::decode(&good[..31]).is_err());
}

#[test]
fn stage_refuses_wrong_lengths_and_huge_dense_matrices() {
    use gradwire_codec::{CodecFactory, Stage};
    let build = |text: &str| match crate::INTRINSIC_CODEC.build(1, &params(text).encode()).expect("builds") {
        Stage::ArrayToArray(s) => s,
        _ => unreachable!("intrinsic is array->array"),
    };
    let ctx = ChunkContext { tensor_name: "t", tensor_id: 0, chunk_index: 0, element_offset: 0, seed: 0, side: None };
    let s = build("dim=8");
    let mut out = vec![0f32; 100];
    assert!(s.decode(&[0.0; 7], &ctx, &mut out).is_err());
    assert!(s.decode(&[0.0; 8], &ctx, &mut out).is_ok());
    let dense = build("dim=4096,family=rademacher");
    assert!(dense.encoded_len(1 << 14).is_ok());
    assert!(dense.encoded_len((1 << 14) + 1).is_err());
}

/// The draws listed in `spec/CODECS.md` §7.7.
#[test]
fn spec_test_vectors() {
    let seed = chunk_seed(params("seed=42").projection_seed(), "fc1.weight", 0);
    assert_eq!(seed, 0x8073_6970_3104_26de);
    let (words, rows) = crate::srht::first_block_draws(&mut SeededRng::new(seed), 200, 100);
    assert_eq!(words, [0x46e8_1078_b42a_185f, 0x6966_5ffc_781b_b592]);
    assert_eq!(rows[..8], [109, 10, 0, 22, 72, 84, 55, 53]);
    assert_eq!(rows.len(), 64);
    assert_eq!(params("seed=42,schedule=round,round=3").projection_seed(), 0x43aa_8652_ad94_b3a2);
    assert_eq!(params("seed=42,schedule=group,groups=2,round=3").projection_seed(), 0x7eb3_b394_ac9e_fc29);
    // sparse: per column one draw of signs, then the rows: one coefficient 1.0 with s = 4 lands
    // at rows 82, 170, 15 and 170 with the signs of bits 0..4 of 0x...5f (all negative), times
    // 1/sqrt(4).
    let mut rng = SeededRng::new(seed);
    assert_eq!(rng.next_u64(), 0x46e8_1078_b42a_185f);
    assert_eq!((0..4).map(|_| rng.next_below(200)).collect::<Vec<_>>(), [82, 170, 15, 170]);
    let y = decode(&params("dim=1,family=sparse,nonzeros=4"), seed, &[1.0], 200);
    let nonzero: Vec<(usize, u32)> =
        y.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| (i, v.to_bits())).collect();
    assert_eq!(nonzero, [(15, (-0.5f32).to_bits()), (82, (-0.5f32).to_bits()), (170, (-1.0f32).to_bits())]);
}
