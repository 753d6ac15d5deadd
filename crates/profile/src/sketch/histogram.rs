//! Equal-width histogram with exact counts over a range that is not known in advance.

use crate::report::Histogram;

/// Bin indices stay below this magnitude, far from `i64` overflow and exact in an `f64`.
const MAX_INDEX: f64 = (1u64 << 52) as f64;
/// The finest grid: `2^-1000` units, still a normal `f64`.
const MIN_EXPONENT: i32 = -1000;

/// An equal-width histogram of at most `max_bins` bins with exact counts, built in one pass.
///
/// Bins lie on a fixed grid `[i·w, (i+1)·w)` with `w = unit · 2^e`: the unit is 1 for numbers
/// and one day (in seconds) for dates and times, so a date histogram has whole-day bins. The
/// exponent `e` is always the smallest at which the values seen so far fit in `max_bins`
/// bins. When a value falls outside, the width doubles until it fits and neighbouring bins
/// merge pairwise, which keeps every count exact because the coarser grid is aligned with the
/// finer one. The grid therefore depends only on the smallest and largest value: histograms
/// of parts of a stream, merged in any order, equal the histogram of the whole stream. When
/// every value is a whole number of units the reported bins are at least one unit wide. The
/// result has between `max_bins / 2` and `max_bins` bins once the data spreads across more
/// than one unit.
#[derive(Debug, Clone)]
pub struct StreamingHistogram {
    max_bins: usize,
    unit: f64,
    /// Every value so far is a whole number of units.
    whole: bool,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Empty,
    /// Only one distinct value so far (in units), and how often it came.
    Single(f64, u64),
    Grid(Grid),
}

/// Bins of width `2^exponent` units; `bins[0]` is bin number `base`.
#[derive(Debug, Clone)]
struct Grid {
    exponent: i32,
    /// `2^-exponent`: a value in units times this is its bin number (before flooring).
    scale: f64,
    base: i64,
    bins: Vec<u64>,
    /// The lowest and highest occupied bin numbers.
    lo: i64,
    hi: i64,
}

impl StreamingHistogram {
    /// An empty histogram of numbers with at most `max_bins` bins (at least 2).
    pub fn new(max_bins: usize) -> Self {
        Self::with_unit(max_bins, 1.0)
    }

    /// An empty histogram whose bin widths are `unit` times a power of two (a positive,
    /// finite `unit`; anything else is taken as 1).
    pub fn with_unit(max_bins: usize, unit: f64) -> Self {
        Self {
            max_bins: max_bins.max(2),
            unit: if unit.is_finite() && unit > 0.0 {
                unit
            } else {
                1.0
            },
            whole: true,
            state: State::Empty,
        }
    }

    /// Adds a value; infinities and NaN are ignored.
    #[inline]
    pub fn insert(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        let q = if self.unit == 1.0 { x } else { x / self.unit };
        // Every float from 2^52 up is whole; below, truncating to an integer is exact.
        if self.whole && q != (q as i64) as f64 && q.abs() < MAX_INDEX {
            self.whole = false;
        }
        // The common case, inline: a grid whose window holds the value.
        if let State::Grid(grid) = &mut self.state
            && let Some(i) = index(q, grid.scale)
            && i >= grid.base
            && i < grid.base + self.max_bins as i64
        {
            grid.bins[(i - grid.base) as usize] += 1;
            (grid.lo, grid.hi) = (grid.lo.min(i), grid.hi.max(i));
            return;
        }
        self.add(q, 1);
    }

    #[inline(never)]
    fn add(&mut self, q: f64, count: u64) {
        match &mut self.state {
            State::Grid(grid) => grid.add(q, count, self.max_bins),
            State::Single(v, n) if *v == q => *n += count,
            State::Single(v, n) => {
                let (v, n) = (*v, *n);
                let mut grid = Grid::fitting(v.min(q), v.max(q), self.max_bins);
                grid.add(v, n, self.max_bins);
                grid.add(q, count, self.max_bins);
                self.state = State::Grid(grid);
            }
            State::Empty => self.state = State::Single(q, count),
        }
    }

