//! Progress reports and cancellation.

use forklift_profile::{ProfileError, ProfileOptions, profile};
use std::sync::atomic::{AtomicBool, Ordering};

fn csv(rows: usize) -> Vec<u8> {
    let mut out = String::from("id,value,label\n");
    for i in 0..rows {
        out.push_str(&format!("{i},{}.25,label{}\n", i % 1000, i % 37));
    }
    out.into_bytes()
}

#[test]
fn progress_increases_to_the_input_size() {
    let input = csv(200_000);
    let mut seen = Vec::new();
    let report = profile(
        &input[..],
        &ProfileOptions::default(),
        &mut |b| seen.push(b),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.rows, 200_000);
    assert!(seen.len() > 5, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(input.len() as u64));
}

#[test]
fn raising_the_flag_mid_run_cancels() {
    let input = csv(200_000);
    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let result = profile(
        &input[..],
        &ProfileOptions::default(),
        &mut |_| {
            calls += 1;
            cancel.store(true, Ordering::Relaxed);
        },
        &cancel,
    );
    assert!(matches!(result, Err(ProfileError::Cancelled)), "{result:?}");
    assert_eq!(calls, 1);
}

#[test]
fn a_raised_flag_stops_before_reading() {
    let result = profile(
        &csv(10)[..],
        &ProfileOptions::default(),
        &mut |_| {},
        &AtomicBool::new(true),
    );
    assert!(matches!(result, Err(ProfileError::Cancelled)));
}
