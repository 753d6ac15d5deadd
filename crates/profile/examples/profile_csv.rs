//! Profiles a CSV file and prints throughput; optionally writes the JSON and HTML reports.
//!
//! Usage: `cargo run --release --example profile_csv -- [--threads N] [--chunk-kib N] <csv>
//! [report.json] [report.html]` (default: all cores, 1024 KiB chunks).

use forklift_profile::{ProfileOptions, profile, render_html};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = ProfileOptions::default();
    while let Some(flag) = args
        .first()
        .filter(|a| *a == "--threads" || *a == "--chunk-kib")
        .cloned()
    {
        let Some(n) = args.get(1).and_then(|n| n.parse::<usize>().ok()) else {
            eprintln!("{flag} needs a number");
            std::process::exit(2);
        };
        if flag == "--threads" {
            opts.threads = n;
        } else {
            opts.chunk_bytes = n << 10;
        }
        args.drain(..2);
    }
    let Some(path) = args.first() else {
        eprintln!(
            "usage: profile_csv [--threads N] [--chunk-kib N] <csv> [report.json] [report.html]"
        );
        std::process::exit(2);
    };
    let file = std::fs::File::open(path)?;
    let started = Instant::now();
    let report = profile(file, &opts, &mut |_| {}, &AtomicBool::new(false))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rows {} bytes {} seconds {seconds:.3} MB/s {:.1} bad_rows {} threads {}",
        report.rows,
        report.bytes,
        report.bytes as f64 / 1e6 / seconds,
        report.bad_rows.count,
        opts.threads
    );
    if let Some(json_path) = args.get(1) {
        std::fs::write(json_path, serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(html_path) = args.get(2) {
        std::fs::write(html_path, render_html(&report, path))?;
    }
    Ok(())
}
