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
struct Numbers {
    moments: Moments,
    quantiles: Kll,
    histogram: StreamingHistogram,
    min: f64,
    max: f64,
}

impl Numbers {
    fn new() -> Self {
        Self {
            moments: Moments::default(),
            quantiles: Kll::new(Kll::DEFAULT_K),
            histogram: StreamingHistogram::new(HISTOGRAM_BINS),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn insert(&mut self, x: f64) {
        self.moments.insert(x);
        self.quantiles.insert(x);
        self.histogram.insert(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }
}

/// Everything the profiler keeps about one column while reading.
pub(crate) struct ColumnProfile {
    limits: ColumnLimits,
    nulls: u64,
    types: TypeCounts,
    distinct: DistinctCounter,
    top: FrequentItems,
    /// The smallest and largest capped value, and whether each was cut.
    text_min: Option<(String, bool)>,
    text_max: Option<(String, bool)>,
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
            text_min: None,
            text_max: None,
            min_length: u64::MAX,
            max_length: 0,
            numbers: None,
            instants: None,
            int_range: None,
        }
    }

    /// Adds one cell.
    pub(crate) fn observe(&mut self, raw: &str) {
        let cell = value::trim(raw);
        if value::is_null(cell) {
            self.nulls += 1;
            return;
        }
        let hash = hash_bytes(cell.as_bytes());
        self.count_distinct(hash);
        self.top.insert(hash, cell);
        self.track_text(cell);
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
                self.numbers = None;
                self.instants = None;
            }
        }
    }

    fn add_number(&mut self, x: f64) {
        if self.types.string == 0 {
            self.numbers
                .get_or_insert_with(|| Box::new(Numbers::new()))
                .insert(x);
        }
    }

    fn add_instant(&mut self, seconds: f64) {
        if self.types.string == 0 {
            self.instants
                .get_or_insert_with(|| Box::new(Numbers::new()))
                .insert(seconds);
        }
    }

    fn count_distinct(&mut self, hash: u64) {
        match &mut self.distinct {
            DistinctCounter::Exact(set) => {
                set.insert(hash);
                if set.len() > self.limits.exact_distinct {
                    // Every distinct hash so far is in the set, and re-inserting is harmless,
                    // so the sketch is exactly as if it had been fed from the start.
                    let mut hll = HyperLogLog::new(HyperLogLog::DEFAULT_PRECISION);
                    set.iter().for_each(|&h| hll.insert_hash(h));
                    self.distinct = DistinctCounter::Estimated(Box::new(hll));
                }
            }
            DistinctCounter::Estimated(hll) => hll.insert_hash(hash),
        }
    }

    fn track_text(&mut self, cell: &str) {
        let chars = if cell.is_ascii() {
            cell.len()
        } else {
            cell.chars().count()
        } as u64;
        self.min_length = self.min_length.min(chars);
        self.max_length = self.max_length.max(chars);
        // Compare only the capped prefix: the stored bound is capped the same way.
        let capped = value::cap(cell, self.limits.max_value_bytes);
        let cut = capped.len() < cell.len();
        if self
            .text_min
            .as_ref()
            .is_none_or(|(m, _)| capped < m.as_str())
        {
            store(&mut self.text_min, capped, cut);
        }
        if self
            .text_max
            .as_ref()
            .is_none_or(|(m, _)| capped > m.as_str())
        {
            store(&mut self.text_max, capped, cut);
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
                column.min = self.text_min.map(marked);
                column.max = self.text_max.map(marked);
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
            column.mean = numbers.moments.mean();
            column.stddev = numbers.moments.stddev();
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

/// Replaces a stored bound, reusing its allocation.
fn store(slot: &mut Option<(String, bool)>, text: &str, cut: bool) {
    let (stored, was_cut) = slot.get_or_insert_with(Default::default);
    stored.clear();
    stored.push_str(text);
    *was_cut = cut;
}

/// A stored bound as reported: a cut value ends with `…`, as top values do.
fn marked((mut text, cut): (String, bool)) -> Scalar {
    if cut {
        text.push('…');
    }
    Scalar::Text(text)
}
