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
/// forms are what databases, R and spreadsheets write. [`is_null`] matches them.
#[cfg(test)]
pub(crate) const NULL_MARKERS: [&str; 12] = [
    "NULL", "null", "Null", "NA", "N/A", "n/a", "NaN", "nan", "None", "#N/A", "<NA>", "nil",
];

/// Removes leading and trailing ASCII spaces and tabs.
pub(crate) fn trim(s: &str) -> &str {
    let b = trim_bytes(s.as_bytes());
    // Both ends are next to ASCII bytes (or the ends of `s`), so they are char boundaries.
    let start = b.as_ptr() as usize - s.as_ptr() as usize;
    &s[start..start + b.len()]
}

/// [`trim`] on bytes.
#[inline]
pub(crate) fn trim_bytes(b: &[u8]) -> &[u8] {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    match (b.first(), b.last()) {
        // Most cells have nothing to trim.
        (Some(first), Some(last)) if !blank(first) && !blank(last) => b,
        _ => {
            let start = b.iter().position(|c| !blank(c)).unwrap_or(b.len());
            let end = b.iter().rposition(|c| !blank(c)).map_or(start, |i| i + 1);
            &b[start..end]
        }
    }
}

/// `s` cut to at most `max_bytes` at a character boundary.
pub(crate) fn cap(s: &str, max_bytes: usize) -> &str {
    let end = cap_bytes(s.as_bytes(), max_bytes).len();
    &s[..end]
}

/// [`cap`] on the bytes of valid UTF-8 text: never cuts a character.
#[inline]
pub(crate) fn cap_bytes(b: &[u8], max_bytes: usize) -> &[u8] {
    if b.len() <= max_bytes {
        return b;
    }
    let mut end = max_bytes;
    // A continuation byte (0b10xx_xxxx) is never the first byte of a character.
    while end > 0 && b[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    &b[..end]
}

/// Characters in valid UTF-8 text: the bytes that start one.
pub(crate) fn char_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c & 0xC0 != 0x80).count()
}

/// Whether a trimmed cell counts as null.
#[inline]
pub(crate) fn is_null(trimmed: &[u8]) -> bool {
    // The same spellings as [`NULL_MARKERS`], matched by length first: most cells are longer.
    match trimmed.len() {
        0 => true,
        2 => trimmed == b"NA",
        3 => matches!(trimmed, b"N/A" | b"n/a" | b"NaN" | b"nan" | b"nil"),
        4 => matches!(
            trimmed,
            b"NULL" | b"null" | b"Null" | b"None" | b"#N/A" | b"<NA>"
        ),
        _ => false,
    }
}

/// Recognises the type of a trimmed, non-null cell.
#[inline]
pub(crate) fn classify(b: &[u8]) -> Cell {
    match b[0] {
        b'0'..=b'9' | b'-' | b'+' | b'.' => classify_numeric(b),
        b't' | b'T' | b'f' | b'F' | b'y' | b'Y' | b'n' | b'N' if is_boolean(b) => Cell::Boolean,
        _ => Cell::String,
    }
}

fn is_boolean(b: &[u8]) -> bool {
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| b.eq_ignore_ascii_case(w.as_bytes()))
}

/// Powers of ten exactly representable as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Integers, plain decimals and dates in one pass over the digits; anything rarer (exponents,
/// more than 15 significant digits) goes to the standard library's parser.
fn classify_numeric(b: &[u8]) -> Cell {
    let (negative, mut i) = match b[0] {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let int_start = i;
    let mut mantissa: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        mantissa = mantissa
            .wrapping_mul(10)
            .wrapping_add(u64::from(b[i] - b'0'));
        i += 1;
    }
    let int_digits = i - int_start;
    if i == b.len() {
        // Up to 19 digits cannot wrap a u64.
        if int_digits > 0 && int_digits <= 19 {
            let value = if negative {
                0i64.checked_sub_unsigned(mantissa)
            } else {
                i64::try_from(mantissa).ok()
            };
            if let Some(value) = value {
                return Cell::Integer(value);
            }
        }
        return parse_float(b);
    }
    if int_start == 0 && int_digits == 4 && b[i] == b'-' && b.len() >= 10 {
        if let Some(days) = parse_date(&b[..10]) {
            return match b.len() {
                10 => Cell::Date(days),
                _ => match parse_time(&b[10..]) {
                    Some(seconds) => Cell::Datetime(days as f64 * 86_400.0 + seconds),
                    None => Cell::String,
                },
            };
        }
        return parse_float(b);
    }
    if b[i] == b'.' {
        let frac_start = i + 1;
        i = frac_start;
        while i < b.len() && b[i].is_ascii_digit() {
            mantissa = mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(b[i] - b'0'));
            i += 1;
        }
        let frac_digits = i - frac_start;
        // Clinger's fast path: a mantissa below 2^53 and a power of ten up to 10^22 are both
        // exact, so one correctly rounded division gives the same value as a full parser.
        if i == b.len()
            && int_digits + frac_digits > 0
            && int_digits + frac_digits <= 19
            && mantissa < 1 << 53
            && frac_digits < POW10.len()
        {
            let x = mantissa as f64 / POW10[frac_digits];
            return Cell::Float(if negative { -x } else { x });
        }
    }
    parse_float(b)
}

