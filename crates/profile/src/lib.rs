#![doc = include_str!("../README.md")]

mod column;
mod hash;
mod html;
mod reader;
pub mod report;
pub mod sketch;
mod sniff;
mod value;

use column::{ColumnLimits, ColumnProfile};
use reader::{Next, Problem, RecordReader};
use report::{BadRow, BadRowKind, BadRows, Dialect, Report, SCHEMA};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

pub use html::{render_body, render_html};

/// Bytes read from the start of the input to detect the dialect.
const SAMPLE_BYTES: usize = 256 * 1024;
/// Hashes kept for exact distinct counts, summed over all columns: past a column's share of
/// this budget (or `exact_distinct_limit`, if smaller) its count becomes an estimate. This is
/// what keeps a 1000-column file within the memory bound.
const DISTINCT_BUDGET: usize = 2_000_000;
/// Records between checks of the cancel flag and progress reports.
const CHECK_EVERY: u32 = 1024;
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
        Ok(())
    }
}

/// Profiles CSV from `input` in one streaming pass, in memory bounded by the options, not by
/// the input's size.
///
/// This blocks: run it on a blocking thread. `progress` is called with the bytes read so far,
/// increasing, at least every 1024 records and once at the end with the input's full size.
/// Raising `cancel` stops the run within 1024 records with [`ProfileError::Cancelled`].
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
    let mut reader = RecordReader::new(
        input,
        sample,
        sample_len,
        (sniffed.delimiter, sniffed.quote),
    )
    .with_limits(opts.max_record_bytes, opts.max_columns + 1);
    let names = column_names(&mut reader, &sniffed, opts.max_columns)?;
    let share = DISTINCT_BUDGET / names.len().max(1);
    let limits = ColumnLimits {
        exact_distinct: opts.exact_distinct_limit.min(share),
        top_values: opts.top_values,
        max_value_bytes: opts.max_value_bytes,
    };
    let mut run = Run {
        columns: names.iter().map(|_| ColumnProfile::new(limits)).collect(),
        rows: 0,
        blank_lines: 0,
        bad: BadRows::default(),
        opts,
    };
    let mut reported = 0;
    let mut since_check = 0;
    loop {
        since_check += 1;
        if since_check == CHECK_EVERY {
            since_check = 0;
            check_cancel(cancel)?;
            report_progress(progress, &mut reported, reader.bytes_read());
        }
        match reader.next_record()? {
            Next::Record => run.record(&reader),
            Next::Blank => run.blank_lines += 1,
            Next::End => break,
        }
    }
    check_cancel(cancel)?;
    report_progress(progress, &mut reported, reader.bytes_read());
    let dialect = Dialect {
        delimiter: char::from(sniffed.delimiter),
        quote: char::from(sniffed.quote),
        header: sniffed.header,
        bom,
    };
    Ok(run.finish(dialect, reader.bytes_read(), names))
}

fn check_cancel(cancel: &AtomicBool) -> Result<(), ProfileError> {
    if cancel.load(Ordering::Relaxed) {
        Err(ProfileError::Cancelled)
    } else {
        Ok(())
    }
}

fn report_progress(progress: &mut dyn FnMut(u64), reported: &mut u64, bytes: u64) {
    if bytes > *reported {
        *reported = bytes;
        progress(bytes);
    }
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
    let mut start = 0;
    let names = reader.ends().iter().enumerate().map(|(i, &end)| {
        let cell = String::from_utf8_lossy(&reader.data()[start..end]);
        start = end;
        match value::cap(cell.trim(), MAX_NAME_BYTES) {
            "" => generated(i),
            name => name.to_string(),
        }
    });
    Ok(names.collect())
}

/// The state of one profiling run between records.
struct Run<'a> {
    columns: Vec<ColumnProfile>,
    rows: u64,
    blank_lines: u64,
    bad: BadRows,
    opts: &'a ProfileOptions,
}

impl Run<'_> {
    fn record<R: Read>(&mut self, reader: &RecordReader<R>) {
        let line = reader.start_line();
        match reader.problem() {
            Some(Problem::UnterminatedQuote) => {
                let message = "a quoted field opened in this record is never closed: \
                               the rest of the input was read into it";
                return self.bad(line, BadRowKind::UnterminatedQuote, message.into());
            }
            Some(Problem::TooLong) => {
                let message = format!(
                    "the record is longer than {} bytes",
                    self.opts.max_record_bytes
                );
                return self.bad(line, BadRowKind::TooLong, message);
            }
            None => {}
        }
        if reader.field_count() != self.columns.len() {
            let message = format!(
                "expected {} fields, found {}",
                self.columns.len(),
                reader.field_count()
            );
            return self.bad(line, BadRowKind::WrongFieldCount, message);
        }
        let ends = reader.ends();
        // Each field must be valid UTF-8 on its own, not just the fields back to back.
        let text = match std::str::from_utf8(reader.data()) {
            Ok(text) if ends.iter().all(|&end| text.is_char_boundary(end)) => text,
            _ => {
                return self.bad(
                    line,
                    BadRowKind::InvalidUtf8,
                    "the record is not valid UTF-8".into(),
                );
            }
        };
        let mut start = 0;
        for (column, &end) in self.columns.iter_mut().zip(ends) {
            column.observe(&text[start..end]);
            start = end;
        }
        self.rows += 1;
    }

    fn bad(&mut self, line: u64, kind: BadRowKind, message: String) {
        self.bad.count += 1;
        let counts = &mut self.bad.by_kind;
        *match kind {
            BadRowKind::WrongFieldCount => &mut counts.wrong_field_count,
            BadRowKind::InvalidUtf8 => &mut counts.invalid_utf8,
            BadRowKind::UnterminatedQuote => &mut counts.unterminated_quote,
            BadRowKind::TooLong => &mut counts.too_long,
        } += 1;
        if self.bad.examples.len() < self.opts.max_bad_row_examples {
            self.bad.examples.push(BadRow {
                line,
                kind,
                message,
            });
        }
    }

    fn finish(self, dialect: Dialect, bytes: u64, names: Vec<String>) -> Report {
        let columns = self
            .columns
            .into_iter()
            .zip(names)
            .enumerate()
            .map(|(index, (column, name))| column.finish(index, name))
            .collect();
        Report {
            schema: SCHEMA.to_string(),
            dialect,
            bytes,
            rows: self.rows,
            blank_lines: self.blank_lines,
            bad_rows: self.bad,
            columns,
        }
    }
}
