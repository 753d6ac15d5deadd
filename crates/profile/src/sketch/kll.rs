//! KLL quantile sketch (Karnin, Lang and Liberty, 2016).

/// A KLL sketch of `f64` values: a stack of compactors where an item on level `h` stands for
/// `2^h` inputs. When the sketch is full, the lowest full level is sorted and every other
/// item (starting at a random offset) is promoted, so memory stays about `3k` items whatever
/// the stream length. The first level (weight 1) holds at least [`Self::FIRST_LEVEL`] items
/// before it is compacted: sorting them in batches is what keeps an update cheap, and a
/// larger first level only makes the sketch more accurate.
///
/// **Error bound.** A quantile query returns an item whose true normalized rank is within
/// `ε` of the requested rank; for `k = 200` (the profiler's setting) `ε ≈ 1.65 %` with 99 %
/// confidence (the figure Apache DataSketches publishes for this `k`), and the tests check
/// `2 %` on randomized data. Until [`Self::FIRST_LEVEL`] values have been seen, nothing is
/// compacted and answers are exact (the first compaction comes with that value). Coin flips come from a fixed-seed generator, so a
/// profile of the same input is reproducible.
#[derive(Debug, Clone)]
pub struct Kll {
    k: usize,
    /// Items as order-preserving integer keys (see [`key`]), which compare faster than
    /// `f64::total_cmp`. Every level but the first is kept sorted, so a compaction sorts only
    /// the first level and merges the promoted items into the next.
    levels: Vec<Vec<u64>>,
    /// How many items each level holds before it is compacted (they shrink as levels are added).
    capacities: Vec<usize>,
    size: usize,
    max_size: usize,
    count: u64,
    rng: u64,
    /// The buffer a merge of two sorted levels is built in.
    scratch: Vec<u64>,
}

impl Kll {
    /// The `k` the profiler uses: about 850 retained values (7 KiB), `ε ≈ 1.65 %`.
    pub const DEFAULT_K: usize = 200;

    /// The least capacity of the first level.
    pub const FIRST_LEVEL: usize = 256;

    /// An empty sketch; larger `k` means smaller error (`ε` roughly proportional to `1/k`).
    pub fn new(k: usize) -> Self {
        let mut sketch = Self {
            k: k.max(8),
            levels: Vec::new(),
            capacities: Vec::new(),
            size: 0,
            max_size: 0,
            count: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            scratch: Vec::new(),
        };
        sketch.grow();
        sketch
    }

    /// Adds a value. NaN is ignored: it has no rank.
    #[inline]
    pub fn insert(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.levels[0].push(key(x));
        self.size += 1;
        self.count += 1;
        // The first level is compacted as soon as it is full, a batch of a known size,
        // rather than with all the room the upper levels happen to leave.
        if self.size >= self.max_size || self.levels[0].len() >= self.capacities[0] {
            self.compress();
        }
    }

    /// Folds another sketch into this one; the error bound of the result is that of one
    /// sketch over the union of both inputs.
    pub fn merge(&mut self, other: &Self) {
        while self.levels.len() < other.levels.len() {
            self.grow();
        }
        for (h, theirs) in other.levels.iter().enumerate() {
            if h == 0 {
                self.levels[0].extend_from_slice(theirs);
            } else {
                let mut merged = std::mem::take(&mut self.scratch);
                merge_sorted(&self.levels[h], theirs.iter().copied(), &mut merged);
                self.scratch = std::mem::replace(&mut self.levels[h], merged);
            }
        }
        self.count += other.count;
        self.size = self.levels.iter().map(Vec::len).sum();
        while self.size >= self.max_size {
            self.compress();
        }
    }

    /// How many values were inserted (including merged sketches).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// For each rank in `ranks` (each in `0.0..=1.0`), the smallest retained value whose
    /// estimated cumulative fraction reaches it. `None` if the sketch is empty.
    pub fn quantiles(&self, ranks: &[f64]) -> Option<Vec<f64>> {
        if self.count == 0 {
            return None;
        }
        let mut weighted: Vec<(u64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, level)| level.iter().map(move |&k| (k, 1u64 << h)))
            .collect();
        weighted.sort_unstable_by_key(|w| w.0);
        let total: u64 = weighted.iter().map(|w| w.1).sum();
        let answers = ranks
            .iter()
            .map(|&rank| {
                let target = (rank.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
                let mut cumulative = 0;
                for &(k, w) in &weighted {
                    cumulative += w;
                    if cumulative >= target {
                        return value(k);
                    }
                }
                value(weighted[weighted.len() - 1].0)
            })
            .collect();
        Some(answers)
    }