    /// Folds in another histogram with the same unit; the result is the histogram of both
    /// inputs together, bin for bin.
    ///
    /// # Panics
    /// If the units differ: their grids are not aligned, so counts could not stay exact.
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(self.unit, other.unit, "histogram units differ");
        self.whole &= other.whole;
        match &other.state {
            State::Empty => {}
            State::Single(v, n) => self.add(*v, *n),
            State::Grid(theirs) => match &mut self.state {
                State::Grid(mine) => mine.merge(theirs, self.max_bins),
                _ => {
                    let mine = std::mem::replace(&mut self.state, State::Grid(theirs.clone()));
                    if let State::Single(v, n) = mine {
                        self.add(v, n);
                    }
                }
            },
        }
    }

    /// The bins from the lowest to the highest occupied one, or `None` if no value was added.
    pub fn bins(&self) -> Option<Histogram> {
        let grid = match &self.state {
            State::Empty => return None,
            State::Single(v, n) => {
                let width = self.unit;
                return Some(Histogram {
                    start: v.floor() * width,
                    width,
                    counts: vec![*n],
                });
            }
            State::Grid(grid) => grid,
        };
        let whole_units;
        let grid = if self.whole && grid.exponent < 0 {
            let mut coarser = grid.clone();
            coarser.coarsen(-grid.exponent);
            whole_units = coarser;
            &whole_units
        } else {
            grid
        };
        let width = self.unit * pow2(grid.exponent);
        let counts =
            grid.bins[(grid.lo - grid.base) as usize..=(grid.hi - grid.base) as usize].to_vec();
        Some(Histogram {
            start: grid.lo as f64 * width,
            width,
            counts,
        })
    }
}

impl Grid {
    /// An empty grid with the smallest exponent at which `lo..=hi` fits in `max_bins` bins.
    fn fitting(lo: f64, hi: f64, max_bins: usize) -> Self {
        let guess = ((hi - lo) / max_bins as f64).log2().ceil();
        let mut exponent = if guess.is_finite() {
            (guess as i32).clamp(MIN_EXPONENT, 1000)
        } else {
            MIN_EXPONENT
        };
        let fits = |e: i32| match (index(lo, pow2(-e)), index(hi, pow2(-e))) {
            (Some(a), Some(b)) => b - a < max_bins as i64,
            _ => false,
        };
        while !fits(exponent) {
            exponent += 1;
        }
        while exponent > MIN_EXPONENT && fits(exponent - 1) {
            exponent -= 1;
        }
        let scale = pow2(-exponent);
        let base = index(lo, scale).expect("fits");
        Self {
            exponent,
            scale,
            base,
            bins: vec![0; max_bins],
            lo: base,
            hi: base,
        }
    }

    #[inline]
    fn add(&mut self, q: f64, count: u64, max_bins: usize) {
        match index(q, self.scale) {
            // Inside the window the range fits by construction.
            Some(i) if i >= self.base && i < self.base + max_bins as i64 => {
                self.bins[(i - self.base) as usize] += count;
                (self.lo, self.hi) = (self.lo.min(i), self.hi.max(i));
            }
            _ => self.add_outside(q, count, max_bins),
        }
    }

    /// Adds a value outside the window: a coarser grid or a moved window.
    fn add_outside(&mut self, q: f64, count: u64, max_bins: usize) {
        let i = loop {
            if let Some(i) = index(q, self.scale)
                && self.hi.max(i) - self.lo.min(i) < max_bins as i64
            {
                break i;
            }
            self.coarsen(1);
        };
        self.cover(self.lo.min(i), self.hi.max(i), max_bins);
        self.bins[(i - self.base) as usize] += count;
    }

    /// Moves the window so that it covers `lo..=hi` (which fits) and records that range.
    fn cover(&mut self, lo: i64, hi: i64, max_bins: usize) {
        let window = max_bins as i64;
        if lo < self.base || hi >= self.base + window {
            let new_base = if lo < self.base { lo } else { hi - window + 1 };
            let old = std::mem::replace(&mut self.bins, vec![0; max_bins]);
            for (i, count) in old.into_iter().enumerate().filter(|(_, c)| *c > 0) {
                self.bins[(self.base + i as i64 - new_base) as usize] += count;
            }
            self.base = new_base;
        }
        (self.lo, self.hi) = (lo, hi);
    }

    /// Makes bins `2^shift` times wider.
    fn coarsen(&mut self, shift: i32) {
        let shift = shift as u32;
        self.exponent += shift as i32;
        self.scale = pow2(-self.exponent);
        let bins = self.bins.len();
        let old = std::mem::replace(&mut self.bins, vec![0; bins]);
        let old_base = self.base;
        (self.lo, self.hi) = (shr(self.lo, shift), shr(self.hi, shift));
        self.base = self.lo;
        for (i, count) in old.into_iter().enumerate().filter(|(_, c)| *c > 0) {
            let idx = shr(old_base + i as i64, shift);
            self.bins[(idx - self.base) as usize] += count;
        }
    }

