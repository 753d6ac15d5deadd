//! `data.profile`: one CSV file of any size to a profiling report — `report.json`
//! (schema `forklift.data.profile/v1`, documented in the `forklift-profile` crate) and
//! `report.html` (the same report as one self-contained page with SVG charts).
//!
//! The CSV streams from storage into the profiler on the CPU pool; memory stays
//! bounded whatever the file size, and progress follows the bytes read. The profiler
//! reads on the pool's thread and profiles on as many scoped threads as there are cores.

use crate::describe::{self, Param};
use async_trait::async_trait;
use forklift_profile::{ProfileError, ProfileOptions};
use forklift_rpc::v1 as pb;
use forklift_runner::{JobCtx, JobError, Kind, Violation, parse_params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Whether the file starts with a header row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Header {
    /// Detect it.
    #[default]
    Detect,
    /// The first row names the columns.
    Present,
    /// The first row is data.
    Absent,
}

/// Parameters of `data.profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// `,` `;` `\t` `|`, or empty to detect.
    #[serde(default)]
    pub delimiter: String,
    /// Header row handling.
    #[serde(default)]
    pub header: Header,
}

/// The `data.profile` kind.
pub struct Profile;

#[async_trait]
impl Kind for Profile {
    fn name(&self) -> &'static str {
        "data.profile"
    }
    fn queue(&self) -> &'static str {
        "data"
    }
    fn proto_field(&self) -> &'static str {
        "data_profile"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(3 * 3600)
    }

    fn describe(&self) -> pb::KindInfo {
        pb::KindInfo {
            accepts: vec!["text/".into(), ".csv".into(), ".tsv".into()],
            fields: describe::fields(vec![
                Param::string("delimiter", "Delimiter")
                    .choices(&[
                        ("", "Detect"),
                        (",", "Comma"),
                        (";", "Semicolon"),
                        ("\t", "Tab"),
                        ("|", "Pipe"),
                    ])
                    .default(json!("")),
                Param::enumeration(
                    "header",
                    "Header row",
                    &[
                        ("detect", "Detect", pb::CsvHeader::Unspecified as i32),
                        ("present", "Present", pb::CsvHeader::Present as i32),
                        ("absent", "Absent", pb::CsvHeader::Absent as i32),
                    ],
                )
                .default(json!("detect")),
            ]),
            ..describe::kind(
                "Data profile",
                "One CSV file to a profile of every column (type, nulls, distinct values, \
                 range, quantiles, histogram or top values) as report.json and report.html.",
                "Profile this CSV",
            )
        }
    }

    fn validate(&self, v: Value, inputs: usize) -> Result<Value, Vec<Violation>> {
        let mut violations = Vec::new();
        if inputs != 1 {
            violations.push(Violation::new(
                "input_file_ids",
                "data.profile takes exactly one CSV file",
            ));
        }
        let p: Params = parse_params(v)?;
        if !matches!(p.delimiter.as_str(), "" | "," | ";" | "\t" | "|") {
            violations.push(Violation::new(
                "delimiter",
                "one of , ; | or a tab, or empty to detect it",
            ));
        }
        if violations.is_empty() {
            Ok(json!(p))
        } else {
            Err(violations)
        }
    }

    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let params: Params = ctx.params()?;
        let size = ctx.inputs()[0].size_bytes.max(1);
        let name = ctx.inputs()[0].name.clone();
        let reader = ctx.input_reader(0).await?;
        let mut opts = ProfileOptions::default();
        // One permit of the CPU pool, all cores: a profile is one long job, and the
        // pool's other permits are not reserved for it, so a busy worker shares the
        // cores between its jobs rather than queueing this one for several permits.
        opts.threads = std::thread::available_parallelism().map_or(1, usize::from);
        opts.delimiter = params.delimiter.bytes().next();
        opts.header = match params.header {
            Header::Detect => None,
            Header::Present => Some(true),
            Header::Absent => Some(false),
        };
        let (tx, mut rx) = tokio::sync::watch::channel(0u64);
        let reporter = ctx.reporter();
        // In a block of its own: the pinned future borrows `ctx` until it is dropped.
        let (json, html) = {
            // `stop` is raised when the attempt is cancelled or ends first (timeout,
            // shutdown); the profiler's threads all look at it every 1024 records.
            let work = ctx.blocking_stoppable(move |stop| {
                // Only this thread reads (the profiler's workers get chunks in memory), and
                // it also calls `progress`.
                let mut input = tokio_util::io::SyncIoBridge::new(reader);
                let mut progress = |n: u64| {
                    let _ = tx.send(n);
                };
                let report = forklift_profile::profile(&mut input, &opts, &mut progress, stop)
                    .map_err(describe)?;
                let json = serde_json::to_vec_pretty(&report)
                    .map_err(|e| JobError::permanent(format!("writing the report failed: {e}")))?;
                let html = forklift_profile::render_html(&report, &format!("Profile of {name}"));
                Ok((json, html))
            });
            tokio::pin!(work);
            loop {
                tokio::select! {
                    r = &mut work => break r?,
                    Ok(()) = rx.changed() => {
                        let n = *rx.borrow_and_update();
                        let pct = (n.saturating_mul(99) / size).min(99) as u32;
                        reporter.report(pct, format!("read {} of {} MB", n / 1_000_000, size / 1_000_000)).await;
                    }
                }
            }
        };
        ctx.put_output("report.json", "application/json", json.into())
            .await?;
        ctx.put_output("report.html", "text/html; charset=utf-8", html.into())
            .await?;
        ctx.progress(100, "done").await;
        Ok(())
    }
}

fn describe(e: ProfileError) -> JobError {
    match e {
        ProfileError::Cancelled => JobError::Cancelled,
        ProfileError::Io(e) => JobError::retryable(format!("reading the file failed: {e}")),
        e => JobError::permanent(format!("the file cannot be profiled: {e}")),
    }
}