    fn grow(&mut self) {
        self.levels.push(Vec::new());
        let levels = self.levels.len();
        let k = self.k as f64;
        // The floor of 8 (DataSketches' `m`) keeps the many low levels of a long stream from
        // compacting a handful of items at a time, which made sorting the sketch's main cost.
        self.capacities = (0..levels)
            .map(|h| {
                let depth = (levels - h - 1) as i32;
                let capacity = (((2.0f64 / 3.0).powi(depth) * k).ceil() as usize + 1).max(8);
                if h == 0 {
                    capacity.max(Self::FIRST_LEVEL)
                } else {
                    capacity
                }
            })
            .collect();
        self.max_size = self.capacities.iter().sum();
    }

    fn compress(&mut self) {
        for h in 0..self.levels.len() {
            if self.levels[h].len() < self.capacities[h] {
                continue;
            }
            if h + 1 >= self.levels.len() {
                self.grow();
            }
            let offset = usize::from(self.coin());
            if h == 0 {
                self.levels[0].sort_unstable();
            }
            // An odd item out (the smallest) stays behind so weights are conserved exactly.
            let odd = self.levels[h].len() % 2;
            let mut merged = std::mem::take(&mut self.scratch);
            let promoted = self.levels[h][odd..]
                .iter()
                .copied()
                .skip(offset)
                .step_by(2);
            merge_sorted(&self.levels[h + 1], promoted, &mut merged);
            self.scratch = std::mem::replace(&mut self.levels[h + 1], merged);
            let level = &mut self.levels[h];
            self.size -= (level.len() - odd) / 2;
            level.truncate(odd);
            if self.size < self.max_size {
                break;
            }
        }
    }

    fn coin(&mut self) -> bool {
        // xorshift64: a fixed seed keeps profiles reproducible.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng & 1 == 1
    }
}

/// Writes the sorted `a` and the sorted `b` into `out`, sorted. `b` is usually a handful of
/// promoted items: each finds its place by binary search and the runs between are copied.
fn merge_sorted(a: &[u64], b: impl Iterator<Item = u64>, out: &mut Vec<u64>) {
    out.clear();
    out.reserve(a.len() + b.size_hint().0);
    let mut rest = a;
    for y in b {
        let k = rest.partition_point(|&x| x <= y);
        out.extend_from_slice(&rest[..k]);
        out.push(y);
        rest = &rest[k..];
    }
    out.extend_from_slice(rest);
}

/// Maps an `f64` to a `u64` with the same order (the IEEE 754 total order).
fn key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The inverse of [`key`].
fn value(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_order() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -0.0,
            0.0,
            1e-300,
            2.5,
            f64::MAX,
        ];
        for pair in xs.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{pair:?}");
        }
        assert!(xs.iter().all(|&x| value(key(x)).to_bits() == x.to_bits()));
    }

    #[test]
    fn small_inputs_are_exact() {
        let mut s = Kll::new(Kll::DEFAULT_K);
        assert_eq!(s.quantiles(&[0.5]), None);
        for x in [5.0, 1.0, 4.0, 2.0, 3.0] {
            s.insert(x);
        }
        assert_eq!(
            s.quantiles(&[0.0, 0.2, 0.5, 0.99, 1.0]).unwrap(),
            vec![1.0, 1.0, 3.0, 5.0, 5.0]
        );
    }

    #[test]
    fn memory_stays_bounded_and_weight_is_conserved() {
        let mut s = Kll::new(Kll::DEFAULT_K);
        for i in 0..1_000_000 {
            s.insert(f64::from(i));
        }
        let retained: usize = s.levels.iter().map(Vec::len).sum();
        assert!(
            retained < 3 * Kll::DEFAULT_K + Kll::FIRST_LEVEL + 64,
            "{retained}"
        );
        let weight: u64 = s
            .levels
            .iter()
            .enumerate()
            .map(|(h, l)| (l.len() as u64) << h)
            .sum();
        assert_eq!(weight, 1_000_000);
    }
}