    fn merge(&mut self, other: &Self, max_bins: usize) {
        // The smallest exponent, from the coarser of the two, at which both ranges fit.
        let mut e = self.exponent.max(other.exponent);
        let (lo, hi) = loop {
            let at = |g: &Grid| {
                let shift = (e - g.exponent) as u32;
                (shr(g.lo, shift), shr(g.hi, shift))
            };
            let (mine, theirs) = (at(self), at(other));
            let (lo, hi) = (mine.0.min(theirs.0), mine.1.max(theirs.1));
            if hi - lo < max_bins as i64 {
                break (lo, hi);
            }
            e += 1;
        };
        if e > self.exponent {
            self.coarsen(e - self.exponent);
        }
        self.cover(lo, hi, max_bins);
        let shift = (e - other.exponent) as u32;
        for (i, &count) in other.bins.iter().enumerate().filter(|(_, c)| **c > 0) {
            let idx = shr(other.base + i as i64, shift);
            self.bins[(idx - self.base) as usize] += count;
        }
    }
}

/// The bin number of `q` units at `scale` bins per unit, if it is within [`MAX_INDEX`].
#[inline]
fn index(q: f64, scale: f64) -> Option<i64> {
    let s = q * scale;
    if s.abs() > MAX_INDEX {
        return None;
    }
    // Flooring by hand: `f64::floor` is a library call on baseline x86-64. Truncation is
    // exact here, and one below for negative fractions. A tiny negative value can round to
    // -0.0 and would floor into bin 0.
    let t = s as i64;
    Some(if (t as f64) > s || (s == 0.0 && q < 0.0) {
        t - 1
    } else {
        t
    })
}

/// `2^e` for `e` in the normal range of `f64`, exactly.
fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// `i / 2^shift` rounded down, for any shift.
fn shr(i: i64, shift: u32) -> i64 {
    if shift >= 63 {
        if i < 0 { -1 } else { 0 }
    } else {
        i >> shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn build(values: &[f64], max_bins: usize) -> StreamingHistogram {
        let mut h = StreamingHistogram::new(max_bins);
        for &x in values {
            h.insert(x);
        }
        h
    }

    fn check(values: &[f64], max_bins: usize) -> Histogram {
        let bins = build(values, max_bins).bins().unwrap();
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
    fn range_growing_stays_exact() {
        let mut values: Vec<f64> = (0..2000).map(|i| f64::from(i) * 0.01).collect();
        values.extend([-5e6, 3e9, 12.5, -0.001]);
        check(&values, 64);
        check(&[1e300, -1e300, 0.0], 16);
        check(&[7.25], 8);
        check(&[1e-300, -1e-300, 5e-324], 8);
        check(&[0.1, 0.1 + f64::EPSILON], 64);
        let wide = check(&(0..1000).map(f64::from).collect::<Vec<_>>(), 64);
        assert!(wide.counts.len() > 32, "{wide:?}");
    }

    #[test]
    fn days_get_whole_day_bins() {
        let day = 86_400.0;
        let mut h = StreamingHistogram::with_unit(64, day);
        for d in [19_000.0, 19_001.0, 19_003.0] {
            h.insert(d * day);
        }
        let bins = h.bins().unwrap();
        assert_eq!(
            (bins.start, bins.width, bins.counts),
            (19_000.0 * day, day, vec![1, 1, 0, 1])
        );
        h.insert(19_000.0 * day + 3600.0);
        let bins = h.bins().unwrap();
        assert_eq!((bins.start, bins.counts[0]), (19_000.0 * day, 2));
        assert!(bins.width < day);
    }

    #[test]
    fn merged_parts_equal_the_whole_in_any_order() {
        let mut rng = StdRng::seed_from_u64(5);
        for round in 0..200 {
            let n = rng.random_range(1..3000);
            let values: Vec<f64> = (0..n)
                .map(|_| match round % 4 {
                    0 => f64::from(rng.random_range(-50..50)),
                    1 => rng.random::<f64>() * 1e-3,
                    2 => (rng.random::<f64>() * 30.0).exp() - 1e6,
                    _ => f64::from(rng.random_range(0..3)) * 0.5,
                })
                .collect();
            let whole = build(&values, 64).bins();
            let parts = rng.random_range(1..8);
            let mut sketches: Vec<StreamingHistogram> =
                (0..parts).map(|_| StreamingHistogram::new(64)).collect();
            for &x in &values {
                sketches[rng.random_range(0..parts)].insert(x);
            }
            let mut merged = StreamingHistogram::new(64);
            while let Some(part) = sketches.pop() {
                if rng.random_bool(0.5) {
                    merged.merge(&part);
                } else {
                    let mut part = part;
                    part.merge(&merged);
                    merged = part;
                }
            }
            assert_eq!(merged.bins(), whole, "round {round}");
        }
    }
}
