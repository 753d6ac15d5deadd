//! A streaming CSV record reader with bounded memory and physical line numbers.
//!
//! Written for the profiler rather than taken from the `csv` crate because the profiler needs
//! three things that crate does not give: the record buffer must stop growing (an unterminated
//! quote would otherwise pull a multi-GB remainder into one field), it must know that the
//! input ended inside quotes, and it must report the line each record starts on.
//!
//! Fields are handed out as slices of the read buffer; only a quoted field with doubled quotes
//! (or text after its closing quote) is copied, unescaped, into a scratch buffer.

use std::io::{self, Read};

const BUFFER_BYTES: usize = 256 * 1024;
/// Marks a field span that points into the scratch buffer rather than the read buffer.
const IN_SCRATCH: usize = 1 << (usize::BITS - 1);

/// What is wrong with a record beyond its field count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The input ended inside a quoted field.
    UnterminatedQuote,
    /// The record is longer than the byte limit; its fields were not kept.
    TooLong,
}

/// The result of [`RecordReader::next_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Record,
    /// An empty line, which is skipped rather than read as a record of one empty field.
    Blank,
    End,
}

/// The outcome of parsing the buffered bytes.
enum Parsed {
    Done(Next),
    /// The record runs past the buffered bytes.
    NeedMore,
}

/// Reads RFC 4180 records: fields separated by `delimiter`, optionally enclosed in `quote`
/// (doubled inside to stand for itself), records ended by LF, CRLF or CR; a newline inside
/// quotes belongs to the field. Lenient like most readers: a quote inside an unquoted field
/// and text after a closing quote are kept as they are.
///
/// A record longer than `max_record_bytes` (as in the input, without its line break) is
/// read past without keeping it, and reported as [`Problem::TooLong`].
pub(crate) struct RecordReader<R> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    bytes_read: u64,
    line: u64,
    delimiter: u8,
    quote: u8,
    pending_cr: bool,
    max_record_bytes: usize,
    max_fields: usize,
    /// The current record: where it is in `buf`, and its fields.
    record: (usize, usize),
    spans: Vec<(usize, usize)>,
    scratch: Vec<u8>,
    fields: usize,
    start_line: u64,
    problem: Option<Problem>,
}

impl<R: Read> RecordReader<R> {
    /// A reader over `prefix` (bytes already taken from `input`) followed by the rest of
    /// `input`. `already_read` counts bytes taken from the input before `prefix` ends.
    pub(crate) fn new(input: R, prefix: Vec<u8>, already_read: u64, dialect: (u8, u8)) -> Self {
        let end = prefix.len();
        Self {
            input,
            buf: prefix,
            pos: 0,
            end,
            eof: false,
            bytes_read: already_read,
            line: 1,
            delimiter: dialect.0,
            quote: dialect.1,
            pending_cr: false,
            max_record_bytes: 4 << 20,
            max_fields: 1 << 16,
            record: (0, 0),
            spans: Vec::new(),
            scratch: Vec::new(),
            fields: 0,
            start_line: 1,
            problem: None,
        }
    }

    /// Caps the bytes of one record and the fields whose bounds are kept.
    pub(crate) fn with_limits(mut self, max_record_bytes: usize, max_fields: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self.max_fields = max_fields;
        self
    }

    /// Bytes taken from the input so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The line (1-based) on which the current record starts.
    pub(crate) fn start_line(&self) -> u64 {
        self.start_line
    }

    /// Line breaks read so far (inside quoted fields too).
    pub(crate) fn line_breaks(&self) -> u64 {
        self.line - 1
    }

    /// How many fields the current record has (including any beyond the kept bounds).
    pub(crate) fn field_count(&self) -> usize {
        self.fields
    }

    /// What is wrong with the current record, if anything.
    pub(crate) fn problem(&self) -> Option<Problem> {
        self.problem
    }