/// Plain decimal or exponent notation only: `inf`, `nan` and hex are text in a CSV.
fn parse_float(b: &[u8]) -> Cell {
    let plain = b
        .iter()
        .all(|c| matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
    match std::str::from_utf8(b).map(str::parse::<f64>) {
        Ok(Ok(x)) if plain && x.is_finite() => Cell::Float(x),
        _ => Cell::String,
    }
}

/// A short run of digits (up to four) as a number; every byte must be a digit.
#[inline]
fn fixed_digits(b: &[u8]) -> Option<i64> {
    let mut n = 0u32;
    let mut bad = 0u8;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        // Checked all at once at the end: no branch per digit.
        bad |= u8::from(d > 9);
        n = n * 10 + u32::from(d);
    }
    (bad == 0).then_some(i64::from(n))
}

/// `YYYY-MM-DD` to days since the Unix epoch.
fn parse_date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (
        fixed_digits(&b[..4])?,
        fixed_digits(&b[5..7])?,
        fixed_digits(&b[8..10])?,
    );
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
    let (hour, minute) = (fixed_digits(&b[1..3])?, fixed_digits(&b[4..6])?);
    let mut rest = &b[6..];
    let mut seconds = 0.0;
    if rest.first() == Some(&b':') {
        let end = rest
            .iter()
            .position(|c| matches!(c, b'Z' | b'+' | b'-'))
            .unwrap_or(rest.len());
        let text = &rest[1..end];
        if text.len() < 2 || !text[..2].iter().all(u8::is_ascii_digit) {
            return None;
        }
        seconds = match text {
            [a, b] => f64::from((a - b'0') * 10 + (b - b'0')),
            _ => std::str::from_utf8(text).ok()?.parse::<f64>().ok()?,
        };
        if !(0.0..61.0).contains(&seconds) {
            return None;
        }
        rest = &rest[end..];
    }
    let offset = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let minutes = fixed_digits(&[*h1, *h2])? * 60 + fixed_digits(&[*m1, *m2])?;
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

    fn classify(s: &str) -> Cell {
        super::classify(s.as_bytes())
    }

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
            assert!(is_null(trim_bytes(text.as_bytes())), "{text}");
        }
        assert!(is_null(trim_bytes(b"  \t")));
        for text in ["na", "none", "0", "NULLS", "-"] {
            assert!(!is_null(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn the_null_rule_is_the_list_of_markers() {
        for marker in NULL_MARKERS {
            assert!(is_null(marker.as_bytes()), "{marker}");
            let mut longer = marker.to_string();
            longer.push('x');
            assert!(!is_null(longer.as_bytes()), "{longer}");
        }
    }

    #[test]
    fn fast_decimals_match_the_standard_parser() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100_000 {
            let digits = rng.random_range(0..13);
            let int = rng.random_range(0..10u64.pow(digits));
            let width = rng.random_range(0..10usize);
            let frac = rng.random_range(0..10u64.pow(width as u32));
            let sign = ["", "-", "+"][rng.random_range(0..3)];
            let text = format!("{sign}{int}.{frac:0width$}");
            let expected: f64 = text.parse().unwrap();
            assert_eq!(classify(&text), Cell::Float(expected), "{text}");
            let short = format!("{sign}.{frac:0width$}");
            if width > 0 {
                assert_eq!(
                    classify(&short),
                    Cell::Float(short.parse().unwrap()),
                    "{short}"
                );
            }
        }
        // Past the fast path's limits the standard parser answers.
        for text in ["12345678901234567.5", "0.1234567890123456789012", "1.5e3"] {
            assert_eq!(classify(text), Cell::Float(text.parse().unwrap()), "{text}");
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
