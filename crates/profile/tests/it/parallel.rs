//! Several threads give the report one thread gives: exactly, but for the floating-point
//! rounding of means and deviations and the sketches' choices within their stated error.

use crate::sketches::rank_error;
use crate::{col, run_with};
use forklift_profile::report::{Report, Scalar};
use forklift_profile::sketch::Kll;
use forklift_profile::{ProfileError, ProfileOptions, profile};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

fn opts(threads: usize, chunk_bytes: usize) -> ProfileOptions {
    let mut opts = ProfileOptions::default();
    opts.threads = threads;
    opts.chunk_bytes = chunk_bytes;
    opts
}

/// Asserts that two reports are equal, means and standard deviations to 1e-9 relative.
/// Quantiles are compared only for columns of fewer than [`Kll::FIRST_LEVEL`] values, which
/// the sketch keeps exactly.
fn assert_same(parallel: &Report, sequential: &Report, context: &str) {
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300),
        (a, b) => a == b,
    };
    let mut parallel = parallel.clone();
    for (p, s) in parallel.columns.iter_mut().zip(&sequential.columns) {
        assert!(close(p.mean, s.mean), "{context}: {} mean", p.name);
        assert!(close(p.stddev, s.stddev), "{context}: {} stddev", p.name);
        (p.mean, p.stddev) = (s.mean, s.stddev);
        if s.count >= Kll::FIRST_LEVEL as u64 {
            assert_eq!(p.quantiles.is_some(), s.quantiles.is_some(), "{context}");
            p.quantiles.clone_from(&s.quantiles);
        }
    }
    assert_eq!(&parallel, sequential, "{context}");
}

/// One cell of a generated file: numbers, dates, booleans, nulls, text with quotes,
/// delimiters, line breaks and non-ASCII characters.
fn cell(rng: &mut StdRng, column: usize) -> String {
    let text = |rng: &mut StdRng| -> String {
        let alphabet = ["a", "Z", " ", ",", "\"", "\n", "\r\n", "é", "x", ";"];
        (0..rng.random_range(0..6))
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect()
    };
    let raw = match (column + rng.random_range(0..2)) % 6 {
        _ if rng.random_bool(0.08) => ["", "NULL", "NA", " "][rng.random_range(0..4)].to_string(),
        0 => rng.random_range(-1000i64..1000).to_string(),
        1 => format!("{:.3}", rng.random::<f64>() * 100.0),
        2 => format!(
            "2024-{:02}-{:02}{}",
            rng.random_range(1..13),
            rng.random_range(1..29),
            if rng.random_bool(0.5) {
                "T10:20:30Z"
            } else {
                ""
            }
        ),
        3 => ["true", "no", "FALSE"][rng.random_range(0..3)].to_string(),
        _ => text(rng),
    };
    if rng.random_bool(0.05) {
        // A quote inside an unquoted field is text.
        return format!("5\" {}", raw.replace([',', '"', '\n', '\r'], ""));
    }
    if raw.contains([',', '"', '\n', '\r']) || rng.random_bool(0.1) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw
    }
}

