//! The Redis transport and bus against a real redis-server.

use forklift_domain::{Event, JobId, now_ms};
use forklift_queue::{Delivery, EventBus, RedisBus, RedisTransport, Transport};
use forklift_testkit::Redis;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

fn d(priority: i32, run_at: i64) -> Delivery {
    Delivery {
        job_id: JobId::new(),
        queue: "q".into(),
        priority,
        run_at,
    }
}

async fn next(t: &RedisTransport) -> JobId {
    tokio::time::timeout(Duration::from_secs(30), t.next("q"))
        .await
        .expect("a delivery in time")
        .unwrap()
        .job_id
}

#[tokio::test]
async fn priority_order_delay_and_dedup() {
    let redis = Redis::start();
    let t = RedisTransport::connect(&redis.url()).await.unwrap();
    let (low, high, later) = (d(0, 0), d(50, 0), d(100, now_ms() + 300));
    for x in [&later, &low, &high, &low] {
        t.publish(x.clone()).await.unwrap();
    }
    assert_eq!(
        t.depth("q").await.unwrap(),
        3,
        "the repeated publish was dropped"
    );
    assert_eq!(next(&t).await, high.job_id);
    assert_eq!(next(&t).await, low.job_id);
    assert_eq!(next(&t).await, later.job_id, "the delayed one, once due");
    assert!(now_ms() >= later.run_at);
    assert_eq!(t.depth("q").await.unwrap(), 0);
}

#[tokio::test]
async fn a_blocked_consumer_wakes_on_publish() {
    let redis = Redis::start();
    let t = std::sync::Arc::new(RedisTransport::connect(&redis.url()).await.unwrap());
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { next(&t).await }
    });
    let x = d(0, 0);
    t.publish(x.clone()).await.unwrap();
    assert_eq!(waiter.await.unwrap(), x.job_id);
}

#[tokio::test]
async fn a_blocked_consumer_takes_a_delayed_job_when_it_is_due() {
    let redis = Redis::start();
    let t = std::sync::Arc::new(RedisTransport::connect(&redis.url()).await.unwrap());
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { next(&t).await }
    });
    // Wait until the consumer blocks on the empty queue (for up to two seconds).
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut c)
                .await
                .unwrap();
            if info.lines().any(|l| l.trim() == "blocked_clients:1") {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the consumer blocks");
    let x = d(0, now_ms() + 100);
    let published = std::time::Instant::now();
    t.publish(x.clone()).await.unwrap();
    assert_eq!(waiter.await.unwrap(), x.job_id);
    let took = published.elapsed();
    assert!(now_ms() >= x.run_at, "not before it was due");
    assert!(
        took < Duration::from_secs(1),
        "taken {took:?} after publishing, due after 100ms: the consumer slept through it"
    );
}

#[tokio::test]
async fn a_backlog_of_twenty_thousand_due_jobs_drains() {
    let redis = Redis::start();
    let t = RedisTransport::connect(&redis.url()).await.unwrap();
    let due = now_ms() + 200;
    let mut ids = HashSet::new();
    for _ in 0..20_000 {
        let x = d(0, due);
        ids.insert(x.job_id);
        t.publish(x).await.unwrap();
    }
    assert_eq!(t.depth("q").await.unwrap(), 20_000);
    let mut got = HashSet::new();
    while got.len() < 20_000 {
        assert!(got.insert(next(&t).await), "no delivery twice");
    }
    assert_eq!(got, ids);
}

#[tokio::test]
async fn survives_redis_restarting_empty() {
    let mut redis = Redis::start();
    let t = RedisTransport::connect(&redis.url()).await.unwrap();
    t.publish(d(0, 0)).await.unwrap();
    redis.restart_empty();
    // The connection comes back by itself; what Redis held is gone (the reconciler
    // republishes it from the database).
    let mut depth = t.depth("q").await;
    for _ in 0..50 {
        if depth.is_ok() {
            break;
        }
        depth = t.depth("q").await;
    }
    assert_eq!(depth.unwrap(), 0);
    let x = d(0, 0);
    t.publish(x.clone()).await.unwrap();
    assert_eq!(next(&t).await, x.job_id);
}

