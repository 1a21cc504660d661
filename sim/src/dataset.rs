//! scikit-learn's digits (1,797 8x8 images, 10 classes), embedded from `data/digits.bin` (made
//! once by `data/convert_digits.py`), with a seeded train/test split and client partitions.

use gradwire::rng::SeededRng;

/// The embedded file: `b"GWDIGIT1"`, `u32` count, then per sample 64 pixels (0..=16) and a label.
const DIGITS: &[u8] = include_bytes!("../data/digits.bin");

/// Pixels per image.
pub const FEATURES: usize = 64;
/// Number of classes.
pub const CLASSES: usize = 10;

/// Labelled examples: `features` holds `FEATURES` values in `[0, 1]` per example.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Row-major `len() x FEATURES` pixel intensities divided by 16.
    pub features: Vec<f32>,
    /// One label in `0..CLASSES` per example.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// The 1,797 digits, in the dataset's order.
    ///
    /// # Panics
    /// Never: the embedded file is checked by this crate's tests.
    #[must_use]
    #[allow(clippy::missing_panics_doc, reason = "the embedded file is fixed and tested")]
    pub fn digits() -> Dataset {
        let (head, body) = DIGITS.split_at(12);
        assert_eq!(&head[..8], b"GWDIGIT1", "embedded digits file");
        let count = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let mut data = Dataset::default();
        for sample in body.chunks_exact(FEATURES + 1).take(count) {
            data.features.extend(sample[..FEATURES].iter().map(|&p| f32::from(p) / 16.0));
            data.labels.push(sample[FEATURES]);
        }
        data
    }

    /// Number of examples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of example `i`.
    #[must_use]
    pub fn example(&self, i: usize) -> &[f32] {
        &self.features[i * FEATURES..(i + 1) * FEATURES]
    }

    /// The examples at `indices`, in that order.
    #[must_use]
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut out = Dataset::default();
        for &i in indices {
            out.features.extend_from_slice(self.example(i));
            out.labels.push(self.labels[i]);
        }
        out
    }

    /// A seeded shuffle split into (train, test) with `test_fraction` of the examples in test.
    #[must_use]
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let order = shuffled(self.len(), &mut SeededRng::new(seed));
        let n_test = ((self.len() as f64) * test_fraction).round() as usize;
        let (test, train) = order.split_at(n_test.min(self.len()));
        (self.subset(train), self.subset(test))
    }
}

/// How examples are dealt to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// A seeded shuffle dealt round-robin: every client sees every class.
    Iid,
    /// Sorted by label, cut into `2 x clients` shards, two seeded shards per client: each client
    /// sees about two classes (McMahan et al. 2017's pathological non-IID split).
    LabelSkew,
}

/// The examples of `data` dealt to `clients` clients. With [`Split::Iid`] each gets at least one
/// when `data.len() >= clients`; with [`Split::LabelSkew`] a client may get none when
/// `data.len() < 2 x clients` (the simulation skips clients without data).
#[must_use]
pub fn partition(data: &Dataset, clients: usize, split: Split, seed: u64) -> Vec<Dataset> {
    let clients = clients.max(1);
    let mut rng = SeededRng::new(seed);
    let mut order = shuffled(data.len(), &mut rng);
    let assignment: Vec<Vec<usize>> = match split {
        Split::Iid => (0..clients).map(|c| order.iter().copied().skip(c).step_by(clients).collect()).collect(),
        Split::LabelSkew => {
            order.sort_by_key(|&i| data.labels[i]); // stable: ties keep the shuffled order
            let shards = 2 * clients;
            let shard_order = shuffled(shards, &mut rng);
            let bounds = |s: usize| s * order.len() / shards;
            (0..clients)
                .map(|c| {
                    shard_order[2 * c..2 * c + 2]
                        .iter()
                        .flat_map(|&s| order[bounds(s)..bounds(s + 1)].iter().copied())
                        .collect()
                })
                .collect()
        }
    };
    assignment.iter().map(|indices| data.subset(indices)).collect()
}

/// `0..n` in a seeded Fisher-Yates order.
pub(crate) fn shuffled(n: usize, rng: &mut SeededRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for j in (1..n).rev() {
        let r = rng.next_below(j as u64 + 1) as usize;
        order.swap(j, r);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_digits_are_complete() {
        let d = Dataset::digits();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.features.len(), 1797 * FEATURES);
        let mut per_class = [0usize; CLASSES];
        d.labels.iter().for_each(|&l| per_class[usize::from(l)] += 1);
        assert_eq!(per_class, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        assert!(d.features.iter().all(|v| (0.0..=1.0).contains(v)));
        // The first image of the dataset is a 0 with its well-known first row 0 0 5 13 9 1 0 0.
        assert_eq!(d.labels[0], 0);
        assert_eq!(&d.example(0)[..8], &[0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0, 9.0 / 16.0, 1.0 / 16.0, 0.0, 0.0]);
    }

    #[test]
    fn splits_and_partitions_cover_every_example_once() {
        let d = Dataset::digits();
        let (train, test) = d.split(0.2, 7);
        assert_eq!((train.len(), test.len()), (1438, 359));
        let histogram = |d: &Dataset| {
            let mut h = [0usize; CLASSES];
            d.labels.iter().for_each(|&l| h[usize::from(l)] += 1);
            h
        };
        for split in [Split::Iid, Split::LabelSkew] {
            let parts = partition(&train, 4, split, 3);
            assert_eq!(parts.iter().map(Dataset::len).sum::<usize>(), train.len());
            // Every example once: the pooled clients hold the training set's label counts and
            // the multiset of its images.
            let mut pooled = [0usize; CLASSES];
            for p in &parts {
                for (c, n) in histogram(p).iter().enumerate() {
                    pooled[c] += n;
                }
            }
            assert_eq!(pooled, histogram(&train));
            let key =
                |d: &Dataset, i: usize| (d.labels[i], d.example(i).iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            let mut all: Vec<_> = parts.iter().flat_map(|p| (0..p.len()).map(move |i| key(p, i))).collect();
            let mut expected: Vec<_> = (0..train.len()).map(|i| key(&train, i)).collect();
            all.sort();
            expected.sort();
            assert!(all == expected, "{split:?}: the clients' examples are not the training set");
            let classes = |p: &Dataset| (0..10u8).filter(|c| p.labels.contains(c)).count();
            match split {
                Split::Iid => assert!(parts.iter().all(|p| classes(p) == 10)),
                // Two shards of 180 sorted examples each span two or three classes of about 144.
                Split::LabelSkew => {
                    let counts: Vec<usize> = parts.iter().map(classes).collect();
                    assert!(counts.iter().all(|&c| c <= 6) && counts.iter().sum::<usize>() <= 20, "{counts:?}");
                }
            }
        }
        assert_eq!(partition(&train, 4, Split::LabelSkew, 3), partition(&train, 4, Split::LabelSkew, 3));
    }
}
