//! Dialect detection from a sample of the start of the input, and refusal of inputs that are
//! not text at all.

use crate::ProfileError;
use crate::reader::{Next, RecordReader};
use crate::value::{self, Cell};

/// The UTF-8 byte-order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Delimiters tried, in order of preference when they score the same.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Records of the sample looked at.
const SAMPLE_RECORDS: usize = 200;

/// The detected (or given) dialect and the shape of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sniffed {
    pub(crate) delimiter: u8,
    pub(crate) quote: u8,
    pub(crate) header: bool,
    /// The most common field count among the sampled records.
    pub(crate) width: usize,
}

/// Refuses inputs that are recognisably not CSV text, saying what they look like instead.
pub(crate) fn check_text(sample: &[u8]) -> Result<(), ProfileError> {
    const SIGNATURES: [(&[u8], &str); 8] = [
        (b"\x1F\x8B", "gzip-compressed; decompress it first"),
        (
            b"PK\x03\x04",
            "a ZIP archive (or an Excel .xlsx workbook); export it as CSV first",
        ),
        (b"%PDF", "a PDF document"),
        (b"PAR1", "a Parquet file"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"BZh", "bzip2-compressed; decompress it first"),
        (b"\x28\xB5\x2F\xFD", "zstd-compressed; decompress it first"),
    ];
    if sample.starts_with(b"\xFF\xFE") || sample.starts_with(b"\xFE\xFF") {
        return Err(ProfileError::UnsupportedEncoding { encoding: "UTF-16" });
    }
    if let Some((_, what)) = SIGNATURES
        .iter()
        .find(|(magic, _)| sample.starts_with(magic))
    {
        return Err(ProfileError::NotCsv {
            reason: format!("the input is {what}"),
        });
    }
    if sample.contains(&0) {
        return Err(ProfileError::NotCsv {
            reason: "the input contains NUL bytes: it is binary, or text in UTF-16/UTF-32".into(),
        });
    }
    let control = sample
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F)
        .count();
    if control * 100 > sample.len() {
        return Err(ProfileError::NotCsv {
            reason: format!(
                "{control} of the first {} bytes are control characters",
                sample.len()
            ),
        });
    }
    Ok(())
}

/// Detects what `forced` leaves open. `complete` says whether the sample is the whole input;
/// if not, its last record may be cut and is ignored.
pub(crate) fn sniff(sample: &[u8], complete: bool, forced: Forced) -> Sniffed {
    let delimiter = forced.delimiter.unwrap_or_else(|| {
        let scored = DELIMITERS.map(|d| (score(&records(sample, complete, d, b'"')), d));
        // `max_by` keeps the last of equal scores; the preferred order is first.
        scored
            .iter()
            .rev()
            .max_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN"))
            .expect("four")
            .1
    });
    let quote = forced
        .quote
        .unwrap_or_else(|| detect_quote(sample, delimiter));
    let rows = records(sample, complete, delimiter, quote);
    let header = forced.header.unwrap_or_else(|| looks_like_header(&rows));
    let width = if header {
        rows.first().map_or(0, Vec::len)
    } else {
        modal_width(&rows).0
    };
    Sniffed {
        delimiter,
        quote,
        header,
        width,
    }
}

/// What the caller fixed instead of leaving it to detection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Forced {
    pub(crate) delimiter: Option<u8>,
    pub(crate) quote: Option<u8>,
    pub(crate) header: Option<bool>,
}

fn records(sample: &[u8], complete: bool, delimiter: u8, quote: u8) -> Vec<Vec<String>> {
    let mut reader = RecordReader::new(std::io::empty(), sample.to_vec(), 0, (delimiter, quote));
    let mut rows = Vec::new();
    while rows.len() <= SAMPLE_RECORDS {
        match reader.next_record() {
            Ok(Next::Record) => {
                let fields = reader
                    .fields()
                    .map(|cell| String::from_utf8_lossy(cell).into_owned());
                rows.push(fields.collect());
            }
            Ok(Next::Blank) => {}
            Ok(Next::End) | Err(_) => break,
        }
    }
    let cut = !complete && rows.len() <= SAMPLE_RECORDS && rows.len() > 1;
    if cut || rows.len() > SAMPLE_RECORDS {
        rows.pop();
    }
    rows
}

/// The most common field count and the fraction of records that have it.
fn modal_width(rows: &[Vec<String>]) -> (usize, f64) {
    let mut counts = std::collections::BTreeMap::new();
    for row in rows {
        *counts.entry(row.len()).or_insert(0usize) += 1;
    }
    let (width, n) = counts
        .into_iter()
        .max_by_key(|&(w, n)| (n, w))
        .unwrap_or((0, 0));
    (
        width,
        if rows.is_empty() {
            0.0
        } else {
            n as f64 / rows.len() as f64
        },
    )
}

