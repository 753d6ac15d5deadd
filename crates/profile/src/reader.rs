//! A streaming CSV record reader with bounded memory and physical line numbers.
//!
//! Written for the profiler rather than taken from the `csv` crate because the profiler needs
//! three things that crate does not give: the record buffer must stop growing (an unterminated
//! quote would otherwise pull a multi-GB remainder into one field), it must know that the
//! input ended inside quotes, and it must report the line each record starts on.

use std::io::{self, Read};

const BUFFER_BYTES: usize = 256 * 1024;

/// What is wrong with a record beyond its field count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The input ended inside a quoted field.
    UnterminatedQuote,
    /// The record is longer than the byte limit; its fields were cut.
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

#[derive(Clone, Copy)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Reads RFC 4180 records: fields separated by `delimiter`, optionally enclosed in `quote`
/// (doubled inside to stand for itself), records ended by LF, CRLF or CR; a newline inside
/// quotes belongs to the field. Lenient like most readers: a quote inside an unquoted field
/// and text after a closing quote are kept as they are.
pub(crate) struct RecordReader<R> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    bytes_read: u64,
    line: u64,
    delimiter: u8,
    quote: u8,
    /// The bytes that end an unquoted field: the delimiter, CR and LF.
    stops: [bool; 256],
    pending_cr: bool,
    max_record_bytes: usize,
    max_fields: usize,
    data: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
    start_line: u64,
    problem: Option<Problem>,
}

impl<R: Read> RecordReader<R> {
    /// A reader over `prefix` (bytes already taken from `input`) followed by the rest of
    /// `input`. `already_read` counts bytes taken from the input before `prefix` ends.
    pub(crate) fn new(input: R, prefix: Vec<u8>, already_read: u64, dialect: (u8, u8)) -> Self {
        let end = prefix.len();
        let mut buf = prefix;
        if buf.len() < BUFFER_BYTES {
            buf.resize(BUFFER_BYTES, 0);
        }
        let mut stops = [false; 256];
        for b in [dialect.0, b'\n', b'\r'] {
            stops[b as usize] = true;
        }
        Self {
            input,
            buf,
            stops,
            pos: 0,
            end,
            bytes_read: already_read,
            line: 1,
            delimiter: dialect.0,
            quote: dialect.1,
            pending_cr: false,
            max_record_bytes: 4 << 20,
            max_fields: 1 << 16,
            data: Vec::new(),
            ends: Vec::new(),
            fields: 0,
            start_line: 1,
            problem: None,
        }
    }

    /// Caps the bytes kept per record and the fields whose bounds are kept.
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

    /// How many fields the current record has (including any beyond the kept bounds).
    pub(crate) fn field_count(&self) -> usize {
        self.fields
    }

    /// What is wrong with the current record, if anything.
    pub(crate) fn problem(&self) -> Option<Problem> {
        self.problem
    }

    /// The unescaped bytes of the current record's fields, back to back.
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Where each kept field ends in [`Self::data`].
    pub(crate) fn ends(&self) -> &[usize] {
        &self.ends
    }

    /// Reads the next record into the reader's buffers.
    pub(crate) fn next_record(&mut self) -> io::Result<Next> {
        self.data.clear();
        self.ends.clear();
        self.fields = 0;
        self.problem = None;
        // A CRLF may be split across two reads: its LF still ends the previous record.
        if std::mem::take(&mut self.pending_cr) && self.fill()? && self.buf[self.pos] == b'\n' {
            self.pos += 1;
        }
        self.start_line = self.line;
        let mut state = State::FieldStart;
        let mut started = false;
        let mut field_quoted = false;
        loop {
            if !self.fill()? {
                if !started {
                    return Ok(Next::End);
                }
                if matches!(state, State::Quoted) {
                    self.problem = Some(Problem::UnterminatedQuote);
                }
                self.end_field();
                return Ok(Next::Record);
            }
            started = true;
            match state {
                State::FieldStart => {
                    if self.buf[self.pos] == self.quote {
                        self.pos += 1;
                        field_quoted = true;
                        state = State::Quoted;
                    } else {
                        state = State::Unquoted;
                    }
                }
                State::Unquoted => {
                    let (delimiter, start) = (self.delimiter, self.pos);
                    let window = &self.buf[start..self.end];
                    let len = window
                        .iter()
                        .position(|&b| self.stops[b as usize])
                        .unwrap_or(window.len());
                    self.append(start, start + len);
                    self.pos = start + len;
                    if self.pos == self.end {
                        continue;
                    }
                    let b = self.buf[self.pos];
                    self.pos += 1;
                    if b == delimiter {
                        self.end_field();
                        field_quoted = false;
                        state = State::FieldStart;
                        continue;
                    }
                    self.line += 1;
                    self.pending_cr = b == b'\r';
                    if self.ends.is_empty() && self.data.is_empty() && !field_quoted {
                        return Ok(Next::Blank);
                    }
                    self.end_field();
                    return Ok(Next::Record);
                }
                State::Quoted => {
                    let (quote, start) = (self.quote, self.pos);
                    let mut i = start;
                    while i < self.end && self.buf[i] != quote {
                        self.line += u64::from(self.buf[i] == b'\n');
                        i += 1;
                    }
                    self.append(start, i);
                    self.pos = i;
                    if i < self.end {
                        self.pos += 1;
                        state = State::QuoteInQuoted;
                    }
                }
                State::QuoteInQuoted => {
                    if self.buf[self.pos] == self.quote {
                        self.append(self.pos, self.pos + 1);
                        self.pos += 1;
                        state = State::Quoted;
                    } else {
                        state = State::Unquoted;
                    }
                }
            }
        }
    }

    fn append(&mut self, from: usize, to: usize) {
        let room = self.max_record_bytes.saturating_sub(self.data.len());
        let take = (to - from).min(room);
        self.data.extend_from_slice(&self.buf[from..from + take]);
        if take < to - from {
            self.problem.get_or_insert(Problem::TooLong);
        }
    }

    fn end_field(&mut self) {
        self.fields += 1;
        if self.ends.len() < self.max_fields {
            self.ends.push(self.data.len());
        }
    }

    /// Makes sure at least one byte is buffered; `false` at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        loop {
            match self.input.read(&mut self.buf) {
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    self.bytes_read += n as u64;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
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
        while let Next::Record | Next::Blank = {
            let next = r.next_record().unwrap();
            if next == Next::Record {
                let mut start = 0;
                let fields = r
                    .ends()
                    .iter()
                    .map(|&end| {
                        let f = String::from_utf8_lossy(&r.data()[start..end]).into_owned();
                        start = end;
                        f
                    })
                    .collect();
                out.push((r.start_line(), fields, r.problem()));
            }
            next
        } {}
        out
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
    fn unterminated_quote_is_reported_and_bounded() {
        let mut input = b"a,b\n\"open,".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        let mut r = RecordReader::new(&input[..], Vec::new(), 0, (b',', b'"')).with_limits(1000, 8);
        assert_eq!(r.next_record().unwrap(), Next::Record);
        assert_eq!(r.next_record().unwrap(), Next::Record);
        assert_eq!(
            (r.start_line(), r.problem()),
            (2, Some(Problem::UnterminatedQuote))
        );
        assert_eq!(r.data().len(), 1000);
        assert_eq!(r.next_record().unwrap(), Next::End);
        assert_eq!(r.bytes_read(), input.len() as u64);
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
