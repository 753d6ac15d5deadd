//! What one cell holds: the null rule, type recognition from text, and date formatting.

/// A non-null cell, recognised as the most specific type its text parses as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell {
    Boolean,
    Integer(i64),
    Float(f64),
    /// Days since 1970-01-01.
    Date(i64),
    /// Seconds since 1970-01-01T00:00:00Z.
    Datetime(f64),
    String,
}

/// The spellings of a missing value, besides an empty (or all-blank) cell. Matched exactly
/// after trimming, as pandas does: `na` or `none` in lower case can be real words, but these
/// forms are what databases, R and spreadsheets write.
pub(crate) const NULL_MARKERS: [&str; 12] = [
    "NULL", "null", "Null", "NA", "N/A", "n/a", "NaN", "nan", "None", "#N/A", "<NA>", "nil",
];

/// Removes leading and trailing ASCII spaces and tabs.
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !blank(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !blank(c)).map_or(start, |i| i + 1);
    // Both ends are next to ASCII bytes (or the ends of `s`), so they are char boundaries.
    &s[start..end]
}

/// `s` cut to at most `max_bytes` at a character boundary.
pub(crate) fn cap(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether a trimmed cell counts as null.
pub(crate) fn is_null(trimmed: &str) -> bool {
    trimmed.is_empty() || (trimmed.len() <= 4 && NULL_MARKERS.contains(&trimmed))
}

/// Recognises the type of a trimmed, non-null cell.
pub(crate) fn classify(s: &str) -> Cell {
    let bytes = s.as_bytes();
    match bytes[0] {
        b'0'..=b'9' | b'-' | b'+' | b'.' => classify_numeric(s),
        b't' | b'T' | b'f' | b'F' | b'y' | b'Y' | b'n' | b'N' if is_boolean(bytes) => Cell::Boolean,
        _ => Cell::String,
    }
}

fn is_boolean(b: &[u8]) -> bool {
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| b.eq_ignore_ascii_case(w.as_bytes()))
}

fn classify_numeric(s: &str) -> Cell {
    let b = s.as_bytes();
    if let Some(i) = parse_int(b) {
        return Cell::Integer(i);
    }
    if b.len() >= 10
        && b[4] == b'-'
        && let Some(days) = parse_date(&b[..10])
    {
        return match parse_time(&b[10..]) {
            _ if b.len() == 10 => Cell::Date(days),
            Some(seconds) => Cell::Datetime(days as f64 * 86_400.0 + seconds),
            None => Cell::String,
        };
    }
    // Only plain decimal notation: `inf`, `nan` and hex are text in a CSV, not numbers.
    let plain = b
        .iter()
        .all(|c| matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(x) if plain && x.is_finite() => Cell::Float(x),
        _ => Cell::String,
    }
}

fn parse_int(b: &[u8]) -> Option<i64> {
    let (negative, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    // Accumulating negatively reaches i64::MIN too.
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
}

/// `YYYY-MM-DD` to days since the Unix epoch.
fn parse_date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `THH:MM[:SS[.fff]][Z|±HH:MM|±HHMM]` (or a space instead of `T`) to seconds after
/// midnight UTC; a time without an offset is taken as UTC.
fn parse_time(b: &[u8]) -> Option<f64> {
    if b.len() < 6 || !matches!(b[0], b'T' | b' ') || b[3] != b':' {
        return None;
    }
    let (hour, minute) = (digits(&b[1..3])?, digits(&b[4..6])?);
    let mut rest = &b[6..];
    let mut seconds = 0.0;
    if rest.first() == Some(&b':') {
        let end = rest
            .iter()
            .position(|c| matches!(c, b'Z' | b'+' | b'-'))
            .unwrap_or(rest.len());
        let text = std::str::from_utf8(&rest[1..end]).ok()?;
        if text.len() < 2 || !text.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
            return None;
        }
        seconds = text
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..61.0).contains(s))?;
        rest = &rest[end..];
    }
    let offset = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 {
        return None;
    }
    Some((hour * 3600 + minute * 60 - offset) as f64 + seconds)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Formats seconds since the epoch as `YYYY-MM-DD`.
pub(crate) fn format_date(seconds: f64) -> String {
    let (y, m, d) = civil_from_days((seconds / 86_400.0).floor() as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`, with milliseconds if any.
pub(crate) fn format_datetime(seconds: f64) -> String {
    let days = (seconds / 86_400.0).floor();
    let in_day = seconds - days * 86_400.0;
    let millis = (in_day * 1000.0).round() as i64;
    let (s, ms) = (millis / 1000, millis % 1000);
    let time = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    let date = format_date(days * 86_400.0);
    if ms == 0 {
        format!("{date}T{time}Z")
    } else {
        format!("{date}T{time}.{ms:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_type() {
        assert_eq!(classify("42"), Cell::Integer(42));
        assert_eq!(classify("-9223372036854775808"), Cell::Integer(i64::MIN));
        assert_eq!(classify("99999999999999999999"), Cell::Float(1e20));
        assert_eq!(classify("+1.5e3"), Cell::Float(1500.0));
        assert_eq!(classify(".5"), Cell::Float(0.5));
        assert_eq!(classify("TRUE"), Cell::Boolean);
        assert_eq!(classify("no"), Cell::Boolean);
        assert_eq!(classify("2024-02-29"), Cell::Date(19_782));
        assert_eq!(classify("2023-02-29"), Cell::String);
        assert_eq!(classify("1970-01-02T00:00:01Z"), Cell::Datetime(86_401.0));
        assert_eq!(classify("1970-01-01 01:00:00+01:00"), Cell::Datetime(0.0));
        assert_eq!(classify("1970-01-01T00:00:00.25"), Cell::Datetime(0.25));
        for text in [
            "inf",
            "NaN1",
            "1e999",
            "1,5",
            "12:30",
            "-",
            "1970-01-01T",
            "0x10",
            "nope",
        ] {
            assert_eq!(classify(text), Cell::String, "{text}");
        }
    }

    #[test]
    fn null_rule() {
        for text in [
            "", "NULL", "NA", "N/A", "n/a", "NaN", "None", "#N/A", "<NA>", "nil",
        ] {
            assert!(is_null(trim(text)), "{text}");
        }
        assert!(is_null(trim("  \t")));
        for text in ["na", "none", "0", "NULLS", "-"] {
            assert!(!is_null(text), "{text}");
        }
    }

    #[test]
    fn dates_round_trip() {
        for days in [-719_468, -1, 0, 59, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_date(19_782.0 * 86_400.0), "2024-02-29");
        assert_eq!(format_datetime(86_401.5), "1970-01-02T00:00:01.500Z");
    }
}
