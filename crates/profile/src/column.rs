//! The per-column accumulator: one pass over the cells, bounded memory, then a `Column`.

use crate::hash::{BuildPreHashed, hash_bytes};
use crate::report::{Column, ColumnType, Distinct, QUANTILE_RANKS, Quantiles, Scalar, TypeCounts};
use crate::sketch::{FrequentItems, HyperLogLog, Kll, Moments, StreamingHistogram};
use crate::value::{self, Cell};
use std::collections::HashSet;

/// Bins of the numeric and temporal histograms.
const HISTOGRAM_BINS: usize = 64;
/// Guaranteed counters kept per top value reported: more counters, smaller error.
const COUNTERS_PER_TOP_VALUE: usize = 5;

/// Limits that bound a column's memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnLimits {
    pub(crate) exact_distinct: usize,
    pub(crate) top_values: usize,
    pub(crate) max_value_bytes: usize,
}

enum DistinctCounter {
    Exact(HashSet<u64, BuildPreHashed>),
    Estimated(Box<HyperLogLog>),
}

/// Numbers (or instants, as seconds) seen in a column.
#[derive(Clone)]
struct Numbers {
    /// Only numbers report a mean and standard deviation.
    moments: Option<Moments>,
    quantiles: Kll,
    histogram: StreamingHistogram,
    min: f64,
    max: f64,
}

impl Numbers {
    fn of_numbers() -> Self {
        Self::new(Some(Moments::default()), 1.0)
    }

    /// Dates and date-times, as seconds: whole-day histogram bins when the data allows.
    fn of_instants() -> Self {
        Self::new(None, 86_400.0)
    }

