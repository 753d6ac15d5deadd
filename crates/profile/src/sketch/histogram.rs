//! Equal-width histogram with exact counts over a range that is not known in advance.

use crate::report::Histogram;

/// Values buffered before the bin width is chosen from their spread.
const PENDING: usize = 1024;

/// An equal-width histogram of at most `max_bins` bins with exact counts, built in one pass.
///
/// Bins lie on a fixed grid `[i·w, (i+1)·w)`. The width `w` is a power of two times a unit
/// (one day in seconds when every value seen so far was a whole day, 1 when every value was
/// an integer — so integer data never gets half-empty bins — otherwise 1) picked from the
/// spread of the first values. When a value falls outside the window, the width doubles and
/// neighbouring bins merge pairwise, which keeps every count exact because the coarser grid
/// is aligned with the finer one. The result has between `max_bins / 2` and `max_bins` bins
/// once the data spreads across more than half the window.
#[derive(Debug, Clone)]
pub struct StreamingHistogram {
    max_bins: usize,
    pending: Vec<f64>,
    width: f64,
    base: i64,
    bins: Vec<u64>,
    range: Option<(i64, i64)>,
}

impl StreamingHistogram {
    /// An empty histogram with at most `max_bins` bins (at least 2).
    pub fn new(max_bins: usize) -> Self {
        Self {
            max_bins: max_bins.max(2),
            pending: Vec::new(),
            width: 0.0,
            base: 0,
            bins: Vec::new(),
            range: None,
        }
    }

    /// Adds a value; infinities and NaN are ignored.
    pub fn insert(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.width > 0.0 {
            self.place(x);
        } else {
            self.pending.push(x);
            if self.pending.len() == PENDING {
                self.choose_grid();
            }
        }
    }

    /// The bins from the lowest to the highest occupied one, or `None` if no value was added.
    pub fn bins(&self) -> Option<Histogram> {
        if self.width == 0.0 && !self.pending.is_empty() {
            let mut settled = self.clone();
            settled.choose_grid();
            return settled.bins();
        }
        let (lo, hi) = self.range?;
        let counts = self.bins[(lo - self.base) as usize..=(hi - self.base) as usize].to_vec();
        Some(Histogram {
            start: lo as f64 * self.width,
            width: self.width,
            counts,
        })
    }

    fn choose_grid(&mut self) {
        let (min, max) = self
            .pending
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        let unit = if self.pending.iter().all(|x| x % 86_400.0 == 0.0) && max - min >= 86_400.0 {
            86_400.0
        } else {
            1.0
        };
        let integral = self.pending.iter().all(|x| x.fract() == 0.0);
        let ratio = (max - min) / self.max_bins as f64 / unit;
        let mut exponent = if ratio > 0.0 {
            ratio.log2().ceil() as i32
        } else {
            0
        };
        if integral {
            exponent = exponent.max(0);
        }
        self.width = unit * 2f64.powi(exponent);
        self.bins = vec![0; self.max_bins];
        for x in std::mem::take(&mut self.pending) {
            self.place(x);
        }
    }

    fn place(&mut self, x: f64) {
        // Keep indices far from i64 overflow; doubling the width halves them.
        while (x / self.width).abs() > 1e15 {
            self.coarsen(1);
        }
        let mut idx = (x / self.width).floor() as i64;
        let (lo, hi) = self.range.unwrap_or((idx, idx));
        let (mut lo, mut hi) = (lo.min(idx), hi.max(idx));
        let mut shift = 0;
        while (hi >> shift) - (lo >> shift) + 1 > self.max_bins as i64 {
            shift += 1;
        }
        if shift > 0 {
            self.coarsen(shift);
            (idx, lo, hi) = (idx >> shift, lo >> shift, hi >> shift);
        }
        let window = self.max_bins as i64;
        if self.range.is_none() || idx < self.base || idx >= self.base + window {
            let new_base = if idx < self.base || self.range.is_none() {
                lo
            } else {
                hi - window + 1
            };
            self.rebase(new_base);
        }
        self.bins[(idx - self.base) as usize] += 1;
        self.range = Some((lo, hi));
    }

    fn coarsen(&mut self, shift: u32) {
        self.width *= 2f64.powi(shift as i32);
        let old = std::mem::replace(&mut self.bins, vec![0; self.max_bins]);
        let old_base = self.base;
        self.range = self.range.map(|(lo, hi)| (lo >> shift, hi >> shift));
        self.base = self.range.map_or(old_base >> shift, |(lo, _)| lo);
        for (i, count) in old.into_iter().enumerate().filter(|(_, c)| *c > 0) {
            let idx = (old_base + i as i64) >> shift;
            self.bins[(idx - self.base) as usize] += count;
        }
    }

    fn rebase(&mut self, new_base: i64) {
        let old = std::mem::replace(&mut self.bins, vec![0; self.max_bins]);
        for (i, count) in old.into_iter().enumerate().filter(|(_, c)| *c > 0) {
            self.bins[(self.base + i as i64 - new_base) as usize] += count;
        }
        self.base = new_base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[f64], max_bins: usize) -> Histogram {
        let mut h = StreamingHistogram::new(max_bins);
        for &x in values {
            h.insert(x);
        }
        let bins = h.bins().unwrap();
        assert!(bins.counts.len() <= max_bins);
        assert_eq!(bins.counts.iter().sum::<u64>(), values.len() as u64);
        // Every count is exact: recount each bin from the data.
        for (i, &count) in bins.counts.iter().enumerate() {
            let lo = bins.start + i as f64 * bins.width;
            let expected = values
                .iter()
                .filter(|&&x| x >= lo && x < lo + bins.width)
                .count();
            assert_eq!(count, expected as u64, "bin {i} of {bins:?}");
        }
        bins
    }

    #[test]
    fn integers_get_whole_bins() {
        let values: Vec<f64> = (1990..2020).map(f64::from).collect();
        let bins = check(&values, 64);
        assert_eq!(
            (bins.start, bins.width, bins.counts.len()),
            (1990.0, 1.0, 30)
        );
    }

    #[test]
    fn range_growing_after_the_grid_is_chosen_stays_exact() {
        let mut values: Vec<f64> = (0..2000).map(|i| f64::from(i) * 0.01).collect();
        values.extend([-5e6, 3e9, 12.5, -0.001]);
        check(&values, 64);
        check(&[1e300, -1e300, 0.0], 16);
        check(&[7.25], 8);
    }
}