    /// Bytes buffered and not yet read as records.
    #[cfg(test)]
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// The current record as it is in the input, without its line break; empty for a record
    /// with a problem.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.buf[self.record.0..self.record.1]
    }

    /// The unescaped bytes of the current record's kept fields.
    pub(crate) fn fields(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.spans.iter().map(|&(start, end)| {
            if start & IN_SCRATCH != 0 {
                &self.scratch[start & !IN_SCRATCH..end]
            } else {
                &self.buf[start..end]
            }
        })
    }

    /// Gives back the input and what is buffered but not yet read as records, with the state
    /// needed to carry on: `(input, bytes, bytes read, line breaks, skip a leading LF, at the
    /// end of the input)`.
    pub(crate) fn into_rest(mut self) -> (R, Vec<u8>, u64, u64, bool, bool) {
        self.buf.truncate(self.end);
        self.buf.drain(..self.pos);
        let line_breaks = self.line_breaks();
        (
            self.input,
            self.buf,
            self.bytes_read,
            line_breaks,
            self.pending_cr,
            self.eof,
        )
    }

    /// Reads the next record.
    pub(crate) fn next_record(&mut self) -> io::Result<Next> {
        self.spans.clear();
        self.scratch.clear();
        self.fields = 0;
        self.problem = None;
        self.record = (self.pos, self.pos);
        // A CRLF may be split across two reads: its LF still ends the previous record.
        if std::mem::take(&mut self.pending_cr) {
            if self.pos == self.end && !self.eof {
                self.fill()?;
            }
            if self.pos < self.end && self.buf[self.pos] == b'\n' {
                self.pos += 1;
            }
        }
        self.start_line = self.line;
        loop {
            match self.parse() {
                Parsed::Done(next) => return Ok(next),
                Parsed::NeedMore if self.end - self.pos > self.max_record_bytes => {
                    return self.skip_long_record();
                }
                Parsed::NeedMore => self.fill()?,
            }
        }
    }

    /// Parses one record from the buffered bytes, from `pos`.
    fn parse(&mut self) -> Parsed {
        self.spans.clear();
        self.scratch.clear();
        self.fields = 0;
        let (delimiter, quote, eof) = (self.delimiter, self.quote, self.eof);
        let start = self.pos;
        let len = self.end;
        let mut lines = 0;
        let mut p = start;
        // Each turn of the loop reads one field, `p` at its first byte.
        loop {
            if p == len {
                if !eof {
                    return Parsed::NeedMore;
                }
                if p == start {
                    return Parsed::Done(Next::End);
                }
                // The input ends right after a delimiter: one more, empty field.
                self.push(p, p);
                return self.finish(start, p, p, lines);
            }
            let buf = &self.buf[..len];
            let stop;
            if buf[p] == quote {
                let content = p + 1;
                let mut from = content;
                let mut escaped = false;
                let close = loop {
                    match find_byte(&buf[from..], quote) {
                        Some(i) => {
                            let q = from + i;
                            if q + 1 == len && !eof {
                                return Parsed::NeedMore;
                            }
                            if q + 1 < len && buf[q + 1] == quote {
                                escaped = true;
                                from = q + 2;
                                continue;
                            }
                            break Some(q);
                        }
                        None if !eof => return Parsed::NeedMore,
                        None => break None,
                    }
                };
                let Some(close) = close else {
                    // The input ended inside the quotes: the rest of it is this field.
                    lines += count_lf(&buf[content..]);
                    if escaped {
                        self.push_unescaped(content, len, (len, len));
                    } else {
                        self.push(content, len);
                    }
                    self.problem = Some(Problem::UnterminatedQuote);
                    return self.finish(start, len, len, lines);
                };
                lines += count_lf(&buf[content..close]);
                let after = close + 1;
                if after == len || is_stop(buf[after], delimiter) {
                    if escaped {
                        self.push_unescaped(content, close, (after, after));
                    } else {
                        self.push(content, close);
                    }
                    stop = after;
                } else {
                    // Text after the closing quote is kept, up to the end of the field.
                    let s = find_stop(buf, after, delimiter);
                    if s == len && !eof {
                        return Parsed::NeedMore;
                    }
                    self.push_unescaped(content, close, (after, s));
                    stop = s;
                }
            } else {
                let s = find_stop(buf, p, delimiter);
                if s == len && !eof {
                    return Parsed::NeedMore;
                }
                if s < len && s == start && buf[s] != delimiter {
                    // A line break where the record would start: a blank line.
                    let next = self.after_break(s);
                    self.pos = next;
                    self.line += 1;
                    return Parsed::Done(Next::Blank);
                }
                self.push(p, s);
                stop = s;
            }
            if stop == len {
                return self.finish(start, len, len, lines);
            }
            if self.buf[stop] == delimiter {
                p = stop + 1;
                continue;
            }
            let next = self.after_break(stop);
            return self.finish(start, stop, next, lines + 1);
        }
    }

    /// Where the next record starts after the line break at `at`; notes a CR whose LF may
    /// come with the next read.
    fn after_break(&mut self, at: usize) -> usize {
        if self.buf[at] == b'\r' {
            if at + 1 < self.end {
                return at + 1 + usize::from(self.buf[at + 1] == b'\n');
            }
            self.pending_cr = !self.eof;
        }
        at + 1
    }

    fn finish(&mut self, start: usize, end: usize, next: usize, lines: u64) -> Parsed {
        self.record = (start, end);
        self.pos = next;
        self.line += lines;
        if end - start > self.max_record_bytes {
            self.spans.clear();
            self.fields = 0;
            self.record = (start, start);
            self.problem.get_or_insert(Problem::TooLong);
        }
        Parsed::Done(Next::Record)
    }

    fn push(&mut self, start: usize, end: usize) {
        self.fields += 1;
        if self.spans.len() < self.max_fields {
            self.spans.push((start, end));
        }
    }

    /// Adds a quoted field whose content is `buf[content..close]` followed by the unquoted
    /// text `buf[tail.0..tail.1]`, unescaping doubled quotes into the scratch buffer.
    fn push_unescaped(&mut self, content: usize, close: usize, tail: (usize, usize)) {
        let from = self.scratch.len();
        let mut rest = &self.buf[content..close];
        while let Some(i) = memchr::memchr(self.quote, rest) {
            // A quote inside the content is the first of a doubled pair: keep one.
            self.scratch.extend_from_slice(&rest[..=i]);
            rest = rest.get(i + 2..).unwrap_or_default();
        }
        self.scratch.extend_from_slice(rest);
        self.scratch.extend_from_slice(&self.buf[tail.0..tail.1]);
        let to = self.scratch.len();
        self.push(from | IN_SCRATCH, to);
    }

    /// Reads past a record longer than the limit, keeping nothing of it.
    fn skip_long_record(&mut self) -> io::Result<Next> {
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            FieldStart,
            Unquoted,
            Quoted,
            QuoteInQuoted,
        }
        let (delimiter, quote) = (self.delimiter, self.quote);
        let mut state = State::FieldStart;
        let mut lines = 0;
        let mut i = self.pos;
        let broke_at = loop {
            if i == self.end {
                self.pos = i;
                if self.eof {
                    break None;
                }
                self.fill()?;
                i = self.pos;
                continue;
            }
            let b = self.buf[i];
            match state {
                State::FieldStart if b == quote => state = State::Quoted,
                State::Quoted if b == quote => state = State::QuoteInQuoted,
                State::Quoted => lines += u64::from(b == b'\n'),
                State::QuoteInQuoted if b == quote => state = State::Quoted,
                // Unquoted text, including the first byte of a field and text after a
                // closing quote.
                _ if b == delimiter => state = State::FieldStart,
                _ if b == b'\n' || b == b'\r' => break Some(i),
                _ => state = State::Unquoted,
            }
            i += 1;
        };
        self.spans.clear();
        self.scratch.clear();
        self.fields = 0;
        self.record = (self.pos, self.pos);
        match broke_at {
            Some(at) => {
                self.pos = self.after_break(at);
                self.line += lines + 1;
                self.problem = Some(Problem::TooLong);
            }
            None => {
                self.line += lines;
                self.problem = Some(if state == State::Quoted {
                    Problem::UnterminatedQuote
                } else {
                    Problem::TooLong
                });
            }
        }
        self.record = (self.pos, self.pos);
        Ok(Next::Record)
    }

    /// Keeps the bytes from `pos` and reads more after them; sets `eof` at the end.
    fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.record = (0, 0);
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            // A record longer than the buffer: room for it, up to the record limit.
            let limit = self.max_record_bytes.saturating_add(BUFFER_BYTES);
            let grown = (self.buf.len() * 2).clamp(BUFFER_BYTES, limit.max(BUFFER_BYTES));
            self.buf.resize(grown.max(self.end + 1), 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl RecordReader<io::Empty> {
    /// A reader over `data[..len]`, a whole part of the input that starts at a record.
    pub(crate) fn over_chunk(data: Vec<u8>, len: usize, dialect: (u8, u8)) -> Self {
        let mut reader = Self::new(io::empty(), data, 0, dialect);
        reader.end = len;
        reader.eof = true;
        reader
    }

    /// The buffer given to [`Self::over_chunk`], for reuse.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// The first `byte` in `buf`: eight bytes at a time over the first words, where short
/// quoted fields end, then a vector search.
#[inline]
fn find_byte(buf: &[u8], byte: u8) -> Option<usize> {
    let pattern = ONES * u64::from(byte);
    let mut i = 0;
    while i < 32
        && let Some(word) = buf.get(i..i + 8)
    {
        let found = zeros(u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ pattern);
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    memchr::memchr(byte, &buf[i..]).map(|k| i + k)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Marks the zero bytes of `x` with their high bit. The lowest mark is always exact (a
/// borrow can only mark bytes above a true zero), which is all a search needs.
#[inline]
fn zeros(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Whether `b` ends an unquoted field.
#[inline]
fn is_stop(b: u8, delimiter: u8) -> bool {
    b == delimiter || b == b'\n' || b == b'\r'
}

/// The first delimiter or line break in `buf` from `from`, or `buf.len()`.
#[inline]
fn find_stop(buf: &[u8], from: usize, delimiter: u8) -> usize {
    // Eight bytes at a time: fields are too short for a vector search to pay its set-up.
    let (d, lf, cr) = (ONES * u64::from(delimiter), ONES * 0x0A, ONES * 0x0D);
    let mut i = from;
    while let Some(word) = buf.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let found = zeros(w ^ d) | zeros(w ^ lf) | zeros(w ^ cr);
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && !is_stop(buf[i], delimiter) {
        i += 1;
    }
    i
}

fn count_lf(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Reads every record as (start line, fields, problem), blank lines left out.
    fn read_all(
        input: &[u8],
        delimiter: u8,
        chunk: usize,
    ) -> Vec<(u64, Vec<String>, Option<Problem>)> {
        let reader = ChunkedReader { data: input, chunk };
        let mut r = RecordReader::new(reader, Vec::new(), 0, (delimiter, b'"'));
        let mut out = Vec::new();
        loop {
            match r.next_record().unwrap() {
                Next::Record => {
                    let fields = r
                        .fields()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect();
                    out.push((r.start_line(), fields, r.problem()));
                }
                Next::Blank => {}
                Next::End => return out,
            }
        }
    }

    /// Hands out the input a few bytes at a time to exercise records split across reads.
    struct ChunkedReader<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for ChunkedReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn strings(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn quoting_newlines_and_line_numbers() {
        let input = b"a,b\r\n\"x,1\",\"multi\nline\"\r\n\n\"he said \"\"hi\"\"\",3\rlast,";
        for chunk in [1, 2, 3, 1000] {
            let records = read_all(input, b',', chunk);
            assert_eq!(records.len(), 4);
            assert_eq!(records[0], (1, strings(&["a", "b"]), None));
            assert_eq!(records[1], (2, strings(&["x,1", "multi\nline"]), None));
            assert_eq!(records[2], (5, strings(&["he said \"hi\"", "3"]), None));
            assert_eq!(records[3], (6, strings(&["last", ""]), None));
        }
    }

    #[test]
    fn text_after_a_closing_quote_is_kept() {
        let records = read_all(b"\"a\"\"b\"c\"d,e\n\"x\"y\n", b',', 1000);
        assert_eq!(records[0].1, strings(&["a\"bc\"d", "e"]));
        assert_eq!(records[1].1, strings(&["xy"]));
    }

    #[test]
    fn unterminated_quote_is_reported_and_bounded() {
        let mut input = b"a,b\n\"open,".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend(b"\n\n");
        let mut r = RecordReader::new(&input[..], Vec::new(), 0, (b',', b'"')).with_limits(1000, 8);
        assert_eq!(r.next_record().unwrap(), Next::Record);
        assert_eq!(r.next_record().unwrap(), Next::Record);
        assert_eq!(
            (r.start_line(), r.problem(), r.field_count()),
            (2, Some(Problem::UnterminatedQuote), 0)
        );
        assert!(r.buf.len() < 1000 + BUFFER_BYTES + 1, "{}", r.buf.len());
        assert_eq!(r.next_record().unwrap(), Next::End);
        assert_eq!(r.bytes_read(), input.len() as u64);
        assert_eq!(r.line_breaks(), 3);
    }

    #[test]
    fn long_records_are_skipped_and_reading_goes_on() {
        let long = "y".repeat(5000);
        let input = format!("a,b\n1,\"{long}\n{long}\"\r\n2,{long}\r3,x\n");
        for chunk in [7, 1000, 100_000] {
            let reader = ChunkedReader {
                data: input.as_bytes(),
                chunk,
            };
            let mut r = RecordReader::new(reader, Vec::new(), 0, (b',', b'"')).with_limits(1024, 8);
            let mut got = Vec::new();
            while r.next_record().unwrap() != Next::End {
                let fields: Vec<String> = r
                    .fields()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                got.push((r.start_line(), fields, r.problem()));
            }
            assert_eq!(
                got,
                [
                    (1, strings(&["a", "b"]), None),
                    (2, vec![], Some(Problem::TooLong)),
                    (4, vec![], Some(Problem::TooLong)),
                    (5, strings(&["3", "x"]), None),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn agrees_with_the_csv_crate_on_random_records() {
        let mut rng = StdRng::seed_from_u64(7);
        let alphabet = ['a', 'Z', '0', ' ', ',', ';', '"', '\n', '\r', 'é', '\t'];
        for round in 0..200 {
            let delimiter = [b',', b';', b'\t', b'|'][round % 4];
            let width = rng.random_range(1..6);
            let rows: Vec<Vec<String>> = (0..rng.random_range(1..30))
                .map(|_| {
                    (0..width)
                        .map(|_| {
                            let len = rng.random_range(0..8);
                            (0..len)
                                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                                .collect()
                        })
                        .collect()
                })
                .collect();
            let mut writer = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(if round % 2 == 0 {
                    csv::Terminator::CRLF
                } else {
                    csv::Terminator::Any(b'\n')
                })
                .from_writer(Vec::new());
            for row in &rows {
                writer.write_record(row).unwrap();
            }
            let bytes = writer.into_inner().unwrap();
            // The csv crate writes a lone empty field as `""` so no record is lost to blank lines.
            let got: Vec<Vec<String>> = read_all(&bytes, delimiter, rng.random_range(1..64))
                .into_iter()
                .map(|r| r.1)
                .collect();
            assert_eq!(
                got,
                rows,
                "round {round}: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