#[tokio::test]
async fn missing_names_the_deliveries_redis_does_not_hold() {
    let mut redis = Redis::start();
    let t = RedisTransport::connect(&redis.url()).await.unwrap();
    let (due, later, taken, unknown) = (d(0, 0), d(7, now_ms() + 3_600_000), d(0, 0), d(0, 0));
    t.publish(taken.clone()).await.unwrap();
    assert_eq!(next(&t).await, taken.job_id);
    for x in [&due, &later] {
        t.publish(x.clone()).await.unwrap();
    }
    let all = vec![due.clone(), later.clone(), taken.clone(), unknown.clone()];
    assert_eq!(
        t.missing(all.clone()).await.unwrap(),
        [taken.clone(), unknown.clone()],
        "waiting ones (due or delayed) are held; taken and never published ones are not"
    );
    assert_eq!(t.missing(vec![]).await.unwrap(), []);
    redis.restart_empty();
    let mut missing = t.missing(all.clone()).await;
    for _ in 0..50 {
        if missing.is_ok() {
            break;
        }
        missing = t.missing(all.clone()).await;
    }
    assert_eq!(missing.unwrap(), all, "Redis lost everything");
}

#[tokio::test]
async fn events_reach_every_process() {
    let redis = Redis::start();
    let a = RedisBus::connect(&redis.url()).await.unwrap();
    let b = RedisBus::connect(&redis.url()).await.unwrap();
    let mut rx = b.subscribe();
    let id = JobId::new();
    a.publish(Event::CancelRequested(id));
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(got, Event::CancelRequested(x) if x == id));
}

// ---- the keys KEDA reads (deploy/k8s/components/keda) ----
//
// KEDA scales the worker Deployments on Redis keys named in its ScaledObjects. Those
// names must be the transport's: a renamed key would leave the scale-to-zero video
// workers at zero for good. The manifests are read as text (no YAML library for two
// simple files): `kind:` at the top of each document, `name:` under `metadata:` and
// `scaleTargetRef:`, each trigger's `listName:`, and the value after
// `- name: FORKLIFT_QUEUES`.

/// A file under the repository's deploy/ directory.
fn deploy_file(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The documents of a multi-document YAML file whose `kind` is `kind`.
fn documents<'a>(text: &'a str, kind: &str) -> Vec<&'a str> {
    let line = format!("kind: {kind}");
    text.split("\n---")
        .filter(|d| d.lines().any(|l| l.trim_end() == line))
        .collect()
}

/// The value of the first `key:` after the line `after` (both compared trimmed),
/// without quotes.
fn value_after(doc: &str, after: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}:");
    doc.lines()
        .skip_while(|l| l.trim() != after)
        .skip(1)
        .find_map(|l| l.trim().strip_prefix(&prefix).map(str::trim))
        .map(|v| v.trim_matches(['"', '\'']).to_owned())
}

/// Each worker Deployment's name and the queues its FORKLIFT_QUEUES names.
fn worker_queues() -> HashMap<String, Vec<String>> {
    let text = deploy_file("k8s/base/workers.yaml");
    documents(&text, "Deployment")
        .into_iter()
        .filter_map(|d| {
            let name = value_after(d, "metadata:", "name").expect("a Deployment's name");
            let queues = value_after(d, "- name: FORKLIFT_QUEUES", "value")?;
            let queues = queues
                .split(',')
                .map(|q| q.split('=').next().unwrap().trim().to_owned())
                .filter(|q| !q.is_empty())
                .collect();
            Some((name, queues))
        })
        .collect()
}

