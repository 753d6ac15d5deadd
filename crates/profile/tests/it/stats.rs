//! Column statistics checked against a plain reference computation on the same data.

use crate::sketches::rank_error;
use crate::{col, run_with};
use forklift_profile::ProfileOptions;
use forklift_profile::report::{Column, ColumnType, Scalar};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::{HashMap, HashSet};

const CITIES: [&str; 6] = ["oslo", "lima", "kyiv", "pune", "doha", "nuuk"];

/// A seeded CSV and its cells per column (`None` for the empty cells).
fn generate(seed: u64) -> (String, Vec<Vec<Option<String>>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = rng.random_range(3_000..40_000);
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); 4];
    let mut text = String::from("count,amount,city,code\n");
    for _ in 0..rows {
        let row = [
            Some(rng.random_range(-500i64..5_000).to_string()),
            (rng.random::<f64>() > 0.1)
                .then(|| format!("{:.3}", (rng.random::<f64>() * 12.0).exp())),
            Some(CITIES[(rng.random::<f64>().powi(2) * 6.0) as usize].to_string()),
            Some(format!("c{}", rng.random_range(0..rows * 2))),
        ];
        let line: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("")).collect();
        text.push_str(&line.join(","));
        text.push('\n');
        for (column, cell) in cells.iter_mut().zip(row) {
            column.push(cell);
        }
    }
    (text, cells)
}

fn numbers(cells: &[Option<String>]) -> Vec<f64> {
    let mut xs: Vec<f64> = cells.iter().flatten().map(|c| c.parse().unwrap()).collect();
    xs.sort_by(f64::total_cmp);
    xs
}

fn as_f64(s: &Scalar) -> f64 {
    match s {
        Scalar::Integer(i) => *i as f64,
        Scalar::Float(x) => *x,
        Scalar::Text(t) => panic!("not a number: {t}"),
    }
}

fn check_numeric(c: &Column, cells: &[Option<String>]) {
    let xs = numbers(cells);
    let n = xs.len() as f64;
    assert_eq!(
        (c.count, c.nulls),
        (xs.len() as u64, cells.len() as u64 - xs.len() as u64)
    );
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!(
        (c.mean.unwrap() - mean).abs() <= 1e-9 * mean.abs().max(1.0),
        "{} mean",
        c.name
    );
    assert!(
        (c.stddev.unwrap() - sd).abs() <= 1e-9 * sd,
        "{} stddev",
        c.name
    );
    assert_eq!(as_f64(c.min.as_ref().unwrap()), xs[0]);
    assert_eq!(as_f64(c.max.as_ref().unwrap()), xs[xs.len() - 1]);
    let q = c.quantiles.as_ref().unwrap();
    let reported = [&q.p1, &q.p5, &q.p25, &q.p50, &q.p75, &q.p95, &q.p99];
    for (rank, value) in [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
        .into_iter()
        .zip(reported)
    {
        let err = rank_error(&xs, as_f64(value), rank);
        assert!(
            err <= 0.02,
            "{} p{}: rank error {err}",
            c.name,
            rank * 100.0
        );
    }
    let h = c.histogram.as_ref().unwrap();
    assert!(h.counts.len() <= 64);
    for (i, &count) in h.counts.iter().enumerate() {
        let lo = h.start + i as f64 * h.width;
        let expected = xs.iter().filter(|&&x| x >= lo && x < lo + h.width).count() as u64;
        assert_eq!(count, expected, "{} bin {i}", c.name);
    }
    assert_eq!(h.counts.iter().sum::<u64>(), c.count);
}

fn check_distinct(c: &Column, cells: &[Option<String>]) {
    let exact: HashSet<&str> = cells.iter().flatten().map(String::as_str).collect();
    let truth = exact.len() as f64;
    let got = c.distinct.value as f64;
    if c.distinct.exact {
        assert_eq!(got, truth, "{}", c.name);
    } else {
        assert!(
            (got - truth).abs() / truth <= 0.024,
            "{}: {got} vs {truth}",
            c.name
        );
    }
}

#[test]
fn statistics_match_a_reference_computation() {
    let mut estimated = 0;
    for seed in 0..8 {
        let (text, cells) = generate(seed);
        let mut opts = ProfileOptions::default();
        // Low enough that the wide columns switch to the HyperLogLog estimate.
        opts.exact_distinct_limit = 2_000;
        // One thread, or several dealt small chunks.
        (opts.threads, opts.chunk_bytes) = if seed % 2 == 0 {
            (1, 1 << 20)
        } else {
            (4, 16 * 1024)
        };
        let r = run_with(text.as_bytes(), &opts).unwrap();
        assert_eq!(r.rows as usize, cells[0].len());
        assert_eq!(col(&r, "count").kind, ColumnType::Integer);
        assert_eq!(col(&r, "amount").kind, ColumnType::Float);
        check_numeric(col(&r, "count"), &cells[0]);
        check_numeric(col(&r, "amount"), &cells[1]);
        for (name, column) in ["count", "amount", "city", "code"].into_iter().zip(&cells) {
            check_distinct(col(&r, name), column);
            estimated += usize::from(!col(&r, name).distinct.exact);
        }
        // Few categories: the counters hold them all, so counts are exact.
        let mut freq: HashMap<&str, u64> = HashMap::new();
        for city in cells[2].iter().flatten() {
            *freq.entry(city).or_default() += 1;
        }
        let city = col(&r, "city");
        assert_eq!(city.top_values.len(), freq.len());
        for top in &city.top_values {
            assert_eq!((top.count, top.error), (freq[top.value.as_str()], 0));
        }
        assert!(city.top_values.windows(2).all(|w| w[0].count >= w[1].count));
    }
    assert!(estimated > 8, "the estimate path was not exercised");
}

#[test]
fn top_values_bound_their_error_on_a_long_tail() {
    let mut rng = StdRng::seed_from_u64(99);
    let mut text = String::from("v\n");
    let mut freq: HashMap<String, u64> = HashMap::new();
    for i in 0..50_000 {
        let v = if rng.random::<f64>() < 0.3 {
            format!("hot{}", i % 3)
        } else {
            format!("t{}", rng.random::<u32>())
        };
        *freq.entry(v.clone()).or_default() += 1;
        text.push_str(&v);
        text.push('\n');
    }
    let r = run_with(text.as_bytes(), &ProfileOptions::default()).unwrap();
    let top = &col(&r, "v").top_values;
    for entry in &top[..3] {
        assert!(entry.value.starts_with("hot"), "{top:?}");
        let truth = freq[&entry.value];
        assert!(
            entry.count >= truth && entry.count - entry.error <= truth,
            "{entry:?} vs {truth}"
        );
    }
}
