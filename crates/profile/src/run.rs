//! One profiling pass: what a record does to the column states and counts, and the loop that
//! reads records on the calling thread.

use crate::column::{ColumnLimits, ColumnProfile};
use crate::reader::{Next, Problem, RecordReader};
use crate::report::{BadRow, BadRowKind, BadRows};
use crate::{ProfileError, ProfileOptions};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

/// Records between checks of the cancel flag and progress reports.
pub(crate) const CHECK_EVERY: u32 = 1024;

/// What every part of a run shares: how to read records and what to keep of them.
pub(crate) struct Job<'a> {
    pub(crate) dialect: (u8, u8),
    /// Columns, from the header or the sampled width.
    pub(crate) width: usize,
    pub(crate) limits: ColumnLimits,
    pub(crate) opts: &'a ProfileOptions,
}

impl Job<'_> {
    /// Empty column states.
    pub(crate) fn columns(&self) -> Vec<ColumnProfile> {
        (0..self.width)
            .map(|_| ColumnProfile::new(self.limits))
            .collect()
    }
}

/// Everything a pass over records gathers besides the cells.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) rows: u64,
    pub(crate) blank_lines: u64,
    /// Bad rows, with the lines they start on as the reader counted them.
    pub(crate) bad: BadRows,
}

impl Counts {
    /// Adds the counts of the records that follow these in the file, whose reader numbered
    /// lines from 1 where the file had already `line_offset` line breaks.
    pub(crate) fn append(&mut self, later: Counts, line_offset: u64, max_examples: usize) {
        self.rows += later.rows;
        self.blank_lines += later.blank_lines;
        let (mine, theirs) = (&mut self.bad, later.bad);
        mine.count += theirs.count;
        let (k, t) = (&mut mine.by_kind, &theirs.by_kind);
        k.wrong_field_count += t.wrong_field_count;
        k.invalid_utf8 += t.invalid_utf8;
        k.unterminated_quote += t.unterminated_quote;
        k.too_long += t.too_long;
        let room = max_examples.saturating_sub(mine.examples.len());
        mine.examples
            .extend(theirs.examples.into_iter().take(room).map(|mut example| {
                example.line += line_offset;
                example
            }));
    }

    fn bad(&mut self, line: u64, kind: BadRowKind, message: String, max_examples: usize) {
        self.bad.count += 1;
        let counts = &mut self.bad.by_kind;
        *match kind {
            BadRowKind::WrongFieldCount => &mut counts.wrong_field_count,
            BadRowKind::InvalidUtf8 => &mut counts.invalid_utf8,
            BadRowKind::UnterminatedQuote => &mut counts.unterminated_quote,
            BadRowKind::TooLong => &mut counts.too_long,
        } += 1;
        if self.bad.examples.len() < max_examples {
            self.bad.examples.push(BadRow {
                line,
                kind,
                message,
            });
        }
    }
}

/// Profiles the reader's current record into `columns`, or counts it as a bad row.
#[inline]
pub(crate) fn record<R: Read>(
    columns: &mut [ColumnProfile],
    counts: &mut Counts,
    reader: &RecordReader<R>,
    opts: &ProfileOptions,
) {
    let line = reader.start_line();
    let max_examples = opts.max_bad_row_examples;
    match reader.problem() {
        Some(Problem::UnterminatedQuote) => {
            let message = "a quoted field opened in this record is never closed: \
                           the rest of the input was read into it";
            return counts.bad(
                line,
                BadRowKind::UnterminatedQuote,
                message.into(),
                max_examples,
            );
        }
        Some(Problem::TooLong) => {
            let message = format!("the record is longer than {} bytes", opts.max_record_bytes);
            return counts.bad(line, BadRowKind::TooLong, message, max_examples);
        }
        None => {}
    }
    if reader.field_count() != columns.len() {
        let message = format!(
            "expected {} fields, found {}",
            columns.len(),
            reader.field_count()
        );
        return counts.bad(line, BadRowKind::WrongFieldCount, message, max_examples);
    }
    // The fields are the record's bytes between ASCII separators (less doubled quotes), so
    // they are each valid UTF-8 exactly when the record is.
    let raw = reader.raw();
    let ascii = raw.is_ascii();
    if !ascii && std::str::from_utf8(raw).is_err() {
        let message = "the record is not valid UTF-8".into();
        return counts.bad(line, BadRowKind::InvalidUtf8, message, max_examples);
    }
    for (column, field) in columns.iter_mut().zip(reader.fields()) {
        column.observe(field, ascii);
    }
    counts.rows += 1;
}

/// Profiles every record of `reader` on this thread.
pub(crate) fn sequential<R: Read>(
    reader: &mut RecordReader<R>,
    job: &Job,
    progress: &mut dyn FnMut(u64),
    reported: &mut u64,
    cancel: &AtomicBool,
) -> Result<(Vec<ColumnProfile>, Counts), ProfileError> {
    let mut columns = job.columns();
    let mut counts = Counts::default();
    let mut since_check = 0;
    loop {
        since_check += 1;
        if since_check == CHECK_EVERY {
            since_check = 0;
            check_cancel(cancel)?;
            report_progress(progress, reported, reader.bytes_read());
        }
        match reader.next_record()? {
            Next::Record => record(&mut columns, &mut counts, reader, job.opts),
            Next::Blank => counts.blank_lines += 1,
            Next::End => return Ok((columns, counts)),
        }
    }
}

pub(crate) fn check_cancel(cancel: &AtomicBool) -> Result<(), ProfileError> {
    if cancel.load(Ordering::Relaxed) {
        Err(ProfileError::Cancelled)
    } else {
        Ok(())
    }
}

/// Calls `progress` with `bytes` if that is more than was reported before.
pub(crate) fn report_progress(progress: &mut dyn FnMut(u64), reported: &mut u64, bytes: u64) {
    if bytes > *reported {
        *reported = bytes;
        progress(bytes);
    }
}
