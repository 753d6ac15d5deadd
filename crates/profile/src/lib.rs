#![doc = include_str!("../README.md")]

mod column;
mod hash;
mod html;
mod parallel;
mod reader;
pub mod report;
mod run;
pub mod sketch;
mod sniff;
mod split;
mod value;

use column::{ColumnLimits, ColumnProfile};
use reader::{Next, RecordReader};
use report::{Dialect, Report, SCHEMA};
use run::{Counts, Job, check_cancel, report_progress};
use std::io::Read;
use std::sync::atomic::AtomicBool;

pub use html::{REPORT_CSS, render_body, render_html};

/// Bytes read from the start of the input to detect the dialect.
const SAMPLE_BYTES: usize = 256 * 1024;
/// Hashes kept for exact distinct counts, summed over all columns: past a column's share of
/// this budget (or `exact_distinct_limit`, if smaller) its count becomes an estimate. This is
/// what keeps a 1000-column file within the memory bound.
const DISTINCT_BUDGET: usize = 2_000_000;
/// Column states all threads together may hold: a column's state can reach ~70 KiB (the exact
/// distinct set just before it turns into an estimate, the sketches, the top-value table), so
/// this keeps a 1000-column file at two threads within ~140 MB; narrower files get more.
const MAX_COLUMN_STATES: usize = 2000;
/// Bytes kept of a column name.
const MAX_NAME_BYTES: usize = 256;

/// What can go wrong profiling a file. Problems with single records are not errors: they are
/// counted and listed in the report's `bad_rows`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Reading the input failed.
    #[error("reading the input failed: {0}")]
    Io(#[from] std::io::Error),
    /// The cancel flag was raised.
    #[error("profiling was cancelled")]
    Cancelled,
    /// The input has no content (at most a byte-order mark).
    #[error("the input is empty")]
    Empty,
    /// The input is recognisably not CSV text (binary, compressed, an image, …).
    #[error("the input is not CSV text: {reason}")]
    NotCsv {
        /// What the input looks like instead, and what to do about it when known.
        reason: String,
    },
    /// The input is text in an encoding other than UTF-8.
    #[error("the input is {encoding} text; convert it to UTF-8 first")]
    UnsupportedEncoding {
        /// The encoding recognised.
        encoding: &'static str,
    },
    /// The file has more columns than the limit.
    #[error("the file has {found} columns, more than the limit of {limit}")]
    TooManyColumns {
        /// Columns in the file (at least this many).
        found: usize,
        /// The limit from the options.
        limit: usize,
    },
    /// An option is out of range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option's field name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// How to read and summarise the input. `None` fields are detected from the input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProfileOptions {
    /// The field separator; detected among `,` `;` tab `|` when `None`.
    pub delimiter: Option<u8>,
    /// The quote character; `"` unless only `'` opens fields, when `None`.
    pub quote: Option<u8>,
    /// Whether the first record names the columns; detected when `None`.
    pub header: Option<bool>,
    /// More columns than this is an error (default 1000).
    pub max_columns: usize,
    /// Distinct values counted exactly per column before switching to an estimate
    /// (default 10 000; lowered for wide files, see the README).
    pub exact_distinct_limit: usize,
    /// Most frequent values reported per column (default 10).
    pub top_values: usize,
    /// Bytes kept of a value shown in the report — top values, text min and max (default 80).
    pub max_value_bytes: usize,
    /// Bad rows listed in the report; all are counted (default 100).
    pub max_bad_row_examples: usize,
    /// Bytes kept of one record; a longer record is a bad row (default 4 MiB).
    pub max_record_bytes: usize,
    /// Threads that profile the records (default: the available parallelism). With more than
    /// one, the calling thread reads the input and deals it out in chunks; the report is the
    /// same but for the sketches' choices within their stated error. Wide files use fewer,
    /// to stay within the memory bound (see the README).
    pub threads: usize,
    /// Bytes per chunk dealt to a thread (default 1 MiB); a chunk ends at a record end.
    pub chunk_bytes: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            delimiter: None,
            quote: None,
            header: None,
            max_columns: 1000,
            exact_distinct_limit: 10_000,
            top_values: 10,
            max_value_bytes: 80,
            max_bad_row_examples: 100,
            max_record_bytes: 4 << 20,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            chunk_bytes: 1 << 20,
        }
    }
}

impl ProfileOptions {
    fn validate(&self) -> Result<(), ProfileError> {
        let invalid = |name, reason: &str| {
            Err(ProfileError::InvalidOption {
                name,
                reason: reason.into(),
            })
        };
        let plain = |b: u8| b.is_ascii() && !matches!(b, b'\n' | b'\r' | 0);
        if self.delimiter.is_some_and(|d| !plain(d)) {
            return invalid(
                "delimiter",
                "must be an ASCII character other than a newline",
            );
        }
        if self.quote.is_some_and(|q| !plain(q)) {
            return invalid("quote", "must be an ASCII character other than a newline");
        }
        if self.delimiter.is_some() && self.delimiter == self.quote {
            return invalid("quote", "must differ from the delimiter");
        }
        if !(1..=100_000).contains(&self.max_columns) {
            return invalid("max_columns", "must be between 1 and 100000");
        }
        if self.top_values > 1000 {
            return invalid("top_values", "must be at most 1000");
        }
        if !(4..=1 << 20).contains(&self.max_value_bytes) {
            return invalid("max_value_bytes", "must be between 4 and 1048576");
        }
        if self.max_record_bytes < 1024 {
            return invalid("max_record_bytes", "must be at least 1024");
        }
        if !(1..=1024).contains(&self.threads) {
            return invalid("threads", "must be between 1 and 1024");
        }
        if self.chunk_bytes == 0 {
            return invalid("chunk_bytes", "must be at least 1");
        }
        Ok(())
    }
}