/// Each ScaledObject's name, target and triggers' `listName`s.
fn scaled_objects() -> Vec<(String, String, Vec<String>)> {
    let text = deploy_file("k8s/components/keda/scaledobjects.yaml");
    documents(&text, "ScaledObject")
        .into_iter()
        .map(|d| {
            let name = value_after(d, "metadata:", "name").expect("a ScaledObject's name");
            let target = value_after(d, "scaleTargetRef:", "name").expect("scaleTargetRef.name");
            let lists = d
                .lines()
                .filter_map(|l| l.trim().strip_prefix("listName:"))
                .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
                .collect();
            (name, target, lists)
        })
        .collect()
}

#[test]
fn keda_triggers_name_the_transport_keys_of_their_workers_queues() {
    let workers = worker_queues();
    let scaled = scaled_objects();
    assert!(
        workers.len() >= 3 && scaled.len() >= 3,
        "the manifests were read: {workers:?} {scaled:?}"
    );
    for (name, target, lists) in &scaled {
        let queues = workers.get(target).unwrap_or_else(|| {
            panic!("{name} scales {target}, which is no worker Deployment with FORKLIFT_QUEUES")
        });
        for q in queues {
            let ready = RedisTransport::ready_key(q);
            assert!(
                lists.contains(&ready),
                "{name} does not scale on {ready}, the due jobs of queue {q}; it reads {lists:?}"
            );
        }
        for list in lists {
            let known = queues.iter().any(|q| {
                *list == RedisTransport::ready_key(q) || *list == RedisTransport::delayed_key(q)
            });
            assert!(
                known,
                "{name}: listName {list} is not a key the Redis transport writes for the queues \
                 {queues:?} that {target} consumes"
            );
        }
    }
    for worker in workers.keys() {
        assert!(
            scaled.iter().any(|(_, target, _)| target == worker),
            "{worker} has no ScaledObject"
        );
    }
}

#[tokio::test]
async fn the_keys_keda_reads_hold_the_queue_depth() {
    use redis::AsyncCommands;
    let redis = Redis::start();
    let t = RedisTransport::connect(&redis.url()).await.unwrap();
    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let workers = worker_queues();
    // KEDA's redis scaler counts a key by its type (ZCARD for a sorted set) and takes the
    // largest of a ScaledObject's triggers.
    let count = async |raw: &mut redis::aio::MultiplexedConnection, key: &str| -> u64 {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(raw).await.unwrap();
        assert!(
            kind == "zset" || kind == "none",
            "{key} is a {kind}, not a sorted set"
        );
        raw.zcard(key).await.unwrap()
    };
    // The keys are taken from the manifest alone, not from the transport.
    for (n, (name, target, lists)) in scaled_objects().into_iter().enumerate() {
        let queues = &workers[&target];
        // A different number of jobs per worker, so that no key reads another's count.
        let due = 3 + n as u64;
        for q in queues {
            for _ in 0..due {
                t.publish(delivery(q, 0)).await.unwrap();
            }
        }
        let mut depth = 0;
        for q in queues {
            depth += t.depth(q).await.unwrap();
        }
        assert_eq!(depth, due * queues.len() as u64);
        let mut largest = 0;
        for list in &lists {
            largest = largest.max(count(&mut raw, list).await);
        }
        assert_eq!(
            largest, depth,
            "{name}: its triggers {lists:?} count the due jobs of {queues:?}"
        );
        // Jobs for later land in the delayed sets: every trigger names a key that the
        // transport fills (a misnamed key would read 0 for ever).
        for q in queues {
            t.publish(delivery(q, now_ms() + 3_600_000)).await.unwrap();
        }
        for list in &lists {
            assert!(
                count(&mut raw, list).await > 0,
                "{name}: {list} holds none of the jobs published to {queues:?}"
            );
        }
    }
}

fn delivery(queue: &str, run_at: i64) -> Delivery {
    Delivery {
        job_id: JobId::new(),
        queue: queue.into(),
        priority: 0,
        run_at,
    }
}
