//! What the JSON API returns and the pages show: jobs and files in their JSON form,
//! converted from the gRPC messages. One conversion serves both.

use crate::kinds::Kinds;
use forklift_domain::{JobState, human_bytes};
use forklift_rpc::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

/// A stored file: an upload or a job's output.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct File {
    /// Opaque id.
    pub id: String,
    /// The uploader's name for it, or the output's name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// For job outputs: the job that produced it.
    pub source_job_id: Option<String>,
}

impl File {
    /// From its gRPC form.
    pub fn from_proto(f: pb::File) -> Self {
        Self {
            created_at: ts(f.create_time.as_ref()).unwrap_or_default(),
            source_job_id: Some(f.source_job_id).filter(|s| !s.is_empty()),
            id: f.id,
            name: f.name,
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
        }
    }

    /// Whether browsers can show it inline as an image.
    pub fn is_image(&self) -> bool {
        matches!(
            self.content_type.as_str(),
            "image/jpeg" | "image/png" | "image/webp" | "image/gif"
        )
    }

    /// The size for people, e.g. `1.4 MB`.
    pub fn size(&self) -> String {
        human_bytes(self.size_bytes)
    }
}

/// One output of a job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobOutput {
    /// Its name within the job, e.g. `thumb-1-256x171.jpg`.
    pub name: String,
    /// The file holding it.
    pub file_id: String,
}

/// A unit of work on input files.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// Opaque id.
    pub id: String,
    /// The kind, e.g. `image.thumbnail`.
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[schema(value_type = String)]
    pub state: JobState,
    /// The parameters as validated, defaults filled in.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// The files it works on.
    pub input_file_ids: Vec<String>,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// 0 to 100.
    pub progress: u32,
    /// A short note on the progress.
    pub progress_message: String,
    /// Why the job (or its last attempt) failed.
    pub error: Option<String>,
    /// The files it produced, once succeeded.
    pub outputs: Vec<JobOutput>,
    /// Cancellation was asked while it ran.
    pub cancel_requested: bool,
    /// Whose job it is (shown to admins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// When its current or last attempt started.
    pub started_at: Option<String>,
    /// When it reached a final state.
    pub finished_at: Option<String>,
    /// Increases with every change.
    pub version: u64,
}

impl Job {
    /// From its gRPC form; `kinds` turns typed parameters into JSON.
    pub fn from_proto(j: pb::Job, kinds: &Kinds) -> Self {
        let params = kinds.params_json(&j);
        Self {
            // UNSPECIFIED is never sent: the jobs service always knows a job's state.
            state: forklift_rpc::state::from_proto(j.state()).unwrap_or(JobState::Queued),
            params,
            created_at: ts(j.create_time.as_ref()).unwrap_or_default(),
            updated_at: ts(j.update_time.as_ref()).unwrap_or_default(),
            started_at: ts(j.start_time.as_ref()),
            finished_at: ts(j.end_time.as_ref()),
            error: Some(j.error).filter(|e| !e.is_empty()),
            outputs: j
                .outputs
                .into_iter()
                .map(|o| JobOutput {
                    name: o.name,
                    file_id: o.file_id,
                })
                .collect(),
            owner_id: Some(j.owner_id.clone()).filter(|o| !o.is_empty()),
            id: j.id,
            kind: j.kind,
            input_file_ids: j.input_file_ids,
            priority: j.priority,
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            progress: j.progress_percent,
            progress_message: j.progress_message,
            cancel_requested: j.cancel_requested,
            version: j.version,
        }
    }

    /// Reached a final state.
    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }

    /// Can be cancelled now.
    pub fn can_cancel(&self) -> bool {
        !self.is_final() && !self.cancel_requested
    }

    /// Can be queued again.
    pub fn can_retry(&self) -> bool {
        matches!(self.state, JobState::Failed | JobState::Cancelled)
    }

    /// The data-profile report among the outputs, if any.
    pub fn report_file(&self) -> Option<&JobOutput> {
        (self.kind == "data.profile")
            .then(|| self.outputs.iter().find(|o| o.name == "report.json"))
            .flatten()
    }

    /// A one-line summary of the parameters for lists.
    pub fn params_summary(&self) -> String {
        match &self.params {
            serde_json::Value::Object(m) if !m.is_empty() => m
                .iter()
                .map(|(k, v)| format!("{k}: {}", compact(v)))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        }
    }

    /// The live-update payload sent over Server-Sent Events.
    pub fn event(&self) -> JobEvent<'_> {
        JobEvent {
            id: &self.id,
            state: self.state.as_str(),
            progress: self.progress,
            progress_message: &self.progress_message,
            error: self.error.as_deref().unwrap_or(""),
            r#final: self.is_final(),
            version: self.version,
            updated_at: &self.updated_at,
        }
    }
}

/// What a live update of a job carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobEvent<'a> {
    /// The job.
    pub id: &'a str,
    /// Its state.
    pub state: &'a str,
    /// 0 to 100.
    pub progress: u32,
    /// A short note on the progress.
    pub progress_message: &'a str,
    /// Why it failed; empty otherwise.
    pub error: &'a str,
    /// Whether the state is final (no more events follow for it).
    pub r#final: bool,
    /// Increases with every change.
    pub version: u64,
    /// When it changed (RFC 3339).
    pub updated_at: &'a str,
}

fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(compact).collect::<Vec<_>>().join(" "),
        serde_json::Value::Object(m) => m
            .values()
            .map(compact)
            .filter(|s| !s.is_empty() && s != "0")
            .collect::<Vec<_>>()
            .join("×"),
        other => other.to_string(),
    }
}

/// A state from its lower-case name.
pub fn parse_state(s: &str) -> Option<pb::JobState> {
    s.parse::<JobState>()
        .ok()
        .map(forklift_rpc::state::to_proto)
}

fn ts(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.map(|t| rfc3339(forklift_rpc::time::millis(t)))
}

/// Milliseconds since the epoch as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
    }
    // Every listed job carries three of these: digits by hand, not `format!`'s padding.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m.into());
    put(8, 2, d.into());
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 3, milli);
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// An RFC 3339 time for people: `2026-11-22 04:51 UTC`.
pub fn human_time(rfc: impl AsRef<str>) -> String {
    let rfc = rfc.as_ref();
    if rfc.len() >= 16 {
        format!("{} {} UTC", &rfc[..10], &rfc[11..16])
    } else {
        rfc.to_owned()
    }
}

/// Days since 1970-01-01 to (year, month, day) — Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_323_111_123), "2026-11-22T04:51:51.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_800_000), "10000-01-01T00:00:00.000Z");
        assert_eq!(
            human_time("2026-11-22T04:51:51.123Z"),
            "2026-11-22 04:51 UTC"
        );
    }
}