/// Profiles CSV from `input` in one streaming pass, in memory bounded by the options, not by
/// the input's size.
///
/// This blocks: run it on a blocking thread. With `threads` above one it starts that many
/// scoped threads and reads the input on the calling one. `progress` is called (on the
/// calling thread) with the bytes read so far, increasing, at least every 1024 records or
/// 256 KiB, and once at the end with the input's full size. Raising `cancel` stops the run
/// within 1024 records with [`ProfileError::Cancelled`].
pub fn profile<R: Read>(
    mut input: R,
    opts: &ProfileOptions,
    progress: &mut dyn FnMut(u64),
    cancel: &AtomicBool,
) -> Result<Report, ProfileError> {
    opts.validate()?;
    check_cancel(cancel)?;
    let (mut sample, complete) = read_sample(&mut input)?;
    let sample_len = sample.len() as u64;
    let bom = sample.starts_with(sniff::BOM);
    if bom {
        sample.drain(..sniff::BOM.len());
    }
    if sample.is_empty() {
        return Err(ProfileError::Empty);
    }
    sniff::check_text(&sample)?;
    let forced = sniff::Forced {
        delimiter: opts.delimiter,
        quote: opts.quote,
        header: opts.header,
    };
    let sniffed = sniff::sniff(&sample, complete, forced);
    let dialect = (sniffed.delimiter, sniffed.quote);
    let mut reader = RecordReader::new(input, sample, sample_len, dialect)
        .with_limits(opts.max_record_bytes, opts.max_columns + 1);
    let names = column_names(&mut reader, &sniffed, opts.max_columns)?;
    let share = DISTINCT_BUDGET / names.len().max(1);
    let job = Job {
        dialect,
        width: names.len(),
        limits: ColumnLimits {
            exact_distinct: opts.exact_distinct_limit.min(share),
            top_values: opts.top_values,
            max_value_bytes: opts.max_value_bytes,
        },
        opts,
    };
    let threads = opts.threads.min((MAX_COLUMN_STATES / job.width).max(1));
    let mut reported = 0;
    let (columns, counts, bytes) = if threads > 1 {
        parallel::run(reader, &job, threads, progress, &mut reported, cancel)?
    } else {
        let (columns, counts) =
            run::sequential(&mut reader, &job, progress, &mut reported, cancel)?;
        (columns, counts, reader.bytes_read())
    };
    check_cancel(cancel)?;
    report_progress(progress, &mut reported, bytes);
    let dialect = Dialect {
        delimiter: char::from(sniffed.delimiter),
        quote: char::from(sniffed.quote),
        header: sniffed.header,
        bom,
    };
    Ok(report(columns, counts, dialect, bytes, names))
}

/// Reads up to [`SAMPLE_BYTES`]; `true` if that is the whole input.
fn read_sample(input: &mut impl Read) -> Result<(Vec<u8>, bool), ProfileError> {
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    let n = input.take(SAMPLE_BYTES as u64).read_to_end(&mut sample)?;
    Ok((sample, n < SAMPLE_BYTES))
}

/// The header's cells, or generated names; refuses files wider than the limit.
fn column_names<R: Read>(
    reader: &mut RecordReader<R>,
    sniffed: &sniff::Sniffed,
    limit: usize,
) -> Result<Vec<String>, ProfileError> {
    let generated = |i: usize| format!("column_{}", i + 1);
    if !sniffed.header {
        if sniffed.width > limit {
            return Err(ProfileError::TooManyColumns {
                found: sniffed.width,
                limit,
            });
        }
        return Ok((0..sniffed.width.max(1)).map(generated).collect());
    }
    while reader.next_record()? == Next::Blank {}
    if reader.field_count() > limit {
        return Err(ProfileError::TooManyColumns {
            found: reader.field_count(),
            limit,
        });
    }
    let names = reader.fields().enumerate().map(|(i, cell)| {
        let cell = String::from_utf8_lossy(cell);
        match value::cap(cell.trim(), MAX_NAME_BYTES) {
            "" => generated(i),
            name => name.to_string(),
        }
    });
    Ok(names.collect())
}

/// The report from the column states and counts of a whole run.
fn report(
    columns: Vec<ColumnProfile>,
    counts: Counts,
    dialect: Dialect,
    bytes: u64,
    names: Vec<String>,
) -> Report {
    let columns = columns
        .into_iter()
        .zip(names)
        .enumerate()
        .map(|(index, (column, name))| column.finish(index, name))
        .collect();
    Report {
        schema: SCHEMA.to_string(),
        dialect,
        bytes,
        rows: counts.rows,
        blank_lines: counts.blank_lines,
        bad_rows: counts.bad,
        columns,
    }
}
