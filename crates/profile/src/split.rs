//! Finds where records end in a stream of CSV bytes without reading their fields, so that the
//! input can be cut into parts that each start at a record.
//!
//! A line break ends a record unless it is inside a quoted field, and under the reader's
//! lenient rules a quote opens a field only right after a delimiter or a line break (or at the
//! start); elsewhere it is text. So the scanner only has to look at quotes: between an opening
//! quote and its closing one every byte is field content, and every line break outside those
//! spans ends a record. Quotes are found with a vector search, which keeps this far cheaper
//! than reading the records.

/// The quoting state between two scanned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not inside quotes.
    Outside,
    Quoted,
    /// Inside quotes, right after a quote: a closing one, or the first of a doubled pair.
    QuoteInQuoted,
}

/// Scans a stream piece by piece for record ends.
#[derive(Debug)]
pub(crate) struct Boundaries {
    delimiter: u8,
    quote: u8,
    state: State,
    /// The last byte scanned (a line break before the first: a record starts there).
    prev: u8,
    /// Spans outside quotes in the current piece, reused between pieces.
    outside: Vec<(usize, usize)>,
}

impl Boundaries {
    /// A scanner at the start of a record.
    pub(crate) fn new(dialect: (u8, u8)) -> Self {
        Self {
            delimiter: dialect.0,
            quote: dialect.1,
            state: State::Outside,
            prev: b'\n',
            outside: Vec::new(),
        }
    }

    /// Scans `bytes`, the continuation of everything scanned so far, and returns the position
    /// just after the last line break in it that ends a record.
    ///
    /// A CR is taken as a whole line break: the caller must not end a piece with a CR unless
    /// the input ends there, since an LF after it would belong to the same break.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let (quote, n) = (self.quote, bytes.len());
        self.outside.clear();
        let mut i = 0;
        while i < n {
            match self.state {
                State::QuoteInQuoted if bytes[i] == quote => {
                    self.state = State::Quoted;
                    i += 1;
                }
                State::QuoteInQuoted => self.state = State::Outside,
                State::Quoted => match memchr::memchr(quote, &bytes[i..]) {
                    None => i = n,
                    Some(k) => {
                        self.state = State::QuoteInQuoted;
                        i += k + 1;
                    }
                },
                State::Outside => {
                    let start = i;
                    let mut from = i;
                    let opening = loop {
                        match memchr::memchr(quote, &bytes[from..]) {
                            None => break None,
                            Some(k) => {
                                let q = from + k;
                                let before = if q == 0 { self.prev } else { bytes[q - 1] };
                                if before == self.delimiter || before == b'\n' || before == b'\r' {
                                    break Some(q);
                                }
                                from = q + 1;
                            }
                        }
                    };
                    let end = opening.unwrap_or(n);
                    self.outside.push((start, end));
                    match opening {
                        Some(q) => {
                            self.state = State::Quoted;
                            i = q + 1;
                        }
                        None => i = n,
                    }
                }
            }
        }
        if let Some(&last) = bytes.last() {
            self.prev = last;
        }
        // Only the last break matters: look for it from the end.
        self.outside.iter().rev().find_map(|&(start, end)| {
            memchr::memrchr2(b'\n', b'\r', &bytes[start..end]).map(|k| start + k + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{Next, RecordReader};
    use proptest::prelude::*;

    /// Where the reader's records (and blank lines) end with a line break.
    fn break_ends(input: &[u8]) -> Vec<usize> {
        let mut r = RecordReader::over_chunk(input.to_vec(), input.len(), (b',', b'"'));
        let mut ends = Vec::new();
        while r.next_record().unwrap() != Next::End {
            let end = input.len() - r.remaining();
            if end > 0 && matches!(input[end - 1], b'\n' | b'\r') && r.problem().is_none() {
                ends.push(end);
            }
        }
        ends
    }

    /// A CSV-ish input from the characters that matter, and where to cut it.
    fn input_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        let alphabet = vec![b'a', b',', b'"', b'\n', b'\r', b' '];
        prop::collection::vec(prop::sample::select(alphabet), 1..60).prop_flat_map(|input| {
            let len = input.len();
            (Just(input), prop::collection::vec(1..=len, 0..6))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

        /// Scanned in any pieces (none ending with a CR but the last), every piece's
        /// last break is the reader's last record end in it; a failure shrinks to the
        /// shortest input and fewest cuts that show it.
        #[test]
        fn the_last_break_found_is_the_readers_last_record_end((input, cuts) in input_and_cuts()) {
            let len = input.len();
            let ends = break_ends(&input);
            let mut cuts: Vec<usize> = cuts
                .into_iter()
                .filter(|&c| c == len || input[c - 1] != b'\r')
                .collect();
            cuts.push(len);
            cuts.sort_unstable();
            cuts.dedup();
            let mut scanner = Boundaries::new((b',', b'"'));
            let mut at = 0;
            for to in cuts {
                let found = scanner.scan(&input[at..to]).map(|p| at + p);
                let expected = ends.iter().rev().find(|&&e| e > at && e <= to).copied();
                prop_assert_eq!(
                    found,
                    expected,
                    "piece {}..{} of {:?}",
                    at,
                    to,
                    String::from_utf8_lossy(&input)
                );
                at = to;
            }
        }
    }
}