/// A generated CSV with the awkward parts a reader meets.
fn awkward_csv(rng: &mut StdRng) -> Vec<u8> {
    let width: usize = rng.random_range(1..6);
    let newline = ["\n", "\r\n", "\r"][rng.random_range(0..3)];
    let mut out = Vec::new();
    if rng.random_bool(0.3) {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let header: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
    out.extend_from_slice(header.join(",").as_bytes());
    out.extend_from_slice(newline.as_bytes());
    for _ in 0..rng.random_range(0..80) {
        match rng.random_range(0..40) {
            0 => out.extend_from_slice(newline.as_bytes()),
            1 => out.extend_from_slice(b"\xFF\xFE,broken"),
            2 => out.extend_from_slice(b"\"text\"after,quote"),
            _ => {
                // Mostly the right width, now and then one field more or less.
                let fields = match rng.random_range(0..15) {
                    0 => width + 1,
                    1 => width.saturating_sub(1).max(1),
                    _ => width,
                };
                let row: Vec<String> = (0..fields).map(|c| cell(rng, c)).collect();
                out.extend_from_slice(row.join(",").as_bytes());
            }
        }
        out.extend_from_slice(newline.as_bytes());
    }
    match rng.random_range(0..4) {
        // No line break after the last record.
        0 => {
            let len = out.len() - newline.len();
            out.truncate(len.max(1));
        }
        // A quote opened near the end and never closed.
        1 => out.extend_from_slice(b"1,\"never closed\nstill open"),
        _ => {}
    }
    out
}

#[test]
fn parallel_equals_sequential_on_awkward_inputs() {
    let mut rng = StdRng::seed_from_u64(2024);
    for round in 0..300 {
        let input = awkward_csv(&mut rng);
        let sequential = run_with(&input, &opts(1, 1 << 20));
        for (threads, chunk) in [(2, 1), (3, 7), (4, 64), (2, 1 << 20)] {
            let parallel = run_with(&input, &opts(threads, chunk));
            let context = format!(
                "round {round}, {threads} threads, chunks of {chunk}: {:?}",
                String::from_utf8_lossy(&input)
            );
            match (&parallel, &sequential) {
                (Ok(p), Ok(s)) => assert_same(p, s, &context),
                (p, s) => assert_eq!(format!("{p:?}"), format!("{s:?}"), "{context}"),
            }
        }
    }
}

#[test]
fn records_longer_than_the_limit_agree_and_stop_the_cutting_when_very_long() {
    // Longer than the limit, within a chunk's reach; and longer than a chunk can hold, past
    // the sample, which makes the calling thread read the rest itself.
    let long = "y".repeat(3000);
    let huge = "z".repeat(2_000_000);
    let mut input = String::from("id,note\n");
    for i in 0..50_000 {
        match i {
            700 => input.push_str(&format!("{i},\"{long}\n{long}\"\n")),
            1400 => input.push_str(&format!("{i},{long}\r\n")),
            30_000 => input.push_str(&format!("{i},\"{huge}\"\n")),
            _ => input.push_str(&format!("{i},n{}\n", i % 7)),
        }
    }
    // The same with a quote opened at row 40 000 and never closed.
    let at = input.find("\n40000,").unwrap() + 7;
    let mut unterminated = input.clone();
    unterminated.insert(at, '"');
    for (input, bad) in [(input, 3), (unterminated, 4)] {
        let mut one = opts(1, 1 << 20);
        one.max_record_bytes = 1024;
        let sequential = run_with(input.as_bytes(), &one).unwrap();
        assert_eq!(sequential.bad_rows.count, bad);
        for chunk in [1000, 64 * 1024] {
            let mut several = opts(3, chunk);
            several.max_record_bytes = 1024;
            let parallel = run_with(input.as_bytes(), &several).unwrap();
            assert_same(&parallel, &sequential, &format!("chunks of {chunk}"));
        }
    }
}

#[test]
fn a_crlf_cut_by_the_end_of_the_sample_is_one_line_break() {
    // The header's CR is the last byte of the 256 KiB sample, its LF the first after it.
    let mut input = "h".repeat(256 * 1024 - 1).into_bytes();
    input.extend_from_slice(b"\r\n");
    for i in 0..20_000 {
        input.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    let mut one = opts(1, 1 << 20);
    one.header = Some(true);
    let sequential = run_with(&input, &one).unwrap();
    assert_eq!((sequential.rows, sequential.blank_lines), (20_000, 0));
    let mut several = opts(2, 4096);
    several.header = Some(true);
    assert_same(&run_with(&input, &several).unwrap(), &sequential, "");
}

/// A larger file of four columns, and its cells.
fn wide_csv(seed: u64, rows: usize) -> (String, Vec<f64>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = String::from("amount,code,city,note\r\n");
    let (mut amounts, mut codes) = (Vec::new(), Vec::new());
    for i in 0..rows {
        let amount = (rng.random::<f64>() * 12.0).exp();
        let code = format!("c{}", rng.random_range(0..rows * 2));
        let city = ["oslo", "lima", "kyiv", "pune"][(rng.random::<f64>().powi(2) * 4.0) as usize];
        text.push_str(&format!(
            "{amount:.3},{code},{city},\"line {i}\nof \"\"{i}\"\"\"\r\n"
        ));
        amounts.push(format!("{amount:.3}").parse().unwrap());
        codes.push(code);
    }
    (text, amounts, codes)
}

#[test]
fn on_a_large_file_exact_parts_agree_and_sketches_keep_their_bounds() {
    let (text, mut amounts, codes) = wide_csv(8, 150_000);
    amounts.sort_by(f64::total_cmp);
    let sequential = run_with(text.as_bytes(), &opts(1, 1 << 20)).unwrap();
    for (threads, chunk) in [(2, 1 << 20), (4, 100_000), (3, 4096)] {
        let parallel = run_with(text.as_bytes(), &opts(threads, chunk)).unwrap();
        let context = format!("{threads} threads, chunks of {chunk}");
        assert_eq!(
            (parallel.rows, parallel.bytes, &parallel.bad_rows),
            (sequential.rows, sequential.bytes, &sequential.bad_rows),
            "{context}"
        );
        for (p, s) in parallel.columns.iter().zip(&sequential.columns) {
            // Counted, and the distinct count (a HyperLogLog merges to the same registers).
            assert_eq!(
                (p.kind, p.count, p.nulls, &p.type_counts, p.distinct),
                (s.kind, s.count, s.nulls, &s.type_counts, s.distinct),
                "{context}: {}",
                p.name
            );
            assert_eq!((&p.min, &p.max), (&s.min, &s.max), "{context}: {}", p.name);
            assert_eq!(
                (p.min_length, p.max_length),
                (s.min_length, s.max_length),
                "{context}: {}",
                p.name
            );
            assert_eq!(p.histogram, s.histogram, "{context}: {}", p.name);
        }
        let amount = col(&parallel, "amount");
        let sequential_amount = col(&sequential, "amount");
        let (m, s) = (amount.mean.unwrap(), sequential_amount.mean.unwrap());
        assert!((m - s).abs() <= 1e-9 * s, "{context}: mean {m} vs {s}");
        let q = amount.quantiles.as_ref().unwrap();
        for (rank, value) in [(0.01, &q.p1), (0.5, &q.p50), (0.99, &q.p99)] {
            let Scalar::Float(x) = value else {
                panic!("{value:?}")
            };
            let err = rank_error(&amounts, *x, rank);
            assert!(err <= 0.02, "{context}: p{rank}: rank error {err}");
        }
        // Few cities: counted exactly, as with one thread.
        assert_eq!(
            col(&parallel, "city").top_values,
            col(&sequential, "city").top_values,
            "{context}"
        );
        // Many codes: whatever is listed keeps its bound.
        let mut freq: HashMap<&str, u64> = HashMap::new();
        for code in &codes {
            *freq.entry(code).or_default() += 1;
        }
        for top in &col(&parallel, "code").top_values {
            let truth = freq[top.value.as_str()];
            assert!(
                top.count >= truth && top.count - top.error <= truth,
                "{top:?}"
            );
        }
    }
}

#[test]
fn several_threads_report_progress_and_can_be_cancelled() {
    let (text, _, _) = wide_csv(9, 60_000);
    let input = text.as_bytes();
    let mut seen = Vec::new();
    let report = profile(
        input,
        &opts(4, 64 * 1024),
        &mut |b| seen.push(b),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.rows, 60_000);
    assert!(seen.len() > 5, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(input.len() as u64));

    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let result = profile(
        input,
        &opts(4, 64 * 1024),
        &mut |_| {
            calls += 1;
            if calls == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    );
    assert!(matches!(result, Err(ProfileError::Cancelled)), "{result:?}");
    assert_eq!(calls, 3);
}

/// Fails once `left` bytes have been read.
struct FailingReader<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        (self.data, self.left) = (&self.data[n..], self.left - n);
        Ok(n)
    }
}

#[test]
fn a_read_error_midway_is_an_error_with_any_thread_count() {
    let (text, _, _) = wide_csv(10, 40_000);
    for threads in [1, 2, 4] {
        let reader = FailingReader {
            data: text.as_bytes(),
            left: text.len() / 2,
        };
        let result = profile(
            reader,
            &opts(threads, 32 * 1024),
            &mut |_| {},
            &AtomicBool::new(false),
        );
        assert!(
            matches!(result, Err(ProfileError::Io(_))),
            "{threads}: {result:?}"
        );
    }
}

#[test]
fn thread_and_chunk_options_are_validated() {
    for (threads, chunk) in [(0, 1024), (2000, 1024), (2, 0)] {
        let result = run_with(b"a\n1\n", &opts(threads, chunk));
        assert!(
            matches!(result, Err(ProfileError::InvalidOption { .. })),
            "{threads} {chunk}: {result:?}"
        );
    }
}