    fn new(moments: Option<Moments>, unit: f64) -> Self {
        Self {
            moments,
            quantiles: Kll::new(Kll::DEFAULT_K),
            histogram: StreamingHistogram::with_unit(HISTOGRAM_BINS, unit),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    #[inline]
    fn insert(&mut self, x: f64) {
        if let Some(moments) = &mut self.moments {
            moments.insert(x);
        }
        self.quantiles.insert(x);
        self.histogram.insert(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    fn merge(&mut self, other: &Self) {
        if let (Some(mine), Some(theirs)) = (&mut self.moments, &other.moments) {
            mine.merge(theirs);
        }
        self.quantiles.merge(&other.quantiles);
        self.histogram.merge(&other.histogram);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The smallest and largest text, each cut to the length cap with a flag saying whether it
/// was cut, and its first eight bytes as a big-endian number: most comparisons are settled by
/// that number alone.
///
/// Bounds are ordered by their text, and a cut value after the same text uncut (it is
/// longer), so that the bounds kept do not depend on the order values came in.
#[derive(Clone, Default)]
struct TextBounds {
    any: bool,
    min_key: u64,
    min: Vec<u8>,
    min_cut: bool,
    max_key: u64,
    max: Vec<u8>,
    max_cut: bool,
}

impl TextBounds {
    #[inline]
    fn observe(&mut self, key: u64, text: &[u8], cut: bool) {
        if !self.any {
            self.any = true;
            self.set_min(key, text, cut);
            self.set_max(key, text, cut);
            return;
        }
        if key < self.min_key
            || (key == self.min_key && (text, cut) < (self.min.as_slice(), self.min_cut))
        {
            self.set_min(key, text, cut);
        }
        if key > self.max_key
            || (key == self.max_key && (text, cut) > (self.max.as_slice(), self.max_cut))
        {
            self.set_max(key, text, cut);
        }
    }

    fn set_min(&mut self, key: u64, text: &[u8], cut: bool) {
        self.min.clear();
        self.min.extend_from_slice(text);
        (self.min_key, self.min_cut) = (key, cut);
    }

    fn set_max(&mut self, key: u64, text: &[u8], cut: bool) {
        self.max.clear();
        self.max.extend_from_slice(text);
        (self.max_key, self.max_cut) = (key, cut);
    }

    fn merge(&mut self, other: &Self) {
        if other.any {
            self.observe(other.min_key, &other.min, other.min_cut);
            self.observe(other.max_key, &other.max, other.max_cut);
        }
    }
}

/// The first eight bytes of `b` as a big-endian number, zero-padded: if `key(a) < key(b)`
/// then `a < b` byte-wise; equal keys need a full comparison.
#[inline]
fn prefix_key(b: &[u8]) -> u64 {
    match b.len() {
        8.. => u64::from_be_bytes(b[..8].try_into().expect("eight bytes")),
        4..8 => {
            // Two overlapping loads, placed where the bytes belong.
            let head = u64::from(u32::from_be_bytes(b[..4].try_into().expect("four")));
            let tail = u64::from(u32::from_be_bytes(
                b[b.len() - 4..].try_into().expect("four"),
            ));
            (head << 32) | (tail << (8 * (8 - b.len())))
        }
        _ => b
            .iter()
            .enumerate()
            .fold(0, |k, (i, &c)| k | u64::from(c) << (56 - 8 * i)),
    }
}

/// Everything the profiler keeps about one column while reading.
pub(crate) struct ColumnProfile {
    limits: ColumnLimits,
    nulls: u64,
    types: TypeCounts,
    distinct: DistinctCounter,
    top: FrequentItems,
    /// The smallest and largest capped value.
    text: TextBounds,
    min_length: u64,
    max_length: u64,
    /// Kept until the first string cell settles the column as `string`.
    numbers: Option<Box<Numbers>>,
    /// Dates and date-times as seconds since the epoch, likewise.
    instants: Option<Box<Numbers>>,
    int_range: Option<(i64, i64)>,
}

impl ColumnProfile {
    pub(crate) fn new(limits: ColumnLimits) -> Self {
        Self {
            limits,
            nulls: 0,
            types: TypeCounts::default(),
            distinct: DistinctCounter::Exact(HashSet::default()),
            top: FrequentItems::new(
                limits.top_values * COUNTERS_PER_TOP_VALUE,
                limits.max_value_bytes,
            ),
            text: TextBounds::default(),
            min_length: u64::MAX,
            max_length: 0,
            numbers: None,
            instants: None,
            int_range: None,
        }
    }

    /// Adds one cell: its bytes, valid UTF-8, all ASCII when `ascii` is set.
    #[inline]
    pub(crate) fn observe(&mut self, raw: &[u8], ascii: bool) {
        let cell = value::trim_bytes(raw);
        if value::is_null(cell) {
            self.nulls += 1;
            return;
        }
        let hash = hash_bytes(cell);
        // A value the top-value table holds was seen before: the distinct count has it.
        if !self.top.insert_bytes(hash, cell) {
            self.count_distinct(hash);
        }
        self.track_text(cell, ascii);
        match value::classify(cell) {
            Cell::Integer(i) => {
                self.types.integer += 1;
                let (lo, hi) = self.int_range.unwrap_or((i, i));
                self.int_range = Some((lo.min(i), hi.max(i)));
                self.add_number(i as f64);
            }
            Cell::Float(x) => {
                self.types.float += 1;
                self.add_number(x);
            }
            Cell::Boolean => self.types.boolean += 1,
            Cell::Date(days) => {
                self.types.date += 1;
                self.add_instant(days as f64 * 86_400.0);
            }
            Cell::Datetime(seconds) => {
                self.types.datetime += 1;
                self.add_instant(seconds);
            }
            Cell::String => {
                self.types.string += 1;
                // A string settles the type: the sketches of numbers can no longer be reported.
                if self.numbers.is_some() || self.instants.is_some() {
                    self.numbers = None;
                    self.instants = None;
                }
            }
        }
    }

    #[inline]
    fn add_number(&mut self, x: f64) {
        if self.types.string == 0 {
            self.numbers
                .get_or_insert_with(|| Box::new(Numbers::of_numbers()))
                .insert(x);
        }
    }

    #[inline]
    fn add_instant(&mut self, seconds: f64) {
        if self.types.string == 0 {
            self.instants
                .get_or_insert_with(|| Box::new(Numbers::of_instants()))
                .insert(seconds);
        }
    }

    #[inline]
    fn count_distinct(&mut self, hash: u64) {
        match &mut self.distinct {
            DistinctCounter::Exact(set) => {
                if set.insert(hash) && set.len() > self.limits.exact_distinct {
                    self.estimate_distinct();
                }
            }
            DistinctCounter::Estimated(hll) => hll.insert_hash(hash),
        }
    }

    /// Switches the exact distinct count to the HyperLogLog estimate.
    fn estimate_distinct(&mut self) {
        if let DistinctCounter::Exact(set) = &self.distinct {
            // Every distinct hash so far is in the set, and re-inserting is harmless, so the
            // sketch is exactly as if it had been fed from the start.
            let mut hll = HyperLogLog::new(HyperLogLog::DEFAULT_PRECISION);
            set.iter().for_each(|&h| hll.insert_hash(h));
            self.distinct = DistinctCounter::Estimated(Box::new(hll));
        }
    }

    #[inline]
    fn track_text(&mut self, cell: &[u8], ascii: bool) {
        let chars = if ascii {
            cell.len()
        } else {
            value::char_count(cell)
        } as u64;
        self.min_length = self.min_length.min(chars);
        self.max_length = self.max_length.max(chars);
        // Compare only the capped prefix: the stored bound is capped the same way.
        let capped = if cell.len() > self.limits.max_value_bytes {
            value::cap_bytes(cell, self.limits.max_value_bytes)
        } else {
            cell
        };
        let cut = capped.len() < cell.len();
        self.text.observe(prefix_key(capped), capped, cut);
    }

    /// Folds in the profile of other rows of the same column. Exact parts stay exact; the
    /// sketches keep their guarantees for the combined rows.
    pub(crate) fn merge(&mut self, other: ColumnProfile) {
        self.nulls += other.nulls;
        let t = &mut self.types;
        let o = &other.types;
        t.integer += o.integer;
        t.float += o.float;
        t.boolean += o.boolean;
        t.date += o.date;
        t.datetime += o.datetime;
        t.string += o.string;
        match (&mut self.distinct, other.distinct) {
            (DistinctCounter::Exact(mine), DistinctCounter::Exact(theirs)) => {
                mine.extend(theirs);
                if mine.len() > self.limits.exact_distinct {
                    self.estimate_distinct();
                }
            }
            (DistinctCounter::Estimated(mine), DistinctCounter::Estimated(theirs)) => {
                mine.merge(&theirs);
            }
            (DistinctCounter::Estimated(mine), DistinctCounter::Exact(theirs)) => {
                theirs.iter().for_each(|&h| mine.insert_hash(h));
            }
            (DistinctCounter::Exact(mine), DistinctCounter::Estimated(mut theirs)) => {
                mine.iter().for_each(|&h| theirs.insert_hash(h));
                self.distinct = DistinctCounter::Estimated(theirs);
            }
        }
        self.top.merge(&other.top);
        self.text.merge(&other.text);
        self.min_length = self.min_length.min(other.min_length);
        self.max_length = self.max_length.max(other.max_length);
        self.int_range = match (self.int_range, other.int_range) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (mine, theirs) => mine.or(theirs),
        };
        if self.types.string > 0 {
            self.numbers = None;
            self.instants = None;
            return;
        }
        for (mine, theirs) in [
            (&mut self.numbers, other.numbers),
            (&mut self.instants, other.instants),
        ] {
            match (mine.as_mut(), theirs) {
                (Some(mine), Some(theirs)) => mine.merge(&theirs),
                (None, theirs) => *mine = theirs,
                (Some(_), None) => {}
            }
        }
    }

    /// The column's statistics.
    pub(crate) fn finish(self, index: usize, name: String) -> Column {
        let kind = self.kind();
        let count = self.types.integer
            + self.types.float
            + self.types.boolean
            + self.types.date
            + self.types.datetime
            + self.types.string;
        let distinct = match &self.distinct {
            DistinctCounter::Exact(set) => Distinct {
                value: set.len() as u64,
                exact: true,
            },
            DistinctCounter::Estimated(hll) => Distinct {
                value: hll.estimate().round() as u64,
                exact: false,
            },
        };
        let mut column = Column {
            index,
            name,
            kind,
            count,
            nulls: self.nulls,
            type_counts: self.types.clone(),
            distinct,
            min: None,
            max: None,
            mean: None,
            stddev: None,
            quantiles: None,
            histogram: None,
            top_values: self.top.top(self.limits.top_values),
            min_length: (count > 0).then_some(self.min_length),
            max_length: (count > 0).then_some(self.max_length),
        };
        let numbers = match kind {
            ColumnType::Integer | ColumnType::Float => self.numbers.as_deref(),
            ColumnType::Date | ColumnType::Datetime => self.instants.as_deref(),
            _ => None,
        };
        match numbers {
            Some(numbers) => self.describe_numbers(&mut column, numbers),
            None => {
                if self.text.any {
                    column.min = Some(marked(&self.text.min, self.text.min_cut));
                    column.max = Some(marked(&self.text.max, self.text.max_cut));
                }
            }
        }
        column
    }

    fn describe_numbers(&self, column: &mut Column, numbers: &Numbers) {
        let kind = column.kind;
        let scalar = |x: f64| match kind {
            ColumnType::Integer => Scalar::Integer(x as i64),
            ColumnType::Date => Scalar::Text(value::format_date(x)),
            ColumnType::Datetime => Scalar::Text(value::format_datetime(x)),
            _ => Scalar::Float(x),
        };
        (column.min, column.max) = match (kind, self.int_range) {
            // Exact even beyond 2^53, where the f64 copies round.
            (ColumnType::Integer, Some((lo, hi))) => {
                (Some(Scalar::Integer(lo)), Some(Scalar::Integer(hi)))
            }
            _ => (Some(scalar(numbers.min)), Some(scalar(numbers.max))),
        };
        if matches!(kind, ColumnType::Integer | ColumnType::Float) {
            column.mean = numbers.moments.and_then(|m| m.mean());
            column.stddev = numbers.moments.and_then(|m| m.stddev());
        }
        column.quantiles = numbers
            .quantiles
            .quantiles(&QUANTILE_RANKS)
            .map(|q| Quantiles {
                p1: scalar(q[0]),
                p5: scalar(q[1]),
                p25: scalar(q[2]),
                p50: scalar(q[3]),
                p75: scalar(q[4]),
                p95: scalar(q[5]),
                p99: scalar(q[6]),
            });
        column.histogram = numbers.histogram.bins();
    }

    /// The most specific type all non-null cells share.
    fn kind(&self) -> ColumnType {
        let t = &self.types;
        let numeric = t.integer + t.float;
        let temporal = t.date + t.datetime;
        let total = numeric + temporal + t.boolean + t.string;
        match total {
            0 => ColumnType::Empty,
            _ if t.integer == total => ColumnType::Integer,
            _ if numeric == total => ColumnType::Float,
            _ if t.boolean == total => ColumnType::Boolean,
            _ if t.date == total => ColumnType::Date,
            _ if temporal == total => ColumnType::Datetime,
            _ => ColumnType::String,
        }
    }
}

/// A stored bound as reported: a cut value ends with `…`, as top values do.
fn marked(text: &[u8], cut: bool) -> Scalar {
    let mut text = String::from_utf8_lossy(text).into_owned();
    if cut {
        text.push('…');
    }
    Scalar::Text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_keys_order_like_the_bytes() {
        let words: [&[u8]; 12] = [
            b"",
            b"a",
            b"a\0",
            b"ab",
            b"abc",
            b"abcd",
            b"abcde",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefghi",
            b"b",
            b"\xC3\xA9",
        ];
        for a in words {
            for b in words {
                let (ka, kb) = (prefix_key(a), prefix_key(b));
                if ka < kb {
                    assert!(a < b, "{a:?} {b:?}");
                }
                if a == b {
                    assert_eq!(ka, kb);
                }
            }
        }
    }
}
