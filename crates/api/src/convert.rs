//! Records to their proto form.

use crate::admin::{AdminOverview, WorkerStats};
use forklift_domain::{FileRecord, Job};
use forklift_rpc::time::timestamp;
use forklift_rpc::v1 as pb;
use forklift_runner::Registry;

/// A job's proto form.
pub fn job_to_proto(job: &Job, registry: &Registry) -> pb::Job {
    pb::Job {
        id: job.id.to_string(),
        kind: job.kind.clone(),
        state: forklift_rpc::state::to_proto(job.state) as i32,
        params: registry.params_to_proto(&job.kind, &job.params),
        input_file_ids: job.input_file_ids.iter().map(ToString::to_string).collect(),
        priority: job.priority,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        progress_percent: job.progress,
        progress_message: job.progress_message.clone(),
        error: job.error.clone().unwrap_or_default(),
        outputs: job
            .outputs
            .iter()
            .map(|o| pb::JobOutput {
                name: o.name.clone(),
                file_id: o.file_id.to_string(),
            })
            .collect(),
        cancel_requested: job.cancel_requested,
        idempotency_key: job.idempotency_key.clone().unwrap_or_default(),
        create_time: Some(timestamp(job.created_at)),
        update_time: Some(timestamp(job.updated_at)),
        start_time: job.started_at.map(timestamp),
        end_time: job.finished_at.map(timestamp),
        run_time: Some(timestamp(job.run_at)),
        version: job.version as u64,
        owner_id: job.owner_id.to_string(),
    }
}

/// The admin overview's proto form.
pub fn overview_to_proto(o: &AdminOverview) -> pb::Overview {
    pb::Overview {
        queues: o
            .queues
            .iter()
            .map(|q| pb::QueueStats {
                name: q.name.clone(),
                ready: q.ready,
                running: q.running,
            })
            .collect(),
        jobs_by_state: o
            .jobs_by_state
            .iter()
            .map(|&(state, count)| pb::StateCount {
                state: forklift_rpc::state::to_proto(state) as i32,
                count,
            })
            .collect(),
        workers: o.workers.iter().map(worker_to_proto).collect(),
    }
}

fn worker_to_proto(w: &WorkerStats) -> pb::Worker {
    pb::Worker {
        name: w.worker.name.clone(),
        queues: w.worker.queues.clone(),
        slots: u32::try_from(w.worker.slots).unwrap_or(u32::MAX),
        start_time: Some(timestamp(w.worker.started_at)),
        last_seen_time: Some(timestamp(w.worker.last_seen_at)),
        running_jobs: w.running_jobs,
    }
}

/// A file's proto form.
pub fn file_to_proto(f: &FileRecord) -> pb::File {
    pb::File {
        id: f.id.to_string(),
        name: f.name.clone(),
        content_type: f.content_type.clone(),
        size_bytes: f.size_bytes,
        sha256: f.sha256.clone(),
        create_time: Some(timestamp(f.created_at)),
        source_job_id: f.source_job_id.map(|j| j.to_string()).unwrap_or_default(),
    }
}
