//! The engine's own metrics: job durations by kind and outcome, and request latencies
//! by surface, route and status; written in Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) -> std::fmt::Result {
        for (b, c) in BUCKETS.iter().zip(self.counts) {
            writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}")?;
        }
        writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count)?;
        writeln!(out, "{name}_sum{{{labels}}} {}", self.sum)?;
        writeln!(out, "{name}_count{{{labels}}} {}", self.count)
    }
}

/// Counters and histograms, shared by the engine and the servers hosting it.
#[derive(Default)]
pub struct Metrics {
    jobs: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    requests: Mutex<BTreeMap<(&'static str, String, String), Histogram>>,
    maintenance: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Records one finished attempt of a job of `kind` with `outcome`
    /// (`succeeded`, `failed`, `retried`, `cancelled`, `released`).
    pub fn observe_job(&self, kind: &str, outcome: &'static str, took: Duration) {
        let mut jobs = self.jobs.lock().expect("metrics lock");
        jobs.entry((kind.to_owned(), outcome))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Counts one maintenance tick of `task` (`reconcile`) run by this process.
    pub fn count_maintenance(&self, task: &'static str) {
        *self
            .maintenance
            .lock()
            .expect("metrics lock")
            .entry(task)
            .or_default() += 1;
    }

    /// Records one request on `surface` (`http` or `grpc`) to `route` answered with
    /// `status`.
    pub fn observe_request(
        &self,
        surface: &'static str,
        route: &str,
        status: &str,
        took: Duration,
    ) {
        let mut reqs = self.requests.lock().expect("metrics lock");
        reqs.entry((surface, route.to_owned(), status.to_owned()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Appends every metric in Prometheus text format.
    pub fn write_prometheus(&self, out: &mut String) -> std::fmt::Result {
        let jobs = self.jobs.lock().expect("metrics lock").clone();
        writeln!(
            out,
            "# HELP forklift_job_duration_seconds Job attempts by kind and outcome."
        )?;
        writeln!(out, "# TYPE forklift_job_duration_seconds histogram")?;
        for ((kind, outcome), h) in &jobs {
            h.write(
                out,
                "forklift_job_duration_seconds",
                &format!("kind=\"{kind}\",outcome=\"{outcome}\""),
            )?;
        }
        let reqs = self.requests.lock().expect("metrics lock").clone();
        writeln!(
            out,
            "# HELP forklift_request_duration_seconds Requests by surface, route and status."
        )?;
        writeln!(out, "# TYPE forklift_request_duration_seconds histogram")?;
        for ((surface, route, status), h) in &reqs {
            let labels = format!(
                "surface=\"{surface}\",route=\"{}\",status=\"{status}\"",
                route.replace(['"', '\\'], "_")
            );
            h.write(out, "forklift_request_duration_seconds", &labels)?;
        }
        let ticks = self.maintenance.lock().expect("metrics lock").clone();
        writeln!(
            out,
            "# HELP forklift_maintenance_ticks_total Maintenance ticks this process ran, by task."
        )?;
        writeln!(out, "# TYPE forklift_maintenance_ticks_total counter")?;
        for (task, n) in &ticks {
            writeln!(
                out,
                "forklift_maintenance_ticks_total{{task=\"{task}\"}} {n}"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.observe_job("image.thumbnail", "succeeded", Duration::from_millis(30));
        m.observe_job("image.thumbnail", "succeeded", Duration::from_secs(2));
        let mut out = String::new();
        m.write_prometheus(&mut out).unwrap();
        assert!(out.contains(r#"forklift_job_duration_seconds_bucket{kind="image.thumbnail",outcome="succeeded",le="0.05"} 1"#), "{out}");
        assert!(out.contains(r#"forklift_job_duration_seconds_bucket{kind="image.thumbnail",outcome="succeeded",le="+Inf"} 2"#));
        assert!(out.contains(
            r#"forklift_job_duration_seconds_count{kind="image.thumbnail",outcome="succeeded"} 2"#
        ));
    }
}
