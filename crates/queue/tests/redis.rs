//! The Redis transport and bus against a real redis-server.

use forklift_domain::{Event, JobId, now_ms};
use forklift_queue::{Delivery, EventBus, RedisBus, RedisTransport, Transport};
use forklift_testkit::Redis;
use std::collections::HashSet;
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
