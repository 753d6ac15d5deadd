//! Profiles a CSV file and prints throughput; optionally writes the JSON and HTML reports.
//!
//! Usage: `cargo run --release --example profile_csv -- <csv> [report.json] [report.html]`

use forklift_profile::{ProfileOptions, profile, render_html};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: profile_csv <csv> [report.json] [report.html]");
        std::process::exit(2);
    };
    let file = std::fs::File::open(path)?;
    let started = Instant::now();
    let report = profile(
        file,
        &ProfileOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rows {} bytes {} seconds {seconds:.3} MB/s {:.1} bad_rows {}",
        report.rows,
        report.bytes,
        report.bytes as f64 / 1e6 / seconds,
        report.bad_rows.count
    );
    if let Some(json_path) = args.get(2) {
        std::fs::write(json_path, serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(html_path) = args.get(3) {
        std::fs::write(html_path, render_html(&report, path))?;
    }
    Ok(())
}
