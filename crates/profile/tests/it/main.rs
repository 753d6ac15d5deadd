//! Integration tests of `forklift-profile` through its public API.

mod control;
mod edge;
mod html;
mod parallel;
mod sketches;
mod stats;

use forklift_profile::report::{Column, Report};
use forklift_profile::{ProfileError, ProfileOptions, profile};
use std::sync::atomic::AtomicBool;

/// Profiles `input` with `opts`, ignoring progress.
pub fn run_with(input: &[u8], opts: &ProfileOptions) -> Result<Report, ProfileError> {
    profile(input, opts, &mut |_| {}, &AtomicBool::new(false))
}

/// Profiles `input` with the default options.
pub fn run(input: &[u8]) -> Report {
    run_with(input, &ProfileOptions::default()).expect("profile")
}

/// The column called `name`.
pub fn col<'a>(report: &'a Report, name: &str) -> &'a Column {
    report
        .columns
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}
