//! The profile report: the serialized schema `forklift.data.profile/v1`.
//!
//! Every field is documented in the crate README, which is the schema's reference.

use crate::sketch::TopEntry;
use serde::{Deserialize, Serialize};

/// The value of the top-level `schema` field.
pub const SCHEMA: &str = "forklift.data.profile/v1";

/// A profile of one CSV file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// How the file was read.
    pub dialect: Dialect,
    /// Bytes read from the input, including the header, a BOM and bad rows.
    pub bytes: u64,
    /// Data rows profiled: records other than the header, blank lines and bad rows.
    pub rows: u64,
    /// Empty lines, skipped.
    pub blank_lines: u64,
    /// Records that could not be profiled.
    pub bad_rows: BadRows,
    /// One entry per column, in file order.
    pub columns: Vec<Column>,
}

/// The CSV dialect the file was read with (detected unless set in the options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialect {
    /// The field separator: one of `,` `;` `\t` `|` when detected.
    pub delimiter: char,
    /// The quote character: `"` or `'`.
    pub quote: char,
    /// Whether the first record was read as column names.
    pub header: bool,
    /// Whether the input began with a UTF-8 byte-order mark (which was skipped).
    pub bom: bool,
}

/// Records that were skipped, counted all, listed up to a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRows {
    /// How many records were skipped.
    pub count: u64,
    /// The count per kind of problem.
    pub by_kind: BadRowCounts,
    /// The first of them, in file order.
    pub examples: Vec<BadRow>,
}

/// Skipped records per kind of problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRowCounts {
    /// Records with more or fewer fields than there are columns.
    pub wrong_field_count: u64,
    /// Records that are not valid UTF-8.
    pub invalid_utf8: u64,
    /// A record whose quoted field was still open at the end of the input.
    pub unterminated_quote: u64,
    /// Records longer than the byte limit.
    pub too_long: u64,
}

/// One skipped record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRow {
    /// The line (1-based) on which the record starts.
    pub line: u64,
    /// What is wrong with it.
    pub kind: BadRowKind,
    /// A sentence saying what is wrong, for people.
    pub message: String,
}

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRowKind {
    /// More or fewer fields than there are columns.
    WrongFieldCount,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// A quoted field still open at the end of the input.
    UnterminatedQuote,
    /// Longer than the byte limit.
    TooLong,
}

/// The inferred type of a column: the most specific type every non-null value parses as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Every value is null.
    Empty,
    /// Whole numbers that fit in 64 bits.
    Integer,
    /// Decimal numbers (a mix of integers and decimals is `float`).
    Float,
    /// `true`/`false`/`yes`/`no`, any case.
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// ISO 8601 date and time (a mix of dates and date-times is `datetime`).
    Datetime,
    /// Anything else.
    String,
}

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Position in the file, from 0.
    pub index: usize,
    /// The header cell, or `column_<n>` (from 1) without a header or for an empty header cell.
    pub name: String,
    /// The inferred type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Non-null cells.
    pub count: u64,
    /// Null cells; `count + nulls` is the report's `rows`.
    pub nulls: u64,
    /// Non-null cells per recognised type.
    pub type_counts: TypeCounts,
    /// Distinct non-null values.
    pub distinct: Distinct,
    /// The smallest value: a number for numeric columns, otherwise text (dates in ISO form,
    /// strings by byte order).
    pub min: Option<Scalar>,
    /// The largest value, like `min`.
    pub max: Option<Scalar>,
    /// The mean, for `integer` and `float` columns.
    pub mean: Option<f64>,
    /// The sample standard deviation (denominator `n - 1`), for numeric columns of 2+ values.
    pub stddev: Option<f64>,
    /// Approximate quantiles, for numeric, date and datetime columns.
    pub quantiles: Option<Quantiles>,
    /// Exact counts in equal-width bins, for numeric, date and datetime columns.
    pub histogram: Option<Histogram>,
    /// The most frequent values, most frequent first.
    pub top_values: Vec<TopEntry>,
    /// The shortest non-null value, in characters.
    pub min_length: Option<u64>,
    /// The longest non-null value, in characters.
    pub max_length: Option<u64>,
}

/// Non-null cells per recognised type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCounts {
    /// Cells that are whole numbers.
    pub integer: u64,
    /// Cells that are decimal numbers.
    pub float: u64,
    /// Cells that are booleans.
    pub boolean: u64,
    /// Cells that are dates.
    pub date: u64,
    /// Cells that are date-times.
    pub datetime: u64,
    /// Other cells.
    pub string: u64,
}

/// A count of distinct values, exact or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distinct {
    /// The number of distinct values.
    pub value: u64,
    /// `true` when counted exactly, `false` for a HyperLogLog estimate.
    pub exact: bool,
}

/// A value in the report: JSON number for numeric columns, string otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A whole number.
    Integer(i64),
    /// A decimal number.
    Float(f64),
    /// Text, dates and date-times.
    Text(String),
}

/// Quantiles of a column (the smallest value at or above each fraction of the values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// 1st percentile.
    pub p1: Scalar,
    /// 5th percentile.
    pub p5: Scalar,
    /// 25th percentile (lower quartile).
    pub p25: Scalar,
    /// Median.
    pub p50: Scalar,
    /// 75th percentile (upper quartile).
    pub p75: Scalar,
    /// 95th percentile.
    pub p95: Scalar,
    /// 99th percentile.
    pub p99: Scalar,
}

/// The ranks reported in [`Quantiles`], in field order.
pub const QUANTILE_RANKS: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// Equal-width bins: bin `i` covers `[start + i·width, start + (i+1)·width)`.
///
/// For date and datetime columns the axis is seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The lower edge of the first bin.
    pub start: f64,
    /// The width of every bin.
    pub width: f64,
    /// How many values fall in each bin.
    pub counts: Vec<u64>,
}