/// Ranks a delimiter: splitting into several fields first, then how consistently (in 5 %
/// steps, so one odd row does not outweigh a wider consistent split), then how many fields.
fn score(rows: &[Vec<String>]) -> (f64, f64, f64) {
    let (width, consistency) = modal_width(rows);
    let several = if width > 1 { 1.0 } else { 0.0 };
    (several, (consistency * 20.0).floor(), width as f64)
}

/// `'` only when single quotes open fields and double quotes never do.
fn detect_quote(sample: &[u8], delimiter: u8) -> u8 {
    let opening = |q: u8| {
        sample
            .iter()
            .enumerate()
            .filter(|&(i, &b)| {
                b == q
                    && (i == 0
                        || matches!(sample[i - 1], b'\n' | b'\r')
                        || sample[i - 1] == delimiter)
            })
            .count()
    };
    if opening(b'"') == 0 && opening(b'\'') > 0 {
        b'\''
    } else {
        b'"'
    }
}

/// Decides whether the first record names the columns. A column whose body is typed (numbers,
/// dates, booleans) votes for a header if the first cell is text and against if it has the
/// body's type. Without votes (all-text files), the first row is a header when its cells are
/// non-empty, distinct and never repeated below, as names are and data rarely is.
fn looks_like_header(rows: &[Vec<String>]) -> bool {
    let Some((first, body)) = rows.split_first() else {
        return false;
    };
    let cells: Vec<&str> = first.iter().map(|c| value::trim(c)).collect();
    let mut votes = 0i32;
    for (j, &cell) in cells.iter().enumerate() {
        let body_type = body
            .iter()
            .filter_map(|row| row.get(j).map(|c| value::trim(c)))
            .filter(|c| !value::is_null(c.as_bytes()))
            .map(|c| kind_of(value::classify(c.as_bytes())))
            .reduce(|a, b| if a == b { a } else { Kind::Mixed });
        if value::is_null(cell.as_bytes()) {
            continue;
        }
        match (kind_of(value::classify(cell.as_bytes())), body_type) {
            (Kind::Text, Some(k)) if k != Kind::Text && k != Kind::Mixed => votes += 1,
            (k, Some(b)) if k != Kind::Text && (k == b || b == Kind::Mixed) => votes -= 1,
            (k, None) if k != Kind::Text => votes -= 1,
            _ => {}
        }
    }
    if votes != 0 {
        return votes > 0;
    }
    let mut seen = std::collections::HashSet::new();
    cells
        .iter()
        .all(|c| !value::is_null(c.as_bytes()) && seen.insert(*c))
        && cells.iter().enumerate().all(|(j, c)| {
            body.iter()
                .all(|row| row.get(j).map(|v| value::trim(v)) != Some(c))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Boolean,
    Temporal,
    Text,
    Mixed,
}

fn kind_of(cell: Cell) -> Kind {
    match cell {
        Cell::Integer(_) | Cell::Float(_) => Kind::Number,
        Cell::Boolean => Kind::Boolean,
        Cell::Date(_) | Cell::Datetime(_) => Kind::Temporal,
        Cell::String => Kind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Sniffed {
        sniff(text.as_bytes(), true, Forced::default())
    }

    #[test]
    fn delimiters() {
        assert_eq!(detect("a;b;c\n1;2,5;3\n4;5,5;6\n").delimiter, b';');
        assert_eq!(detect("a\tb\n1\t2\n").delimiter, b'\t');
        assert_eq!(detect("a|b|c\nx|y|z\n").delimiter, b'|');
        assert_eq!(
            detect("name,note\nann,\"x;y;z\"\nbob,\"p;q;r\"\n").delimiter,
            b','
        );
        assert_eq!(detect("just one column\nvalue\n").width, 1);
    }

    #[test]
    fn headers() {
        assert!(detect("id,amount\n1,2.5\n2,3.5\n").header);
        assert!(!detect("1,2.5\n2,3.5\n").header);
        assert!(detect("name,city\nann,paris\nbob,oslo\n").header);
        assert!(!detect("ann,paris\nbob,oslo\nann,rome\n").header);
        assert!(detect("only,a,header\n").header);
    }

    #[test]
    fn single_quotes() {
        assert_eq!(detect("'a,b',c\n'd',e\n").quote, b'\'');
        assert_eq!(detect("\"a,b\",c\nit's,e\n").quote, b'"');
    }

    #[test]
    fn binary_is_refused_with_a_reason() {
        let gzip = check_text(b"\x1F\x8B\x08\x00rest").unwrap_err().to_string();
        assert!(gzip.contains("gzip"), "{gzip}");
        assert!(matches!(
            check_text(b"a,b\n\x00\x01"),
            Err(ProfileError::NotCsv { .. })
        ));
        assert!(matches!(
            check_text(b"\xFF\xFEa\x00"),
            Err(ProfileError::UnsupportedEncoding { .. })
        ));
        assert!(check_text("a,b\n\"é\",\t2\r\n".as_bytes()).is_ok());
    }
}
