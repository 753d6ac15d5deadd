//! Writes a deterministic CSV of mixed column types for benchmarks.
//!
//! Usage: `cargo run --release --example gen_csv -- <path> <megabytes> [seed]`

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::io::{BufWriter, Write};

const CATEGORIES: [&str; 8] = [
    "books", "garden", "toys", "tools", "music", "food", "sport", "home",
];
const WORDS: [&str; 12] = [
    "fast", "delivery", "broken", "great", "value", "would", "buy", "again", "late", "box", "ok",
    "thanks",
];
const DOMAINS: [&str; 4] = ["example.com", "mail.test", "corp.example", "inbox.test"];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(megabytes)) =
        (args.get(1), args.get(2).and_then(|m| m.parse::<u64>().ok()))
    else {
        eprintln!("usage: gen_csv <path> <megabytes> [seed]");
        std::process::exit(2);
    };
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    let target = megabytes * 1_000_000;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let header =
        "id,amount,count,active,signup_date,last_seen,category,email,note,score,country,ratio\n";
    out.write_all(header.as_bytes())?;
    let mut written = header.len() as u64;
    let mut line = String::with_capacity(256);
    let mut id: u64 = 0;
    while written < target {
        id += 1;
        line.clear();
        row(&mut rng, id, &mut line);
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    println!("wrote {id} rows, {written} bytes to {path}");
    Ok(())
}

fn row(rng: &mut StdRng, id: u64, line: &mut String) {
    use std::fmt::Write;
    let amount = (rng.random::<f64>() * 9.0).exp();
    let count = rng.random_range(0..1000);
    let active = if rng.random_bool(0.5) {
        "true"
    } else {
        "false"
    };
    let (y, m, d) = (
        rng.random_range(2015..2025),
        rng.random_range(1..13),
        rng.random_range(1..29),
    );
    let (hh, mm, ss) = (
        rng.random_range(0..24),
        rng.random_range(0..60),
        rng.random_range(0..60),
    );
    let category = CATEGORIES[(rng.random::<f64>().powi(2) * 8.0) as usize];
    let user = rng.random_range(0..200_000);
    let domain = DOMAINS[rng.random_range(0..DOMAINS.len())];
    let _ = write!(
        line,
        "{id},{amount:.2},{count},{active},{y}-{m:02}-{d:02},2024-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z,\
         {category},user{user}@{domain},\""
    );
    for i in 0..rng.random_range(2..10) {
        line.push_str(if i == 0 {
            ""
        } else if rng.random_bool(0.2) {
            ", "
        } else {
            " "
        });
        line.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    line.push_str("\",");
    // Some empty cells, as real exports have.
    if rng.random_bool(0.9) {
        let _ = write!(line, "{:.1}", rng.random_range(0.0..100.0));
    }
    line.push(',');
    if rng.random_bool(0.95) {
        line.push_str(["NO", "SE", "FR", "DE", "PE", "IN"][rng.random_range(0..6)]);
    }
    let _ = writeln!(line, ",{:.4}", rng.random::<f64>());
}
