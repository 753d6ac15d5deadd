//! gRPC load generator for Forklift's `forklift.v1.Jobs/SubmitJob` (a `debug.noop` job
//! per call), written with tonic against the repository's protos.
//!
//! Usage: `grpc-load --url http://127.0.0.1:50051 --token fk_… [--concurrency 50]
//! [--connections 4] (--duration 10 | --total 10000)`
//!
//! `concurrency` calls are kept in flight over `connections` HTTP/2 channels. It prints
//! one JSON object: requests, errors, seconds, rps and latency percentiles in ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

pub mod pb {
    tonic::include_proto!("forklift.v1");
}

struct Args {
    url: String,
    token: String,
    concurrency: usize,
    connections: usize,
    duration: Option<f64>,
    total: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:50051".into(),
        token: String::new(),
        concurrency: 50,
        connections: 4,
        duration: None,
        total: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let usage = || -> ! {
        eprintln!(
            "usage: grpc-load --url URL --token TOKEN [--concurrency N] [--connections N] (--duration SECS | --total N)"
        );
        std::process::exit(2)
    };
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_else(|| usage());
        match argv[i].as_str() {
            "--url" => a.url = v,
            "--token" => a.token = v,
            "--concurrency" => a.concurrency = v.parse().unwrap_or_else(|_| usage()),
            "--connections" => a.connections = v.parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = Some(v.parse().unwrap_or_else(|_| usage())),
            "--total" => a.total = Some(v.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
        i += 2;
    }
    if a.token.is_empty() || (a.duration.is_none() && a.total.is_none()) {
        usage();
    }
    a.concurrency = a.concurrency.max(1);
    a.connections = a.connections.clamp(1, a.concurrency);
    a
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..a.connections {
        channels.push(
            Endpoint::from_shared(a.url.clone())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    let auth: MetadataValue<_> = format!("Bearer {}", a.token).parse()?;
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let deadline = a.duration.map(|d| started + Duration::from_secs_f64(d));
    let mut tasks = Vec::new();
    for n in 0..a.concurrency {
        let mut client =
            pb::jobs_client::JobsClient::new(channels[n % channels.len()].clone());
        let (auth, issued, errors, first_error) = (
            auth.clone(),
            issued.clone(),
            errors.clone(),
            first_error.clone(),
        );
        let total = a.total;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            loop {
                if let Some(d) = deadline
                    && Instant::now() >= d
                {
                    break;
                }
                if let Some(t) = total
                    && issued.fetch_add(1, Ordering::Relaxed) >= t
                {
                    break;
                }
                let mut req = tonic::Request::new(pb::SubmitJobRequest {
                    params: Some(pb::JobParams {
                        kind: Some(pb::job_params::Kind::DebugNoop(pb::DebugNoopParams {})),
                    }),
                    ..Default::default()
                });
                req.metadata_mut().insert("authorization", auth.clone());
                let t0 = Instant::now();
                match client.submit_job(req).await {
                    Ok(_) => lat.push(t0.elapsed().as_micros() as u64),
                    Err(status) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_error.lock().unwrap();
                        if f.is_none() {
                            *f = Some(format!("{:?}: {}", status.code(), status.message()));
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let errors = errors.load(Ordering::Relaxed);
    let first_error = first_error.lock().unwrap().clone();
    println!(
        "{{\"requests\": {}, \"errors\": {}, \"seconds\": {:.3}, \"rps\": {:.1}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}, \"first_error\": {}}}",
        lat.len(),
        errors,
        seconds,
        lat.len() as f64 / seconds,
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0),
        match first_error {
            Some(e) => format!("{:?}", e),
            None => "null".into(),
        }
    );
    Ok(())
}
